//! policy-drift's configuration: the common part, the baseline and rotation.

use shared::config::FunctionConfig;
use shared::config::{self, CommonConfig, Env};
use shared::policy::baseline::{self, BaselineSource};
use shared::policy::safe_policy::{Keeper, Refusal, SafePolicy, ADMIN_ACTIONS, SELF_ACTIONS};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RotationBaseline {
    /// When false, rotation is not enforced (keys may rotate or not).
    pub enabled: bool,
    pub period_days: i32,
}

#[derive(Clone, Debug)]
pub struct Config {
    pub common: CommonConfig,
    pub baseline: BaselineSource,
    pub rotation: RotationBaseline,
}

const DEFAULT_ROTATION_DAYS: i32 = 365;

impl FunctionConfig for Config {
    fn read(env: &mut Env<'_>) -> Config {
        let common = CommonConfig::read(env);
        let baseline = config::read_baseline(env);
        let rotation = RotationBaseline {
            enabled: env.bool("ROTATION_ENABLED", true),
            // KMS accepts rotation periods from 90 to 2560 days.
            period_days: env.number("ROTATION_PERIOD_DAYS", DEFAULT_ROTATION_DAYS, 90..=2560),
        };
        Config {
            common,
            baseline,
            rotation,
        }
    }

    fn problems(&self) -> Vec<String> {
        // Prove the baseline renders, passes KMS's rules and cannot lock a key out before
        // any event arrives.
        let region = &self.common.region;
        match self.baseline_for(&self.common.account_id, region, "aws") {
            Ok(_) => Vec::new(),
            Err(problems) => problems,
        }
    }

    fn common(&self) -> &CommonConfig {
        &self.common
    }
}

impl Config {
    /// The principals that must keep administering a key after the baseline is written.
    pub fn keepers(&self) -> Vec<Keeper<'_>> {
        let mut keepers = vec![Keeper {
            principal: self.common.self_role_arn.as_str(),
            actions: SELF_ACTIONS,
        }];
        if let BaselineSource::Parts(parts) = &self.baseline {
            keepers.extend(parts.admin_role_arns.iter().map(|arn| Keeper {
                principal: arn,
                actions: ADMIN_ACTIONS,
            }));
        }
        keepers
    }

    /// The baseline for a key of `account` in `region`, checked: KMS would accept it and it
    /// keeps the function's role and the admin roles in control of the key.
    pub fn baseline_for(
        &self,
        account: &str,
        region: &str,
        partition: &str,
    ) -> Result<SafePolicy, Vec<String>> {
        let rendered =
            baseline::render(&self.baseline, account, region, partition).map_err(|e| vec![e])?;
        SafePolicy::check(&rendered.document, &self.keepers()).map_err(|refusals| {
            refusals
                .into_iter()
                .map(|refusal| match refusal {
                    Refusal::KmsRules(v) => format!("the baseline policy would be refused by KMS: {v}"),
                    Refusal::Lockout(p) => format!("the baseline policy would lock keys out: {p}; keep ROOT_ACCESS=true, or name the function's role (stack output PolicyDriftRoleArn) and the admins in KMS_ADMIN_ROLE_ARNS"),
                })
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::config::ConfigError;

    const SELF_ROLE: &str = "arn:aws:iam::111122223333:role/policy-drift";

    fn load(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_lookup(&shared::testing::env(SELF_ROLE, pairs))
    }

    #[test]
    fn rotation_defaults_to_every_365_days() {
        let c = load(&[]).unwrap();
        assert_eq!(
            c.rotation,
            RotationBaseline {
                enabled: true,
                period_days: 365
            }
        );
    }

    #[test]
    fn every_bad_variable_of_both_parts_is_named_in_one_error() {
        let err = load(&[
            ("MODE", "fix-it"),
            ("ROTATION_PERIOD_DAYS", "30"),
            ("ROOT_ACCESS", "maybe"),
            ("KMS_ADMIN_ROLE_ARNS", "admin"),
        ])
        .unwrap_err();
        let text = err.to_string();
        for name in [
            "MODE",
            "ROTATION_PERIOD_DAYS",
            "ROOT_ACCESS",
            "KMS_ADMIN_ROLE_ARNS entry \"admin\"",
        ] {
            assert!(text.contains(name), "{name} missing from: {text}");
        }
        assert_eq!(err.problems.len(), 4, "{text}");
    }

    #[test]
    fn a_baseline_that_would_lock_the_function_out_is_refused() {
        // Root off and only an admin role: the function's own role could no longer read or
        // restore the policy, and KMS's lockout check would refuse its PutKeyPolicy.
        let err = load(&[
            ("ROOT_ACCESS", "false"),
            (
                "KMS_ADMIN_ROLE_ARNS",
                "arn:aws:iam::111122223333:role/kms-admin",
            ),
        ])
        .unwrap_err();
        assert!(err.to_string().contains("lock keys out"), "{err}");
        let ok = load(&[
            ("ROOT_ACCESS", "false"),
            (
                "KMS_ADMIN_ROLE_ARNS",
                &format!("arn:aws:iam::111122223333:role/kms-admin,{SELF_ROLE}"),
            ),
        ]);
        assert!(ok.is_ok(), "{ok:?}");
        assert!(load(&[("ROOT_ACCESS", "false")]).is_err());
    }

    #[test]
    fn a_complete_baseline_document_excludes_the_parts() {
        let err = load(&[
            ("BASELINE_POLICY", r#"{"Statement":[]}"#),
            (
                "KMS_ADMIN_ROLE_ARNS",
                "arn:aws:iam::111122223333:role/kms-admin",
            ),
        ])
        .unwrap_err();
        assert!(err.to_string().contains("must not be set as well"), "{err}");
        let err = load(&[("BASELINE_POLICY", "{not json")]).unwrap_err();
        assert!(err.to_string().contains("BASELINE_POLICY"), "{err}");
    }
}
