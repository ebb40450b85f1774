//! Per-key decisions on plain values: a key's state now, its record and the change that led
//! here. Policies, versions and expected findings are written by hand.

use super::*;
use shared::aws::kms::RotationStatus;
use shared::config::FunctionConfig;

use crate::config::Config;

const SELF_ROLE: &str = "arn:aws:iam::111122223333:role/policy-drift";
const DEPLOYER: &str = "arn:aws:iam::111122223333:role/terraform-ci";
const ARN: &str = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
/// The Terraform module's default: the account root administers the key through IAM.
const ROOT_ONLY: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}]}"#;
/// The same, and an application role of the account that may decrypt.
const WITH_APP: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"},{"Sid":"App","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/app"},"Action":"kms:Decrypt","Resource":"*"}]}"#;
/// The same, and another account that may decrypt: outside the floor.
const WITH_STRANGER: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"},{"Sid":"Stranger","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::999988887777:root"},"Action":"kms:Decrypt","Resource":"*"}]}"#;

fn per_key(extra: &[(&str, &str)]) -> PerKey {
    let mut pairs = vec![
        ("DESIRED_STATE", "per-key"),
        ("STATE_TABLE", "kms-guardrails-state"),
        ("APPROVED_DEPLOYERS", DEPLOYER),
    ];
    pairs.extend_from_slice(extra);
    let config = Config::from_lookup(&shared::testing::env(SELF_ROLE, &pairs)).unwrap();
    config.per_key().cloned().expect("per-key configuration")
}

fn key(state: KeyState) -> KeyInfo {
    KeyInfo {
        state,
        ..shared::testing::key(ARN)
    }
}

const ROTATING: RotationRead = RotationRead::Read(RotationStatus {
    enabled: true,
    period_days: Some(365),
});

fn state(policy: &str) -> DesiredState {
    DesiredState {
        policy: canonical_policy(policy).unwrap(),
        rotation: Some(RotationWanted {
            enabled: true,
            period_days: Some(365),
        }),
        key_state: KeyStateWanted::Enabled,
        grants: Vec::new(),
    }
}

fn version_1(policy: &str) -> Version {
    Version {
        number: 1,
        state: state(policy),
        approved_by: "kms-guardrails sweep".into(),
        approved_at: "2026-12-01T00:00:00Z".into(),
        event_id: "sweep-1".into(),
        reason: Reason::Enrolled,
    }
}

fn change(event_name: &str, issuer: &str) -> Change {
    Change {
        event_id: "event-2".into(),
        event_name: event_name.into(),
        actor: format!("{issuer}/session"),
        issuer: Some(issuer.into()),
        time: Some("2026-12-02T10:00:00Z".into()),
        grant_made: None,
        grant_ended: None,
        policy_written: None,
    }
}

fn facts(record: Option<Version>, change: Option<Change>) -> PerKeyFacts {
    PerKeyFacts {
        record,
        change,
        sweep: Some("sweep-2".into()),
        now: "2026-12-02T11:00:00Z".into(),
        acting_as: SELF_ROLE.into(),
        ..PerKeyFacts::default()
    }
}

fn grant(id: &str, grantee: &str) -> ExistingGrant {
    ExistingGrant {
        grant_id: id.into(),
        name: None,
        grantee: Some(Grantee::Principal(grantee.into())),
        retiring: None,
        operations: ["Decrypt".to_string()].into(),
        constraints: GrantConstraints::default(),
        issuing_account: Some("arn:aws:iam::111122223333:root".into()),
    }
}

/// Decides for a key whose policy is `policy`, rotating yearly, with the grants of `facts`.
fn decide_now(
    per_key: &PerKey,
    state_now: KeyState,
    policy: &str,
    facts: &PerKeyFacts,
) -> PerKeyPlan {
    let key = key(state_now);
    let current = current_state(&key, policy, ROTATING, &facts.grants_now());
    decide(per_key, &key, policy, current, facts)
}

fn decided(plan: PerKeyPlan) -> Decision {
    match plan {
        PerKeyPlan::Decided(decision) => *decision,
        PerKeyPlan::Baseline => panic!("expected a per-key decision"),
    }
}

fn kinds(decision: &Decision) -> Vec<FindingKind> {
    decision.findings.iter().map(|f| f.kind).collect()
}

#[test]
fn a_key_without_a_record_is_enrolled_from_its_state_when_it_passes_the_floor() {
    let d = decided(decide_now(
        &per_key(&[]),
        KeyState::Enabled,
        WITH_APP,
        &facts(None, None),
    ));
    assert_eq!(kinds(&d), [FindingKind::DesiredStateRecorded]);
    assert!(d.corrections.is_empty());
    let record = d.record.expect("version 1");
    assert_eq!(record.number, 1);
    assert_eq!(record.reason, Reason::Enrolled);
    assert_eq!(record.event_id, "sweep-2");
    assert_eq!(record.state, state(WITH_APP));
}

