//! policy-drift's writes: the planned corrections in the order KMS accepts them, or in
//! report mode what they would be.

use shared::aws::grants;
use shared::aws::kms::{self, write, KeyInfo};
use shared::config::Mode;
use shared::notify::outcome::{Action, Finding, FindingKind, KeyOutcome, Severity, Status};
use shared::pipeline::Audit;
use shared::GuardrailError;
use tracing::info;

use crate::config::RotationBaseline;
use crate::handler::Deps;
use crate::plan::{headline, rotation_finding, Correct, Correction, Desired, Plan};

/// The corrections in order (none in report mode); a failed call stops them and is the
/// audit's `failure`, classified by the pipeline.
pub async fn apply(deps: &Deps, key: &KeyInfo, plan: Plan) -> Audit {
    let mut outcome = KeyOutcome::new(key);
    let correct = match plan {
        Plan::Blocked(problems) => {
            outcome.status = Status::Blocked;
            outcome.findings.push(Finding::new(FindingKind::CorrectionBlocked, format!("the desired policy for this key fails a safety check, so it was not compared or written: {}", problems.join("; "))));
            return Audit::new(outcome, None, "KMS key correction blocked");
        }
        Plan::Correct(correct) => *correct,
    };
    let Correct {
        findings,
        corrections,
        policy,
        desired,
        rotation: wanted,
        rotation_deferred,
        revoke,
        record: _,
        commanded,
    } = correct;
    let mode = deps.config.common.mode;
    let client = deps.clients.kms_in(&key.account, &key.region);
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
                detail: correction.detail(wanted, desired, false),
                done: false,
            });
            continue;
        }
        let result = match (correction, &policy) {
            (Correction::CancelKeyDeletion, _) => write::cancel_key_deletion(&client, key).await,
            (Correction::EnableKey, _) => write::enable_key(&client, key).await,
            (Correction::PutKeyPolicy, Some(safe)) => {
                write::put_key_policy(&client, key, safe).await
            }
            // `decide` plans PutKeyPolicy only with a checked policy.
            (Correction::PutKeyPolicy, None) => continue,
            (Correction::EnableKeyRotation, _) => {
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
            detail: correction.detail(wanted, desired, true),
            done: true,
        });
        outcome.status = Status::Corrected;
    }
    for grant in revoke.iter().filter(|_| failure.is_none()) {
        let done = mode == Mode::Enforce;
        if done {
            if let Err(e) = grants::write::revoke_grant(&client, key, &grant.grant_id).await {
                failure = Some(e);
                break;
            }
            info!(key = %key.arn, grant = %grant.grant_id, "unexpected grant revoked");
            outcome.status = Status::Corrected;
        }
        outcome.actions.push(Action {
            operation: "RevokeGrant",
            detail: format!(
                "{} {}",
                if done { "revoked" } else { "would revoke" },
                grant.summary()
            ),
            done,
        });
    }
    if rotation_deferred && mode == Mode::Enforce && failure.is_none() {
        if let Err(e) = restore_deferred_rotation(&client, key, wanted, desired, &mut outcome).await
        {
            failure = Some(e);
        }
    }
    let headline = headline(&outcome, mode, failure.is_some());
    let mut audit = Audit::new(outcome, failure, &headline);
    if audit
        .outcome
        .findings
        .iter()
        .all(|f| f.kind == FindingKind::DesiredStateRecorded)
    {
        audit.severity = Severity::Info;
    }
    if let Desired::Record(version) = desired {
        audit.guidance = per_key_guidance(&audit.outcome, &key.key_id, version, commanded);
    }
    audit
}

/// What the person reading a per-key message can do next.
fn per_key_guidance(
    outcome: &KeyOutcome,
    key_id: &str,
    version: u32,
    commanded: bool,
) -> Option<String> {
    if outcome.findings.is_empty() {
        return None;
    }
    let kinds: Vec<FindingKind> = outcome.findings.iter().map(|f| f.kind).collect();
    let history = format!(
        "aws lambda invoke --function-name POLICY_DRIFT_FUNCTION --cli-binary-format raw-in-base64-out --payload '{{\"command\": \"history\", \"key\": \"{key_id}\"}}' out.json (the stack output PolicyDriftFunctionName names the function)"
    );
    let text = if kinds
        .iter()
        .all(|k| *k == FindingKind::DesiredStateRecorded)
    {
        format!("Version {version} is now what this key is kept at. Every version: {history}. To go back to an earlier one, send {{\"command\": \"rollback\", \"key\": \"{key_id}\", \"version\": N}} the same way.")
    } else if commanded {
        format!("The rollback recorded version {version} and the key was brought to it. Every version: {history}.")
    } else if kinds.contains(&FindingKind::FloorViolation) && version == 0 {
        "The key has no recorded desired state, so nothing is enforced on it until it is enrolled. Fix what breaks the floor (listed above) in the deployment; the next event or sweep then enrols the key as it is.".to_string()
    } else if kinds.contains(&FindingKind::FloorViolation) {
        format!("Version {version} stays in force. Change the deployment so the key keeps the floor (each rule it broke is listed above), or widen the floor if the rule is wrong for this key (ALLOWED_ACCOUNTS, ORGANIZATION_ID, KEY_KEEPERS). Every version: {history}.")
    } else {
        format!("The change was not made by an approved deployer (APPROVED_DEPLOYERS), so it is drift from version {version} of the key's desired state. Make changes through the pipeline that deploys the key; if this one is wanted, redeploy it there. Every version: {history}.")
    };
    Some(text)
}

/// Reads rotation again now that the key is enabled, and restores it if it drifted.
async fn restore_deferred_rotation(
    client: &aws_sdk_kms::Client,
    key: &KeyInfo,
    wanted: RotationBaseline,
    desired: Desired,
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
            detail: correction.detail(wanted, desired, true),
            done: true,
        });
    }
    Ok(())
}
