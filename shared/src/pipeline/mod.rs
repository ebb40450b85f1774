//! The per-key end of every function: announce what was found or done, once, and tell
//! failures a retry can fix from those only a person can.

pub mod audit;
pub mod managed;
pub mod membership;
pub mod resolve;
pub mod sweep;

use std::future::Future;

use lambda_runtime::LambdaEvent;
use serde_json::Value;

use tracing::{info_span, Instrument};

use crate::aws::kms::{self, KeyInfo};
use crate::aws::AwsClients;
use crate::base::error::GuardrailError;
use crate::config::CommonConfig;
use crate::triggers::events::{parse_trigger, CloudTrailDetail, KeyLocator, Trigger};
use crate::triggers::gate::EventGate;
pub use audit::{Aliases, Audit, RegionAliases};

use crate::notify::outcome::{Finding, FindingKind, KeyOutcome, Outcome, Severity, Status};
use crate::notify::{deliver, Cause, KeyMessage, Speaker};
use crate::pipeline::resolve::{resolve, Resolution};
use crate::pipeline::sweep::{Deadline, Swept};

/// The context every function's per-key work runs in.
#[derive(Clone, Copy)]
pub struct Guard<'a> {
    pub function: &'static str,
    pub clients: &'a AwsClients,
    pub common: &'a CommonConfig,
}

