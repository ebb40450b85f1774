//! `explain KEY`: who can do what with a key. Each principal its policy names is put to the
//! same evaluator the lockout checks use, action by action; what only conditions allow is
//! shown with them; grants are listed with their constraints. Another account and everyone
//! (`*`) are flagged.

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::Value;
use shared::aws::grants::{list_grants, ExistingGrant, Grantee};
use shared::aws::kms::{aliases, describe_key, key_policy};
use shared::base::text;
use shared::policy::evaluate::{access, Decision};
use shared::policy::model::{action_matches, Effect, Policy, Statement};
use shared::GuardrailError;

/// Every KMS action a key policy can allow on a key (the KMS permissions reference).
pub const KEY_ACTIONS: &[&str] = &[
    "kms:CancelKeyDeletion",
    "kms:CreateAlias",
    "kms:CreateGrant",
    "kms:Decrypt",
    "kms:DeleteAlias",
    "kms:DeleteImportedKeyMaterial",
    "kms:DeriveSharedSecret",
    "kms:DescribeKey",
    "kms:DisableKey",
    "kms:DisableKeyRotation",
    "kms:EnableKey",
    "kms:EnableKeyRotation",
    "kms:Encrypt",
    "kms:GenerateDataKey",
    "kms:GenerateDataKeyPair",
    "kms:GenerateDataKeyPairWithoutPlaintext",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:GenerateMac",
    "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:GetParametersForImport",
    "kms:GetPublicKey",
    "kms:ImportKeyMaterial",
    "kms:ListGrants",
    "kms:ListKeyPolicies",
    "kms:ListKeyRotations",
    "kms:ListResourceTags",
    "kms:PutKeyPolicy",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
    "kms:ReplicateKey",
    "kms:RetireGrant",
    "kms:RevokeGrant",
    "kms:RotateKeyOnDemand",
    "kms:ScheduleKeyDeletion",
    "kms:Sign",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:UpdateAlias",
    "kms:UpdateKeyDescription",
    "kms:UpdatePrimaryRegion",
    "kms:Verify",
    "kms:VerifyMac",
];

