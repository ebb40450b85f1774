//! Whether a key policy lets a principal call a KMS action, judged from the policy alone and
//! conservatively. It serves lockout checks, where a wrong "no" costs a refused write and a
//! wrong "yes" a key nobody can manage, so every doubt resolves to "no".
//!
//! [`access_in_context`] also judges conditions against what is known of the request: an
//! Allow counts only when its conditions are certainly true, a Deny is passed over only when
//! they are certainly false.
//!
//! IAM rules relied on (<https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html>):
//! an explicit Deny overrides any Allow; without an Allow a request is implicitly denied. The
//! account principal (`arn:aws:iam::ACCOUNT:root` or the bare id) does not grant anyone
//! access, it lets the account's IAM policies grant it
//! (<https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html>). A
//! `NotPrincipal` Deny spares a role only for the exact sessions it lists together with the role
//! and its account, so it is taken to deny every role
//! (<https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_notprincipal.html>).
//! Known limit: a role of another account named exactly is `Allowed`, though its own account's
//! IAM must allow it too; the functions check roles of the key's own account.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::base::arn::is_account_id;
use crate::base::arn::Arn;
use crate::policy::model::{
    action_matches, wildcard_match, ConditionValues, Effect, Policy, PrincipalMap, Statement,
    StatementBody,
};

/// What a key policy lets one principal do with one action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// An unconditional Allow names this principal (its exact ARN) for the action, and no Deny
    /// can apply.
    Allowed,
    /// Only through the account principal (`arn:PARTITION:iam::ACCOUNT:root` or the bare
    /// account id): the key policy delegates to IAM, so IAM must also allow it.
    ViaIam,
    /// A Deny statement applies or may apply (its conditions are assumed to hold unless
    /// [`access_in_context`] knows them false). Carries the statement label.
    Denied { statement: String },
    /// No Allow certainly applies: nothing matches, only Allows whose conditions may not hold
    /// match, or only a wildcard principal (`*`) matches.
    NotAllowed { reason: String },
}

/// [`Access`] without its label or reason: policies that grant the same thing may word
/// those differently (other Sids, other statement order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decision {
    Allowed,
    ViaIam,
    Denied,
    NotAllowed,
}

impl Access {
    pub fn decision(&self) -> Decision {
        match self {
            Access::Allowed => Decision::Allowed,
            Access::ViaIam => Decision::ViaIam,
            Access::Denied { .. } => Decision::Denied,
            Access::NotAllowed { .. } => Decision::NotAllowed,
        }
    }
}

/// What `policy` lets `principal_arn` (an IAM role ARN such as
/// `arn:aws:iam::111122223333:role/kms-admin`) do with `action` (such as `kms:PutKeyPolicy`).
pub fn access(policy: &Policy, principal_arn: &str, action: &str) -> Access {
    evaluate(policy, &Caller::parse(principal_arn), action, None).access
}

/// What is known about one request: condition keys and their values. A key not given is
/// unknown (the request may carry it or not), never absent: the functions asking cannot see
/// all a service sends, such as the encryption context S3 adds. Keys are case-insensitive as
/// in IAM; values are compared as the operator says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestContext {
    /// Lower-case key to value.
    values: BTreeMap<String, String>,
}

impl RequestContext {
    pub fn new() -> RequestContext {
        RequestContext::default()
    }

    /// The request carries `key` with `value`; a later value for the same key replaces it.
    pub fn with(mut self, key: &str, value: impl Into<String>) -> RequestContext {
        self.values.insert(key.to_ascii_lowercase(), value.into());
        self
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.values
            .get(&key.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// This context with the keys the caller itself settles: `aws:PrincipalAccount`, and
    /// `aws:PrincipalArn` for an IAM ARN (a session's would be its role's ARN, path included,
    /// which a session ARN does not carry, so it stays unknown).
    fn for_caller(&self, caller: &Caller) -> RequestContext {
        let mut known = self.clone();
        if let Some(account) = &caller.account {
            known = known.with("aws:PrincipalAccount", account.as_str());
        }
        if iam_arn(caller.arn).is_some_and(|arn| arn.service() == "iam") {
            known = known.with("aws:PrincipalArn", caller.arn);
        }
        known
    }
}

/// [`access`] for a request of which `context` is known, such as S3 calling `kms:Encrypt` for
/// a replication role (`kms:ViaService` `s3.us-west-2.amazonaws.com`).
///
/// Each statement's Condition is true, false or unknown: every operator and key entry must
/// hold, a positive operator's entry holds when any value matches and a negated one's when
/// none does. Understood: `StringEquals`, `StringNotEquals`, `StringEqualsIgnoreCase`,
/// `StringNotEqualsIgnoreCase`, `StringLike`, `StringNotLike` (`*`, `?`) and `Bool`, each also
/// with `IfExists`, and `Null`; a key not in `context` makes its entry unknown, as do any other
/// operator (`ForAnyValue:`, `ForAllValues:`, `Arn*`, `Numeric*`, ...) and a value holding a
/// policy variable (`${...}`). An Allow counts only when its conditions are true; a Deny is
/// passed over only when they are false.
///
/// `aws:PrincipalAccount` and, for an IAM ARN, `aws:PrincipalArn` are derived from
/// `principal_arn` and replace any such key in `context`: they describe the principal
/// evaluated, so one context serves several principals.
pub fn access_in_context(
    policy: &Policy,
    principal_arn: &str,
    action: &str,
    context: &RequestContext,
) -> Access {
    let caller = Caller::parse(principal_arn);
    let known = context.for_caller(&caller);
    evaluate(policy, &caller, action, Some(&known)).access
}

/// Every principal/action pair that must keep access, checked in one go. Each failure is one
/// sentence a person can act on: which principal, which action, which statement is in the
/// way. Empty means every pair keeps access. `iam_may_grant`: whether access through the
/// account principal counts, i.e. the principal's IAM policy is known to grant the action.
pub fn lockout_problems(
    policy: &Policy,
    requirements: &[(&str, &str)],
    iam_may_grant: bool,
) -> Vec<String> {
    requirements
        .iter()
        .filter_map(|&(principal_arn, action)| {
            let caller = Caller::parse(principal_arn);
            let who = shorten(principal_arn);
            let what = shorten(action);
            let evaluation = evaluate(policy, &caller, action, None);
            match evaluation.access {
                Access::Allowed => None,
                Access::ViaIam if iam_may_grant => None,
                Access::ViaIam => Some(format!(
                    "{who} may call {what} only through the account principal ({}), so only if \
                     its IAM policy allows it, which is not known: name {who} in an Allow \
                     statement for {what}",
                    evaluation.detail
                )),
                Access::Denied { statement } => Some(format!(
                    "{who} may not call {what}: Deny statement {statement} {}, and an explicit \
                     Deny overrides every Allow",
                    evaluation.detail
                )),
                Access::NotAllowed { reason } => {
                    Some(format!("{who} may not call {what}: {reason}"))
                }
            }
        })
        .collect()
}

struct Evaluation {
    access: Access,
    /// Why, for `lockout_problems`: what the Deny matched, or which statement delegates to IAM.
    detail: String,
}

/// The principal being checked, split once.
struct Caller<'a> {
    arn: &'a str,
    account: Option<String>,
    /// The role name without its path: assumed-role session ARNs carry only that.
    role_name: Option<String>,
}

impl<'a> Caller<'a> {
    fn parse(arn: &'a str) -> Caller<'a> {
        if is_account_id(arn) {
            return Caller {
                arn,
                account: Some(arn.to_string()),
                role_name: None,
            };
        }
        let parsed = iam_arn(arn);
        Caller {
            arn,
            account: parsed.as_ref().map(|a| a.account().to_string()),
            role_name: parsed
                .as_ref()
                .and_then(|a| a.iam_role_name())
                .map(str::to_string),
        }
    }
}

/// An IAM or STS ARN (global: no Region) of a 12-digit account.
pub(crate) fn iam_arn(text: &str) -> Option<Arn> {
    Arn::parse(text).ok().filter(|arn| {
        matches!(arn.service(), "iam" | "sts")
            && arn.region().is_empty()
            && is_account_id(arn.account())
    })
}

/// How one `AWS` principal value of a statement relates to the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum PrincipalMatch {
    /// The caller's exact ARN.
    Exact,
    /// The caller's account: delegates to IAM.
    Account,
    /// `*`: every principal.
    Wildcard,
    /// `arn:...:assumed-role/NAME/*`: every session of the caller's role.
    EverySession,
    /// One named session of the caller's role: the caller may be that session.
    OneSession,
}

/// How `value` relates to the caller; `None` for another principal or a unique id
/// (`AROA...`), which is what a deleted role turns into and so never the live role.
fn match_value(value: &str, caller: &Caller) -> Option<PrincipalMatch> {
    if value == "*" {
        return Some(PrincipalMatch::Wildcard);
    }
    // Account first: naming the account always means "IAM decides", whoever asks.
    let parsed = iam_arn(value);
    if let Some(account) = caller.account.as_deref() {
        if crate::policy::model::names_account(value, account) {
            return Some(PrincipalMatch::Account);
        }
    }
    if value == caller.arn {
        return Some(PrincipalMatch::Exact);
    }
    let (Some(session), Some(role_name)) = (parsed, caller.role_name.as_deref()) else {
        return None;
    };
    if session.service() != "sts" || caller.account.as_deref() != Some(session.account()) {
        return None;
    }
    match session
        .resource()
        .strip_prefix("assumed-role/")
        .and_then(|rest| rest.split_once('/'))
    {
        Some((name, "*")) if name == role_name => Some(PrincipalMatch::EverySession),
        Some((name, _)) if name == role_name => Some(PrincipalMatch::OneSession),
        _ => None,
    }
}

/// Every relation between the caller and the `AWS` values of `principals`, closest first.
/// Service, Federated and CanonicalUser principals are never an IAM role.
fn relations_to(principals: &PrincipalMap, caller: &Caller) -> BTreeSet<PrincipalMatch> {
    principals
        .get("AWS")
        .into_iter()
        .flatten()
        .filter_map(|value| match_value(value, caller))
        .collect()
}

fn covers_action(body: &StatementBody, action: &str) -> bool {
    match (&body.action, &body.not_action) {
        (Some(patterns), _) => patterns.iter().any(|p| action_matches(p, action)),
        (None, Some(excluded)) => !excluded.iter().any(|p| action_matches(p, action)),
        (None, None) => false,
    }
}

/// In a key policy `"Resource": "*"` means "this key"; anything else is treated as not
/// covering it, which for an Allow means it grants nothing here.
fn covers_this_key(body: &StatementBody) -> bool {
    body.not_resource.is_none() && body.resource.as_ref().is_some_and(|r| r.contains("*"))
}

/// Why a Deny applies to the caller, its Condition aside, or `None` when it cannot.
fn deny_reason(body: &StatementBody, caller: &Caller) -> Option<&'static str> {
    let named = body
        .principal
        .as_ref()
        .and_then(|p| relations_to(p, caller).first().copied());
    Some(match (named, &body.not_principal) {
        (Some(PrincipalMatch::Exact), _) => "names it",
        (Some(PrincipalMatch::Account), _) => "names its account",
        (Some(PrincipalMatch::Wildcard), _) => "names every principal (\"*\")",
        (Some(PrincipalMatch::EverySession | PrincipalMatch::OneSession), _) => {
            "names a session of its role, which it may be"
        }
        // IAM spares a role's caller only when the account, the role and the exact session
        // are all listed (NotPrincipal docs; wildcards are not supported there), and denies
        // any principal with a permissions boundary whatever is listed. A key policy cannot
        // promise that for sessions yet to come, so a NotPrincipal Deny is taken to deny.
        (None, Some(_)) => {
            "has a NotPrincipal, which spares a role only for the exact sessions it lists, so it is taken to deny it"
        }
        // KMS refuses a statement without principals, so what it meant is unknown.
        (None, None) if body.principal.is_none() => "names no principal, so it may apply to anyone",
        (None, _) => return None,
    })
}

