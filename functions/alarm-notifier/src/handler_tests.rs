//! The handler against the real SDK clients with mocked answers (failures moto cannot
//! produce), the JSON shape of its reports, and what its key path does.

use super::*;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_kms::operation::describe_key::DescribeKeyError;
use aws_sdk_sns::operation::publish::PublishOutput;
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use aws_smithy_types::error::ErrorMetadata;
use shared::aws::AwsClients;
use shared::config::FunctionConfig;
use std::collections::HashMap;

const ALARM: &str =
    include_str!("../../../events/alarm-notifier/eventbridge-decrypt-volume-alarm.json");

fn deps(kms: &[&Rule], sns: &[&Rule], dynamodb: &[&Rule]) -> Deps {
    let env: HashMap<&str, &str> = HashMap::from([
        ("ACCOUNT_ID", "111122223333"),
        ("AWS_REGION", "eu-west-1"),
        (
            "NOTIFY_TOPIC_ARN",
            "arn:aws:sns:eu-west-1:111122223333:kms-guardrails",
        ),
        (
            "SELF_ROLE_ARN",
            "arn:aws:iam::111122223333:role/alarm-notifier",
        ),
        ("DEDUP_TABLE", "transitions"),
    ]);
    let config = Config::from_lookup(&|k| env.get(k).map(|v| v.to_string())).unwrap();
    let sdk = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .build();
    let kms: aws_sdk_kms::Client = mock_client!(aws_sdk_kms, RuleMode::MatchAny, kms);
    let sns: aws_sdk_sns::Client = mock_client!(aws_sdk_sns, RuleMode::MatchAny, sns);
    let dynamodb: aws_sdk_dynamodb::Client =
        mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, dynamodb);
    let clients = AwsClients::new(sdk)
        .with_kms_client("eu-west-1", kms)
        .with_sns_client("eu-west-1", sns);
    Deps {
        config,
        clients,
        own: Clients::new().with_dynamodb_client("eu-west-1", dynamodb),
    }
}

/// `mock_client!` needs `with_test_defaults_v2`, which the pinned CloudWatch crate (1.80,
/// for the Query protocol) predates: the same client, built by hand.
fn cloudwatch_client(rule: &Rule) -> aws_sdk_cloudwatch::Client {
    let interceptor = aws_smithy_mocks::MockResponseInterceptor::new()
        .rule_mode(RuleMode::MatchAny)
        .with_rule(rule);
    let config = aws_sdk_cloudwatch::Config::builder()
        .with_test_defaults()
        .region(aws_sdk_cloudwatch::config::Region::new("eu-west-1"))
        .http_client(aws_smithy_mocks::create_mock_http_client())
        .interceptor(interceptor)
        .build();
    aws_sdk_cloudwatch::Client::from_conf(config)
}

fn event(text: &str) -> LambdaEvent<Value> {
    LambdaEvent::new(
        serde_json::from_str(text).unwrap(),
        lambda_runtime::Context::default(),
    )
}

#[tokio::test]
async fn an_unusable_table_and_an_unreadable_key_still_announce_the_alarm() {
    let table_gone = mock!(aws_sdk_dynamodb::Client::put_item).then_error(|| {
        PutItemError::generic(
            ErrorMetadata::builder()
                .code("ResourceNotFoundException")
                .message("no table")
                .build(),
        )
    });
    let key_denied = mock!(aws_sdk_kms::Client::describe_key).then_error(|| {
        DescribeKeyError::generic(
            ErrorMetadata::builder()
                .code("AccessDeniedException")
                .message("denied")
                .build(),
        )
    });
    let publish = mock!(aws_sdk_sns::Client::publish)
        .match_requests(|r| {
            r.message_structure() == Some("json")
                && r.message()
                    .is_some_and(|m| m.contains("could not be read") && m.contains("AccessDenied"))
        })
        .then_output(|| PublishOutput::builder().message_id("m").build());
    let deps = deps(&[&key_denied], &[&publish], &[&table_gone]);

    let outcome = function_handler(event(ALARM), &deps).await.unwrap();

    assert!(
        matches!(
            outcome,
            Response::Report(AlarmReport::Alarm { key_id: None, .. })
        ),
        "{outcome:?}"
    );
    assert_eq!((table_gone.num_calls(), publish.num_calls()), (1, 1));
}

