//! SDK failures and paths moto cannot produce (AccessDenied, throttling, SNS outage,
//! paging, a denied Region, the deadline), against the real SDK clients with mocked
//! responses and the production retry policy.

use super::*;
use aws_sdk_kms::operation::describe_key::{DescribeKeyError, DescribeKeyOutput};
use aws_sdk_kms::operation::enable_key_rotation::{
    EnableKeyRotationError, EnableKeyRotationOutput,
};
use aws_sdk_kms::operation::get_key_policy::{GetKeyPolicyError, GetKeyPolicyOutput};
use aws_sdk_kms::operation::get_key_rotation_status::GetKeyRotationStatusOutput;
use aws_sdk_kms::operation::put_key_policy::{PutKeyPolicyError, PutKeyPolicyOutput};
use aws_sdk_kms::types::{KeyManagerType, KeyMetadata, KeySpec, OriginType};
use aws_sdk_kms::Client as KmsClient;
use aws_sdk_resourcegroupstagging::operation::get_resources::{
    GetResourcesError, GetResourcesOutput,
};
use aws_sdk_resourcegroupstagging::types::ResourceTagMapping;
use aws_sdk_resourcegroupstagging::Client as TaggingClient;
use aws_sdk_sns::operation::publish::{PublishError, PublishOutput};
use aws_sdk_sns::Client as SnsClient;
use aws_sdk_sqs::operation::send_message::SendMessageOutput;
use aws_sdk_sqs::Client as SqsClient;
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use aws_smithy_types::error::ErrorMetadata;
use shared::aws::AwsClients;
use shared::config::FunctionConfig;
use shared::notify::outcome::{FindingKind, KeyOutcome, Status};
use shared::testing::{managed_tag, no_aliases};
use std::collections::HashMap;
use std::time::Duration;

const KEY_ARN: &str = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
const OTHER: &str = "arn:aws:kms:eu-west-1:111122223333:key/0fff0000-1111-2222-3333-444455556666";
const PUT_KEY_POLICY: &str = include_str!("../../../events/policy-drift/put-key-policy.json");
const BY_SELF: &str = include_str!("../../../events/policy-drift/put-key-policy-by-self.json");
const FAILED_CALL: &str = include_str!("../../../events/policy-drift/put-key-policy-failed.json");
const ROTATE_KEY: &str = include_str!("../../../events/policy-drift/rotate-key-service-event.json");
const TAG_RESOURCE: &str = include_str!("../../../events/policy-drift/tag-resource.json");
const SWEEP: &str = include_str!("../../../events/policy-drift/scheduled-sweep.json");
const FALLBACK_QUEUE: &str = "https://sqs.eu-west-1.amazonaws.com/111122223333/guardrails-dlq";

fn config(mode: &str, extra: &[(&str, &str)]) -> Config {
    let mut env: HashMap<&str, &str> = HashMap::from([
        ("MODE", mode),
        ("STATE_TABLE", shared::testing::STATE_TABLE),
        ("ACCOUNT_ID", "111122223333"),
        ("AWS_REGION", "eu-west-1"),
        (
            "NOTIFY_TOPIC_ARN",
            "arn:aws:sns:eu-west-1:111122223333:kms-guardrails",
        ),
        (
            "SELF_ROLE_ARN",
            "arn:aws:iam::111122223333:role/kms-guardrails-PolicyDriftFunctionRole-1A2B3C4D5E6F",
        ),
    ]);
    env.extend(extra.iter().copied());
    Config::from_lookup(&|k| env.get(k).map(|v| v.to_string())).unwrap()
}

