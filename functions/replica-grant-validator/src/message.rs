//! The one message of a sweep or a bucket event: every key and bucket that needs a person,
//! with what was done. Every value from AWS goes through `shared::base::text`.

use shared::base::text::{one_line, value};
use shared::notify::outcome::Severity;
use shared::notify::{change_block, Cause, Notification, Speaker};

use shared::notify::deliver;
use shared::notify::outcome::SweepReport;
use shared::pipeline::journal::fnv1a;
use shared::pipeline::notices::{Notice, Remembered, SweepMemory};
use shared::pipeline::retry_or_report;
use shared::GuardrailError;

use crate::buckets::validate_bucket;
use crate::deps::{self, Deps};
use crate::handler::{Response, FUNCTION, SWEEP_TRIGGER};
use crate::report::{is_critical, PrimaryReport, ValidationReport};

/// The end of a sweep: every configured bucket checked, then one message for the keys the
/// sweep validated and the buckets. Keys a retry may fix were counted as `retry_later`; the
/// next sweep sees them again.
pub async fn sweep_digest(
    deps: &Deps,
    time: Option<&str>,
    sweep: SweepReport,
    keys: Vec<PrimaryReport>,
    memory: Option<&SweepMemory<'_>>,
) -> Result<Response, GuardrailError> {
    let config = &deps.config;
    let mut report = ValidationReport::new(SWEEP_TRIGGER, config.common.mode);
    report.keys = keys;
    for bucket in &config.buckets {
        let s3 = deps::s3(deps, &bucket.region);
        let roles = &config.replication_roles;
        let checked = validate_bucket(&s3, &deps.clients, &config.common, roles, bucket).await;
        report.buckets.push(checked);
    }
    report.sweep = Some(sweep);
    let id = time.unwrap_or("sweep");
    let cause = Cause::Sweep { id, time };
    let Some(memory) = memory else {
        return announce(deps, cause, report).await;
    };
    let common = &deps.config.common;
    let Some(notification) = digest(&Speaker::new(FUNCTION, common), cause, &report) else {
        if memory.knows(DIGEST) {
            memory.settle(DIGEST, Remembered::Forget, false).await;
        }
        return Ok(Response::Report(Box::new(report)));
    };
    // The same findings say the same words; only the sweep's own time differs.
    let fingerprint = fnv1a(&notification.body.replace(&change_block(cause), ""));
    let notice = Notice {
        subject: DIGEST.to_string(),
        fingerprint: fingerprint.clone(),
        notification,
    };
    let wrote = report.keys.iter().any(PrimaryReport::wrote);
    if !wrote && !memory.is_news(&notice) {
        tracing::info!("the sweep found what it announced before, unchanged: not announced again");
        report.not_announced_again = Some(
            "the same findings as the sweep message announced before; sent again when they change or REMINDER_HOURS passes".into(),
        );
        return Ok(Response::Report(Box::new(report)));
    }
    report.notification = Some(deliver(&deps.clients, common, &notice.notification).await?);
    memory
        .settle(DIGEST, Remembered::Remember(fingerprint), true)
        .await;
    Ok(Response::Report(Box::new(report)))
}

/// The state table's subject of the sweep's message.
const DIGEST: &str = "digest";

/// One message for the run when it found or did anything. A bucket event whose check a
/// retry may fix fails the invocation after the message, so nothing found is lost.
pub async fn announce(
    deps: &Deps,
    cause: Cause<'_>,
    mut report: ValidationReport,
) -> Result<Response, GuardrailError> {
    let common = &deps.config.common;
    if let Some(notification) = digest(&Speaker::new(FUNCTION, common), cause, &report) {
        report.notification = Some(deliver(&deps.clients, common, &notification).await?);
    }
    if let Cause::Event(_) = cause {
        for error in report.buckets.iter().filter_map(|b| b.error.clone()) {
            retry_or_report(error)?;
        }
    }
    Ok(Response::Report(Box::new(report)))
}

