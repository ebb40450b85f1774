//! The pure checks of one replica: its key policy against the primary's, and whether S3
//! replication, running as a replication role, may encrypt with it.
//!
//! Replicas share key material with their primary but not key policies, grants, aliases, tags
//! or enabled state (<https://docs.aws.amazon.com/kms/latest/developerguide/multi-region-keys-overview.html>),
//! so each is read and judged on its own.

use serde::Serialize;
use serde_json::Value;
use shared::aws::grants::{ExistingGrant, Grantee};
use shared::policy::evaluate::{access_in_context, Access, RequestContext};
use shared::policy::model::Policy;

/// The actions S3 calls on the destination key as the replication role
/// (<https://docs.aws.amazon.com/AmazonS3/latest/userguide/replication-config-for-kms-objects.html>).
pub const REPLICATION_ACTIONS: [&str; 2] = ["kms:Encrypt", "kms:GenerateDataKey"];

/// The primary's policy as it would read in `to`: every Region name `from` inside a string
/// value (ARNs, `kms:ViaService` values such as `s3.eu-west-1.amazonaws.com`) becomes `to`.
/// Keys are left alone: condition keys and element names never hold a Region.
pub fn for_region(document: &Value, from: &str, to: &str) -> Value {
    match document {
        Value::String(text) => Value::String(replace_region(text, from, to)),
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| for_region(v, from, to)).collect())
        }
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), for_region(v, from, to)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Replaces `from` only where it stands as a whole Region name: `us-east-1` must not turn
/// `us-east-10` into `us-west-20`.
fn replace_region(text: &str, from: &str, to: &str) -> String {
    if from.is_empty() {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(from) {
        let before = rest[..at].chars().next_back();
        let after = rest[at + from.len()..].chars().next();
        let whole = !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-')
            && !after.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-');
        out.push_str(&rest[..at]);
        out.push_str(if whole { to } else { from });
        rest = &rest[at + from.len()..];
    }
    out.push_str(rest);
    out
}

/// How a replica's key policy compares with its primary's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum PolicyCheck {
    Matches,
    /// Differs in meaning, after the Region is substituted. `diff` is `-` primary only,
    /// `+` replica only.
    Drift {
        summary: String,
        diff: String,
    },
    Unreadable {
        reason: String,
    },
}

pub fn compare_policies(
    primary: &str,
    primary_region: &str,
    replica: &str,
    replica_region: &str,
) -> PolicyCheck {
    let expected = serde_json::from_str::<Value>(primary)
        .map_err(|e| format!("the primary's key policy is not JSON: {e}"))
        .and_then(|v| {
            Policy::from_value(&for_region(&v, primary_region, replica_region))
                .map_err(|e| format!("the primary's key policy cannot be read: {e}"))
        });
    let actual =
        Policy::parse(replica).map_err(|e| format!("the replica's key policy cannot be read: {e}"));
    let (expected, actual) = match (expected, actual) {
        (Ok(e), Ok(a)) => (e, a),
        (Err(reason), _) | (_, Err(reason)) => return PolicyCheck::Unreadable { reason },
    };
    let diff = actual.diff_against(&expected);
    if diff.is_empty() {
        return PolicyCheck::Matches;
    }
    PolicyCheck::Drift {
        summary: format!(
            "{} statement(s) of the primary missing, {} extra, {} changed{}",
            diff.missing.len(),
            diff.extra.len(),
            diff.changed.len(),
            if diff.version.is_some() {
                ", different Version"
            } else {
                ""
            }
        ),
        diff: diff.to_string(),
    }
}

/// What the replica lets a replication role do with one action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The key policy names the role for requests through S3 in the replica's Region.
    Allowed,
    /// The key policy does not, but a grant to the role covers the action.
    ViaGrant,
    /// The key policy leaves it to IAM (the account principal): the role's IAM policy decides.
    ViaIam,
    /// A Deny in the key policy applies; it overrides every Allow and grant.
    Denied,
    /// Neither the key policy nor a grant allows it.
    NotAllowed,
}

