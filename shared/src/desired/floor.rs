//! The floor: what every managed key keeps whatever its record says. A change by an approved
//! deployer that breaks it is not recorded; a key whose state breaks it is not enrolled.

use std::collections::BTreeSet;

use serde::Deserialize;

use crate::base::arn::{is_account_id, is_unique_id, Arn};
use crate::base::text;
use crate::policy::evaluate::lockout_problems;
use crate::policy::model::{Effect, Policy, StatementBody};

/// A principal that must keep some actions on one key (the Vault unseal role keeps
/// `kms:Encrypt`, `kms:Decrypt` and `kms:DescribeKey`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct KeyKeeper {
    pub principal: String,
    pub actions: Vec<String>,
}

/// The invariants of every key.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Floor {
    /// Whether the account root may be named (`ROOT_ACCESS`).
    pub root_access: bool,
    /// Principals that must keep actions on every key: the admins. Access through the account
    /// principal counts for them (IAM grants it).
    pub keepers: Vec<(String, Vec<String>)>,
    /// The actions the function's own principal in the key's account must keep.
    pub self_actions: Vec<String>,
    /// Accounts besides the key's own whose principals may be named (`ALLOWED_ACCOUNTS`).
    pub allowed_accounts: BTreeSet<String>,
    /// The organization `Principal: "*"` may be restricted to (`ORGANIZATION_ID`).
    pub organization_id: Option<String>,
}

/// Condition keys that restrict `Principal: "*"` to known callers.
const RESTRICTING_KEYS: &[&str] = &[
    "kms:calleraccount",
    "aws:principalaccount",
    "aws:principalorgid",
    "aws:principalorgpaths",
    "aws:principalarn",
    "aws:sourceaccount",
    "aws:sourcearn",
    "aws:sourceorgid",
];

impl Floor {
    /// Every way `policy`, on a key of `account`, breaks the floor or takes `key_keepers`'
    /// actions away, one sentence each; empty when it holds. `acting_as`: the function's own
    /// principal there (its role, or the member role). The key's own keepers must be named by
    /// the policy itself (access through IAM is not seen here, so it does not count).
    pub fn violations(
        &self,
        policy: &Policy,
        account: &str,
        acting_as: &str,
        key_keepers: &[KeyKeeper],
    ) -> Vec<String> {
        let mut out = Vec::new();
        for statement in policy
            .statements
            .iter()
            .filter(|s| s.body.effect == Effect::Allow)
        {
            self.statement_violations(&statement.body, &statement.label(), account, &mut out);
        }
        let requirements: Vec<(&str, &str)> = self
            .keepers
            .iter()
            .flat_map(|(p, actions)| actions.iter().map(move |a| (p.as_str(), a.as_str())))
            .chain(self.self_actions.iter().map(|a| (acting_as, a.as_str())))
            .collect();
        out.extend(lockout_problems(policy, &requirements, true));
        let requirements: Vec<(&str, &str)> = key_keepers
            .iter()
            .flat_map(|k| {
                k.actions
                    .iter()
                    .map(move |a| (k.principal.as_str(), a.as_str()))
            })
            .collect();
        out.extend(lockout_problems(policy, &requirements, false));
        out
    }

    fn statement_violations(
        &self,
        body: &StatementBody,
        label: &str,
        account: &str,
        out: &mut Vec<String>,
    ) {
        let Some(principals) = &body.principal else {
            return;
        };
        for (kind, values) in principals {
            if kind != "AWS" {
                continue;
            }
            for principal in values {
                if principal == "*" {
                    if let Some(problem) = self.wildcard_problem(body, account) {
                        out.push(format!(
                            "statement {label} allows Principal \"*\" {problem}"
                        ));
                    }
                    continue;
                }
                if is_unique_id(principal) {
                    continue;
                }
                let owner = if is_account_id(principal) {
                    principal.clone()
                } else {
                    match Arn::parse(principal) {
                        Ok(arn) => arn.account().to_string(),
                        Err(_) => continue,
                    }
                };
                if owner == account {
                    if principal == account && !self.root_access {
                        out.push(format!("statement {label} names the account root ({account}) while root access is off (ROOT_ACCESS=false)"));
                    }
                } else if !self.allowed_accounts.contains(&owner) {
                    out.push(format!(
                        "statement {label} names {} of account {owner}, which is neither the key's account nor in ALLOWED_ACCOUNTS",
                        text::value(principal)
                    ));
                }
            }
        }
    }

