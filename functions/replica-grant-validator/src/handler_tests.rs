//! Paths moto cannot produce: throttling and AccessDenied in one replica Region, against
//! the real SDK clients with mocked answers, one client per Region.

use super::*;
use crate::deps::Clients;
use aws_sdk_kms::operation::create_grant::CreateGrantOutput;
use aws_sdk_kms::operation::describe_key::DescribeKeyOutput;
use aws_sdk_kms::operation::get_key_policy::GetKeyPolicyOutput;
use aws_sdk_kms::operation::list_aliases::ListAliasesOutput;
use aws_sdk_kms::operation::list_grants::ListGrantsOutput;
use aws_sdk_kms::operation::list_resource_tags::ListResourceTagsOutput;
use aws_sdk_kms::types::{
    GrantListEntry, GrantOperation, KeyManagerType, KeyMetadata, KeySpec, KeyState,
    MultiRegionConfiguration, MultiRegionKey, MultiRegionKeyType, Tag,
};
use aws_sdk_kms::Client as KmsClient;
use aws_sdk_sns::operation::publish::PublishOutput;
use aws_sdk_sns::Client as SnsClient;
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use aws_smithy_types::error::ErrorMetadata;
use lambda_runtime::Context;
use shared::aws::AwsClients;
use shared::base::error::Disposition;
use shared::config::FunctionConfig;
use std::collections::HashMap;

const ID: &str = "mrk-1234abcd12ab34cd56ef1234567890ab";
const ROLE: &str = "arn:aws:iam::111122223333:role/s3-replication";
const REVOKE_GRANT: &str =
    include_str!("../../../events/replica-grant-validator/revoke-grant.json");

fn arn(region: &str) -> String {
    format!("arn:aws:kms:{region}:111122223333:key/{ID}")
}

fn config() -> crate::Config {
    config_with(&[])
}

fn config_with(extra: &[(&str, &str)]) -> crate::Config {
    let mut env: HashMap<&str, String> = HashMap::from([
        ("MODE", "enforce".to_string()),
        ("STATE_TABLE", shared::testing::STATE_TABLE.to_string()),
        ("ACCOUNT_ID", "111122223333".to_string()),
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
    crate::Config::from_lookup(&|k| env.get(k).cloned()).unwrap()
}

/// The key in `region` of a set whose primary is in `primary`; the other two are replicas.
fn metadata(region: &str, primary: &str) -> KeyMetadata {
    let key = |r: &str| MultiRegionKey::builder().arn(arn(r)).region(r).build();
    let kind = if region == primary {
        MultiRegionKeyType::Primary
    } else {
        MultiRegionKeyType::Replica
    };
    let mut config = MultiRegionConfiguration::builder()
        .multi_region_key_type(kind)
        .primary_key(key(primary));
    for replica in ["eu-west-1", "us-west-2", "eu-central-1"] {
        if replica != primary {
            config = config.replica_keys(key(replica));
        }
    }
    KeyMetadata::builder()
        .key_id(ID)
        .arn(arn(region))
        .aws_account_id("111122223333")
        .key_state(KeyState::Enabled)
        .key_manager(KeyManagerType::Customer)
        .key_spec(KeySpec::SymmetricDefault)
        .multi_region(true)
        .multi_region_configuration(config.build())
        .build()
        .unwrap()
}

fn policy(region: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Sid":"Admin","Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::111122223333:role/kms-admin"}},"Action":"kms:*","Resource":"*"}},
           {{"Sid":"S3Replication","Effect":"Allow","Principal":{{"AWS":"{ROLE}"}},"Action":["kms:Encrypt","kms:GenerateDataKey"],"Resource":"*","Condition":{{"StringEquals":{{"kms:ViaService":"s3.{region}.amazonaws.com"}}}}}}]}}"#
    )
}

fn error(code: &str) -> ErrorMetadata {
    ErrorMetadata::builder()
        .code(code)
        .message("mocked")
        .build()
}

