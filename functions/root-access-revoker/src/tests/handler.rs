//! Paths moto cannot produce: IAM Access Analyzer, IAM's policy simulator, AccessDenied,
//! against the real SDK clients with mocked answers.

use super::*;
use crate::config::Config;
use crate::RevokerReport;
use aws_sdk_accessanalyzer::operation::check_no_new_access::CheckNoNewAccessOutput;
use aws_sdk_accessanalyzer::types::CheckNoNewAccessResult;
use aws_sdk_accessanalyzer::Client as AnalyzerClient;
use aws_sdk_iam::operation::get_role::{GetRoleError, GetRoleOutput};
use aws_sdk_iam::operation::simulate_principal_policy::SimulatePrincipalPolicyOutput;
use aws_sdk_iam::types::{EvaluationResult, PolicyEvaluationDecisionType, Role};
use aws_sdk_iam::Client as IamClient;
use aws_sdk_kms::operation::describe_key::DescribeKeyOutput;
use aws_sdk_kms::operation::get_key_policy::GetKeyPolicyOutput;
use aws_sdk_kms::operation::put_key_policy::PutKeyPolicyOutput;
use aws_sdk_kms::types::{KeyManagerType, KeyMetadata, KeyState};
use aws_sdk_kms::Client as KmsClient;
use aws_sdk_resourcegroupstagging::operation::get_resources::GetResourcesOutput;
use aws_sdk_resourcegroupstagging::types::ResourceTagMapping;
use aws_sdk_resourcegroupstagging::Client as TaggingClient;
use aws_sdk_sns::operation::publish::PublishOutput;
use aws_sdk_sns::Client as SnsClient;
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use aws_smithy_types::error::ErrorMetadata;
use shared::aws::AwsClients;
use shared::config::FunctionConfig;
use shared::notify::outcome::Status;
use shared::pipeline::Response;
use std::collections::HashMap;

const KEY_ARN: &str = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
const ADMIN: &str = "arn:aws:iam::111122223333:role/kms-admin";
const SELF: &str =
    "arn:aws:iam::111122223333:role/kms-guardrails-RootAccessRevokerRole-1A2B3C4D5E6F";
const PUT_KEY_POLICY: &str =
    include_str!("../../../../events/root-access-revoker/put-key-policy.json");
const BOUNDARY: &str =
    include_str!("../../../../events/root-access-revoker/put-role-permissions-boundary.json");

fn config(extra: &[(&str, &str)]) -> Config {
    let mut env: HashMap<&str, &str> = HashMap::from([
        ("MODE", "enforce"),
        ("STATE_TABLE", shared::testing::STATE_TABLE),
        ("ACCOUNT_ID", "111122223333"),
        ("AWS_REGION", "eu-west-1"),
        (
            "NOTIFY_TOPIC_ARN",
            "arn:aws:sns:eu-west-1:111122223333:kms-guardrails",
        ),
        ("SELF_ROLE_ARN", SELF),
        ("ROOT_ACCESS", "false"),
        ("KMS_ADMIN_ROLE_ARNS", ADMIN),
    ]);
    env.extend(extra.iter().copied());
    Config::from_lookup(&|k| env.get(k).map(|v| v.to_string())).unwrap()
}

struct Mocks<'a> {
    kms: &'a [&'a Rule],
    sns: &'a [&'a Rule],
    iam: &'a [&'a Rule],
    analyzer: &'a [&'a Rule],
    tagging: &'a [&'a Rule],
}

fn deps(config: Config, m: Mocks) -> Deps {
    let kms: KmsClient = mock_client!(aws_sdk_kms, RuleMode::MatchAny, m.kms);
    let sns: SnsClient = mock_client!(aws_sdk_sns, RuleMode::MatchAny, m.sns);
    let tagging: TaggingClient =
        mock_client!(aws_sdk_resourcegroupstagging, RuleMode::MatchAny, m.tagging);
    let iam: IamClient = mock_client!(aws_sdk_iam, RuleMode::MatchAny, m.iam);
    let analyzer: AnalyzerClient =
        mock_client!(aws_sdk_accessanalyzer, RuleMode::MatchAny, m.analyzer);
    let sdk = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .build();
    let clients = AwsClients::new(sdk.clone())
        .with_kms_client("eu-west-1", kms)
        .with_sns_client("eu-west-1", sns)
        .with_tagging_client("eu-west-1", tagging)
        .with_dynamodb_client("eu-west-1", shared::testing::state_table());
    Deps {
        config,
        clients,
        own: Clients::new()
            .with_iam_client("eu-west-1", iam)
            .with_analyzer_client("eu-west-1", analyzer),
    }
}

fn error(code: &str) -> ErrorMetadata {
    ErrorMetadata::builder()
        .code(code)
        .message("mocked")
        .build()
}

