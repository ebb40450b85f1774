//! policy-drift's writes: the planned corrections in the order KMS accepts them, or in
//! report mode what they would be.

use shared::aws::kms::{self, write, KeyInfo};
use shared::config::Mode;
use shared::notify::outcome::{Action, Finding, FindingKind, KeyOutcome, Status};
use shared::pipeline::Audit;
use shared::GuardrailError;
use tracing::info;

use crate::config::RotationBaseline;
use crate::handler::{Deps, Plan};
use crate::plan::{headline, rotation_finding, Correction};

/// The corrections in order (none in report mode); a failed call stops them and is the
/// audit's `failure`, classified by the pipeline.
pub async fn apply(deps: &Deps, key: &KeyInfo, plan: Plan) -> Audit {
    let mut outcome = KeyOutcome::new(key);
    let (findings, corrections, safe, rotation_deferred) = match plan {
        Plan::Blocked(problems) => {
            outcome.status = Status::Blocked;
            outcome.findings.push(Finding::new(FindingKind::CorrectionBlocked, format!("the baseline for this key fails a safety check, so it was not compared or written: {}", problems.join("; "))));
            return Audit::new(outcome, None, "KMS key correction blocked");
        }
        Plan::Correct {
            findings,
            corrections,
            baseline,
            rotation_deferred,
        } => (findings, corrections, baseline, rotation_deferred),
    };
    let (mode, wanted) = (deps.config.common.mode, deps.config.rotation);
    let client = deps.clients.kms(&key.region);
    outcome.status = if findings.is_empty() {
        Status::Compliant
    } else {
        Status::Reported
    };
    outcome.findings = findings;
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
            Correction::PutKeyPolicy => write::put_key_policy(&client, key, &safe).await,
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
    Audit::new(outcome, failure, &headline)
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
