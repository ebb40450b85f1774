//! policy-drift's configuration: the common part, the baseline and rotation.

use std::collections::{BTreeMap, BTreeSet};

use shared::base::arn::is_account_id;
use shared::base::text;
use shared::config::FunctionConfig;
use shared::config::{self, CommonConfig, Env};
use shared::desired::arn_matches;
use shared::desired::floor::{Floor, KeyKeeper};
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
    /// What a key is compared with (`DESIRED_STATE`).
    pub desired: DesiredSource,
}

/// What a managed key is compared with.
#[derive(Clone, Debug)]
pub enum DesiredSource {
    /// One baseline for every key (`DESIRED_STATE=baseline`, the default).
    Baseline,
    /// Each key's own record in the state table (`DESIRED_STATE=per-key`).
    PerKey(PerKey),
}

/// Keys without a record (`UNRECORDED_KEYS`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unrecorded {
    /// Recorded from their state when it passes the floor (`enrol`, the default).
    Enrol,
    /// Compared with the baseline and not recorded (`baseline`).
    Baseline,
}

#[derive(Clone, Debug)]
pub struct PerKey {
    /// `APPROVED_DEPLOYERS`: role ARNs, `*` matching any run of characters.
    pub approved_deployers: Vec<String>,
    pub unrecorded: Unrecorded,
    pub floor: Floor,
    /// `KEY_KEEPERS`: per key id or alias name, the principals that keep their actions.
    pub key_keepers: BTreeMap<String, Vec<KeyKeeper>>,
    /// `REVOKE_UNEXPECTED_GRANTS`: revoke grants the record does not hold (enforce mode).
    pub revoke_unexpected_grants: bool,
}

impl PerKey {
    /// Whether the identity that made a call (its session issuer) is an approved deployer.
    pub fn approves(&self, issuer: &str) -> bool {
        self.approved_deployers
            .iter()
            .any(|pattern| arn_matches(pattern, issuer))
    }

    /// The keepers `KEY_KEEPERS` names for a key with this id and these aliases.
    pub fn keepers_of(&self, key_id: &str, aliases: &[String]) -> Vec<KeyKeeper> {
        self.key_keepers
            .iter()
            .filter(|(name, _)| *name == key_id || aliases.contains(name))
            .flat_map(|(_, keepers)| keepers.iter().cloned())
            .collect()
    }

