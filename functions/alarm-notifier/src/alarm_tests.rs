//! The pure decision, as a table of plain values: which transitions are announced, and with
//! what severity and subject.

use super::*;
use crate::message::Severity;
use shared::triggers::alarm::{AlarmDelivery, AlarmKind, AlarmState, MetricRef};

const KEY_ID: &str = "1234abcd-12ab-34cd-56ef-1234567890ab";

fn change(state: AlarmState, previous: Option<AlarmState>, metric: &str) -> AlarmChange {
    AlarmChange {
        delivery: AlarmDelivery::EventBridge,
        alarm_name: "kms-guardrails-alarm".to_string(),
        alarm_arn: Some(
            "arn:aws:cloudwatch:eu-west-1:111122223333:alarm:kms-guardrails-alarm".to_string(),
        ),
        region: Some(shared::testing::region("eu-west-1")),
        account: Some("111122223333".to_string()),
        kind: AlarmKind::Metric,
        state,
        previous_state: previous,
        reason: "Threshold Crossed".to_string(),
        reason_data: None,
        reason_data_raw: None,
        timestamp: Some("2026-11-20T09:26:07.415+0000".to_string()),
        description: None,
        metrics: vec![MetricRef {
            namespace: Some("KMSGuardrails".to_string()),
            name: Some(metric.to_string()),
            dimensions: vec![("KeyId".to_string(), KEY_ID.to_string())],
            ..MetricRef::default()
        }],
        threshold: Some(1.0),
        comparison: None,
        evaluation_periods: None,
        alarm_rule: None,
        triggering_alarms: Vec::new(),
        recent_datapoints: Vec::new(),
        event_id: Some("event-1".to_string()),
    }
}

fn app_data_key() -> KeyContext {
    KeyContext {
        key_id: KEY_ID.to_string(),
        arn: format!("arn:aws:kms:eu-west-1:111122223333:key/{KEY_ID}"),
        alias: Some("alias/app-data".to_string()),
        description: "Application data".to_string(),
        tags: Vec::new(),
        state: "Enabled".to_string(),
        managed: true,
    }
}

/// What one row expects: skipped with a reason, or announced with severity and subject.
enum Expect {
    Skip(&'static str),
    Announce(Transition, Severity, &'static str),
}

#[test]
fn which_transitions_are_announced_and_how() {
    use AlarmState as S;
    use Expect::{Announce, Skip};
    let rows: &[(AlarmState, Option<AlarmState>, bool, &str, Expect)] = &[
        (
            S::Alarm,
            Some(S::Ok),
            false,
            "DecryptCalls",
            Announce(
                Transition::Firing,
                Severity::High,
                "[prod] FIRING: KMS decrypt volume on alias/app-data (eu-west-1)",
            ),
        ),
        (
            S::Alarm,
            None,
            false,
            "AccessDenied",
            Announce(
                Transition::Firing,
                Severity::Critical,
                "[prod] FIRING: KMS AccessDenied errors on alias/app-data (eu-west-1)",
            ),
        ),
        (
            S::Alarm,
            Some(S::InsufficientData),
            false,
            "KeyDisabledOrScheduledForDeletion",
            Announce(
                Transition::Firing,
                Severity::Critical,
                "[prod] FIRING: KMS key disabled or scheduled for deletion on alias/app-data (eu-west-1)",
            ),
        ),
        (
            S::Alarm,
            Some(S::Ok),
            false,
            "KeyPolicyChanged",
            Announce(
                Transition::Firing,
                Severity::High,
                "[prod] FIRING: KMS key policy changed on alias/app-data (eu-west-1)",
            ),
        ),
        (
            S::Ok,
            Some(S::Alarm),
            false,
            "AccessDenied",
            Announce(
                Transition::Resolved,
                Severity::Info,
                "[prod] RESOLVED: KMS AccessDenied errors on alias/app-data (eu-west-1)",
            ),
        ),
        (S::Ok, None, true, "DecryptCalls", Skip("OK without a previous ALARM")),
        (
            S::Ok,
            Some(S::InsufficientData),
            true,
            "DecryptCalls",
            Skip("OK without a previous ALARM"),
        ),
        (
            S::InsufficientData,
            Some(S::Ok),
            false,
            "DecryptCalls",
            Skip("ANNOUNCE_INSUFFICIENT_DATA=false"),
        ),
        (
            S::InsufficientData,
            Some(S::Alarm),
            true,
            "DecryptCalls",
            Announce(
                Transition::InsufficientData,
                Severity::Info,
                "[prod] INSUFFICIENT DATA: KMS decrypt volume on alias/app-data (eu-west-1)",
            ),
        ),
    ];
    for (state, previous, insufficient, metric, expect) in rows {
        let row =
            format!("{state:?} after {previous:?}, {metric}, announce insufficient {insufficient}");
        let change = change(*state, *previous, metric);
        match (announced(&change, *insufficient), expect) {
            (Err(reason), Skip(why)) => assert!(reason.contains(why), "{row}: {reason}"),
            (Ok(transition), Announce(expected, severity, subject)) => {
                assert_eq!(transition, *expected, "{row}");
                let plan = decide(&change, transition, Ok(app_data_key()), Some("prod"));
                assert_eq!(plan.rendered.subject, *subject, "{row}");
                let severity = severity.to_string();
                assert_eq!(
                    plan.rendered.attribute("severity"),
                    Some(severity.as_str()),
                    "{row}"
                );
                assert_eq!(plan.key_id.as_deref(), Some(KEY_ID), "{row}");
                let notification = plan.notification();
                assert_eq!(notification.subject, *subject, "{row}");
                assert_eq!(notification.attributes["severity"], severity, "{row}");
                assert!(notification.structured, "{row}");
            }
            (Err(reason), Announce(..)) => panic!("{row}: skipped ({reason})"),
            (Ok(transition), Skip(_)) => panic!("{row}: announced as {transition:?}"),
        }
    }
}

#[test]
fn a_key_that_could_not_be_read_is_said_in_the_message_and_missing_from_the_report() {
    let change = change(AlarmState::Alarm, Some(AlarmState::Ok), "DecryptCalls");
    let problem = "the key \"alias/gone\" could not be read: NotFound".to_string();

    let plan = decide(&change, Transition::Firing, Err(problem), None);

    assert_eq!(plan.key_id, None);
    assert!(
        plan.rendered.email.contains("could not be read"),
        "{}",
        plan.rendered.email
    );
    // The dimension still names the key in the subject and the attributes.
    assert_eq!(
        plan.rendered.subject,
        format!("FIRING: KMS decrypt volume on {KEY_ID} (eu-west-1)")
    );
    assert_eq!(plan.rendered.attribute("key_id"), Some(KEY_ID));
}
