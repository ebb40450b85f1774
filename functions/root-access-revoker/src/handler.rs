//! root-access-revoker: takes the account root out of managed key policies when root access is
//! configured off, and only when every lockout check passes. The checks are `decide`'s; this
//! file gathers the facts (the key policy, the admin roles in IAM) and acts on the decision.

use lambda_runtime::LambdaEvent;
use serde_json::Value;
use shared::config::Mode;
use shared::events::{parse_trigger, Trigger};
use shared::gate::{EventGate, HandledEvents};
use shared::kms::{self, write, KeyInfo};
use shared::outcome::{Action, Finding, FindingKind, KeyOutcome, Outcome, Severity, Status};
use shared::pipeline::Audit;
use shared::GuardrailError;

use crate::decide::{decide, Decision};
use crate::report::{removal_summary, root_findings};
use crate::revoke::unique_id_principals;

pub use crate::deps::Deps;

pub const FUNCTION: &str = "root-access-revoker";

/// KMS calls that can give a key the root (a new replica starts with the default, root-only
/// policy), and IAM calls that can take an admin role's control away.
pub const GATE: EventGate = EventGate {
    function: FUNCTION,
    handled: &[
        HandledEvents {
            source: "kms.amazonaws.com",
            names: &["CreateKey", "PutKeyPolicy", "ReplicateKey"],
        },
        HandledEvents {
            source: "iam.amazonaws.com",
            names: crate::watch::ROLE_EVENTS,
        },
    ],
};

pub async fn function_handler(
    event: LambdaEvent<Value>,
    deps: &Deps,
) -> Result<Outcome, GuardrailError> {
    if deps.config.root_access {
        let reason = "ROOT_ACCESS is on: the account root is meant to stay in key policies (the setting policy-drift restores too), so nothing is revoked".to_string();
        tracing::info!(reason = %reason, "event skipped");
        return Ok(Outcome::Skipped {
            event_id: event.payload["id"]
                .as_str()
                .unwrap_or("unknown")
                .to_string(),
            event_name: event.payload["detail"]["eventName"]
                .as_str()
                .unwrap_or("scheduled sweep")
                .to_string(),
            reason,
        });
    }
    if let Ok(Trigger::CloudTrail(ev)) = parse_trigger(&event.payload) {
        if ev.detail.event_source == "iam.amazonaws.com" {
            return crate::watch::on_role_event(&ev.detail, deps).await;
        }
    }
    let audit = |key: KeyInfo, extra| async move { audit_key(deps, &key, extra).await };
    deps.guard().handle(event, &GATE, audit).await
}

fn audit(outcome: KeyOutcome, failure: Option<GuardrailError>, headline: &str) -> Audit {
    Audit {
        outcome,
        failure,
        headline: headline.into(),
        severity: Severity::High,
        guidance: None,
    }
}

/// Reads the key's policy and the admin roles, decides, and (in enforce mode) writes. Never
/// errs: a failed call is the audit's `failure`, classified by the pipeline.
async fn audit_key(deps: &Deps, key: &KeyInfo, extra: Vec<Finding>) -> Audit {
    let mut outcome = KeyOutcome::new(key);
    outcome.findings = extra;
    if !key.is_settled() {
        outcome.status = Status::Skipped;
        outcome.reason = Some(format!(
            "key is in state {}; the next sweep looks again once it settles",
            key.state.as_str()
        ));
        return audit(outcome, None, "KMS key seen");
    }
    let client = deps.clients.kms(&key.region);
    let text = match kms::key_policy(&client, key.arn.as_str()).await {
        Ok(text) => text,
        Err(e) => return audit(outcome, Some(e), "KMS key could not be audited"),
    };
    let admins = match deps.admin_roles().await {
        Ok(admins) => admins,
        Err(e) => return audit(outcome, Some(e), "KMS key could not be audited"),
    };
    let config = &deps.config;
    let self_role = config.common.self_role_arn.as_str();
    let decision = match decide(
        &text,
        &key.account,
        &admins,
        self_role,
        config.remove_account_wide,
    ) {
        Ok(decision) => decision,
        Err(e) => {
            outcome.status = Status::Reported;
            outcome.findings.push(Finding::new(
                FindingKind::PolicyUnreadable,
                format!("the key policy cannot be read as a policy ({e}); nothing was changed"),
            ));
            return audit(outcome, None, "KMS key policy unreadable");
        }
    };
    match decision {
        Decision::NothingToRevoke => {
            let orphans = shared::policy::Policy::parse(&text)
                .map(|p| unique_id_principals(&p))
                .unwrap_or_default();
            if !orphans.is_empty() {
                outcome.status = Status::Reported;
                outcome.findings.push(Finding::new(
                    FindingKind::OrphanedPrincipal,
                    format!(
                        "the key policy names {} by unique id: principals that were deleted (a role recreated under the same name is a different principal and has no access)",
                        orphans.iter().map(|o| shared::text::value(o)).collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
            audit(outcome, None, "KMS key policy names deleted principals")
        }
        Decision::Blocked {
            check,
            problem,
            fix,
            revocation,
        } => {
            outcome.status = Status::Blocked;
            outcome.findings.extend(root_findings(&revocation));
            outcome.findings.push(Finding::new(
                FindingKind::CorrectionBlocked,
                format!("check failed: {check}: {problem}"),
            ));
            let mut blocked = audit(outcome, None, "Removal of root access from KMS key blocked");
            blocked.guidance = Some(format!(
                "Nothing was written: removing the root now could lock the key out.\nFix: {fix}\nThe next event or sweep tries again once the check passes."
            ));
            blocked
        }
        Decision::Revoke { revocation, policy } => {
            outcome.findings.extend(root_findings(&revocation));
            if config.access_analyzer_proof {
                match crate::proof::admins_keep_control(
                    deps.analyzer(),
                    policy.document(),
                    &config.admin_role_arns,
                )
                .await
                {
                    Ok(None) => {}
                    Ok(Some(problem)) => {
                        outcome.status = Status::Blocked;
                        outcome.findings.push(Finding::new(
                            FindingKind::CorrectionBlocked,
                            format!("check failed: IAM Access Analyzer proof: {problem}"),
                        ));
                        let mut blocked =
                            audit(outcome, None, "Removal of root access from KMS key blocked");
                        blocked.guidance = Some("Nothing was written. Compare the key policy with the admin statement Access Analyzer was given, or turn ACCESS_ANALYZER_PROOF off if the analyzer cannot see the role.".into());
                        return blocked;
                    }
                    Err(e) => {
                        return audit(
                            outcome,
                            Some(e),
                            "Removal of root access from KMS key NOT done",
                        )
                    }
                }
            }
            let what = removal_summary(&revocation);
            if config.common.mode == Mode::Report {
                outcome.status = Status::Reported;
                outcome.actions.push(Action {
                    operation: "PutKeyPolicy",
                    detail: format!("would {what}"),
                    done: false,
                });
                return audit(outcome, None, "Root access found in KMS key policy");
            }
            if let Err(e) = write::put_key_policy(&client, key, &policy).await {
                return audit(
                    outcome,
                    Some(e),
                    "Removal of root access from KMS key NOT done",
                );
            }
            tracing::info!(key = %key.arn, "root access removed");
            outcome.status = Status::Corrected;
            outcome.actions.push(Action {
                operation: "PutKeyPolicy",
                detail: format!("{what} (every lockout check passed)"),
                done: true,
            });
            audit(outcome, None, "Root access removed from KMS key")
        }
    }
}
