//! The key-policy model: parsing, canonical form and a semantic, statement-level diff.
//!
//! Two policies are equal when they grant the same thing. Statement order, `Sid`, a single
//! value versus a one-element list, JSON whitespace and key order, the case of action names
//! and condition keys, and the bare-account-id versus `arn:...:root` spelling of an account
//! principal are not differences. Everything else in a statement is. Condition values and
//! operators are compared as written: values are case-sensitive for most operators, and a
//! false difference only costs a needless rewrite.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::{Map, Value};

/// IAM's default when a policy omits `Version`.
const IMPLICIT_VERSION: &str = "2008-10-17";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid key policy: {0}")]
pub struct PolicyError(pub String);

fn invalid(msg: impl Into<String>) -> PolicyError {
    PolicyError(msg.into())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Effect {
    Allow,
    Deny,
}

impl fmt::Display for Effect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Effect::Allow => "Allow",
            Effect::Deny => "Deny",
        })
    }
}

/// Principal type (`AWS`, `Service`, `Federated`, `CanonicalUser`) to a set of values.
pub type PrincipalMap = BTreeMap<String, BTreeSet<String>>;
/// The values of one condition entry: the entry matches when any of them does.
pub type ConditionValues = BTreeSet<String>;
/// Condition operator (as written) to condition key (lower case) to its entries. Keys are
/// case-insensitive in IAM, so `kms:ViaService` and `KMS:viaservice` under one operator are
/// two entries of one key, and every entry must match: neither may hide the other.
pub type ConditionMap = BTreeMap<String, BTreeMap<String, BTreeSet<ConditionValues>>>;

/// Everything a statement grants or denies, in canonical form. `Sid` is deliberately absent:
/// renaming a statement changes nothing it does.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StatementBody {
    pub effect: Effect,
    pub principal: Option<PrincipalMap>,
    pub not_principal: Option<PrincipalMap>,
    pub action: Option<BTreeSet<String>>,
    pub not_action: Option<BTreeSet<String>>,
    pub resource: Option<BTreeSet<String>>,
    pub not_resource: Option<BTreeSet<String>>,
    pub condition: ConditionMap,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Statement {
    pub sid: Option<String>,
    pub body: StatementBody,
    /// The statement as written, so people see their own spelling in diffs.
    pub raw: Value,
}

impl Statement {
    /// A label for people: the Sid, or a short description when there is none.
    pub fn label(&self) -> String {
        match &self.sid {
            Some(sid) if !sid.is_empty() => format!("\"{sid}\""),
            _ => "(no Sid)".to_string(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    pub version: String,
    pub id: Option<String>,
    pub statements: Vec<Statement>,
}

impl Policy {
    pub fn parse(text: &str) -> Result<Policy, PolicyError> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| invalid(format!("not JSON: {e}")))?;
        Policy::from_value(&value)
    }

    pub fn from_value(value: &Value) -> Result<Policy, PolicyError> {
        let obj = value
            .as_object()
            .ok_or_else(|| invalid("the document is not a JSON object"))?;
        let version = match obj.get("Version") {
            None => IMPLICIT_VERSION.to_string(),
            Some(Value::String(v)) => v.clone(),
            Some(other) => return Err(invalid(format!("Version must be a string, got {other}"))),
        };
        let id = obj.get("Id").and_then(Value::as_str).map(str::to_string);
        let statements = match obj.get("Statement") {
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    parse_statement(s).map_err(|e| invalid(format!("Statement[{i}]: {}", e.0)))
                })
                .collect::<Result<Vec<_>, _>>()?,
            Some(single @ Value::Object(_)) => vec![parse_statement(single)?],
            Some(_) => return Err(invalid("Statement must be an object or a list of objects")),
            None => return Err(invalid("the document has no Statement")),
        };
        Ok(Policy {
            version,
            id,
            statements,
        })
    }

    /// The distinct statement bodies: a duplicated statement grants nothing more.
    pub fn bodies(&self) -> BTreeSet<&StatementBody> {
        self.statements.iter().map(|s| &s.body).collect()
    }

    pub fn semantically_equal(&self, other: &Policy) -> bool {
        self.diff_against(other).is_empty()
    }

    /// How `self` (the actual policy) differs from `baseline`.
    pub fn diff_against(&self, baseline: &Policy) -> PolicyDiff {
        diff(baseline, self)
    }
}