fn kms_rules() -> Vec<Rule> {
    let policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[
          {{"Sid":"EnableRootAccess","Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::111122223333:root"}},"Action":"kms:*","Resource":"*"}},
          {{"Sid":"Admins","Effect":"Allow","Principal":{{"AWS":["{ADMIN}","{SELF}"]}},"Action":"kms:*","Resource":"*"}}]}}"#
    );
    vec![
        mock!(KmsClient::describe_key).then_output(|| {
            DescribeKeyOutput::builder()
                .key_metadata(
                    KeyMetadata::builder()
                        .key_id("1234abcd-12ab-34cd-56ef-1234567890ab")
                        .arn(KEY_ARN)
                        .aws_account_id("111122223333")
                        .key_state(KeyState::Enabled)
                        .key_manager(KeyManagerType::Customer)
                        .build()
                        .unwrap(),
                )
                .build()
        }),
        shared::testing::managed_tag(),
        mock!(KmsClient::get_key_policy)
            .then_output(move || GetKeyPolicyOutput::builder().policy(policy.clone()).build()),
        shared::testing::no_aliases(),
    ]
}

fn role_exists() -> Rule {
    mock!(IamClient::get_role).then_output(|| {
        GetRoleOutput::builder()
            .role(
                Role::builder()
                    .path("/")
                    .role_name("kms-admin")
                    .role_id("AROAEXAMPLEADMIN")
                    .arn(ADMIN)
                    .create_date(aws_smithy_types::DateTime::from_secs(0))
                    .assume_role_policy_document("%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Principal%22%3A%7B%22AWS%22%3A%22arn%3Aaws%3Aiam%3A%3A111122223333%3Aroot%22%7D%2C%22Action%22%3A%22sts%3AAssumeRole%22%7D%5D%7D")
                    .build()
                    .unwrap(),
            )
            .build()
    })
}

fn event(text: &str) -> LambdaEvent<Value> {
    LambdaEvent::new(
        serde_json::from_str(text).unwrap(),
        lambda_runtime::Context::default(),
    )
}

fn analyzer_says(result: CheckNoNewAccessResult) -> Rule {
    mock!(AnalyzerClient::check_no_new_access)
        .match_requests(|r| {
            r.new_policy_document()
                .is_some_and(|d| d.contains(ADMIN) && d.contains("kms:PutKeyPolicy"))
                && r.existing_policy_document()
                    .is_some_and(|d| !d.contains(":root"))
        })
        .then_output(move || {
            CheckNoNewAccessOutput::builder()
                .result(result.clone())
                .message("mocked analysis")
                .build()
        })
}

#[tokio::test]
async fn with_the_proof_switched_on_a_passing_analysis_lets_the_root_go() {
    let kms = kms_rules();
    let put =
        mock!(KmsClient::put_key_policy).then_output(|| PutKeyPolicyOutput::builder().build());
    let (role, proof, publish) = (
        role_exists(),
        analyzer_says(CheckNoNewAccessResult::Pass),
        mock!(SnsClient::publish).then_output(|| PublishOutput::builder().message_id("m").build()),
    );
    let mut rules: Vec<&Rule> = kms.iter().collect();
    rules.push(&put);
    let deps = deps(
        config(&[("ACCESS_ANALYZER_PROOF", "true")]),
        Mocks {
            kms: &rules,
            sns: &[&publish],
            iam: &[&role],
            analyzer: &[&proof],
            tagging: &[],
        },
    );

    let outcome = function_handler(event(PUT_KEY_POLICY), &deps)
        .await
        .unwrap();

    let Response::Outcome(Outcome::Key(key)) = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(key.status, Status::Corrected);
    assert_eq!((proof.num_calls(), put.num_calls()), (1, 1));
}

#[tokio::test]
async fn with_the_proof_switched_on_a_failing_analysis_blocks_the_write() {
    let kms = kms_rules();
    let put =
        mock!(KmsClient::put_key_policy).then_output(|| PutKeyPolicyOutput::builder().build());
    let (role, proof) = (role_exists(), analyzer_says(CheckNoNewAccessResult::Fail));
    let publish = shared::testing::publish_where(
        "Removal of root access from KMS key blocked",
        "IAM Access Analyzer proof",
    );
    let mut rules: Vec<&Rule> = kms.iter().collect();
    rules.push(&put);
    let deps = deps(
        config(&[("ACCESS_ANALYZER_PROOF", "true")]),
        Mocks {
            kms: &rules,
            sns: &[&publish],
            iam: &[&role],
            analyzer: &[&proof],
            tagging: &[],
        },
    );

    let outcome = function_handler(event(PUT_KEY_POLICY), &deps)
        .await
        .unwrap();

    let Response::Outcome(Outcome::Key(key)) = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(key.status, Status::Blocked);
    assert_eq!(put.num_calls(), 0, "nothing written");
    assert_eq!(publish.num_calls(), 1);
}

