//! replica-grant-validator: checks that every managed multi-Region primary's replicas, their
//! grants and key policies, and the S3 replication rules that name them let S3 replication
//! encrypt, and creates the grants that are missing.

use shared::gate::{EventGate, HandledEvents};

pub const FUNCTION: &str = "replica-grant-validator";

/// KMS calls that change what a replica lets S3 replication do, and the S3 call that changes
/// which replica a bucket's replication uses.
pub const GATE: EventGate = EventGate {
    function: FUNCTION,
    handled: &[
        HandledEvents {
            source: "kms.amazonaws.com",
            names: &[
                "CreateGrant",
                "DisableKey",
                "PutKeyPolicy",
                "ReplicateKey",
                "RetireGrant",
                "RevokeGrant",
                "ScheduleKeyDeletion",
                "UpdatePrimaryRegion",
            ],
        },
        HandledEvents {
            source: "s3.amazonaws.com",
            names: &["PutBucketReplication"],
        },
    ],
};

use std::collections::HashSet;
use std::sync::Mutex;

use lambda_runtime::LambdaEvent;
use serde::Serialize;
use serde_json::Value;
use shared::events::{parse_trigger, CloudTrailDetail, KeyLocator, Trigger};
use shared::kms::KeyInfo;
use shared::notify::{deliver, Cause};
use shared::outcome::{KeyOutcome, Outcome, Status};
use shared::pipeline::Aliases;
use shared::resolve::{resolve, Resolution};
use shared::sweep::{self, Deadline, Swept};
use shared::GuardrailError;

use crate::audit::audit_primary;
use crate::buckets::validate_bucket;
use crate::deps::Deps;
use crate::message::digest;
use crate::report::ValidationReport;

/// The invocation's result: an event not acted on (or a key the function was shut out of),
/// or the validation report.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Response {
    Outcome(Outcome),
    Report(Box<ValidationReport>),
}

pub async fn function_handler(
    event: LambdaEvent<Value>,
    deps: &Deps,
) -> Result<Response, GuardrailError> {
    let result = match parse_trigger(&event.payload) {
        Ok(Trigger::CloudTrail(ev)) => on_event(deps, &ev.detail).await,
        Ok(Trigger::Scheduled { id, time }) => {
            let deadline = Deadline::from_context_millis(event.context.deadline);
            let seed = id.as_deref().unwrap_or("sweep");
            on_sweep(deps, deadline, seed, time.as_deref()).await
        }
        Ok(other) => Err(GuardrailError::InvalidEvent(format!(
            "{FUNCTION} does not handle a {}",
            other.describe()
        ))),
        Err(e) => Err(e),
    };
    match &result {
        Ok(Response::Report(report)) => {
            let json = serde_json::to_string(report).unwrap_or_default();
            tracing::info!(report = %json, "validation report");
        }
        Ok(Response::Outcome(_)) => {}
        Err(e) => {
            tracing::error!(error_type = e.error_type(), error = %e, "invocation failed")
        }
    }
    result
}

/// The primary an event leads to, or why there is none.
enum Target {
    Primary(KeyInfo),
    Skip(String),
    ShutOut { key: KeyInfo, error: GuardrailError },
}