/// The elements a policy statement may have.
pub const STATEMENT_ELEMENTS: &[&str] = &[
    "Sid",
    "Effect",
    "Principal",
    "NotPrincipal",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Condition",
];

fn parse_statement(value: &Value) -> Result<Statement, PolicyError> {
    let obj = value
        .as_object()
        .ok_or_else(|| invalid("a statement is not a JSON object"))?;
    for key in obj.keys() {
        if !STATEMENT_ELEMENTS.contains(&key.as_str()) {
            return Err(invalid(format!("unknown statement element {key:?}")));
        }
    }
    let effect = match obj.get("Effect").and_then(Value::as_str) {
        Some("Allow") => Effect::Allow,
        Some("Deny") => Effect::Deny,
        Some(other) => {
            return Err(invalid(format!(
                "Effect must be Allow or Deny, got {other:?}"
            )))
        }
        None => return Err(invalid("a statement has no Effect")),
    };
    let body = StatementBody {
        effect,
        principal: obj.get("Principal").map(principal_map).transpose()?,
        not_principal: obj.get("NotPrincipal").map(principal_map).transpose()?,
        action: obj
            .get("Action")
            .map(|v| string_set(v, "Action", true))
            .transpose()?,
        not_action: obj
            .get("NotAction")
            .map(|v| string_set(v, "NotAction", true))
            .transpose()?,
        resource: obj
            .get("Resource")
            .map(|v| string_set(v, "Resource", false))
            .transpose()?,
        not_resource: obj
            .get("NotResource")
            .map(|v| string_set(v, "NotResource", false))
            .transpose()?,
        condition: obj
            .get("Condition")
            .map(condition_map)
            .transpose()?
            .unwrap_or_default(),
    };
    if body.action.is_none() && body.not_action.is_none() {
        return Err(invalid("a statement has neither Action nor NotAction"));
    }
    Ok(Statement {
        sid: obj.get("Sid").and_then(Value::as_str).map(str::to_string),
        body,
        raw: value.clone(),
    })
}

fn scalar_string(value: &Value, field: &str) -> Result<String, PolicyError> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Number(n) => Ok(n.to_string()),
        other => Err(invalid(format!(
            "{field} values must be strings, got {other}"
        ))),
    }
}

fn string_set(
    value: &Value,
    field: &str,
    case_insensitive: bool,
) -> Result<BTreeSet<String>, PolicyError> {
    let items: Vec<&Value> = match value {
        Value::Array(items) => items.iter().collect(),
        single => vec![single],
    };
    items
        .into_iter()
        .map(|v| {
            let s = scalar_string(v, field)?;
            Ok(if case_insensitive {
                s.to_ascii_lowercase()
            } else {
                s
            })
        })
        .collect()
}

/// `arn:<partition>:iam::<account>:root` and a bare account id name the same principal.
/// Whether an `AWS` principal value names `account` itself (its root ARN or the bare id), the
/// principal that delegates to the account's IAM policies.
pub fn names_account(principal: &str, account: &str) -> bool {
    crate::base::arn::is_account_id(account)
        && canonical_aws_principal(principal.trim().to_string()) == account
}

fn canonical_aws_principal(value: String) -> String {
    if let Some(rest) = value.strip_prefix("arn:") {
        let parts: Vec<&str> = rest.split(':').collect();
        if parts.len() == 5 && parts[1] == "iam" && parts[2].is_empty() && parts[4] == "root" {
            return parts[3].to_string();
        }
    }
    value
}

