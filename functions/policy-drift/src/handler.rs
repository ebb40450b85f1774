//! policy-drift: restores the baseline key policy, rotation and key state of managed keys.
//! The decisions live here; the pipeline (gate, resolution, sweep, messages) is `shared`'s.

use aws_sdk_kms::types::KeyState;
use lambda_runtime::LambdaEvent;
use serde_json::Value;
use shared::config::Mode;
use shared::events::{parse_trigger, CloudTrailDetail, KeyLocator, Trigger};
use shared::gate::{EventGate, HandledEvents};
use shared::kms::{self, write, KeyInfo, RotationStatus};
use shared::membership::{
    enrolment, left_audit, left_management, previous_alias_target, request_key,
};
use shared::notify::Cause;
use shared::outcome::{Action, Finding, FindingKind, KeyOutcome, Outcome, Severity, Status};
use shared::pipeline::{Aliases, Audit, Guard};
use shared::policy::Policy;
use shared::resolve::{resolve, Resolution};
use shared::sweep::{self, Deadline, SweptKey};
use shared::{aws::AwsClients, GuardrailError};
use tracing::{info, info_span, Instrument};

use crate::config::{Config, RotationBaseline};

pub const FUNCTION: &str = "policy-drift";

/// CloudTrail events that can move a key away from its baseline or in or out of management.
pub const GATE: EventGate = EventGate {
    function: FUNCTION,
    handled: &[HandledEvents {
        source: "kms.amazonaws.com",
        names: &[
            "PutKeyPolicy",
            "DisableKeyRotation",
            "EnableKeyRotation",
            "ScheduleKeyDeletion",
            "DisableKey",
            "CreateKey",
            "TagResource",
            "UntagResource",
            "CreateAlias",
            "DeleteAlias",
            "UpdateAlias",
        ],
    }],
};

pub struct Deps {
    pub config: Config,
    pub clients: AwsClients,
}

impl Deps {
    fn guard(&self) -> Guard<'_> {
        Guard {
            function: FUNCTION,
            clients: &self.clients,
            common: &self.config.common,
        }
    }
}

pub async fn function_handler(
    event: LambdaEvent<Value>,
    deps: &Deps,
) -> Result<Outcome, GuardrailError> {
    let outcome = match parse_trigger(&event.payload) {
        Ok(Trigger::CloudTrail(ev)) => {
            let d = &ev.detail;
            let span = info_span!("event", event_id = d.event_id(), event_name = %d.event_name);
            handle_event(d, deps).instrument(span).await
        }
        Ok(Trigger::Scheduled { id, time }) => {
            let span = info_span!("sweep", event_id = id.as_deref().unwrap_or("unknown"));
            let deadline = Deadline::from_context_millis(event.context.deadline);
            let seed = id.as_deref().unwrap_or("sweep");
            Ok(Outcome::Sweep(
                sweep::run(
                    &deps.clients,
                    &deps.config.common,
                    deadline,
                    seed,
                    |swept| sweep_key(deps, swept, time.as_deref()),
                )
                .instrument(span)
                .await,
            ))
        }
        Ok(other) => Err(GuardrailError::InvalidEvent(format!(
            "{FUNCTION} does not handle a {}",
            other.describe()
        ))),
        Err(e) => Err(e),
    };
    if let Err(e) = &outcome {
        tracing::error!(error_type = e.error_type(), error = %e, "invocation failed");
    }
    outcome
}

async fn sweep_key(
    deps: &Deps,
    swept: SweptKey,
    time: Option<&str>,
) -> Result<KeyOutcome, GuardrailError> {
    let span = info_span!("key", key = %swept.key.arn);
    let cause = Cause::Sweep { time };
    let audit = audit_key(deps, &swept.key, Vec::new())
        .instrument(span.clone())
        .await;
    let aliases = Aliases::Region(&swept.aliases);
    deps.guard()
        .finish(&swept.key, cause, aliases, audit)
        .instrument(span)
        .await
}

fn skipped(detail: &CloudTrailDetail, reason: String) -> Result<Outcome, GuardrailError> {
    info!(reason = %reason, "event skipped");
    Ok(Outcome::Skipped {
        event_id: detail.event_id().to_string(),
        event_name: detail.event_name.clone(),
        reason,
    })
}

