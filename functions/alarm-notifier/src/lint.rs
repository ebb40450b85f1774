//! Alarms that can never fire: CloudWatch alarms in the `AWS/KMS` namespace on a metric, or a
//! dimension set, that AWS KMS does not publish.
//!
//! CloudWatch identifies a metric by namespace, name and the exact set of dimensions. An alarm on
//! a combination nobody publishes is accepted by `PutMetricAlarm` and then stays in
//! `INSUFFICIENT_DATA` (or `OK` with `TreatMissingData: notBreaching`) forever. The Terraform
//! reference modules alarm on `DecryptCount` and on KMS `AccessDenied` errors in `AWS/KMS`;
//! neither exists there.
//!
//! What `AWS/KMS` holds, from the AWS KMS Developer Guide, "Monitor KMS keys with Amazon
//! CloudWatch" (<https://docs.aws.amazon.com/kms/latest/developerguide/monitoring-cloudwatch.html>,
//! section "AWS KMS metrics and dimensions"):
//!
//! | Metric | Dimensions |
//! | --- | --- |
//! | `SuccessfulRequest` | `KeyArn`, `Operation` (cryptographic operations only); for ReEncrypt `SourceKeyArn`, `DestinationKeyArn`, `Operation` |
//! | `SecondsUntilKeyMaterialExpiration` | `KeyId` (imported key material with an expiration date) |
//! | `CloudHSMKeyStoreThrottle` | `CustomKeyStoreId`, `KmsOperation`, `KeySpec` |
//! | `ExternalKeyStoreThrottle` | `CustomKeyStoreId`, `KmsOperation`, `KeySpec` |
//! | `XksProxyCertificateDaysToExpire` | `CustomKeyStoreId`, `CertificateName` |
//! | `XksProxyCredentialAge` | `CustomKeyStoreId` |
//! | `XksProxyErrors` | `CustomKeyStoreId`, `KmsOperation`, `XksOperation`, `KeySpec`, `ErrorType`, `ExceptionName` |
//! | `XksExternalKeyManagerStates` | `CustomKeyStoreId`, `XksExternalKeyManagerState` |
//! | `XksProxyLatency` | `CustomKeyStoreId`, `KmsOperation`, `XksOperation`, `KeySpec` |
//!
//! The only per-key usage metric is `SuccessfulRequest` (by `KeyArn` and `Operation`): there is no
//! `DecryptCount`, no per-key error or `AccessDenied` count, no key state metric. Denied calls,
//! disabled keys, scheduled deletions and key policy changes are visible only in CloudTrail, so
//! the alarms that work are on CloudWatch Logs metric filters over the CloudTrail log group: the
//! `KMSGuardrails/*` alarms `template.yaml` creates when `CloudTrailLogGroupName` is set.
//!
//! The check is deliberately lenient where the documentation is: for a published metric it
//! flags a dimension the metric never carries, a missing key dimension on a per-key metric and an
//! alias as the `KeyId` value; it does not demand one exact dimension combination.

/// The namespace AWS KMS publishes its metrics in.
pub const KMS_NAMESPACE: &str = "AWS/KMS";

/// The namespace of the metric filters `template.yaml` creates on the CloudTrail log group.
pub const GUARDRAILS_NAMESPACE: &str = "KMSGuardrails";

/// One metric an alarm watches. A metric-math alarm contributes one entry per `MetricStat`;
/// a composite alarm none (it watches alarms, not metrics).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlarmOnMetric {
    pub alarm_name: String,
    pub alarm_arn: String,
    pub namespace: String,
    pub metric_name: String,
    pub dimensions: Vec<(String, String)>,
}

/// An alarm that can never fire, why, and the alarm that would work instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Silent {
    pub alarm_name: String,
    pub alarm_arn: String,
    pub metric_name: String,
    pub why: String,
    /// The alarm that would work instead.
    pub instead: String,
}

/// A metric AWS KMS publishes and the dimension names it is published with.
struct Published {
    name: &'static str,
    dimensions: &'static [&'static str],
    /// At least one of these must be present (the metric is per key or per key store).
    requires_one_of: &'static [&'static str],
}