    /// Why `Principal: "*"` in `body` is not restricted enough, if it is not.
    fn wildcard_problem(&self, body: &StatementBody, account: &str) -> Option<String> {
        let mut restricted = false;
        for keys in body.condition.values() {
            for (key, entries) in keys {
                if !RESTRICTING_KEYS.contains(&key.as_str()) {
                    continue;
                }
                restricted = true;
                let values = entries.iter().flatten();
                match key.as_str() {
                    "kms:calleraccount" | "aws:principalaccount" | "aws:sourceaccount" => {
                        for value in values {
                            if value != account && !self.allowed_accounts.contains(value) {
                                return Some(format!(
                                    "for account {}, which is neither the key's account nor in ALLOWED_ACCOUNTS",
                                    text::value(value)
                                ));
                            }
                        }
                    }
                    "aws:principalorgid" => {
                        for value in values {
                            if self.organization_id.as_deref() != Some(value.as_str()) {
                                return Some(format!(
                                    "for organization {}, which is not ORGANIZATION_ID",
                                    text::value(value)
                                ));
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        (!restricted).then(|| {
            "without a condition that restricts who may call (kms:CallerAccount, aws:PrincipalOrgID, aws:PrincipalAccount, aws:PrincipalArn, aws:SourceAccount or aws:SourceArn)".to_string()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACCOUNT: &str = "111122223333";
    const SELF_ROLE: &str = "arn:aws:iam::111122223333:role/policy-drift";
    const VAULT: &str = "arn:aws:iam::111122223333:role/vault-unseal";

    fn floor(root_access: bool) -> Floor {
        Floor {
            root_access,
            keepers: Vec::new(),
            self_actions: vec![
                "kms:PutKeyPolicy".to_string(),
                "kms:GetKeyPolicy".to_string(),
            ],
            allowed_accounts: BTreeSet::from(["444455556666".to_string()]),
            organization_id: Some("o-abc123".to_string()),
        }
    }

    fn policy(statements: &str) -> Policy {
        Policy::parse(&format!(r#"{{"Version":"2012-10-17","Statement":[
            {{"Sid":"Self","Effect":"Allow","Principal":{{"AWS":"{SELF_ROLE}"}},"Action":"kms:*","Resource":"*"}}{statements}]}}"#)).unwrap()
    }

    #[test]
    fn a_policy_that_keeps_every_rule_passes() {
        let p = policy(&format!(
            r#",{{"Sid":"Vault","Effect":"Allow","Principal":{{"AWS":"{VAULT}"}},"Action":["kms:Encrypt","kms:Decrypt","kms:DescribeKey"],"Resource":"*"}},
            {{"Sid":"Partner","Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::444455556666:role/reader"}},"Action":"kms:Decrypt","Resource":"*"}},
            {{"Sid":"Org","Effect":"Allow","Principal":"*","Action":"kms:Decrypt","Resource":"*","Condition":{{"StringEquals":{{"aws:PrincipalOrgID":"o-abc123"}}}}}}"#
        ));
        let vault = KeyKeeper {
            principal: VAULT.to_string(),
            actions: vec![
                "kms:Encrypt".into(),
                "kms:Decrypt".into(),
                "kms:DescribeKey".into(),
            ],
        };
        assert_eq!(
            floor(false).violations(&p, ACCOUNT, SELF_ROLE, &[vault]),
            Vec::<String>::new()
        );
    }

    #[test]
    fn root_is_refused_only_when_root_access_is_off() {
        let p = policy(
            r#",{"Sid":"Root","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}"#,
        );
        let problems = floor(false).violations(&p, ACCOUNT, SELF_ROLE, &[]);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].contains("\"Root\" names the account root"),
            "{problems:?}"
        );
        assert!(floor(true)
            .violations(&p, ACCOUNT, SELF_ROLE, &[])
            .is_empty());
    }

    #[test]
    fn an_open_wildcard_and_a_foreign_account_are_refused() {
        let p = policy(
            r#",{"Sid":"Open","Effect":"Allow","Principal":"*","Action":"kms:Decrypt","Resource":"*"},
            {"Sid":"OtherOrg","Effect":"Allow","Principal":"*","Action":"kms:Decrypt","Resource":"*","Condition":{"StringEquals":{"aws:PrincipalOrgID":"o-evil"}}},
            {"Sid":"Stranger","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::999988887777:role/x"},"Action":"kms:Decrypt","Resource":"*"}"#,
        );
        let problems = floor(true)
            .violations(&p, ACCOUNT, SELF_ROLE, &[])
            .join("\n");
        assert!(
            problems.contains("\"Open\" allows Principal \"*\" without a condition"),
            "{problems}"
        );
        assert!(
            problems.contains("\"OtherOrg\" allows Principal \"*\" for organization o-evil"),
            "{problems}"
        );
        assert!(
            problems.contains(
                "\"Stranger\" names arn:aws:iam::999988887777:role/x of account 999988887777"
            ),
            "{problems}"
        );
    }

    #[test]
    fn taking_the_unseal_roles_decrypt_away_breaks_its_keys_floor() {
        // The deployer's policy names the Vault role for Encrypt and DescribeKey only: Decrypt
        // went away implicitly, and Vault could no longer unseal.
        let p = policy(&format!(
            r#",{{"Sid":"Vault","Effect":"Allow","Principal":{{"AWS":"{VAULT}"}},"Action":["kms:Encrypt","kms:DescribeKey"],"Resource":"*"}}"#
        ));
        let vault = KeyKeeper {
            principal: VAULT.to_string(),
            actions: vec![
                "kms:Encrypt".into(),
                "kms:Decrypt".into(),
                "kms:DescribeKey".into(),
            ],
        };
        let problems = floor(true).violations(&p, ACCOUNT, SELF_ROLE, &[vault]);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("kms:Decrypt"), "{problems:?}");
    }

    #[test]
    fn the_functions_role_must_keep_the_policy_in_hand() {
        let p = Policy::parse(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/app"},"Action":"kms:Decrypt","Resource":"*"}]}"#).unwrap();
        let problems = floor(false)
            .violations(&p, ACCOUNT, SELF_ROLE, &[])
            .join("\n");
        assert!(problems.contains("kms:PutKeyPolicy"), "{problems}");
    }
}
