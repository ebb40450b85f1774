//! Keys entering and leaving management, read from the CloudTrail call that did it: the
//! managed tag added, changed or removed, or a MANAGED_KEYS alias created, moved or deleted.
//! Both are announced with who did it; leaving writes nothing, since retiring a key this way
//! is legitimate (and also how someone could change a key unwatched).

use serde_json::Value;

use crate::config::ManagedSelector;
use crate::error::GuardrailError;
use crate::events::{CloudTrailDetail, KeyLocator};
use crate::kms::KeyInfo;
use crate::outcome::{Finding, FindingKind, KeyOutcome, Severity, Status};
use crate::pipeline::Audit;

fn request_key(detail: &CloudTrailDetail, region: &str) -> Result<KeyLocator, GuardrailError> {
    let target = detail
        .request_parameters
        .as_ref()
        .and_then(|p| p.get("targetKeyId"));
    let target = target.and_then(Value::as_str).ok_or_else(|| {
        GuardrailError::InvalidEvent(format!(
            "UpdateAlias event {} names no targetKeyId",
            detail.event_id()
        ))
    })?;
    KeyLocator::parse(target, region).map_err(GuardrailError::InvalidEvent)
}

/// The key an alias named before UpdateAlias moved it: the other key in the record's resources.
fn previous_alias_target(
    detail: &CloudTrailDetail,
    target: &KeyLocator,
    region: &str,
) -> Option<KeyLocator> {
    let new_id = target
        .identifier
        .rsplit('/')
        .next()
        .unwrap_or(&target.identifier);
    detail
        .resources
        .iter()
        .filter_map(|r| r.arn.as_deref())
        .filter(|arn| arn.contains(":key/") && !arn.ends_with(new_id))
        .find_map(|arn| KeyLocator::parse(arn, region).ok())
}

fn request_value<'a>(detail: &'a CloudTrailDetail, name: &str) -> Option<&'a Value> {
    detail.request_parameters.as_ref().and_then(|p| p.get(name))
}

/// The managed tag as this call set it, if it did (CreateKey and TagResource spell tags alike).
fn sets_managed_tag(detail: &CloudTrailDetail, selector: &ManagedSelector) -> Option<bool> {
    let ManagedSelector::Tag { key, value } = selector else {
        return None;
    };
    let tags = request_value(detail, "tags").and_then(Value::as_array)?;
    let tag = tags
        .iter()
        .find(|t| t.get("tagKey").and_then(Value::as_str) == Some(key))?;
    Some(tag.get("tagValue").and_then(Value::as_str) == Some(value))
}

fn names_listed_alias(detail: &CloudTrailDetail, selector: &ManagedSelector, region: &str) -> bool {
    let alias = request_value(detail, "aliasName").and_then(Value::as_str);
    alias.is_some_and(|a| {
        crate::managed::listed_aliases(selector, region)
            .iter()
            .any(|l| l == a)
    })
}

/// The enrolment finding when this call made `key` managed.
pub fn enrolment(
    function: &str,
    detail: &CloudTrailDetail,
    selector: &ManagedSelector,
    key: &KeyInfo,
) -> Option<Finding> {
    let how = match detail.event_name.as_str() {
        "CreateKey" | "TagResource" if sets_managed_tag(detail, selector) == Some(true) => {
            "it was given the managed tag"
        }
        "CreateAlias" | "UpdateAlias" if names_listed_alias(detail, selector, &key.region) => {
            "a MANAGED_KEYS alias now points at it"
        }
        _ => return None,
    };
    Some(Finding::new(
        FindingKind::Enrolled,
        format!(
            "the key became managed by {function}: {how} ({} by {})",
            detail.event_name,
            crate::text::value(&detail.actor())
        ),
    ))
}

/// How this call took a key out of management, if it did.
pub fn left_management(detail: &CloudTrailDetail, selector: &ManagedSelector) -> Option<String> {
    let region = detail.aws_region.as_deref().unwrap_or_default();
    match detail.event_name.as_str() {
        "UntagResource" => {
            let ManagedSelector::Tag { key, .. } = selector else {
                return None;
            };
            let keys = request_value(detail, "tagKeys").and_then(Value::as_array)?;
            keys.iter()
                .any(|k| k.as_str() == Some(key))
                .then(|| format!("the managed tag {key} was removed"))
        }
        "TagResource" => (sets_managed_tag(detail, selector) == Some(false))
            .then(|| "the managed tag was given another value".into()),
        "DeleteAlias" | "UpdateAlias" if names_listed_alias(detail, selector, region) => {
            Some(format!(
                "the MANAGED_KEYS alias {} no longer points at it ({})",
                crate::text::value(
                    request_value(detail, "aliasName")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                ),
                detail.event_name
            ))
        }
        _ => None,
    }
}

/// Announces that a key left management. Writes nothing: retiring a key this way is legitimate.
pub fn left_audit(function: &str, key: &KeyInfo, reason: &str, how: &str) -> Audit {
    let mut outcome = KeyOutcome::new(key);
    outcome.status = Status::Reported;
    outcome.findings.push(Finding::new(
        FindingKind::LeftManagement,
        format!("{how} ({reason}): {function} no longer guards this key"),
    ));
    Audit {
        outcome,
        failure: None,
        headline: "KMS key left guardrails management".into(),
        severity: Severity::High,
        guidance: Some(format!("Nothing was changed. If this was not a planned retirement, put the key back under management (the tag or the alias), for example:\n  aws kms tag-resource --region {} --key-id {} --tags TagKey=<managed tag>,TagValue=<value>", key.region, key.key_id)),
    }
}

/// The keys an event is about: the one it names, and for UpdateAlias both the key the alias
/// left and the key it now names.
pub fn event_keys(
    detail: &CloudTrailDetail,
    default_region: &str,
) -> Result<Vec<KeyLocator>, GuardrailError> {
    if detail.event_name != "UpdateAlias" {
        return Ok(vec![detail.key_locator(default_region)?]);
    }
    let target = request_key(detail, default_region)?;
    Ok(previous_alias_target(detail, &target, default_region)
        .into_iter()
        .chain([target])
        .collect())
}
