//! The writes a [`Plan`] calls for and what to announce: the Access Analyzer proof when
//! configured, then PutKeyPolicy in enforce mode. Never errs: a failed call is the audit's
//! `failure`, which the pipeline classifies.

use shared::aws::kms::{write, KeyInfo};
use shared::config::Mode;
use shared::notify::outcome::{Action, Finding, FindingKind, KeyOutcome, Status};
use shared::pipeline::Audit;

use crate::deps::Deps;
use crate::plan::Plan;
use crate::report::{account_wide_finding, removal_summary, root_findings};

const BLOCKED: &str = "Removal of root access from KMS key blocked";
const NOT_DONE: &str = "Removal of root access from KMS key NOT done";

pub async fn apply(deps: &Deps, key: &KeyInfo, plan: Plan) -> Audit {
    let mut outcome = KeyOutcome::new(key);
    match plan {
        Plan::NothingToRevoke => {
            Audit::new(outcome, None, "KMS key policy names deleted principals")
        }
        Plan::Report {
            account_wide,
            orphans,
        } => {
            outcome.status = Status::Reported;
            let headline = if account_wide.is_empty() {
                "KMS key policy names deleted principals"
            } else {
                outcome
                    .findings
                    .push(account_wide_finding(&account_wide, false));
                "Account-wide access found in KMS key policy"
            };
            if !orphans.is_empty() {
                outcome.findings.push(Finding::new(
                    FindingKind::OrphanedPrincipal,
                    format!(
                        "the key policy names {} by unique id: principals that were deleted (a role recreated under the same name is a different principal and has no access)",
                        orphans.iter().map(|o| shared::base::text::value(o)).collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
            Audit::new(outcome, None, headline)
        }
        Plan::PolicyUnreadable(e) => {
            outcome.status = Status::Reported;
            outcome.findings.push(Finding::new(
                FindingKind::PolicyUnreadable,
                format!("the key policy cannot be read as a policy ({e}); nothing was changed"),
            ));
            Audit::new(outcome, None, "KMS key policy unreadable")
        }
        Plan::Blocked {
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
            let mut blocked = Audit::new(outcome, None, BLOCKED);
            blocked.guidance = Some(format!(
                "Nothing was written: removing the root now could lock the key out.\nFix: {fix}\nThe next event or sweep tries again once the check passes."
            ));
            blocked
        }
        Plan::Revoke { revocation, policy } => {
            let config = &deps.config;
            outcome.findings.extend(root_findings(&revocation));
            if config.access_analyzer_proof {
                let analyzer = crate::deps::analyzer(deps);
                let admins = &config.admin_role_arns;
                match crate::proof::admins_keep_control(&analyzer, policy.document(), admins).await
                {
                    Ok(None) => {}
                    Ok(Some(problem)) => {
                        outcome.status = Status::Blocked;
                        outcome.findings.push(Finding::new(
                            FindingKind::CorrectionBlocked,
                            format!("check failed: IAM Access Analyzer proof: {problem}"),
                        ));
                        let mut blocked = Audit::new(outcome, None, BLOCKED);
                        blocked.guidance = Some("Nothing was written. Compare the key policy with the admin statement Access Analyzer was given, or turn ACCESS_ANALYZER_PROOF off if the analyzer cannot see the role.".into());
                        return blocked;
                    }
                    Err(e) => return Audit::new(outcome, Some(e), NOT_DONE),
                }
            }
            let what = removal_summary(&revocation);
            if config.common.mode == Mode::Report {
                outcome.status = Status::Reported;
                outcome.actions.push(Action {
                    operation: "PutKeyPolicy",
                    detail: format!("would remove {what}"),
                    done: false,
                });
                return Audit::new(outcome, None, "Root access found in KMS key policy");
            }
            let client = deps.clients.kms_in(&key.account, &key.region);
            if let Err(e) = write::put_key_policy(&client, key, &policy).await {
                return Audit::new(outcome, Some(e), NOT_DONE);
            }
            tracing::info!(key = %key.arn, "root access removed");
            outcome.status = Status::Corrected;
            outcome.actions.push(Action {
                operation: "PutKeyPolicy",
                detail: format!("removed {what}; every lockout check passed first"),
                done: true,
            });
            Audit::new(outcome, None, "Root access removed from KMS key")
        }
    }
}
