//! root-access-revoker's configuration: the common part, the one root-access setting it shares
//! with policy-drift, and its own switches.

use shared::config::FunctionConfig;
use shared::config::{self, CommonConfig, Env};
use shared::policy::baseline::{self, BaselineSource};
use shared::policy::evaluate::{access, Access};

#[derive(Clone, Debug)]
pub struct Config {
    pub common: CommonConfig,
    /// `ROOT_ACCESS` (or what `BASELINE_POLICY` grants the root): the same setting policy-drift
    /// restores, so the two never fight. When on, the revoker does nothing.
    pub root_access: bool,
    /// The roles that must keep administering every key once the root is gone.
    pub admin_role_arns: Vec<String>,
    /// Also remove `Principal: "*"` statements limited only by `kms:CallerAccount`.
    pub remove_account_wide: bool,
    /// Ask IAM Access Analyzer to prove the admin keeps `kms:PutKeyPolicy` before each write.
    pub access_analyzer_proof: bool,
}

impl FunctionConfig for Config {
    fn read(env: &mut Env<'_>) -> Config {
        let common = CommonConfig::read(env);
        let (root_access, admin_role_arns) = match config::read_baseline(env) {
            BaselineSource::Parts(parts) => (parts.root_access, parts.admin_role_arns),
            BaselineSource::Document(document) => from_document(env, &common, &document),
        };
        Config {
            common,
            root_access,
            admin_role_arns,
            remove_account_wide: env.bool("REMOVE_ACCOUNT_WIDE_STATEMENTS", false),
            access_analyzer_proof: env.bool("ACCESS_ANALYZER_PROOF", false),
        }
    }

    fn problems(&self) -> Vec<String> {
        if !self.root_access && self.admin_role_arns.is_empty() {
            vec!["root-access-revoker removes the account root only when an admin role keeps control: set KMS_ADMIN_ROLE_ARNS (or keep ROOT_ACCESS=true)".into()]
        } else {
            Vec::new()
        }
    }

    fn common(&self) -> &CommonConfig {
        &self.common
    }
}

/// A complete baseline says both things itself: whether the root may administer keys, and
/// which roles may (those it allows `kms:PutKeyPolicy` outright).
fn from_document(env: &mut Env<'_>, common: &CommonConfig, document: &str) -> (bool, Vec<String>) {
    let rendered = match baseline::render(
        &BaselineSource::Document(document.to_string()),
        &common.account_id,
        &common.region,
        "aws",
    ) {
        Ok(rendered) => rendered,
        Err(problem) => {
            env.problem(problem);
            return (true, Vec::new());
        }
    };
    let root = format!("arn:aws:iam::{}:root", common.account_id);
    let root_access = matches!(
        access(&rendered.policy, &root, "kms:PutKeyPolicy"),
        Access::Allowed | Access::ViaIam
    );
    let mut admins: Vec<String> = rendered
        .policy
        .statements
        .iter()
        .filter_map(|s| s.body.principal.as_ref())
        .filter_map(|p| p.get("AWS"))
        .flatten()
        .filter(|arn| arn.contains(":role/"))
        .filter(|arn| access(&rendered.policy, arn, "kms:PutKeyPolicy") == Access::Allowed)
        .cloned()
        .collect();
    admins.sort();
    admins.dedup();
    (root_access, admins)
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::config::ConfigError;

    fn load(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let self_role = "arn:aws:iam::111122223333:role/root-access-revoker";
        Config::from_lookup(&shared::testing::env(self_role, pairs))
    }

    #[test]
    fn root_access_is_the_setting_policy_drift_reads() {
        let on = load(&[]).unwrap();
        assert!(on.root_access);
        let off = load(&[
            ("ROOT_ACCESS", "false"),
            (
                "KMS_ADMIN_ROLE_ARNS",
                "arn:aws:iam::111122223333:role/kms-admin",
            ),
        ])
        .unwrap();
        assert!(!off.root_access);
        assert_eq!(
            off.admin_role_arns,
            ["arn:aws:iam::111122223333:role/kms-admin"]
        );
        assert!(!off.remove_account_wide && !off.access_analyzer_proof);
    }

    #[test]
    fn root_off_without_an_admin_role_is_refused() {
        let err = load(&[("ROOT_ACCESS", "false")]).unwrap_err();
        assert!(err.to_string().contains("set KMS_ADMIN_ROLE_ARNS"), "{err}");
        let err = load(&[("ACCESS_ANALYZER_PROOF", "perhaps")]).unwrap_err();
        assert!(err.to_string().contains("ACCESS_ANALYZER_PROOF"), "{err}");
    }

    #[test]
    fn a_baseline_document_says_whether_root_stays_and_who_administers() {
        let document = r#"{"Version":"2012-10-17","Statement":[
          {"Sid":"Admin","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::${AccountId}:role/kms-admin"},"Action":"kms:*","Resource":"*"},
          {"Sid":"Users","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::${AccountId}:role/app"},"Action":"kms:Decrypt","Resource":"*"}]}"#;
        let config = load(&[("BASELINE_POLICY", document)]).unwrap();
        assert!(!config.root_access);
        assert_eq!(
            config.admin_role_arns,
            ["arn:aws:iam::111122223333:role/kms-admin"]
        );
    }
}
