//! The chain against the real SDK clients with mocked answers.

use super::*;
use crate::config::{load, CommonConfig};
use aws_sdk_kms::operation::describe_key::{DescribeKeyError, DescribeKeyOutput};
use aws_sdk_kms::operation::list_resource_tags::ListResourceTagsOutput;
use aws_sdk_kms::types::{KeyManagerType, KeyMetadata, KeyState, Tag};
use aws_sdk_kms::Client as KmsClient;
use aws_sdk_resourcegroupstagging::operation::get_resources::GetResourcesOutput;
use aws_sdk_resourcegroupstagging::types::{ResourceTagMapping, Tag as TaggingTag};
use aws_sdk_resourcegroupstagging::Client as TaggingClient;
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use aws_smithy_types::error::ErrorMetadata;

const KEY: &str = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

fn common(extra: &[(&str, &str)]) -> CommonConfig {
    let map = crate::config::tests::env(extra);
    load(&|k| map.get(k).cloned(), CommonConfig::read, |_| Vec::new()).unwrap()
}

fn clients(kms: &[&Rule], tagging: &[&Rule]) -> AwsClients {
    let kms: KmsClient = mock_client!(aws_sdk_kms, RuleMode::MatchAny, kms);
    let tagging: TaggingClient =
        mock_client!(aws_sdk_resourcegroupstagging, RuleMode::MatchAny, tagging);
    let sdk = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .build();
    AwsClients::new(sdk)
        .with_kms_client("eu-west-1", kms)
        .with_tagging_client("eu-west-1", tagging)
}

fn described(account: &'static str, manager: KeyManagerType) -> Rule {
    mock!(KmsClient::describe_key).then_output(move || {
        DescribeKeyOutput::builder()
            .key_metadata(
                KeyMetadata::builder()
                    .key_id("1234abcd-12ab-34cd-56ef-1234567890ab")
                    .arn(KEY.replace("111122223333", account))
                    .aws_account_id(account)
                    .key_state(KeyState::Enabled)
                    .key_manager(manager.clone())
                    .build()
                    .unwrap(),
            )
            .build()
    })
}

fn tags(value: &'static str) -> Rule {
    mock!(KmsClient::list_resource_tags).then_output(move || {
        ListResourceTagsOutput::builder()
            .tags(
                Tag::builder()
                    .tag_key("guardrails:managed")
                    .tag_value(value)
                    .build()
                    .unwrap(),
            )
            .build()
    })
}

fn denied() -> Rule {
    mock!(KmsClient::describe_key).then_error(|| {
        DescribeKeyError::generic(
            ErrorMetadata::builder()
                .code("AccessDeniedException")
                .message("denied by the key policy")
                .build(),
        )
    })
}

fn tagging_says(tagged: bool) -> Rule {
    mock!(TaggingClient::get_resources).then_output(move || {
        let mut mapping = ResourceTagMapping::builder().resource_arn(KEY);
        if tagged {
            mapping = mapping.tags(
                TaggingTag::builder()
                    .key("guardrails:managed")
                    .value("true")
                    .build()
                    .unwrap(),
            );
        }
        GetResourcesOutput::builder()
            .resource_tag_mapping_list(mapping.build())
            .build()
    })
}

async fn run(common: &CommonConfig, clients: &AwsClients, identifier: &str) -> Resolution {
    let locator = KeyLocator::parse(
        identifier,
        &crate::base::region::Region::parse("eu-west-1").unwrap(),
    )
    .unwrap();
    resolve(clients, common, &locator, None).await.unwrap()
}

#[tokio::test]
async fn each_link_of_the_chain_gives_its_reason() {
    let gone = mock!(KmsClient::describe_key).then_error(|| {
        DescribeKeyError::generic(ErrorMetadata::builder().code("NotFoundException").build())
    });
    let cases: Vec<(Vec<Rule>, &str)> = vec![
        (vec![gone], "no longer exists"),
        (
            vec![described("444455556666", KeyManagerType::Customer)],
            "key belongs to account 444455556666, not 111122223333",
        ),
        (
            vec![described("111122223333", KeyManagerType::Aws)],
            "AWS managed key",
        ),
    ];
    for (rules, reason) in cases {
        let refs: Vec<&Rule> = rules.iter().collect();
        let resolution = run(&common(&[]), &clients(&refs, &[]), KEY).await;
        assert!(
            matches!(&resolution, Resolution::NotOurs(r) if r.contains(reason)),
            "{resolution:?}"
        );
    }
}

#[tokio::test]
async fn the_managed_tag_decides_between_managed_and_unmanaged() {
    let (describe, managed) = (
        described("111122223333", KeyManagerType::Customer),
        tags("true"),
    );
    let resolution = run(&common(&[]), &clients(&[&describe, &managed], &[]), KEY).await;
    assert!(matches!(resolution, Resolution::Managed(ref k) if k.arn.as_str() == KEY));
    let other = tags("false");
    let resolution = run(&common(&[]), &clients(&[&describe, &other], &[]), KEY).await;
    assert!(
        matches!(&resolution, Resolution::Unmanaged { reason, .. } if reason == "unmanaged key: tag guardrails:managed=false, not guardrails:managed=true"),
        "{resolution:?}"
    );
}

#[tokio::test]
async fn a_denied_describe_is_a_shut_out_only_for_a_managed_key() {
    let (deny, tagged) = (denied(), tagging_says(true));
    let resolution = run(&common(&[]), &clients(&[&deny], &[&tagged]), KEY).await;
    assert!(
        matches!(resolution, Resolution::ShutOut { ref key, .. } if key == KEY),
        "{resolution:?}"
    );

    let untagged = tagging_says(false);
    let resolution = run(&common(&[]), &clients(&[&deny], &[&untagged]), KEY).await;
    assert!(
        matches!(resolution, Resolution::NotOurs(_)),
        "{resolution:?}"
    );

    // Listed keys are known to be managed without asking.
    let listed = common(&[("MANAGED_KEYS", KEY)]);
    let resolution = run(&listed, &clients(&[&deny], &[]), KEY).await;
    assert!(
        matches!(resolution, Resolution::ShutOut { .. }),
        "{resolution:?}"
    );
}
