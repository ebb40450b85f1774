//! Taking the account root out of a key policy, on the document as written: pure.
//!
//! A root grant is a value of `Principal.AWS` in an Allow statement that names this account:
//! `arn:<partition>:iam::<ACCOUNT>:root` or the bare 12-digit id, alone or in a list. Only
//! those values go; a statement left with no principal at all goes with them. Deny statements
//! are never changed (removing a Deny widens access), and every statement that grants the root
//! nothing is kept exactly as written.
//!
//! The "account-wide" statement (`Principal: "*"` limited only by `kms:CallerAccount` = this
//! account, the full reference module's "EnableIAMPermissions") gives every principal of the
//! account what the root principal would let IAM give them, without any IAM policy: it is
//! always reported, and removed only when configured.

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::{Map, Value};
use shared::base::arn::is_account_id;
use shared::policy::kms_rules::MAX_POLICY_BYTES;
use shared::policy::model::{Effect, Policy, PolicyError, Statement, StatementBody};

/// One root value taken out of a statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RemovedGrant {
    /// The statement's Sid, or `Statement[i]` (its position in the input) when it has none.
    /// As written in the policy: pass it through `shared::base::text` before showing it.
    pub statement: String,
    /// The principal value as written (`arn:aws:iam::111122223333:root`, `111122223333`).
    pub value: String,
    /// The statement is gone: it named no other principal, or what was left of it was an
    /// account-wide statement and those are configured to go.
    pub statement_removed: bool,
}

/// The policy without the account root, and what was taken out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Revocation {
    /// The new policy: pretty JSON, or compact JSON when pretty would exceed KMS's size limit.
    pub document: String,
    pub removed: Vec<RemovedGrant>,
    /// Labels (Sid or `Statement[i]`) of the account-wide statements found, removed or not.
    pub account_wide: Vec<String>,
    /// The account-wide statements were removed (configured, and there were some).
    pub account_wide_removed: bool,
}

/// `policy_text` without this account's root principal and, when `remove_account_wide`, without
/// its account-wide statements. `None` when that changes nothing: the policy grants the root
/// nothing and there is no account-wide statement to remove. An `account` that is not a
/// 12-digit id names no root.
pub fn revoke_root(
    policy_text: &str,
    account: &str,
    remove_account_wide: bool,
) -> Result<Option<Revocation>, PolicyError> {
    let policy = Policy::parse(policy_text)?;
    let mut document: Value =
        serde_json::from_str(policy_text).map_err(|e| PolicyError(format!("not JSON: {e}")))?;

    let mut removed = Vec::new();
    let mut account_wide = Vec::new();
    let mut kept: Vec<Value> = Vec::with_capacity(policy.statements.len());
    for (index, statement) in policy.statements.iter().enumerate() {
        let stripped = strip_root(&statement.raw, account);
        let mut after = match &stripped {
            None => Some(statement.raw.clone()),
            Some(stripped) => stripped.statement.clone(),
        };
        // Judged after root is out: `{"AWS": [ROOT, "*"]}` limited to the account becomes
        // account-wide, and must not be left for the next run to find.
        let widest = match (&stripped, &after) {
            (None, _) => is_account_wide(&statement.body, account),
            (Some(_), Some(value)) => {
                statement_body(value).is_some_and(|b| is_account_wide(&b, account))
            }
            (Some(_), None) => false,
        };
        if widest {
            account_wide.push(label(index, statement));
            if remove_account_wide {
                after = None;
            }
        }
        if let Some(stripped) = stripped {
            removed.extend(stripped.values.into_iter().map(|value| RemovedGrant {
                statement: label(index, statement),
                value,
                statement_removed: after.is_none(),
            }));
        }
        kept.extend(after);
    }

    let account_wide_removed = remove_account_wide && !account_wide.is_empty();
    if removed.is_empty() && !account_wide_removed {
        return Ok(None);
    }
    let single_statement_kept = kept.len() == 1 && document["Statement"].is_object();
    document["Statement"] = if single_statement_kept {
        kept.remove(0)
    } else {
        Value::Array(kept)
    };
    Ok(Some(Revocation {
        document: render(&document),
        removed,
        account_wide,
        account_wide_removed,
    }))
}