/// An event about a replica resolves to its primary. A key counts as managed when its
/// primary is, or when the key named is (tags are not shared, and UpdatePrimaryRegion
/// leaves the managed tag on what is now a replica).
async fn primary_of(deps: &Deps, locator: &KeyLocator) -> Result<Target, GuardrailError> {
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

async fn on_event(deps: &Deps, detail: &CloudTrailDetail) -> Result<Response, GuardrailError> {
    let common = &deps.config.common;
    let skipped = |reason: String| {
        Ok(Response::Outcome(Outcome::skipped(
            detail.event_id(),
            &detail.event_name,
            reason,
        )))
    };
    if let Err(reason) = GATE.admit(detail, &common.self_role_arn) {
        return skipped(reason);
    }
    if detail.event_source == "s3.amazonaws.com" {
        return on_bucket_event(deps, detail).await;
    }
    let locator = detail.key_locator(&common.region)?;
    let guard = deps.guard();
    let cause = Cause::Event(detail);
    let primary = match primary_of(deps, &locator).await? {
        Target::Primary(primary) => primary,
        Target::Skip(reason) => return skipped(reason),
        Target::ShutOut { key, error } => {
            let outcome = guard.shut_out(&key, cause, error).await?;
            return Ok(Response::Outcome(Outcome::Key(outcome)));
        }
    };
    let (audit, key_report) = audit_primary(deps, &primary).await;
    let mut report = ValidationReport::new(&detail.event_name, common.mode);
    report.keys.push(key_report);
    let outcome = guard
        .finish(&primary, cause, Aliases::PerKey, audit)
        .await?;
    report.notification = outcome.notification;
    Ok(Response::Report(Box::new(report)))
}

/// PutBucketReplication on a configured bucket: its rules against the replicas they name.
async fn on_bucket_event(
    deps: &Deps,
    detail: &CloudTrailDetail,
) -> Result<Response, GuardrailError> {
    let config = &deps.config;
    let name = detail
        .request_parameters
        .as_ref()
        .and_then(|p| p.get("bucketName"))
        .and_then(Value::as_str)
        .ok_or_else(|| {
            GuardrailError::InvalidEvent(format!(
                "{} event {} names no bucket (requestParameters.bucketName)",
                detail.event_name,
                detail.event_id()
            ))
        })?;
    let Some(bucket) = config.buckets.iter().find(|b| b.name == name) else {
        return Ok(Response::Outcome(Outcome::skipped(
            detail.event_id(),
            &detail.event_name,
            format!(
                "bucket {} is not in REPLICATION_BUCKETS",
                shared::text::quoted(name, 80)
            ),
        )));
    };
    let s3 = deps.s3(&bucket.region);
    let checked = validate_bucket(
        &s3,
        &deps.clients,
        &config.common,
        &config.replication_roles,
        bucket,
    )
    .await;
    let mut report = ValidationReport::new(&detail.event_name, config.common.mode);
    report.buckets.push(checked);
    announce(deps, Cause::Event(detail), report).await
}

/// Every managed primary of the sweep Regions, then every configured bucket, with one
/// message for the whole run.
async fn on_sweep(
    deps: &Deps,
    deadline: Deadline,
    seed: &str,
    time: Option<&str>,
) -> Result<Response, GuardrailError> {
    let common = &deps.config.common;
    let reports = Mutex::new(Vec::new());
    let seen = Mutex::new(HashSet::new());
    let (reports_ref, seen_ref) = (&reports, &seen);
    let guard = deps.guard();
    let sweep = sweep::run(&deps.clients, common, deadline, seed, |swept| async move {
        let swept = match swept {
            Swept::Key(swept) => swept,
            Swept::ShutOut { key, error } => {
                return guard.shut_out(&key, Cause::Sweep { time }, error).await;
            }
        };
        let key = swept.key;
        let locator = KeyLocator {
            region: key.region.clone(),
            identifier: key.arn.to_string(),
        };
        let primary = match key.multi_region {
            false => None,
            true if !key.is_replica() => Some(key.clone()),
            true => match primary_of(deps, &locator).await? {
                Target::Primary(primary) => Some(primary),
                _ => None,
            },
        };
        let Some(primary) = primary else {
            return Ok(skipped_key(
                &key,
                "single-Region key, or a replica of an unmanaged primary: nothing to validate",
            ));
        };
        let first_time = seen_ref
            .lock()
            .map(|mut s| s.insert(primary.arn.to_string()))
            .unwrap_or(true);
        if !first_time {
            return Ok(skipped_key(
                &key,
                "validated with its primary in this sweep",
            ));
        }
        let (mut audit, report) = audit_primary(deps, &primary).await;
        if let Ok(mut all) = reports_ref.lock() {
            all.push(report);
        }
        match audit.failure.take() {
            Some(e) if e.is_retryable() => Err(e),
            Some(e) => {
                audit.outcome.status = Status::Failed;
                audit.outcome.reason = Some(format!("{e} ({})", e.error_type()));
                Ok(audit.outcome)
            }
            None => Ok(audit.outcome),
        }
    })
    .await;
    let mut report = ValidationReport::new("ScheduledSweep", common.mode);
    report.keys = reports.into_inner().unwrap_or_default();
    for bucket in &deps.config.buckets {
        let s3 = deps.s3(&bucket.region);
        let config = &deps.config;
        report.buckets.push(
            validate_bucket(
                &s3,
                &deps.clients,
                common,
                &config.replication_roles,
                bucket,
            )
            .await,
        );
    }
    report.sweep = Some(sweep);
    // Transient failures were counted as `retry_later`; the next sweep sees those keys again.
    announce(deps, Cause::Sweep { time }, report).await
}

fn skipped_key(key: &KeyInfo, reason: &str) -> KeyOutcome {
    let mut outcome = KeyOutcome::new(key);
    outcome.status = Status::Skipped;
    outcome.reason = Some(reason.to_string());
    outcome
}

/// One message for the run when it found or did anything. A bucket whose check a retry may
/// fix fails the invocation after the message, so nothing found is lost.
async fn announce(
    deps: &Deps,
    cause: Cause<'_>,
    mut report: ValidationReport,
) -> Result<Response, GuardrailError> {
    let common = &deps.config.common;
    if let Some(notification) = digest(&deps.guard().speaker(), cause, &report) {
        report.notification = Some(deliver(&deps.clients, common, &notification).await?);
    }
    let retry = report
        .buckets
        .iter()
        .find_map(|b| b.error.as_ref().filter(|_| b.is_retryable()));
    if let (Some(e), Cause::Event(_)) = (retry, cause) {
        return Err(e.clone());
    }
    Ok(Response::Report(Box::new(report)))
}
