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

use crate::base::arn::Arn;
use crate::base::arn::{is_account_id, is_unique_id};
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
    if let Some(nobody) = no_caller(principal_arn) {
        return nobody;
    }
    evaluate(policy, &Caller::parse(principal_arn), action, None).access
}

/// A unique id left in a policy for a deleted principal can make no request: whatever the
/// policy says of it, it administers nothing.
fn no_caller(principal: &str) -> Option<Access> {
    is_unique_id(principal).then(|| Access::NotAllowed {
        reason: format!(
            "{} is the unique id of a deleted principal: nobody can act as it",
            crate::base::text::value(principal)
        ),
    })
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
    if let Some(nobody) = no_caller(principal_arn) {
        return nobody;
    }
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
    // A unique id names a deleted principal, never one that can call.
    if value == caller.arn && !is_unique_id(value) {
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
mod tests;

/// Properties tying the canonical form (`semantically_equal`) to what policies grant.
#[cfg(test)]
mod properties;
