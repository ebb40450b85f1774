//! `decide` as a table: plain facts in, findings and grant writes out. No clients, no mocks.

use super::*;
use shared::base::error::AwsErrorKind;
use shared::config::FunctionConfig;
use std::collections::{BTreeSet, HashMap};

use shared::aws::grants::Grantee;

const ACCOUNT: &str = "111122223333";
const ID: &str = "mrk-1234abcd12ab34cd56ef1234567890ab";
const ROLE: &str = "arn:aws:iam::111122223333:role/s3-replication";

fn arn(region: &str) -> String {
    format!("arn:aws:kms:{region}:{ACCOUNT}:key/{ID}")
}

fn config(extra: &[(&str, &str)]) -> Config {
    let mut env: HashMap<&str, String> = HashMap::from([
        ("MODE", "enforce".to_string()),
        ("STATE_TABLE", shared::testing::STATE_TABLE.to_string()),
        ("ACCOUNT_ID", ACCOUNT.to_string()),
        ("AWS_REGION", "eu-west-1".to_string()),
        (
            "NOTIFY_TOPIC_ARN",
            "arn:aws:sns:eu-west-1:111122223333:kms-guardrails".to_string(),
        ),
        (
            "SELF_ROLE_ARN",
            "arn:aws:iam::111122223333:role/replica-grant-validator".to_string(),
        ),
        ("REPLICATION_REGIONS", "us-west-2,eu-central-1".to_string()),
        ("REPLICATION_ROLE_ARNS", ROLE.to_string()),
        (
            "REQUIRED_GRANTS",
            format!(
                r#"[{{"Name":"s3-replication","GranteePrincipal":"{ROLE}","Operations":["Encrypt","GenerateDataKey"]}}]"#
            ),
        ),
    ]);
    env.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    Config::from_lookup(&|k| env.get(k).cloned()).unwrap()
}

fn key(region: &str, state: KeyState) -> KeyInfo {
    let mut key = KeyInfo::unreadable(&arn(region), &shared::testing::region(region), ACCOUNT);
    key.state = state;
    key.multi_region = true;
    key.primary_arn = Some(arn("eu-west-1"));
    key
}

fn primary(replica_regions: &[&str]) -> KeyInfo {
    let mut primary = key("eu-west-1", KeyState::Enabled);
    primary.replica_arns = replica_regions.iter().map(|r| arn(r)).collect();
    primary
}

const POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"Admin","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/kms-admin"},"Action":"kms:*","Resource":"*"}]}"#;
const DRIFTED: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"Admin","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/kms-admin"},"Action":"kms:*","Resource":"*"},{"Sid":"Outsider","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::444455556666:root"},"Action":"kms:Decrypt","Resource":"*"}]}"#;

fn grant(id: &str, name: &str, grantee: &str, operations: &[&str]) -> ExistingGrant {
    ExistingGrant {
        grant_id: id.into(),
        name: Some(name.into()),
        grantee: Some(Grantee::Principal(grantee.into())),
        retiring: None,
        operations: operations
            .iter()
            .map(|o| o.to_string())
            .collect::<BTreeSet<_>>(),
        constraints: Default::default(),
        issuing_account: Some(ACCOUNT.into()),
    }
}

fn required() -> ExistingGrant {
    grant(
        "g-1",
        "s3-replication",
        ROLE,
        &["Encrypt", "GenerateDataKey"],
    )
}

fn partner() -> ExistingGrant {
    grant(
        "g-partner",
        "partner-decrypt",
        "arn:aws:iam::444455556666:role/partner",
        &["Decrypt"],
    )
}

fn throttled(operation: &'static str) -> GuardrailError {
    GuardrailError::Aws {
        operation,
        key: "k".into(),
        kind: AwsErrorKind::Throttling,
        code: "ThrottlingException".into(),
        message: "slow down".into(),
    }
}

/// A replica read in full: enabled, the primary's policy, the given grants.
fn read_in(region: &str, grants: Vec<ExistingGrant>) -> ReplicaFacts {
    ReplicaFacts {
        arn: arn(region),
        region: shared::testing::region(region),
        key: Some(key(region, KeyState::Enabled)),
        policy: Some(POLICY.into()),
        grants: Some(grants),
        failure: None,
    }
}

fn with_state(mut facts: ReplicaFacts, state: KeyState) -> ReplicaFacts {
    if let Some(key) = facts.key.as_mut() {
        key.state = state;
    }
    facts
}

fn facts(replicas: Vec<ReplicaFacts>) -> Facts {
    Facts {
        primary_policy: Ok(POLICY.into()),
        replicas,
    }
}

