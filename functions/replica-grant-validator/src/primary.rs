//! Where an event or sweep about a multi-Region key leads: its primary, when the primary or
//! the key named is managed. This is the validator's `Guardrail::target`.

use shared::pipeline::resolve::{resolve, Resolution};
use shared::triggers::events::KeyLocator;
use shared::GuardrailError;

use crate::deps::Deps;

/// A replica leads to its primary. A set counts as managed when its primary is, or when the
/// key named is (tags are not shared, and UpdatePrimaryRegion leaves the managed tag on what
/// is now a replica). A single-Region key is not the validator's.
pub async fn target(deps: &Deps, resolved: Resolution) -> Result<Resolution, GuardrailError> {
    let (key, named_managed, reason) = match resolved {
        Resolution::Managed(key) => (key, true, String::new()),
        Resolution::Unmanaged { key, reason } => (key, false, reason),
        other @ (Resolution::NotOurs(_) | Resolution::ShutOut { .. }) => return Ok(other),
    };
    if !key.multi_region {
        return Ok(Resolution::NotOurs(format!(
            "single-Region key {}: it has no replicas to validate",
            key.arn
        )));
    }
    let Some(primary_arn) = key.primary_arn.clone().filter(|_| key.is_replica()) else {
        return Ok(if named_managed {
            Resolution::Managed(key)
        } else {
            Resolution::Unmanaged { key, reason }
        });
    };
    let primary = KeyLocator::parse(&primary_arn, &key.region).map_err(|e| {
        GuardrailError::InvalidEvent(format!(
            "DescribeKey named a primary that is not a key ARN: {e}"
        ))
    })?;
    Ok(
        match resolve(&deps.clients, &deps.config.common, &primary, None).await? {
            Resolution::Managed(primary) => Resolution::Managed(primary),
            Resolution::Unmanaged { key: primary, .. } if named_managed => {
                Resolution::Managed(primary)
            }
            Resolution::Unmanaged { reason, .. } | Resolution::NotOurs(reason) => {
                let reason = format!("replica of {primary_arn}, which is not managed: {reason}");
                if named_managed {
                    Resolution::NotOurs(reason)
                } else {
                    // The key named is the one an event may have taken out of management.
                    Resolution::Unmanaged { key, reason }
                }
            }
            shut_out @ Resolution::ShutOut { .. } => shut_out,
        },
    )
}