async fn handle_event(detail: &CloudTrailDetail, deps: &Deps) -> Result<Outcome, GuardrailError> {
    let common = &deps.config.common;
    if let Err(reason) = GATE.admit(detail, &common.self_role_arn) {
        return skipped(detail, reason);
    }
    let locator = match detail.event_name.as_str() {
        // The alias now names this key; the key it named before is in `resources`.
        "UpdateAlias" => request_key(detail, &common.region)?,
        _ => detail.key_locator(&common.region)?,
    };
    let mut outcomes = Vec::new();
    if detail.event_name == "UpdateAlias" {
        if let Some(previous) = previous_alias_target(detail, &locator, &common.region) {
            if let Some(outcome) = handle_key(detail, deps, &previous).await? {
                outcomes.push(outcome);
            }
        }
    }
    match handle_key(detail, deps, &locator).await? {
        Some(outcome) => outcomes.push(outcome),
        None if outcomes.is_empty() => return skipped(detail, "not a managed key".into()),
        None => {}
    }
    Ok(match outcomes.len() {
        1 => Outcome::Key(outcomes.remove(0)),
        _ => Outcome::Keys(outcomes),
    })
}

/// Acts on one key an event names; `None` when it is not ours (the reason is logged).
async fn handle_key(
    detail: &CloudTrailDetail,
    deps: &Deps,
    locator: &KeyLocator,
) -> Result<Option<KeyOutcome>, GuardrailError> {
    let (common, guard) = (&deps.config.common, deps.guard());
    let cause = Cause::Event(detail);
    match resolve(&deps.clients, common, locator).await? {
        Resolution::Managed(key) => {
            let extra = enrolment(FUNCTION, detail, &common.managed, &key)
                .into_iter()
                .collect();
            let audit = audit_key(deps, &key, extra).await;
            guard
                .finish(&key, cause, Aliases::PerKey, audit)
                .await
                .map(Some)
        }
        Resolution::Unmanaged { key, reason } => match left_management(detail, &common.managed) {
            Some(how) => guard
                .finish(
                    &key,
                    cause,
                    Aliases::PerKey,
                    left_audit(FUNCTION, &key, &reason, &how),
                )
                .await
                .map(Some),
            None => {
                info!(reason = %reason, "key skipped");
                Ok(None)
            }
        },
        Resolution::NotOurs(reason) => {
            info!(reason = %reason, "key skipped");
            Ok(None)
        }
        Resolution::ShutOut { key, error } => {
            let key = KeyInfo::unreadable(&key, &locator.region, &common.account_id);
            guard.shut_out(&key, cause, error).await.map(Some)
        }
    }
}

/// A write that brings the key back to its baseline, in the order they must run: a key pending
/// deletion or disabled refuses PutKeyPolicy and EnableKeyRotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Correction {
    CancelKeyDeletion,
    EnableKey,
    PutKeyPolicy,
    EnableKeyRotation,
}

impl Correction {
    pub fn operation(self) -> &'static str {
        match self {
            Correction::CancelKeyDeletion => "CancelKeyDeletion",
            Correction::EnableKey => "EnableKey",
            Correction::PutKeyPolicy => "PutKeyPolicy",
            Correction::EnableKeyRotation => "EnableKeyRotation",
        }
    }

    fn detail(self, rotation: RotationBaseline, done: bool) -> String {
        let what = match self {
            Correction::CancelKeyDeletion => "cancel the scheduled deletion".to_string(),
            Correction::EnableKey => "enable the key".to_string(),
            Correction::PutKeyPolicy => "restore the baseline key policy".to_string(),
            Correction::EnableKeyRotation => format!(
                "enable automatic rotation every {} days",
                rotation.period_days
            ),
        };
        if done {
            format!("done: {what}")
        } else {
            format!("would {what}")
        }
    }
}

