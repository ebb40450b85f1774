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
#[path = "tests/revoke.rs"]
mod tests;
