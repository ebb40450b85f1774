//! Keys entering and leaving management, read from the CloudTrail call that did it: the
//! managed tag added, changed or removed, or a MANAGED_KEYS alias created, moved or deleted.
//! Both are announced with who did it; leaving writes nothing, since retiring a key this way
//! is legitimate (and also how someone could change a key unwatched).

use serde_json::Value;

use crate::aws::kms::KeyInfo;
use crate::base::error::GuardrailError;
use crate::base::region::Region;
use crate::config::ManagedSelector;
use crate::notify::outcome::{Finding, FindingKind, KeyOutcome, Severity, Status};
use crate::pipeline::audit::Audit;
use crate::triggers::events::{CloudTrailDetail, KeyLocator};

fn request_key(detail: &CloudTrailDetail, region: &Region) -> Result<KeyLocator, GuardrailError> {
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
    region: &Region,
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

fn names_listed_alias(
    detail: &CloudTrailDetail,
    selector: &ManagedSelector,
    region: &Region,
) -> bool {
    let alias = request_value(detail, "aliasName").and_then(Value::as_str);
    alias.is_some_and(|a| {
        crate::pipeline::managed::listed_aliases(selector, region)
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
        "CreateAlias" if names_listed_alias(detail, selector, &key.region) => {
            "a MANAGED_KEYS alias now points at it"
        }
        // CloudTrail does not record which key the alias named before, so say so.
        "UpdateAlias" if names_listed_alias(detail, selector, &key.region) => {
            "a MANAGED_KEYS alias was moved to it, so the key it named before is no longer guarded through that alias"
        }
        _ => return None,
    };
    Some(Finding::new(
        FindingKind::Enrolled,
        format!(
            "the key became managed by {function}: {how} ({} by {})",
            detail.event_name,
            crate::base::text::value(&detail.actor())
        ),
    ))
}

/// How a call took a key out of management, and the command that puts it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Departure {
    pub how: String,
    pub undo: String,
}

/// How this call took `key` out of management, if it did.
pub fn left_management(
    detail: &CloudTrailDetail,
    selector: &ManagedSelector,
    key: &KeyInfo,
) -> Option<Departure> {
    let (region, id) = (&key.region, &key.key_id);
    match (detail.event_name.as_str(), selector) {
        ("UntagResource", ManagedSelector::Tag { key: tag, value }) => {
            let keys = request_value(detail, "tagKeys").and_then(Value::as_array)?;
            keys.iter().any(|k| k.as_str() == Some(tag)).then(|| Departure {
                how: format!("the managed tag {tag}={value} was removed"),
                undo: format!("aws kms tag-resource --region {region} --key-id {id} --tags TagKey={tag},TagValue={value}"),
            })
        }
        ("TagResource", ManagedSelector::Tag { key: tag, value }) => {
            (sets_managed_tag(detail, selector) == Some(false)).then(|| Departure {
                how: format!("the managed tag {tag}={value} was given another value"),
                undo: format!("aws kms tag-resource --region {region} --key-id {id} --tags TagKey={tag},TagValue={value}"),
            })
        }
        ("DeleteAlias" | "UpdateAlias", _) if names_listed_alias(detail, selector, region) => {
            let alias = crate::base::text::value(
                request_value(detail, "aliasName")
                    .and_then(Value::as_str)
                    .unwrap_or_default(),
            );
            let verb = if detail.event_name == "DeleteAlias" { "create-alias" } else { "update-alias" };
            Some(Departure {
                how: format!("the MANAGED_KEYS alias {alias} no longer points at it ({})", detail.event_name),
                undo: format!("aws kms {verb} --region {region} --alias-name {alias} --target-key-id {id}"),
            })
        }
        _ => None,
    }
}

/// Announces that a key left management. Writes nothing: retiring a key this way is legitimate.
pub fn left_audit(function: &str, key: &KeyInfo, reason: &str, departure: &Departure) -> Audit {
    let mut outcome = KeyOutcome::new(key);
    outcome.status = Status::Reported;
    outcome.findings.push(Finding::new(
        FindingKind::LeftManagement,
        format!(
            "{} ({reason}): {function} no longer guards this key",
            departure.how
        ),
    ));
    Audit {
        outcome,
        failure: None,
        headline: "KMS key left guardrails management".into(),
        severity: Severity::High,
        guidance: Some(format!(
            "Nothing was changed. If this was not a planned retirement, put the key back under management:\n  {}",
            departure.undo
        )),
        ..Audit::new(KeyOutcome::new(key), None, "")
    }
}

/// The keys an event is about: the one it names, the new replica for ReplicateKey, and for
/// UpdateAlias both the key the alias left and the key it now names.
pub fn event_keys(
    detail: &CloudTrailDetail,
    default_region: &Region,
) -> Result<Vec<KeyLocator>, GuardrailError> {
    if detail.event_name == "ReplicateKey" {
        // The new replica, in its own Region: it starts with the default (root only) policy.
        if let Some(replica) = detail
            .response_elements
            .as_ref()
            .and_then(|r| r.pointer("/replicaKeyMetadata/arn"))
            .and_then(Value::as_str)
        {
            return KeyLocator::parse(replica, default_region)
                .map(|l| vec![l])
                .map_err(GuardrailError::InvalidEvent);
        }
    }
    if detail.event_name != "UpdateAlias" {
        return Ok(vec![detail.key_locator(default_region)?]);
    }
    let target = request_key(detail, default_region)?;
    Ok(previous_alias_target(detail, &target, default_region)
        .into_iter()
        .chain([target])
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::triggers::events::{parse_trigger, Trigger};

    fn detail(sample: &str) -> CloudTrailDetail {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../events/policy-drift")
            .join(sample);
        let payload = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        match parse_trigger(&payload).unwrap() {
            Trigger::CloudTrail(event) => event.detail,
            other => panic!("{sample}: {other:?}"),
        }
    }

    fn key() -> KeyInfo {
        KeyInfo::unreadable(
            "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            &Region::parse("eu-west-1").unwrap(),
            "111122223333",
        )
    }

    fn tag() -> ManagedSelector {
        ManagedSelector::Tag {
            key: "guardrails:managed".into(),
            value: "true".into(),
        }
    }

    fn by_alias() -> ManagedSelector {
        ManagedSelector::Keys(vec!["alias/app-data".into()])
    }

    #[test]
    fn tagging_and_creating_with_the_tag_enrol_and_name_who_did_it() {
        for sample in ["tag-resource.json", "create-key.json"] {
            let finding = enrolment("policy-drift", &detail(sample), &tag(), &key()).unwrap();
            assert_eq!(finding.kind, FindingKind::Enrolled);
            assert!(
                finding.summary.contains("it was given the managed tag"),
                "{sample}"
            );
            assert!(
                finding.summary.contains("assumed-role/Developer/alice"),
                "{sample}"
            );
        }
        assert!(enrolment(
            "policy-drift",
            &detail("tag-resource.json"),
            &by_alias(),
            &key()
        )
        .is_none());
    }

    #[test]
    fn a_listed_alias_created_or_moved_enrols_the_key() {
        assert!(enrolment(
            "policy-drift",
            &detail("create-alias.json"),
            &by_alias(),
            &key()
        )
        .is_some());
        let moved = enrolment(
            "policy-drift",
            &detail("update-alias.json"),
            &by_alias(),
            &key(),
        )
        .unwrap();
        assert!(moved
            .summary
            .contains("the key it named before is no longer guarded"));
        let other = ManagedSelector::Keys(vec!["alias/other".into()]);
        assert!(enrolment("policy-drift", &detail("create-alias.json"), &other, &key()).is_none());
    }

    #[test]
    fn removing_the_tag_or_deleting_a_listed_alias_is_a_departure_with_its_undo() {
        let untag = left_management(&detail("untag-resource.json"), &tag(), &key()).unwrap();
        assert_eq!(
            untag.how,
            "the managed tag guardrails:managed=true was removed"
        );
        assert_eq!(untag.undo, "aws kms tag-resource --region eu-west-1 --key-id 1234abcd-12ab-34cd-56ef-1234567890ab --tags TagKey=guardrails:managed,TagValue=true");
        let deleted = left_management(&detail("delete-alias.json"), &by_alias(), &key()).unwrap();
        assert_eq!(deleted.undo, "aws kms create-alias --region eu-west-1 --alias-name alias/app-data --target-key-id 1234abcd-12ab-34cd-56ef-1234567890ab");
        assert!(left_management(&detail("put-key-policy.json"), &tag(), &key()).is_none());
        assert!(
            left_management(&detail("tag-resource.json"), &tag(), &key()).is_none(),
            "the tag set to its managed value is not a departure"
        );
    }

    #[test]
    fn alias_events_name_their_keys() {
        let keys = event_keys(
            &detail("update-alias.json"),
            &Region::parse("eu-west-1").unwrap(),
        )
        .unwrap();
        assert_eq!(
            keys.len(),
            1,
            "AWS's record names only the key the alias now points at"
        );
        assert_eq!(keys[0].identifier, "1234abcd-12ab-34cd-56ef-1234567890ab");
        let deleted = event_keys(
            &detail("delete-alias.json"),
            &Region::parse("eu-west-1").unwrap(),
        )
        .unwrap();
        assert_eq!(
            deleted[0].identifier,
            "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            "from responseElements.keyId: the resources name only the alias"
        );
    }
}