/// What the key's state, policy text and rotation say, against the baseline: pure.
pub fn plan(
    key: &KeyInfo,
    policy_text: &str,
    baseline: &Policy,
    rotation: Option<RotationStatus>,
    wanted: RotationBaseline,
) -> (Vec<Finding>, Vec<Correction>) {
    let (mut findings, mut corrections) = (Vec::new(), Vec::new());
    match key.state {
        KeyState::PendingDeletion | KeyState::PendingReplicaDeletion => {
            let when = key
                .deletion_date
                .as_deref()
                .map(|d| format!(" on {d}"))
                .unwrap_or_default();
            findings.push(Finding::new(
                FindingKind::PendingDeletion,
                format!("the key is scheduled for deletion{when}"),
            ));
            // CancelKeyDeletion leaves the key Disabled.
            corrections.extend([Correction::CancelKeyDeletion, Correction::EnableKey]);
        }
        KeyState::Disabled => {
            findings.push(Finding::new(
                FindingKind::KeyDisabled,
                "the key is disabled",
            ));
            corrections.push(Correction::EnableKey);
        }
        _ => {}
    }
    match Policy::parse(policy_text) {
        Ok(actual) => {
            let diff = actual.diff_against(baseline);
            if !diff.is_empty() {
                let version = if diff.version.is_some() {
                    ", different Version"
                } else {
                    ""
                };
                let summary = format!("the key policy differs from the baseline: {} missing, {} extra, {} changed statement(s){version}", diff.missing.len(), diff.extra.len(), diff.changed.len());
                findings.push(Finding {
                    kind: FindingKind::PolicyDrift,
                    summary,
                    diff: Some(diff.to_string()),
                });
                corrections.push(Correction::PutKeyPolicy);
            }
        }
        Err(e) => {
            findings.push(Finding::new(
                FindingKind::PolicyUnreadable,
                format!("the key policy is not a policy the baseline can be compared with ({e})"),
            ));
            corrections.push(Correction::PutKeyPolicy);
        }
    }
    if let Some(finding) = rotation.and_then(|r| rotation_finding(r, wanted)) {
        findings.push(finding);
        corrections.push(Correction::EnableKeyRotation);
    }
    corrections.sort();
    (findings, corrections)
}

fn rotation_finding(status: RotationStatus, wanted: RotationBaseline) -> Option<Finding> {
    if !status.enabled {
        return Some(Finding::new(
            FindingKind::RotationDisabled,
            format!(
                "automatic rotation is disabled (baseline: every {} days)",
                wanted.period_days
            ),
        ));
    }
    let period = status.period_days.filter(|p| *p != wanted.period_days)?;
    Some(Finding::new(
        FindingKind::RotationPeriod,
        format!(
            "rotation period is {period} days (baseline: {} days)",
            wanted.period_days
        ),
    ))
}

/// Replicas share the primary's rotation; asymmetric, HMAC and imported keys cannot rotate.
fn rotation_applies(deps: &Deps, key: &KeyInfo) -> bool {
    deps.config.rotation.enabled && key.rotatable && !key.is_replica()
}