/// DescribeKey, tags (managed on the primary only), policy and aliases of `region`.
fn key_rules(region: &'static str) -> Vec<Rule> {
    key_rules_in_set(region, "eu-west-1", region == "eu-west-1")
}

/// The same for a set whose primary is in `primary`, the key in `region` tagged or not.
fn key_rules_in_set(region: &'static str, primary: &'static str, tagged: bool) -> Vec<Rule> {
    let tags = if tagged {
        vec![Tag::builder()
            .tag_key("guardrails:managed")
            .tag_value("true")
            .build()
            .unwrap()]
    } else {
        Vec::new()
    };
    vec![
        mock!(KmsClient::describe_key).then_output(move || {
            DescribeKeyOutput::builder()
                .key_metadata(metadata(region, primary))
                .build()
        }),
        mock!(KmsClient::list_resource_tags).then_output(move || {
            ListResourceTagsOutput::builder()
                .set_tags(Some(tags.clone()))
                .build()
        }),
        mock!(KmsClient::get_key_policy)
            .then_output(move || GetKeyPolicyOutput::builder().policy(policy(region)).build()),
        mock!(KmsClient::list_aliases).then_output(|| ListAliasesOutput::builder().build()),
    ]
}

fn required_grant() -> GrantListEntry {
    GrantListEntry::builder()
        .grant_id("g-1")
        .name("s3-replication")
        .grantee_principal(ROLE)
        .operations(GrantOperation::Encrypt)
        .operations(GrantOperation::GenerateDataKey)
        .build()
}

fn client(rules: &[Rule]) -> KmsClient {
    let refs: Vec<&Rule> = rules.iter().collect();
    mock_client!(aws_sdk_kms, RuleMode::MatchAny, &refs)
}

async fn invoke(clients: AwsClients) -> Result<Response, GuardrailError> {
    invoke_with(clients, REVOKE_GRANT).await
}

async fn invoke_with(clients: AwsClients, sample: &str) -> Result<Response, GuardrailError> {
    invoke_configured(config(), clients, sample).await
}

async fn invoke_configured(
    config: crate::Config,
    clients: AwsClients,
    sample: &str,
) -> Result<Response, GuardrailError> {
    let deps = Deps {
        config,
        clients,
        own: Clients::new(),
    };
    let event = serde_json::from_str(sample).unwrap();
    function_handler(LambdaEvent::new(event, Context::default()), &deps).await
}

#[tokio::test]
async fn a_throttled_replica_region_fails_the_invocation_and_nothing_is_written_or_sent() {
    let west_grants = mock!(KmsClient::list_grants).then_error(|| {
        aws_sdk_kms::operation::list_grants::ListGrantsError::generic(error("ThrottlingException"))
    });
    let central_grants = mock!(KmsClient::list_grants)
        .then_output(|| ListGrantsOutput::builder().grants(required_grant()).build());
    let create =
        mock!(KmsClient::create_grant).then_output(|| CreateGrantOutput::builder().build());
    let publish = mock!(SnsClient::publish)
        .then_output(|| PublishOutput::builder().message_id("m-1").build());
    let west: Vec<Rule> = key_rules("us-west-2")
        .into_iter()
        .chain([west_grants, create.clone()])
        .collect();
    let central: Vec<Rule> = key_rules("eu-central-1")
        .into_iter()
        .chain([central_grants, create.clone()])
        .collect();
    let sns: SnsClient = mock_client!(aws_sdk_sns, RuleMode::MatchAny, &[&publish]);
    let clients = AwsClients::new(aws_config::SdkConfig::builder().build())
        .with_dynamodb_client("eu-west-1", shared::testing::state_table())
        .with_kms_client("eu-west-1", client(&key_rules("eu-west-1")))
        .with_kms_client("us-west-2", client(&west))
        .with_kms_client("eu-central-1", client(&central))
        .with_sns_client("eu-west-1", sns);

    let error = invoke(clients).await.unwrap_err();

    assert_eq!(error.disposition(), Disposition::Retry, "{error}");
    assert_eq!(error.operation(), Some("ListGrants"));
    assert_eq!(create.num_calls(), 0);
    assert_eq!(publish.num_calls(), 0, "the retry announces what it finds");
}