#[test]
fn a_key_that_breaks_the_floor_is_reported_and_not_enrolled() {
    let d = decided(decide_now(
        &per_key(&[]),
        KeyState::Enabled,
        WITH_STRANGER,
        &facts(None, None),
    ));
    assert_eq!(kinds(&d), [FindingKind::FloorViolation]);
    assert!(d.record.is_none() && d.corrections.is_empty());
    assert!(
        d.findings[0].summary.contains("999988887777"),
        "{}",
        d.findings[0].summary
    );
    let d = decided(decide_now(
        &per_key(&[]),
        KeyState::PendingDeletion,
        ROOT_ONLY,
        &facts(None, None),
    ));
    assert!(d.record.is_none());
    assert!(d.findings[0].summary.contains("pending deletion"));
}

#[test]
fn unrecorded_keys_may_be_left_to_the_baseline() {
    let per_key = per_key(&[("UNRECORDED_KEYS", "baseline")]);
    assert_eq!(
        decide_now(&per_key, KeyState::Enabled, ROOT_ONLY, &facts(None, None)),
        PerKeyPlan::Baseline
    );
}

#[test]
fn an_unapproved_policy_change_is_drift_from_the_record() {
    let developer = "arn:aws:iam::111122223333:role/Developer";
    let f = facts(
        Some(version_1(ROOT_ONLY)),
        Some(change("PutKeyPolicy", developer)),
    );
    let d = decided(decide_now(&per_key(&[]), KeyState::Enabled, WITH_APP, &f));
    assert_eq!(kinds(&d), [FindingKind::PolicyDrift]);
    assert!(d.findings[0]
        .summary
        .contains("its recorded desired state (version 1)"));
    assert_eq!(d.corrections, [Correction::PutKeyPolicy]);
    assert!(d.record.is_none());
    assert_eq!(d.desired, state(ROOT_ONLY));
}

#[test]
fn an_approved_policy_change_becomes_the_next_version_and_is_not_reverted() {
    let f = facts(
        Some(version_1(ROOT_ONLY)),
        Some(change("PutKeyPolicy", DEPLOYER)),
    );
    let d = decided(decide_now(&per_key(&[]), KeyState::Enabled, WITH_APP, &f));
    assert_eq!(kinds(&d), [FindingKind::DesiredStateRecorded]);
    assert!(d.corrections.is_empty());
    let record = d.record.expect("version 2");
    assert_eq!(
        (record.number, record.reason.clone()),
        (2, Reason::Approved)
    );
    assert_eq!(record.state, state(WITH_APP));
    assert_eq!(record.approved_by, format!("{DEPLOYER}/session"));
    assert_eq!(record.approved_at, "2026-12-02T10:00:00Z");
}

#[test]
fn an_approved_change_that_breaks_the_floor_is_refused_and_restored() {
    let f = facts(
        Some(version_1(ROOT_ONLY)),
        Some(change("PutKeyPolicy", DEPLOYER)),
    );
    let d = decided(decide_now(
        &per_key(&[]),
        KeyState::Enabled,
        WITH_STRANGER,
        &f,
    ));
    assert_eq!(
        kinds(&d),
        [FindingKind::FloorViolation, FindingKind::PolicyDrift]
    );
    assert_eq!(d.corrections, [Correction::PutKeyPolicy]);
    assert!(d.record.is_none());
    // An allowed account passes the same floor.
    let allowed = per_key(&[("ALLOWED_ACCOUNTS", "999988887777")]);
    let d = decided(decide_now(&allowed, KeyState::Enabled, WITH_STRANGER, &f));
    assert_eq!(d.record.map(|r| r.number), Some(2));
}

#[test]
fn an_event_is_judged_on_its_own_aspect_and_a_sweep_on_all() {
    // The key was disabled and its policy changed; only the PutKeyPolicy event has arrived.
    let developer = "arn:aws:iam::111122223333:role/Developer";
    let f = facts(
        Some(version_1(ROOT_ONLY)),
        Some(change("PutKeyPolicy", developer)),
    );
    let d = decided(decide_now(&per_key(&[]), KeyState::Disabled, WITH_APP, &f));
    assert_eq!(d.corrections, [Correction::PutKeyPolicy]);
    let d = decided(decide_now(
        &per_key(&[]),
        KeyState::Disabled,
        WITH_APP,
        &facts(Some(version_1(ROOT_ONLY)), None),
    ));
    assert_eq!(
        d.corrections,
        [Correction::EnableKey, Correction::PutKeyPolicy]
    );
    // An approved deletion (terraform destroy) is recorded, not cancelled.
    let f = facts(
        Some(version_1(ROOT_ONLY)),
        Some(change("ScheduleKeyDeletion", DEPLOYER)),
    );
    let d = decided(decide_now(
        &per_key(&[]),
        KeyState::PendingDeletion,
        ROOT_ONLY,
        &f,
    ));
    assert!(d.corrections.is_empty());
    assert_eq!(
        d.record.map(|r| r.state.key_state),
        Some(KeyStateWanted::PendingDeletion)
    );
}

