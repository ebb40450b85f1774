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
        proptest::collection::btree_set(proptest::sample::select(OPS).prop_map(String::from), 1..4),
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
