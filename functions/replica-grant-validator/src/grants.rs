//! The required grants (`REQUIRED_GRANTS`) and the comparison of a replica's grants with
//! them: which are satisfied, which are missing, and which grants nobody asked for. Pure: the
//! handler lists the grants and acts on the result.

use std::collections::{BTreeMap, BTreeSet};

use crate::kms_grants::{
    kms_refusals, matches, ExistingGrant, GrantConstraints, GrantSpec, Grantee,
};
use serde::Serialize;
use serde_json::{Map, Value};
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
            what,
        },
        None => UnexpectedKind::UnknownGrantee,
    }
}

/// The CreateGrant fields in which `grant` differs from `spec`.
fn differences(spec: &GrantSpec, grant: &ExistingGrant) -> Vec<String> {
    let mut what = Vec::new();
    if grant.name.as_deref() != Some(spec.name.as_str()) {
        what.push("Name");
    }
    if grant.operations != spec.operations {
        what.push("Operations");
    }
    let retiring_same = match (&grant.retiring, &spec.retiring) {
        (Some(a), Some(b)) => a.same_as(b),
        (None, None) => true,
        _ => false,
    };
    if !retiring_same {
        what.push("RetiringPrincipal");
    }
    let (have, want) = (&grant.constraints, &spec.constraints);
    if have.encryption_context_subset != want.encryption_context_subset {
        what.push("Constraints.EncryptionContextSubset");
    }
    if have.encryption_context_equals != want.encryption_context_equals {
        what.push("Constraints.EncryptionContextEquals");
    }
    if have.source_arn != want.source_arn {
        what.push("Constraints.SourceArn");
    }
    what.into_iter().map(str::to_string).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ROLE: &str = "arn:aws:iam::111122223333:role/s3-replication";
    const ADMIN: &str = "arn:aws:iam::111122223333:role/kms-admin";
    const OTHER: &str = "arn:aws:iam::444455556666:role/debug";

    fn ops(list: &[&str]) -> BTreeSet<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn spec(name: &str, grantee: &str, operations: &[&str]) -> GrantSpec {
        GrantSpec {
            name: name.into(),
            grantee: Grantee::Principal(grantee.into()),
            operations: ops(operations),
            retiring: None,
            constraints: GrantConstraints::default(),
        }
    }

    fn required(spec: GrantSpec, regions: Option<&[&str]>) -> RequiredGrant {
        RequiredGrant {
            spec,
            regions: regions.map(|r| r.iter().map(|s| s.to_string()).collect()),
        }
    }

    fn existing(id: &str, spec: &GrantSpec) -> ExistingGrant {
        ExistingGrant {
            grant_id: id.into(),
            name: Some(spec.name.clone()),
            grantee: Some(spec.grantee.clone()),
            retiring: spec.retiring.clone(),
            operations: spec.operations.clone(),
            constraints: spec.constraints.clone(),
            issuing_account: Some("arn:aws:iam::111122223333:root".into()),
        }
    }

    fn replication() -> GrantSpec {
        spec("s3-replication", ROLE, &["Encrypt", "GenerateDataKey"])
    }

    // --- REQUIRED_GRANTS ---

    #[test]
    fn cli_json_is_read_with_create_grant_field_names() {
        let grants = parse_required_grants(
            r#"[{"Name": "s3-replication",
                 "GranteePrincipal": "arn:aws:iam::111122223333:role/s3-replication",
                 "Operations": ["Encrypt", "GenerateDataKey"],
                 "RetiringPrincipal": "arn:aws:iam::111122223333:role/kms-admin",
                 "Constraints": {"EncryptionContextSubset": {"aws:s3:arn": "arn:aws:s3:::dest"}},
                 "Regions": ["us-west-2"]},
                {"Name": "s3-service", "GranteeServicePrincipal": "s3.amazonaws.com",
                 "RetiringServicePrincipal": "s3.amazonaws.com", "Operations": ["Decrypt"],
                 "Constraints": {"SourceArn": "arn:aws:s3:::dest"}}]"#,
        )
        .unwrap();
        assert_eq!(grants.len(), 2);
        assert_eq!(
            grants[0],
            RequiredGrant {
                spec: GrantSpec {
                    retiring: Some(Grantee::Principal(ADMIN.into())),
                    constraints: GrantConstraints {
                        encryption_context_subset: BTreeMap::from([(
                            "aws:s3:arn".to_string(),
                            "arn:aws:s3:::dest".to_string()
                        )]),
                        ..GrantConstraints::default()
                    },
                    ..replication()
                },
                regions: Some(BTreeSet::from(["us-west-2".to_string()])),
            }
        );
        assert_eq!(
            grants[1].spec.grantee,
            Grantee::Service("s3.amazonaws.com".into())
        );
        assert_eq!(grants[1].regions, None);
        assert_eq!(parse_required_grants("[]"), Ok(vec![]));
    }

    fn problems(text: &str) -> Vec<String> {
        let problems = parse_required_grants(text).unwrap_err();
        assert!(problems.iter().all(|p| !p.contains('\n')), "{problems:?}");
        problems
    }

    fn has(problems: &[String], needle: &str) {
        assert!(
            problems.iter().any(|p| p.contains(needle)),
            "expected a problem containing {needle:?}, got {problems:?}"
        );
    }

    #[test]
    fn invalid_json_is_one_clear_problem() {
        for text in ["", "[{", "not json", "{\"Name\": }"] {
            let p = problems(text);
            assert_eq!(p.len(), 1, "{p:?}");
            has(&p, "REQUIRED_GRANTS is not valid JSON");
        }
        has(&problems("{}"), "must be a JSON array");
        has(&problems("[42]"), "REQUIRED_GRANTS[0]: must be an object");
    }

    #[test]
    fn unknown_fields_are_problems_not_ignored() {
        let p = problems(
            r#"[{"Name": "g", "GranteePrincpal": "arn:aws:iam::111122223333:role/r",
                 "Operations": ["Encrypt"], "KeyId": "k",
                 "Constraints": {"SourceARN": "arn:aws:s3:::b"}}]"#,
        );
        has(
            &p,
            "REQUIRED_GRANTS grant \"g\": unknown field \"GranteePrincpal\"",
        );
        has(
            &p,
            "unknown field \"KeyId\": the grant is created on every replica key",
        );
        has(&p, "unknown field \"Constraints.SourceARN\"");
        has(&p, "give the grantee as GranteePrincipal");
    }

    #[test]
    fn name_is_required_and_unique() {
        let p = problems(
            r#"[{"GranteePrincipal": "arn:aws:iam::111122223333:role/r", "Operations": ["Encrypt"]}]"#,
        );
        has(&p, "REQUIRED_GRANTS[0]: Name is required");
        let p = problems(
            r#"[{"Name": "g", "GranteePrincipal": "arn:aws:iam::111122223333:role/r", "Operations": ["Encrypt"]},
                {"Name": "g", "GranteePrincipal": "arn:aws:iam::111122223333:role/s", "Operations": ["Decrypt"]}]"#,
        );
        assert_eq!(p.len(), 1, "{p:?}");
        has(
            &p,
            "REQUIRED_GRANTS grant \"g\": the name is also used by REQUIRED_GRANTS[0]",
        );
        has(
            &problems(r#"[{"Name": 7}]"#),
            "REQUIRED_GRANTS[0]: Name must be a string, not a number",
        );
    }

    #[test]
    fn kms_refusals_are_problems_prefixed_with_the_grant_name() {
        let p = problems(
            r#"[{"Name": "s3-to-service", "GranteePrincipal": "s3.amazonaws.com",
                 "Operations": ["Encrypt", "Sign"]}]"#,
        );
        has(
            &p,
            "REQUIRED_GRANTS grant \"s3-to-service\": GranteePrincipal \"s3.amazonaws.com\" is a service principal",
        );
        has(&p, "replication role's ARN");
        has(
            &p,
            "REQUIRED_GRANTS grant \"s3-to-service\": Operations Sign exist only",
        );
        let p = problems(
            r#"[{"Name": "svc", "GranteeServicePrincipal": "s3.amazonaws.com", "Operations": ["Decrypt"]}]"#,
        );
        has(&p, "needs a SourceArn constraint");
        has(&p, "needs a RetiringPrincipal or RetiringServicePrincipal");
    }

    #[test]
    fn wrong_shapes_and_regions_are_problems() {
        let p = problems(
            r#"[{"Name": "g", "GranteePrincipal": "arn:aws:iam::111122223333:role/r",
                 "GranteeServicePrincipal": "s3.amazonaws.com", "Operations": "Encrypt"}]"#,
        );
        has(&p, "Operations must be a list of strings, not a string");
        has(&p, "not both");
        let p = problems(
            r#"[{"Name": "g", "GranteePrincipal": "arn:aws:iam::111122223333:role/r",
                 "Operations": ["Encrypt", 3], "Regions": ["us-west-2", "Oregon"],
                 "Constraints": {"EncryptionContextEquals": {"a": 1}}},
                {"Name": "h", "GranteePrincipal": "arn:aws:iam::111122223333:role/r",
                 "Operations": ["Encrypt"], "Regions": [], "Constraints": []}]"#,
        );
        has(&p, "Operations must list strings, not a number");
        has(&p, "Regions entry \"Oregon\" is not a Region name");
        has(
            &p,
            "Constraints.EncryptionContextEquals value of \"a\" must be a string",
        );
        has(&p, "REQUIRED_GRANTS grant \"h\": Regions is empty");
        has(
            &p,
            "REQUIRED_GRANTS grant \"h\": Constraints must be an object",
        );
    }

    #[test]
    fn input_in_problems_is_escaped_and_bounded() {
        let long = "x".repeat(5000);
        let text = format!(
            r#"[{{"Name": "bad\nname{long}", "GranteePrincipal": "s3.amazonaws.com\u202e", "Operations": ["Encrypt"], "Bogus\nField": 1}}]"#
        );
        let p = problems(&text);
        assert!(p.iter().all(|l| l.chars().count() < 1200), "{p:?}");
        has(&p, "bad\\nname");
    }

    proptest! {
        #[test]
        fn arbitrary_text_never_panics(text in ".{0,200}") {
            let _ = parse_required_grants(&text);
        }
    }

    // --- check ---

    #[test]
    fn a_missing_grant_is_reported_and_a_present_one_satisfied() {
        let req = [
            required(replication(), None),
            required(spec("describe", ROLE, &["DescribeKey"]), None),
        ];
        let have = [existing("g-1", &replication())];

        let result = check(&req, "us-west-2", &have);

        assert_eq!(
            result.satisfied,
            [Satisfied {
                name: "s3-replication".into(),
                grant_id: "g-1".into()
            }]
        );
        assert_eq!(result.missing, [spec("describe", ROLE, &["DescribeKey"])]);
        assert!(result.unexpected.is_empty());
        assert!(!result.is_clean());
        assert_eq!(
            result.summary(),
            "1 required grant present, 1 missing, 0 unexpected (missing: \"describe\")"
        );
    }

    #[test]
    fn a_grant_to_someone_else_is_an_unknown_grantee() {
        let req = [required(replication(), None)];
        let stranger = existing("g-x", &spec("debug", OTHER, &["Decrypt"]));
        let result = check(
            &req,
            "us-west-2",
            &[existing("g-1", &replication()), stranger.clone()],
        );
        assert_eq!(
            result.unexpected,
            [Unexpected {
                grant: stranger,
                why: UnexpectedKind::UnknownGrantee
            }]
        );
        assert!(result.missing.is_empty());
        assert!(result.unexpected[0]
            .summary()
            .contains("its grantee is in no required grant"));
    }

    #[test]
    fn operations_beyond_what_the_grantee_may_do_are_extra() {
        let req = [required(replication(), None)];
        let wider = existing(
            "g-2",
            &spec(
                "s3-replication",
                ROLE,
                &["Encrypt", "GenerateDataKey", "Decrypt", "CreateGrant"],
            ),
        );
        let result = check(&req, "us-west-2", &[wider]);
        assert_eq!(result.missing, [replication()]);
        assert_eq!(
            result.unexpected[0].why,
            UnexpectedKind::ExtraOperations(ops(&["CreateGrant", "Decrypt"]))
        );
        assert!(result.unexpected[0]
            .summary()
            .contains("it allows CreateGrant, Decrypt beyond"));
    }

    #[test]
    fn a_near_miss_names_the_required_grant_and_the_fields() {
        let req = [required(replication(), None)];
        let near = ExistingGrant {
            retiring: Some(Grantee::Principal(OTHER.into())),
            constraints: GrantConstraints {
                source_arn: Some("arn:aws:s3:::b".into()),
                ..GrantConstraints::default()
            },
            operations: ops(&["Encrypt"]),
            ..existing("g-3", &replication())
        };
        let unnamed = ExistingGrant {
            name: None,
            ..existing("g-4", &replication())
        };
        let result = check(&req, "us-west-2", &[near, unnamed]);
        assert_eq!(
            result.unexpected[0].why,
            UnexpectedKind::DiffersFromRequired {
                name: "s3-replication".into(),
                what: vec![
                    "Operations".into(),
                    "RetiringPrincipal".into(),
                    "Constraints.SourceArn".into()
                ]
            }
        );
        assert_eq!(
            result.unexpected[1].why,
            UnexpectedKind::DiffersFromRequired {
                name: "s3-replication".into(),
                what: vec!["Name".into()]
            }
        );
        assert_eq!(
            serde_json::to_value(&result.unexpected[1].why).unwrap(),
            serde_json::json!({"differs_from_required": {"name": "s3-replication", "what": ["Name"]}})
        );
    }

    #[test]
    fn required_grants_apply_only_in_their_regions() {
        let req = [
            required(replication(), Some(&["us-west-2"])),
            required(spec("everywhere", ADMIN, &["DescribeKey"]), None),
        ];
        let in_west = check(&req, "us-west-2", &[]);
        assert_eq!(in_west.missing.len(), 2);
        let in_europe = check(&req, "eu-west-1", &[existing("g-1", &replication())]);
        assert_eq!(
            in_europe.missing,
            [spec("everywhere", ADMIN, &["DescribeKey"])]
        );
        assert_eq!(
            in_europe.unexpected[0].why,
            UnexpectedKind::UnknownGrantee,
            "a grant required only elsewhere is not expected here"
        );
    }

    #[test]
    fn a_duplicate_of_a_satisfied_grant_is_not_a_finding() {
        let req = [required(replication(), None)];
        let result = check(
            &req,
            "us-west-2",
            &[
                existing("g-1", &replication()),
                existing("g-2", &replication()),
            ],
        );
        assert_eq!(result.satisfied.len(), 1);
        assert!(result.is_clean(), "{result:?}");
        assert!(result.findings().is_empty());
    }

    // --- the property ---

    const GRANTEES: &[&str] = &[ROLE, ADMIN, OTHER];
    const OPS: &[&str] = &["Encrypt", "Decrypt", "GenerateDataKey", "DescribeKey"];

    fn arb_spec() -> impl Strategy<Value = (usize, usize, BTreeSet<String>, bool, bool)> {
        (
            0..3usize,
            0..GRANTEES.len(),
            proptest::collection::btree_set(
                proptest::sample::select(OPS).prop_map(String::from),
                1..4,
            ),
            any::<bool>(),
            any::<bool>(),
        )
    }

    fn build(
        name: usize,
        grantee: usize,
        operations: BTreeSet<String>,
        retiring: bool,
        source: bool,
    ) -> GrantSpec {
        GrantSpec {
            name: format!("grant-{name}"),
            grantee: Grantee::Principal(GRANTEES[grantee].into()),
            operations,
            retiring: retiring.then(|| Grantee::Principal(ADMIN.into())),
            constraints: GrantConstraints {
                source_arn: source.then(|| "arn:aws:s3:::b".to_string()),
                ..GrantConstraints::default()
            },
        }
    }

    /// Equality written out field by field, independent of `matches`.
    fn same_grant(spec: &GrantSpec, grant: &ExistingGrant) -> bool {
        grant.name.as_deref() == Some(spec.name.as_str())
            && grant.grantee.as_ref() == Some(&spec.grantee)
            && grant.operations == spec.operations
            && grant.retiring == spec.retiring
            && grant.constraints == spec.constraints
    }

    proptest! {
        #[test]
        fn every_grant_is_counted_once_and_missing_means_unmatched(
            required_raw in proptest::collection::vec((arb_spec(), proptest::option::of(any::<bool>())), 0..4),
            existing_raw in proptest::collection::vec((arb_spec(), any::<bool>()), 0..8),
            in_west in any::<bool>(),
        ) {
            let region = if in_west { "us-west-2" } else { "eu-west-1" };
            // Unique names, as parse_required_grants guarantees.
            let mut seen = BTreeSet::new();
            let required: Vec<RequiredGrant> = required_raw
                .into_iter()
                .filter(|((n, ..), _)| seen.insert(*n))
                .map(|((n, g, o, r, s), west_only)| RequiredGrant {
                    spec: build(n, g, o, r, s),
                    regions: west_only.map(|w| BTreeSet::from([if w { "us-west-2" } else { "eu-west-1" }.to_string()])),
                })
                .collect();
            let existing: Vec<ExistingGrant> = existing_raw
                .into_iter()
                .enumerate()
                .map(|(i, ((n, g, o, r, s), named))| {
                    let spec = build(n, g, o, r, s);
                    ExistingGrant {
                        grant_id: format!("id-{i}"),
                        name: named.then_some(spec.name),
                        grantee: Some(spec.grantee),
                        retiring: spec.retiring,
                        operations: spec.operations,
                        constraints: spec.constraints,
                        issuing_account: None,
                    }
                })
                .collect();
            let applicable: Vec<&GrantSpec> = required
                .iter()
                .filter(|r| r.regions.as_ref().is_none_or(|set| set.contains(region)))
                .map(|r| &r.spec)
                .collect();

            let result = check(&required, region, &existing);

            for grant in &existing {
                let satisfies = applicable.iter().any(|s| same_grant(s, grant));
                let times_unexpected = result
                    .unexpected
                    .iter()
                    .filter(|u| u.grant.grant_id == grant.grant_id)
                    .count();
                prop_assert_eq!(times_unexpected, usize::from(!satisfies), "{:?}", grant);
            }
            prop_assert_eq!(result.satisfied.len() + result.missing.len(), applicable.len());
            for spec in &applicable {
                let present = existing.iter().any(|g| same_grant(spec, g));
                let missing = result.missing.iter().filter(|m| m.name == spec.name).count();
                prop_assert_eq!(missing, usize::from(!present), "{}", spec.name);
                if let Some(s) = result.satisfied.iter().find(|s| s.name == spec.name) {
                    let by_id = existing.iter().find(|g| g.grant_id == s.grant_id);
                    prop_assert!(by_id.is_some_and(|g| same_grant(spec, g)));
                }
            }
        }
    }
}