#[test]
fn a_grant_the_record_does_not_hold_is_found_and_revoked_only_when_configured() {
    let mut f = facts(Some(version_1(ROOT_ONLY)), None);
    f.grants = vec![grant("g-outside", "arn:aws:iam::444455556666:root")];
    let d = decided(decide_now(&per_key(&[]), KeyState::Enabled, ROOT_ONLY, &f));
    assert_eq!(kinds(&d), [FindingKind::GrantUnexpected]);
    assert!(d.revoke.is_empty());
    assert!(d.findings[0].summary.contains("g-outside"));
    let revoking = per_key(&[("REVOKE_UNEXPECTED_GRANTS", "true")]);
    let d = decided(decide_now(&revoking, KeyState::Enabled, ROOT_ONLY, &f));
    assert_eq!(
        d.revoke
            .iter()
            .map(|g| g.grant_id.as_str())
            .collect::<Vec<_>>(),
        ["g-outside"]
    );
}

#[test]
fn an_approved_grant_is_recorded_even_before_list_grants_shows_it() {
    let mut made = change("CreateGrant", DEPLOYER);
    made.grant_made = Some(grant("g-new", "arn:aws:iam::111122223333:role/app"));
    let f = facts(Some(version_1(ROOT_ONLY)), Some(made));
    let d = decided(decide_now(&per_key(&[]), KeyState::Enabled, ROOT_ONLY, &f));
    assert_eq!(kinds(&d), [FindingKind::DesiredStateRecorded]);
    let record = d.record.expect("version 2");
    assert_eq!(
        record
            .state
            .grants
            .iter()
            .map(|g| g.grant_id.as_str())
            .collect::<Vec<_>>(),
        ["g-new"]
    );
    assert!(d.revoke.is_empty());
}

#[test]
fn a_create_grant_record_gives_the_grant_it_made() {
    let detail: CloudTrailDetail = serde_json::from_value(serde_json::json!({
        "eventSource": "kms.amazonaws.com",
        "eventName": "CreateGrant",
        "requestParameters": {
            "keyId": ARN,
            "granteePrincipal": "arn:aws:iam::111122223333:role/app",
            "operations": ["Decrypt", "Encrypt"],
            "constraints": {"encryptionContextSubset": {"app": "billing"}}
        },
        "responseElements": {"grantId": "0123abcd"}
    }))
    .unwrap();
    let made = grant_made(&detail).expect("a grant");
    assert_eq!(made.grant_id, "0123abcd");
    assert_eq!(
        made.grantee,
        Some(Grantee::Principal(
            "arn:aws:iam::111122223333:role/app".into()
        ))
    );
    assert_eq!(
        made.operations,
        ["Decrypt".to_string(), "Encrypt".to_string()].into()
    );
    assert_eq!(made.constraints.encryption_context_subset["app"], "billing");
}

#[test]
fn an_approved_policy_is_recorded_as_the_deployer_wrote_it_not_as_the_key_holds_it_now() {
    // The deployer wrote WITH_APP; someone else changed the key again before this read.
    let mut deployed = change("PutKeyPolicy", DEPLOYER);
    deployed.policy_written = Some(canonical_policy(WITH_APP).unwrap());
    let f = facts(Some(version_1(ROOT_ONLY)), Some(deployed));
    let d = decided(decide_now(
        &per_key(&[]),
        KeyState::Enabled,
        WITH_STRANGER,
        &f,
    ));
    assert_eq!(
        d.record.as_ref().map(|r| r.state.policy.clone()),
        Some(canonical_policy(WITH_APP).unwrap())
    );
    assert_eq!(
        kinds(&d),
        [FindingKind::DesiredStateRecorded, FindingKind::PolicyDrift]
    );
    assert_eq!(d.corrections, [Correction::PutKeyPolicy]);
}

#[test]
fn an_enrolment_after_anyones_event_is_recorded_as_the_guardrails_own() {
    let developer = "arn:aws:iam::111122223333:role/Developer";
    let f = facts(None, Some(change("PutKeyPolicy", developer)));
    let d = decided(decide_now(&per_key(&[]), KeyState::Enabled, ROOT_ONLY, &f));
    let record = d.record.expect("version 1");
    assert_eq!(
        record.approved_by,
        format!("kms-guardrails enrolment, after PutKeyPolicy by {developer}/session")
    );
}
