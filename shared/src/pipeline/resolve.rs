//! One resolution chain for events and sweeps alike: identifier -> DescribeKey -> exists ->
//! this account -> customer managed -> managed (tag or list).

use crate::aws::kms::{self, KeyInfo};
use crate::aws::tagging;
use crate::aws::AwsClients;
use crate::base::arn::Arn;
use crate::base::error::GuardrailError;
use crate::config::{CommonConfig, ManagedSelector};
use crate::pipeline::managed::{management, Management};
use crate::triggers::events::KeyLocator;

#[derive(Debug)]
pub enum Resolution {
    /// A managed key of this account: the function acts on it.
    Managed(KeyInfo),
    /// Not ours to act on (gone, another account's, AWS managed), with the reason for the log.
    NotOurs(String),
    /// A customer managed key of this account that the selector does not manage: announcing
    /// that it left management needs the key itself.
    Unmanaged { key: KeyInfo, reason: String },
    /// A managed key the function may no longer read: the typical sign of a takeover.
    ShutOut { key: String, error: GuardrailError },
}

/// Resolves what an event names.
pub async fn resolve(
    clients: &AwsClients,
    common: &CommonConfig,
    locator: &KeyLocator,
) -> Result<Resolution, GuardrailError> {
    let client = clients.kms(&locator.region);
    match kms::describe_key(&client, &locator.identifier).await {
        Ok(key) => classify(clients, common, key, None).await,
        Err(e) if e.is_not_found() => Ok(Resolution::NotOurs(format!(
            "key {} no longer exists",
            crate::base::text::value(&locator.identifier)
        ))),
        Err(e) if e.is_access_denied() => {
            if known_managed(clients, common, locator).await {
                Ok(Resolution::ShutOut {
                    key: locator.identifier.clone(),
                    error: e,
                })
            } else {
                Ok(Resolution::NotOurs(format!(
                    "DescribeKey was denied and the key is not a managed key: {e}"
                )))
            }
        }
        Err(e) => Err(e),
    }
}

/// The rest of the chain once DescribeKey answered. `managed` is the answer when the caller
/// already knows it (a sweep that listed keys by tag), saving the tag read.
pub async fn classify(
    clients: &AwsClients,
    common: &CommonConfig,
    key: KeyInfo,
    managed: Option<Management>,
) -> Result<Resolution, GuardrailError> {
    if key.account != common.account_id {
        return Ok(Resolution::NotOurs(format!(
            "key belongs to account {}, not {}",
            crate::base::text::value(&key.account),
            common.account_id
        )));
    }
    if !key.customer_managed {
        return Ok(Resolution::NotOurs(
            "AWS managed key: its policy is not ours to change".into(),
        ));
    }
    let decision = match managed {
        Some(decision) => decision,
        None => management(&common.managed, &clients.kms(&key.region), &key).await?,
    };
    Ok(match decision {
        Management::Managed => Resolution::Managed(key),
        Management::Unmanaged(reason) => Resolution::Unmanaged {
            key,
            reason: format!("unmanaged key: {reason}"),
        },
    })
}

/// Whether a key the function cannot describe is one it manages: listed in MANAGED_KEYS, or
/// carrying the managed tag according to the Tagging API (which needs no access to the key).
async fn known_managed(clients: &AwsClients, common: &CommonConfig, locator: &KeyLocator) -> bool {
    match &common.managed {
        ManagedSelector::Keys(entries) => entries
            .iter()
            .filter_map(|e| KeyLocator::parse(e, &common.region).ok())
            .any(|l| l == *locator),
        ManagedSelector::Tag { key, value } => {
            let Ok(arn) = Arn::parse(&locator.identifier) else {
                return false;
            };
            if arn.kms_key_id().is_none() {
                return false;
            }
            tagging::key_has_tag(&clients.tagging(&locator.region), &arn, key, value)
                .await
                .unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "cannot tell whether the key is managed");
                    false
                })
        }
    }
}

#[cfg(test)]
mod tests {
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
        resolve(clients, common, &locator).await.unwrap()
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
}
