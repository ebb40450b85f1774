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

/// Resolves what an event names. `account`: the account the call was made in (the event's
/// `recipientAccountId`), for identifiers that do not name one; else this account.
pub async fn resolve(
    clients: &AwsClients,
    common: &CommonConfig,
    locator: &KeyLocator,
    account: Option<&str>,
) -> Result<Resolution, GuardrailError> {
    let account = locator
        .account()
        .or(account)
        .unwrap_or(&common.account_id)
        .to_string();
    if !clients.serves(&account, &common.account_id) {
        return Ok(Resolution::NotOurs(format!(
            "key belongs to account {}, not {} (set MEMBER_ROLE_NAME to reach other accounts)",
            crate::base::text::value(&account),
            common.account_id
        )));
    }
    if let Err(e) = clients.reach(&account).await {
        // The member role is missing, denied or wants another external id: reported, not retried.
        return Ok(Resolution::ShutOut {
            key: locator.identifier.clone(),
            error: e,
        });
    }
    let client = clients.kms_in(&account, &locator.region);
    match kms::describe_key(&client, &locator.identifier).await {
        Ok(key) => classify(clients, common, key, None).await,
        Err(e) if e.is_not_found() => Ok(Resolution::NotOurs(format!(
            "key {} no longer exists",
            crate::base::text::value(&locator.identifier)
        ))),
        Err(e) if e.is_access_denied() => {
            if known_managed(clients, common, locator, &account).await {
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
    if !clients.serves(&key.account, &common.account_id) {
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
        None => {
            management(
                &common.managed,
                &clients.kms_in(&key.account, &key.region),
                &key,
            )
            .await?
        }
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
async fn known_managed(
    clients: &AwsClients,
    common: &CommonConfig,
    locator: &KeyLocator,
    account: &str,
) -> bool {
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
            tagging::key_has_tag(
                &clients.tagging_in(account, &locator.region),
                &arn,
                key,
                value,
            )
            .await
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, "cannot tell whether the key is managed");
                false
            })
        }
    }
}

#[cfg(test)]
mod tests;