/// What a replica's plan comes to, in plain values.
#[derive(Debug, PartialEq)]
struct Expect {
    findings: Vec<FindingKind>,
    /// Missing grants by name, whether they are created, and the grants to revoke; `None`
    /// when the grants were not read.
    grants: Option<(Vec<String>, bool, Vec<String>)>,
    failed: bool,
}

fn expect(
    findings: &[FindingKind],
    grants: Option<(&[&'static str], bool, &[&'static str])>,
    failed: bool,
) -> Expect {
    Expect {
        findings: findings.to_vec(),
        grants: grants.map(|(m, c, r)| (strings(m), c, strings(r))),
        failed,
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|i| i.to_string()).collect()
}

fn outcome(plan: &ReplicaPlan) -> Expect {
    Expect {
        findings: plan.report.findings.iter().map(|f| f.kind).collect(),
        grants: plan.grants.as_ref().map(|g| {
            let missing = g.missing.iter().map(|s| s.name.clone()).collect();
            (missing, g.create, g.revoke.clone())
        }),
        failed: plan.failure.is_some() && plan.report.error.is_some(),
    }
}

/// A row: what it shows, configuration beyond the defaults, the replicas read, and what each
/// replica's plan must come to.
type Case = (
    &'static str,
    Vec<(&'static str, &'static str)>,
    Vec<ReplicaFacts>,
    Vec<Expect>,
);

#[test]
fn decide_finds_what_is_wrong_with_each_replica_and_plans_the_grant_writes() {
    use FindingKind::*;
    let none: &[&str] = &[];
    let cases: Vec<Case> = vec![
        (
            "every replica in order: nothing found, nothing to write",
            vec![],
            vec![
                read_in("us-west-2", vec![required()]),
                read_in("eu-central-1", vec![required()]),
            ],
            vec![
                expect(&[], Some((none, true, none)), false),
                expect(&[], Some((none, true, none)), false),
            ],
        ),
        (
            "a missing grant is created in enforce mode",
            vec![],
            vec![
                read_in("us-west-2", vec![]),
                read_in("eu-central-1", vec![required()]),
            ],
            vec![
                expect(
                    &[GrantMissing],
                    Some((&["s3-replication"], true, none)),
                    false,
                ),
                expect(&[], Some((none, true, none)), false),
            ],
        ),
        (
            "an allowed Region outside REPLICATION_REGIONS: reported, not created (the role may not)",
            vec![("ALLOWED_REPLICA_REGIONS", "us-west-2,eu-central-1,ap-south-1")],
            vec![read_in("ap-south-1", vec![])],
            vec![expect(
                &[GrantMissing],
                Some((&["s3-replication"], false, none)),
                false,
            )],
        ),
        (
            "report mode creates nothing",
            vec![("MODE", "report")],
            vec![read_in("us-west-2", vec![])],
            vec![expect(
                &[GrantMissing],
                Some((&["s3-replication"], false, none)),
                false,
            )],
        ),
        (
            "a disabled replica is reported and gets no grant (KMS refuses CreateGrant on it)",
            vec![],
            vec![with_state(read_in("us-west-2", vec![]), KeyState::Disabled)],
            vec![expect(
                &[KeyDisabled, GrantMissing],
                Some((&["s3-replication"], false, none)),
                false,
            )],
        ),
        (
            "a replica pending deletion gets no grant",
            vec![],
            vec![with_state(
                read_in("us-west-2", vec![]),
                KeyState::PendingDeletion,
            )],
            vec![expect(
                &[PendingDeletion, GrantMissing],
                Some((&["s3-replication"], false, none)),
                false,
            )],
        ),
        (
            "a replica outside the allowed Regions gets no grant",
            vec![],
            vec![read_in("ap-south-1", vec![])],
            vec![expect(
                &[ReplicaRegionNotAllowed, GrantMissing],
                Some((&["s3-replication"], false, none)),
                false,
            )],
        ),
        (
            "a replica policy that says more than the primary's is drift",
            vec![],
            vec![ReplicaFacts {
                policy: Some(DRIFTED.into()),
                ..read_in("us-west-2", vec![required()])
            }],
            vec![expect(&[PolicyDrift], Some((none, true, none)), false)],
        ),
        (
            "an unexpected grant is reported, not revoked",
            vec![],
            vec![read_in("us-west-2", vec![required(), partner()])],
            vec![expect(&[GrantUnexpected], Some((none, true, none)), false)],
        ),
        (
            "an unexpected grant is revoked with STRICT_GRANTS in enforce mode",
            vec![("STRICT_GRANTS", "true")],
            vec![read_in("us-west-2", vec![required(), partner()])],
            vec![expect(
                &[GrantUnexpected],
                Some((none, true, &["g-partner"])),
                false,
            )],
        ),
        (
            "nor with STRICT_GRANTS in report mode",
            vec![("STRICT_GRANTS", "true"), ("MODE", "report")],
            vec![read_in("us-west-2", vec![required(), partner()])],
            vec![expect(&[GrantUnexpected], Some((none, false, none)), false)],
        ),
        (
            "grants that could not be listed: what was read is judged, nothing is written",
            vec![],
            vec![ReplicaFacts {
                policy: Some(DRIFTED.into()),
                grants: None,
                failure: Some(throttled("ListGrants")),
                ..read_in("us-west-2", vec![])
            }],
            vec![expect(&[PolicyDrift], None, true)],
        ),
        (
            "a replica in a disallowed Region whose calls are denied: that Region's finding, not a shut-out",
            vec![],
            vec![ReplicaFacts {
                key: None,
                policy: None,
                grants: None,
                failure: Some(GuardrailError::Aws {
                    operation: "DescribeKey",
                    key: arn("ap-south-1"),
                    kind: AwsErrorKind::AccessDenied,
                    code: "AccessDeniedException".into(),
                    message: "explicit deny in a service control policy".into(),
                }),
                ..read_in("ap-south-1", vec![])
            }],
            vec![expect(&[ReplicaRegionNotAllowed], None, false)],
        ),
        (
            "a denied read in an allowed Region stays a failure",
            vec![],
            vec![ReplicaFacts {
                key: None,
                policy: None,
                grants: None,
                failure: Some(GuardrailError::Aws {
                    operation: "DescribeKey",
                    key: arn("us-west-2"),
                    kind: AwsErrorKind::AccessDenied,
                    code: "AccessDeniedException".into(),
                    message: "denied".into(),
                }),
                ..read_in("us-west-2", vec![])
            }],
            vec![expect(&[], None, true)],
        ),
        (
            "a replica KMS is still creating is judged on nothing",
            vec![],
            vec![ReplicaFacts {
                policy: None,
                grants: None,
                failure: key("us-west-2", KeyState::Creating).not_ready(),
                ..with_state(read_in("us-west-2", vec![]), KeyState::Creating)
            }],
            vec![expect(&[], None, true)],
        ),
    ];
    for (name, env, replicas, expected) in cases {
        let regions: Vec<String> = replicas
            .iter()
            .map(|r| Arn::parse(&r.arn).unwrap().region().to_string())
            .collect();
        let regions: Vec<&str> = regions.iter().map(String::as_str).collect();
        let plan = decide(&config(&env), &primary(&regions), facts(replicas));
        let got: Vec<Expect> = plan.replicas.iter().map(outcome).collect();
        assert_eq!(got, expected, "{name}");
        assert!(plan.failure.is_none(), "{name}");
    }
}

