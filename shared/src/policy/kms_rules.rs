//! The rules real KMS applies to a key policy before PutKeyPolicy accepts it. The local
//! emulator (moto) accepts documents KMS refuses, so tests against it would pass with a
//! baseline that fails in AWS; checking here gives the same answer in both.
//!
//! Sources:
//! - Key policy format and elements:
//!   <https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-overview.html>
//! - PutKeyPolicy `Policy` parameter:
//!   <https://docs.aws.amazon.com/kms/latest/APIReference/API_PutKeyPolicy.html>
//! - Policy grammar: <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_grammar.html>
//! - Principal and NotPrincipal:
//!   <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html>,
//!   <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_notprincipal.html>

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map, Value};

use crate::base::arn::{is_account_id, is_unique_id};
use crate::policy::model::Policy;

/// Key policy format: "Up to 32 kilobytes (32,768 bytes)". The API model allows 131,072
/// characters, but the documented key policy limit is the smaller one, so that one holds.
pub const MAX_POLICY_BYTES: usize = 32_768;

/// Every rule a document breaks, each naming the rule and the statement.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct KmsRuleViolations {
    pub violations: Vec<String>,
}

/// At most this many violations in the message; the list keeps all of them.
const SHOWN_VIOLATIONS: usize = 20;

impl fmt::Display for KmsRuleViolations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the key policy breaks {} KMS key policy rule(s): ",
            self.violations.len()
        )?;
        let shown: Vec<&str> = self
            .violations
            .iter()
            .take(SHOWN_VIOLATIONS)
            .map(String::as_str)
            .collect();
        f.write_str(&shown.join("; "))?;
        if self.violations.len() > SHOWN_VIOLATIONS {
            write!(f, "; and {} more", self.violations.len() - SHOWN_VIOLATIONS)?;
        }
        Ok(())
    }
}

/// The rule a violation breaks; its name starts every message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rule {
    Json,
    Size,
    Characters,
    Version,
    Statement,
    Element,
    Sid,
    Effect,
    Principal,
    Action,
    Resource,
    Condition,
}

impl Rule {
    fn name(self) -> &'static str {
        match self {
            Rule::Json => "JSON object",
            Rule::Size => "size",
            Rule::Characters => "characters",
            Rule::Version => "Version",
            Rule::Statement => "Statement",
            Rule::Element => "statement elements",
            Rule::Sid => "unique Sid",
            Rule::Effect => "Effect",
            Rule::Principal => "Principal",
            Rule::Action => "Action",
            Rule::Resource => "Resource",
            Rule::Condition => "Condition",
        }
    }
}

#[derive(Default)]
struct Findings(Vec<String>);

impl Findings {
    fn add(&mut self, rule: Rule, place: &str, message: impl fmt::Display) {
        self.0.push(format!("[{}] {place}: {message}", rule.name()));
    }
}

/// `document` as KMS would accept it, or every rule it breaks.
pub fn check_kms_rules(document: &str) -> Result<Policy, KmsRuleViolations> {
    let mut findings = Findings::default();
    check_document_text(document, &mut findings);
    match serde_json::from_str::<Value>(document) {
        Err(e) => findings.add(Rule::Json, "document", format!("not JSON: {e}")),
        Ok(Value::Object(root)) => check_root(&root, &mut findings),
        Ok(_) => findings.add(Rule::Json, "document", "not a JSON object"),
    }
    if !findings.0.is_empty() {
        return Err(KmsRuleViolations {
            violations: findings.0,
        });
    }
    // The rules above cover everything the parser refuses; this only guards against drift
    // between the two.
    Policy::parse(document).map_err(|e| KmsRuleViolations {
        violations: vec![format!("[{}] document: {e}", Rule::Json.name())],
    })
}

fn check_document_text(document: &str, findings: &mut Findings) {
    // KMS counts bytes; UTF-8 bytes are never fewer than characters, so this errs safe.
    if document.len() > MAX_POLICY_BYTES {
        findings.add(
            Rule::Size,
            "document",
            format!(
                "{} bytes; KMS accepts at most {MAX_POLICY_BYTES} bytes (32 KB)",
                document.len()
            ),
        );
    }
    // PutKeyPolicy's pattern: tab, line feed, carriage return and U+0020 through U+00FF.
    let outside = |c: &char| !matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{ff}');
    if let Some((position, c)) = document.chars().enumerate().find(|(_, c)| outside(c)) {
        let count = document.chars().filter(outside).count();
        findings.add(
            Rule::Characters,
            "document",
            format!(
                "{count} character(s) outside tab, line feed, carriage return and U+0020..U+00FF, \
                 the first {:?} (U+{:04X}) at character {position}",
                c, c as u32
            ),
        );
    }
}