impl Verdict {
    /// Whether replication can count on it; `ViaIam` is the role's IAM policy's business.
    pub fn is_problem(self) -> bool {
        matches!(self, Verdict::Denied | Verdict::NotAllowed)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoleAccess {
    pub role: String,
    pub encrypt: Verdict,
    pub generate_data_key: Verdict,
    /// Why, for an action that is a problem: the statement in the way or the missing Allow.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl RoleAccess {
    pub fn is_problem(&self) -> bool {
        self.encrypt.is_problem() || self.generate_data_key.is_problem()
    }
}

/// What `policy` and `grants` let `role` do when S3 replication encrypts into the replica's
/// Region: the request comes through `s3.REGION.amazonaws.com` from the role's own account.
pub fn role_access(
    policy: &Policy,
    role: &str,
    region: &str,
    account: &str,
    grants: &[ExistingGrant],
) -> RoleAccess {
    let context = RequestContext::new()
        .with("kms:ViaService", format!("s3.{region}.amazonaws.com"))
        .with("kms:CallerAccount", account);
    let mut details = Vec::new();
    let mut verdict = |action: &str| {
        let operation = action.trim_start_matches("kms:");
        let granted = grants.iter().any(|g| {
            g.grantee.as_ref() == Some(&Grantee::Principal(role.to_string()))
                && g.operations.contains(operation)
        });
        match access_in_context(policy, role, action, &context) {
            Access::Allowed => Verdict::Allowed,
            Access::Denied { statement } => {
                details.push(format!(
                    "{action}: Deny statement {statement} applies, and an explicit Deny overrides every Allow and grant"
                ));
                Verdict::Denied
            }
            _ if granted => Verdict::ViaGrant,
            Access::ViaIam => Verdict::ViaIam,
            Access::NotAllowed { reason } => {
                details.push(format!(
                    "{action}: {reason}; no grant to the role covers it"
                ));
                Verdict::NotAllowed
            }
        }
    };
    let encrypt = verdict(REPLICATION_ACTIONS[0]);
    let generate_data_key = verdict(REPLICATION_ACTIONS[1]);
    RoleAccess {
        role: role.to_string(),
        encrypt,
        generate_data_key,
        detail: (!details.is_empty()).then(|| details.join("; ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::BTreeSet;

    const ROLE: &str = "arn:aws:iam::111122223333:role/s3-replication";
    const ACCOUNT: &str = "111122223333";

    fn policy(statements: Value) -> Policy {
        Policy::from_value(&json!({"Version": "2012-10-17", "Statement": statements})).unwrap()
    }

    fn admin() -> Value {
        json!({"Sid": "Admin", "Effect": "Allow",
               "Principal": {"AWS": "arn:aws:iam::111122223333:role/kms-admin"},
               "Action": "kms:*", "Resource": "*"})
    }

    fn replication(via: &str) -> Value {
        json!({"Sid": "Replication", "Effect": "Allow", "Principal": {"AWS": ROLE},
               "Action": ["kms:Encrypt", "kms:GenerateDataKey"], "Resource": "*",
               "Condition": {"StringEquals": {"kms:ViaService": via}}})
    }

    fn grant(role: &str, operations: &[&str]) -> ExistingGrant {
        ExistingGrant {
            grant_id: "g-1".into(),
            name: Some("s3-replication".into()),
            grantee: Some(Grantee::Principal(role.into())),
            retiring: None,
            operations: operations
                .iter()
                .map(|o| o.to_string())
                .collect::<BTreeSet<_>>(),
            constraints: Default::default(),
            issuing_account: Some(ACCOUNT.into()),
        }
    }

    #[test]
    fn the_region_is_replaced_only_where_it_stands_alone() {
        let primary = json!({"Statement": [{"Condition": {"StringEquals": {
            "kms:ViaService": ["s3.us-east-1.amazonaws.com", "s3.us-east-10.amazonaws.com"]}},
            "Resource": "arn:aws:kms:us-east-1:111122223333:key/mrk-1"}]});
        let replica = for_region(&primary, "us-east-1", "eu-west-2");
        assert_eq!(
            replica,
            json!({"Statement": [{"Condition": {"StringEquals": {
                "kms:ViaService": ["s3.eu-west-2.amazonaws.com", "s3.us-east-10.amazonaws.com"]}},
                "Resource": "arn:aws:kms:eu-west-2:111122223333:key/mrk-1"}]})
        );
    }

    #[test]
    fn a_replica_policy_that_says_the_same_in_its_own_region_matches() {
        let primary = json!({"Version": "2012-10-17", "Statement": [admin(), replication("s3.eu-west-1.amazonaws.com")]});
        // Other Sid order, other spelling of a one-item list: the same meaning.
        let replica = json!({"Version": "2012-10-17", "Statement": [
            replication("s3.us-west-2.amazonaws.com"), admin()]});
        assert_eq!(
            compare_policies(
                &primary.to_string(),
                "eu-west-1",
                &replica.to_string(),
                "us-west-2"
            ),
            PolicyCheck::Matches
        );
    }

    #[test]
    fn a_replica_policy_with_an_extra_grantee_is_drift_with_a_diff() {
        let primary = json!({"Version": "2012-10-17", "Statement": [admin()]});
        let replica = json!({"Version": "2012-10-17", "Statement": [admin(),
            {"Sid": "Outsider", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::444455556666:root"},
             "Action": "kms:Decrypt", "Resource": "*"}]});
        match compare_policies(
            &primary.to_string(),
            "eu-west-1",
            &replica.to_string(),
            "us-west-2",
        ) {
            PolicyCheck::Drift { summary, diff } => {
                assert!(
                    summary.starts_with("0 statement(s) of the primary missing, 1 extra"),
                    "{summary}"
                );
                assert!(diff.contains("444455556666"), "{diff}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_unreadable_replica_policy_is_said_to_be_unreadable() {
        let primary = json!({"Version": "2012-10-17", "Statement": [admin()]});
        assert!(matches!(
            compare_policies(&primary.to_string(), "eu-west-1", "{not json", "us-west-2"),
            PolicyCheck::Unreadable { reason } if reason.contains("replica")
        ));
    }

    #[test]
    fn a_via_service_allow_for_the_replicas_region_lets_the_role_encrypt() {
        let p = policy(json!([admin(), replication("s3.us-west-2.amazonaws.com")]));
        let access = role_access(&p, ROLE, "us-west-2", ACCOUNT, &[]);
        assert_eq!(
            (access.encrypt, access.generate_data_key),
            (Verdict::Allowed, Verdict::Allowed)
        );
        assert!(!access.is_problem());
    }

    #[test]
    fn a_via_service_allow_for_the_primarys_region_does_not_let_the_role_encrypt_in_the_replica() {
        let p = policy(json!([admin(), replication("s3.eu-west-1.amazonaws.com")]));
        let access = role_access(&p, ROLE, "us-west-2", ACCOUNT, &[]);
        assert_eq!(access.encrypt, Verdict::NotAllowed);
        assert!(access.is_problem());
        assert!(access
            .detail
            .unwrap()
            .contains("no grant to the role covers it"));
    }

    #[test]
    fn a_grant_to_the_role_makes_up_for_a_missing_allow_but_not_for_a_deny() {
        let grants = [grant(ROLE, &["Encrypt", "GenerateDataKey"])];
        let p = policy(json!([admin()]));
        let access = role_access(&p, ROLE, "us-west-2", ACCOUNT, &grants);
        assert_eq!(
            (access.encrypt, access.generate_data_key),
            (Verdict::ViaGrant, Verdict::ViaGrant)
        );

        let deny = json!({"Sid": "OnlyAdmins", "Effect": "Deny", "Principal": {"AWS": "*"},
            "Action": "kms:*", "Resource": "*",
            "Condition": {"StringNotEquals": {"aws:PrincipalArn": "arn:aws:iam::111122223333:role/kms-admin"}}});
        let p = policy(json!([admin(), deny]));
        let access = role_access(&p, ROLE, "us-west-2", ACCOUNT, &grants);
        assert_eq!(access.encrypt, Verdict::Denied);
        assert!(access.detail.unwrap().contains("\"OnlyAdmins\""));
    }

    #[test]
    fn a_grant_to_the_s3_service_or_another_role_does_not_let_the_role_encrypt() {
        let mut to_s3 = grant(ROLE, &["Encrypt", "GenerateDataKey"]);
        to_s3.grantee = Some(Grantee::Service("s3.amazonaws.com".into()));
        let grants = [
            to_s3,
            grant("arn:aws:iam::111122223333:role/other", &["Encrypt"]),
        ];
        let access = role_access(
            &policy(json!([admin()])),
            ROLE,
            "us-west-2",
            ACCOUNT,
            &grants,
        );
        assert_eq!(access.encrypt, Verdict::NotAllowed);
    }

    #[test]
    fn a_key_policy_that_delegates_to_iam_leaves_it_to_the_roles_iam_policy() {
        let root = json!({"Sid": "Root", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
            "Action": "kms:*", "Resource": "*"});
        let access = role_access(&policy(json!([root])), ROLE, "us-west-2", ACCOUNT, &[]);
        assert_eq!(access.encrypt, Verdict::ViaIam);
        assert!(!access.is_problem());
    }
}