/// Principals named by unique id (`AROA...` for a role, `AIDA...` for a user), sorted and
/// each once: what a key policy shows once the principal it named is deleted. A role created
/// again under the same name is a different principal, which such a policy does not name.
pub fn unique_id_principals(policy: &Policy) -> Vec<String> {
    let ids: BTreeSet<&String> = policy
        .statements
        .iter()
        .flat_map(|s| [&s.body.principal, &s.body.not_principal])
        .flatten()
        .filter_map(|kinds| kinds.get("AWS"))
        .flatten()
        .filter(|value| is_unique_id(value))
        .collect();
    ids.into_iter().cloned().collect()
}

/// IAM unique ids: a four-letter type prefix, then upper-case letters and digits (16 to 128
/// characters in all).
fn is_unique_id(value: &str) -> bool {
    (value.starts_with("AROA") || value.starts_with("AIDA"))
        && (16..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// Whether `value` (a `Principal.AWS` value as written) names `account`'s root principal.
pub fn names_root(value: &Value, account: &str) -> bool {
    match value {
        Value::String(s) => shared::policy::model::names_account(s, account),
        // The policy parser reads a number as its digits; a bare id may be written unquoted.
        Value::Number(n) => shared::policy::model::names_account(&n.to_string(), account),
        _ => false,
    }
}

/// An Allow to every principal (`"*"` or `{"AWS": "*"}`) whose only condition is
/// `StringEquals` `kms:CallerAccount` = `account`: every principal of the account, with no IAM
/// policy needed.
pub fn is_account_wide(body: &StatementBody, account: &str) -> bool {
    let everyone = body.principal.as_ref().is_some_and(|kinds| {
        kinds.len() == 1
            && kinds
                .get("AWS")
                .is_some_and(|values| values.len() == 1 && values.contains("*"))
    });
    let only_this_account = match body.condition.iter().collect::<Vec<_>>().as_slice() {
        [(operator, keys)] => {
            operator.eq_ignore_ascii_case("StringEquals")
                && keys.len() == 1
                && keys.get("kms:calleraccount").is_some_and(|entries| {
                    entries.len() == 1
                        && entries
                            .iter()
                            .all(|values| values.len() == 1 && values.contains(account))
                })
        }
        _ => false,
    };
    body.effect == Effect::Allow
        && body.not_principal.is_none()
        && everyone
        && only_this_account
        && is_account_id(account)
}

/// The account-wide statements of `policy` (see [`is_account_wide`]), by label: for reports
/// when there is nothing to revoke.
pub fn account_wide_statements(policy: &Policy, account: &str) -> Vec<String> {
    policy
        .statements
        .iter()
        .enumerate()
        .filter(|(_, s)| is_account_wide(&s.body, account))
        .map(|(index, s)| label(index, s))
        .collect()
}

/// The canonical form of one statement as written.
fn statement_body(raw: &Value) -> Option<StatementBody> {
    let wrapped = serde_json::json!({ "Statement": [raw] });
    let mut policy = Policy::from_value(&wrapped).ok()?;
    policy.statements.pop().map(|s| s.body)
}

/// The Sid as written, or the statement's position.
fn label(index: usize, statement: &Statement) -> String {
    match statement.sid.as_deref() {
        Some(sid) if !sid.is_empty() => sid.to_string(),
        _ => format!("Statement[{index}]"),
    }
}

struct Stripped {
    /// The statement without its root values; `None` when no principal is left.
    statement: Option<Value>,
    /// The root values taken out, as written.
    values: Vec<String>,
}

/// `raw` without the root values of its `Principal.AWS`, or `None` when it is not an Allow or
/// names no root.
fn strip_root(raw: &Value, account: &str) -> Option<Stripped> {
    if raw.get("Effect").and_then(Value::as_str) != Some("Allow") {
        return None;
    }
    let kinds = raw.get("Principal")?.as_object()?;
    let aws = kinds.get("AWS")?;
    let shown = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let (values, remaining): (Vec<String>, Option<Value>) = match aws {
        Value::Array(items) => {
            let (root, others): (Vec<&Value>, Vec<&Value>) =
                items.iter().partition(|v| names_root(v, account));
            let remaining =
                (!others.is_empty()).then(|| Value::Array(others.into_iter().cloned().collect()));
            (root.into_iter().map(shown).collect(), remaining)
        }
        single if names_root(single, account) => (vec![shown(single)], None),
        _ => return None,
    };
    if values.is_empty() {
        return None;
    }
    // Rebuilt rather than edited, so the principal types keep their order whatever map
    // serde_json is built with.
    let kinds: Map<String, Value> = kinds
        .iter()
        .filter_map(|(kind, values)| match (kind.as_str(), &remaining) {
            ("AWS", Some(others)) => Some((kind.clone(), others.clone())),
            ("AWS", None) => None,
            _ => Some((kind.clone(), values.clone())),
        })
        .collect();
    let statement = (!kinds.is_empty()).then(|| {
        let mut statement = raw.clone();
        statement["Principal"] = Value::Object(kinds);
        statement
    });
    Some(Stripped { statement, values })
}

/// Pretty JSON, unless the indentation alone would take it over KMS's size limit.
fn render(document: &Value) -> String {
    let pretty = serde_json::to_string_pretty(document).unwrap_or_default();
    if pretty.len() <= MAX_POLICY_BYTES {
        pretty
    } else {
        document.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ACCOUNT: &str = "111122223333";
    const ROOT: &str = "arn:aws:iam::111122223333:root";
    const ADMIN: &str = "arn:aws:iam::111122223333:role/kms-admin";
    const OTHER_ROOT: &str = "arn:aws:iam::444455556666:root";

    fn admin_statement() -> Value {
        json!({"Sid": "Admin", "Effect": "Allow", "Principal": {"AWS": ADMIN},
               "Action": "kms:*", "Resource": "*"})
    }

    fn text(statements: Vec<Value>) -> String {
        json!({"Version": "2012-10-17", "Statement": statements}).to_string()
    }

    fn statements(revocation: &Revocation) -> Vec<Value> {
        let document: Value = serde_json::from_str(&revocation.document).unwrap();
        document["Statement"].as_array().unwrap().clone()
    }

    fn revoked(statements: Vec<Value>) -> Revocation {
        revoke_root(&text(statements), ACCOUNT, false)
            .unwrap()
            .expect("a root grant")
    }

    fn grant(statement: &str, value: &str, statement_removed: bool) -> RemovedGrant {
        RemovedGrant {
            statement: statement.into(),
            value: value.into(),
            statement_removed,
        }
    }

    /// The full reference module's account-wide statement.
    fn enable_iam_permissions() -> Value {
        json!({"Sid": "EnableIAMPermissions", "Effect": "Allow", "Principal": {"AWS": "*"},
               "Action": "kms:*", "Resource": "*",
               "Condition": {"StringEquals": {"kms:CallerAccount": ACCOUNT}}})
    }

    #[test]
    fn given_root_alone_in_a_statement_when_revoked_then_the_statement_is_removed() {
        let r = revoked(vec![
            json!({"Sid": "EnableRootAccess", "Effect": "Allow", "Principal": {"AWS": ROOT},
                   "Action": "kms:*", "Resource": "*"}),
            admin_statement(),
        ]);
        assert_eq!(statements(&r), vec![admin_statement()]);
        assert_eq!(r.removed, vec![grant("EnableRootAccess", ROOT, true)]);
        assert!(r.account_wide.is_empty() && !r.account_wide_removed);
        assert!(r.document.contains('\n'), "pretty JSON");
    }

    #[test]
    fn given_root_in_a_list_with_others_when_revoked_then_only_root_is_removed_and_the_list_kept() {
        let r = revoked(vec![json!({"Sid": "Admins", "Effect": "Allow",
            "Principal": {"AWS": [ROOT, ADMIN, OTHER_ROOT]}, "Action": "kms:*", "Resource": "*"})]);
        assert_eq!(
            statements(&r),
            vec![json!({"Sid": "Admins", "Effect": "Allow",
                "Principal": {"AWS": [ADMIN, OTHER_ROOT]}, "Action": "kms:*", "Resource": "*"})]
        );
        assert_eq!(r.removed, vec![grant("Admins", ROOT, false)]);

        let r = revoked(vec![json!({"Effect": "Allow",
            "Principal": {"AWS": [ADMIN, ROOT]}, "Action": "kms:*", "Resource": "*"})]);
        assert_eq!(
            statements(&r)[0]["Principal"],
            json!({"AWS": [ADMIN]}),
            "one value left stays a list"
        );
        assert_eq!(r.removed, vec![grant("Statement[0]", ROOT, false)]);
    }

    #[test]
    fn given_the_bare_account_id_when_revoked_then_it_is_a_root_grant() {
        let r = revoked(vec![
            admin_statement(),
            json!({"Effect": "Allow", "Principal": {"AWS": ACCOUNT}, "Action": "kms:*", "Resource": "*"}),
            json!({"Sid": "Listed", "Effect": "Allow", "Principal": {"AWS": [ACCOUNT, ADMIN]},
                   "Action": "kms:Decrypt", "Resource": "*"}),
            json!({"Sid": "Unquoted", "Effect": "Allow", "Principal": {"AWS": [111122223333u64]},
                   "Action": "kms:Encrypt", "Resource": "*"}),
        ]);
        assert_eq!(
            r.removed,
            vec![
                grant("Statement[1]", ACCOUNT, true),
                grant("Listed", ACCOUNT, false),
                grant("Unquoted", ACCOUNT, true),
            ]
        );
        assert_eq!(statements(&r).len(), 2);
        assert_eq!(statements(&r)[1]["Principal"], json!({"AWS": [ADMIN]}));
    }

    #[test]
    fn given_root_in_another_partition_when_revoked_then_it_is_a_root_grant() {
        let root = "arn:aws-cn:iam::111122223333:root";
        let r = revoked(vec![
            admin_statement(),
            json!({"Effect": "Allow", "Principal": {"AWS": root}, "Action": "kms:*", "Resource": "*"}),
        ]);
        assert_eq!(r.removed, vec![grant("Statement[1]", root, true)]);
    }

    #[test]
    fn given_only_another_accounts_root_when_revoked_then_nothing_changes() {
        let policy = text(vec![
            admin_statement(),
            json!({"Sid": "Partner", "Effect": "Allow", "Principal": {"AWS": [OTHER_ROOT, "444455556666"]},
                   "Action": "kms:Decrypt", "Resource": "*"}),
            json!({"Sid": "Lookalike", "Effect": "Allow",
                   "Principal": {"AWS": ["arn:aws:iam::111122223333:role/root", "arn:aws:sts::111122223333:root"]},
                   "Action": "kms:Decrypt", "Resource": "*"}),
        ]);
        assert_eq!(revoke_root(&policy, ACCOUNT, true).unwrap(), None);
    }

    #[test]
    fn given_a_deny_naming_root_when_revoked_then_the_deny_is_untouched() {
        let deny = json!({"Sid": "NoDeletion", "Effect": "Deny", "Principal": {"AWS": [ROOT, ACCOUNT]},
                          "Action": "kms:ScheduleKeyDeletion", "Resource": "*"});
        assert_eq!(
            revoke_root(&text(vec![admin_statement(), deny.clone()]), ACCOUNT, true).unwrap(),
            None
        );
        let r = revoked(vec![
            deny.clone(),
            json!({"Effect": "Allow", "Principal": {"AWS": ROOT}, "Action": "kms:*", "Resource": "*"}),
            admin_statement(),
        ]);
        assert_eq!(statements(&r), vec![deny, admin_statement()]);
    }

    #[test]
    fn given_root_with_a_service_principal_when_revoked_then_the_statement_keeps_the_service() {
        let r = revoked(vec![json!({"Sid": "Logs", "Effect": "Allow",
            "Principal": {"AWS": ROOT, "Service": "logs.amazonaws.com"},
            "Action": ["kms:Encrypt*", "kms:Decrypt*"], "Resource": "*",
            "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}}})]);
        assert_eq!(
            statements(&r),
            vec![json!({"Sid": "Logs", "Effect": "Allow",
                "Principal": {"Service": "logs.amazonaws.com"},
                "Action": ["kms:Encrypt*", "kms:Decrypt*"], "Resource": "*",
                "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}}})]
        );
        assert_eq!(r.removed, vec![grant("Logs", ROOT, false)]);
    }

    #[test]
    fn given_statements_without_root_when_revoked_then_they_are_the_same_json_values() {
        let others = vec![
            admin_statement(),
            json!({"Sid": "Odd", "Resource": "*", "Action": ["kms:Decrypt"], "Effect": "Allow",
                   "Principal": {"Service": ["logs.amazonaws.com"], "AWS": ["arn:aws:iam::111122223333:user/x"]}}),
            json!({"Effect": "Deny", "NotPrincipal": {"AWS": ROOT}, "Action": "kms:*", "Resource": "*"}),
            json!({"Effect": "Allow", "Principal": "*", "Action": "kms:Decrypt", "Resource": "*",
                   "Condition": {"StringEquals": {"kms:ViaService": "s3.eu-west-1.amazonaws.com"}}}),
        ];
        let mut all = others.clone();
        all.insert(
            2,
            json!({"Effect": "Allow", "Principal": {"AWS": ROOT}, "Action": "kms:*", "Resource": "*"}),
        );
        assert_eq!(statements(&revoked(all)), others);
    }

    #[test]
    fn given_the_full_modules_enable_iam_permissions_when_revoked_then_reported_and_kept_unless_configured(
    ) {
        let root = json!({"Sid": "EnableIAMUserPermissions", "Effect": "Allow",
                          "Principal": {"AWS": ROOT}, "Action": "kms:*", "Resource": "*"});
        let policy = text(vec![root, enable_iam_permissions(), admin_statement()]);

        let kept = revoke_root(&policy, ACCOUNT, false).unwrap().unwrap();
        assert_eq!(kept.account_wide, vec!["EnableIAMPermissions"]);
        assert!(!kept.account_wide_removed);
        assert_eq!(
            statements(&kept),
            vec![enable_iam_permissions(), admin_statement()]
        );

        let removed = revoke_root(&policy, ACCOUNT, true).unwrap().unwrap();
        assert_eq!(removed.account_wide, vec!["EnableIAMPermissions"]);
        assert!(removed.account_wide_removed);
        assert_eq!(statements(&removed), vec![admin_statement()]);
        assert_eq!(
            removed.removed,
            vec![grant("EnableIAMUserPermissions", ROOT, true)]
        );
    }

    #[test]
    fn given_only_the_account_wide_statement_when_revoked_then_removed_only_when_configured() {
        let spellings = [
            enable_iam_permissions(),
            json!({"Effect": "Allow", "Principal": "*", "Action": "kms:Decrypt", "Resource": "*",
                   "Condition": {"StringEquals": {"KMS:callerACCOUNT": [ACCOUNT]}}}),
        ];
        for statement in spellings {
            let policy = text(vec![admin_statement(), statement.clone()]);
            assert_eq!(
                revoke_root(&policy, ACCOUNT, false).unwrap(),
                None,
                "{statement}"
            );
            let r = revoke_root(&policy, ACCOUNT, true).unwrap().unwrap();
            assert!(r.removed.is_empty() && r.account_wide_removed);
            assert_eq!(statements(&r), vec![admin_statement()]);
            let parsed = Policy::parse(&policy).unwrap();
            assert_eq!(account_wide_statements(&parsed, ACCOUNT).len(), 1);
        }
    }

    #[test]
    fn given_a_wildcard_allow_with_more_than_the_caller_account_when_checked_then_not_account_wide()
    {
        for statement in [
            // Also limited to one service: narrower than the account.
            json!({"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "kms:CreateGrant", "Resource": "*",
                   "Condition": {"StringEquals": {"kms:CallerAccount": ACCOUNT, "kms:ViaService": "ec2.eu-west-1.amazonaws.com"}}}),
            json!({"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "kms:*", "Resource": "*",
                   "Condition": {"StringEquals": {"kms:CallerAccount": "444455556666"}}}),
            json!({"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "kms:*", "Resource": "*"}),
            json!({"Effect": "Deny", "Principal": "*", "Action": "kms:*", "Resource": "*",
                   "Condition": {"StringEquals": {"kms:CallerAccount": ACCOUNT}}}),
            json!({"Effect": "Allow", "Principal": {"AWS": ["*", ADMIN]}, "Action": "kms:*", "Resource": "*",
                   "Condition": {"StringEquals": {"kms:CallerAccount": ACCOUNT}}}),
        ] {
            let policy = Policy::parse(&text(vec![statement.clone()])).unwrap();
            assert!(
                account_wide_statements(&policy, ACCOUNT).is_empty(),
                "{statement}"
            );
        }
    }

    #[test]
    fn given_root_beside_an_account_limited_wildcard_when_revoked_then_what_is_left_is_account_wide(
    ) {
        let both = json!({"Sid": "RootAndAccount", "Effect": "Allow", "Principal": {"AWS": [ROOT, "*"]},
                          "Action": "kms:*", "Resource": "*",
                          "Condition": {"StringEquals": {"kms:CallerAccount": ACCOUNT}}});
        let policy = text(vec![admin_statement(), both]);

        let kept = revoke_root(&policy, ACCOUNT, false).unwrap().unwrap();
        assert_eq!(kept.account_wide, vec!["RootAndAccount"]);
        assert_eq!(kept.removed, vec![grant("RootAndAccount", ROOT, false)]);
        assert_eq!(statements(&kept)[1]["Principal"], json!({"AWS": ["*"]}));

        let removed = revoke_root(&policy, ACCOUNT, true).unwrap().unwrap();
        assert!(removed.account_wide_removed);
        assert_eq!(removed.removed, vec![grant("RootAndAccount", ROOT, true)]);
        assert_eq!(statements(&removed), vec![admin_statement()]);
        assert_eq!(
            revoke_root(&removed.document, ACCOUNT, true).unwrap(),
            None,
            "nothing left for the next run"
        );
    }

    #[test]
    fn given_no_root_grant_when_revoked_then_none() {
        assert_eq!(
            revoke_root(&text(vec![admin_statement()]), ACCOUNT, true).unwrap(),
            None
        );
    }

    #[test]
    fn given_a_revoked_policy_when_revoked_again_then_none() {
        let policy = text(vec![
            json!({"Effect": "Allow", "Principal": {"AWS": [ROOT, ACCOUNT, ADMIN]}, "Action": "kms:*", "Resource": "*"}),
            enable_iam_permissions(),
        ]);
        for remove_account_wide in [false, true] {
            let once = revoke_root(&policy, ACCOUNT, remove_account_wide)
                .unwrap()
                .unwrap();
            assert_eq!(
                revoke_root(&once.document, ACCOUNT, remove_account_wide).unwrap(),
                None
            );
        }
    }

    #[test]
    fn given_a_single_statement_object_when_revoked_then_its_form_is_kept_or_the_list_is_empty() {
        let one = |principal: Value| {
            json!({"Version": "2012-10-17", "Statement": {"Sid": "Only", "Effect": "Allow",
                   "Principal": principal, "Action": "kms:*", "Resource": "*"}})
            .to_string()
        };
        let r = revoke_root(&one(json!({"AWS": [ROOT, ADMIN]})), ACCOUNT, false)
            .unwrap()
            .unwrap();
        let document: Value = serde_json::from_str(&r.document).unwrap();
        assert_eq!(document["Statement"]["Principal"], json!({"AWS": [ADMIN]}));

        let r = revoke_root(&one(json!({"AWS": ROOT})), ACCOUNT, false)
            .unwrap()
            .unwrap();
        assert_eq!(statements(&r), Vec::<Value>::new());
    }

    #[test]
    fn given_top_level_elements_when_revoked_then_they_are_kept() {
        let policy = json!({"Version": "2012-10-17", "Id": "key-default-1", "Statement": [
            json!({"Effect": "Allow", "Principal": {"AWS": ROOT}, "Action": "kms:*", "Resource": "*"}),
            admin_statement()]})
        .to_string();
        let r = revoke_root(&policy, ACCOUNT, false).unwrap().unwrap();
        let document: Value = serde_json::from_str(&r.document).unwrap();
        assert_eq!(document["Id"], "key-default-1");
        assert_eq!(document["Version"], "2012-10-17");
    }

    #[test]
    fn given_a_policy_that_is_not_a_policy_when_revoked_then_an_error() {
        for bad in ["not json", "[]", r#"{"Statement":[{"Effect":"Allow"}]}"#] {
            assert!(revoke_root(bad, ACCOUNT, false).is_err(), "{bad}");
        }
    }

    #[test]
    fn given_an_account_that_is_not_an_account_id_when_revoked_then_no_root_is_named() {
        let policy = text(vec![
            json!({"Effect": "Allow", "Principal": {"AWS": ""}, "Action": "kms:*", "Resource": "*"}),
        ]);
        assert_eq!(revoke_root(&policy, "", true).unwrap(), None);
    }

    #[test]
    fn given_unique_id_principals_when_listed_then_roles_and_users_sorted_once() {
        let policy = Policy::parse(&text(vec![
            json!({"Effect": "Allow", "Principal": {"AWS": ["AROAEXAMPLEID12345678", ADMIN, "AIDAEXAMPLEID12345678"]},
                   "Action": "kms:*", "Resource": "*"}),
            json!({"Effect": "Deny", "NotPrincipal": {"AWS": "AROAEXAMPLEID12345678"}, "Action": "kms:*", "Resource": "*"}),
            json!({"Effect": "Allow", "Principal": {"AWS": ["AROA", "arn:aws:iam::111122223333:role/AROAEXAMPLEID12345678"]},
                   "Action": "kms:*", "Resource": "*"}),
        ]))
        .unwrap();
        assert_eq!(
            unique_id_principals(&policy),
            vec!["AIDAEXAMPLEID12345678", "AROAEXAMPLEID12345678"]
        );
    }
}