#[test]
fn decide_reports_the_configured_regions_without_a_replica() {
    let plan = decide(
        &config(&[]),
        &primary(&["us-west-2", "ap-south-1"]),
        facts(vec![
            read_in("us-west-2", vec![required()]),
            read_in("ap-south-1", vec![required()]),
        ]),
    );
    assert_eq!(plan.report.missing_regions, ["eu-central-1"]);
    let kinds: Vec<FindingKind> = plan.report.findings.iter().map(|f| f.kind).collect();
    assert_eq!(kinds, [FindingKind::ReplicaMissing]);
    assert!(plan.report.findings[0]
        .summary
        .contains("aws kms replicate-key"));
}

#[test]
fn decide_stops_at_an_unreadable_primary_policy() {
    let plan = decide(
        &config(&[]),
        &primary(&["us-west-2"]),
        Facts {
            primary_policy: Err(throttled("GetKeyPolicy")),
            replicas: Vec::new(),
        },
    );
    assert!(plan.replicas.is_empty());
    assert!(plan.report.missing_regions.is_empty());
    assert!(plan
        .report
        .error
        .as_deref()
        .is_some_and(|e| e.contains("GetKeyPolicy")));
    assert_eq!(
        plan.failure.map(|e| e.disposition()),
        Some(Disposition::Retry)
    );
}

#[test]
fn the_message_carries_the_failure_a_retry_can_fix_first() {
    let denied = GuardrailError::Aws {
        operation: "ListGrants",
        key: "k".into(),
        kind: AwsErrorKind::AccessDenied,
        code: "AccessDeniedException".into(),
        message: "no".into(),
    };
    let primary = primary(&["us-west-2"]);
    let report = decide(&config(&[]), &primary, facts(vec![])).report;
    let audit = to_audit(&primary, &report, vec![denied, throttled("GetKeyPolicy")]);
    assert_eq!(
        audit.failure.map(|e| e.disposition()),
        Some(Disposition::Retry)
    );
}
