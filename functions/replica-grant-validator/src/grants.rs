//! The required grants (`REQUIRED_GRANTS`) and the comparison of a replica's grants with
//! them: which are satisfied, which are missing, and which grants nobody asked for. Pure:
//! `audit::read` lists the grants and `audit::apply` acts on the result. The grant model and
//! the field-by-field comparison of one grant are in `shared::aws::grants`.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::{Map, Value};
use shared::aws::grants::{
    differences, kms_refusals, matches, ExistingGrant, GrantConstraints, GrantSpec, Grantee,
};
use shared::base::region::is_region;
use shared::base::text;

/// A grant every replica must have, or only the replicas in `regions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RequiredGrant {
    pub spec: GrantSpec,
    pub regions: Option<BTreeSet<String>>,
}

impl RequiredGrant {
    pub fn applies_in(&self, region: &str) -> bool {
        self.regions.as_ref().is_none_or(|r| r.contains(region))
    }
}

/// Fields of one `REQUIRED_GRANTS` entry: CreateGrant's own names, so CLI JSON can be pasted,
/// plus `Regions`.
const FIELDS: &[&str] = &[
    "Name",
    "GranteePrincipal",
    "GranteeServicePrincipal",
    "Operations",
    "RetiringPrincipal",
    "RetiringServicePrincipal",
    "Constraints",
    "Regions",
];
const CONSTRAINT_FIELDS: &[&str] = &[
    "EncryptionContextSubset",
    "EncryptionContextEquals",
    "SourceArn",
];
const VAR: &str = "REQUIRED_GRANTS";

/// Parses `REQUIRED_GRANTS`, a JSON array of CreateGrant requests (without `KeyId`), each with
/// an optional `Regions` list. Every problem is reported, one line each.
pub fn parse_required_grants(text: &str) -> Result<Vec<RequiredGrant>, Vec<String>> {
    let value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            return Err(vec![format!(
                "{VAR} is not valid JSON ({}): give a JSON array of CreateGrant requests, \
                 e.g. [{{\"Name\": \"s3-replication\", \"GranteePrincipal\": \"arn:aws:iam::111122223333:role/s3-replication\", \"Operations\": [\"Encrypt\", \"GenerateDataKey\"]}}]",
                text::one_line(&e.to_string(), 120)
            )])
        }
    };
    let Value::Array(items) = value else {
        return Err(vec![format!(
            "{VAR} must be a JSON array of CreateGrant requests, not {}",
            kind_of(&value)
        )]);
    };
    let mut problems = Vec::new();
    let mut grants = Vec::new();
    let mut names: BTreeMap<String, usize> = BTreeMap::new();
    for (index, item) in items.iter().enumerate() {
        let mut own = Vec::new();
        if let Some(grant) = parse_one(item, index, &mut own) {
            if let Some(first) = names.get(&grant.spec.name) {
                own.push(format!(
                    "{}: the name is also used by {VAR}[{first}]: give every grant its own Name, \
                     which is what makes creating it idempotent",
                    label(Some(&grant.spec.name), index)
                ));
            } else {
                names.insert(grant.spec.name.clone(), index);
            }
            if own.is_empty() {
                grants.push(grant);
            }
        }
        problems.extend(own);
    }
    if problems.is_empty() {
        Ok(grants)
    } else {
        Err(problems)
    }
}

