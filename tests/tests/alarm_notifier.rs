//! alarm-notifier end to end: the real handler and the real AWS SDK against moto (SNS, SQS,
//! KMS, DynamoDB, CloudWatch over the Query protocol). moto hands an SQS subscriber only the
//! `sqs`/`default` variant of a `MessageStructure=json` message, so the other variants are read
//! from the Publish request the function sent.

use alarm_notifier::{function_handler, AlarmReport, Clients, Deps};
use integration_tests::{notifier_config, sample_event, PublishLog, TestBed};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::Value;
use shared::notify::outcome::Outcome;
use shared::pipeline::Response;

const TABLE: &str = "kms-guardrails-alarm-transitions";

async fn bed_with_key() -> (TestBed, String) {
    let bed = TestBed::start().await;
    bed.create_dedup_table(TABLE).await;
    let key = bed
        .create_key("app-data key", &[("guardrails:managed", "true")], None)
        .await;
    bed.create_alias("alias/app-data", &key.key_id).await;
    (bed, key.key_id)
}

fn deps(bed: &TestBed, key_id: &str) -> (Deps, PublishLog) {
    let (clients, log) = bed.clients_recording_publish();
    let config = notifier_config(
        &bed.topic_arn,
        &[("DEDUP_TABLE", TABLE), ("ALARM_KEY_ID", key_id)],
    );
    (
        Deps {
            config,
            clients,
            own: Clients::new(),
        },
        log,
    )
}

async fn run(deps: &Deps, event: Value) -> Response<AlarmReport> {
    function_handler(LambdaEvent::new(event, Context::default()), deps)
        .await
        .unwrap()
}

/// The variants of the one structured message published.
fn variants(log: &PublishLog) -> Value {
    let messages = log.messages();
    assert_eq!(messages.len(), 1, "{messages:?}");
    serde_json::from_str(&messages[0]).expect("MessageStructure=json document")
}

#[tokio::test]
async fn a_decrypt_volume_alarm_is_one_message_a_person_can_act_on() {
    let (bed, key_id) = bed_with_key().await;
    let (deps, log) = deps(&bed, &key_id);

    let outcome = run(
        &deps,
        sample_event(
            "alarm-notifier/eventbridge-decrypt-volume-alarm.json",
            &key_id,
        ),
    )
    .await;

    assert!(
        matches!(outcome, Response::Report(AlarmReport::Alarm { ref key_id, .. }) if key_id.is_some()),
        "{outcome:?}"
    );
    let notes = bed.notifications().await;
    assert_eq!(notes.len(), 1);
    let subject = &notes[0].subject;
    assert!(
        subject.is_ascii() && subject.len() <= 100 && !subject.contains('\n'),
        "{subject}"
    );
    assert!(subject.contains("alias/app-data"), "{subject}");
    assert_eq!(notes[0].attributes["state"]["Value"], "ALARM");
    assert_eq!(notes[0].attributes["key_id"]["Value"], key_id.as_str());
    assert_eq!(notes[0].attributes["environment"]["Value"], "test");
    let v = variants(&log);
    let email = v["email"].as_str().unwrap();
    assert_eq!(
        subject,
        "[test] FIRING: KMS decrypt volume on alias/app-data (eu-west-1)"
    );
    for expected in [
        "State: ALARM (previous state: OK)",
        "Threshold: 1000",
        "Recent datapoints (oldest first): 412, 1532, 1874",
        "Alias: alias/app-data",
        "What to do",
    ] {
        assert!(email.contains(expected), "email lacks {expected}:\n{email}");
    }
    let sms = v["sms"].as_str().unwrap();
    assert!(sms.chars().count() <= 140 && !sms.contains('\n'), "{sms}");
    let chat: Value = serde_json::from_str(v["https"].as_str().unwrap()).expect("chat JSON");
    assert_eq!(chat["version"], "1.0");
    assert_eq!(chat["source"], "custom");
    assert!(chat["metadata"]["threadId"]
        .as_str()
        .is_some_and(|t| !t.is_empty()));
}

#[tokio::test]
async fn the_same_transition_delivered_twice_or_to_two_containers_is_announced_once() {
    let (bed, key_id) = bed_with_key().await;
    let (first, _) = deps(&bed, &key_id);
    let (second_container, _) = deps(&bed, &key_id);
    let event = sample_event(
        "alarm-notifier/eventbridge-access-denied-alarm.json",
        &key_id,
    );

    run(&first, event.clone()).await;
    let again = run(&first, event.clone()).await;
    let elsewhere = run(&second_container, event).await;

    for outcome in [again, elsewhere] {
        assert!(
            matches!(outcome, Response::Outcome(Outcome::Skipped { ref reason, .. }) if reason.contains("announced already")),
            "{outcome:?}"
        );
    }
    assert_eq!(bed.notifications().await.len(), 1);
}