#[tokio::test]
async fn a_denied_replica_region_is_reported_once_and_the_other_region_is_still_repaired() {
    let west_grants = mock!(KmsClient::list_grants).then_error(|| {
        aws_sdk_kms::operation::list_grants::ListGrantsError::generic(error(
            "AccessDeniedException",
        ))
    });
    let central_grants =
        mock!(KmsClient::list_grants).then_output(|| ListGrantsOutput::builder().build());
    let create = mock!(KmsClient::create_grant)
        .match_requests(|r| {
            r.name() == Some("s3-replication") && r.key_id() == Some(arn("eu-central-1").as_str())
        })
        .then_output(|| CreateGrantOutput::builder().grant_id("g-2").build());
    let publish = mock!(SnsClient::publish)
        .then_output(|| PublishOutput::builder().message_id("m-1").build());
    let west: Vec<Rule> = key_rules("us-west-2")
        .into_iter()
        .chain([west_grants])
        .collect();
    let central: Vec<Rule> = key_rules("eu-central-1")
        .into_iter()
        .chain([central_grants, create.clone()])
        .collect();
    let sns: SnsClient = mock_client!(aws_sdk_sns, RuleMode::MatchAny, &[&publish]);
    let clients = AwsClients::new(aws_config::SdkConfig::builder().build())
        .with_dynamodb_client("eu-west-1", shared::testing::state_table())
        .with_kms_client("eu-west-1", client(&key_rules("eu-west-1")))
        .with_kms_client("us-west-2", client(&west))
        .with_kms_client("eu-central-1", client(&central))
        .with_sns_client("eu-west-1", sns);

    let report = match invoke(clients).await.unwrap() {
        Response::Report(report) => report,
        other => panic!("{other:?}"),
    };

    assert_eq!(create.num_calls(), 1);
    assert_eq!(publish.num_calls(), 1);
    let replicas = &report.keys[0].replicas;
    let west = replicas.iter().find(|r| r.region == "us-west-2").unwrap();
    assert!(
        west.error.as_deref().unwrap().contains("ListGrants"),
        "{west:?}"
    );
    let central = replicas
        .iter()
        .find(|r| r.region == "eu-central-1")
        .unwrap();
    assert_eq!(central.grants.missing, ["s3-replication"]);
    assert!(central.actions[0].done);
}

/// moto has no UpdatePrimaryRegion. Afterwards the managed tag sits on the eu-west-1 key,
/// now a replica of the us-west-2 primary, which has no tag: the set is still managed, and
/// validated from its new primary.
#[tokio::test]
async fn after_update_primary_region_the_set_is_validated_from_its_new_primary() {
    let empty =
        || mock!(KmsClient::list_grants).then_output(|| ListGrantsOutput::builder().build());
    let create = mock!(KmsClient::create_grant)
        .then_output(|| CreateGrantOutput::builder().grant_id("g-new").build());
    let publish = mock!(SnsClient::publish)
        .then_output(|| PublishOutput::builder().message_id("m-1").build());
    let old_primary: Vec<Rule> = key_rules_in_set("eu-west-1", "us-west-2", true)
        .into_iter()
        .chain([empty(), create.clone()])
        .collect();
    let new_primary = key_rules_in_set("us-west-2", "us-west-2", false);
    let central: Vec<Rule> = key_rules_in_set("eu-central-1", "us-west-2", false)
        .into_iter()
        .chain([empty(), create.clone()])
        .collect();
    let sns: SnsClient = mock_client!(aws_sdk_sns, RuleMode::MatchAny, &[&publish]);
    let clients = AwsClients::new(aws_config::SdkConfig::builder().build())
        .with_dynamodb_client("eu-west-1", shared::testing::state_table())
        .with_kms_client("eu-west-1", client(&old_primary))
        .with_kms_client("us-west-2", client(&new_primary))
        .with_kms_client("eu-central-1", client(&central))
        .with_sns_client("eu-west-1", sns);

    let sample = include_str!("../../../events/replica-grant-validator/update-primary-region.json");
    let report = match invoke_with(clients, sample).await.unwrap() {
        Response::Report(report) => report,
        other => panic!("{other:?}"),
    };

    assert_eq!(report.keys[0].primary, arn("us-west-2"));
    let regions: Vec<&str> = report.keys[0]
        .replicas
        .iter()
        .map(|r| r.region.as_str())
        .collect();
    assert_eq!(regions, ["eu-west-1", "eu-central-1"]);
    // eu-west-1 is outside the allowed Regions of this configuration: reported, no grant.
    assert!(report.keys[0].replicas[0]
        .findings
        .iter()
        .any(|f| f.kind == shared::notify::outcome::FindingKind::ReplicaRegionNotAllowed));
    assert_eq!(create.num_calls(), 1, "the eu-central-1 grant only");
    assert_eq!(publish.num_calls(), 1);
}

