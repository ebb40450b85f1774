//! Which key an alarm is about, and what people need to know of it. A failure here only makes
//! the message poorer: it is said in the message, never a reason to drop it.

use shared::aws::kms::{self, KeyInfo};
use shared::base::region::Region;
use shared::pipeline::managed::{management, Management};
use shared::pipeline::Guardrail;
use shared::triggers::events::KeyLocator;
use shared::GuardrailError;

use crate::handler::{AlarmNotifier, Deps};
use crate::message::KeyContext;

/// The key's context, or why it could not be read: DescribeKey, then the function's `read`
/// (I/O) and `decide` (pure) for the key.
pub async fn key_context(
    deps: &Deps,
    identifier: &str,
    region: &Region,
    account: Option<&str>,
) -> Result<KeyContext, String> {
    let locator = KeyLocator::parse(identifier, region)?;
    // A member account's alarm names a key of that account, read through its member role.
    let home = &deps.config.common.account_id;
    let account = locator.account().or(account).unwrap_or(home);
    if !deps.clients.serves(account, home) {
        return Err(format!(
            "it is in account {account}, which this function reaches only through a member role (set MEMBER_ROLE_NAME)"
        ));
    }
    deps.clients
        .reach(account)
        .await
        .map_err(|e| e.to_string())?;
    let client = deps.clients.kms_in(account, &locator.region);
    let key = kms::describe_key(&client, &locator.identifier)
        .await
        .map_err(|e| e.to_string())?;
    let facts = read(deps, &key).await.map_err(|e| e.to_string())?;
    Ok(AlarmNotifier::decide(&deps.config, &key, facts))
}

/// What is read of a key for an alarm's message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyFacts {
    pub aliases: Vec<String>,
    /// Empty when the tags could not be read.
    pub tags: Vec<(String, String)>,
    /// Whether kms-guardrails manages the key (`false` when that could not be told).
    pub managed: bool,
}

/// The key's aliases, tags and management. Only the aliases are needed: a failure to read the
/// tags or the management only makes the message poorer.
pub async fn read(deps: &Deps, key: &KeyInfo) -> Result<KeyFacts, GuardrailError> {
    let client = deps.clients.kms_in(&key.account, &key.region);
    let aliases = kms::aliases(&client, &key.key_id).await?;
    let tags = kms::tags(&client, key.arn.as_str())
        .await
        .unwrap_or_default();
    let managed = matches!(
        management(&deps.config.common.managed, &client, key).await,
        Ok(Management::Managed)
    );
    Ok(KeyFacts {
        aliases,
        tags,
        managed,
    })
}

/// What the message says about the key: its first alias that is not AWS's, and the rest as read.
pub fn context(key: &KeyInfo, facts: KeyFacts) -> KeyContext {
    KeyContext {
        key_id: key.key_id.clone(),
        arn: key.arn.to_string(),
        alias: facts
            .aliases
            .into_iter()
            .find(|a| !a.starts_with("alias/aws/")),
        description: key.description.clone(),
        tags: facts.tags,
        state: key.state.as_str().to_string(),
        managed: facts.managed,
    }
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
