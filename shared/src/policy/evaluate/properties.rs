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
                Some(Value::Array(items)) => items.iter().filter_map(Value::as_object).collect(),
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

    fn decide_in(document: &Document, principal: &str, action: &str, request: Request) -> Decision {
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
            let this_key = s.not_resource.is_none() && values(s.resource).iter().any(|r| r == "*");
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
                format!("{principal} calling {action}: evaluator {evaluated:?}, oracle {oracle:?}")
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
