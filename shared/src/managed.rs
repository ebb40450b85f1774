//! Which keys the guardrails manage: those with the managed tag, or exactly the configured list.

use aws_sdk_kms::Client;

use crate::config::ManagedSelector;
use crate::error::GuardrailError;
use crate::events::KeyLocator;
use crate::kms::{self, KeyInfo};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Management {
    Managed,
    /// Not ours to touch, with the reason for the log.
    Unmanaged(String),
}

/// Decides whether `key` is managed, with at most one extra read (its tags or its aliases).
pub async fn management(
    selector: &ManagedSelector,
    client: &Client,
    key: &KeyInfo,
) -> Result<Management, GuardrailError> {
    if !key.customer_managed {
        return Ok(Management::Unmanaged(
            "AWS managed key: its policy is not ours to change".into(),
        ));
    }
    match selector {
        ManagedSelector::Tag {
            key: tag_key,
            value,
        } => {
            let tags = kms::tags(client, &key.arn).await?;
            let found = tags.iter().find(|(k, _)| k == tag_key);
            Ok(match found {
                Some((_, v)) if v == value => Management::Managed,
                Some((_, v)) => {
                    Management::Unmanaged(format!("tag {tag_key}={v}, not {tag_key}={value}"))
                }
                None => Management::Unmanaged(format!("no {tag_key} tag")),
            })
        }
        ManagedSelector::Keys(entries) => {
            let locators: Vec<KeyLocator> = entries
                .iter()
                .filter_map(|e| KeyLocator::parse(e, &key.region).ok())
                .collect();
            let by_id = locators
                .iter()
                .any(|l| l.identifier == key.arn || (l.identifier == key.key_id));
            if by_id {
                return Ok(Management::Managed);
            }
            let alias_entries: Vec<&KeyLocator> = locators
                .iter()
                .filter(|l| {
                    l.region == key.region
                        && (l.identifier.starts_with("alias/") || l.identifier.contains(":alias/"))
                })
                .collect();
            if !alias_entries.is_empty() {
                let names = kms::aliases(client, &key.key_id).await?;
                let listed = alias_entries.iter().any(|l| {
                    let name = l
                        .identifier
                        .rsplit_once(':')
                        .map_or(l.identifier.as_str(), |(_, n)| n);
                    names.iter().any(|n| n == name)
                });
                if listed {
                    return Ok(Management::Managed);
                }
            }
            Ok(Management::Unmanaged("not in MANAGED_KEYS".into()))
        }
    }
}