#[tokio::test]
async fn a_region_whose_alarms_cannot_be_listed_does_not_stop_the_others() {
    use aws_sdk_cloudwatch::operation::describe_alarms::{
        DescribeAlarmsError, DescribeAlarmsOutput,
    };
    use aws_sdk_cloudwatch::types::MetricAlarm;
    let home = mock!(aws_sdk_cloudwatch::Client::describe_alarms).then_output(|| {
        DescribeAlarmsOutput::builder()
            .metric_alarms(
                MetricAlarm::builder()
                    .alarm_name("kms-decrypt-count-high")
                    .namespace("AWS/KMS")
                    .metric_name("DecryptCount")
                    .build(),
            )
            .build()
    });
    let denied = mock!(aws_sdk_cloudwatch::Client::describe_alarms).then_error(|| {
        DescribeAlarmsError::generic(
            ErrorMetadata::builder()
                .code("AccessDenied")
                .message("SCP")
                .build(),
        )
    });
    let publish = mock!(aws_sdk_sns::Client::publish)
        .then_output(|| PublishOutput::builder().message_id("m").build());
    let mut deps = deps(&[], &[&publish], &[]);
    deps.config.common.sweep_regions = ["eu-west-1", "ap-southeast-2"]
        .map(|r| shared::base::region::Region::parse(r).unwrap())
        .to_vec();
    let (home_client, denied_client) = (cloudwatch_client(&home), cloudwatch_client(&denied));
    let deps = Deps {
        own: deps
            .own
            .with_cloudwatch_client("eu-west-1", home_client)
            .with_cloudwatch_client("ap-southeast-2", denied_client),
        ..deps
    };
    let sweep = include_str!("../../../events/policy-drift/scheduled-sweep.json");

    let outcome = function_handler(event(sweep), &deps).await.unwrap();

    let Response::Report(AlarmReport::SilentAlarms {
        silent,
        regions_not_checked,
        ..
    }) = outcome
    else {
        panic!("{outcome:?}")
    };
    assert_eq!(silent, ["kms-decrypt-count-high"]);
    assert_eq!(regions_not_checked.len(), 1);
    assert!(
        regions_not_checked[0].starts_with("ap-southeast-2: DescribeAlarms"),
        "{regions_not_checked:?}"
    );
}

