//! Which key an alarm is about, and what people need to know of it. A failure here only makes
//! the message poorer: it is said in the message, never a reason to drop it.

use shared::aws::kms;
use shared::aws::AwsClients;
use shared::pipeline::managed::{management, Management};
use shared::triggers::events::KeyLocator;

use crate::handler::Deps;
use crate::message::KeyContext;

/// The key's context, or why it could not be read.
pub async fn key_context(
    deps: &Deps,
    identifier: &str,
    region: &str,
) -> Result<KeyContext, String> {
    let locator = KeyLocator::parse(identifier, region)?;
    read(&deps.clients, &deps.config.common.managed, &locator)
        .await
        .map_err(|e| e.to_string())
}

async fn read(
    clients: &AwsClients,
    selector: &shared::config::ManagedSelector,
    locator: &KeyLocator,
) -> Result<KeyContext, shared::GuardrailError> {
    let client = clients.kms(&locator.region);
    let key = kms::describe_key(&client, &locator.identifier).await?;
    let alias = kms::aliases(&client, &key.key_id)
        .await?
        .into_iter()
        .find(|a| !a.starts_with("alias/aws/"));
    let tags = kms::tags(&client, key.arn.as_str())
        .await
        .unwrap_or_default();
    let managed = matches!(
        management(selector, &client, &key).await,
        Ok(Management::Managed)
    );
    Ok(KeyContext {
        key_id: key.key_id.clone(),
        arn: key.arn.to_string(),
        alias,
        description: key.description.clone(),
        tags,
        state: key.state.as_str().to_string(),
        managed,
    })
}

/// Tag names on an alarm that name the key it watches, for alarms without a `KeyId` dimension.
pub const KEY_TAGS: &[&str] = &["KeyId", "kms:KeyId", "guardrails:key"];

/// The key an alarm's own tags name, if any. A failed read only means no answer.
pub async fn key_from_alarm_tags(
    cloudwatch: &aws_sdk_cloudwatch::Client,
    alarm_arn: &str,
) -> Option<String> {
    match cloudwatch
        .list_tags_for_resource()
        .resource_arn(alarm_arn)
        .send()
        .await
    {
        Ok(out) => out.tags().iter().find_map(|t| {
            let (key, value) = (t.key()?, t.value()?);
            KEY_TAGS
                .iter()
                .any(|name| key.eq_ignore_ascii_case(name))
                .then(|| value.to_string())
        }),
        Err(e) => {
            let e = shared::GuardrailError::aws("ListTagsForResource", alarm_arn, e);
            tracing::warn!(error = %e, "alarm tags unavailable");
            None
        }
    }
}