/// A sweep goes through the pipeline with one digest: the primary and its replica, both
/// listed, lead to the same set, which is validated once, and the run sends one message.
#[tokio::test]
async fn a_sweep_validates_each_set_once_and_sends_one_digest() {
    let create = mock!(KmsClient::create_grant)
        .then_output(|| CreateGrantOutput::builder().grant_id("g-2").build());
    let publish = mock!(SnsClient::publish)
        .then_output(|| PublishOutput::builder().message_id("m-1").build());
    let west: Vec<Rule> = key_rules("us-west-2")
        .into_iter()
        .chain([
            mock!(KmsClient::list_grants).then_output(|| ListGrantsOutput::builder().build()),
            create.clone(),
        ])
        .collect();
    let central: Vec<Rule> = key_rules("eu-central-1")
        .into_iter()
        .chain([mock!(KmsClient::list_grants)
            .then_output(|| ListGrantsOutput::builder().grants(required_grant()).build())])
        .collect();
    let sns: SnsClient = mock_client!(aws_sdk_sns, RuleMode::MatchAny, &[&publish]);
    let clients = AwsClients::new(aws_config::SdkConfig::builder().build())
        .with_dynamodb_client("eu-west-1", shared::testing::state_table())
        .with_kms_client("eu-west-1", client(&key_rules("eu-west-1")))
        .with_kms_client("us-west-2", client(&west))
        .with_kms_client("eu-central-1", client(&central))
        .with_sns_client("eu-west-1", sns);
    // Never asked with MANAGED_KEYS, but the sweep holds one per Region.
    let mut clients = clients;
    for region in ["eu-west-1", "us-west-2"] {
        let tagging: aws_sdk_resourcegroupstagging::Client =
            mock_client!(aws_sdk_resourcegroupstagging, RuleMode::MatchAny, &[]);
        clients = clients.with_tagging_client(region, tagging);
    }
    let listed = format!("{},{}", arn("eu-west-1"), arn("us-west-2"));
    let config = config_with(&[
        ("MANAGED_KEYS", listed.as_str()),
        ("SWEEP_REGIONS", "eu-west-1,us-west-2"),
    ]);

    let sample = include_str!("../../../events/replica-grant-validator/scheduled-sweep.json");
    let report = match invoke_configured(config, clients, sample).await.unwrap() {
        Response::Report(report) => report,
        other => panic!("{other:?}"),
    };

    assert_eq!(report.trigger, "ScheduledSweep");
    assert_eq!(report.mode, shared::config::Mode::Enforce);
    assert_eq!(report.keys.len(), 1, "the set once");
    assert_eq!(report.keys[0].primary, arn("eu-west-1"));
    let sweep = report.sweep.as_ref().unwrap();
    assert_eq!((sweep.managed, sweep.corrected), (2, 1), "{sweep:?}");
    assert_eq!(create.num_calls(), 1, "the us-west-2 grant");
    assert_eq!(publish.num_calls(), 1, "one message for the run");
    assert!(report.notification.is_some());
}
