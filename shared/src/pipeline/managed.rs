//! Which keys the guardrails manage: those with the managed tag, or exactly the configured list.

use aws_sdk_kms::Client;

use crate::aws::kms::{self, KeyInfo};
use crate::base::error::GuardrailError;
use crate::base::region::Region;
use crate::config::ManagedSelector;
use crate::triggers::events::KeyLocator;

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
        ManagedSelector::Tag { .. } => {
            let tags = kms::tags(client, key.arn.as_str()).await?;
            Ok(by_tags(selector, &tags))
        }
        ManagedSelector::Keys(_) => {
            if listed_by_id(selector, key) {
                return Ok(Management::Managed);
            }
            if listed_aliases(selector, &key.region).is_empty() {
                return Ok(Management::Unmanaged("not in MANAGED_KEYS".into()));
            }
            let names = kms::aliases(client, &key.key_id).await?;
            Ok(by_aliases(selector, key, &names))
        }
    }
}

/// The decision from the key's tags, for the tag selector.
pub fn by_tags(selector: &ManagedSelector, tags: &[(String, String)]) -> Management {
    let ManagedSelector::Tag {
        key: tag_key,
        value,
    } = selector
    else {
        return Management::Unmanaged("keys are selected by MANAGED_KEYS, not by tag".into());
    };
    match tags.iter().find(|(k, _)| k == tag_key) {
        Some((_, v)) if v == value => Management::Managed,
        Some((_, v)) => Management::Unmanaged(format!(
            "tag {tag_key}={}, not {tag_key}={value}",
            crate::base::text::value(v)
        )),
        None => Management::Unmanaged(format!("no {tag_key} tag")),
    }
}

/// True when MANAGED_KEYS names the key by id or ARN.
pub fn listed_by_id(selector: &ManagedSelector, key: &KeyInfo) -> bool {
    let ManagedSelector::Keys(entries) = selector else {
        return false;
    };
    entries
        .iter()
        .filter_map(|e| KeyLocator::parse(e, &key.region).ok())
        .any(|l| {
            l.identifier == key.arn.as_str()
                || (l.identifier == key.key_id && l.region == key.region)
        })
}

/// The alias names MANAGED_KEYS lists for `region` (`alias/...`).
pub fn listed_aliases(selector: &ManagedSelector, region: &Region) -> Vec<String> {
    let ManagedSelector::Keys(entries) = selector else {
        return Vec::new();
    };
    entries
        .iter()
        .filter_map(|e| KeyLocator::parse(e, region).ok())
        .filter(|l| l.region == *region)
        .filter_map(|l| {
            let name = l
                .identifier
                .rsplit_once(':')
                .map_or(l.identifier.as_str(), |(_, n)| n);
            name.starts_with("alias/").then(|| name.to_string())
        })
        .collect()
}

/// The decision from the key's alias names, for the list selector.
pub fn by_aliases(selector: &ManagedSelector, key: &KeyInfo, names: &[String]) -> Management {
    if listed_by_id(selector, key) {
        return Management::Managed;
    }
    let listed = listed_aliases(selector, &key.region);
    if names.iter().any(|n| listed.contains(n)) {
        Management::Managed
    } else {
        Management::Unmanaged("not in MANAGED_KEYS".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(region: &str) -> KeyInfo {
        KeyInfo::unreadable(
            &format!("arn:aws:kms:{region}:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"),
            &Region::parse(region).unwrap(),
            "111122223333",
        )
    }

    #[test]
    fn the_tag_decides_with_its_value() {
        let selector = ManagedSelector::Tag {
            key: "guardrails:managed".into(),
            value: "true".into(),
        };
        let tags = |v: &str| vec![("guardrails:managed".to_string(), v.to_string())];
        assert_eq!(by_tags(&selector, &tags("true")), Management::Managed);
        assert_eq!(
            by_tags(&selector, &tags("false\nforged")),
            Management::Unmanaged(
                "tag guardrails:managed=false\\nforged, not guardrails:managed=true".into()
            )
        );
        assert_eq!(
            by_tags(&selector, &[]),
            Management::Unmanaged("no guardrails:managed tag".into())
        );
    }

    #[test]
    fn a_list_names_keys_by_arn_by_id_in_the_home_region_or_by_alias_in_their_region() {
        let by_arn = ManagedSelector::Keys(vec![key("us-east-1").arn.to_string()]);
        assert!(listed_by_id(&by_arn, &key("us-east-1")));
        assert!(
            !listed_by_id(&by_arn, &key("eu-west-1")),
            "same id, other Region"
        );
        let aliases = ManagedSelector::Keys(vec![
            "alias/app-data".into(),
            "arn:aws:kms:us-east-1:111122223333:alias/billing".into(),
        ]);
        assert_eq!(
            listed_aliases(&aliases, &Region::parse("us-east-1").unwrap()),
            ["alias/app-data", "alias/billing"]
        );
        assert_eq!(
            by_aliases(&aliases, &key("us-east-1"), &["alias/billing".to_string()]),
            Management::Managed
        );
        assert_eq!(
            by_aliases(&aliases, &key("us-east-1"), &["alias/other".to_string()]),
            Management::Unmanaged("not in MANAGED_KEYS".into())
        );
    }
}