/// A statement's Condition judged against the request.
enum Verdict {
    /// Every entry holds: the first one described, `None` without a Condition.
    Holds(Option<String>),
    /// This entry is false, so the statement does not apply.
    Fails(String),
    /// No entry is false and this one cannot be told; `None` when nothing is known of the
    /// request, as for [`access`].
    Unknown(Option<String>),
}

fn verdict(statement: &Statement, context: Option<&RequestContext>) -> Verdict {
    let condition = &statement.body.condition;
    if condition.is_empty() {
        return Verdict::Holds(None);
    }
    let Some(context) = context else {
        return Verdict::Unknown(None);
    };
    let (mut first_true, mut first_unknown) = (None, None);
    for (op, keys) in condition {
        if keys.is_empty() {
            first_unknown.get_or_insert_with(|| format!("{} names no key", shorten(op)));
        }
        for (key, entries) in keys {
            let written = written_key(&statement.raw, op, key);
            for values in entries {
                let (truth, why) = judge(op, &written, values, context);
                match truth {
                    Some(false) => return Verdict::Fails(why),
                    Some(true) => first_true.get_or_insert(why),
                    None => first_unknown.get_or_insert(why),
                };
            }
        }
    }
    match first_unknown {
        Some(why) => Verdict::Unknown(Some(why)),
        None => Verdict::Holds(first_true),
    }
}

/// The condition key as the policy spells it (the canonical form keeps it in lower case), so
/// people recognise it in messages.
fn written_key(raw: &Value, op: &str, key: &str) -> String {
    raw.get("Condition")
        .and_then(|ops| ops.get(op))
        .and_then(Value::as_object)
        .and_then(|keys| keys.keys().find(|k| k.eq_ignore_ascii_case(key)))
        .map_or_else(|| key.to_string(), String::clone)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Test {
    Equals,
    EqualsIgnoreCase,
    Like,
    Bool,
    Null,
}

/// A condition operator this evaluator understands.
struct Operator {
    test: Test,
    negated: bool,
    if_exists: bool,
}

impl Operator {
    /// Names are matched as AWS documents them; anything else, set operators included, is
    /// not understood and so unknown.
    fn parse(op: &str) -> Option<Operator> {
        let (base, if_exists) = match op.strip_suffix("IfExists") {
            Some(base) => (base, true),
            None => (op, false),
        };
        let (test, negated) = match base {
            "StringEquals" => (Test::Equals, false),
            "StringNotEquals" => (Test::Equals, true),
            "StringEqualsIgnoreCase" => (Test::EqualsIgnoreCase, false),
            "StringNotEqualsIgnoreCase" => (Test::EqualsIgnoreCase, true),
            "StringLike" => (Test::Like, false),
            "StringNotLike" => (Test::Like, true),
            "Bool" => (Test::Bool, false),
            // IAM has no NullIfExists.
            "Null" if !if_exists => (Test::Null, false),
            _ => return None,
        };
        Some(Operator {
            test,
            negated,
            if_exists,
        })
    }

    /// Whether the request's `actual` value matches one `wanted` value; `None` when that
    /// cannot be told.
    fn matches(&self, wanted: &str, actual: &str) -> Option<bool> {
        // Policy variables are not substituted here.
        if wanted.contains("${") {
            return None;
        }
        match self.test {
            Test::Equals => Some(wanted == actual),
            Test::EqualsIgnoreCase => Some(wanted.to_lowercase() == actual.to_lowercase()),
            Test::Like => Some(wildcard_match(wanted, actual)),
            Test::Bool => Some(wanted.eq_ignore_ascii_case(actual)),
            // A key with a value is present: `Null: false` holds, `Null: true` does not.
            Test::Null if wanted.eq_ignore_ascii_case("false") => Some(true),
            Test::Null if wanted.eq_ignore_ascii_case("true") => Some(false),
            Test::Null => None,
        }
    }

    /// "kms:ViaService is not one of [a, b]".
    fn describe(&self, key: &str, values: &ConditionValues) -> String {
        let key = shorten(key);
        if self.test == Test::Null {
            return match values.iter().next() {
                Some(v) if values.len() == 1 && v.eq_ignore_ascii_case("true") => {
                    format!("{key} is absent")
                }
                Some(v) if values.len() == 1 && v.eq_ignore_ascii_case("false") => {
                    format!("{key} is present")
                }
                _ => format!("{key} is Null: {}", listed(values)),
            };
        }
        let verb = match (self.test, self.negated) {
            (Test::Like, false) => "is like",
            (Test::Like, true) => "is not like",
            (_, false) => "is",
            (_, true) => "is not",
        };
        let case = if self.test == Test::EqualsIgnoreCase {
            " (ignoring case)"
        } else {
            ""
        };
        let absent = if self.if_exists { " or is absent" } else { "" };
        let list = if values.len() == 1 { "" } else { "one of " };
        format!("{key} {verb} {list}{}{case}{absent}", listed(values))
    }
}

/// A condition's values for a message: a lone value as is, a list bounded.
fn listed(values: &ConditionValues) -> String {
    const MAX_SHOWN: usize = 5;
    let mut shown: Vec<String> = values.iter().take(MAX_SHOWN).map(|v| shorten(v)).collect();
    if values.len() > MAX_SHOWN {
        shown.push("...".to_string());
    }
    match shown.as_slice() {
        [one] => one.clone(),
        _ => format!("[{}]", shown.join(", ")),
    }
}

/// Whether one condition entry (`op`, `key`, `values`) holds in `context`, and in words what it
/// asks and what the request has.
fn judge(
    op: &str,
    key: &str,
    values: &ConditionValues,
    context: &RequestContext,
) -> (Option<bool>, String) {
    let Some(operator) = Operator::parse(op) else {
        return (
            None,
            format!(
                "{} {} {}, an operator not evaluated here",
                shorten(op),
                shorten(key),
                listed(values)
            ),
        );
    };
    let asks = operator.describe(key, values);
    // Unknown key: with IfExists or Null too, since whether it is present is not known.
    let Some(actual) = context.get(key) else {
        return (
            None,
            format!("{asks}, and the request's {} is not known", shorten(key)),
        );
    };
    let has = if key.eq_ignore_ascii_case("kms:ViaService") {
        format!("the request comes through {}", shorten(actual))
    } else {
        format!("the request's {} is {}", shorten(key), shorten(actual))
    };
    // Any value matching decides; otherwise an undecidable one leaves it unknown. An empty
    // list is left unknown rather than guessed.
    let mut any = if values.is_empty() { None } else { Some(false) };
    for wanted in values {
        match operator.matches(wanted, actual) {
            Some(true) => {
                any = Some(true);
                break;
            }
            Some(false) => {}
            None => any = None,
        }
    }
    let truth = if operator.negated {
        any.map(|matched| !matched)
    } else {
        any
    };
    (truth, format!("{asks}, and {has}"))
}

/// A Sid people recognise, or the statement's position when it has none.
fn statement_label(index: usize, statement: &Statement) -> String {
    match statement.sid.as_deref() {
        Some(sid) if !sid.is_empty() => format!("\"{}\"", shorten(sid)),
        _ => format!("Statement[{index}]"),
    }
}

/// Values from a policy can be huge; messages show at most 80 characters of each.
fn shorten(text: &str) -> String {
    const MAX_CHARS: usize = 80;
    match text.char_indices().nth(MAX_CHARS) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_string(),
    }
}