#[derive(Debug, Serialize)]
pub struct Explanation {
    pub key_arn: String,
    pub key_id: String,
    pub account: String,
    pub state: String,
    pub aliases: Vec<String>,
    pub principals: Vec<Who>,
    pub grants: Vec<GrantView>,
    pub cross_account: usize,
    pub public: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PrincipalKind {
    /// An IAM principal or an account.
    Aws,
    /// An AWS service (`Principal: {"Service": ...}`).
    Service,
    /// `*`: anyone, in any account, unless conditions say otherwise.
    Everyone,
}

/// What one principal of the key policy may do.
#[derive(Debug, Serialize)]
pub struct Who {
    pub principal: String,
    pub kind: PrincipalKind,
    /// Allowed by the key policy alone.
    pub allowed: Vec<String>,
    /// Allowed to the account: its IAM policies decide who in it may.
    pub through_iam: Vec<String>,
    /// Allowed only when the statement's conditions hold.
    pub conditional: Vec<Conditional>,
    /// Refused by a Deny that applies or may apply.
    pub denied: Vec<String>,
    pub cross_account: bool,
    pub public: bool,
}

#[derive(Debug, Serialize)]
pub struct Conditional {
    pub statement: String,
    pub actions: Vec<String>,
    pub conditions: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct GrantView {
    pub grant_id: String,
    pub name: Option<String>,
    pub grantee: String,
    pub operations: Vec<String>,
    pub constraints: Vec<String>,
    pub retiring: Option<String>,
    pub cross_account: bool,
}

pub async fn explain(
    kms: &aws_sdk_kms::Client,
    identifier: &str,
) -> Result<Explanation, GuardrailError> {
    let key = describe_key(kms, identifier).await?;
    let text = key_policy(kms, key.arn.as_str()).await?;
    let policy = Policy::parse(&text).map_err(|e| {
        GuardrailError::InvalidEvent(format!(
            "the key policy of {} is not readable: {e}",
            key.arn
        ))
    })?;
    let grants = list_grants(kms, key.arn.as_str()).await?;
    let aliases = aliases(kms, &key.key_id).await?;
    let mut explanation = of_policy(&key.account, &policy, &grants);
    explanation.key_arn = key.arn.to_string();
    explanation.key_id = key.key_id.clone();
    explanation.state = key.state.as_str().to_string();
    explanation.aliases = aliases;
    Ok(explanation)
}

/// The explanation of `policy` and `grants` on a key of `account`: pure, from the evaluator.
pub fn of_policy(account: &str, policy: &Policy, grants: &[ExistingGrant]) -> Explanation {
    let mut principals: Vec<Who> = named_principals(policy)
        .into_iter()
        .map(|(kind, principal)| who(account, policy, kind, &principal))
        .collect();
    principals.retain(|w| {
        !(w.allowed.is_empty() && w.through_iam.is_empty() && w.conditional.is_empty())
    });
    let grants: Vec<GrantView> = grants.iter().map(|g| grant_view(account, g)).collect();
    Explanation {
        key_arn: String::new(),
        key_id: String::new(),
        account: account.to_string(),
        state: String::new(),
        aliases: Vec::new(),
        cross_account: principals.iter().filter(|w| w.cross_account).count()
            + grants.iter().filter(|g| g.cross_account).count(),
        public: principals.iter().filter(|w| w.public).count(),
        principals,
        grants,
    }
}

/// Every principal an Allow statement names, in policy order, once each.
fn named_principals(policy: &Policy) -> Vec<(PrincipalKind, String)> {
    let mut seen = BTreeSet::new();
    let mut named = Vec::new();
    for statement in &policy.statements {
        let body = &statement.body;
        if body.effect != Effect::Allow {
            continue;
        }
        for (kind_name, values) in body.principal.iter().flatten() {
            for value in values {
                let kind = match (kind_name.as_str(), value.as_str()) {
                    (_, "*") => PrincipalKind::Everyone,
                    ("Service", _) => PrincipalKind::Service,
                    _ => PrincipalKind::Aws,
                };
                if seen.insert((kind_name.clone(), value.clone())) {
                    named.push((kind, value.clone()));
                }
            }
        }
    }
    named
}

fn who(account: &str, policy: &Policy, kind: PrincipalKind, principal: &str) -> Who {
    let mut who = Who {
        principal: if kind == PrincipalKind::Aws {
            principal_arn(principal)
        } else {
            principal.to_string()
        },
        kind,
        allowed: Vec::new(),
        through_iam: Vec::new(),
        conditional: Vec::new(),
        denied: Vec::new(),
        cross_account: kind == PrincipalKind::Aws
            && principal_account(principal).is_some_and(|a| a != account),
        public: kind == PrincipalKind::Everyone,
    };
    let naming: Vec<&Statement> = policy
        .statements
        .iter()
        .filter(|s| s.body.effect == Effect::Allow && names(s, principal))
        .collect();
    // The evaluator decides an IAM principal; a service or `*` is read from its statements.
    if kind == PrincipalKind::Aws {
        let evaluated = principal_arn(principal);
        for action in KEY_ACTIONS {
            match access(policy, &evaluated, action).decision() {
                Decision::Allowed => who.allowed.push(action.to_string()),
                Decision::ViaIam => who.through_iam.push(action.to_string()),
                Decision::Denied => who.denied.push(action.to_string()),
                Decision::NotAllowed => {}
            }
        }
    }
    for statement in naming {
        let actions: Vec<String> = KEY_ACTIONS
            .iter()
            .filter(|a| covers(statement, a))
            .map(|a| a.to_string())
            .collect();
        if actions.is_empty() {
            continue;
        }
        if statement.body.condition.is_empty() && kind != PrincipalKind::Aws {
            who.allowed.extend(actions);
        } else if !statement.body.condition.is_empty() {
            // What the evaluator already counts as allowed needs no condition to be.
            let actions: Vec<String> = actions
                .into_iter()
                .filter(|a| !who.allowed.contains(a) && !who.through_iam.contains(a))
                .collect();
            if !actions.is_empty() {
                who.conditional.push(Conditional {
                    statement: statement.label(),
                    actions,
                    conditions: conditions(&statement.raw),
                });
            }
        }
    }
    who.allowed.sort();
    who.allowed.dedup();
    who
}

fn names(statement: &Statement, principal: &str) -> bool {
    statement
        .body
        .principal
        .iter()
        .flatten()
        .any(|(_, values)| values.contains(principal))
}

fn covers(statement: &Statement, action: &str) -> bool {
    let body = &statement.body;
    let resource_is_key = body.resource.as_ref().is_none_or(|r| r.contains("*"));
    let in_actions = match (&body.action, &body.not_action) {
        (Some(actions), _) => actions.iter().any(|p| action_matches(p, action)),
        (None, Some(not)) => !not.iter().any(|p| action_matches(p, action)),
        (None, None) => false,
    };
    resource_is_key && in_actions
}

/// `StringEquals kms:CallerAccount = 111122223333`, one per condition key, as the statement
/// spells them (the parsed form keeps keys in lower case).
fn conditions(statement: &Value) -> Vec<String> {
    let Some(operators) = statement.get("Condition").and_then(Value::as_object) else {
        return Vec::new();
    };
    let value = |v: &Value| match v {
        Value::String(s) => text::one_line(s, 80),
        other => text::one_line(&other.to_string(), 80),
    };
    operators
        .iter()
        .flat_map(|(operator, keys)| {
            let keys = keys.as_object().cloned().unwrap_or_default();
            keys.into_iter().map(move |(key, values)| {
                let values: Vec<String> = match &values {
                    Value::Array(list) => list.iter().map(value).collect(),
                    one => vec![value(one)],
                };
                format!(
                    "{} {} = {}",
                    text::one_line(operator, 60),
                    text::one_line(&key, 80),
                    values.join(" | ")
                )
            })
        })
        .collect()
}

/// The account of an AWS principal value: a bare account id or an ARN's account field.
fn principal_account(principal: &str) -> Option<&str> {
    if principal.len() == 12 && principal.bytes().all(|b| b.is_ascii_digit()) {
        return Some(principal);
    }
    principal.split(':').nth(4).filter(|a| !a.is_empty())
}

/// The ARN the evaluator is asked about: a bare account id is that account's root.
fn principal_arn(principal: &str) -> String {
    if principal.len() == 12 && principal.bytes().all(|b| b.is_ascii_digit()) {
        format!("arn:aws:iam::{principal}:root")
    } else {
        principal.to_string()
    }
}

fn grant_view(account: &str, grant: &ExistingGrant) -> GrantView {
    let grantee_account = |g: &Grantee| match g {
        Grantee::Principal(p) => principal_account(p).map(str::to_string),
        Grantee::Service(_) => None,
    };
    let constraints = &grant.constraints;
    let mut shown = Vec::new();
    for (k, v) in &constraints.encryption_context_equals {
        shown.push(format!(
            "encryption context {} equals {}",
            text::value(k),
            text::value(v)
        ));
    }
    for (k, v) in &constraints.encryption_context_subset {
        shown.push(format!(
            "encryption context includes {}={}",
            text::value(k),
            text::value(v)
        ));
    }
    if let Some(source) = &constraints.source_arn {
        shown.push(format!("source ARN {}", text::value(source)));
    }
    GrantView {
        grant_id: text::value(&grant.grant_id),
        name: grant.name.as_deref().map(text::value),
        grantee: grant
            .grantee
            .as_ref()
            .map(|g| text::value(g.id()))
            .unwrap_or_else(|| "(none)".into()),
        operations: grant.operations.iter().map(|o| text::value(o)).collect(),
        constraints: shown,
        retiring: grant.retiring.as_ref().map(|g| text::value(g.id())),
        cross_account: grant
            .grantee
            .as_ref()
            .and_then(grantee_account)
            .is_some_and(|a| a != account),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn explained(policy: &str) -> Explanation {
        of_policy("111122223333", &Policy::parse(policy).unwrap(), &[])
    }

    #[test]
    fn a_service_is_read_from_its_statement_and_a_condition_keeps_it_conditional() {
        let e = explained(
            r#"{"Version":"2012-10-17","Statement":[
              {"Sid":"Logs","Effect":"Allow","Principal":{"Service":"logs.eu-west-1.amazonaws.com"},"Action":["kms:Encrypt*","kms:Decrypt"],"Resource":"*","Condition":{"ArnLike":{"kms:EncryptionContext:aws:logs:arn":"arn:aws:logs:eu-west-1:111122223333:*"}}},
              {"Sid":"Backup","Effect":"Allow","Principal":{"Service":"backup.amazonaws.com"},"Action":"kms:DescribeKey","Resource":"*"}]}"#,
        );
        let logs = &e.principals[0];
        assert_eq!(logs.kind, PrincipalKind::Service);
        assert!(logs.allowed.is_empty());
        assert_eq!(logs.conditional[0].actions, ["kms:Decrypt", "kms:Encrypt"]);
        assert_eq!(
            logs.conditional[0].conditions,
            ["ArnLike kms:EncryptionContext:aws:logs:arn = arn:aws:logs:eu-west-1:111122223333:*"]
        );
        let backup = &e.principals[1];
        assert_eq!(backup.allowed, ["kms:DescribeKey"]);
        assert!(!backup.cross_account && !backup.public);
        assert_eq!((e.cross_account, e.public), (0, 0));
    }

    #[test]
    fn not_action_covers_every_other_action_and_a_bare_account_is_its_root() {
        let e = explained(
            r#"{"Version":"2012-10-17","Statement":[
              {"Effect":"Allow","Principal":{"AWS":"444455556666"},"NotAction":["kms:PutKeyPolicy","kms:ScheduleKeyDeletion"],"Resource":"*"}]}"#,
        );
        let other = &e.principals[0];
        assert_eq!(other.principal, "arn:aws:iam::444455556666:root");
        assert!(other.cross_account);
        assert_eq!(other.through_iam.len(), KEY_ACTIONS.len() - 2);
        assert!(!other.through_iam.contains(&"kms:PutKeyPolicy".to_string()));
        assert_eq!(e.cross_account, 1);
    }
}