fn principal_map(value: &Value) -> Result<PrincipalMap, PolicyError> {
    match value {
        // "Principal": "*" is the same as {"AWS": "*"}.
        Value::String(s) if s == "*" => Ok(BTreeMap::from([(
            "AWS".to_string(),
            BTreeSet::from(["*".to_string()]),
        )])),
        Value::Object(map) => map
            .iter()
            .map(|(kind, values)| {
                let set = string_set(values, "Principal", false)?;
                let set = if kind == "AWS" {
                    set.into_iter().map(canonical_aws_principal).collect()
                } else {
                    set
                };
                Ok((kind.clone(), set))
            })
            .collect(),
        other => Err(invalid(format!(
            "Principal must be \"*\" or an object, got {other}"
        ))),
    }
}

fn condition_map(value: &Value) -> Result<ConditionMap, PolicyError> {
    let ops: &Map<String, Value> = value
        .as_object()
        .ok_or_else(|| invalid("Condition must be an object"))?;
    let mut conditions = ConditionMap::new();
    for (op, keys) in ops {
        let keys = keys
            .as_object()
            .ok_or_else(|| invalid(format!("Condition operator {op} must map keys to values")))?;
        let entries_by_key = conditions.entry(op.clone()).or_default();
        for (key, values) in keys {
            entries_by_key
                .entry(key.to_ascii_lowercase())
                .or_default()
                .insert(string_set(values, "Condition", false)?);
        }
    }
    Ok(conditions)
}