/// The message for `report`, or `None` when nothing was found, done or failed.
pub fn digest(
    speaker: &Speaker<'_>,
    cause: Cause<'_>,
    report: &ValidationReport,
) -> Option<Notification> {
    let keys: Vec<&PrimaryReport> = report.keys.iter().filter(|k| k.needs_attention()).collect();
    let buckets: Vec<_> = report
        .buckets
        .iter()
        .filter(|b| b.error.is_some() || b.all_problems().next().is_some())
        .collect();
    let failed = report
        .sweep
        .as_ref()
        .map_or(0, |s| s.failed + s.retry_later);
    if keys.is_empty() && buckets.is_empty() && failed == 0 {
        return None;
    }

    let findings: usize = keys.iter().map(|k| k.all_findings().len()).sum::<usize>()
        + buckets
            .iter()
            .map(|b| b.all_problems().count() + usize::from(b.error.is_some()))
            .sum::<usize>();
    let writes = report.writes();
    let label = match speaker.environment {
        Some(env) if !env.is_empty() => format!("[{env}] "),
        _ => String::new(),
    };
    let mut subject = format!("{label}Multi-Region replicas: {findings} problem(s)");
    if writes > 0 {
        subject.push_str(&format!(", {writes} repair(s)"));
    }
    subject.push_str(match cause {
        Cause::Sweep { .. } => " (sweep)",
        Cause::Event(_) | Cause::Command { .. } => "",
    });

    let mut body = format!(
        "kms-guardrails {}, mode {}\n\n{}",
        speaker.function,
        speaker.mode,
        change_block(cause)
    );
    for key in &keys {
        body.push_str(&format!(
            "\nKey {} ({})\n",
            value(&key.primary),
            value(&key.region)
        ));
        if let Some(error) = &key.error {
            body.push_str(&format!("  FAILED: {}\n", one_line(error, 400)));
        }
        for replica in &key.replicas {
            body.push_str(&format!(
                "  {} {}: grants {} ok, {} missing, {} unexpected\n",
                value(&replica.region),
                value(&replica.state),
                replica.grants.ok.len(),
                replica.grants.missing.len(),
                replica.grants.unexpected.len()
            ));
            if let Some(error) = &replica.error {
                body.push_str(&format!("    FAILED: {}\n", one_line(error, 400)));
            }
        }
        for finding in key.all_findings() {
            body.push_str(&format!("  - {}\n", one_line(&finding.summary, 1000)));
        }
        for action in key.all_actions() {
            let done = if action.done { "done" } else { "not done" };
            body.push_str(&format!(
                "  * {} ({done}): {}\n",
                action.operation,
                one_line(&action.detail, 400)
            ));
        }
    }
    for bucket in &buckets {
        body.push_str(&format!(
            "\nBucket {} ({})\n",
            value(&bucket.bucket),
            value(&bucket.region)
        ));
        if let Some(error) = &bucket.error {
            body.push_str(&format!(
                "  FAILED: {}\n",
                one_line(&error.to_string(), 400)
            ));
        }
        for problem in &bucket.problems {
            body.push_str(&format!("  - {}\n", one_line(&problem.summary, 1000)));
        }
        // Each rule's problems name the rule themselves.
        for problem in bucket.rules.iter().flat_map(|r| &r.problems) {
            body.push_str(&format!("  - {}\n", one_line(&problem.summary, 1000)));
        }
    }
    if let Some(sweep) = &report.sweep {
        body.push_str(&format!(
            "\nSweep: {} managed key(s) listed, {} failed, {} to retry next sweep, {} not started before the deadline.\n",
            sweep.managed, sweep.failed, sweep.retry_later, sweep.not_started
        ));
    }
    body.push_str("\nThe full report (per replica: state, grants, policy drift, replication-role access, actions) is the function's result and is in its log.\n");

    let critical = failed > 0
        || keys
            .iter()
            .any(|k| k.all_findings().iter().any(is_critical));
    let severity = if critical {
        Severity::Critical
    } else {
        Severity::High
    };
    Some(
        Notification::new(&subject, body)
            .attribute("function", speaker.function)
            .attribute("severity", severity.to_string())
            .attribute("mode", speaker.mode.to_string())
            .attribute("event_name", one_line(cause.event_name(), 64))
            .attribute("environment", speaker.environment.unwrap_or_default()),
    )
}