fn check_root(root: &Map<String, Value>, findings: &mut Findings) {
    // IAM knows two policy language versions; the key policy docs ask for 2012-10-17.
    if let Some(version) = root.get("Version") {
        if version != "2012-10-17" && version != "2008-10-17" {
            findings.add(
                Rule::Version,
                "document",
                format!(
                    "{} is not a policy language version (2012-10-17 or 2008-10-17)",
                    shown(version)
                ),
            );
        }
    }
    for key in root.keys() {
        if !matches!(key.as_str(), "Version" | "Id" | "Statement") {
            findings.add(
                Rule::Element,
                "document",
                format!("unknown top-level element {}", shown_str(key)),
            );
        }
    }
    let statements: Vec<&Value> = match root.get("Statement") {
        None => {
            findings.add(Rule::Statement, "document", "no Statement");
            return;
        }
        Some(Value::Array(items)) => items.iter().collect(),
        Some(single @ Value::Object(_)) => vec![single],
        Some(other) => {
            findings.add(
                Rule::Statement,
                "document",
                format!(
                    "Statement must be an object or a list of objects, got {}",
                    shown(other)
                ),
            );
            return;
        }
    };
    if statements.is_empty() {
        findings.add(
            Rule::Statement,
            "document",
            "a key policy needs at least one statement",
        );
    }
    let mut first_index_of_sid: BTreeMap<&str, usize> = BTreeMap::new();
    for (index, statement) in statements.into_iter().enumerate() {
        let Value::Object(statement) = statement else {
            findings.add(
                Rule::Statement,
                &format!("Statement[{index}]"),
                "not a JSON object",
            );
            continue;
        };
        let place = place(index, statement);
        if let Some(Value::String(sid)) = statement.get("Sid") {
            if !sid.is_empty() {
                match first_index_of_sid.get(sid.as_str()) {
                    Some(first) => findings.add(
                        Rule::Sid,
                        &place,
                        format!("the Sid is already used by Statement[{first}]"),
                    ),
                    None => {
                        first_index_of_sid.insert(sid, index);
                    }
                }
            }
        }
        check_statement(statement, &place, findings);
    }
}

/// `Statement[2] (Sid "Admin")`: the index always, the Sid when there is one.
fn place(index: usize, statement: &Map<String, Value>) -> String {
    match statement.get("Sid") {
        Some(Value::String(sid)) if !sid.is_empty() => {
            format!("Statement[{index}] (Sid {})", shown_str(sid))
        }
        _ => format!("Statement[{index}]"),
    }
}

fn check_statement(statement: &Map<String, Value>, place: &str, findings: &mut Findings) {
    for key in statement.keys() {
        if !crate::policy::model::STATEMENT_ELEMENTS.contains(&key.as_str()) {
            findings.add(
                Rule::Element,
                place,
                format!("unknown element {}", shown_str(key)),
            );
        }
    }
    if let Some(sid) = statement.get("Sid").filter(|s| !s.is_string()) {
        findings.add(
            Rule::Sid,
            place,
            format!("Sid must be a string, got {}", shown(sid)),
        );
    }
    let effect = statement.get("Effect");
    match effect.and_then(Value::as_str) {
        Some("Allow" | "Deny") => {}
        _ => findings.add(
            Rule::Effect,
            place,
            match effect {
                None => "no Effect; it must be Allow or Deny".to_string(),
                Some(other) => format!("Effect must be Allow or Deny, got {}", shown(other)),
            },
        ),
    }
    check_principals(statement, place, findings);
    check_actions(statement, place, findings);
    check_resource(statement, place, findings);
    if let Some(condition) = statement.get("Condition") {
        check_condition(condition, place, findings);
    }
}

fn check_principals(statement: &Map<String, Value>, place: &str, findings: &mut Findings) {
    let principal = statement.get("Principal");
    let not_principal = statement.get("NotPrincipal");
    match (principal, not_principal) {
        // PutKeyPolicy: "Each statement in the key policy must contain one or more principals."
        (None, None) => findings.add(
            Rule::Principal,
            place,
            "no Principal; every key policy statement must name one or more principals",
        ),
        (Some(_), Some(_)) => findings.add(
            Rule::Principal,
            place,
            "both Principal and NotPrincipal; a statement has one or the other",
        ),
        _ => {}
    }
    // NotPrincipal docs: "Using it with "Effect":"Allow" is not supported."
    if not_principal.is_some() && statement.get("Effect") == Some(&Value::from("Allow")) {
        findings.add(
            Rule::Principal,
            place,
            "NotPrincipal with Effect Allow is not supported; use it only with Deny",
        );
    }
    for (element, value) in [("Principal", principal), ("NotPrincipal", not_principal)] {
        if let Some(value) = value {
            check_principal_element(element, value, place, findings);
        }
    }
}

