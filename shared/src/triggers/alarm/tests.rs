use super::*;
use serde_json::json;

const KEY_ID: &str = "1234abcd-12ab-34cd-56ef-1234567890ab";
const ACCOUNT: &str = "111122223333";
const DECRYPT_VOLUME_ARN: &str =
    "arn:aws:cloudwatch:eu-west-1:111122223333:alarm:kms-app-data-decrypt-volume";
const ACCESS_DENIED_ARN: &str =
    "arn:aws:cloudwatch:eu-west-1:111122223333:alarm:kms-app-data-access-denied";

const SAMPLES: [(&str, &str); 9] = [
    (
        "eventbridge-access-denied-alarm.json",
        include_str!("../../../../events/alarm-notifier/eventbridge-access-denied-alarm.json"),
    ),
    (
        "eventbridge-aws-kms-namespace-alarm.json",
        include_str!("../../../../events/alarm-notifier/eventbridge-aws-kms-namespace-alarm.json"),
    ),
    (
        "eventbridge-composite-alarm.json",
        include_str!("../../../../events/alarm-notifier/eventbridge-composite-alarm.json"),
    ),
    (
        "eventbridge-decrypt-volume-alarm.json",
        include_str!("../../../../events/alarm-notifier/eventbridge-decrypt-volume-alarm.json"),
    ),
    (
        "eventbridge-decrypt-volume-ok.json",
        include_str!("../../../../events/alarm-notifier/eventbridge-decrypt-volume-ok.json"),
    ),
    (
        "eventbridge-insufficient-data.json",
        include_str!("../../../../events/alarm-notifier/eventbridge-insufficient-data.json"),
    ),
    (
        "eventbridge-metric-math-alarm.json",
        include_str!("../../../../events/alarm-notifier/eventbridge-metric-math-alarm.json"),
    ),
    (
        "lambda-alarm-action.json",
        include_str!("../../../../events/alarm-notifier/lambda-alarm-action.json"),
    ),
    (
        "sns-classic-alarm.json",
        include_str!("../../../../events/alarm-notifier/sns-classic-alarm.json"),
    ),
];

