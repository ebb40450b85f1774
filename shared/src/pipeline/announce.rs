//! The per-key end of every function: announce what was found or done, once, and tell
//! failures a retry can fix from those only a person can.

use crate::aws::kms::{self, KeyInfo};
use crate::aws::AwsClients;
use crate::base::error::{Disposition, GuardrailError};
use crate::config::CommonConfig;
use crate::notify::outcome::{Finding, FindingKind, KeyOutcome, Severity, Status};
use crate::notify::{deliver, Cause, KeyMessage, Speaker};

use crate::pipeline::audit::{Aliases, Audit};
use crate::pipeline::journal::{announcement_id, Journal};

/// The context every function's per-key work runs in.
#[derive(Clone, Copy)]
pub struct Guard<'a> {
    pub function: &'static str,
    pub clients: &'a AwsClients,
    pub common: &'a CommonConfig,
}

impl Guard<'_> {
    pub fn journal(&self) -> Option<Journal<'_>> {
        Journal::open(self.clients, self.common, self.function)
    }

    pub fn speaker(&self) -> Speaker<'_> {
        Speaker::new(self.function, self.common)
    }

    async fn alias(&self, key: &KeyInfo, aliases: Aliases<'_>) -> Option<String> {
        match aliases {
            Aliases::Region(book) => book.first(self.clients, &key.key_id).await,
            Aliases::PerKey => {
                match kms::aliases(&self.clients.kms_in(&key.account, &key.region), &key.key_id)
                    .await
                {
                    Ok(names) => names.into_iter().find(|n| !n.starts_with("alias/aws/")),
                    Err(e) => {
                        tracing::warn!(error = %e, "aliases unavailable for the notification");
                        None
                    }
                }
            }
        }
    }

    /// Announces `audit` and returns its outcome. A transient failure ends in `Err` so Lambda
    /// retries (writes already made are announced first, so nothing is lost); a permanent one
    /// becomes a `Failed` outcome with one critical message. Nothing found, nothing sent.
    pub async fn finish(
        &self,
        key: &KeyInfo,
        cause: Cause<'_>,
        aliases: Aliases<'_>,
        mut audit: Audit,
    ) -> Result<KeyOutcome, GuardrailError> {
        let disposition = audit.failure.as_ref().map(GuardrailError::disposition);
        if disposition == Some(Disposition::Retry) && audit.outcome.writes() == 0 {
            if let Some(e) = audit.failure.take() {
                tracing::warn!(key = %key.arn, error_type = e.error_type(), error = %e, "transient failure: the invocation fails so it is retried");
                return Err(e);
            }
        }
        if disposition == Some(Disposition::Report) {
            let operation = audit.failure.as_ref().and_then(GuardrailError::operation);
            audit.outcome.status = Status::Failed;
            audit.severity = Severity::Critical;
            if audit.failure.as_ref().is_some_and(is_shut_out) {
                shut_out_finding(&mut audit, operation, self.common.self_role_arn.as_str());
            } else if audit.failure.as_ref().is_some_and(is_member_unreachable) {
                member_unreachable_finding(&mut audit, &key.account);
            }
        }
        if audit.outcome.findings.is_empty() && audit.failure.is_none() {
            tracing::info!(key = %key.arn, status = ?audit.outcome.status, "nothing to announce");
            return Ok(audit.outcome);
        }
        if let Some(quiet) = audit.quiet.take() {
            tracing::info!(key = %key.arn, status = ?audit.outcome.status, reason = %quiet, "not announced again");
            audit.outcome.reason = Some(quiet);
            return Ok(audit.outcome);
        }

        // In an account the function cannot reach, aliases cannot be listed either.
        if !audit.failure.as_ref().is_some_and(is_member_unreachable) {
            audit.outcome.alias = self.alias(key, aliases).await;
        }
        let notification = KeyMessage {
            key,
            cause,
            outcome: &audit.outcome,
            failure: audit.failure.as_ref(),
            headline: &audit.headline,
            severity: audit.severity,
            guidance: audit.guidance.clone(),
        }
        .render(&self.speaker())
        .attribute(
            "announcement_id",
            announcement_id(key.arn.as_str(), cause.run()),
        );
        // Logged before publishing: if SNS fails, a retry may find nothing left to announce,
        // so the log is the record of what was done.
        tracing::info!(
            key = %key.arn,
            status = ?audit.outcome.status,
            findings = ?audit.outcome.findings.iter().map(|f| f.kind.as_str()).collect::<Vec<_>>(),
            actions = ?audit.outcome.actions.iter().map(|a| a.operation).collect::<Vec<_>>(),
            writes = audit.outcome.writes(),
            "key handled"
        );
        audit.outcome.notification = Some(deliver(self.clients, self.common, &notification).await?);
        if let Some(journal) = self.journal() {
            for record in &audit.records {
                journal.settle(record).await;
            }
        }
        match audit.failure {
            Some(e) if disposition == Some(Disposition::Retry) => Err(e),
            Some(e) => {
                audit.outcome.reason = Some(format!("{} ({})", e, e.error_type()));
                Ok(audit.outcome)
            }
            None => Ok(audit.outcome),
        }
    }

    /// The message for a managed key this function can no longer read at all.
    pub async fn shut_out(
        &self,
        key: &KeyInfo,
        cause: Cause<'_>,
        error: GuardrailError,
    ) -> Result<KeyOutcome, GuardrailError> {
        let audit = Audit {
            severity: Severity::Critical,
            ..Audit::failed(key, error, "Guardrail shut out of KMS key")
        };
        self.finish(key, cause, Aliases::PerKey, audit).await
    }
}

/// AccessDenied on the reads every audit starts with: someone took the function's access.
fn is_shut_out(e: &GuardrailError) -> bool {
    e.is_access_denied() && matches!(e.operation(), Some("DescribeKey" | "GetKeyPolicy"))
}

/// AccessDenied on the member role: the account is not reached at all.
fn is_member_unreachable(e: &GuardrailError) -> bool {
    e.is_access_denied() && e.operation() == Some("AssumeRole")
}

fn member_unreachable_finding(audit: &mut Audit, account: &str) {
    audit.headline = format!("Guardrail cannot reach account {account}");
    audit.outcome.findings.insert(
        0,
        Finding::new(
            FindingKind::ShutOut,
            format!("the member role of account {account} cannot be assumed, so no key of that account is read or corrected: the role is missing (spoke.yaml not deployed there), or its trust policy does not admit this function's role with the configured external id"),
        ),
    );
    audit.guidance = Some(format!(
        "Deploy spoke.yaml to account {account} (the StackSet's automatic deployment covers every new account of its organizational units), with the hub's function roles and the ExternalId that MEMBER_EXTERNAL_ID holds. Other accounts are unaffected."
    ));
}

fn shut_out_finding(audit: &mut Audit, operation: Option<&'static str>, role: &str) {
    audit.headline = "Guardrail shut out of KMS key".into();
    audit.outcome.findings.insert(
        0,
        Finding::new(
            FindingKind::ShutOut,
            format!(
                "the guardrail may no longer read this managed key ({} was denied): the key policy or an SCP was changed to exclude it, which is how a takeover would begin",
                operation.unwrap_or("a read")
            ),
        ),
    );
    audit.guidance = Some(format!(
        "Find who changed the key policy in CloudTrail (PutKeyPolicy on this key), then give the function's role {role} its access back in the key policy (or restore the account root there). Until then this key is not guarded."
    ));
}