/// The one evaluation behind [`access`] (`context` `None`: nothing known of the request) and
/// [`access_in_context`].
fn evaluate(
    policy: &Policy,
    caller: &Caller,
    action: &str,
    context: Option<&RequestContext>,
) -> Evaluation {
    let covering = || {
        policy
            .statements
            .iter()
            .enumerate()
            .filter(|(_, s)| covers_action(&s.body, action))
    };

    // A Deny's Resource is ignored on purpose, and its Condition unless certainly false: it
    // counts whenever it may apply.
    for (index, statement) in covering().filter(|(_, s)| s.body.effect == Effect::Deny) {
        let Some(reason) = deny_reason(&statement.body, caller) else {
            continue;
        };
        let detail = match verdict(statement, context) {
            Verdict::Fails(_) => continue,
            Verdict::Holds(None) => reason.to_string(),
            Verdict::Holds(Some(why)) => format!("{reason} (its conditions hold: {why})"),
            Verdict::Unknown(None) => format!("{reason} (its conditions are assumed to hold)"),
            Verdict::Unknown(Some(why)) => format!("{reason} (its conditions may hold: {why})"),
        };
        return Evaluation {
            access: Access::Denied {
                statement: statement_label(index, statement),
            },
            detail,
        };
    }

    let mut best: Option<(PrincipalMatch, String)> = None;
    let mut near_misses = Vec::new();
    for (index, statement) in covering().filter(|(_, s)| s.body.effect == Effect::Allow) {
        let body = &statement.body;
        let label = statement_label(index, statement);
        if body.not_principal.is_some() {
            near_misses.push(format!(
                "statement {label} allows through NotPrincipal, which IAM does not support with Allow"
            ));
            continue;
        }
        let named = body
            .principal
            .as_ref()
            .map(|p| relations_to(p, caller))
            .unwrap_or_default();
        // A session grant covers one session, not the role.
        let Some(grant) = named.into_iter().find(|m| {
            matches!(
                m,
                PrincipalMatch::Exact | PrincipalMatch::Account | PrincipalMatch::Wildcard
            )
        }) else {
            continue;
        };
        match verdict(statement, context) {
            Verdict::Holds(_) => {}
            Verdict::Unknown(None) => {
                near_misses.push(format!(
                    "statement {label} allows it only under conditions, which may not hold"
                ));
                continue;
            }
            Verdict::Fails(why) | Verdict::Unknown(Some(why)) => {
                near_misses.push(format!("statement {label} allows it only when {why}"));
                continue;
            }
        }
        if !covers_this_key(body) {
            near_misses.push(format!(
                "statement {label} allows it only for a Resource other than \"*\", which in a key policy grants nothing"
            ));
        } else if best.as_ref().is_none_or(|(closest, _)| grant < *closest) {
            best = Some((grant, label));
        }
    }

    let access = match best {
        Some((PrincipalMatch::Exact, _)) => Access::Allowed,
        Some((PrincipalMatch::Account, label)) => {
            return Evaluation {
                access: Access::ViaIam,
                detail: format!("statement {label}"),
            }
        }
        Some((_, label)) => {
            let mut reason = format!(
                "the only unconditional Allow covering it is to the wildcard principal \"*\" \
                 (statement {label}), and a wildcard does not name an administrator"
            );
            for miss in &near_misses {
                reason.push_str("; ");
                reason.push_str(miss);
            }
            Access::NotAllowed { reason }
        }
        None if near_misses.is_empty() => Access::NotAllowed {
            reason: "no Allow statement names it or its account for this action".to_string(),
        },
        None => Access::NotAllowed {
            reason: near_misses.join("; "),
        },
    };
    Evaluation {
        access,
        detail: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADMIN: &str = "arn:aws:iam::111122223333:role/kms-admin";
    const PUT: &str = "kms:PutKeyPolicy";

    fn policy(statements: &str) -> Policy {
        Policy::parse(&format!(
            r#"{{"Version":"2012-10-17","Statement":[{statements}]}}"#
        ))
        .unwrap()
    }

    const ADMIN_ALLOWED: &str = r#"{"Sid":"Admin","Effect":"Allow",
        "Principal":{"AWS":"arn:aws:iam::111122223333:role/kms-admin"},"Action":"kms:*","Resource":"*"}"#;

    fn with_admin(extra: &str) -> Policy {
        policy(&format!("{ADMIN_ALLOWED},{extra}"))
    }

    fn reason(access: Access) -> String {
        match access {
            Access::NotAllowed { reason } => reason,
            other => panic!("expected NotAllowed, got {other:?}"),
        }
    }

    #[test]
    fn given_an_allow_naming_the_admin_role_when_checked_then_allowed() {
        assert_eq!(access(&policy(ADMIN_ALLOWED), ADMIN, PUT), Access::Allowed);
    }

    #[test]
    fn given_a_deny_naming_the_admin_role_when_checked_then_denied_and_a_lockout() {
        let p = with_admin(
            r#"{"Sid":"NoAdmin","Effect":"Deny","Principal":{"AWS":"arn:aws:iam::111122223333:role/kms-admin"},"Action":"kms:PutKeyPolicy","Resource":"*"}"#,
        );
        assert_eq!(
            access(&p, ADMIN, PUT),
            Access::Denied {
                statement: "\"NoAdmin\"".into()
            }
        );
        let problems = lockout_problems(&p, &[(ADMIN, PUT)], true);
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].contains(ADMIN)
                && problems[0].contains(PUT)
                && problems[0].contains("\"NoAdmin\" names it"),
            "{problems:?}"
        );
    }

    #[test]
    fn given_a_deny_naming_the_account_or_every_principal_when_checked_then_denied() {
        for principal in [
            r#"{"AWS":"arn:aws:iam::111122223333:root"}"#,
            r#"{"AWS":"111122223333"}"#,
            r#"{"AWS":"*"}"#,
            r#""*""#,
            r#"{"AWS":"arn:aws:sts::111122223333:assumed-role/kms-admin/alice"}"#,
        ] {
            let p = with_admin(&format!(
                r#"{{"Effect":"Deny","Principal":{principal},"Action":"kms:*","Resource":"*"}}"#
            ));
            assert_eq!(
                access(&p, ADMIN, PUT),
                Access::Denied {
                    statement: "Statement[1]".into()
                },
                "{principal}"
            );
        }
    }

    #[test]
    fn given_a_deny_naming_someone_else_or_another_action_when_checked_then_still_allowed() {
        for deny in [
            r#"{"Effect":"Deny","Principal":{"AWS":"arn:aws:iam::444455556666:root"},"Action":"kms:*","Resource":"*"}"#,
            r#"{"Effect":"Deny","Principal":{"AWS":"arn:aws:iam::111122223333:role/other"},"Action":"kms:*","Resource":"*"}"#,
            r#"{"Effect":"Deny","Principal":{"AWS":"arn:aws:sts::111122223333:assumed-role/other/alice"},"Action":"kms:*","Resource":"*"}"#,
            r#"{"Effect":"Deny","Principal":"*","Action":"kms:Decrypt","Resource":"*"}"#,
            r#"{"Effect":"Deny","Principal":"*","NotAction":"kms:Put*","Resource":"*"}"#,
            r#"{"Effect":"Deny","Principal":{"Service":"logs.amazonaws.com"},"Action":"kms:*","Resource":"*"}"#,
            r#"{"Effect":"Deny","Principal":{"Federated":"cognito-identity.amazonaws.com"},"Action":"kms:*","Resource":"*"}"#,
        ] {
            assert_eq!(
                access(&with_admin(deny), ADMIN, PUT),
                Access::Allowed,
                "{deny}"
            );
        }
    }

    #[test]
    fn given_a_conditional_deny_when_checked_then_its_conditions_are_assumed_to_hold() {
        let p = with_admin(
            r#"{"Sid":"OnlyFromVpc","Effect":"Deny","Principal":"*","Action":"kms:*","Resource":"*",
                "Condition":{"StringNotEquals":{"aws:SourceVpc":"vpc-1"}}}"#,
        );
        assert_eq!(access(&p, ADMIN, PUT).decision(), Decision::Denied);
        assert!(lockout_problems(&p, &[(ADMIN, PUT)], true)[0].contains("conditions are assumed"));
    }

    #[test]
    fn given_a_deny_scoped_to_another_resource_when_checked_then_it_still_counts() {
        let p = with_admin(
            r#"{"Effect":"Deny","Principal":"*","Action":"kms:*","Resource":"arn:aws:kms:eu-west-1:111122223333:key/other"}"#,
        );
        assert_eq!(access(&p, ADMIN, PUT).decision(), Decision::Denied);
    }

    #[test]
    fn given_a_not_principal_deny_not_listing_the_admin_when_checked_then_denied_and_a_lockout() {
        for excepted in [
            r#"{"AWS":"arn:aws:iam::111122223333:role/break-glass"}"#,
            r#"{"AWS":"arn:aws:sts::111122223333:assumed-role/kms-admin/alice"}"#,
            r#"{"AWS":"AROAEXAMPLEID1234567"}"#,
            r#"{"Service":"logs.amazonaws.com"}"#,
        ] {
            let p = with_admin(&format!(
                r#"{{"Sid":"OnlyBreakGlass","Effect":"Deny","NotPrincipal":{excepted},"Action":"kms:*","Resource":"*"}}"#
            ));
            assert_eq!(
                access(&p, ADMIN, PUT),
                Access::Denied {
                    statement: "\"OnlyBreakGlass\"".into()
                },
                "{excepted}"
            );
            let problems = lockout_problems(&p, &[(ADMIN, PUT)], true);
            assert!(problems[0].contains("NotPrincipal"), "{problems:?}");
        }
    }

    #[test]
    fn given_a_not_principal_deny_listing_the_admin_or_its_account_when_checked_then_still_denied()
    {
        // Even the break-glass pattern AWS documents (account, role and session listed) spares
        // only the listed session; the admin's next session is denied.
        for excepted in [
            r#"{"AWS":"arn:aws:iam::111122223333:role/kms-admin"}"#,
            r#"{"AWS":["arn:aws:iam::111122223333:role/kms-admin","arn:aws:iam::111122223333:root"]}"#,
            r#"{"AWS":"arn:aws:iam::111122223333:root"}"#,
            r#"{"AWS":"111122223333"}"#,
            r#"{"AWS":"arn:aws:sts::111122223333:assumed-role/kms-admin/*"}"#,
            r#"{"AWS":["arn:aws:iam::111122223333:root","arn:aws:iam::111122223333:role/kms-admin","arn:aws:sts::111122223333:assumed-role/kms-admin/alice"]}"#,
        ] {
            let p = with_admin(&format!(
                r#"{{"Effect":"Deny","NotPrincipal":{excepted},"Action":"kms:*","Resource":"*"}}"#
            ));
            assert_eq!(
                access(&p, ADMIN, PUT).decision(),
                Decision::Denied,
                "{excepted}"
            );
        }
    }

    #[test]
    fn given_the_admin_only_as_a_wildcard_principal_when_checked_then_a_lockout() {
        for principal in [r#""*""#, r#"{"AWS":"*"}"#] {
            let p = policy(&format!(
                r#"{{"Sid":"Everyone","Effect":"Allow","Principal":{principal},"Action":"kms:*","Resource":"*"}}"#
            ));
            let why = reason(access(&p, ADMIN, PUT));
            assert!(
                why.contains("wildcard principal") && why.contains("\"Everyone\""),
                "{why}"
            );
            assert_eq!(lockout_problems(&p, &[(ADMIN, PUT)], true).len(), 1);
        }
    }

    #[test]
    fn given_only_a_conditional_allow_when_checked_then_not_access() {
        let p = policy(
            r#"{"Sid":"AdminWithMfa","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/kms-admin"},
                "Action":"kms:*","Resource":"*","Condition":{"Bool":{"aws:MultiFactorAuthPresent":"true"}}}"#,
        );
        let why = reason(access(&p, ADMIN, PUT));
        assert!(
            why.contains("\"AdminWithMfa\" allows it only under conditions"),
            "{why}"
        );
    }

    #[test]
    fn given_a_not_action_allow_covering_put_key_policy_when_checked_then_access() {
        let p = policy(
            r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/kms-admin"},"NotAction":["kms:Decrypt","kms:Encrypt"],"Resource":"*"}"#,
        );
        assert_eq!(access(&p, ADMIN, PUT), Access::Allowed);
        let excluding = policy(
            r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/kms-admin"},"NotAction":"kms:Put*","Resource":"*"}"#,
        );
        assert_eq!(
            access(&excluding, ADMIN, PUT).decision(),
            Decision::NotAllowed
        );
    }

    #[test]
    fn given_wildcard_action_patterns_when_checked_then_they_match_case_insensitively() {
        for action in [
            "kms:Put*",
            "*",
            "kms:*",
            "KMS:PUTKEYPOLICY",
            "kms:?utKeyPolicy",
        ] {
            let p = policy(&format!(
                r#"{{"Effect":"Allow","Principal":{{"AWS":"{ADMIN}"}},"Action":"{action}","Resource":"*"}}"#
            ));
            assert_eq!(access(&p, ADMIN, PUT), Access::Allowed, "{action}");
        }
        let p = policy(&format!(
            r#"{{"Effect":"Allow","Principal":{{"AWS":"{ADMIN}"}},"Action":"kms:Get*","Resource":"*"}}"#
        ));
        assert_eq!(access(&p, ADMIN, PUT).decision(), Decision::NotAllowed);
    }

    #[test]
    fn given_an_account_root_allow_when_checked_then_via_iam() {
        for root in ["arn:aws:iam::111122223333:root", "111122223333"] {
            let p = policy(&format!(
                r#"{{"Sid":"EnableRootAccess","Effect":"Allow","Principal":{{"AWS":"{root}"}},"Action":"kms:*","Resource":"*"}}"#
            ));
            assert_eq!(access(&p, ADMIN, PUT), Access::ViaIam, "{root}");
            assert!(lockout_problems(&p, &[(ADMIN, PUT)], true).is_empty());
            let problems = lockout_problems(&p, &[(ADMIN, PUT)], false);
            assert!(
                problems[0].contains("only through the account principal")
                    && problems[0].contains("\"EnableRootAccess\""),
                "{problems:?}"
            );
        }
        let other_account = policy(
            r#"{"Effect":"Allow","Principal":{"AWS":"444455556666"},"Action":"kms:*","Resource":"*"}"#,
        );
        assert_eq!(
            access(&other_account, ADMIN, PUT).decision(),
            Decision::NotAllowed
        );
    }

    #[test]
    fn given_both_a_named_and_an_account_allow_when_checked_then_the_named_one_wins() {
        let p = with_admin(
            r#"{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"kms:*","Resource":"*"}"#,
        );
        assert_eq!(access(&p, ADMIN, PUT), Access::Allowed);
    }

    #[test]
    fn given_an_allow_for_another_resource_when_checked_then_not_access() {
        let p = policy(&format!(
            r#"{{"Effect":"Allow","Principal":{{"AWS":"{ADMIN}"}},"Action":"kms:*","Resource":"arn:aws:kms:eu-west-1:111122223333:key/x"}}"#
        ));
        assert!(reason(access(&p, ADMIN, PUT)).contains("Resource other than"));
        let not_resource = policy(&format!(
            r#"{{"Effect":"Allow","Principal":{{"AWS":"{ADMIN}"}},"Action":"kms:*","NotResource":"arn:aws:kms:eu-west-1:111122223333:key/x"}}"#
        ));
        assert_eq!(
            access(&not_resource, ADMIN, PUT).decision(),
            Decision::NotAllowed
        );
    }

    #[test]
    fn given_service_federated_or_session_principals_when_checked_then_they_never_grant_the_role() {
        for principal in [
            r#"{"Service":"kms-admin.amazonaws.com"}"#,
            r#"{"Federated":"arn:aws:iam::111122223333:saml-provider/kms-admin"}"#,
            r#"{"AWS":"arn:aws:sts::111122223333:assumed-role/kms-admin/alice"}"#,
        ] {
            let p = policy(&format!(
                r#"{{"Effect":"Allow","Principal":{principal},"Action":"kms:*","Resource":"*"}}"#
            ));
            assert_eq!(
                access(&p, ADMIN, PUT).decision(),
                Decision::NotAllowed,
                "{principal}"
            );
        }
    }

    #[test]
    fn given_a_role_with_a_path_when_checked_then_only_its_full_arn_matches() {
        let with_path = "arn:aws:iam::111122223333:role/ops/kms-admin";
        let p = policy(&format!(
            r#"{{"Effect":"Allow","Principal":{{"AWS":"{with_path}"}},"Action":"kms:*","Resource":"*"}}"#
        ));
        assert_eq!(access(&p, with_path, PUT), Access::Allowed);
        assert_eq!(access(&p, ADMIN, PUT).decision(), Decision::NotAllowed);
    }

    #[test]
    fn given_a_unique_id_of_a_deleted_role_when_checked_then_it_does_not_match_the_role() {
        let p = policy(
            r#"{"Effect":"Allow","Principal":{"AWS":"AROAEXAMPLEID1234567"},"Action":"kms:*","Resource":"*"},
               {"Effect":"Deny","Principal":{"AWS":"AROAEXAMPLEID7654321"},"Action":"kms:*","Resource":"*"}"#,
        );
        assert!(reason(access(&p, ADMIN, PUT)).contains("no Allow statement names it"));
    }

    #[test]
    fn given_an_allow_with_not_principal_when_checked_then_not_access() {
        let p = policy(
            r#"{"Effect":"Allow","NotPrincipal":{"AWS":"arn:aws:iam::444455556666:root"},"Action":"kms:*","Resource":"*"}"#,
        );
        assert!(reason(access(&p, ADMIN, PUT)).contains("NotPrincipal"));
    }

    #[test]
    fn given_several_requirements_when_checked_then_every_failure_is_listed() {
        let p = policy(
            r#"{"Sid":"EnableRootAccess","Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"kms:*","Resource":"*"},
               {"Sid":"Admin","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/kms-admin"},"Action":"kms:*","Resource":"*"},
               {"Sid":"NoBreakGlassDecrypt","Effect":"Deny","Principal":{"AWS":"arn:aws:iam::111122223333:role/break-glass"},"Action":"kms:Decrypt","Resource":"*"}"#,
        );
        let problems = lockout_problems(
            &p,
            &[
                (ADMIN, PUT),
                ("arn:aws:iam::111122223333:role/break-glass", PUT),
                ("arn:aws:iam::111122223333:role/break-glass", "kms:Decrypt"),
                ("arn:aws:iam::444455556666:role/auditor", "kms:DescribeKey"),
            ],
            false,
        );
        assert_eq!(problems.len(), 3, "{problems:#?}");
        assert!(problems[0].contains("role/break-glass may call kms:PutKeyPolicy only through"));
        assert!(problems[1].contains("\"NoBreakGlassDecrypt\""));
        assert!(problems[2].contains("role/auditor may not call kms:DescribeKey"));
    }

    const REPLICATION: &str = "arn:aws:iam::111122223333:role/s3-replication";
    const ENCRYPT: &str = "kms:Encrypt";
    const GENERATE: &str = "kms:GenerateDataKey";
    const S3_WEST_2: &str = "s3.us-west-2.amazonaws.com";

    /// S3 replicating into us-west-2 on behalf of the replication role.
    fn through_s3() -> RequestContext {
        RequestContext::new()
            .with("kms:ViaService", S3_WEST_2)
            .with("kms:CallerAccount", "111122223333")
    }

    /// An Allow of Encrypt and GenerateDataKey to the replication role under `condition`.
    fn replication_allow(condition: &str) -> String {
        format!(
            r#"{{"Sid":"AllowReplication","Effect":"Allow","Principal":{{"AWS":"{REPLICATION}"}},
                "Action":["kms:Encrypt","kms:GenerateDataKey"],"Resource":"*","Condition":{condition}}}"#
        )
    }

    #[test]
    fn given_an_allow_via_s3_in_the_replica_region_when_s3_asks_there_then_allowed() {
        let p = policy(&replication_allow(
            r#"{"StringEquals":{"kms:ViaService":"s3.us-west-2.amazonaws.com","kms:CallerAccount":"111122223333"}}"#,
        ));
        for action in [ENCRYPT, GENERATE] {
            assert_eq!(
                access_in_context(&p, REPLICATION, action, &through_s3()),
                Access::Allowed,
                "{action}"
            );
        }
        // Without a context nothing is known, exactly as before.
        assert!(reason(access(&p, REPLICATION, ENCRYPT)).contains("only under conditions"));
    }

    #[test]
    fn given_an_allow_via_s3_in_another_region_when_s3_asks_then_not_allowed_naming_both() {
        let p = policy(&replication_allow(
            r#"{"StringEquals":{"kms:ViaService":"s3.eu-west-1.amazonaws.com"}}"#,
        ));
        let why = reason(access_in_context(&p, REPLICATION, ENCRYPT, &through_s3()));
        assert_eq!(
            why,
            "statement \"AllowReplication\" allows it only when kms:ViaService is \
             s3.eu-west-1.amazonaws.com, and the request comes through s3.us-west-2.amazonaws.com"
        );
    }

    #[test]
    fn given_a_string_like_allow_for_s3_in_any_region_when_s3_asks_then_allowed() {
        let p = policy(&replication_allow(
            r#"{"StringLike":{"kms:ViaService":"s3.*.amazonaws.com"}}"#,
        ));
        assert_eq!(
            access_in_context(&p, REPLICATION, GENERATE, &through_s3()),
            Access::Allowed
        );
        let ec2 = RequestContext::new().with("kms:ViaService", "ec2.us-west-2.amazonaws.com");
        assert!(reason(access_in_context(&p, REPLICATION, GENERATE, &ec2)).contains("is like s3.*"));
    }

    #[test]
    fn given_a_deny_unless_via_listed_services_when_s3_is_listed_or_not_then_skipped_or_denied() {
        let deny = |services: &str| {
            format!(
                r#"{},{{"Sid":"OnlyThroughServices","Effect":"Deny","Principal":"*","Action":"kms:*","Resource":"*",
                    "Condition":{{"StringNotEquals":{{"kms:ViaService":{services}}}}}}}"#,
                replication_allow(r#"{"StringLike":{"kms:ViaService":"s3.*.amazonaws.com"}}"#)
            )
        };
        let listed = policy(&deny(
            r#"["s3.us-west-2.amazonaws.com","ec2.us-west-2.amazonaws.com"]"#,
        ));
        assert_eq!(
            access_in_context(&listed, REPLICATION, ENCRYPT, &through_s3()),
            Access::Allowed
        );
        let unlisted = policy(&deny(r#"["ec2.us-west-2.amazonaws.com"]"#));
        assert_eq!(
            access_in_context(&unlisted, REPLICATION, ENCRYPT, &through_s3()),
            Access::Denied {
                statement: "\"OnlyThroughServices\"".into()
            }
        );
        let caller = Caller::parse(REPLICATION);
        let known = through_s3().for_caller(&caller);
        let detail = evaluate(&unlisted, &caller, ENCRYPT, Some(&known)).detail;
        assert_eq!(
            detail,
            "names every principal (\"*\") (its conditions hold: kms:ViaService is not \
             ec2.us-west-2.amazonaws.com, and the request comes through s3.us-west-2.amazonaws.com)"
        );
    }

    #[test]
    fn given_a_deny_to_all_but_listed_principal_arns_when_the_role_is_listed_then_not_denied() {
        let p = policy(&format!(
            r#"{},{{"Sid":"OnlyListedRoles","Effect":"Deny","Principal":"*","Action":"kms:*","Resource":"*",
                "Condition":{{"StringNotEquals":{{"aws:PrincipalArn":["{REPLICATION}","{ADMIN}"]}}}}}}"#,
            replication_allow(
                r#"{"StringEquals":{"kms:ViaService":"s3.us-west-2.amazonaws.com"}}"#
            )
        ));
        // aws:PrincipalArn comes from the principal evaluated, whatever the context says.
        let lying = through_s3().with("aws:PrincipalArn", "arn:aws:iam::111122223333:role/x");
        assert_eq!(
            access_in_context(&p, REPLICATION, ENCRYPT, &lying),
            Access::Allowed
        );
        let other = "arn:aws:iam::111122223333:role/other";
        assert_eq!(
            access_in_context(&p, other, ENCRYPT, &through_s3()).decision(),
            Decision::Denied
        );
        // A session ARN does not tell its role's ARN, so the Deny may apply.
        let session = "arn:aws:sts::111122223333:assumed-role/s3-replication/s";
        assert_eq!(
            access_in_context(&p, session, ENCRYPT, &through_s3()).decision(),
            Decision::Denied
        );
        assert_eq!(
            access(&p, REPLICATION, ENCRYPT).decision(),
            Decision::Denied
        );
    }

    #[test]
    fn given_a_condition_on_a_key_not_in_the_context_when_checked_then_allow_void_and_deny_applies()
    {
        let allow = policy(&replication_allow(
            r#"{"StringEquals":{"kms:ViaService":"s3.us-west-2.amazonaws.com"},
                "StringLike":{"kms:EncryptionContext:aws:s3:arn":"arn:aws:s3:::replica-bucket/*"}}"#,
        ));
        let why = reason(access_in_context(
            &allow,
            REPLICATION,
            ENCRYPT,
            &through_s3(),
        ));
        assert!(
            why.contains("kms:EncryptionContext:aws:s3:arn is like arn:aws:s3:::replica-bucket/*")
                && why.contains("is not known"),
            "{why}"
        );
        let deny = with_admin(
            r#"{"Sid":"OnlyReplicaBucket","Effect":"Deny","Principal":"*","Action":"kms:*","Resource":"*",
                "Condition":{"StringNotLike":{"kms:EncryptionContext:aws:s3:arn":"arn:aws:s3:::replica-bucket/*"}}}"#,
        );
        assert_eq!(
            access_in_context(&deny, ADMIN, ENCRYPT, &through_s3()).decision(),
            Decision::Denied
        );
    }

    #[test]
    fn given_if_exists_and_null_when_the_key_is_known_or_not_then_judged_like_the_plain_operator() {
        let allow = |condition: &str| policy(&replication_allow(condition));
        let equals =
            allow(r#"{"StringEqualsIfExists":{"kms:ViaService":"s3.us-west-2.amazonaws.com"}}"#);
        assert_eq!(
            access_in_context(&equals, REPLICATION, ENCRYPT, &through_s3()),
            Access::Allowed
        );
        let elsewhere = RequestContext::new().with("kms:ViaService", "s3.eu-west-1.amazonaws.com");
        assert!(
            reason(access_in_context(&equals, REPLICATION, ENCRYPT, &elsewhere))
                .contains("or is absent, and the request comes through s3.eu-west-1")
        );
        // Absent would satisfy it, present with another value would not: unknown.
        assert!(reason(access_in_context(
            &equals,
            REPLICATION,
            ENCRYPT,
            &RequestContext::new()
        ))
        .contains("is not known"));
        let present = allow(r#"{"Null":{"kms:ViaService":"false"}}"#);
        assert_eq!(
            access_in_context(&present, REPLICATION, ENCRYPT, &through_s3()),
            Access::Allowed
        );
        assert_eq!(
            access_in_context(&present, REPLICATION, ENCRYPT, &RequestContext::new()).decision(),
            Decision::NotAllowed
        );
        for deny in [
            r#"{"Effect":"Deny","Principal":"*","Action":"kms:*","Resource":"*",
                "Condition":{"StringNotEqualsIfExists":{"kms:ViaService":"s3.us-west-2.amazonaws.com"}}}"#,
            r#"{"Effect":"Deny","Principal":"*","Action":"kms:*","Resource":"*",
                "Condition":{"Null":{"kms:ViaService":"true"}}}"#,
            r#"{"Effect":"Deny","Principal":"*","Action":"kms:*","Resource":"*",
                "Condition":{"BoolIfExists":{"aws:ViaAWSService":"false"}}}"#,
        ] {
            let p = with_admin(deny);
            let via_aws = through_s3().with("aws:ViaAWSService", "TRUE");
            assert_eq!(
                access_in_context(&p, ADMIN, ENCRYPT, &via_aws),
                Access::Allowed,
                "{deny}"
            );
            assert_eq!(
                access_in_context(&p, ADMIN, ENCRYPT, &RequestContext::new()).decision(),
                Decision::Denied,
                "{deny}"
            );
        }
    }

    #[test]
    fn given_keys_in_any_case_and_ignore_case_operators_when_checked_then_keys_match_values_per_operator(
    ) {
        let context = RequestContext::new().with("KMS:viaService", S3_WEST_2);
        assert_eq!(context.get("kms:ViaService"), Some(S3_WEST_2));
        let allow = |condition: &str| policy(&replication_allow(condition));
        let upper_key =
            allow(r#"{"StringEquals":{"KMS:VIASERVICE":"s3.us-west-2.amazonaws.com"}}"#);
        assert_eq!(
            access_in_context(&upper_key, REPLICATION, ENCRYPT, &context),
            Access::Allowed
        );
        let upper_value =
            allow(r#"{"StringEquals":{"kms:ViaService":"S3.US-WEST-2.AMAZONAWS.COM"}}"#);
        assert_eq!(
            access_in_context(&upper_value, REPLICATION, ENCRYPT, &context).decision(),
            Decision::NotAllowed
        );
        let ignoring =
            allow(r#"{"StringEqualsIgnoreCase":{"kms:ViaService":"S3.US-WEST-2.AMAZONAWS.COM"}}"#);
        assert_eq!(
            access_in_context(&ignoring, REPLICATION, ENCRYPT, &context),
            Access::Allowed
        );
        let deny = with_admin(
            r#"{"Effect":"Deny","Principal":"*","Action":"kms:*","Resource":"*",
                "Condition":{"StringNotEqualsIgnoreCase":{"kms:viaservice":["S3.US-WEST-2.AMAZONAWS.COM"]}}}"#,
        );
        assert_eq!(
            access_in_context(&deny, ADMIN, ENCRYPT, &context),
            Access::Allowed
        );
        let other = RequestContext::new().with("kms:ViaService", "ec2.us-west-2.amazonaws.com");
        assert_eq!(
            access_in_context(&deny, ADMIN, ENCRYPT, &other).decision(),
            Decision::Denied
        );
    }

    #[test]
    fn given_set_operators_other_operators_or_policy_variables_when_checked_then_unknown() {
        for condition in [
            r#"{"ForAnyValue:StringEquals":{"kms:ViaService":"s3.us-west-2.amazonaws.com"}}"#,
            r#"{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::111122223333:role/*"}}"#,
            r#"{"StringEquals":{"kms:ViaService":"${aws:username}"}}"#,
            r#"{"NullIfExists":{"kms:ViaService":"false"}}"#,
        ] {
            let allow = policy(&replication_allow(condition));
            assert_eq!(
                access_in_context(&allow, REPLICATION, ENCRYPT, &through_s3()).decision(),
                Decision::NotAllowed,
                "{condition}"
            );
            let deny = with_admin(&format!(
                r#"{{"Effect":"Deny","Principal":"*","Action":"kms:*","Resource":"*","Condition":{condition}}}"#
            ));
            assert_eq!(
                access_in_context(&deny, ADMIN, ENCRYPT, &through_s3()).decision(),
                Decision::Denied,
                "{condition}"
            );
        }
        let set = policy(&replication_allow(
            r#"{"ForAnyValue:StringEquals":{"kms:ViaService":"s3.us-west-2.amazonaws.com"}}"#,
        ));
        let why = reason(access_in_context(&set, REPLICATION, ENCRYPT, &through_s3()));
        assert!(why.contains("an operator not evaluated here"), "{why}");
    }

    #[test]
    fn given_long_condition_values_when_reported_then_the_reason_is_bounded() {
        let long = "s".repeat(500);
        let p = policy(&replication_allow(&format!(
            r#"{{"StringEquals":{{"kms:ViaService":["{long}","a","b","c","d","e","f"]}}}}"#
        )));
        let context = RequestContext::new().with("kms:ViaService", long.repeat(2));
        let why = reason(access_in_context(&p, REPLICATION, ENCRYPT, &context));
        assert!(why.chars().count() < 400, "{why}");
    }

    #[test]
    fn given_odd_principals_and_actions_when_checked_then_nothing_panics() {
        let p = with_admin(
            r#"{"Sid":"é","Effect":"Deny","NotPrincipal":{"AWS":["arn:","arn:aws:sts::1:assumed-role","arn:aws:sts::111122223333:assumed-role/x"]},"NotAction":"","Resource":"*"}"#,
        );
        let long = "é".repeat(500);
        for principal in [
            "",
            "*",
            "arn",
            "arn:aws:iam::",
            ":::::::",
            "arn:aws:iam::111122223333:role/",
            long.as_str(),
        ] {
            for action in ["", "*", "kms:", long.as_str()] {
                let _ = access(&p, principal, action);
                for problem in lockout_problems(&p, &[(principal, action)], false) {
                    assert!(problem.chars().count() < 600, "{problem}");
                }
            }
        }
    }
}

/// Properties tying the canonical form (`semantically_equal`) to what policies grant.
#[cfg(test)]
mod properties {
    use std::sync::LazyLock;

    use super::*;
    use proptest::prelude::*;
    use serde_json::{json, Map, Value};

    /// A reference reading of a key policy, written apart from `crate::policy::model`: the
    /// evaluator's conservative semantics (module documentation, `evaluate`) applied to the
    /// JSON document as written, never to the canonical `StatementBody`. With a request
    /// context it also evaluates the conditions it knows, so condition keys and values count.
    mod oracle {
        use std::borrow::Cow;
        use std::collections::BTreeMap;

        use serde_json::{Map, Value};

        use crate::policy::evaluate::Decision;

        /// Condition key (lower case) to the request's value. [`decide`] with `None` is the
        /// evaluator's view: nothing is known about the request, so a conditional Deny applies
        /// and a conditional Allow grants nothing.
        pub type Context = BTreeMap<String, String>;

        /// How one principal value relates to the caller.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        enum Names {
            Exactly,
            Account,
            Everyone,
            EverySession,
            OneSession,
        }

        /// The values of an element, a lone value or a list; booleans and numbers as text.
        fn values(element: Option<&Value>) -> Vec<Cow<'_, str>> {
            fn scalar(v: &Value) -> Option<Cow<'_, str>> {
                match v {
                    Value::String(s) => Some(Cow::Borrowed(s)),
                    Value::Bool(b) => Some(Cow::Owned(b.to_string())),
                    Value::Number(n) => Some(Cow::Owned(n.to_string())),
                    _ => None,
                }
            }
            match element {
                None => Vec::new(),
                Some(Value::Array(items)) => items.iter().filter_map(scalar).collect(),
                Some(single) => scalar(single).into_iter().collect(),
            }
        }

        fn is_account(text: &str) -> bool {
            text.len() == 12 && text.bytes().all(|b| b.is_ascii_digit())
        }

        /// (service, account, resource) of a global IAM or STS ARN of a 12-digit account.
        fn global_arn(text: &str) -> Option<(&str, &str, &str)> {
            let parts: Vec<&str> = text.splitn(6, ':').collect();
            let [arn, partition, service, region, account, resource] = parts[..] else {
                return None;
            };
            (arn == "arn"
                && !partition.is_empty()
                && matches!(service, "iam" | "sts")
                && region.is_empty()
                && is_account(account)
                && !resource.is_empty())
            .then_some((service, account, resource))
        }

        struct Caller<'a> {
            arn: &'a str,
            account: Option<&'a str>,
            /// Last segment of an IAM role's path: what its session ARNs carry.
            role: Option<&'a str>,
        }

        fn caller(arn: &str) -> Caller<'_> {
            if is_account(arn) {
                return Caller {
                    arn,
                    account: Some(arn),
                    role: None,
                };
            }
            let parsed = global_arn(arn);
            Caller {
                arn,
                account: parsed.map(|(_, account, _)| account),
                role: parsed
                    .filter(|(service, ..)| *service == "iam")
                    .and_then(|(_, _, resource)| resource.strip_prefix("role/"))
                    .and_then(|path| path.rsplit('/').next()),
            }
        }

        fn relation(value: &str, who: &Caller) -> Option<Names> {
            if value == "*" {
                return Some(Names::Everyone);
            }
            if let Some(account) = who.account {
                let root = global_arn(value)
                    .is_some_and(|(s, a, r)| s == "iam" && a == account && r == "root");
                if value == account || root {
                    return Some(Names::Account);
                }
            }
            if value == who.arn {
                return Some(Names::Exactly);
            }
            let (_, account, resource) = global_arn(value).filter(|(s, ..)| *s == "sts")?;
            let (role, session) = resource.strip_prefix("assumed-role/")?.split_once('/')?;
            (who.account == Some(account) && who.role == Some(role)).then_some(if session == "*" {
                Names::EverySession
            } else {
                Names::OneSession
            })
        }

        /// How a `Principal` or `NotPrincipal` element names the caller: only `AWS` values
        /// can be an IAM principal, and a bare `"*"` is `{"AWS": "*"}`.
        fn relations(element: Option<&Value>, who: &Caller) -> Vec<Names> {
            let aws = match element {
                Some(Value::String(s)) if s == "*" => vec![Cow::Borrowed(s.as_str())],
                Some(Value::Object(kinds)) => values(kinds.get("AWS")),
                _ => Vec::new(),
            };
            aws.iter().filter_map(|v| relation(v, who)).collect()
        }

        /// IAM action patterns: `*` any run, `?` one character, ASCII case ignored.
        fn glob(pattern: &str, text: &str) -> bool {
            glob_by(pattern, text, |a, b| a.eq_ignore_ascii_case(&b))
        }

        /// `*` any run, `?` one character, other characters equal by `same`.
        fn glob_by(pattern: &str, text: &str, same: fn(char, char) -> bool) -> bool {
            let mut p = pattern.chars();
            match p.next() {
                None => text.is_empty(),
                Some('*') => {
                    let rest = p.as_str();
                    text.char_indices()
                        .map(|(i, _)| i)
                        .chain([text.len()])
                        .any(|i| glob_by(rest, &text[i..], same))
                }
                Some(first) => {
                    let mut t = text.chars();
                    t.next().is_some_and(|c| first == '?' || same(first, c))
                        && glob_by(p.as_str(), t.as_str(), same)
                }
            }
        }

        fn covers(statement: &Raw, action: &str) -> bool {
            let any_matches = |patterns| values(Some(patterns)).iter().any(|p| glob(p, action));
            match (statement.action, statement.not_action) {
                (Some(patterns), _) => any_matches(patterns),
                (None, Some(excluded)) => !any_matches(excluded),
                (None, None) => false,
            }
        }

        /// Three-valued OR: true wins, then unknown.
        fn or(a: Option<bool>, b: Option<bool>) -> Option<bool> {
            match (a, b) {
                (Some(true), _) | (_, Some(true)) => Some(true),
                (Some(false), Some(false)) => Some(false),
                _ => None,
            }
        }

        /// Three-valued AND: false wins, then unknown.
        fn and(a: Option<bool>, b: Option<bool>) -> Option<bool> {
            match (a, b) {
                (Some(false), _) | (_, Some(false)) => Some(false),
                (Some(true), Some(true)) => Some(true),
                _ => None,
            }
        }

        /// What the oracle knows of the request.
        #[derive(Clone, Copy)]
        enum Request<'a> {
            /// Nothing: the view of `access`.
            Unknown,
            /// Exactly these keys: any other is absent from the request.
            Complete(&'a Context),
            /// These keys: any other may be present or not, as `access_in_context` reads its
            /// context.
            Partial(&'a Context),
        }

        /// One operator on one key, written `op`, with the request's value `actual`; `None`
        /// when that cannot be told. `partial`: a key missing from the request is unknown
        /// rather than absent.
        fn entry(
            op: &str,
            wanted: &[Cow<str>],
            actual: Option<&String>,
            partial: bool,
        ) -> Option<bool> {
            if op == "Null" {
                // "true" asks for the key to be absent, "false" for it to be present.
                let wants_absent = |w: &Cow<str>| {
                    if w.eq_ignore_ascii_case("true") {
                        Some(true)
                    } else if w.eq_ignore_ascii_case("false") {
                        Some(false)
                    } else {
                        None
                    }
                };
                return match (actual, partial) {
                    (None, true) => None,
                    (None, false) => Some(wanted.iter().any(|w| wants_absent(w) == Some(true))),
                    (Some(_), _) => wanted
                        .iter()
                        .fold((!wanted.is_empty()).then_some(false), |any, w| {
                            or(any, wants_absent(w).map(|absent| !absent))
                        }),
                };
            }
            let (base, if_exists) = match op.strip_suffix("IfExists") {
                Some(base) => (base, true),
                None => (op, false),
            };
            fn ignoring_case(w: &str, a: &str) -> bool {
                w.chars()
                    .flat_map(char::to_lowercase)
                    .eq(a.chars().flat_map(char::to_lowercase))
            }
            fn like(w: &str, a: &str) -> bool {
                glob_by(w, a, |x, y| x == y)
            }
            let (same, negated): (fn(&str, &str) -> bool, bool) = match base {
                "StringEquals" => (|w, a| w == a, false),
                "StringNotEquals" => (|w, a| w == a, true),
                "StringEqualsIgnoreCase" => (ignoring_case, false),
                "StringNotEqualsIgnoreCase" => (ignoring_case, true),
                "StringLike" => (like, false),
                "StringNotLike" => (like, true),
                "Bool" => (|w, a| w.eq_ignore_ascii_case(a), false),
                _ => return None,
            };
            let Some(actual) = actual else {
                // Absent from a complete request: only IfExists and negated operators hold.
                return (!partial).then_some(if_exists || negated);
            };
            // A policy variable is not substituted, so its comparison is unknown.
            let any = wanted
                .iter()
                .fold((!wanted.is_empty()).then_some(false), |any, w| {
                    or(any, (!w.contains("${")).then(|| same(w, actual)))
                });
            if negated {
                any.map(|m| !m)
            } else {
                any
            }
        }

        /// Whether the statement's Condition holds in `request`; `None` when that cannot be
        /// told (nothing known, a key not known, or an operator this oracle does not model).
        /// Every key as written is a condition of its own, looked up case-insensitively, so
        /// `kms:ViaService` and `KMS:viaservice` side by side must both hold.
        fn condition(statement: &Raw, request: Request) -> Option<bool> {
            let ops = match statement.condition {
                Some(Value::Object(ops)) if !ops.is_empty() => ops,
                _ => return Some(true),
            };
            let (context, partial) = match request {
                Request::Unknown => return None,
                Request::Complete(context) => (context, false),
                Request::Partial(context) => (context, true),
            };
            let mut holds = Some(true);
            for (op, keys) in ops {
                let keys = keys.as_object().filter(|k| !k.is_empty());
                let Some(keys) = keys else {
                    holds = and(holds, None);
                    continue;
                };
                for (key, wanted) in keys {
                    let wanted = values(Some(wanted));
                    let actual = context.get(&key.to_ascii_lowercase());
                    holds = and(holds, entry(op, &wanted, actual, partial));
                }
            }
            holds
        }

        /// Whether a Deny may apply to the caller, whatever its Resource.
        fn deny_applies(statement: &Raw, who: &Caller) -> bool {
            if !relations(statement.principal, who).is_empty() {
                return true;
            }
            match (statement.principal, statement.not_principal) {
                // Spares a role only for exact sessions, which a policy cannot promise.
                (_, Some(_)) => true,
                // Names nobody: what it meant is unknown, so it may apply to anyone.
                (None, None) => true,
                (Some(_), None) => false,
            }
        }

        /// One statement's elements as written.
        struct Raw<'a> {
            effect: Option<&'a str>,
            principal: Option<&'a Value>,
            not_principal: Option<&'a Value>,
            action: Option<&'a Value>,
            not_action: Option<&'a Value>,
            resource: Option<&'a Value>,
            not_resource: Option<&'a Value>,
            condition: Option<&'a Value>,
        }

        /// A policy document's statements, looked up once.
        pub struct Document<'a>(Vec<Raw<'a>>);

        impl<'a> Document<'a> {
            pub fn read(document: &'a Value) -> Document<'a> {
                let statements: Vec<&Map<String, Value>> = match document.get("Statement") {
                    Some(Value::Array(items)) => {
                        items.iter().filter_map(Value::as_object).collect()
                    }
                    Some(Value::Object(one)) => vec![one],
                    _ => Vec::new(),
                };
                Document(
                    statements
                        .into_iter()
                        .map(|s| Raw {
                            effect: s.get("Effect").and_then(Value::as_str),
                            principal: s.get("Principal"),
                            not_principal: s.get("NotPrincipal"),
                            action: s.get("Action"),
                            not_action: s.get("NotAction"),
                            resource: s.get("Resource"),
                            not_resource: s.get("NotResource"),
                            condition: s.get("Condition"),
                        })
                        .collect(),
                )
            }
        }

        /// `context` `None`: nothing known (the view of `access`); `Some`: exactly these keys,
        /// any other absent.
        pub fn decide(
            document: &Document,
            principal: &str,
            action: &str,
            context: Option<&Context>,
        ) -> Decision {
            let request = match context {
                None => Request::Unknown,
                Some(context) => Request::Complete(context),
            };
            decide_in(document, principal, action, request)
        }

        /// The view of `access_in_context`: `context` and what the caller settles itself
        /// (`aws:principalaccount`, and `aws:principalarn` for an IAM ARN) are known, any other
        /// key is unknown.
        pub fn decide_partial(
            document: &Document,
            principal: &str,
            action: &str,
            context: &Context,
        ) -> Decision {
            let mut known = context.clone();
            let who = caller(principal);
            if let Some(account) = who.account {
                known.insert("aws:principalaccount".into(), account.into());
            }
            if global_arn(principal).is_some_and(|(service, ..)| service == "iam") {
                known.insert("aws:principalarn".into(), principal.into());
            }
            decide_in(document, principal, action, Request::Partial(&known))
        }

        fn decide_in(
            document: &Document,
            principal: &str,
            action: &str,
            request: Request,
        ) -> Decision {
            let who = caller(principal);
            let covering = document.0.iter().filter(|s| covers(s, action));
            if covering.clone().any(|s| {
                s.effect == Some("Deny")
                    && deny_applies(s, &who)
                    && condition(s, request) != Some(false)
            }) {
                return Decision::Denied;
            }
            let mut named = Vec::new();
            for s in covering.filter(|s| s.effect == Some("Allow")) {
                // In a key policy only "Resource": "*" is this key.
                let this_key =
                    s.not_resource.is_none() && values(s.resource).iter().any(|r| r == "*");
                // IAM does not support NotPrincipal with Allow.
                if s.not_principal.is_none() && this_key && condition(s, request) == Some(true) {
                    named.extend(relations(s.principal, &who));
                }
            }
            if named.contains(&Names::Exactly) {
                Decision::Allowed
            } else if named.contains(&Names::Account) {
                Decision::ViaIam
            } else {
                Decision::NotAllowed
            }
        }
    }

    const ACCOUNT: &str = "111122223333";
    const ROOT: &str = "arn:aws:iam::111122223333:root";
    const ADMIN: &str = "arn:aws:iam::111122223333:role/kms-admin";
    const OPS_ADMIN: &str = "arn:aws:iam::111122223333:role/ops/kms-admin";
    const KEY_ARN: &str = "arn:aws:kms:eu-west-1:111122223333:key/k";

    /// Who asks.
    const CALLERS: &[&str] = &[
        "*",
        ROOT,
        ACCOUNT,
        ADMIN,
        OPS_ADMIN,
        "arn:aws:iam::444455556666:role/kms-admin",
    ];
    /// What it asks for.
    const ACTIONS: &[&str] = &[
        "kms:PutKeyPolicy",
        "kms:GetKeyPolicy",
        "kms:Decrypt",
        "kms:CreateGrant",
    ];
    /// What statements name.
    const PRINCIPALS: &[&str] = &[
        "*",
        ROOT,
        ACCOUNT,
        ADMIN,
        OPS_ADMIN,
        "arn:aws:sts::111122223333:assumed-role/kms-admin/*",
        "arn:aws:sts::111122223333:assumed-role/kms-admin/alice",
        "444455556666",
    ];
    const PATTERNS: &[&str] = &[
        "kms:*",
        "kms:Put*",
        "kms:PutKeyPolicy",
        "kms:GetKeyPolicy",
        "kms:?etKeyPolicy",
        "kms:Decrypt",
        "*",
    ];

    static CONDITIONS: LazyLock<Vec<Value>> = LazyLock::new(|| {
        vec![
            json!({"StringEquals": {"kms:ViaService": "a"}}),
            json!({"StringEquals": {"KMS:viaservice": "b"}}),
            json!({"StringEquals": {"kms:ViaService": "a", "KMS:viaservice": "b"}}),
            json!({"StringEquals": {"kms:viaservice": ["a", "b"]}}),
            json!({"StringEquals": {"kms:ViaService": "A"}}),
            json!({"StringNotEquals": {"kms:ViaService": "a"}}),
            json!({"Bool": {"aws:MultiFactorAuthPresent": "true"}}),
            json!({"Bool": {"aws:MultiFactorAuthPresent": true}}),
            json!({
                "StringEquals": {"kms:ViaService": "a"},
                "Bool": {"aws:MultiFactorAuthPresent": "true"}
            }),
            json!({"StringLike": {"kms:ViaService": "a*"}}),
            json!({"StringNotLike": {"kms:ViaService": ["?", "b*"]}}),
            json!({"StringEqualsIgnoreCase": {"kms:ViaService": "A"}}),
            json!({"StringNotEqualsIgnoreCase": {"kms:ViaService": ["B", "c"]}}),
            json!({"StringEqualsIfExists": {"kms:ViaService": "a"}}),
            json!({"StringNotEqualsIfExists": {"kms:ViaService": ["a", "b"]}}),
            json!({"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}}),
            json!({"Null": {"kms:ViaService": "false"}}),
            json!({"Null": {"aws:MultiFactorAuthPresent": "true"}}),
            json!({"StringNotEquals": {"aws:PrincipalArn": [ADMIN, OPS_ADMIN]}}),
            json!({"StringLike": {"aws:PrincipalArn": "arn:aws:iam::111122223333:role/*"}}),
            json!({"StringEquals": {"aws:PrincipalAccount": ACCOUNT}}),
            json!({"ForAnyValue:StringEquals": {"kms:ViaService": "a"}}),
            json!({
                "StringLike": {"kms:ViaService": "a*"},
                "StringNotEqualsIfExists": {"aws:MultiFactorAuthPresent": "false"}
            }),
        ]
    });

    /// `None` (unknown: the evaluator's view) and requests that tell the conditions apart.
    fn contexts() -> Vec<Option<oracle::Context>> {
        let context = |pairs: &[(&str, &str)]| {
            Some(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            )
        };
        vec![
            None,
            context(&[]),
            context(&[
                ("kms:viaservice", "a"),
                ("aws:multifactorauthpresent", "true"),
            ]),
            context(&[
                ("kms:viaservice", "b"),
                ("aws:multifactorauthpresent", "false"),
            ]),
            context(&[("kms:viaservice", "A")]),
            context(&[("kms:viaservice", "ab")]),
            context(&[("aws:multifactorauthpresent", "true")]),
        ]
    }

    fn document(text: &str) -> Value {
        serde_json::from_str(text).unwrap()
    }

    /// The first caller, action and request where the oracle tells `a` and `b` apart.
    fn oracle_difference(a: &Value, b: &Value) -> Option<String> {
        let (a, b) = (oracle::Document::read(a), oracle::Document::read(b));
        let contexts = contexts();
        for principal in CALLERS {
            for action in ACTIONS {
                for context in &contexts {
                    let (da, db) = (
                        oracle::decide(&a, principal, action, context.as_ref()),
                        oracle::decide(&b, principal, action, context.as_ref()),
                    );
                    if da != db {
                        return Some(format!(
                            "{principal} calling {action} in request {context:?}: {da:?} vs {db:?}"
                        ));
                    }
                }
            }
        }
        None
    }

    /// The first caller and action where the evaluator and the oracle (no request context)
    /// disagree on one policy.
    fn oracle_disagreement(text: &str) -> Option<String> {
        let (policy, raw) = (Policy::parse(text).unwrap(), document(text));
        let raw = oracle::Document::read(&raw);
        CALLERS.iter().find_map(|principal| {
            ACTIONS.iter().find_map(|action| {
                let evaluated = access(&policy, principal, action).decision();
                let oracle = oracle::decide(&raw, principal, action, None);
                (evaluated != oracle).then(|| {
                    format!(
                        "{principal} calling {action}: evaluator {evaluated:?}, oracle {oracle:?}"
                    )
                })
            })
        })
    }

    /// The first caller, action and request where `access_in_context` and the oracle, both
    /// reading a missing key as unknown, disagree on one policy.
    fn oracle_disagreement_in_context(text: &str) -> Option<String> {
        let (policy, raw) = (Policy::parse(text).unwrap(), document(text));
        let raw = oracle::Document::read(&raw);
        for context in contexts() {
            let context = context.unwrap_or_default();
            // Upper-case keys: the evaluator must look them up case-insensitively.
            let request = context.iter().fold(RequestContext::new(), |r, (k, v)| {
                r.with(&k.to_ascii_uppercase(), v.as_str())
            });
            for principal in CALLERS {
                for action in ACTIONS {
                    let evaluated = access_in_context(&policy, principal, action, &request);
                    let oracle = oracle::decide_partial(&raw, principal, action, &context);
                    if evaluated.decision() != oracle {
                        return Some(format!(
                            "{principal} calling {action} in request {context:?}: evaluator \
                             {evaluated:?}, oracle {oracle:?}"
                        ));
                    }
                }
            }
        }
        None
    }

    /// One or more values, written as a list (or a bare string when `single` and only one).
    fn one_or_list(chosen: &[&str], single: bool) -> Value {
        match chosen {
            [one] if single => json!(one),
            _ => json!(chosen),
        }
    }

    fn subset(pool: &'static [&'static str]) -> impl Strategy<Value = Vec<&'static str>> {
        proptest::sample::subsequence(pool, 1..=3)
    }

    fn statement() -> impl Strategy<Value = Value> {
        (
            proptest::bool::weighted(0.3),
            proptest::bool::weighted(0.2),
            subset(PRINCIPALS),
            proptest::bool::weighted(0.2),
            proptest::bool::weighted(0.2),
            subset(PATTERNS),
            proptest::bool::weighted(0.8),
            // More often the two conditions that differ only by how keys are split.
            proptest::option::weighted(
                0.5,
                prop_oneof![2 => 0..CONDITIONS.len(), 1 => prop_oneof![Just(2), Just(3)]],
            ),
        )
            .prop_map(
                |(
                    deny,
                    not_principal,
                    principals,
                    service,
                    not_action,
                    patterns,
                    everywhere,
                    condition,
                )| {
                    let mut s = Map::new();
                    s.insert("Effect".into(), json!(if deny { "Deny" } else { "Allow" }));
                    let mut kinds = json!({"AWS": one_or_list(&principals, true)});
                    if service {
                        kinds["Service"] = json!("logs.amazonaws.com");
                    }
                    let principal_key = if not_principal {
                        "NotPrincipal"
                    } else {
                        "Principal"
                    };
                    s.insert(principal_key.into(), kinds);
                    let action_key = if not_action { "NotAction" } else { "Action" };
                    s.insert(action_key.into(), one_or_list(&patterns, true));
                    s.insert(
                        "Resource".into(),
                        json!(if everywhere { "*" } else { KEY_ARN }),
                    );
                    if let Some(i) = condition {
                        s.insert("Condition".into(), CONDITIONS[i].clone());
                    }
                    Value::Object(s)
                },
            )
    }

    fn policy_value() -> impl Strategy<Value = Value> {
        proptest::collection::vec(statement(), 1..=3)
            .prop_map(|statements| json!({"Version": "2012-10-17", "Statement": statements}))
    }

    /// The same policy written differently: statements shuffled, Sids renamed or dropped,
    /// one-element lists as bare strings and back, lists reversed, action names and condition
    /// keys in other case, the account principal spelled the other way, `"*"` as
    /// `{"AWS": "*"}` and back.
    fn rewritten(value: &Value, seed: u64) -> Value {
        let mut statements = value["Statement"].as_array().cloned().unwrap_or_default();
        let n = statements.len().max(1);
        statements.rotate_left((seed as usize) % n);
        if seed % 3 == 0 {
            statements.reverse();
        }
        for (i, s) in statements.iter_mut().enumerate() {
            let Some(obj) = s.as_object_mut() else {
                continue;
            };
            if seed % 7 == 0 {
                obj.remove("Sid");
            } else {
                obj.insert("Sid".into(), json!(format!("S{seed}x{i}")));
            }
            for key in ["Action", "NotAction", "Resource"] {
                if let Some(v) = obj.get_mut(key) {
                    *v = respell(v, seed, |a| {
                        if seed % 2 == 0 {
                            a.to_ascii_uppercase()
                        } else {
                            a.to_ascii_lowercase()
                        }
                    });
                }
            }
            if let Some(Value::Object(ops)) = obj.get_mut("Condition") {
                for keys in ops.values_mut() {
                    *keys = recased_keys(keys, seed);
                    for v in keys
                        .as_object_mut()
                        .into_iter()
                        .flat_map(|k| k.values_mut())
                    {
                        *v = respell(v, seed / 4, str::to_string);
                    }
                }
            }
            for key in ["Principal", "NotPrincipal"] {
                // "Principal": "*" and {"AWS": "*"} are one principal.
                match obj.get(key) {
                    Some(Value::String(_)) => {
                        obj.insert(key.into(), json!({"AWS": "*"}));
                        continue;
                    }
                    Some(Value::Object(kinds))
                        if kinds.len() == 1 && kinds.get("AWS") == Some(&json!("*")) =>
                    {
                        obj.insert(key.into(), json!("*"));
                        continue;
                    }
                    _ => {}
                }
                if let Some(Value::Object(kinds)) = obj.get_mut(key) {
                    for v in kinds.values_mut() {
                        *v = respell(v, seed, |p| match p {
                            ACCOUNT => ROOT.to_string(),
                            ROOT => ACCOUNT.to_string(),
                            other => other.to_string(),
                        });
                    }
                }
            }
        }
        json!({"Version": "2012-10-17", "Statement": statements})
    }

    /// Condition keys in other case, unless two keys would then collide in the JSON object.
    fn recased_keys(keys: &Value, seed: u64) -> Value {
        let Value::Object(map) = keys else {
            return keys.clone();
        };
        let recase = |k: &str| {
            if seed % 2 == 0 {
                k.to_ascii_uppercase()
            } else {
                k.to_ascii_lowercase()
            }
        };
        let recased: Map<String, Value> = map.iter().map(|(k, v)| (recase(k), v.clone())).collect();
        if recased.len() == map.len() {
            Value::Object(recased)
        } else {
            keys.clone()
        }
    }

    /// `value` with each string mapped by `f` (key ARNs and `*` are left alone: Resource is
    /// case-sensitive), a lone value toggled between a bare value and a one-element list, and
    /// longer lists sometimes reversed.
    fn respell(value: &Value, seed: u64, f: impl Fn(&str) -> String) -> Value {
        let keep = |s: &str| s.starts_with("arn:aws:kms") || s == "*";
        let map = |v: &Value| match v {
            Value::String(s) if !keep(s) => json!(f(s)),
            other => other.clone(),
        };
        match value {
            Value::Array(items) if items.len() == 1 && seed % 4 >= 2 => map(&items[0]),
            Value::Array(items) => {
                let mut items: Vec<Value> = items.iter().map(map).collect();
                if seed % 5 == 0 {
                    items.reverse();
                }
                Value::Array(items)
            }
            single if seed % 4 < 2 => json!([map(single)]),
            single => map(single),
        }
    }

    /// `value` with one element of one statement changed: what the canonical form must not
    /// lose. Most change what the policy grants, some only how it is written.
    fn mutated(value: &Value, seed: u64) -> Value {
        let mut value = value.clone();
        let Some(statements) = value["Statement"].as_array_mut() else {
            return value;
        };
        // Changes to conditions come twice as often (fewer requests tell them apart), and go
        // to a statement that has some, when one does.
        let kind = match seed % 15 {
            13 => 9,
            14 => 10,
            kind => kind,
        };
        let mut candidates: Vec<usize> = (0..statements.len()).collect();
        if matches!(kind, 9 | 10) {
            candidates.retain(|&i| statements[i].get("Condition").is_some());
        }
        if candidates.is_empty() {
            candidates = (0..statements.len()).collect();
        }
        let Some(obj) = candidates
            .get((seed as usize / 16) % candidates.len().max(1))
            .and_then(|&i| statements[i].as_object_mut())
        else {
            return value;
        };
        let pick = |pool: &[&'static str]| pool[(seed as usize / 64) % pool.len()];
        let pick_condition = || CONDITIONS[(seed as usize / 64) % CONDITIONS.len()].clone();
        let rename = |obj: &mut Map<String, Value>, from: &str, to: &str| {
            if let Some(v) = obj.remove(from) {
                obj.insert(to.into(), v);
            } else if let Some(v) = obj.remove(to) {
                obj.insert(from.into(), v);
            }
        };
        let principal_key = if obj.contains_key("Principal") {
            "Principal"
        } else {
            "NotPrincipal"
        };
        match kind {
            0 => {
                let flipped = if obj["Effect"] == "Allow" {
                    "Deny"
                } else {
                    "Allow"
                };
                obj.insert("Effect".into(), json!(flipped));
            }
            1 => rename(obj, "Principal", "NotPrincipal"),
            2 => rename(obj, "Action", "NotAction"),
            3 => {
                let other = if obj["Resource"] == "*" { KEY_ARN } else { "*" };
                obj.insert("Resource".into(), json!(other));
            }
            4 if obj.contains_key("Condition") => {
                obj.remove("Condition");
            }
            4 | 5 => {
                obj.insert("Condition".into(), pick_condition());
            }
            6 => {
                // One more principal, next to those already named.
                if let Some(aws) = obj
                    .get_mut(principal_key)
                    .and_then(Value::as_object_mut)
                    .and_then(|kinds| kinds.get_mut("AWS"))
                {
                    let mut list = match aws.take() {
                        Value::Array(items) => items,
                        single => vec![single],
                    };
                    list.push(json!(pick(PRINCIPALS)));
                    *aws = Value::Array(list);
                }
            }
            7 => {
                // One principal swapped for a neighbour: its account, a role in it, a session.
                if let Some(aws) = obj
                    .get_mut(principal_key)
                    .and_then(Value::as_object_mut)
                    .and_then(|kinds| kinds.get_mut("AWS"))
                {
                    match aws {
                        Value::Array(items) if !items.is_empty() => {
                            let i = (seed as usize / 64) % items.len();
                            items[i] = json!(neighbour(items[i].as_str().unwrap_or_default()));
                        }
                        single => *single = json!(neighbour(single.as_str().unwrap_or_default())),
                    }
                }
            }
            8 => {
                let key = if obj.contains_key("Action") {
                    "Action"
                } else {
                    "NotAction"
                };
                obj.insert(key.into(), json!(pick(PATTERNS)));
            }
            9 => {
                // Condition values in other case: most operators compare them as written.
                if let Some(Value::Object(ops)) = obj.get_mut("Condition") {
                    for keys in ops.values_mut().filter_map(Value::as_object_mut) {
                        for v in keys.values_mut() {
                            *v = respell(v, 2, |s| {
                                if s.bytes().any(|b| b.is_ascii_lowercase()) {
                                    s.to_ascii_uppercase()
                                } else {
                                    s.to_ascii_lowercase()
                                }
                            });
                        }
                    }
                }
            }
            10 => {
                if let Some(Value::Object(ops)) = obj.get_mut("Condition") {
                    for keys in ops.values_mut().filter_map(Value::as_object_mut) {
                        *keys = merged_or_split(keys);
                    }
                }
            }
            11 => {
                obj.remove(principal_key);
            }
            _ => {
                obj.insert("NotResource".into(), json!(KEY_ARN));
            }
        }
        value
    }

    /// A principal that grants something else: the account instead of a role in it, a role
    /// instead of the account, one session instead of every session, ...
    fn neighbour(principal: &str) -> &'static str {
        match principal {
            ADMIN => ACCOUNT,
            ACCOUNT => OPS_ADMIN,
            ROOT => ADMIN,
            OPS_ADMIN => ROOT,
            "*" => ROOT,
            "arn:aws:sts::111122223333:assumed-role/kms-admin/*" => {
                "arn:aws:sts::111122223333:assumed-role/kms-admin/alice"
            }
            "arn:aws:sts::111122223333:assumed-role/kms-admin/alice" => ADMIN,
            _ => "*",
        }
    }

    /// Condition keys differing only in case (two conditions, both must hold) merged into one
    /// key (one condition, any value), or, when there are none, one key's values split over
    /// two such keys.
    fn merged_or_split(keys: &Map<String, Value>) -> Map<String, Value> {
        let list = |v: &Value| match v {
            Value::Array(items) => items.clone(),
            single => vec![single.clone()],
        };
        let mut merged = Map::new();
        for (key, values) in keys {
            match merged.iter_mut().find(|(k, _)| k.eq_ignore_ascii_case(key)) {
                Some((_, existing)) => {
                    *existing = Value::Array([list(existing), list(values)].concat())
                }
                None => {
                    merged.insert(key.clone(), values.clone());
                }
            }
        }
        if merged.len() < keys.len() {
            return merged;
        }
        let mut split = keys.clone();
        for (key, values) in keys {
            let other_case = if key.bytes().any(|b| b.is_ascii_lowercase()) {
                key.to_ascii_uppercase()
            } else {
                key.to_ascii_lowercase()
            };
            if let Value::Array(items) = values {
                if items.len() > 1 && !keys.contains_key(&other_case) {
                    split.insert(key.clone(), items[0].clone());
                    split.insert(other_case, Value::Array(items[1..].to_vec()));
                    break;
                }
            }
        }
        split
    }

    /// `value` as JSON text, its object keys in an order picked by `seed`, with some line
    /// breaks.
    fn render(value: &Value, seed: u64) -> String {
        match value {
            Value::Object(map) => {
                let mut entries: Vec<(&String, &Value)> = map.iter().collect();
                let n = entries.len().max(1);
                entries.rotate_left(seed as usize % n);
                if seed % 2 == 1 {
                    entries.reverse();
                }
                let separator = if seed % 3 == 0 { ",\n  " } else { "," };
                let entries: Vec<String> = entries
                    .into_iter()
                    .map(|(k, v)| format!("{}: {}", json!(k), render(v, seed / 2 + 1)))
                    .collect();
                format!("{{{}}}", entries.join(separator))
            }
            Value::Array(items) => {
                let items: Vec<String> = items.iter().map(|i| render(i, seed / 3 + 1)).collect();
                format!("[{}]", items.join(", "))
            }
            scalar => scalar.to_string(),
        }
    }

    /// Pairs of policy texts that are sometimes equal and sometimes not: a policy and a
    /// rewrite of it, a rewrite with one statement dropped or duplicated, a rewrite with one
    /// element changed, or two independent policies.
    fn pair() -> impl Strategy<Value = (String, String)> {
        (policy_value(), policy_value(), any::<u64>(), 0..10u8).prop_map(|(a, other, seed, how)| {
            let b = match how {
                0 | 1 => rewritten(&a, seed),
                2 => {
                    let mut b = rewritten(&a, seed);
                    if let Some(list) = b["Statement"].as_array_mut() {
                        if list.len() > 1 {
                            list.pop();
                        }
                    }
                    b
                }
                3 => {
                    let mut b = rewritten(&a, seed);
                    if let Some(list) = b["Statement"].as_array_mut() {
                        if let Some(first) = list.first().cloned() {
                            list.push(first);
                        }
                    }
                    b
                }
                4..=8 => rewritten(&mutated(&a, seed), seed / 7),
                _ => other,
            };
            (render(&a, seed), render(&b, seed / 5))
        })
    }

    #[test]
    fn the_oracle_tells_apart_what_the_canonical_form_must_keep_apart() {
        let base = json!({"Version": "2012-10-17", "Statement": [
            {"Sid": "Admin", "Effect": "Allow", "Principal": {"AWS": ADMIN}, "Action": "kms:*", "Resource": "*"},
            {"Sid": "Root", "Effect": "Allow", "Principal": {"AWS": ROOT}, "Action": "kms:Get*", "Resource": "*"},
            {"Sid": "Ops", "Effect": "Allow", "Principal": {"AWS": OPS_ADMIN}, "Action": "kms:Decrypt", "Resource": "*",
             "Condition": {"StringEquals": {"kms:ViaService": ["a", "b"]}}},
            {"Sid": "NoGrants", "Effect": "Deny", "NotPrincipal": {"AWS": ACCOUNT}, "Action": "kms:CreateGrant", "Resource": "*"}
        ]});
        type Change = (&'static str, fn(&mut Value));
        let semantic: &[Change] = &[
            ("Resource * to a key ARN", |v| {
                v["Statement"][0]["Resource"] = json!(KEY_ARN)
            }),
            ("NotResource added", |v| {
                v["Statement"][0]["NotResource"] = json!(KEY_ARN)
            }),
            ("Effect flipped", |v| {
                v["Statement"][1]["Effect"] = json!("Deny")
            }),
            ("condition removed", |v| {
                v["Statement"][2]
                    .as_object_mut()
                    .unwrap()
                    .remove("Condition");
            }),
            ("condition value in other case", |v| {
                v["Statement"][2]["Condition"]["StringEquals"]["kms:ViaService"] = json!(["A", "b"])
            }),
            (
                "one key's two values split over two keys differing in case",
                |v| {
                    v["Statement"][2]["Condition"] =
                        json!({"StringEquals": {"kms:ViaService": "a", "KMS:viaservice": "b"}})
                },
            ),
            ("principal added", |v| {
                v["Statement"][1]["Principal"]["AWS"] = json!([ROOT, OPS_ADMIN])
            }),
            ("Action to NotAction", |v| {
                let s = v["Statement"][1].as_object_mut().unwrap();
                let actions = s.remove("Action").unwrap();
                s.insert("NotAction".into(), actions);
            }),
        ];
        let spelling: &[Change] = &[
            ("statements reordered, Sids renamed", |v| {
                let list = v["Statement"].as_array_mut().unwrap();
                list.reverse();
                for s in list {
                    s["Sid"] = json!("Renamed");
                }
            }),
            ("lists and bare values", |v| {
                v["Statement"][0]["Action"] = json!(["kms:*"]);
                v["Statement"][0]["Resource"] = json!(["*"]);
            }),
            ("action and condition key case", |v| {
                v["Statement"][1]["Action"] = json!("KMS:get*");
                let condition = &mut v["Statement"][2]["Condition"];
                *condition = json!({"StringEquals": {"KMS:VIASERVICE": ["b", "a"]}});
            }),
            ("root ARN and bare account id", |v| {
                v["Statement"][1]["Principal"]["AWS"] = json!(ACCOUNT);
                v["Statement"][3]["NotPrincipal"]["AWS"] = json!(ROOT);
            }),
        ];
        let base_text = base.to_string();
        assert_eq!(oracle_disagreement(&base_text), None);
        for (what, change) in semantic.iter().chain(spelling) {
            let mut changed = base.clone();
            change(&mut changed);
            let text = changed.to_string();
            let equal = Policy::parse(&text)
                .unwrap()
                .semantically_equal(&Policy::parse(&base_text).unwrap());
            let difference = oracle_difference(&base, &changed);
            let is_spelling = spelling.iter().any(|(name, _)| name == what);
            assert_eq!(equal, is_spelling, "{what}: canonical equality");
            assert_eq!(
                difference.is_none(),
                is_spelling,
                "{what}: the oracle's view {difference:?}"
            );
            assert_eq!(oracle_disagreement(&text), None, "{what}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]

        // `access` reads the canonical `StatementBody` that `semantically_equal` compares, so
        // asking it whether equal policies get equal decisions cannot fail, even for a
        // canonical form that drops Resource or lowercases condition values. The oracle reads
        // the JSON as written, so such a canonical form equates two documents the oracle tells
        // apart, and this fails.
        #[test]
        fn semantically_equal_policies_get_the_same_decisions_from_the_raw_json(
            (a, b) in pair(),
        ) {
            let (pa, pb) = (Policy::parse(&a).unwrap(), Policy::parse(&b).unwrap());
            if pa.semantically_equal(&pb) {
                let difference = oracle_difference(&document(&a), &document(&b));
                prop_assert!(
                    difference.is_none(),
                    "semantically equal, yet {}\na: {}\nb: {}",
                    difference.unwrap_or_default(),
                    a,
                    b
                );
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        // Ties the oracle to the evaluator, so the property above speaks for `access` too.
        #[test]
        fn the_oracle_and_the_evaluator_agree((a, b) in pair()) {
            for text in [&a, &b] {
                let disagreement = oracle_disagreement(text);
                prop_assert!(
                    disagreement.is_none(),
                    "{}\npolicy: {}",
                    disagreement.unwrap_or_default(),
                    text
                );
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        // The same tie for conditions: which a known request makes true, false or unknown.
        #[test]
        fn the_oracle_and_the_evaluator_agree_in_a_known_context((a, b) in pair()) {
            for text in [&a, &b] {
                let disagreement = oracle_disagreement_in_context(text);
                prop_assert!(
                    disagreement.is_none(),
                    "{}\npolicy: {}",
                    disagreement.unwrap_or_default(),
                    text
                );
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn a_rewritten_policy_is_semantically_equal_to_the_original(
            value in policy_value(),
            seed in any::<u64>(),
        ) {
            let rewrite = rewritten(&value, seed);
            let (text, rewrite_text) = (render(&value, seed), render(&rewrite, seed / 3));
            let original = Policy::parse(&text).unwrap();
            let diff = Policy::parse(&rewrite_text).unwrap().diff_against(&original);
            prop_assert!(diff.is_empty(), "unexpected drift:\n{}", diff);
            let difference = oracle_difference(&document(&text), &document(&rewrite_text));
            prop_assert!(
                difference.is_none(),
                "a rewrite changed {}",
                difference.unwrap_or_default()
            );
        }
    }
}