/// Mocked clients per service and Region.
#[derive(Default)]
struct Mocks<'a> {
    kms: &'a [&'a Rule],
    sns: &'a [&'a Rule],
    sqs: &'a [&'a Rule],
    tagging: &'a [&'a Rule],
    /// Extra Regions whose KMS and Tagging clients answer with these rules.
    other_region: Option<(&'a str, &'a [&'a Rule], &'a [&'a Rule])>,
}

fn deps_with(config: Config, m: Mocks) -> Deps {
    let retry = shared::aws::retry_config().with_initial_backoff(Duration::from_millis(1));
    let region = aws_sdk_kms::config::Region::new("eu-west-1");
    let (r1, r2, r3, r4, r5) = (
        retry.clone(),
        retry.clone(),
        retry.clone(),
        retry.clone(),
        retry,
    );
    let kms: KmsClient = mock_client!(aws_sdk_kms, RuleMode::MatchAny, m.kms, |b| b
        .retry_config(r1.clone())
        .region(region.clone()));
    let sns: SnsClient = mock_client!(aws_sdk_sns, RuleMode::MatchAny, m.sns, |b| b
        .retry_config(r2.clone()));
    let sqs: SqsClient = mock_client!(aws_sdk_sqs, RuleMode::MatchAny, m.sqs, |b| b
        .retry_config(r3.clone()));
    let tagging: TaggingClient = mock_client!(
        aws_sdk_resourcegroupstagging,
        RuleMode::MatchAny,
        m.tagging,
        |b| b.retry_config(r4.clone())
    );
    let sdk = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .build();
    let mut clients = AwsClients::new(sdk)
        .with_kms_client("eu-west-1", kms)
        .with_sns_client("eu-west-1", sns)
        .with_sqs_client("eu-west-1", sqs)
        .with_tagging_client("eu-west-1", tagging)
        .with_dynamodb_client("eu-west-1", shared::testing::state_table());
    if let Some((name, kms_rules, tagging_rules)) = m.other_region {
        let kms: KmsClient = mock_client!(aws_sdk_kms, RuleMode::MatchAny, kms_rules, |b| b
            .retry_config(r5.clone()));
        let tagging: TaggingClient = mock_client!(
            aws_sdk_resourcegroupstagging,
            RuleMode::MatchAny,
            tagging_rules,
            |b| b.retry_config(r5.clone())
        );
        clients = clients
            .with_kms_client(name, kms)
            .with_tagging_client(name, tagging);
    }
    Deps {
        config,
        clients,
        own: (),
    }
}

fn deps(mode: &str, kms: &[&Rule], sns: &[&Rule]) -> Deps {
    deps_with(
        config(mode, &[]),
        Mocks {
            kms,
            sns,
            ..Mocks::default()
        },
    )
}

fn event(text: &str) -> LambdaEvent<Value> {
    LambdaEvent::new(
        serde_json::from_str(text).unwrap(),
        lambda_runtime::Context::default(),
    )
}

fn describe_ok() -> Rule {
    describe_as(KEY_ARN, KeyManagerType::Customer, KeyState::Enabled)
}

/// DescribeKey for `arn` (named by its ARN) with the given manager and state.
fn describe_as(arn: &'static str, manager: KeyManagerType, state: KeyState) -> Rule {
    mock!(KmsClient::describe_key)
        .match_requests(move |r| r.key_id() == Some(arn))
        .then_output(move || {
            DescribeKeyOutput::builder()
                .key_metadata(
                    KeyMetadata::builder()
                        .key_id(arn.rsplit('/').next().unwrap())
                        .arn(arn)
                        .aws_account_id("111122223333")
                        .key_state(state.clone())
                        .key_manager(manager.clone())
                        .key_spec(KeySpec::SymmetricDefault)
                        .origin(OriginType::AwsKms)
                        .build()
                        .unwrap(),
                )
                .build()
        })
}

fn rotation_on() -> Rule {
    mock!(KmsClient::get_key_rotation_status).then_output(|| {
        GetKeyRotationStatusOutput::builder()
            .key_rotation_enabled(true)
            .rotation_period_in_days(365)
            .build()
    })
}

const DRIFTED: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::444455556666:root"},"Action":"kms:*","Resource":"*"}]}"#;

fn drifted_policy() -> Rule {
    mock!(KmsClient::get_key_policy)
        .then_output(|| GetKeyPolicyOutput::builder().policy(DRIFTED).build())
}

/// The baseline for eu-west-1, written out by hand as the default configuration's
/// (root access only) policy: the AWS default key policy.
fn baseline_policy() -> Rule {
    mock!(KmsClient::get_key_policy).then_output(|| {
        GetKeyPolicyOutput::builder()
            .policy(r#"{"Version":"2012-10-17","Statement":[{"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}]}"#)
            .build()
    })
}

fn put_ok() -> Rule {
    mock!(KmsClient::put_key_policy).then_output(|| PutKeyPolicyOutput::builder().build())
}

fn publish_ok() -> Rule {
    mock!(SnsClient::publish).then_output(|| PublishOutput::builder().message_id("msg-1").build())
}

fn error(code: &str, message: &str) -> ErrorMetadata {
    ErrorMetadata::builder().code(code).message(message).build()
}

fn tagged(arns: &[&str]) -> GetResourcesOutput {
    let mut out = GetResourcesOutput::builder();
    for arn in arns {
        out =
            out.resource_tag_mapping_list(ResourceTagMapping::builder().resource_arn(*arn).build());
    }
    out.build()
}

fn key_outcome(outcome: Outcome) -> KeyOutcome {
    match outcome {
        Outcome::Key(key) => key,
        other => panic!("expected a key outcome, got {other:?}"),
    }
}

fn sweep_report(outcome: Outcome) -> shared::notify::outcome::SweepReport {
    match outcome {
        Outcome::Sweep(report) => report,
        other => panic!("expected a sweep report, got {other:?}"),
    }
}

#[tokio::test]
async fn throttling_is_retried_then_the_policy_is_restored() {
    let throttled_then_ok = mock!(KmsClient::get_key_policy)
        .sequence()
        .error(|| GetKeyPolicyError::generic(error("ThrottlingException", "Rate exceeded")))
        .output(|| GetKeyPolicyOutput::builder().policy(DRIFTED).build())
        .build();
    let (describe, tags, put, rotation, aliases, publish) = (
        describe_ok(),
        managed_tag(),
        put_ok(),
        rotation_on(),
        no_aliases(),
        publish_ok(),
    );
    let deps = deps(
        "enforce",
        &[
            &describe,
            &tags,
            &throttled_then_ok,
            &put,
            &rotation,
            &aliases,
        ],
        &[&publish],
    );

    let key = key_outcome(
        function_handler(event(PUT_KEY_POLICY), &deps)
            .await
            .unwrap(),
    );

    assert_eq!(
        throttled_then_ok.num_calls(),
        2,
        "the throttled read is retried once"
    );
    assert_eq!(put.num_calls(), 1);
    assert_eq!(publish.num_calls(), 1);
    assert_eq!(key.status, Status::Corrected);
    assert_eq!(key.actions[0].operation, "PutKeyPolicy");
}

#[tokio::test]
async fn access_denied_on_put_is_announced_once_and_not_retried() {
    let put = mock!(KmsClient::put_key_policy).then_error(|| {
        PutKeyPolicyError::generic(error(
            "AccessDeniedException",
            "User is not authorized to perform: kms:PutKeyPolicy",
        ))
    });
    let publish = mock!(SnsClient::publish)
        .match_requests(|r| {
            r.subject().is_some_and(|s| s.contains("NOT corrected"))
                && r.message()
                    .is_some_and(|m| m.contains("FAILED (AccessDenied)"))
                && r.message_attributes().is_some_and(|a| {
                    a.get("severity").and_then(|v| v.string_value()) == Some("critical")
                })
        })
        .then_output(|| PublishOutput::builder().message_id("msg-2").build());
    let (describe, tags, policy, rotation, aliases) = (
        describe_ok(),
        managed_tag(),
        drifted_policy(),
        rotation_on(),
        no_aliases(),
    );
    let deps = deps(
        "enforce",
        &[&describe, &tags, &policy, &put, &rotation, &aliases],
        &[&publish],
    );

    // The invocation succeeds: Lambda retrying it would only announce the failure again.
    let key = key_outcome(
        function_handler(event(PUT_KEY_POLICY), &deps)
            .await
            .unwrap(),
    );

    assert_eq!(put.num_calls(), 1, "AccessDenied is not retried");
    assert_eq!(
        publish.num_calls(),
        1,
        "people hear once that the correction failed"
    );
    assert_eq!(key.status, Status::Failed);
    let reason = key.reason.unwrap();
    assert!(
        reason.starts_with(&format!(
            "PutKeyPolicy on {KEY_ARN} failed: AccessDeniedException"
        )),
        "{reason}"
    );
}

#[tokio::test]
async fn access_denied_on_describe_of_a_tagged_key_is_a_shut_out_message() {
    let describe = mock!(KmsClient::describe_key).then_error(|| {
        DescribeKeyError::generic(error("AccessDeniedException", "no kms:DescribeKey"))
    });
    let tagging = mock!(TaggingClient::get_resources)
        .match_requests(|r| r.resource_arn_list() == [KEY_ARN])
        .then_output(|| {
            GetResourcesOutput::builder()
                .resource_tag_mapping_list(
                    ResourceTagMapping::builder()
                        .resource_arn(KEY_ARN)
                        .tags(
                            aws_sdk_resourcegroupstagging::types::Tag::builder()
                                .key("guardrails:managed")
                                .value("true")
                                .build()
                                .unwrap(),
                        )
                        .build(),
                )
                .build()
        });
    let aliases = no_aliases();
    let publish = mock!(SnsClient::publish)
        .match_requests(|r| {
            r.subject()
                .is_some_and(|s| s.starts_with("Guardrail shut out of KMS key"))
                && r.message().is_some_and(|m| m.contains("takeover"))
        })
        .then_output(|| PublishOutput::builder().message_id("msg-3").build());
    let deps = deps_with(
        config("enforce", &[]),
        Mocks {
            kms: &[&describe, &aliases],
            sns: &[&publish],
            tagging: &[&tagging],
            ..Mocks::default()
        },
    );

    let key = key_outcome(
        function_handler(event(PUT_KEY_POLICY), &deps)
            .await
            .unwrap(),
    );

    assert_eq!(key.status, Status::Failed);
    assert_eq!(key.findings[0].kind, FindingKind::ShutOut);
    assert_eq!(publish.num_calls(), 1);
}

#[tokio::test]
async fn access_denied_on_describe_of_a_key_that_is_not_managed_is_a_skip() {
    let describe = mock!(KmsClient::describe_key).then_error(|| {
        DescribeKeyError::generic(error("AccessDeniedException", "no kms:DescribeKey"))
    });
    let untagged =
        mock!(TaggingClient::get_resources).then_output(|| GetResourcesOutput::builder().build());
    let deps = deps_with(
        config("enforce", &[]),
        Mocks {
            kms: &[&describe],
            tagging: &[&untagged],
            ..Mocks::default()
        },
    );
    let outcome = function_handler(event(PUT_KEY_POLICY), &deps)
        .await
        .unwrap();
    assert!(
        matches!(outcome, Outcome::Skipped { ref reason, .. } if reason.contains("not a managed key")),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn access_denied_on_get_key_policy_is_a_shut_out_message() {
    let denied = mock!(KmsClient::get_key_policy).then_error(|| {
        GetKeyPolicyError::generic(error("AccessDeniedException", "no kms:GetKeyPolicy"))
    });
    let (describe, tags, aliases, publish) =
        (describe_ok(), managed_tag(), no_aliases(), publish_ok());
    let deps = deps(
        "enforce",
        &[&describe, &tags, &denied, &aliases],
        &[&publish],
    );
    let key = key_outcome(
        function_handler(event(PUT_KEY_POLICY), &deps)
            .await
            .unwrap(),
    );
    assert_eq!(key.status, Status::Failed);
    assert_eq!(key.findings[0].kind, FindingKind::ShutOut);
    assert_eq!(publish.num_calls(), 1);
}

#[tokio::test]
async fn throttling_that_never_stops_fails_the_invocation_so_lambda_retries() {
    let describe = mock!(KmsClient::describe_key)
        .then_error(|| DescribeKeyError::generic(error("ThrottlingException", "Rate exceeded")));
    let deps = deps("enforce", &[&describe], &[]);
    let err = function_handler(event(PUT_KEY_POLICY), &deps)
        .await
        .unwrap_err();
    assert_eq!(describe.num_calls(), shared::aws::MAX_ATTEMPTS as usize);
    assert_eq!(err.error_type(), "Throttling");
    assert!(err.is_retryable());
}

#[tokio::test]
async fn a_transient_failure_after_a_write_announces_the_write_then_fails_for_a_retry() {
    let rotation_off = mock!(KmsClient::get_key_rotation_status).then_output(|| {
        GetKeyRotationStatusOutput::builder()
            .key_rotation_enabled(false)
            .build()
    });
    let throttled = mock!(KmsClient::enable_key_rotation).then_error(|| {
        EnableKeyRotationError::generic(error("ThrottlingException", "Rate exceeded"))
    });
    let publish = mock!(SnsClient::publish)
        .match_requests(|r| {
            r.message()
                .is_some_and(|m| m.contains("- PutKeyPolicy: restored the baseline key policy"))
        })
        .then_output(|| PublishOutput::builder().message_id("msg-4").build());
    let (describe, tags, policy, put, aliases) = (
        describe_ok(),
        managed_tag(),
        drifted_policy(),
        put_ok(),
        no_aliases(),
    );
    let deps = deps(
        "enforce",
        &[
            &describe,
            &tags,
            &policy,
            &put,
            &rotation_off,
            &throttled,
            &aliases,
        ],
        &[&publish],
    );

    let err = function_handler(event(PUT_KEY_POLICY), &deps)
        .await
        .unwrap_err();

    assert_eq!(err.error_type(), "Throttling");
    assert_eq!(put.num_calls(), 1);
    assert_eq!(publish.num_calls(), 1, "the policy write is not lost");
}

#[tokio::test]
async fn an_sns_outage_after_a_correction_keeps_the_message_in_the_fallback_queue() {
    // SNS throttles past its retry budget: the SDK tries three times, then the queue.
    let outage = mock!(SnsClient::publish)
        .then_error(|| PublishError::generic(error("Throttling", "Rate exceeded")));
    let queued = mock!(SqsClient::send_message)
        .match_requests(|r| {
            r.queue_url() == Some(FALLBACK_QUEUE)
                && r.message_body().is_some_and(|b| {
                    b.contains("KMS key policy drift corrected")
                        && b.contains("PutKeyPolicy: restored the baseline key policy")
                })
        })
        .then_output(|| SendMessageOutput::builder().message_id("sqs-1").build());
    let (describe, tags, policy, put, rotation, aliases) = (
        describe_ok(),
        managed_tag(),
        drifted_policy(),
        put_ok(),
        rotation_on(),
        no_aliases(),
    );
    let deps = deps_with(
        config("enforce", &[("FALLBACK_QUEUE_URL", FALLBACK_QUEUE)]),
        Mocks {
            kms: &[&describe, &tags, &policy, &put, &rotation, &aliases],
            sns: &[&outage],
            sqs: &[&queued],
            ..Mocks::default()
        },
    );

    let key = key_outcome(
        function_handler(event(PUT_KEY_POLICY), &deps)
            .await
            .unwrap(),
    );

    assert_eq!(key.status, Status::Corrected);
    assert_eq!(
        key.notification,
        Some(shared::notify::outcome::Delivery::FallbackQueue {
            message_id: "sqs-1".into()
        })
    );
    assert_eq!(outage.num_calls(), shared::aws::MAX_ATTEMPTS as usize);
    assert_eq!(queued.num_calls(), 1);
}

#[tokio::test]
async fn without_a_fallback_queue_an_sns_outage_fails_the_invocation() {
    let outage = mock!(SnsClient::publish)
        .then_error(|| PublishError::generic(error("InternalError", "service unavailable")));
    let (describe, tags, policy, put, rotation, aliases) = (
        describe_ok(),
        managed_tag(),
        drifted_policy(),
        put_ok(),
        rotation_on(),
        no_aliases(),
    );
    let deps = deps(
        "enforce",
        &[&describe, &tags, &policy, &put, &rotation, &aliases],
        &[&outage],
    );
    let err = function_handler(event(PUT_KEY_POLICY), &deps)
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert_eq!(err.operation(), Some("Publish"));
}

#[tokio::test]
async fn events_that_change_nothing_make_no_aws_call() {
    // Any AWS call would hit a client with no rules and fail the test.
    for (text, reason) in [
        (BY_SELF, "own role"),
        (FAILED_CALL, "call failed (AccessDeniedException)"),
        (ROTATE_KEY, "does not act on \"RotateKey\""),
    ] {
        let deps = deps("enforce", &[], &[]);
        let outcome = function_handler(event(text), &deps).await.unwrap();
        let Outcome::Skipped { reason: actual, .. } = outcome else {
            panic!("expected a skip")
        };
        assert!(actual.contains(reason), "{actual}");
    }
}

#[tokio::test]
async fn a_key_that_no_longer_exists_is_a_logged_skip() {
    let describe = mock!(KmsClient::describe_key)
        .then_error(|| DescribeKeyError::generic(error("NotFoundException", "Key does not exist")));
    let deps = deps("enforce", &[&describe], &[]);
    let outcome = function_handler(event(PUT_KEY_POLICY), &deps)
        .await
        .unwrap();
    assert!(
        matches!(outcome, Outcome::Skipped { ref reason, .. } if reason.contains("no longer exists")),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn an_aws_managed_key_is_skipped() {
    let describe = describe_as(KEY_ARN, KeyManagerType::Aws, KeyState::Enabled);
    let deps = deps("enforce", &[&describe], &[]);
    let outcome = function_handler(event(PUT_KEY_POLICY), &deps)
        .await
        .unwrap();
    assert!(
        matches!(outcome, Outcome::Skipped { ref reason, .. } if reason == "AWS managed key: its policy is not ours to change"),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn tagging_a_compliant_key_announces_its_enrolment_and_writes_nothing() {
    let (describe, tags, policy, rotation, aliases, publish) = (
        describe_ok(),
        managed_tag(),
        baseline_policy(),
        rotation_on(),
        no_aliases(),
        mock!(SnsClient::publish)
            .match_requests(|r| {
                r.subject() == Some("KMS key enrolled in guardrails: 1234abcd-12ab-34cd-56ef-1234567890ab (eu-west-1)")
                    && r.message().is_some_and(|m| m.contains("Changed by:  arn:aws:sts::111122223333:assumed-role/Developer/alice"))
            })
            .then_output(|| PublishOutput::builder().message_id("m").build()),
    );
    let deps = deps(
        "enforce",
        &[&describe, &tags, &policy, &rotation, &aliases],
        &[&publish],
    );
    let key = key_outcome(function_handler(event(TAG_RESOURCE), &deps).await.unwrap());
    assert_eq!(key.findings[0].kind, FindingKind::Enrolled);
    assert_eq!(key.writes(), 0);
    assert_eq!(publish.num_calls(), 1);
}

#[tokio::test]
async fn a_changed_rotation_period_is_drift_and_is_set_back() {
    let rotation = mock!(KmsClient::get_key_rotation_status).then_output(|| {
        GetKeyRotationStatusOutput::builder()
            .key_rotation_enabled(true)
            .rotation_period_in_days(2560)
            .build()
    });
    let enable = mock!(KmsClient::enable_key_rotation)
        .match_requests(|r| r.rotation_period_in_days() == Some(365))
        .then_output(|| EnableKeyRotationOutput::builder().build());
    let (describe, tags, policy, aliases, publish) = (
        describe_ok(),
        managed_tag(),
        baseline_policy(),
        no_aliases(),
        publish_ok(),
    );
    let deps = deps(
        "enforce",
        &[&describe, &tags, &policy, &rotation, &enable, &aliases],
        &[&publish],
    );
    let sample = include_str!("../../../events/policy-drift/enable-key-rotation-period.json");

    let key = key_outcome(function_handler(event(sample), &deps).await.unwrap());

    assert_eq!(
        enable.num_calls(),
        1,
        "EnableKeyRotation with the baseline period"
    );
    assert_eq!(
        key.findings[0].summary,
        "rotation period is 2560 days (baseline: 365 days)"
    );
}

#[tokio::test]
async fn rotation_unreadable_while_pending_deletion_is_checked_after_the_key_is_back() {
    use aws_sdk_kms::operation::get_key_rotation_status::GetKeyRotationStatusError;
    let describe = describe_as(KEY_ARN, KeyManagerType::Customer, KeyState::PendingDeletion);
    let rotation = mock!(KmsClient::get_key_rotation_status)
        .sequence()
        .error(|| {
            GetKeyRotationStatusError::generic(error(
                "KMSInvalidStateException",
                "key is pending deletion",
            ))
        })
        .output(|| {
            GetKeyRotationStatusOutput::builder()
                .key_rotation_enabled(false)
                .build()
        })
        .build();
    let cancel = mock!(KmsClient::cancel_key_deletion).then_output(|| {
        aws_sdk_kms::operation::cancel_key_deletion::CancelKeyDeletionOutput::builder().build()
    });
    let enable = mock!(KmsClient::enable_key)
        .then_output(|| aws_sdk_kms::operation::enable_key::EnableKeyOutput::builder().build());
    let enable_rotation = mock!(KmsClient::enable_key_rotation)
        .then_output(|| EnableKeyRotationOutput::builder().build());
    let (tags, policy, put, aliases, publish) = (
        managed_tag(),
        drifted_policy(),
        put_ok(),
        no_aliases(),
        publish_ok(),
    );
    let deps = deps(
        "enforce",
        &[
            &describe,
            &tags,
            &policy,
            &rotation,
            &cancel,
            &enable,
            &put,
            &enable_rotation,
            &aliases,
        ],
        &[&publish],
    );
    let sample = include_str!("../../../events/policy-drift/schedule-key-deletion.json");

    let key = key_outcome(function_handler(event(sample), &deps).await.unwrap());

    let operations: Vec<&str> = key.actions.iter().map(|a| a.operation).collect();
    assert_eq!(
        operations,
        [
            "CancelKeyDeletion",
            "EnableKey",
            "PutKeyPolicy",
            "EnableKeyRotation"
        ]
    );
    assert_eq!(
        rotation.num_calls(),
        2,
        "read once refused, once after EnableKey"
    );
    assert_eq!(enable_rotation.num_calls(), 1);
}

#[tokio::test]
async fn a_sweep_lists_keys_by_tag_across_pages_and_skips_keys_deleted_meanwhile() {
    let gone = "arn:aws:kms:eu-west-1:111122223333:key/00000000-0000-0000-0000-000000000000";
    let pages = mock!(TaggingClient::get_resources)
        .sequence()
        .output(move || {
            let mut page = tagged(&[gone]);
            page.pagination_token = Some("page-2".into());
            page
        })
        .output(|| tagged(&[KEY_ARN]))
        .build();
    let describe_gone = mock!(KmsClient::describe_key)
        .match_requests(move |r| r.key_id() == Some(gone))
        .then_error(|| DescribeKeyError::generic(error("NotFoundException", "Key does not exist")));
    let (describe, policy, rotation) = (describe_ok(), baseline_policy(), rotation_on());
    let deps = deps_with(
        config("enforce", &[]),
        Mocks {
            kms: &[&describe_gone, &describe, &policy, &rotation],
            tagging: &[&pages],
            ..Mocks::default()
        },
    );

    let report = sweep_report(function_handler(event(SWEEP), &deps).await.unwrap());

    assert_eq!(pages.num_calls(), 2, "one GetResources call per page");
    assert_eq!(
        (
            report.keys_listed,
            report.managed,
            report.compliant,
            report.failed
        ),
        (2, 1, 1, 0)
    );
    assert_eq!(describe_gone.num_calls(), 1);
}

#[tokio::test]
async fn one_denied_key_is_announced_and_the_sweep_still_corrects_the_others() {
    let list = mock!(TaggingClient::get_resources).then_output(|| tagged(&[OTHER, KEY_ARN]));
    let denied = mock!(KmsClient::get_key_policy)
        .match_requests(|r| r.key_id() == Some(OTHER))
        .then_error(|| {
            GetKeyPolicyError::generic(error("AccessDeniedException", "no kms:GetKeyPolicy"))
        });
    let (describe, describe_other) = (
        describe_ok(),
        describe_as(OTHER, KeyManagerType::Customer, KeyState::Enabled),
    );
    let (policy, put, rotation, aliases, publish) = (
        drifted_policy(),
        put_ok(),
        rotation_on(),
        no_aliases(),
        publish_ok(),
    );
    let deps = deps_with(
        config("enforce", &[]),
        Mocks {
            kms: &[
                &describe,
                &describe_other,
                &denied,
                &policy,
                &put,
                &rotation,
                &aliases,
            ],
            sns: &[&publish],
            tagging: &[&list],
            ..Mocks::default()
        },
    );

    // The sweep succeeds: the denied key was announced once, retrying would repeat it.
    let report = sweep_report(function_handler(event(SWEEP), &deps).await.unwrap());

    assert_eq!((report.managed, report.corrected, report.failed), (2, 1, 1));
    assert_eq!(report.failures[0].key, OTHER);
    assert_eq!(put.num_calls(), 1, "the other key was still corrected");
    assert_eq!(
        publish.num_calls(),
        2,
        "one correction, one shut-out message"
    );
    assert_eq!(aliases.num_calls(), 1, "aliases are listed once per Region");
}

#[tokio::test]
async fn a_tagged_key_the_sweep_may_not_describe_is_announced_as_a_shut_out() {
    let list = mock!(TaggingClient::get_resources).then_output(|| tagged(&[KEY_ARN]));
    let denied = mock!(KmsClient::describe_key).then_error(|| {
        DescribeKeyError::generic(error("AccessDeniedException", "no kms:DescribeKey"))
    });
    let publish = shared::testing::publish_where(
        "Guardrail shut out of KMS key",
        "Found by:    scheduled sweep",
    );
    let aliases = no_aliases();
    let deps = deps_with(
        config("enforce", &[]),
        Mocks {
            kms: &[&denied, &aliases],
            sns: &[&publish],
            tagging: &[&list],
            ..Mocks::default()
        },
    );

    let report = sweep_report(function_handler(event(SWEEP), &deps).await.unwrap());

    assert_eq!((report.failed, report.retry_later), (1, 0));
    assert_eq!(publish.num_calls(), 1);
}

#[tokio::test]
async fn a_region_whose_calls_are_denied_is_announced_and_the_others_are_swept() {
    let home = mock!(TaggingClient::get_resources).then_output(|| tagged(&[KEY_ARN]));
    let scp_denied = mock!(TaggingClient::get_resources).then_error(|| {
        GetResourcesError::generic(error(
            "AccessDeniedException",
            "explicit deny in a service control policy",
        ))
    });
    let announced = mock!(SnsClient::publish)
        .match_requests(|r| {
            r.subject() == Some("KMS guardrail could not sweep Region ap-southeast-2")
                && r.message().is_some_and(|m| m.contains("SWEEP_REGIONS"))
        })
        .then_output(|| PublishOutput::builder().message_id("msg-1").build());
    let (describe, policy, rotation) = (describe_ok(), baseline_policy(), rotation_on());
    let deps = deps_with(
        config("enforce", &[("SWEEP_REGIONS", "eu-west-1,ap-southeast-2")]),
        Mocks {
            kms: &[&describe, &policy, &rotation],
            tagging: &[&home],
            sns: &[&announced],
            other_region: Some(("ap-southeast-2", &[], &[&scp_denied])),
            ..Mocks::default()
        },
    );

    let report = sweep_report(function_handler(event(SWEEP), &deps).await.unwrap());

    assert_eq!(report.compliant, 1, "eu-west-1 was still audited");
    let denied = &report.regions[1];
    assert_eq!(denied.region, "ap-southeast-2");
    assert_eq!(denied.error.as_ref().unwrap().error_type, "AccessDenied");
    assert!(report.regions[0].error.is_none());
    assert_eq!(announced.num_calls(), 1, "the denied Region is announced");
}

#[tokio::test]
async fn near_the_deadline_the_sweep_starts_no_more_keys_and_says_how_many_were_left() {
    let list = mock!(TaggingClient::get_resources).then_output(|| tagged(&[OTHER, KEY_ARN]));
    let describe = describe_ok();
    let deps = deps_with(
        config("enforce", &[]),
        Mocks {
            kms: &[&describe],
            tagging: &[&list],
            ..Mocks::default()
        },
    );
    let mut context = lambda_runtime::Context::default();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    // Five seconds left: less than the margin a key needs.
    context.deadline = now_ms + 5_000;
    let event = LambdaEvent::new(serde_json::from_str(SWEEP).unwrap(), context);

    let report = sweep_report(function_handler(event, &deps).await.unwrap());

    assert_eq!(
        (report.keys_listed, report.not_started, report.managed),
        (2, 2, 0)
    );
    assert_eq!(describe.num_calls(), 0);
}

#[tokio::test]
async fn past_the_deadline_the_sweep_does_not_even_list_and_says_so() {
    let list = mock!(TaggingClient::get_resources).then_output(|| tagged(&[KEY_ARN]));
    let deps = deps_with(
        config("enforce", &[]),
        Mocks {
            tagging: &[&list],
            ..Mocks::default()
        },
    );
    let mut context = lambda_runtime::Context::default();
    context.deadline = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
        + 1_000;
    let event = LambdaEvent::new(serde_json::from_str(SWEEP).unwrap(), context);

    let report = sweep_report(function_handler(event, &deps).await.unwrap());

    assert!(report.listing_cut_short);
    assert_eq!((report.keys_listed, list.num_calls()), (0, 0));
}

#[tokio::test]
async fn a_transient_failure_in_a_sweep_leaves_the_key_for_the_next_sweep() {
    let list = mock!(TaggingClient::get_resources).then_output(|| tagged(&[KEY_ARN]));
    let throttled = mock!(KmsClient::get_key_policy)
        .then_error(|| GetKeyPolicyError::generic(error("ThrottlingException", "Rate exceeded")));
    let describe = describe_ok();
    let deps = deps_with(
        config("enforce", &[]),
        Mocks {
            kms: &[&describe, &throttled],
            tagging: &[&list],
            ..Mocks::default()
        },
    );
    let report = sweep_report(function_handler(event(SWEEP), &deps).await.unwrap());
    assert_eq!((report.retry_later, report.failed), (1, 0));
    assert_eq!(report.failures[0].error_type, "Throttling");
}

#[test]
fn the_handled_events_are_one_list() {
    assert_eq!(GATE.names("kms.amazonaws.com").len(), 16);
    assert!(GATE.names("iam.amazonaws.com").is_empty());
}

#[tokio::test]
async fn a_member_account_whose_role_cannot_be_assumed_is_reported_once_and_its_key_untouched() {
    // STS answers AccessDenied for a role that does not exist (spoke.yaml not deployed) and for
    // one whose trust policy does not admit the hub or wants another external id; moto never
    // denies AssumeRole, so the SDK's mocks play STS here.
    let denied = mock!(aws_sdk_sts::Client::assume_role).then_error(|| {
        aws_sdk_sts::operation::assume_role::AssumeRoleError::generic(error(
            "AccessDenied",
            "not authorized to perform: sts:AssumeRole",
        ))
    });
    let publish = shared::testing::publish_where(
        "Guardrail cannot reach account 777788889999",
        "Deploy spoke.yaml to account 777788889999",
    );
    let deps = deps_with(
        config(
            "enforce",
            &[
                ("MEMBER_ROLE_NAME", "kms-guardrails-member"),
                ("MEMBER_EXTERNAL_ID", "hub-7f3a"),
            ],
        ),
        Mocks {
            sns: &[&publish],
            ..Mocks::default()
        },
    );
    let sts = mock_client!(aws_sdk_sts, RuleMode::MatchAny, [&denied]);
    let role = deps.config.common.members.clone().unwrap();
    let sessions = shared::aws::accounts::MemberSessions::new(role, "aws", "policy-drift", sts);
    let deps = Deps {
        clients: deps.clients.with_members("111122223333", sessions),
        ..deps
    };
    let member_event = PUT_KEY_POLICY.replace("111122223333", "777788889999");
    let outcome = function_handler(event(&member_event), &deps).await.unwrap();
    let Outcome::Key(key) = outcome else {
        panic!("expected a key outcome, got {outcome:?}")
    };
    assert_eq!(key.status, Status::Failed);
    assert!(key.key_arn.contains(":777788889999:"), "{}", key.key_arn);
    assert_eq!((denied.num_calls(), publish.num_calls()), (1, 1));
}