fn sample_json(name: &str) -> Value {
    let (_, text) = SAMPLES
        .iter()
        .find(|(file, _)| *file == name)
        .unwrap_or_else(|| panic!("no sample {name}"));
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn parse(payload: &Value) -> AlarmChange {
    match parse_alarm_payload(payload) {
        Some(Ok(change)) => change,
        other => panic!("expected an alarm change, got {other:?}"),
    }
}

fn sample(name: &str) -> AlarmChange {
    parse(&sample_json(name))
}

/// The InvalidEvent message for an alarm shape that is malformed.
fn error_of(payload: &Value) -> String {
    match parse_alarm_payload(payload) {
        Some(Err(err)) => {
            assert!(matches!(err, GuardrailError::InvalidEvent(_)), "{err:?}");
            err.to_string()
        }
        other => panic!("expected an InvalidEvent, got {other:?}"),
    }
}

fn eventbridge(detail: Value) -> Value {
    json!({
        "version": "0", "id": "e-1", "detail-type": "CloudWatch Alarm State Change",
        "source": "aws.cloudwatch", "account": ACCOUNT, "time": "2026-11-20T09:26:07Z",
        "region": "eu-west-1", "resources": [DECRYPT_VOLUME_ARN], "detail": detail
    })
}

fn sns(message: &Value) -> Value {
    json!({"Records": [{
        "EventSource": "aws:sns", "EventVersion": "1.0",
        "Sns": {"Type": "Notification", "MessageId": "m-1", "Message": message.to_string(),
                "Timestamp": "2026-11-20T09:26:07.512Z"}
    }]})
}

// GIVEN each sample WHEN parsed THEN the fields a person checks are right.

#[test]
fn decrypt_volume_alarm_from_eventbridge() {
    let c = sample("eventbridge-decrypt-volume-alarm.json");
    assert_eq!(c.delivery, AlarmDelivery::EventBridge);
    assert_eq!(c.alarm_name, "kms-app-data-decrypt-volume");
    assert_eq!(c.alarm_arn.as_deref(), Some(DECRYPT_VOLUME_ARN));
    assert_eq!(c.region.as_deref(), Some("eu-west-1"));
    assert_eq!(c.account.as_deref(), Some(ACCOUNT));
    assert_eq!(c.kind, AlarmKind::Metric);
    assert_eq!(c.state, AlarmState::Alarm);
    assert_eq!(c.previous_state, Some(AlarmState::Ok));
    assert!(c
        .reason
        .starts_with("Threshold Crossed: 2 out of the last 3 datapoints"));
    assert_eq!(c.threshold, Some(1000.0));
    assert_eq!(c.recent_datapoints, [412.0, 1532.0, 1874.0]);
    assert_eq!(c.key_id_dimension(), Some(KEY_ID));
    assert_eq!(c.timestamp.as_deref(), Some("2026-11-20T09:26:07.415+0000"));
    assert_eq!(
        c.event_id.as_deref(),
        Some("6a7e8feb-b491-4cf7-a9f1-bf3703467718")
    );
    assert!(c.description.as_deref().unwrap().contains(KEY_ID));
    let data = c.reason_data.as_ref().unwrap();
    assert_eq!(data["statistic"], "Sum");
    assert!(c.reason_data_raw.as_deref().unwrap().contains("queryDate"));
    let [m] = &c.metrics[..] else {
        panic!("{:?}", c.metrics)
    };
    assert_eq!(m.namespace.as_deref(), Some("KMSGuardrails"));
    assert_eq!(m.name.as_deref(), Some("DecryptCalls"));
    assert_eq!(m.dimensions, [("KeyId".to_string(), KEY_ID.to_string())]);
    assert_eq!((m.stat.as_deref(), m.period), (Some("Sum"), Some(300)));
    assert_eq!((m.expression.as_deref(), m.return_data), (None, Some(true)));
    assert_eq!(
        (c.comparison.as_deref(), c.evaluation_periods),
        (None, None)
    );
    assert_eq!(c.alarm_rule, None);
    assert!(c.triggering_alarms.is_empty());
    assert_eq!(
        c.transition_id(),
        format!("{DECRYPT_VOLUME_ARN}|ALARM|2026-11-20T09:26:07.415+0000")
    );
}

#[test]
fn access_denied_alarm_has_no_key_dimension() {
    let c = sample("eventbridge-access-denied-alarm.json");
    assert_eq!(c.alarm_arn.as_deref(), Some(ACCESS_DENIED_ARN));
    assert_eq!(
        (c.state, c.previous_state),
        (AlarmState::Alarm, Some(AlarmState::Ok))
    );
    assert_eq!(c.kind, AlarmKind::Metric);
    assert_eq!(c.metrics[0].name.as_deref(), Some("KMSAccessDenied"));
    assert!(c.metrics[0].dimensions.is_empty());
    assert_eq!(c.key_id_dimension(), None);
    assert_eq!(c.threshold, Some(0.0));
    assert_eq!(c.recent_datapoints, [3.0]);
}

#[test]
fn decrypt_volume_back_to_ok_is_a_new_transition() {
    let ok = sample("eventbridge-decrypt-volume-ok.json");
    let alarm = sample("eventbridge-decrypt-volume-alarm.json");
    assert_eq!(
        (ok.state, ok.previous_state),
        (AlarmState::Ok, Some(AlarmState::Alarm))
    );
    assert_eq!(ok.alarm_arn, alarm.alarm_arn);
    assert_eq!(ok.recent_datapoints, [1190.0, 318.0, 655.0]);
    assert_eq!(ok.threshold, Some(1000.0));
    assert_eq!(ok.key_id_dimension(), Some(KEY_ID));
    assert_ne!(ok.transition_id(), alarm.transition_id());
}

#[test]
fn metric_math_alarm_lists_expressions_and_metrics() {
    let c = sample("eventbridge-metric-math-alarm.json");
    assert_eq!(c.kind, AlarmKind::MetricMath);
    assert_eq!(
        (c.state, c.previous_state),
        (AlarmState::Alarm, Some(AlarmState::InsufficientData))
    );
    let ids: Vec<_> = c.metrics.iter().map(|m| m.id.as_deref().unwrap()).collect();
    assert_eq!(ids, ["e1", "e0", "m1", "m2"]);
    let e1 = &c.metrics[0];
    assert_eq!(e1.expression.as_deref(), Some("100 * e0 / m2"));
    assert_eq!(e1.label.as_deref(), Some("Denied share of calls (%)"));
    assert_eq!(e1.return_data, Some(true));
    assert_eq!((e1.namespace.as_deref(), e1.stat.as_deref()), (None, None));
    assert!(e1.dimensions.is_empty());
    assert_eq!(c.metrics[3].name.as_deref(), Some("KMSCalls"));
    assert_eq!(c.metrics[3].return_data, Some(false));
    assert_eq!(c.key_id_dimension(), Some(KEY_ID));
    assert_eq!(c.threshold, Some(5.0));
    assert_eq!(c.recent_datapoints, [12.5]);
}

#[test]
fn composite_alarm_names_the_alarms_behind_it() {
    let c = sample("eventbridge-composite-alarm.json");
    assert_eq!(c.kind, AlarmKind::Composite);
    assert_eq!(
        (c.state, c.previous_state),
        (AlarmState::Alarm, Some(AlarmState::Ok))
    );
    assert_eq!(
        c.alarm_rule.as_deref(),
        Some(r#"ALARM("kms-app-data-decrypt-volume") AND ALARM("kms-app-data-access-denied")"#)
    );
    assert_eq!(c.triggering_alarms, [ACCESS_DENIED_ARN, DECRYPT_VOLUME_ARN]);
    assert!(c.metrics.is_empty());
    assert_eq!(c.key_id_dimension(), None);
    assert_eq!(c.threshold, None);
    assert!(c.recent_datapoints.is_empty());
    assert!(c.description.is_some());
}

#[test]
fn sns_notification_takes_the_region_code_from_the_arn() {
    let c = sample("sns-classic-alarm.json");
    assert_eq!(c.delivery, AlarmDelivery::Sns);
    assert_eq!(c.region.as_deref(), Some("eu-west-1"));
    assert_eq!(c.account.as_deref(), Some(ACCOUNT));
    assert_eq!(c.alarm_arn.as_deref(), Some(DECRYPT_VOLUME_ARN));
    assert_eq!(
        c.event_id.as_deref(),
        Some("b1f7c9a2-5d3e-5f60-8a7b-9c0d1e2f3a4b")
    );
    assert_eq!(
        (c.state, c.previous_state),
        (AlarmState::Alarm, Some(AlarmState::Ok))
    );
    assert_eq!(c.kind, AlarmKind::Metric);
    assert_eq!(c.threshold, Some(1000.0));
    assert_eq!(c.comparison.as_deref(), Some("GreaterThanThreshold"));
    assert_eq!(c.evaluation_periods, Some(3));
    let m = &c.metrics[0];
    assert_eq!(m.namespace.as_deref(), Some("KMSGuardrails"));
    assert_eq!(m.name.as_deref(), Some("DecryptCalls"));
    assert_eq!((m.stat.as_deref(), m.period), (Some("Sum"), Some(300)));
    assert_eq!(c.key_id_dimension(), Some(KEY_ID));
    assert_eq!(c.timestamp.as_deref(), Some("2026-11-20T09:26:07.415+0000"));
    assert_eq!(
        (c.reason_data.as_ref(), c.reason_data_raw.as_ref()),
        (None, None)
    );
    assert!(c.recent_datapoints.is_empty());
    assert!(c.reason.contains("[1874.0 (20/11/26 09:20:00)"));
    // The same transition as the EventBridge sample: one announcement, not two.
    assert_eq!(
        c.transition_id(),
        sample("eventbridge-decrypt-volume-alarm.json").transition_id()
    );
}

#[test]
fn lambda_alarm_action() {
    let c = sample("lambda-alarm-action.json");
    assert_eq!(c.delivery, AlarmDelivery::LambdaAction);
    assert_eq!(c.alarm_arn.as_deref(), Some(ACCESS_DENIED_ARN));
    assert_eq!(c.region.as_deref(), Some("eu-west-1"));
    assert_eq!(c.account.as_deref(), Some(ACCOUNT));
    assert_eq!(c.event_id, None);
    assert_eq!(
        (c.state, c.previous_state),
        (AlarmState::Alarm, Some(AlarmState::Ok))
    );
    assert_eq!(c.threshold, Some(0.0));
    assert_eq!(c.recent_datapoints, [3.0]);
    assert_eq!(
        c.transition_id(),
        sample("eventbridge-access-denied-alarm.json").transition_id()
    );
}

#[test]
fn insufficient_data_has_no_datapoints() {
    let c = sample("eventbridge-insufficient-data.json");
    assert_eq!(
        (c.state, c.previous_state),
        (AlarmState::InsufficientData, Some(AlarmState::Ok))
    );
    assert_eq!(c.reason, "Insufficient Data: 3 datapoints were unknown.");
    assert!(c.recent_datapoints.is_empty());
    assert_eq!(c.threshold, Some(1000.0));
    assert_eq!(c.key_id_dimension(), Some(KEY_ID));
}

#[test]
fn aws_kms_namespace_alarm() {
    let c = sample("eventbridge-aws-kms-namespace-alarm.json");
    assert_eq!(c.kind, AlarmKind::Metric);
    assert_eq!(
        (c.state, c.previous_state),
        (AlarmState::Ok, Some(AlarmState::InsufficientData))
    );
    assert_eq!(c.metrics[0].namespace.as_deref(), Some("AWS/KMS"));
    assert_eq!(c.metrics[0].name.as_deref(), Some("DecryptCount"));
    assert_eq!(c.key_id_dimension(), Some(KEY_ID));
    assert!(c.reason.contains("treated as [NonBreaching]"));
    assert!(c.recent_datapoints.is_empty());
}

#[test]
fn every_sample_is_in_eu_west_1_and_listed_here() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../events/alarm-notifier");
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    let listed: Vec<&str> = SAMPLES.iter().map(|(name, _)| *name).collect();
    assert_eq!(on_disk, listed, "add new samples to SAMPLES");

    let mut ids = std::collections::HashSet::new();
    for (name, _) in SAMPLES {
        let c = sample(name);
        let expected = match name.split('-').next() {
            Some("eventbridge") => AlarmDelivery::EventBridge,
            Some("sns") => AlarmDelivery::Sns,
            _ => AlarmDelivery::LambdaAction,
        };
        assert_eq!(c.delivery, expected, "{name}");
        assert_eq!(c.region.as_deref(), Some("eu-west-1"), "{name}");
        assert_eq!(c.account.as_deref(), Some(ACCOUNT), "{name}");
        assert!(
            c.alarm_arn
                .as_deref()
                .unwrap()
                .starts_with("arn:aws:cloudwatch:eu-west-1:111122223333:alarm:"),
            "{name}"
        );
        assert!(c.timestamp.is_some() && !c.reason.is_empty(), "{name}");
        ids.insert(c.transition_id());
    }
    // Two samples repeat another's transition (SNS and the Lambda action).
    assert_eq!(ids.len(), SAMPLES.len() - 2);
}

// GIVEN optional fields missing or null WHEN parsed THEN they are None or empty.

#[test]
fn eventbridge_with_only_the_required_fields() {
    let payload = json!({
        "detail-type": "CloudWatch Alarm State Change",
        "detail": {"alarmName": "a", "state": {"value": "ALARM"}}
    });
    let c = parse(&payload);
    assert_eq!(c.alarm_name, "a");
    assert_eq!(c.state, AlarmState::Alarm);
    assert_eq!(c.kind, AlarmKind::Metric);
    assert_eq!(
        (
            &c.alarm_arn,
            &c.region,
            &c.account,
            &c.event_id,
            &c.timestamp
        ),
        (&None, &None, &None, &None, &None)
    );
    assert_eq!((c.previous_state, c.description.as_deref()), (None, None));
    assert_eq!(c.reason, "");
    assert_eq!((&c.reason_data, &c.reason_data_raw), (&None, &None));
    assert!(c.metrics.is_empty() && c.recent_datapoints.is_empty());
    assert_eq!(c.transition_id(), "a|ALARM|no-timestamp");
}

#[test]
fn eventbridge_with_every_optional_field_null() {
    let payload = json!({
        "id": null, "detail-type": "CloudWatch Alarm State Change", "source": null,
        "account": null, "time": null, "region": null, "resources": null,
        "detail": {
            "alarmName": "a",
            "state": {"value": "OK", "reason": null, "reasonData": null, "timestamp": null},
            "previousState": null,
            "configuration": {"description": null, "metrics": [null, 5, "m1", {}, {"metricStat": null}]}
        }
    });
    let c = parse(&payload);
    assert_eq!((c.state, c.previous_state), (AlarmState::Ok, None));
    assert_eq!(c.reason, "");
    assert_eq!((&c.region, &c.account, &c.event_id), (&None, &None, &None));
    assert_eq!(c.metrics, [MetricRef::default(), MetricRef::default()]);
    assert_eq!(c.key_id_dimension(), None);

    let mut payload = payload;
    payload["detail"]["configuration"] = Value::Null;
    payload["detail"]["previousState"] = json!({"value": null, "reason": null});
    assert_eq!(parse(&payload).previous_state, None);
}

#[test]
fn sns_and_lambda_action_with_only_the_required_fields() {
    let c = parse(&sns(&json!({
        "AlarmName": "a", "NewStateValue": "OK", "OldStateValue": null, "AlarmArn": null,
        "AlarmDescription": null, "Trigger": null, "Region": "EU (Ireland)", "AWSAccountId": null
    })));
    assert_eq!((c.state, c.previous_state), (AlarmState::Ok, None));
    assert_eq!((c.alarm_arn, c.region, c.account), (None, None, None));
    assert_eq!(c.timestamp.as_deref(), Some("2026-11-20T09:26:07.512Z"));
    assert!(c.metrics.is_empty());
    assert_eq!(c.kind, AlarmKind::Metric);

    let c =
        parse(&json!({"alarmData": {"alarmName": "a", "state": {"value": "INSUFFICIENT_DATA"}}}));
    assert_eq!(c.delivery, AlarmDelivery::LambdaAction);
    assert_eq!(c.state, AlarmState::InsufficientData);
    assert_eq!((c.alarm_arn, c.region, c.timestamp), (None, None, None));
}

#[test]
fn reason_data_absent_empty_or_not_json_keeps_what_there_is() {
    let with = |reason_data: Value| {
        parse(&eventbridge(json!({
            "alarmName": "a", "state": {"value": "ALARM", "reasonData": reason_data}
        })))
    };
    for empty in [json!(""), json!("   "), json!(null), json!(7)] {
        let c = with(empty.clone());
        assert_eq!((c.reason_data, c.reason_data_raw), (None, None), "{empty}");
    }
    let c = with(json!("{not json"));
    assert_eq!(c.reason_data, None);
    assert_eq!(c.reason_data_raw.as_deref(), Some("{not json"));
    assert!(c.recent_datapoints.is_empty() && c.threshold.is_none());

    let c = with(json!(
        r#"{"recentDatapoints":[1, "2.5", null, "x", "1e999"], "threshold": "10"}"#
    ));
    assert_eq!(c.recent_datapoints, [1.0, 2.5]);
    assert_eq!(c.threshold, Some(10.0));

    let c = with(json!({"recentDatapoints": [4.0], "threshold": 3.0}));
    assert_eq!((c.recent_datapoints, c.threshold), (vec![4.0], Some(3.0)));
    assert!(c.reason_data_raw.is_some());

    // Nesting past serde_json's recursion limit is "not JSON", not a stack overflow.
    let c = with(Value::String("[".repeat(100_000)));
    assert_eq!(c.reason_data, None);
    assert_eq!(c.reason_data_raw.map(|r| r.len()), Some(100_000));
}

// Region and names.

#[test]
fn region_comes_from_the_arn_then_a_region_code_never_a_display_name() {
    let mut payload = eventbridge(json!({"alarmName": "a", "state": {"value": "OK"}}));
    payload["region"] = json!("us-east-1");
    assert_eq!(
        parse(&payload).region.as_deref(),
        Some("eu-west-1"),
        "ARN wins"
    );

    payload["resources"] = json!([]);
    assert_eq!(parse(&payload).region.as_deref(), Some("us-east-1"));
    payload["region"] = json!("EU (Ireland)");
    assert_eq!(parse(&payload).region, None);

    payload["resources"] = json!([
        "arn:aws:kms:eu-west-1:111122223333:key/k",
        DECRYPT_VOLUME_ARN
    ]);
    let c = parse(&payload);
    assert_eq!(c.alarm_arn.as_deref(), Some(DECRYPT_VOLUME_ARN));
    assert_eq!(c.region.as_deref(), Some("eu-west-1"));

    let message = json!({"AlarmName": "a", "NewStateValue": "OK", "Region": "eu-central-1"});
    assert_eq!(
        parse(&sns(&message)).region.as_deref(),
        Some("eu-central-1")
    );
    let message = json!({"AlarmName": "a", "NewStateValue": "OK", "Region": "US East (N. Virginia)",
                         "AlarmArn": "arn:aws-us-gov:cloudwatch:us-gov-west-1:111122223333:alarm:a"});
    assert_eq!(
        parse(&sns(&message)).region.as_deref(),
        Some("us-gov-west-1")
    );
}

#[test]
fn alarm_names_are_kept_exactly() {
    let name = "KMS: decrypt\nvolume \u{2713} \u{ab}app-data\u{bb} | \"quoted\" <b>";
    let arn = format!("arn:aws:cloudwatch:eu-west-1:111122223333:alarm:{name}");
    let mut payload = eventbridge(json!({"alarmName": name, "state": {"value": "ALARM"}}));
    payload["resources"] = json!([arn]);
    let c = parse(&payload);
    assert_eq!(c.alarm_name, name);
    assert_eq!(c.alarm_arn.as_deref(), Some(arn.as_str()));
    assert_eq!(c.region.as_deref(), Some("eu-west-1"));

    let c = parse(&sns(
        &json!({"AlarmName": name, "NewStateValue": "ALARM", "AlarmArn": arn}),
    ));
    assert_eq!(c.alarm_name, name);
    assert_eq!(c.account.as_deref(), Some(ACCOUNT));
}

// Kinds and the other SNS trigger forms.

#[test]
fn an_anomaly_detection_band_is_a_metric_alarm() {
    let c = parse(&eventbridge(json!({
        "alarmName": "a", "state": {"value": "ALARM"},
        "configuration": {"metrics": [
            {"id": "m1", "metricStat": {"metric": {"namespace": "AWS/KMS", "name": "SecondsUntilKeyMaterialExpiration",
             "dimensions": {"KeyId": KEY_ID}}, "period": 60, "stat": "Minimum"}, "returnData": true},
            {"id": "ad1", "expression": "ANOMALY_DETECTION_BAND(m1, 0.8)", "returnData": true}
        ]}
    })));
    assert_eq!(c.kind, AlarmKind::Metric);
    assert_eq!(c.key_id_dimension(), Some(KEY_ID));
}

#[test]
fn sns_metric_math_composite_and_percentile_triggers() {
    let c = parse(&sns(&json!({
        "AlarmName": "a", "NewStateValue": "ALARM",
        "Trigger": {"Period": 60, "EvaluationPeriods": 1, "ComparisonOperator": "GreaterThanThreshold",
            "Threshold": 0.0, "Metrics": [
                {"Expression": "m1*1", "Id": "e1", "Label": "Expression1", "ReturnData": true},
                {"Id": "m1", "MetricStat": {"Metric": {"Dimensions": [{"value": KEY_ID, "name": "KeyId"}],
                 "MetricName": "DecryptCalls", "Namespace": "KMSGuardrails"}, "Period": 60, "Stat": "Sum"},
                 "ReturnData": false}]}
    })));
    assert_eq!(c.kind, AlarmKind::MetricMath);
    assert_eq!(c.metrics.len(), 2);
    assert_eq!(c.metrics[1].name.as_deref(), Some("DecryptCalls"));
    assert_eq!(c.key_id_dimension(), Some(KEY_ID));
    assert_eq!(c.threshold, Some(0.0));

    let child = "arn:aws:cloudwatch:eu-west-1:111122223333:alarm:child";
    let c = parse(&sns(&json!({
        "AlarmName": "parent", "NewStateValue": "ALARM", "OldStateValue": "OK",
        "AlarmRule": "ALARM(child)",
        "TriggeringChildren": [{"Arn": child, "State": {"Value": "ALARM", "Timestamp": "2026-11-20T09:26:07.415+0000"}}]
    })));
    assert_eq!(c.kind, AlarmKind::Composite);
    assert_eq!(c.triggering_alarms, [child]);
    assert_eq!(c.alarm_rule.as_deref(), Some("ALARM(child)"));

    let c = parse(&sns(&json!({
        "AlarmName": "a", "NewStateValue": "ALARM",
        "Trigger": {"MetricName": "DecryptCalls", "Namespace": "KMSGuardrails", "StatisticType": "ExtendedStatistic",
                    "ExtendedStatistic": "p99", "Dimensions": [{"Name": "KeyId", "Value": KEY_ID}], "Period": "300",
                    "Threshold": "12.5", "EvaluationPeriods": 2.0}
    })));
    assert_eq!(c.metrics[0].stat.as_deref(), Some("p99"));
    assert_eq!(c.metrics[0].period, Some(300));
    assert_eq!((c.threshold, c.evaluation_periods), (Some(12.5), Some(2)));
    assert_eq!(c.key_id_dimension(), Some(KEY_ID));
}

#[test]
fn alarm_states_parse_exactly() {
    for state in [
        AlarmState::Ok,
        AlarmState::Alarm,
        AlarmState::InsufficientData,
    ] {
        assert_eq!(state.as_str().parse::<AlarmState>().unwrap(), state);
        assert_eq!(state.to_string(), state.as_str());
    }
    for bad in ["ok", "Alarm", "", "INSUFFICIENT DATA", "PENDING"] {
        let err = bad.parse::<AlarmState>().unwrap_err();
        assert!(err.to_string().contains("unknown alarm state"), "{err}");
    }
}

// GIVEN an alarm shape that is malformed THEN an InvalidEvent names the field.

#[test]
fn malformed_eventbridge_alarms_name_the_field() {
    let ok_state = json!({"value": "ALARM"});
    for (detail, expected) in [
        (Value::Null, "EventBridge alarm event: detail is missing"),
        (json!("x"), "detail must be an object, got \"x\""),
        (json!({"state": ok_state}), "detail.alarmName is missing"),
        (json!({"alarmName": 5, "state": ok_state}), "detail.alarmName must be a string, got 5"),
        (json!({"alarmName": "", "state": ok_state}), "detail.alarmName is empty"),
        (json!({"alarmName": "a"}), "detail.state is missing"),
        (json!({"alarmName": "a", "state": "ALARM"}), "detail.state must be an object"),
        (json!({"alarmName": "a", "state": {}}), "detail.state.value is missing"),
        (json!({"alarmName": "a", "state": {"value": ["ALARM"]}}), "detail.state.value must be a string"),
        (
            json!({"alarmName": "a", "state": {"value": "PENDING"}}),
            "detail.state.value is an unknown alarm state \"PENDING\"; expected OK, ALARM or INSUFFICIENT_DATA",
        ),
        (
            json!({"alarmName": "a", "state": ok_state, "previousState": {"value": "BROKEN"}}),
            "detail.previousState.value is an unknown alarm state \"BROKEN\"",
        ),
        (
            json!({"alarmName": "a", "state": ok_state, "previousState": "OK"}),
            "detail.previousState must be an object",
        ),
    ] {
        let err = error_of(&eventbridge(detail));
        assert!(err.contains(expected), "{err}\n  expected: {expected}");
    }

    let mut payload = eventbridge(json!({}));
    payload["detail-type"] = json!("CloudWatch Alarm Configuration Change");
    assert!(error_of(&payload).contains("not state changes"));
}

#[test]
fn malformed_sns_notifications_say_what_is_wrong() {
    let record = |sns: Value| json!({"Records": [{"EventSource": "aws:sns", "Sns": sns}]});
    for (payload, expected) in [
        (
            record(json!({"Message": "Hello from a test publish"})),
            "the SNS message is not a CloudWatch alarm notification: Records[0].Sns.Message is not JSON",
        ),
        (
            record(json!({"Message": "{\"AlarmName\": \"a\"}", "Subject": "hi"})),
            "not a CloudWatch alarm notification: Records[0].Sns.Message has no AlarmName and NewStateValue (Subject \"hi\")",
        ),
        (record(json!({"Message": "[1, 2]"})), "not a CloudWatch alarm notification"),
        (record(json!({"Message": 5})), "Records[0].Sns.Message must be a string, got 5"),
        (record(json!({"Subject": "x"})), "Records[0].Sns.Message is missing"),
        (json!({"Records": [{"EventSource": "aws:sns"}]}), "SNS alarm notification: Records[0].Sns is missing"),
        (json!({"Records": [{"Sns": []}]}), "Records[0].Sns must be an object"),
        (
            record(json!({"Message": "{\"AlarmName\": \"a\", \"NewStateValue\": \"alarm\"}"})),
            "Records[0].Sns.Message.NewStateValue is an unknown alarm state \"alarm\"",
        ),
        (
            record(json!({"Message": "{\"AlarmName\": null, \"NewStateValue\": \"OK\"}"})),
            "Records[0].Sns.Message.AlarmName is missing",
        ),
        (
            record(json!({"Message": "{\"AlarmName\": \"a\", \"NewStateValue\": \"OK\", \"OldStateValue\": 1}"})),
            "Records[0].Sns.Message.OldStateValue must be a string, got 1",
        ),
    ] {
        let err = error_of(&payload);
        assert!(err.contains(expected), "{err}\n  expected: {expected}");
    }

    let mut two = sample_json("sns-classic-alarm.json");
    let first = two["Records"][0].clone();
    two["Records"].as_array_mut().unwrap().push(first);
    assert!(error_of(&two).contains("SNS event has 2 records"));

    // A huge nested message is an error, not a stack overflow.
    let deep = record(json!({"Message": "[".repeat(100_000)}));
    assert!(error_of(&deep).contains("is not JSON"));
}

#[test]
fn malformed_lambda_actions_name_the_field() {
    for (payload, expected) in [
        (
            json!({"alarmData": null}),
            "Lambda alarm action: alarmData is missing",
        ),
        (
            json!({"alarmData": []}),
            "alarmData must be an object, got []",
        ),
        (
            json!({"alarmData": {"alarmName": "a"}}),
            "alarmData.state is missing",
        ),
        (
            json!({"alarmData": {"state": {"value": "OK"}}}),
            "alarmData.alarmName is missing",
        ),
    ] {
        let err = error_of(&payload);
        assert!(err.contains(expected), "{err}\n  expected: {expected}");
    }
}

// GIVEN something that is not an alarm at all THEN None, so the caller tries other shapes.

#[test]
fn non_alarm_payloads_are_none() {
    let cloudtrail: Value = serde_json::from_str(include_str!(
        "../../../../events/policy-drift/put-key-policy.json"
    ))
    .unwrap();
    let schedule: Value = serde_json::from_str(include_str!(
        "../../../../events/policy-drift/scheduled-sweep.json"
    ))
    .unwrap();
    for payload in [
        cloudtrail,
        schedule,
        json!("hello"),
        json!({}),
        json!(null),
        json!(42),
        json!([]),
        json!({"detail-type": "EC2 Instance State-change Notification", "detail": {"state": "stopped"}}),
        json!({"detail-type": 5, "alarmData": {}}),
        json!({"Records": []}),
        json!({"Records": "x"}),
        json!({"Records": [null]}),
        json!({"Records": [{"eventSource": "aws:sqs", "body": "{}"}]}),
        json!({"Records": [{"eventSource": "aws:s3", "s3": {}}]}),
        json!({"alarmName": "a", "state": {"value": "ALARM"}}),
    ] {
        assert!(parse_alarm_payload(&payload).is_none(), "{payload}");
    }
}

// Whatever a field holds, parsing returns; it never panics.

fn pointers(value: &Value, at: String, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let key = key.replace('~', "~0").replace('/', "~1");
                pointers(child, format!("{at}/{key}"), out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                pointers(child, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
    out.push(at);
}

#[test]
fn no_field_value_makes_it_panic() {
    let replacements = [
        json!(null),
        json!(true),
        json!(-1),
        json!(1e300),
        json!(""),
        json!("x\n\u{2713}:"),
        json!("{not json"),
        json!([]),
        json!({}),
        json!([null, {}]),
    ];
    let mut parsed = 0;
    for (name, _) in SAMPLES {
        let payload = sample_json(name);
        if name.starts_with("sns") {
            // Also every field of the alarm message inside the SNS envelope.
            let envelope = payload.clone();
            let message: Value =
                serde_json::from_str(envelope["Records"][0]["Sns"]["Message"].as_str().unwrap())
                    .unwrap();
            let mut paths = Vec::new();
            pointers(&message, String::new(), &mut paths);
            for path in paths {
                for replacement in &replacements {
                    let mut m = message.clone();
                    *m.pointer_mut(&path).unwrap() = replacement.clone();
                    let mut e = envelope.clone();
                    e["Records"][0]["Sns"]["Message"] = Value::String(m.to_string());
                    let _ = parse_alarm_payload(&e);
                    parsed += 1;
                }
            }
        }
        let mut paths = Vec::new();
        pointers(&payload, String::new(), &mut paths);
        for path in paths {
            for replacement in &replacements {
                let mut p = payload.clone();
                *p.pointer_mut(&path).unwrap() = replacement.clone();
                if let Some(Ok(change)) = parse_alarm_payload(&p) {
                    let _ = (change.transition_id(), change.key_id_dimension());
                }
                parsed += 1;
            }
        }
    }
    assert!(parsed > 2_000, "{parsed}");
}
