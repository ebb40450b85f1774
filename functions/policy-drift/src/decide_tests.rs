//! `PolicyDrift::decide` on plain values: a key, its policy text and rotation as KMS would
//! give them, against the default configuration (root access on, rotation every 365 days).
//! Expected findings and corrections are written by hand.

use super::*;
use crate::plan::Correction;
use aws_sdk_kms::types::KeyState;
use shared::aws::kms::RotationStatus;
use shared::config::FunctionConfig;
use shared::notify::outcome::FindingKind;

const SELF_ROLE: &str = "arn:aws:iam::111122223333:role/policy-drift";
const ARN: &str = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

/// The baseline with root access on and nothing else configured, as the Terraform module's
/// default writes it.
const BASELINE: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}]}"#;
/// The same grant, reordered, with another Sid and the bare account id: not drift.
const BASELINE_RESPELLED: &str = r#"{"Statement":[{"Resource":"*","Action":["kms:*"],"Principal":{"AWS":"111122223333"},"Effect":"Allow","Sid":"root"}],"Version":"2012-10-17"}"#;
const EXTRA_STATEMENT: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"},{"Sid":"Outsider","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::444455556666:root"},"Action":"kms:Decrypt","Resource":"*"}]}"#;

fn config(mode: &str) -> Config {
    let env = shared::testing::env(SELF_ROLE, &[("MODE", mode)]);
    Config::from_lookup(&env).unwrap()
}

fn key(state: KeyState) -> KeyInfo {
    KeyInfo {
        state,
        ..shared::testing::key(ARN)
    }
}

const ON: RotationRead = RotationRead::Read(RotationStatus {
    enabled: true,
    period_days: Some(365),
});
const OFF: RotationRead = RotationRead::Read(RotationStatus {
    enabled: false,
    period_days: None,
});
const EVERY_90_DAYS: RotationRead = RotationRead::Read(RotationStatus {
    enabled: true,
    period_days: Some(90),
});

/// Name, key state, policy text, rotation read, mode; then the findings and corrections expected.
type Row<'a> = (
    &'a str,
    KeyState,
    &'a str,
    RotationRead,
    &'a str,
    &'a [FindingKind],
    &'a [Correction],
);

#[test]
fn each_departure_gives_its_finding_and_the_corrections_in_the_order_kms_accepts() {
    use Correction::*;
    #[rustfmt::skip]
    let table: &[Row] = &[
        ("in order", KeyState::Enabled, BASELINE, ON, "enforce", &[], &[]),
        ("respelled, same grant", KeyState::Enabled, BASELINE_RESPELLED, ON, "enforce", &[], &[]),
        ("extra statement", KeyState::Enabled, EXTRA_STATEMENT, ON, "enforce", &[FindingKind::PolicyDrift], &[PutKeyPolicy]),
        ("not JSON", KeyState::Enabled, "{not json", ON, "enforce", &[FindingKind::PolicyUnreadable], &[PutKeyPolicy]),
        ("rotation off", KeyState::Enabled, BASELINE, OFF, "enforce", &[FindingKind::RotationDisabled], &[EnableKeyRotation]),
        ("other period", KeyState::Enabled, BASELINE, EVERY_90_DAYS, "enforce", &[FindingKind::RotationPeriod], &[EnableKeyRotation]),
        ("disabled", KeyState::Disabled, BASELINE, ON, "enforce", &[FindingKind::KeyDisabled], &[EnableKey]),
        ("pending deletion, drifted, rotation unread", KeyState::PendingDeletion, EXTRA_STATEMENT, RotationRead::Deferred, "enforce",
            &[FindingKind::PendingDeletion, FindingKind::PolicyDrift], &[CancelKeyDeletion, EnableKey, PutKeyPolicy]),
        ("rotation unread in report mode says so", KeyState::Disabled, BASELINE, RotationRead::Deferred, "report",
            &[FindingKind::KeyDisabled, FindingKind::RotationUnknown], &[EnableKey]),
        ("rotation not applicable", KeyState::Enabled, BASELINE, RotationRead::NotApplicable, "enforce", &[], &[]),
    ];
    for (name, state, policy, rotation, mode, kinds, corrections) in table {
        let facts = Facts {
            policy_text: policy.to_string(),
            rotation: *rotation,
            per_key: None,
        };
        let plan = PolicyDrift::decide(&config(mode), &key(state.clone()), facts);
        let Plan::Correct(correct) = plan else {
            panic!("{name}: the default baseline was blocked");
        };
        let Correct {
            findings,
            corrections: planned,
            rotation_deferred,
            ..
        } = *correct;
        let found: Vec<FindingKind> = findings.iter().map(|f| f.kind).collect();
        assert_eq!(&found, kinds, "{name}");
        assert_eq!(&planned, corrections, "{name}");
        assert_eq!(
            rotation_deferred,
            *rotation == RotationRead::Deferred,
            "{name}"
        );
    }
}

#[test]
fn a_baseline_kms_would_refuse_never_reaches_decide_it_is_refused_at_cold_start() {
    // Root access off and nothing else configured: a policy without statements.
    let env = shared::testing::env(SELF_ROLE, &[("ROOT_ACCESS", "false")]);
    let error = Config::from_lookup(&env).unwrap_err();
    assert!(
        error.to_string().contains("would be refused by KMS"),
        "{error}"
    );
}