const PUBLISHED: &[Published] = &[
    Published {
        name: "SuccessfulRequest",
        dimensions: &["KeyArn", "Operation", "SourceKeyArn", "DestinationKeyArn"],
        requires_one_of: &["KeyArn", "SourceKeyArn", "DestinationKeyArn"],
    },
    Published {
        name: "SecondsUntilKeyMaterialExpiration",
        dimensions: &["KeyId"],
        requires_one_of: &["KeyId"],
    },
    Published {
        name: "CloudHSMKeyStoreThrottle",
        dimensions: &["CustomKeyStoreId", "KmsOperation", "KeySpec"],
        requires_one_of: &["CustomKeyStoreId"],
    },
    Published {
        name: "ExternalKeyStoreThrottle",
        dimensions: &["CustomKeyStoreId", "KmsOperation", "KeySpec"],
        requires_one_of: &["CustomKeyStoreId"],
    },
    Published {
        name: "XksProxyCertificateDaysToExpire",
        dimensions: &["CustomKeyStoreId", "CertificateName"],
        requires_one_of: &["CustomKeyStoreId"],
    },
    Published {
        name: "XksProxyCredentialAge",
        dimensions: &["CustomKeyStoreId"],
        requires_one_of: &["CustomKeyStoreId"],
    },
    Published {
        name: "XksProxyErrors",
        dimensions: &[
            "CustomKeyStoreId",
            "KmsOperation",
            "XksOperation",
            "KeySpec",
            "ErrorType",
            "ExceptionName",
        ],
        requires_one_of: &["CustomKeyStoreId"],
    },
    Published {
        name: "XksExternalKeyManagerStates",
        dimensions: &["CustomKeyStoreId", "XksExternalKeyManagerState"],
        requires_one_of: &["CustomKeyStoreId"],
    },
    Published {
        name: "XksProxyLatency",
        dimensions: &[
            "CustomKeyStoreId",
            "KmsOperation",
            "XksOperation",
            "KeySpec",
        ],
        requires_one_of: &["CustomKeyStoreId"],
    },
];

const METRICS_DOC: &str = "AWS KMS Developer Guide, \"Monitor KMS keys with Amazon CloudWatch\"";

const DECRYPT_INSTEAD: &str =
    "the KMSGuardrails/DecryptCalls alarm on the CloudTrail metric filter \
(template parameter CloudTrailLogGroupName)";
const ACCESS_DENIED_INSTEAD: &str =
    "the KMSGuardrails/AccessDenied alarm on the CloudTrail metric \
filter (template parameter CloudTrailLogGroupName)";
const KEY_STATE_INSTEAD: &str = "the KMSGuardrails/KeyDisabledOrScheduledForDeletion alarm on the \
CloudTrail metric filter (template parameter CloudTrailLogGroupName)";
const KEY_POLICY_INSTEAD: &str =
    "the KMSGuardrails/KeyPolicyChanged alarm on the CloudTrail metric \
filter (template parameter CloudTrailLogGroupName)";
const USAGE_INSTEAD: &str = "an alarm on AWS/KMS SuccessfulRequest with dimensions KeyArn (the key's \
ARN) and Operation (e.g. Decrypt), or the KMSGuardrails/DecryptCalls alarm on the CloudTrail metric \
filter (template parameter CloudTrailLogGroupName)";

/// Whether AWS KMS publishes a metric of this name in `AWS/KMS` (with some dimensions).
pub fn is_published_metric(name: &str) -> bool {
    PUBLISHED.iter().any(|p| p.name == name)
}

/// Every alarm in `alarms` that watches a metric in `AWS/KMS` that AWS does not publish (or
/// publishes with other dimensions), in input order. Alarms in other namespaces are ignored.
/// A metric-math alarm comes once per metric it reads; it is reported once, for the first.
pub fn silent_alarms(alarms: &[AlarmOnMetric]) -> Vec<Silent> {
    let mut seen = std::collections::HashSet::new();
    alarms
        .iter()
        .filter_map(check)
        .filter(|s| seen.insert((s.alarm_arn.clone(), s.alarm_name.clone())))
        .collect()
}