#[tokio::test]
async fn an_ok_after_alarm_is_a_resolved_message() {
    let (bed, key_id) = bed_with_key().await;
    let (deps, _) = deps(&bed, &key_id);
    run(
        &deps,
        sample_event("alarm-notifier/eventbridge-decrypt-volume-ok.json", &key_id),
    )
    .await;
    let notes = bed.notifications().await;
    assert_eq!(notes.len(), 1);
    assert!(
        notes[0].subject.to_ascii_uppercase().contains("RESOLVED"),
        "{}",
        notes[0].subject
    );
    assert_eq!(notes[0].attributes["state"]["Value"], "OK");
}

#[tokio::test]
async fn a_composite_alarm_names_its_triggering_alarms() {
    let (bed, key_id) = bed_with_key().await;
    let (deps, log) = deps(&bed, &key_id);
    let event = sample_event("alarm-notifier/eventbridge-composite-alarm.json", &key_id);
    let change = shared::triggers::alarm::parse_alarm_payload(&event)
        .unwrap()
        .unwrap();
    run(&deps, event).await;
    let email = variants(&log)["email"].as_str().unwrap().to_string();
    for triggering in &change.triggering_alarms {
        let name = triggering.rsplit(':').next().unwrap();
        assert!(email.contains(name), "{name} missing:\n{email}");
    }
}

#[tokio::test]
async fn a_long_non_ascii_alarm_name_still_publishes() {
    let (bed, key_id) = bed_with_key().await;
    let (deps, _) = deps(&bed, &key_id);
    let mut event = sample_event(
        "alarm-notifier/eventbridge-decrypt-volume-alarm.json",
        &key_id,
    );
    let name: String = "Ключ-расшифровка\n".chars().cycle().take(255).collect();
    event["detail"]["alarmName"] = Value::from(name);
    run(&deps, event).await;
    let notes = bed.notifications().await;
    assert_eq!(notes.len(), 1);
    assert!(
        notes[0].subject.is_ascii() && notes[0].subject.len() <= 100,
        "{}",
        notes[0].subject
    );
}

#[tokio::test]
async fn the_sweep_finds_an_alarm_on_a_metric_aws_does_not_publish() {
    let (bed, key_id) = bed_with_key().await;
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&bed.sdk);
    // The reference module's alarm: AWS/KMS publishes no DecryptCount, so it never fires.
    cloudwatch
        .put_metric_alarm()
        .alarm_name("kms-decrypt-count-high")
        .namespace("AWS/KMS")
        .metric_name("DecryptCount")
        .dimensions(
            aws_sdk_cloudwatch::types::Dimension::builder()
                .name("KeyId")
                .value(&key_id)
                .build(),
        )
        .statistic(aws_sdk_cloudwatch::types::Statistic::Sum)
        .period(300)
        .evaluation_periods(1)
        .threshold(1000.0)
        .comparison_operator(aws_sdk_cloudwatch::types::ComparisonOperator::GreaterThanThreshold)
        .send()
        .await
        .unwrap();
    let (deps, _) = deps(&bed, &key_id);

    let outcome = run(
        &deps,
        sample_event("policy-drift/scheduled-sweep.json", "unused"),
    )
    .await;

    let Response::Report(AlarmReport::SilentAlarms { silent, .. }) = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(silent, ["kms-decrypt-count-high"]);
    let notes = bed.notifications().await;
    assert!(
        notes[0].message.contains("kms-decrypt-count-high"),
        "{}",
        notes[0].message
    );
}

#[tokio::test]
async fn an_access_denied_alarm_is_critical() {
    let (bed, key_id) = bed_with_key().await;
    let (deps, log) = deps(&bed, &key_id);
    run(
        &deps,
        sample_event(
            "alarm-notifier/eventbridge-access-denied-alarm.json",
            &key_id,
        ),
    )
    .await;
    let notes = bed.notifications().await;
    assert_eq!(notes.len(), 1);
    assert!(
        notes[0]
            .subject
            .starts_with("[test] FIRING: KMS AccessDenied"),
        "{}",
        notes[0].subject
    );
    assert_eq!(notes[0].attributes["severity"]["Value"], "critical");
    let v = variants(&log);
    assert!(v["email"].as_str().unwrap().contains("What to do"));
    assert!(v["sms"].as_str().unwrap().chars().count() <= 140);
}