fn check_principal_element(element: &str, value: &Value, place: &str, findings: &mut Findings) {
    let kinds = match value {
        Value::String(s) if s == "*" => return,
        Value::Object(kinds) if !kinds.is_empty() => kinds,
        other => {
            findings.add(
                Rule::Principal,
                place,
                format!(
                    "{element} must be \"*\" or an object such as {{\"AWS\": ...}}, got {}",
                    shown(other)
                ),
            );
            return;
        }
    };
    for (kind, values) in kinds {
        let checker: fn(&str) -> Result<(), String> = match kind.as_str() {
            "AWS" => aws_principal_problem,
            "Service" => service_principal_problem,
            // Key policy elements: "You can specify AWS accounts, IAM users, IAM roles, and
            // some AWS services as principals in a key policy."
            _ => {
                findings.add(
                    Rule::Principal,
                    place,
                    format!(
                        "{element} type {} is not accepted in a key policy; use AWS or Service",
                        shown_str(kind)
                    ),
                );
                continue;
            }
        };
        let items: Vec<&Value> = match values {
            Value::Array(items) if !items.is_empty() => items.iter().collect(),
            Value::Array(_) => {
                findings.add(
                    Rule::Principal,
                    place,
                    format!("{element}.{kind} is an empty list"),
                );
                continue;
            }
            single => vec![single],
        };
        for item in items {
            let problem = match item.as_str() {
                Some(text) => checker(text).err(),
                None => Some("a principal must be a string".to_string()),
            };
            if let Some(problem) = problem {
                findings.add(
                    Rule::Principal,
                    place,
                    format!("{element}.{kind} value {}: {problem}", shown(item)),
                );
            }
        }
    }
}

/// IAM user, role, path and session names: letters, digits and `+=,.@_-`.
fn is_iam_name(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b))
}

/// `name`, or `path/.../name`: the part after `user/` or `role/`.
fn is_iam_path_and_name(text: &str) -> bool {
    text.split('/').all(is_iam_name)
}

/// `aws`, `aws-cn`, `aws-us-gov`, `aws-iso-b`, ...
fn is_partition(text: &str) -> bool {
    text.strip_prefix("aws").is_some_and(|rest| {
        rest.is_empty()
            || rest.strip_prefix('-').is_some_and(|rest| {
                rest.split('-')
                    .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_lowercase()))
            })
    })
}

fn aws_principal_problem(value: &str) -> Result<(), String> {
    if value == "*" || is_account_id(value) {
        return Ok(());
    }
    if is_unique_id(value) {
        // A unique id is what IAM shows for a principal that was deleted; KMS requires
        // principals that exist, and the IAM docs say such ids can safely be removed.
        return Err(
            "a unique id names a deleted principal, which KMS rejects; remove it or \
                    name the principal's current ARN"
                .to_string(),
        );
    }
    // Principal docs: "You cannot use a wildcard to match part of a principal name or ARN."
    if value.contains(['*', '?']) {
        return Err(
            "a wildcard inside a principal ARN is not allowed; use \"*\" alone \
                    with a condition such as aws:PrincipalArn"
                .to_string(),
        );
    }
    let Some(arn) = crate::base::arn::Arn::parse(value)
        .ok()
        .filter(|arn| arn.region().is_empty())
    else {
        return Err(
            "not \"*\", a 12-digit account id or an IAM ARN (arn:PARTITION:iam::ACCOUNT:...)"
                .to_string(),
        );
    };
    let (partition, service, account) = (arn.partition(), arn.service(), arn.account());
    let resource = arn.resource();
    if !is_partition(partition) {
        return Err(format!("unknown partition {}", shown_str(partition)));
    }
    if !matches!(service, "iam" | "sts") {
        return Err(format!("service {} is not iam or sts", shown_str(service)));
    }
    if !is_account_id(account) {
        return Err("the account must be 12 digits".to_string());
    }
    let resource_ok = match service {
        "iam" => {
            resource == "root"
                || resource
                    .strip_prefix("user/")
                    .or_else(|| resource.strip_prefix("role/"))
                    .is_some_and(is_iam_path_and_name)
        }
        "sts" => match resource.split('/').collect::<Vec<_>>().as_slice() {
            ["assumed-role", role, session] => is_iam_name(role) && is_iam_name(session),
            ["federated-user", name] => is_iam_name(name),
            _ => false,
        },
        _ => false,
    };
    if resource_ok {
        Ok(())
    } else {
        Err(
            "expected root, user/NAME or role/NAME (iam), or assumed-role/ROLE/SESSION or \
             federated-user/NAME (sts)"
                .to_string(),
        )
    }
}

/// `logs.eu-west-1.amazonaws.com`, `s3.amazonaws.com`: a DNS name, no wildcard.
fn service_principal_problem(value: &str) -> Result<(), String> {
    let labels: Vec<&str> = value.split('.').collect();
    let dns_like = labels.len() >= 2
        && labels.iter().all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        });
    if dns_like {
        Ok(())
    } else {
        Err(
            "a service principal is a service's DNS name such as logs.eu-west-1.amazonaws.com"
                .to_string(),
        )
    }
}

