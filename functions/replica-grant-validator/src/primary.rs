//! Where an event about a multi-Region key leads: its primary, when the primary or the key
//! named is managed.

use shared::aws::kms::KeyInfo;
use shared::pipeline::resolve::{resolve, Resolution};
use shared::triggers::events::KeyLocator;
use shared::GuardrailError;

use crate::deps::Deps;

/// The primary an event leads to, or why there is none.
pub enum Target {
    Primary(KeyInfo),
    Skip(String),
    ShutOut { key: KeyInfo, error: GuardrailError },
}

/// An event about a replica resolves to its primary. A key counts as managed when its
/// primary is, or when the key named is (tags are not shared, and UpdatePrimaryRegion
/// leaves the managed tag on what is now a replica).
pub async fn primary_of(deps: &Deps, locator: &KeyLocator) -> Result<Target, GuardrailError> {
    let common = &deps.config.common;
    let (key, named_managed, reason) = match resolve(&deps.clients, common, locator).await? {
        Resolution::Managed(key) => (key, true, String::new()),
        Resolution::Unmanaged { key, reason } => (key, false, reason),
        Resolution::NotOurs(reason) => return Ok(Target::Skip(reason)),
        Resolution::ShutOut { key, error } => {
            let key = KeyInfo::unreadable(&key, &locator.region, &common.account_id);
            return Ok(Target::ShutOut { key, error });
        }
    };
    if !key.multi_region {
        return Ok(Target::Skip(format!(
            "single-Region key {}: it has no replicas to validate",
            key.arn
        )));
    }
    let Some(primary_arn) = key.primary_arn.clone().filter(|_| key.is_replica()) else {
        return Ok(if named_managed {
            Target::Primary(key)
        } else {
            Target::Skip(reason)
        });
    };
    let primary = KeyLocator::parse(&primary_arn, &locator.region).map_err(|e| {
        GuardrailError::InvalidEvent(format!(
            "DescribeKey named a primary that is not a key ARN: {e}"
        ))
    })?;
    Ok(match resolve(&deps.clients, common, &primary).await? {
        Resolution::Managed(primary) => Target::Primary(primary),
        Resolution::Unmanaged { key: primary, .. } if named_managed => Target::Primary(primary),
        Resolution::Unmanaged { reason, .. } | Resolution::NotOurs(reason) => Target::Skip(
            format!("replica of {}, which is not managed: {reason}", primary_arn),
        ),
        Resolution::ShutOut { key, error } => Target::ShutOut {
            key: KeyInfo::unreadable(&key, &primary.region, &common.account_id),
            error,
        },
    })
}
