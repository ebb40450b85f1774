//! policy-drift: restores the baseline key policy, rotation and key state of managed keys.
//! The decisions live here; the pipeline (gate, resolution, sweep, messages) is `shared`'s.

use aws_sdk_kms::types::KeyState;
use lambda_runtime::LambdaEvent;
use serde_json::Value;
use shared::config::Mode;
use shared::gate::{EventGate, HandledEvents};
use shared::kms::{self, write, KeyInfo};
use shared::outcome::{Action, Finding, FindingKind, KeyOutcome, Outcome, Severity, Status};
use shared::pipeline::{Audit, Guard};
use shared::{aws::AwsClients, GuardrailError};
use tracing::info;

use crate::config::{Config, RotationBaseline};
use crate::plan::{headline, plan, rotation_finding, Correction};

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
    let audit = |key: KeyInfo, extra| async move { audit_key(deps, &key, extra).await };
    deps.guard().handle(event, &GATE, audit).await
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