fn check_actions(statement: &Map<String, Value>, place: &str, findings: &mut Findings) {
    let action = statement.get("Action");
    let not_action = statement.get("NotAction");
    // The key policy docs: a statement without Action has no effect. PutKeyPolicy used to
    // accept it anyway; AWS announced (Health notice, 2025) that from 18 August 2025 KMS
    // rejects statements without Action or NotAction, or without Resource "*".
    match (action, not_action) {
        (None, None) => findings.add(
            Rule::Action,
            place,
            "neither Action nor NotAction; such a statement has no effect, and KMS rejects it",
        ),
        (Some(_), Some(_)) => findings.add(
            Rule::Action,
            place,
            "both Action and NotAction; a statement has one or the other",
        ),
        _ => {}
    }
    for (element, value) in [("Action", action), ("NotAction", not_action)] {
        let Some(value) = value else { continue };
        let items: Vec<&Value> = match value {
            Value::Array(items) => items.iter().collect(),
            single => vec![single],
        };
        if items.is_empty() {
            findings.add(Rule::Action, place, format!("{element} is an empty list"));
        }
        // IAM grammar: an action is "*" or SERVICE:ACTION, wildcards allowed in the name.
        for item in items {
            match item.as_str() {
                Some(a)
                    if a == "*"
                        || a.split_once(':').is_some_and(|(service, name)| {
                            !service.is_empty() && !name.is_empty()
                        }) => {}
                _ => findings.add(
                    Rule::Action,
                    place,
                    format!(
                        "{element} value {} is not \"*\" or SERVICE:ACTION such as kms:Decrypt",
                        shown(item)
                    ),
                ),
            }
        }
    }
}

fn check_resource(statement: &Map<String, Value>, place: &str, findings: &mut Findings) {
    // Key policy elements: Resource is required and its value is "*", "this KMS key"; the
    // 2025 notice (see check_actions) calls "*" the only accepted value. NotResource is not
    // among the key policy elements.
    if statement.contains_key("NotResource") {
        findings.add(
            Rule::Resource,
            place,
            "NotResource is not a key policy element; use \"Resource\": \"*\"",
        );
    }
    match statement.get("Resource") {
        None => findings.add(
            Rule::Resource,
            place,
            "no Resource; a key policy statement needs \"Resource\": \"*\"",
        ),
        Some(Value::String(r)) if r == "*" => {}
        Some(Value::Array(items)) if items.len() == 1 && items[0] == "*" => {}
        Some(other) => findings.add(
            Rule::Resource,
            place,
            format!(
                "Resource must be \"*\" (this key) in a key policy, got {}",
                shown(other)
            ),
        ),
    }
}

fn check_condition(condition: &Value, place: &str, findings: &mut Findings) {
    let Value::Object(operators) = condition else {
        findings.add(
            Rule::Condition,
            place,
            format!("Condition must be an object, got {}", shown(condition)),
        );
        return;
    };
    for (operator, keys) in operators {
        let Value::Object(keys) = keys else {
            findings.add(
                Rule::Condition,
                place,
                format!(
                    "operator {} must map condition keys to values",
                    shown_str(operator)
                ),
            );
            continue;
        };
        for (key, values) in keys {
            let scalar =
                |v: &Value| matches!(v, Value::String(_) | Value::Bool(_) | Value::Number(_));
            let ok = match values {
                Value::Array(items) => items.iter().all(scalar),
                single => scalar(single),
            };
            if !ok {
                findings.add(
                    Rule::Condition,
                    place,
                    format!(
                        "{}.{} values must be strings, numbers or booleans",
                        shown_str(operator),
                        shown_str(key)
                    ),
                );
            }
        }
    }
}

/// At most this many characters of any value from the document appear in a message.
const SHOWN_CHARS: usize = 80;

/// A string from the document, quoted and cut to [`SHOWN_CHARS`]; escaping keeps control
/// characters out of logs.
fn shown_str(text: &str) -> String {
    match text.char_indices().nth(SHOWN_CHARS) {
        Some((cut, _)) => format!("{:?}...", &text[..cut]),
        None => format!("{text:?}"),
    }
}

/// A JSON value from the document, as JSON, cut to [`SHOWN_CHARS`].
fn shown(value: &Value) -> String {
    match value {
        Value::String(s) => shown_str(s),
        other => {
            let text = other.to_string();
            match text.char_indices().nth(SHOWN_CHARS) {
                Some((cut, _)) => format!("{}...", &text[..cut]),
                None => text,
            }
        }
    }
}

#[cfg(test)]
mod tests;