#[tokio::test]
async fn an_alarm_without_a_key_dimension_finds_its_key_in_the_alarm_tags() {
    let (bed, key_id) = bed_with_key().await;
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&bed.sdk);
    cloudwatch
        .put_metric_alarm()
        .alarm_name("kms-access-denied")
        .namespace("KMSGuardrails")
        .metric_name("AccessDenied")
        .statistic(aws_sdk_cloudwatch::types::Statistic::Sum)
        .period(300)
        .evaluation_periods(1)
        .threshold(1.0)
        .comparison_operator(
            aws_sdk_cloudwatch::types::ComparisonOperator::GreaterThanOrEqualToThreshold,
        )
        .tags(
            aws_sdk_cloudwatch::types::Tag::builder()
                .key("KeyId")
                .value(&key_id)
                .build(),
        )
        .send()
        .await
        .unwrap();
    // No ALARM_KEY_ID: only the tag names the key.
    let (clients, _) = bed.clients_recording_publish();
    let config = notifier_config(&bed.topic_arn, &[("DEDUP_TABLE", TABLE)]);
    let deps = Deps {
        config,
        clients,
        own: Clients::new(),
    };
    let mut event = sample_event(
        "alarm-notifier/eventbridge-access-denied-alarm.json",
        &key_id,
    );
    event["detail"]["alarmName"] = Value::from("kms-access-denied");
    event["resources"] =
        serde_json::json!(["arn:aws:cloudwatch:eu-west-1:111122223333:alarm:kms-access-denied"]);

    let outcome = run(&deps, event).await;

    assert!(
        matches!(outcome, Response::Report(AlarmReport::Alarm { key_id: Some(ref k), .. }) if *k == key_id),
        "{outcome:?}"
    );
}

/// The transition id the function records for `event`.
fn transition_of(event: &Value) -> String {
    shared::triggers::alarm::parse_alarm_payload(event)
        .expect("an alarm event")
        .expect("a valid alarm event")
        .transition_id()
}

async fn put_claim(bed: &TestBed, transition: &str, claimed_seconds_ago: u64) {
    use aws_sdk_dynamodb::types::AttributeValue;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    aws_sdk_dynamodb::Client::new(&bed.sdk)
        .put_item()
        .table_name(TABLE)
        .item("transition", AttributeValue::S(transition.to_string()))
        .item("state", AttributeValue::S("claimed".into()))
        .item(
            "claimed_at",
            AttributeValue::N((now - claimed_seconds_ago).to_string()),
        )
        .item("expires_at", AttributeValue::N((now + 3600).to_string()))
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn a_failed_delivery_is_not_recorded_as_announced_so_the_retry_announces() {
    let (bed, key_id) = bed_with_key().await;
    let event = sample_event(
        "alarm-notifier/eventbridge-access-denied-alarm.json",
        &key_id,
    );
    // SNS refuses the first delivery (the topic does not exist) and there is no fallback queue.
    let (clients, _) = bed.clients_recording_publish();
    let broken = Deps {
        config: notifier_config(
            "arn:aws:sns:eu-west-1:111122223333:no-such-topic",
            &[("DEDUP_TABLE", TABLE), ("ALARM_KEY_ID", &key_id)],
        ),
        clients,
        own: Clients::new(),
    };
    let failed =
        function_handler(LambdaEvent::new(event.clone(), Context::default()), &broken).await;
    assert!(failed.is_err(), "{failed:?}");

    // Lambda's retry, SNS working again: announced, not "announced already".
    let (deps, _) = deps(&bed, &key_id);
    let retried = run(&deps, event.clone()).await;
    assert!(
        matches!(retried, Response::Report(AlarmReport::Alarm { .. })),
        "{retried:?}"
    );
    assert_eq!(bed.notifications().await.len(), 1);
    // And only once (notifications() takes what it reads off the queue).
    let again = run(&deps, event).await;
    assert!(
        matches!(again, Response::Outcome(Outcome::Skipped { .. })),
        "{again:?}"
    );
    assert!(bed.notifications().await.is_empty());
}

#[tokio::test]
async fn a_claim_left_by_a_delivery_that_died_is_retried_then_taken_over_when_stale() {
    let (bed, key_id) = bed_with_key().await;
    let event = sample_event(
        "alarm-notifier/eventbridge-access-denied-alarm.json",
        &key_id,
    );
    let transition = transition_of(&event);
    let (deps, _) = deps(&bed, &key_id);

    // Another delivery claimed it a moment ago: this one fails so Lambda retries it, and does
    // not call the transition announced.
    put_claim(&bed, &transition, 5).await;
    let err = function_handler(LambdaEvent::new(event.clone(), Context::default()), &deps)
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), "AnnouncementInProgress");
    assert!(err.is_retryable());
    assert!(bed.notifications().await.is_empty());

    // That delivery died: its claim goes stale and the retry announces.
    put_claim(&bed, &transition, alarm_notifier::dedup::LEASE_SECONDS + 10).await;
    let retried = run(&deps, event).await;
    assert!(
        matches!(retried, Response::Report(AlarmReport::Alarm { .. })),
        "{retried:?}"
    );
    assert_eq!(bed.notifications().await.len(), 1);
}