#[tokio::test]
async fn an_iam_read_that_is_denied_is_announced_once_and_writes_nothing() {
    let kms = kms_rules();
    let put =
        mock!(KmsClient::put_key_policy).then_output(|| PutKeyPolicyOutput::builder().build());
    let denied =
        mock!(IamClient::get_role).then_error(|| GetRoleError::generic(error("AccessDenied")));
    let publish = mock!(SnsClient::publish)
        .match_requests(|r| {
            r.message()
                .is_some_and(|m| m.contains("FAILED (AccessDenied)"))
        })
        .then_output(|| PublishOutput::builder().message_id("m").build());
    let mut rules: Vec<&Rule> = kms.iter().collect();
    rules.push(&put);
    let deps = deps(
        config(&[]),
        Mocks {
            kms: &rules,
            sns: &[&publish],
            iam: &[&denied],
            analyzer: &[],
            tagging: &[],
        },
    );

    let outcome = function_handler(event(PUT_KEY_POLICY), &deps)
        .await
        .unwrap();

    let Response::Outcome(Outcome::Key(key)) = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(key.status, Status::Failed);
    assert_eq!((put.num_calls(), publish.num_calls()), (0, 1));
}

#[tokio::test]
async fn a_permissions_boundary_without_kms_puts_the_keys_it_alone_administers_at_risk() {
    let only_admin = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Sid":"Admins","Effect":"Allow","Principal":{{"AWS":["{ADMIN}","{SELF}"]}},"Action":"kms:*","Resource":"*"}}]}}"#
    );
    let kms = [
        kms_rules().remove(0),
        mock!(KmsClient::get_key_policy).then_output(move || {
            GetKeyPolicyOutput::builder()
                .policy(only_admin.clone())
                .build()
        }),
    ];
    let list = mock!(TaggingClient::get_resources).then_output(|| {
        GetResourcesOutput::builder()
            .resource_tag_mapping_list(ResourceTagMapping::builder().resource_arn(KEY_ARN).build())
            .build()
    });
    let simulated = mock!(IamClient::simulate_principal_policy).then_output(|| {
        SimulatePrincipalPolicyOutput::builder()
            .evaluation_results(
                EvaluationResult::builder()
                    .eval_action_name("kms:PutKeyPolicy")
                    .eval_decision(PolicyEvaluationDecisionType::ExplicitDeny)
                    .build()
                    .unwrap(),
            )
            .build()
    });
    let publish = mock!(SnsClient::publish)
        .match_requests(|r| {
            r.subject()
                .is_some_and(|s| s.contains("KMS admin role at risk: 1 key(s)"))
                && r.message()
                    .is_some_and(|m| m.contains("lost kms:PutKeyPolicy") && m.contains(KEY_ARN))
        })
        .then_output(|| PublishOutput::builder().message_id("m").build());
    let role = role_exists();
    let rules: Vec<&Rule> = kms.iter().collect();
    let deps = deps(
        config(&[]),
        Mocks {
            kms: &rules,
            sns: &[&publish],
            iam: &[&role, &simulated],
            analyzer: &[],
            tagging: &[&list],
        },
    );

    let outcome = function_handler(event(BOUNDARY), &deps).await.unwrap();

    assert!(
        matches!(outcome, Response::Report(RevokerReport::AdminAtRisk { ref keys, .. }) if keys == &[KEY_ARN]),
        "{outcome:?}"
    );
    assert_eq!(publish.num_calls(), 1);
}

#[tokio::test]
async fn a_replica_still_being_created_fails_the_invocation_so_it_is_retried() {
    let creating = mock!(KmsClient::describe_key).then_output(|| {
        DescribeKeyOutput::builder()
            .key_metadata(
                KeyMetadata::builder()
                    .key_id("mrk-1234abcd12ab34cd56ef1234567890ab")
                    .arn("arn:aws:kms:eu-west-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab")
                    .aws_account_id("111122223333")
                    .key_state(KeyState::Creating)
                    .key_manager(KeyManagerType::Customer)
                    .build()
                    .unwrap(),
            )
            .build()
    });
    let tags = kms_rules().remove(1);
    let deps = deps(
        config(&[]),
        Mocks {
            kms: &[&creating, &tags],
            sns: &[],
            iam: &[],
            analyzer: &[],
            tagging: &[],
        },
    );
    let sample = include_str!("../../../../events/root-access-revoker/replicate-key.json");
    // The replica lives in eu-central-1: its client is the mocked one only in eu-west-1, so
    // point the event at the home Region's client by rewriting the ARN's Region.
    let sample = sample.replace("arn:aws:kms:eu-central-1", "arn:aws:kms:eu-west-1");

    let err = function_handler(event(&sample), &deps).await.unwrap_err();

    assert_eq!(err.error_type(), "KeyNotReady");
    assert!(err.is_retryable());
}

#[tokio::test]
async fn with_root_access_on_every_trigger_is_a_skip_that_calls_nothing() {
    let deps = deps(
        config(&[("ROOT_ACCESS", "true")]),
        Mocks {
            kms: &[],
            sns: &[],
            iam: &[],
            analyzer: &[],
            tagging: &[],
        },
    );
    let sweep = include_str!("../../../../events/root-access-revoker/scheduled-sweep.json");
    for sample in [PUT_KEY_POLICY, BOUNDARY, sweep] {
        let outcome = function_handler(event(sample), &deps).await.unwrap();
        assert!(
            matches!(outcome, Response::Outcome(Outcome::Skipped { ref reason, .. }) if reason.contains("ROOT_ACCESS is on")),
            "{outcome:?}"
        );
    }
}