/// Reads `key`, plans and (in enforce mode) applies the corrections. Never errs: a failed
/// call is the audit's `failure`, classified by the pipeline.
async fn audit_key(deps: &Deps, key: &KeyInfo, mut findings: Vec<Finding>) -> Audit {
    let mut outcome = KeyOutcome::new(key);
    let (mode, wanted) = (deps.config.common.mode, deps.config.rotation);
    let audit = |outcome: KeyOutcome, failure, headline: &str| Audit {
        outcome,
        failure,
        headline: headline.into(),
        severity: Severity::High,
        guidance: None,
    };
    if !key.is_settled() {
        outcome.status = Status::Skipped;
        outcome.reason = Some(format!(
            "key is in state {}; nothing is written until it settles",
            key.state.as_str()
        ));
        outcome.findings = findings;
        return audit(outcome, None, "KMS key enrolled in guardrails");
    }
    let client = deps.clients.kms(&key.region);
    let baseline = deps
        .config
        .baseline_for(&key.account, &key.region, key.arn.partition());
    let policy_text = match kms::key_policy(&client, key.arn.as_str()).await {
        Ok(text) => text,
        Err(e) => return audit(outcome, Some(e), "KMS key could not be audited"),
    };
    // KMS may refuse rotation reads while a key is disabled or pending deletion; it is read
    // again once the key is enabled.
    let mut rotation_deferred = false;
    let rotation = if rotation_applies(deps, key) {
        match kms::rotation_status(&client, key.arn.as_str()).await {
            Ok(status) => Some(status),
            Err(e) if key.state != KeyState::Enabled && e.error_type() == "KeyInvalidState" => {
                rotation_deferred = true;
                None
            }
            Err(e) => return audit(outcome, Some(e), "KMS key could not be audited"),
        }
    } else {
        None
    };
    let safe = match &baseline {
        Ok(safe) => safe,
        Err(problems) => {
            outcome.status = Status::Blocked;
            outcome.findings.push(Finding::new(FindingKind::CorrectionBlocked, format!("the baseline for this key fails a safety check, so it was not compared or written: {}", problems.join("; "))));
            return audit(outcome, None, "KMS key correction blocked");
        }
    };
    let (planned_findings, corrections) = plan(key, &policy_text, safe.policy(), rotation, wanted);
    findings.extend(planned_findings);
    if rotation_deferred && mode == Mode::Report {
        findings.push(Finding::new(
            FindingKind::RotationUnknown,
            format!(
                "rotation was not checked: KMS does not report it while the key is {}",
                key.state.as_str()
            ),
        ));
    }
    outcome.findings = findings;
    outcome.status = if outcome.findings.is_empty() {
        Status::Compliant
    } else {
        Status::Reported
    };
    let mut failure = None;
    for correction in corrections {
        if mode == Mode::Report {
            outcome.actions.push(Action {
                operation: correction.operation(),
                detail: correction.detail(wanted, false),
                done: false,
            });
            continue;
        }
        let result = match correction {
            Correction::CancelKeyDeletion => write::cancel_key_deletion(&client, key).await,
            Correction::EnableKey => write::enable_key(&client, key).await,
            Correction::PutKeyPolicy => write::put_key_policy(&client, key, safe).await,
            Correction::EnableKeyRotation => {
                write::enable_key_rotation(&client, key, wanted.period_days).await
            }
        };
        if let Err(e) = result {
            failure = Some(e);
            break;
        }
        info!(key = %key.arn, operation = correction.operation(), "corrected");
        outcome.actions.push(Action {
            operation: correction.operation(),
            detail: correction.detail(wanted, true),
            done: true,
        });
        outcome.status = Status::Corrected;
    }
    if rotation_deferred && mode == Mode::Enforce && failure.is_none() {
        if let Err(e) = restore_deferred_rotation(&client, key, wanted, &mut outcome).await {
            failure = Some(e);
        }
    }
    let headline = headline(&outcome, mode, failure.is_some());
    audit(outcome, failure, &headline)
}

/// Reads rotation again now that the key is enabled, and restores it if it drifted.
async fn restore_deferred_rotation(
    client: &aws_sdk_kms::Client,
    key: &KeyInfo,
    wanted: RotationBaseline,
    outcome: &mut KeyOutcome,
) -> Result<(), GuardrailError> {
    if let Some(finding) = rotation_finding(
        kms::rotation_status(client, key.arn.as_str()).await?,
        wanted,
    ) {
        outcome.findings.push(finding);
        write::enable_key_rotation(client, key, wanted.period_days).await?;
        let correction = Correction::EnableKeyRotation;
        outcome.actions.push(Action {
            operation: correction.operation(),
            detail: correction.detail(wanted, true),
            done: true,
        });
    }
    Ok(())
}

fn headline(outcome: &KeyOutcome, mode: Mode, failed: bool) -> String {
    let kinds: Vec<FindingKind> = outcome.findings.iter().map(|f| f.kind).collect();
    if kinds.iter().all(|k| *k == FindingKind::Enrolled) {
        return "KMS key enrolled in guardrails".into();
    }
    let policy = kinds
        .iter()
        .any(|k| matches!(k, FindingKind::PolicyDrift | FindingKind::PolicyUnreadable));
    let what = if policy {
        "KMS key policy drift"
    } else {
        "KMS key drift"
    };
    let verb = match (mode, failed) {
        (_, true) => "NOT corrected",
        (Mode::Enforce, false) => "corrected",
        (Mode::Report, false) => "found",
    };
    format!("{what} {verb}")
}
