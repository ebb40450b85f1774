//! Whether a key policy lets a principal call a KMS action, judged from the policy alone and
//! conservatively. It serves lockout checks, where a wrong "no" costs a refused write and a
//! wrong "yes" a key nobody can manage, so every doubt resolves to "no".
//!
//! IAM rules relied on (<https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html>):
//! an explicit Deny overrides any Allow; without an Allow a request is implicitly denied. The
//! account principal (`arn:aws:iam::ACCOUNT:root` or the bare id) does not grant anyone
//! access, it lets the account's IAM policies grant it
//! (<https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html>). A
//! `NotPrincipal` Deny denies everyone it does not list
//! (<https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_notprincipal.html>).

use std::collections::BTreeSet;

use crate::arn::Arn;
use crate::config::is_account_id;
use crate::policy::{action_matches, Effect, Policy, PrincipalMap, Statement, StatementBody};

/// What a key policy lets one principal do with one action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// An unconditional Allow names this principal (its exact ARN) for the action, and no Deny
    /// can apply.
    Allowed,
    /// Only through the account principal (`arn:PARTITION:iam::ACCOUNT:root` or the bare
    /// account id): the key policy delegates to IAM, so IAM must also allow it.
    ViaIam,
    /// A Deny statement applies or may apply (conditions on a Deny are assumed to hold).
    /// Carries the statement label.
    Denied { statement: String },
    /// No unconditional Allow: nothing matches, only conditional Allows match, or only a
    /// wildcard principal (`*`) matches.
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
    evaluate(policy, &Caller::parse(principal_arn), action).access
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
            let evaluation = evaluate(policy, &caller, action);
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
        let names_root = parsed.as_ref().is_some_and(|a| {
            a.service() == "iam" && a.account() == account && a.resource() == "root"
        });
        if value == account || names_root {
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

/// Why a Deny applies to the caller, or `None` when it cannot.
fn deny_reason(body: &StatementBody, caller: &Caller) -> Option<String> {
    let named = body
        .principal
        .as_ref()
        .and_then(|p| relations_to(p, caller).first().copied());
    let reason = match (named, &body.not_principal) {
        (Some(PrincipalMatch::Exact), _) => "names it",
        (Some(PrincipalMatch::Account), _) => "names its account",
        (Some(PrincipalMatch::Wildcard), _) => "names every principal (\"*\")",
        (Some(PrincipalMatch::EverySession | PrincipalMatch::OneSession), _) => {
            "names a session of its role, which it may be"
        }
        // Listed means its role ARN, its account, every session of its role, or "*". AWS may
        // check account, role and session one by one, and denies any principal that has a
        // permissions boundary whatever is listed (NotPrincipal docs); a key policy shows
        // neither, so those cases are the caller's to rule out.
        (None, Some(excepted))
            if relations_to(excepted, caller)
                .iter()
                .all(|m| *m == PrincipalMatch::OneSession) =>
        {
            "has a NotPrincipal that does not list it or its account, so it denies it"
        }
        // KMS refuses a statement without principals, so what it meant is unknown.
        (None, None) if body.principal.is_none() => "names no principal, so it may apply to anyone",
        (None, _) => return None,
    };
    Some(if body.condition.is_empty() {
        reason.to_string()
    } else {
        format!("{reason} (its conditions are assumed to hold)")
    })
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

fn evaluate(policy: &Policy, caller: &Caller, action: &str) -> Evaluation {
    let covering = || {
        policy
            .statements
            .iter()
            .enumerate()
            .filter(|(_, s)| covers_action(&s.body, action))
    };

    // A Deny's Resource and Condition are ignored on purpose: it counts whenever it may apply.
    for (index, statement) in covering().filter(|(_, s)| s.body.effect == Effect::Deny) {
        if let Some(reason) = deny_reason(&statement.body, caller) {
            return Evaluation {
                access: Access::Denied {
                    statement: statement_label(index, statement),
                },
                detail: reason,
            };
        }
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
        if !body.condition.is_empty() {
            near_misses.push(format!(
                "statement {label} allows it only under conditions, which may not hold"
            ));
        } else if !covers_this_key(body) {
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
    fn given_a_not_principal_deny_listing_the_admin_or_its_account_when_checked_then_not_denied() {
        for excepted in [
            r#"{"AWS":"arn:aws:iam::111122223333:role/kms-admin"}"#,
            r#"{"AWS":["arn:aws:iam::111122223333:role/kms-admin","arn:aws:iam::111122223333:root"]}"#,
            r#"{"AWS":"arn:aws:iam::111122223333:root"}"#,
            r#"{"AWS":"111122223333"}"#,
            r#"{"AWS":"arn:aws:sts::111122223333:assumed-role/kms-admin/*"}"#,
        ] {
            let p = with_admin(&format!(
                r#"{{"Effect":"Deny","NotPrincipal":{excepted},"Action":"kms:*","Resource":"*"}}"#
            ));
            assert_eq!(access(&p, ADMIN, PUT), Access::Allowed, "{excepted}");
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
        let sessions_excepted = policy(&format!(
            r#"{{"Effect":"Allow","Principal":{{"AWS":"{with_path}"}},"Action":"kms:*","Resource":"*"}},
               {{"Effect":"Deny","NotPrincipal":{{"AWS":"arn:aws:sts::111122223333:assumed-role/kms-admin/*"}},"Action":"kms:*","Resource":"*"}}"#
        ));
        assert_eq!(
            access(&sessions_excepted, with_path, PUT),
            Access::Allowed,
            "session ARNs carry the role name without its path"
        );
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

/// Properties tying the canonical form (`semantically_equal`) to the evaluator.
#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;
    use serde_json::{json, Value};

    const ACCOUNT: &str = "111122223333";
    const PRINCIPALS: &[&str] = &[
        "*",
        "arn:aws:iam::111122223333:root",
        "111122223333",
        "arn:aws:iam::111122223333:role/kms-admin",
        "arn:aws:iam::111122223333:role/ops/kms-admin",
        "arn:aws:sts::111122223333:assumed-role/kms-admin/*",
    ];
    const ACTIONS: &[&str] = &[
        "kms:*",
        "kms:Put*",
        "kms:PutKeyPolicy",
        "kms:GetKeyPolicy",
        "kms:Decrypt",
    ];

    fn conditions() -> Vec<Value> {
        vec![
            json!({"StringEquals": {"kms:ViaService": "a"}}),
            json!({"StringEquals": {"KMS:viaservice": "b"}}),
            json!({"StringEquals": {"kms:ViaService": "a", "KMS:viaservice": "b"}}),
            json!({"StringEquals": {"kms:viaservice": ["a", "b"]}}),
            json!({"Bool": {"aws:MultiFactorAuthPresent": "true"}}),
        ]
    }

    /// One or more values, written as a list (or a bare string when `single` and only one).
    fn values(chosen: &[&str], single: bool) -> Value {
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
            any::<bool>(),
            any::<bool>(),
            subset(PRINCIPALS),
            any::<bool>(),
            subset(ACTIONS),
            prop_oneof![4 => Just("*"), 1 => Just("arn:aws:kms:eu-west-1:111122223333:key/k")],
            proptest::option::weighted(0.4, 0..conditions().len()),
        )
            .prop_map(
                |(deny, not_principal, principals, not_action, actions, resource, condition)| {
                    let mut s = json!({
                        "Effect": if deny { "Deny" } else { "Allow" },
                        "Resource": resource,
                    });
                    let principal_key = if not_principal {
                        "NotPrincipal"
                    } else {
                        "Principal"
                    };
                    s[principal_key] = json!({"AWS": values(&principals, true)});
                    s[if not_action { "NotAction" } else { "Action" }] = values(&actions, true);
                    if let Some(i) = condition {
                        s["Condition"] = conditions()[i].clone();
                    }
                    s
                },
            )
    }

    fn policy_value() -> impl Strategy<Value = Value> {
        proptest::collection::vec(statement(), 1..=4)
            .prop_map(|statements| json!({"Version": "2012-10-17", "Statement": statements}))
    }

    /// The same policy written differently: statements shuffled, Sids renamed, one-element
    /// lists as bare strings and back, action names in other case, the account principal
    /// spelled the other way.
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
            obj.insert("Sid".into(), json!(format!("S{seed}x{i}")));
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
                            ACCOUNT => format!("arn:aws:iam::{ACCOUNT}:root"),
                            "arn:aws:iam::111122223333:root" => ACCOUNT.to_string(),
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
        let recased: serde_json::Map<String, Value> =
            map.iter().map(|(k, v)| (recase(k), v.clone())).collect();
        if recased.len() == map.len() {
            Value::Object(recased)
        } else {
            keys.clone()
        }
    }

    /// `value` with each string mapped by `f` (Resource is left alone: it is case-sensitive),
    /// and a lone value toggled between a bare string and a one-element list.
    fn respell(value: &Value, seed: u64, f: impl Fn(&str) -> String) -> Value {
        let keep_case = |s: &str| s.starts_with("arn:aws:kms") || s == "*";
        let map = |s: &str| if keep_case(s) { s.to_string() } else { f(s) };
        match value {
            Value::String(s) if seed % 4 < 2 => json!([map(s)]),
            Value::String(s) => json!(map(s)),
            Value::Array(items) if items.len() == 1 && seed % 4 >= 2 => {
                json!(items[0].as_str().map(map))
            }
            Value::Array(items) => json!(items
                .iter()
                .map(|i| i.as_str().map(map))
                .collect::<Vec<_>>()),
            other => other.clone(),
        }
    }

    fn decisions(policy: &Policy) -> Vec<Decision> {
        PRINCIPALS
            .iter()
            .flat_map(|p| ACTIONS.iter().map(move |a| access(policy, p, a).decision()))
            .collect()
    }

    /// `value` with one element of one statement changed: what the canonical form must not
    /// lose. Some changes keep the meaning (a key in other case), most do not.
    fn mutated(value: &Value, seed: u64) -> Value {
        let mut value = value.clone();
        let Some(statements) = value["Statement"].as_array_mut() else {
            return value;
        };
        let n = statements.len().max(1);
        let Some(obj) = statements[(seed as usize / 8) % n].as_object_mut() else {
            return value;
        };
        let rename = |obj: &mut serde_json::Map<String, Value>, from: &str, to: &str| {
            if let Some(v) = obj.remove(from) {
                obj.insert(to.into(), v);
            } else if let Some(v) = obj.remove(to) {
                obj.insert(from.into(), v);
            }
        };
        match seed % 8 {
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
                let other = if obj["Resource"] == "*" {
                    json!("arn:aws:kms:eu-west-1:111122223333:key/k")
                } else {
                    json!("*")
                };
                obj.insert("Resource".into(), other);
            }
            4 => {
                let pool = conditions();
                match obj.remove("Condition") {
                    Some(_) if seed % 3 == 0 => {}
                    _ => {
                        obj.insert(
                            "Condition".into(),
                            pool[(seed as usize / 64) % pool.len()].clone(),
                        );
                    }
                }
            }
            5 => {
                let principal = PRINCIPALS[(seed as usize / 64) % PRINCIPALS.len()];
                let key = if obj.contains_key("Principal") {
                    "Principal"
                } else {
                    "NotPrincipal"
                };
                obj.insert(key.into(), json!({"AWS": principal}));
            }
            6 => {
                let action = ACTIONS[(seed as usize / 64) % ACTIONS.len()];
                let key = if obj.contains_key("Action") {
                    "Action"
                } else {
                    "NotAction"
                };
                obj.insert(key.into(), json!(action));
            }
            _ => {
                obj.insert(
                    "Condition".into(),
                    json!({"StringEquals": {"KMS:VIASERVICE": "a"}}),
                );
            }
        }
        value
    }

    /// Pairs that are sometimes equal and sometimes not: a policy and a rewrite of it, a
    /// rewrite with one statement dropped or duplicated or one element changed, or two
    /// independent policies.
    fn pair() -> impl Strategy<Value = (Value, Value)> {
        (policy_value(), policy_value(), any::<u64>(), 0..5u8).prop_map(|(a, other, seed, how)| {
            let b = match how {
                0 => rewritten(&a, seed),
                1 => {
                    let mut b = rewritten(&a, seed);
                    if let Some(list) = b["Statement"].as_array_mut() {
                        if list.len() > 1 {
                            list.pop();
                        }
                    }
                    b
                }
                2 => {
                    let mut b = rewritten(&a, seed);
                    if let Some(list) = b["Statement"].as_array_mut() {
                        if let Some(first) = list.first().cloned() {
                            list.push(first);
                        }
                    }
                    b
                }
                3 => rewritten(&mutated(&a, seed), seed / 3),
                _ => other,
            };
            (a, b)
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn semantically_equal_policies_get_the_same_decisions((a, b) in pair()) {
            let a = Policy::from_value(&a).unwrap();
            let b = Policy::from_value(&b).unwrap();
            if a.semantically_equal(&b) {
                prop_assert_eq!(decisions(&a), decisions(&b));
            }
        }

        #[test]
        fn a_rewritten_policy_is_semantically_equal_to_the_original(
            value in policy_value(),
            seed in any::<u64>(),
        ) {
            let original = Policy::from_value(&value).unwrap();
            let rewrite = Policy::from_value(&rewritten(&value, seed)).unwrap();
            let diff = rewrite.diff_against(&original);
            prop_assert!(diff.is_empty(), "unexpected drift:\n{}", diff);
            prop_assert_eq!(decisions(&original), decisions(&rewrite));
        }
    }
}