fn check(alarm: &AlarmOnMetric) -> Option<Silent> {
    if alarm.namespace != KMS_NAMESPACE {
        return None;
    }
    let silent = |why: String, instead: String| Silent {
        alarm_name: alarm.alarm_name.clone(),
        alarm_arn: alarm.alarm_arn.clone(),
        metric_name: alarm.metric_name.clone(),
        why,
        instead,
    };
    let Some(published) = PUBLISHED.iter().find(|p| p.name == alarm.metric_name) else {
        return Some(unpublished(alarm, silent));
    };

    let unknown: Vec<&str> = alarm
        .dimensions
        .iter()
        .map(|(name, _)| name.as_str())
        .filter(|name| !published.dimensions.contains(name))
        .collect();
    if !unknown.is_empty() {
        return Some(silent(
            format!(
                "AWS/KMS publishes {} only with the dimensions {} ({METRICS_DOC}); the alarm also \
                 filters on {}, a dimension set that never receives data points.",
                published.name,
                published.dimensions.join(", "),
                unknown.join(", "),
            ),
            format!(
                "the same alarm on {} with dimensions from {} only",
                published.name,
                published.dimensions.join(", ")
            ),
        ));
    }
    if !alarm
        .dimensions
        .iter()
        .any(|(name, _)| published.requires_one_of.contains(&name.as_str()))
    {
        return Some(silent(
            format!(
                "AWS/KMS publishes {} per {} only ({METRICS_DOC}); without that dimension the \
                 alarm watches an aggregate that is never published.",
                published.name,
                published.requires_one_of.join(" or "),
            ),
            format!(
                "one alarm per key or key store on {} with the dimension {}",
                published.name,
                published.requires_one_of.join(" or ")
            ),
        ));
    }
    if let Some((_, value)) = alarm
        .dimensions
        .iter()
        .find(|(name, value)| name == "KeyId" && value.starts_with("alias/"))
    {
        return Some(silent(
            format!(
                "The KeyId dimension of {} is the key's id, not an alias; no data is published \
                 for KeyId={value}.",
                published.name
            ),
            format!(
                "the same alarm on {} with KeyId set to the key id the alias points to",
                published.name
            ),
        ));
    }
    None
}

fn unpublished(alarm: &AlarmOnMetric, silent: impl Fn(String, String) -> Silent) -> Silent {
    let name = alarm.metric_name.as_str();
    let lower = name.to_ascii_lowercase();

    if let Some(p) = PUBLISHED.iter().find(|p| p.name.eq_ignore_ascii_case(name)) {
        return silent(
            format!(
                "CloudWatch metric names are case-sensitive: AWS/KMS publishes {}, not {name}.",
                p.name
            ),
            format!("the same alarm on {}", p.name),
        );
    }

    let published_list = PUBLISHED
        .iter()
        .map(|p| p.name)
        .collect::<Vec<_>>()
        .join(", ");
    let base = format!(
        "AWS does not publish {name} in AWS/KMS; the namespace holds only {published_list} \
         ({METRICS_DOC})."
    );
    let any = |words: &[&str]| words.iter().any(|w| lower.contains(w));

    let (extra, instead) = if any(&[
        "denied",
        "unauthori",
        "forbidden",
        "error",
        "fail",
        "reject",
    ]) {
        (
            " KMS reports denied and failed calls only in CloudTrail (errorCode), not as a metric.",
            ACCESS_DENIED_INSTEAD,
        )
    } else if any(&[
        "disable",
        "deletion",
        "delete",
        "schedule",
        "keystate",
        "key_state",
    ]) {
        (
            " Key state changes (DisableKey, ScheduleKeyDeletion) appear only in CloudTrail.",
            KEY_STATE_INSTEAD,
        )
    } else if any(&["policy", "policies"]) {
        (
            " Key policy changes (PutKeyPolicy) appear only in CloudTrail.",
            KEY_POLICY_INSTEAD,
        )
    } else if any(&["decrypt"]) {
        (
            " The only per-key usage metric is SuccessfulRequest (dimensions KeyArn and \
             Operation, e.g. Operation=Decrypt); Decrypt calls are also in CloudTrail.",
            DECRYPT_INSTEAD,
        )
    } else if any(&[
        "count",
        "usage",
        "request",
        "call",
        "encrypt",
        "sign",
        "verify",
        "generate",
        "mac",
        "ops",
        "operation",
        "throttl",
    ]) {
        (
            " The only per-key usage metric is SuccessfulRequest (dimensions KeyArn and \
             Operation); API calls are also in CloudTrail.",
            USAGE_INSTEAD,
        )
    } else {
        (
            "",
            "an alarm on one of the published AWS/KMS metrics, or on a CloudWatch Logs metric \
             filter over the CloudTrail log group like the KMSGuardrails/* alarms (template \
             parameter CloudTrailLogGroupName)",
        )
    };
    silent(format!("{base}{extra}"), instead.to_string())
}

#[cfg(test)]
#[path = "lint_tests.rs"]
mod tests;