impl Guard<'_> {
    pub fn speaker(&self) -> Speaker<'_> {
        Speaker::new(self.function, self.common)
    }

    async fn alias(&self, key: &KeyInfo, aliases: Aliases<'_>) -> Option<String> {
        match aliases {
            Aliases::Region(book) => book.first(self.clients, &key.key_id).await,
            Aliases::PerKey => {
                match kms::aliases(&self.clients.kms(&key.region), &key.key_id).await {
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
        let retryable = audit.failure.as_ref().is_some_and(|e| e.is_retryable());
        let nothing_written = audit.outcome.writes() == 0;
        if let Some(e) = audit
            .failure
            .take_if(|e| e.is_retryable() && nothing_written)
        {
            tracing::warn!(key = %key.arn, error_type = e.error_type(), error = %e, "transient failure: the invocation fails so it is retried");
            return Err(e);
        }
        let permanent = audit
            .failure
            .as_ref()
            .filter(|e| !e.is_retryable())
            .map(|e| (is_shut_out(e), e.operation()));
        if let Some((shut_out, operation)) = permanent {
            audit.outcome.status = Status::Failed;
            audit.severity = Severity::Critical;
            if shut_out {
                shut_out_finding(&mut audit, operation, self.common.self_role_arn.as_str());
            }
        }
        if audit.outcome.findings.is_empty() && audit.failure.is_none() {
            tracing::info!(key = %key.arn, status = ?audit.outcome.status, "nothing to announce");
            return Ok(audit.outcome);
        }

        audit.outcome.alias = self.alias(key, aliases).await;
        let notification = KeyMessage {
            key,
            cause,
            outcome: &audit.outcome,
            failure: audit.failure.as_ref(),
            headline: &audit.headline,
            severity: audit.severity,
            guidance: audit.guidance.clone(),
        }
        .render(&self.speaker());
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
        match audit.failure {
            Some(e) if retryable => Err(e),
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
            outcome: KeyOutcome::new(key),
            failure: Some(error),
            headline: "Guardrail shut out of KMS key".into(),
            severity: Severity::Critical,
            guidance: None,
        };
        self.finish(key, cause, Aliases::PerKey, audit).await
    }
}

/// AccessDenied on the reads every audit starts with: someone took the function's access.
fn is_shut_out(e: &GuardrailError) -> bool {
    e.is_access_denied() && matches!(e.operation(), Some("DescribeKey" | "GetKeyPolicy"))
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

impl Guard<'_> {
    /// The whole invocation for a function that audits keys: CloudTrail events through the
    /// gate and the resolution chain (announcing keys entering or leaving management and keys
    /// that shut the guardrail out), scheduled sweeps through the sweep runner. `audit` is the
    /// function's decisions for one managed key; `extra` holds findings the event itself made
    /// (an enrolment).
    pub async fn handle<F, Fut>(
        &self,
        event: LambdaEvent<Value>,
        gate: &EventGate,
        audit: F,
    ) -> Result<Outcome, GuardrailError>
    where
        F: Fn(KeyInfo, Vec<Finding>) -> Fut + Copy,
        Fut: Future<Output = Audit>,
    {
        let outcome = match parse_trigger(&event.payload) {
            Ok(Trigger::CloudTrail(ev)) => {
                let d = &ev.detail;
                let span = info_span!("event", event_id = d.event_id(), event_name = %d.event_name);
                self.on_event(gate, d, audit).instrument(span).await
            }
            Ok(Trigger::Scheduled { id, time }) => {
                let span = info_span!("sweep", event_id = id.as_deref().unwrap_or("unknown"));
                let deadline = Deadline::from_context_millis(event.context.deadline);
                let seed = id.as_deref().unwrap_or("sweep");
                let time = time.as_deref();
                let report = sweep::run(
                    self.clients,
                    self.common,
                    deadline,
                    seed,
                    |swept| async move {
                        let cause = Cause::Sweep { time };
                        let swept = match swept {
                            Swept::Key(swept) => swept,
                            Swept::ShutOut { key, error } => {
                                return self.shut_out(&key, cause, error).await;
                            }
                        };
                        let span = info_span!("key", key = %swept.key.arn);
                        let result = audit(swept.key.clone(), Vec::new())
                            .instrument(span.clone())
                            .await;
                        let aliases = Aliases::Region(&swept.aliases);
                        self.finish(&swept.key, cause, aliases, result)
                            .instrument(span)
                            .await
                    },
                )
                .instrument(span)
                .await;
                Ok(Outcome::Sweep(report))
            }
            Ok(other) => Err(GuardrailError::InvalidEvent(format!(
                "{} does not handle a {}",
                self.function,
                other.describe()
            ))),
            Err(e) => Err(e),
        };
        if let Err(e) = &outcome {
            tracing::error!(error_type = e.error_type(), error = %e, "invocation failed");
        }
        outcome
    }

    async fn on_event<F, Fut>(
        &self,
        gate: &EventGate,
        detail: &CloudTrailDetail,
        audit: F,
    ) -> Result<Outcome, GuardrailError>
    where
        F: Fn(KeyInfo, Vec<Finding>) -> Fut + Copy,
        Fut: Future<Output = Audit>,
    {
        let skipped = |reason: String| {
            Ok(Outcome::skipped(
                detail.event_id(),
                &detail.event_name,
                reason,
            ))
        };
        if let Err(reason) = gate.admit(detail, &self.common.self_role_arn) {
            return skipped(reason);
        }
        let (mut outcomes, mut reasons) = (Vec::new(), Vec::new());
        for locator in membership::event_keys(detail, &self.common.region)? {
            match self.on_key(detail, &locator, audit).await? {
                Ok(outcome) => outcomes.push(outcome),
                Err(reason) => reasons.push(reason),
            }
        }
        Ok(match outcomes.len() {
            0 => return skipped(reasons.join("; ")),
            1 => Outcome::Key(outcomes.remove(0)),
            _ => Outcome::Keys(outcomes),
        })
    }

    /// Acts on one key an event names; `Ok(Err(reason))` when it is not ours.
    async fn on_key<F, Fut>(
        &self,
        detail: &CloudTrailDetail,
        locator: &KeyLocator,
        audit: F,
    ) -> Result<Result<KeyOutcome, String>, GuardrailError>
    where
        F: Fn(KeyInfo, Vec<Finding>) -> Fut,
        Fut: Future<Output = Audit>,
    {
        let (common, cause) = (self.common, Cause::Event(detail));
        let (key, result) = match resolve(self.clients, common, locator).await? {
            Resolution::Managed(key) => {
                let extra = membership::enrolment(self.function, detail, &common.managed, &key);
                let result = audit(key.clone(), extra.into_iter().collect()).await;
                (key, result)
            }
            Resolution::Unmanaged { key, reason } => {
                let Some(departure) = membership::left_management(detail, &common.managed, &key)
                else {
                    return Ok(Err(reason));
                };
                let result = membership::left_audit(self.function, &key, &reason, &departure);
                (key, result)
            }
            Resolution::NotOurs(reason) => return Ok(Err(reason)),
            Resolution::ShutOut { key, error } => {
                let key = KeyInfo::unreadable(&key, &locator.region, &common.account_id);
                return self.shut_out(&key, cause, error).await.map(Ok);
            }
        };
        self.finish(&key, cause, Aliases::PerKey, result)
            .await
            .map(Ok)
    }
}