#[tokio::test]
async fn insufficient_data_and_ok_without_alarm_are_not_announced_and_cloudtrail_is_refused_politely(
) {
    let deps = deps(&[], &[], &[]);
    let insufficient =
        include_str!("../../../events/alarm-notifier/eventbridge-insufficient-data.json");
    let outcome = function_handler(event(insufficient), &deps).await.unwrap();
    assert!(
        matches!(outcome, Response::Outcome(Outcome::Skipped { ref reason, .. }) if reason.contains("INSUFFICIENT_DATA")),
        "{outcome:?}"
    );
    let cloudtrail = include_str!("../../../events/policy-drift/put-key-policy.json");
    let outcome = function_handler(event(cloudtrail), &deps).await.unwrap();
    assert!(
        matches!(outcome, Response::Outcome(Outcome::Skipped { ref reason, .. }) if reason.contains("not CloudTrail events")),
        "{outcome:?}"
    );
    let err = function_handler(
        event(r#"{"Records":[{"EventSource":"aws:sns","Sns":{"Message":"not an alarm"}}]}"#),
        &deps,
    )
    .await
    .unwrap_err();
    assert_eq!(err.error_type(), "InvalidEvent");
}

#[test]
fn reports_keep_the_json_shape_of_the_shared_outcomes() {
    let alarm = Response::Report(AlarmReport::Alarm {
        alarm: "kms-decrypt-volume".into(),
        transition: "firing".into(),
        key_id: Some("k".into()),
        notification: Delivery::Sns {
            message_id: "m".into(),
        },
    });
    assert_eq!(
        serde_json::to_value(&alarm).unwrap(),
        serde_json::json!({
            "outcome": "alarm",
            "alarm": "kms-decrypt-volume",
            "transition": "firing",
            "key_id": "k",
            "notification": {"via": "sns", "message_id": "m"},
        })
    );
    let no_key = AlarmReport::Alarm {
        alarm: "a".into(),
        transition: "resolved".into(),
        key_id: None,
        notification: Delivery::FallbackQueue {
            message_id: "q".into(),
        },
    };
    assert_eq!(
        serde_json::to_value(&no_key).unwrap(),
        serde_json::json!({
            "outcome": "alarm",
            "alarm": "a",
            "transition": "resolved",
            "notification": {"via": "fallback_queue", "message_id": "q"},
        })
    );
    let quiet = AlarmReport::SilentAlarms {
        alarms_checked: 3,
        silent: Vec::new(),
        regions_not_checked: Vec::new(),
        notification: None,
    };
    assert_eq!(
        serde_json::to_value(&quiet).unwrap(),
        serde_json::json!({"outcome": "silent_alarms", "alarms_checked": 3, "silent": []})
    );
    let found = Response::<AlarmReport>::Report(AlarmReport::SilentAlarms {
        alarms_checked: 2,
        silent: vec!["kms-decrypt-count-high".into()],
        regions_not_checked: vec!["ap-southeast-2: denied".into()],
        notification: Some(Delivery::Sns {
            message_id: "m".into(),
        }),
    });
    assert_eq!(
        serde_json::to_value(&found).unwrap(),
        serde_json::json!({
            "outcome": "silent_alarms",
            "alarms_checked": 2,
            "silent": ["kms-decrypt-count-high"],
            "regions_not_checked": ["ap-southeast-2: denied"],
            "notification": {"via": "sns", "message_id": "m"},
        })
    );
}

fn key() -> KeyInfo {
    KeyInfo {
        state: aws_sdk_kms::types::KeyState::Disabled,
        description: "Application data".into(),
        ..shared::testing::key(shared::testing::KEY_ARN)
    }
}

#[test]
fn the_key_part_of_a_message_is_decided_from_what_was_read() {
    let facts = KeyFacts {
        aliases: vec!["alias/aws/ebs".into(), "alias/app-data".into()],
        tags: vec![("team".into(), "payments".into())],
        managed: true,
    };
    let config = deps(&[], &[], &[]).config;

    let context = AlarmNotifier::decide(&config, &key(), facts);

    assert_eq!(
        context,
        KeyContext {
            key_id: "1234abcd-12ab-34cd-56ef-1234567890ab".into(),
            arn: key().arn.to_string(),
            alias: Some("alias/app-data".into()),
            description: "Application data".into(),
            tags: vec![("team".into(), "payments".into())],
            state: "Disabled".into(),
            managed: true,
        }
    );
    let only_aws = KeyFacts {
        aliases: vec!["alias/aws/s3".into()],
        ..KeyFacts::default()
    };
    assert_eq!(AlarmNotifier::decide(&config, &key(), only_aws).alias, None);
}

#[tokio::test]
async fn the_key_path_writes_and_announces_nothing_of_its_own() {
    // No rule is mocked: any call would fail the audit.
    let deps = deps(&[], &[], &[]);
    let context = AlarmNotifier::decide(&deps.config, &key(), KeyFacts::default());

    let (audit, ()) = AlarmNotifier::apply(&deps, &key(), context).await;

    assert!(audit.failure.is_none(), "{audit:?}");
    assert!(audit.outcome.findings.is_empty() && audit.outcome.actions.is_empty());
    assert_eq!(
        audit.outcome.status,
        shared::notify::outcome::Status::Skipped
    );
    assert!(AlarmNotifier::HANDLED.is_empty());
}