/// How a grant is named in a problem: by its name, else by its place in the list.
fn label(name: Option<&str>, index: usize) -> String {
    match name {
        Some(n) => format!("{VAR} grant {}", text::quoted(n, 120)),
        None => format!("{VAR}[{index}]"),
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// One entry; problems go to `problems`. `None` when it cannot become a grant at all.
fn parse_one(item: &Value, index: usize, problems: &mut Vec<String>) -> Option<RequiredGrant> {
    let Value::Object(obj) = item else {
        problems.push(format!(
            "{}: must be an object with CreateGrant's fields, not {}",
            label(None, index),
            kind_of(item)
        ));
        return None;
    };
    let name = string_field(obj, "Name", &label(None, index), problems);
    let at = label(name.as_deref().filter(|n| !n.is_empty()), index);
    unknown_fields(obj, FIELDS, &at, "", problems);

    let grantee_principal = string_field(obj, "GranteePrincipal", &at, problems);
    let grantee_service = string_field(obj, "GranteeServicePrincipal", &at, problems);
    let retiring_principal = string_field(obj, "RetiringPrincipal", &at, problems);
    let retiring_service = string_field(obj, "RetiringServicePrincipal", &at, problems);
    let operations = string_list(obj, "Operations", &at, problems);
    let constraints = constraints(obj, &at, problems);
    let regions = regions(obj, &at, problems);

    let Some(name) = name else {
        if !obj.contains_key("Name") {
            problems.push(format!(
                "{at}: Name is required: a named grant is what makes creating it again \
                 return the existing grant instead of a duplicate"
            ));
        }
        return None;
    };
    let grantee = match (grantee_principal, grantee_service) {
        (Some(p), None) => Grantee::Principal(p),
        (None, Some(s)) => Grantee::Service(s),
        (Some(_), Some(_)) => {
            problems.push(format!(
                "{at}: give GranteePrincipal or GranteeServicePrincipal, not both"
            ));
            return None;
        }
        (None, None) => {
            problems.push(format!(
                "{at}: give the grantee as GranteePrincipal (an IAM role or user ARN, such as the \
                 replication role) or GranteeServicePrincipal"
            ));
            return None;
        }
    };
    let retiring = match (retiring_principal, retiring_service) {
        (Some(p), None) => Some(Grantee::Principal(p)),
        (None, Some(s)) => Some(Grantee::Service(s)),
        (None, None) => None,
        (Some(_), Some(_)) => {
            problems.push(format!(
                "{at}: give RetiringPrincipal or RetiringServicePrincipal, not both"
            ));
            return None;
        }
    };
    let spec = GrantSpec {
        name,
        grantee,
        operations: operations.into_iter().collect(),
        retiring,
        constraints,
    };
    problems.extend(
        kms_refusals(&spec)
            .into_iter()
            .map(|reason| format!("{at}: {reason}")),
    );
    Some(RequiredGrant { spec, regions })
}

fn unknown_fields(
    obj: &Map<String, Value>,
    known: &[&str],
    at: &str,
    prefix: &str,
    problems: &mut Vec<String>,
) {
    for field in obj.keys().filter(|k| !known.contains(&k.as_str())) {
        let why = match field.as_str() {
            "KeyId" => {
                "the grant is created on every replica key, so KeyId is not given".to_string()
            }
            "GrantTokens" | "DryRun" => format!("{field} is not used"),
            _ => format!("the fields are {}", known.join(", ")),
        };
        problems.push(format!(
            "{at}: unknown field {}: {why}",
            text::quoted(&format!("{prefix}{field}"), 80)
        ));
    }
}

fn string_field(
    obj: &Map<String, Value>,
    field: &str,
    at: &str,
    problems: &mut Vec<String>,
) -> Option<String> {
    match obj.get(field)? {
        Value::String(s) => Some(s.clone()),
        other => {
            problems.push(format!(
                "{at}: {field} must be a string, not {}",
                kind_of(other)
            ));
            None
        }
    }
}

fn string_list(
    obj: &Map<String, Value>,
    field: &str,
    at: &str,
    problems: &mut Vec<String>,
) -> Vec<String> {
    match obj.get(field) {
        None => Vec::new(),
        Some(Value::Array(items)) => {
            let mut out = Vec::new();
            for item in items {
                match item {
                    Value::String(s) => out.push(s.clone()),
                    other => problems.push(format!(
                        "{at}: {field} must list strings, not {}",
                        kind_of(other)
                    )),
                }
            }
            out
        }
        Some(other) => {
            problems.push(format!(
                "{at}: {field} must be a list of strings, not {}",
                kind_of(other)
            ));
            Vec::new()
        }
    }
}

fn context_map(
    obj: &Map<String, Value>,
    field: &str,
    at: &str,
    problems: &mut Vec<String>,
) -> BTreeMap<String, String> {
    match obj.get(field) {
        None => BTreeMap::new(),
        Some(Value::Object(pairs)) => {
            let mut out = BTreeMap::new();
            for (key, value) in pairs {
                match value {
                    Value::String(v) => {
                        out.insert(key.clone(), v.clone());
                    }
                    other => problems.push(format!(
                        "{at}: Constraints.{field} value of {} must be a string, not {}",
                        text::quoted(key, 60),
                        kind_of(other)
                    )),
                }
            }
            out
        }
        Some(other) => {
            problems.push(format!(
                "{at}: Constraints.{field} must be an object of string pairs, not {}",
                kind_of(other)
            ));
            BTreeMap::new()
        }
    }
}

fn constraints(obj: &Map<String, Value>, at: &str, problems: &mut Vec<String>) -> GrantConstraints {
    match obj.get("Constraints") {
        None => GrantConstraints::default(),
        Some(Value::Object(c)) => {
            unknown_fields(c, CONSTRAINT_FIELDS, at, "Constraints.", problems);
            GrantConstraints {
                encryption_context_subset: context_map(c, "EncryptionContextSubset", at, problems),
                encryption_context_equals: context_map(c, "EncryptionContextEquals", at, problems),
                source_arn: match c.get("SourceArn") {
                    None => None,
                    Some(Value::String(s)) => Some(s.clone()),
                    Some(other) => {
                        problems.push(format!(
                            "{at}: Constraints.SourceArn must be a string, not {}",
                            kind_of(other)
                        ));
                        None
                    }
                },
            }
        }
        Some(other) => {
            problems.push(format!(
                "{at}: Constraints must be an object, not {}",
                kind_of(other)
            ));
            GrantConstraints::default()
        }
    }
}

fn regions(
    obj: &Map<String, Value>,
    at: &str,
    problems: &mut Vec<String>,
) -> Option<BTreeSet<String>> {
    obj.get("Regions")?;
    let list = string_list(obj, "Regions", at, problems);
    if list.is_empty() && matches!(obj.get("Regions"), Some(Value::Array(a)) if a.is_empty()) {
        problems.push(format!(
            "{at}: Regions is empty, so the grant would apply nowhere: list Regions, or leave \
             Regions out to require the grant in every Region"
        ));
    }
    for region in list.iter().filter(|r| !is_region(r)) {
        problems.push(format!(
            "{at}: Regions entry {} is not a Region name such as us-west-2",
            text::quoted(region, 60)
        ));
    }
    Some(list.into_iter().collect())
}

/// A required grant and the existing grant that satisfies it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Satisfied {
    pub name: String,
    pub grant_id: String,
}

/// Why an existing grant is unexpected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UnexpectedKind {
    /// No required grant in this Region is for its grantee.
    UnknownGrantee,
    /// Operations no required grant for its grantee allows.
    ExtraOperations(BTreeSet<String>),
    /// Close to the required grant `name` but not equal: `what` lists the CreateGrant fields
    /// that differ.
    DiffersFromRequired { name: String, what: Vec<String> },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unexpected {
    pub grant: ExistingGrant,
    pub why: UnexpectedKind,
}

impl Unexpected {
    /// One line for people.
    pub fn summary(&self) -> String {
        let why = match &self.why {
            UnexpectedKind::UnknownGrantee => {
                "its grantee is in no required grant for this Region".to_string()
            }
            UnexpectedKind::ExtraOperations(ops) => format!(
                "it allows {} beyond what the required grants for its grantee allow",
                ops.iter()
                    .map(|o| text::one_line(o, 60))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            UnexpectedKind::DiffersFromRequired { name, what } => format!(
                "it differs from required grant {} in {}",
                text::quoted(name, 120),
                what.join(", ")
            ),
        };
        format!("unexpected {}: {why}", self.grant.summary())
    }
}

/// The grants of one replica compared with the required grants of its Region.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GrantCheck {
    pub satisfied: Vec<Satisfied>,
    pub missing: Vec<GrantSpec>,
    pub unexpected: Vec<Unexpected>,
}

impl GrantCheck {
    /// Nothing missing and nothing unexpected.
    pub fn is_clean(&self) -> bool {
        self.missing.is_empty() && self.unexpected.is_empty()
    }

    /// One line for people: counts and the missing grants' names.
    pub fn summary(&self) -> String {
        let mut line = format!(
            "{} required grant{} present, {} missing, {} unexpected",
            self.satisfied.len(),
            if self.satisfied.len() == 1 { "" } else { "s" },
            self.missing.len(),
            self.unexpected.len()
        );
        if !self.missing.is_empty() {
            let names: Vec<String> = self
                .missing
                .iter()
                .map(|s| text::quoted(&s.name, 120))
                .collect();
            line.push_str(&format!(" (missing: {})", names.join(", ")));
        }
        line
    }

    /// One line per finding, for the notification.
    pub fn findings(&self) -> Vec<String> {
        self.missing
            .iter()
            .map(|s| format!("missing grant {}", s.summary()))
            .chain(self.unexpected.iter().map(Unexpected::summary))
            .collect()
    }
}

/// Compares a replica's grants in `region` with the required grants that apply there.
/// Every existing grant either satisfies a required grant (duplicates of a satisfied grant
/// included) or is unexpected, exactly once.
pub fn check(required: &[RequiredGrant], region: &str, existing: &[ExistingGrant]) -> GrantCheck {
    let applicable: Vec<&GrantSpec> = required
        .iter()
        .filter(|r| r.applies_in(region))
        .map(|r| &r.spec)
        .collect();
    let mut result = GrantCheck::default();
    for spec in &applicable {
        match existing.iter().find(|e| matches(spec, e)) {
            Some(grant) => result.satisfied.push(Satisfied {
                name: spec.name.clone(),
                grant_id: grant.grant_id.clone(),
            }),
            None => result.missing.push((*spec).clone()),
        }
    }
    for grant in existing {
        if applicable.iter().any(|spec| matches(spec, grant)) {
            continue;
        }
        result.unexpected.push(Unexpected {
            grant: grant.clone(),
            why: classify(&applicable, grant),
        });
    }
    result
}

fn classify(applicable: &[&GrantSpec], grant: &ExistingGrant) -> UnexpectedKind {
    let for_grantee: Vec<&GrantSpec> = applicable
        .iter()
        .copied()
        .filter(|s| {
            grant
                .grantee
                .as_ref()
                .is_some_and(|g| g.same_as(&s.grantee))
        })
        .collect();
    if for_grantee.is_empty() {
        return UnexpectedKind::UnknownGrantee;
    }
    let allowed: BTreeSet<&String> = for_grantee.iter().flat_map(|s| &s.operations).collect();
    let extra: BTreeSet<String> = grant
        .operations
        .iter()
        .filter(|o| !allowed.contains(o))
        .cloned()
        .collect();
    if !extra.is_empty() {
        return UnexpectedKind::ExtraOperations(extra);
    }
    // The same-named required grant if there is one, else the closest.
    let closest = for_grantee
        .iter()
        .map(|s| (*s, differences(s, grant)))
        .min_by_key(|(s, what)| (grant.name.as_deref() != Some(s.name.as_str()), what.len()));
    match closest {
        Some((spec, what)) => UnexpectedKind::DiffersFromRequired {
            name: spec.name.clone(),
            what: what.into_iter().map(str::to_string).collect(),
        },
        None => UnexpectedKind::UnknownGrantee,
    }
}

#[cfg(test)]
#[path = "grants_tests.rs"]
mod tests;