    /// Whether any `KEY_KEEPERS` entry names an alias (then aliases are read per key).
    pub fn needs_aliases(&self) -> bool {
        self.key_keepers
            .keys()
            .any(|name| name.starts_with("alias/"))
    }
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
        let desired = read_desired(env, &common, &baseline);
        Config {
            common,
            baseline,
            rotation,
            desired,
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

fn read_desired(
    env: &mut Env<'_>,
    common: &CommonConfig,
    baseline: &BaselineSource,
) -> DesiredSource {
    match env.optional("DESIRED_STATE").as_deref() {
        None | Some("baseline") => return DesiredSource::Baseline,
        Some("per-key") => {}
        Some(other) => {
            env.problem(format!(
                "DESIRED_STATE must be baseline or per-key, got {}",
                text::quoted(other, 60)
            ));
            return DesiredSource::Baseline;
        }
    }
    if common.state.is_none() {
        env.problem("DESIRED_STATE=per-key keeps each key's desired state in the state table, and STATE_TABLE is not set".to_string());
    }
    let approved_deployers = env.list("APPROVED_DEPLOYERS");
    for bad in approved_deployers
        .iter()
        .filter(|p| !p.starts_with("arn:") || !p.contains(":iam::"))
    {
        env.problem(format!(
            "APPROVED_DEPLOYERS entry {} is not an IAM role or user ARN (a * may stand for any characters, as in arn:aws:iam::111122223333:role/terraform-*)",
            text::quoted(bad, 120)
        ));
    }
    let unrecorded = match env.optional("UNRECORDED_KEYS").as_deref() {
        None | Some("enrol") => Unrecorded::Enrol,
        Some("baseline") => Unrecorded::Baseline,
        Some(other) => {
            env.problem(format!(
                "UNRECORDED_KEYS must be enrol or baseline, got {}",
                text::quoted(other, 60)
            ));
            Unrecorded::Enrol
        }
    };
    let allowed_accounts: BTreeSet<String> = env.list("ALLOWED_ACCOUNTS").into_iter().collect();
    for bad in allowed_accounts.iter().filter(|a| !is_account_id(a)) {
        env.problem(format!(
            "ALLOWED_ACCOUNTS entry {} is not a 12-digit account id",
            text::quoted(bad, 60)
        ));
    }
    let organization_id = env.optional("ORGANIZATION_ID");
    if let Some(bad) = organization_id
        .as_deref()
        .filter(|o| !is_organization_id(o))
    {
        env.problem(format!(
            "ORGANIZATION_ID {} is not an organization id such as o-a1b2c3d4e5",
            text::quoted(bad, 60)
        ));
    }
    let key_keepers = match env.optional("KEY_KEEPERS") {
        None => BTreeMap::new(),
        Some(raw) => match serde_json::from_str::<BTreeMap<String, Vec<KeyKeeper>>>(&raw) {
            Ok(map) => map,
            Err(e) => {
                env.problem(format!(
                    "KEY_KEEPERS must be a JSON object from key id or alias name to a list of {{\"principal\": ARN, \"actions\": [...]}}: {}",
                    text::one_line(&e.to_string(), 160)
                ));
                BTreeMap::new()
            }
        },
    };
    let revoke_unexpected_grants = env.bool("REVOKE_UNEXPECTED_GRANTS", false);
    let root_access = match baseline {
        BaselineSource::Parts(parts) => parts.root_access,
        // A complete document says for itself whether root is named.
        BaselineSource::Document(_) => true,
    };
    let mut keepers = Vec::new();
    if let BaselineSource::Parts(parts) = baseline {
        keepers.extend(parts.admin_role_arns.iter().map(|arn| {
            (
                arn.clone(),
                ADMIN_ACTIONS.iter().map(|a| a.to_string()).collect(),
            )
        }));
    }
    DesiredSource::PerKey(PerKey {
        approved_deployers,
        unrecorded,
        floor: Floor {
            root_access,
            keepers,
            self_actions: SELF_ACTIONS.iter().map(|a| a.to_string()).collect(),
            allowed_accounts,
            organization_id,
        },
        key_keepers,
        revoke_unexpected_grants,
    })
}

fn is_organization_id(id: &str) -> bool {
    id.strip_prefix("o-").is_some_and(|rest| {
        (10..=32).contains(&rest.len())
            && rest
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    })
}

impl Config {
    /// The per-key settings, when keys are compared with their own records.
    pub fn per_key(&self) -> Option<&PerKey> {
        match &self.desired {
            DesiredSource::PerKey(per_key) => Some(per_key),
            DesiredSource::Baseline => None,
        }
    }

    /// The principals that must keep administering a key after the baseline is written.
    /// `acting_as`: the function's principal in the key's account
    /// ([`CommonConfig::self_principal`]).
    pub fn keepers<'a>(&'a self, acting_as: &'a str) -> Vec<Keeper<'a>> {
        let mut keepers = vec![Keeper {
            principal: acting_as,
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
        let acting_as = self.common.self_principal(account);
        SafePolicy::check(&rendered.document, &self.keepers(&acting_as)).map_err(|refusals| {
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
    fn per_key_settings_are_read_and_each_bad_one_is_named() {
        let c = load(&[
            ("DESIRED_STATE", "per-key"),
            ("STATE_TABLE", "kms-guardrails-state"),
            ("APPROVED_DEPLOYERS", "arn:aws:iam::111122223333:role/terraform-*"),
            ("ALLOWED_ACCOUNTS", "444455556666"),
            ("ORGANIZATION_ID", "o-a1b2c3d4e5"),
            (
                "KEY_KEEPERS",
                r#"{"alias/vault-unseal":[{"principal":"arn:aws:iam::111122223333:role/vault","actions":["kms:Decrypt"]}]}"#,
            ),
        ])
        .unwrap();
        let per_key = c.per_key().expect("per-key");
        assert!(per_key.approves("arn:aws:iam::111122223333:role/terraform-ci"));
        assert!(!per_key.approves("arn:aws:iam::111122223333:role/Developer"));
        assert_eq!(per_key.unrecorded, crate::config::Unrecorded::Enrol);
        assert_eq!(
            per_key.keepers_of("some-id", &["alias/vault-unseal".to_string()])[0].actions,
            ["kms:Decrypt"]
        );
        assert!(per_key.keepers_of("some-id", &[]).is_empty());

        let err = load(&[
            ("DESIRED_STATE", "per-key"),
            ("APPROVED_DEPLOYERS", "terraform"),
            ("ALLOWED_ACCOUNTS", "4444"),
            ("ORGANIZATION_ID", "org-1"),
            ("KEY_KEEPERS", "[1]"),
            ("UNRECORDED_KEYS", "ignore"),
        ])
        .unwrap_err();
        let text = err.to_string();
        for expected in [
            "STATE_TABLE is not set",
            "APPROVED_DEPLOYERS entry \"terraform\"",
            "ALLOWED_ACCOUNTS entry \"4444\"",
            "ORGANIZATION_ID \"org-1\"",
            "KEY_KEEPERS must be a JSON object",
            "UNRECORDED_KEYS must be enrol or baseline",
        ] {
            assert!(text.contains(expected), "{expected:?} missing from: {text}");
        }
        assert!(load(&[("DESIRED_STATE", "per-key-ish")])
            .unwrap_err()
            .to_string()
            .contains("DESIRED_STATE must be baseline or per-key"));
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