/// One element of a statement that differs between baseline and actual.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldChange {
    /// `Effect`, `Principal.AWS`, `Action`, `Condition.StringEquals.kms:viaservice`, ...
    pub field: String,
    /// Values as written. For a condition key written more than once (in different case) on
    /// either side, each value is a whole entry, `[a, b]`: all entries must match.
    pub added: Vec<String>,
    pub removed: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatementChange {
    pub sid: String,
    pub changes: Vec<FieldChange>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PolicyDiff {
    /// (baseline, actual) when the policy language version differs.
    pub version: Option<(String, String)>,
    /// Baseline statements with no equivalent in the actual policy.
    pub missing: Vec<Statement>,
    /// Actual statements with no equivalent in the baseline.
    pub extra: Vec<Statement>,
    /// Statements present on both sides under the same Sid but with different content.
    pub changed: Vec<StatementChange>,
}

impl PolicyDiff {
    pub fn is_empty(&self) -> bool {
        self.version.is_none()
            && self.missing.is_empty()
            && self.extra.is_empty()
            && self.changed.is_empty()
    }
}

fn diff(baseline: &Policy, actual: &Policy) -> PolicyDiff {
    let baseline_bodies = baseline.bodies();
    let actual_bodies = actual.bodies();
    let mut missing = unmatched(&baseline.statements, &actual_bodies);
    let mut extra = unmatched(&actual.statements, &baseline_bodies);

    // A statement that kept its Sid but changed content reads better as a field-level change.
    let mut changed = Vec::new();
    missing.retain(|m| {
        let Some(sid) = m.sid.as_deref().filter(|s| !s.is_empty()) else {
            return true;
        };
        let Some(pos) = extra.iter().position(|e| e.sid.as_deref() == Some(sid)) else {
            return true;
        };
        let e = extra.remove(pos);
        let changes = field_changes(&m.body, &e.body)
            .into_iter()
            .map(|c| FieldChange {
                added: c
                    .added
                    .iter()
                    .map(|v| spelling(&e.raw, &c.field, v))
                    .collect(),
                removed: c
                    .removed
                    .iter()
                    .map(|v| spelling(&m.raw, &c.field, v))
                    .collect(),
                field: c.field,
            })
            .collect();
        changed.push(StatementChange {
            sid: sid.to_string(),
            changes,
        });
        false
    });

    PolicyDiff {
        version: (baseline.version != actual.version)
            .then(|| (baseline.version.clone(), actual.version.clone())),
        missing,
        extra,
        changed,
    }
}

/// Statements of `side` whose body is not among `other`, each distinct body once.
fn unmatched(side: &[Statement], other: &BTreeSet<&StatementBody>) -> Vec<Statement> {
    let mut seen = BTreeSet::new();
    side.iter()
        .filter(|s| !other.contains(&s.body) && seen.insert(&s.body))
        .cloned()
        .collect()
}

/// The value as `raw` spells it, for a canonical `value` of `field` (`Action`, `Principal.AWS`).
fn spelling(raw: &Value, field: &str, value: &str) -> String {
    let mut path = field.splitn(2, '.');
    let element = raw.get(path.next().unwrap_or_default());
    let values = match (element, path.next()) {
        (Some(Value::Object(map)), Some(kind)) if field.contains("Principal") => map.get(kind),
        (Some(v), None) => Some(v),
        _ => None,
    };
    let candidates: Vec<&str> = match values {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    candidates
        .into_iter()
        .find(|c| c.eq_ignore_ascii_case(value) || canonical_aws_principal(c.to_string()) == value)
        .unwrap_or(value)
        .to_string()
}

fn set_change(
    field: &str,
    before: &BTreeSet<String>,
    after: &BTreeSet<String>,
) -> Option<FieldChange> {
    let added: Vec<String> = after.difference(before).cloned().collect();
    let removed: Vec<String> = before.difference(after).cloned().collect();
    (!added.is_empty() || !removed.is_empty()).then(|| FieldChange {
        field: field.to_string(),
        added,
        removed,
    })
}

fn optional_set_change(
    field: &str,
    before: &Option<BTreeSet<String>>,
    after: &Option<BTreeSet<String>>,
) -> Option<FieldChange> {
    let empty = BTreeSet::new();
    set_change(
        field,
        before.as_ref().unwrap_or(&empty),
        after.as_ref().unwrap_or(&empty),
    )
}

fn map_changes(
    prefix: &str,
    before: &BTreeMap<String, BTreeSet<String>>,
    after: &BTreeMap<String, BTreeSet<String>>,
    out: &mut Vec<FieldChange>,
) {
    let keys: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    let empty = BTreeSet::new();
    for key in keys {
        out.extend(set_change(
            &format!("{prefix}.{key}"),
            before.get(key).unwrap_or(&empty),
            after.get(key).unwrap_or(&empty),
        ));
    }
}

/// `[a, b]`: one condition entry, shown whole when a key has several.
fn entry_text(values: &ConditionValues) -> String {
    let values: Vec<&str> = values.iter().map(String::as_str).collect();
    format!("[{}]", values.join(", "))
}

fn condition_changes(
    op: &str,
    before: &BTreeMap<String, BTreeSet<ConditionValues>>,
    after: &BTreeMap<String, BTreeSet<ConditionValues>>,
    out: &mut Vec<FieldChange>,
) {
    let keys: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    let no_entries = BTreeSet::new();
    for key in keys {
        let field = format!("Condition.{op}.{key}");
        let b = before.get(key).unwrap_or(&no_entries);
        let a = after.get(key).unwrap_or(&no_entries);
        let (b, a): (BTreeSet<String>, BTreeSet<String>) = if b.len() <= 1 && a.len() <= 1 {
            // One entry per side: value by value reads best.
            (
                b.iter().flatten().cloned().collect(),
                a.iter().flatten().cloned().collect(),
            )
        } else {
            // Entries are ANDed, so a value moved between entries is a change of entries.
            (
                b.iter().map(entry_text).collect(),
                a.iter().map(entry_text).collect(),
            )
        };
        out.extend(set_change(&field, &b, &a));
    }
}

fn field_changes(baseline: &StatementBody, actual: &StatementBody) -> Vec<FieldChange> {
    let mut out = Vec::new();
    if baseline.effect != actual.effect {
        out.push(FieldChange {
            field: "Effect".into(),
            added: vec![actual.effect.to_string()],
            removed: vec![baseline.effect.to_string()],
        });
    }
    let empty = PrincipalMap::new();
    map_changes(
        "Principal",
        baseline.principal.as_ref().unwrap_or(&empty),
        actual.principal.as_ref().unwrap_or(&empty),
        &mut out,
    );
    map_changes(
        "NotPrincipal",
        baseline.not_principal.as_ref().unwrap_or(&empty),
        actual.not_principal.as_ref().unwrap_or(&empty),
        &mut out,
    );
    out.extend(optional_set_change(
        "Action",
        &baseline.action,
        &actual.action,
    ));
    out.extend(optional_set_change(
        "NotAction",
        &baseline.not_action,
        &actual.not_action,
    ));
    out.extend(optional_set_change(
        "Resource",
        &baseline.resource,
        &actual.resource,
    ));
    out.extend(optional_set_change(
        "NotResource",
        &baseline.not_resource,
        &actual.not_resource,
    ));
    let ops: BTreeSet<&String> = baseline
        .condition
        .keys()
        .chain(actual.condition.keys())
        .collect();
    let no_keys = BTreeMap::new();
    for op in ops {
        condition_changes(
            op,
            baseline.condition.get(op).unwrap_or(&no_keys),
            actual.condition.get(op).unwrap_or(&no_keys),
            &mut out,
        );
    }
    out
}

fn raw_values(value: &Value) -> String {
    match value {
        Value::Array(items) => items.iter().map(raw_values).collect::<Vec<_>>().join(", "),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl fmt::Display for Statement {
    /// One line in the statement's own spelling, e.g.
    /// `Allow AWS=arn:aws:iam::1:role/x Action=kms:Decrypt Resource=*`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.body.effect)?;
        for (label, key) in [("", "Principal"), ("Not", "NotPrincipal")] {
            match self.raw.get(key) {
                Some(Value::Object(map)) => {
                    for (kind, values) in map {
                        write!(f, " {label}{kind}={}", raw_values(values))?;
                    }
                }
                Some(other) => write!(f, " {label}Principal={}", raw_values(other))?,
                None => {}
            }
        }
        for key in ["Action", "NotAction", "Resource", "NotResource"] {
            if let Some(values) = self.raw.get(key) {
                write!(f, " {key}={}", raw_values(values))?;
            }
        }
        if let Some(Value::Object(ops)) = self.raw.get("Condition") {
            for (op, keys) in ops {
                for (key, values) in keys.as_object().into_iter().flatten() {
                    write!(f, " If {op}({key}={})", raw_values(values))?;
                }
            }
        }
        Ok(())
    }
}

impl fmt::Display for PolicyDiff {
    /// A statement-level diff for people: `+` is in the actual policy only, `-` in the baseline only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some((baseline, actual)) = &self.version {
            writeln!(f, "~ Version: baseline {baseline}, actual {actual}")?;
        }
        for s in &self.missing {
            writeln!(f, "- missing statement {}: {s}", s.label())?;
        }
        for s in &self.extra {
            writeln!(f, "+ extra statement {}: {s}", s.label())?;
        }
        for c in &self.changed {
            writeln!(f, "~ changed statement \"{}\":", c.sid)?;
            for change in &c.changes {
                for v in &change.removed {
                    writeln!(f, "    - {}: {v}", change.field)?;
                }
                for v in &change.added {
                    writeln!(f, "    + {}: {v}", change.field)?;
                }
            }
        }
        Ok(())
    }
}

/// Whether `pattern` (an IAM action pattern such as `kms:Put*`) matches `action`.
pub fn action_matches(pattern: &str, action: &str) -> bool {
    wildcard_match(&pattern.to_ascii_lowercase(), &action.to_ascii_lowercase())
}

/// `*` any run, `?` one character, compared as given (callers choose the case rule).
pub(crate) fn wildcard_match(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests;
