//! policy-drift: restores the baseline key policy, rotation and key state of managed keys.

use std::collections::HashSet;

use aws_sdk_kms::types::KeyState;
use futures::stream::{self, StreamExt};
use lambda_runtime::LambdaEvent;
use serde_json::Value;
use shared::aws::{arn_partition, AwsClients};
use shared::baseline::{self, Baseline};
use shared::config::{Config, ManagedSelector, Mode};
use shared::events::{parse_trigger, CloudTrailDetail, CloudTrailEvent, KeyLocator, Trigger};
use shared::kms::{self, KeyInfo};
use shared::managed::{management, Management};
use shared::notify::{change_block, key_block, Notification};
use shared::outcome::{Action, Finding, KeyFailure, KeyOutcome, Outcome, Status, SweepReport};
use shared::policy::Policy;
use shared::GuardrailError;
use tracing::{error, info, info_span, warn, Instrument};

/// CloudTrail events that can move a key away from its baseline.
pub const HANDLED_EVENTS: &[&str] = &[
    "PutKeyPolicy",
    "DisableKeyRotation",
    "EnableKeyRotation",
    "ScheduleKeyDeletion",
    "DisableKey",
    "CreateKey",
    "TagResource",
    "UntagResource",
];

pub struct Deps {
    pub config: Config,
    pub clients: AwsClients,
}

pub async fn function_handler(
    event: LambdaEvent<Value>,
    deps: &Deps,
) -> Result<Outcome, GuardrailError> {
    let outcome = match parse_trigger(&event.payload) {
        Ok(Trigger::CloudTrail(event)) => handle_cloudtrail(&event, deps).await,
        Ok(Trigger::Scheduled { id, time }) => {
            let span = info_span!("sweep", event_id = id.as_deref().unwrap_or("unknown"));
            sweep(deps, time.as_deref()).instrument(span).await
        }
        Err(e) => Err(e),
    };
    if let Err(e) = &outcome {
        error!(error_type = e.error_type(), error = %e, "invocation failed");
    }
    outcome
}

fn skipped(detail: &CloudTrailDetail, reason: String) -> Result<Outcome, GuardrailError> {
    info!(reason = %reason, "event skipped");
    Ok(Outcome::Skipped {
        event_id: detail.event_id().to_string(),
        event_name: detail.event_name.clone(),
        reason,
    })
}

/// True when the function's own role made the call: answering our own writes would loop.
pub fn caused_by_role(detail: &CloudTrailDetail, role_arn: &str) -> bool {
    if detail.session_issuer_arn() == Some(role_arn) {
        return true;
    }
    // Records without sessionContext still carry the assumed-role session ARN.
    let role_name = role_arn.rsplit('/').next().unwrap_or(role_arn);
    let account = shared::aws::arn_account(role_arn).unwrap_or_default();
    detail.user_identity.arn.as_deref().is_some_and(|arn| {
        arn.split_once(":sts::")
            .and_then(|(_, rest)| rest.strip_prefix(account))
            .and_then(|rest| rest.strip_prefix(":assumed-role/"))
            .is_some_and(|rest| rest.split('/').next() == Some(role_name))
    })
}

async fn handle_cloudtrail(
    event: &CloudTrailEvent,
    deps: &Deps,
) -> Result<Outcome, GuardrailError> {
    let detail = &event.detail;
    let span = info_span!(
        "event",
        event_id = detail.event_id(),
        event_name = %detail.event_name,
        key = tracing::field::Empty
    );
    async {
        if detail.event_source != "kms.amazonaws.com" {
            return skipped(
                detail,
                format!("event source {} is not KMS", detail.event_source),
            );
        }
        if !HANDLED_EVENTS.contains(&detail.event_name.as_str()) {
            return skipped(
                detail,
                format!("policy-drift does not act on {} events", detail.event_name),
            );
        }
        if let Some(code) = &detail.error_code {
            return skipped(
                detail,
                format!(
                    "the {} call failed ({code}), so nothing changed",
                    detail.event_name
                ),
            );
        }
        if caused_by_role(detail, &deps.config.self_role_arn) {
            return skipped(
                detail,
                "caused by this function's own role (loop prevention)".to_string(),
            );
        }
        let locator = detail.key_locator(&deps.config.region)?;
        let client = deps.clients.kms(&locator.region);
        let key = match kms::describe_key(&client, &locator.identifier, &locator.region).await {
            Ok(key) => key,
            Err(e) if e.is_not_found() => {
                return skipped(
                    detail,
                    format!("key {} no longer exists", locator.identifier),
                );
            }
            Err(e) => return Err(e),
        };
        tracing::Span::current().record("key", key.arn.as_str());
        if key.account != deps.config.account_id {
            return skipped(
                detail,
                format!(
                    "key belongs to account {}, not {}",
                    key.account, deps.config.account_id
                ),
            );
        }
        if let Management::Unmanaged(reason) =
            management(&deps.config.managed, &client, &key).await?
        {
            if let Some(tag) = removes_managed_tag(detail, &deps.config.managed) {
                return left_management(deps, &client, &key, detail, tag, &reason)
                    .await
                    .map(Outcome::Key);
            }
            return skipped(detail, format!("unmanaged key: {reason}"));
        }
        audit_key(deps, &key, Some(detail), None)
            .await
            .map(Outcome::Key)
    }
    .instrument(span)
    .await
}

/// True when the call took the managed tag off a key or gave it another value: the key just
/// left the guardrails, which someone may be doing to change it unwatched.
/// Returns the managed tag's key and value when so.
pub fn removes_managed_tag<'a>(
    detail: &CloudTrailDetail,
    selector: &'a ManagedSelector,
) -> Option<(&'a str, &'a str)> {
    let ManagedSelector::Tag { key, value } = selector else {
        return None;
    };
    let list = |name: &str| {
        detail
            .request_parameters
            .as_ref()
            .and_then(|p| p.get(name))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let removed = match detail.event_name.as_str() {
        "UntagResource" => list("tagKeys").iter().any(|k| k.as_str() == Some(key)),
        "TagResource" => list("tags").iter().any(|t| {
            t.get("tagKey").and_then(Value::as_str) == Some(key)
                && t.get("tagValue").and_then(Value::as_str) != Some(value)
        }),
        _ => false,
    };
    removed.then_some((key.as_str(), value.as_str()))
}

/// Announces that a key left management. Writes nothing: retiring a key this way is legitimate.
async fn left_management(
    deps: &Deps,
    client: &aws_sdk_kms::Client,
    key: &KeyInfo,
    detail: &CloudTrailDetail,
    (tag_key, value): (&str, &str),
    reason: &str,
) -> Result<KeyOutcome, GuardrailError> {
    let alias = notification_alias(client, key).await;
    let finding = Finding {
        kind: "left_management",
        summary: format!("the managed tag {tag_key}={value} was removed or changed ({reason}): policy-drift no longer guards this key"),
        diff: None,
    };
    let name = alias.as_deref().unwrap_or(&key.key_id);
    let mut body = body_header(deps, key, alias.as_deref(), Some(detail), None);
    body.push_str(&format!(
        "\nFindings:\n- {}\n\nNothing was changed. If this was not a planned retirement, put the tag back:\n  aws kms tag-resource --region {} --key-id {} --tags TagKey={tag_key},TagValue={value}\n",
        finding.summary, key.region, key.key_id
    ));
    let notification = notification(
        deps,
        key,
        &format!(
            "KMS key left guardrails management: {name} ({})",
            key.region
        ),
        body,
        "high",
        &detail.event_name,
    );
    info!(key = %key.arn, reason = %reason, "key left management");
    let notification_id = notification
        .publish(&deps.clients, &deps.config.notify_topic_arn)
        .await?;
    Ok(KeyOutcome {
        key_arn: key.arn.clone(),
        key_id: key.key_id.clone(),
        region: key.region.clone(),
        alias,
        status: Status::Reported,
        findings: vec![finding],
        actions: Vec::new(),
        reason: None,
        notification_id: Some(notification_id),
    })
}

/// A write that brings the key back to its baseline, in the order they must run: a key pending
/// deletion or disabled refuses PutKeyPolicy and EnableKeyRotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Correction {
    CancelKeyDeletion,
    EnableKey,
    PutKeyPolicy,
    EnableKeyRotation,
}

impl Correction {
    fn operation(self) -> &'static str {
        match self {
            Correction::CancelKeyDeletion => "CancelKeyDeletion",
            Correction::EnableKey => "EnableKey",
            Correction::PutKeyPolicy => "PutKeyPolicy",
            Correction::EnableKeyRotation => "EnableKeyRotation",
        }
    }
}

struct Audit {
    findings: Vec<Finding>,
    corrections: Vec<Correction>,
    /// Rotation could not be read in the key's current state.
    rotation_deferred: bool,
}

/// The rotation finding for `key`, if its rotation differs from the baseline.
async fn rotation_finding(
    deps: &Deps,
    client: &aws_sdk_kms::Client,
    key: &KeyInfo,
) -> Result<Option<Finding>, GuardrailError> {
    let baseline = deps.config.rotation;
    let status = kms::rotation_status(client, &key.arn).await?;
    Ok(if !status.enabled {
        Some(Finding {
            kind: "rotation_disabled",
            summary: format!(
                "automatic rotation is disabled (baseline: every {} days)",
                baseline.period_days
            ),
            diff: None,
        })
    } else {
        status
            .period_days
            .filter(|p| *p != baseline.period_days)
            .map(|period| Finding {
                kind: "rotation_period",
                summary: format!(
                    "rotation period is {period} days (baseline: {} days)",
                    baseline.period_days
                ),
                diff: None,
            })
    })
}

async fn inspect(
    deps: &Deps,
    client: &aws_sdk_kms::Client,
    key: &KeyInfo,
    baseline: &Baseline,
) -> Result<Audit, GuardrailError> {
    let mut audit = Audit {
        findings: Vec::new(),
        corrections: Vec::new(),
        rotation_deferred: false,
    };
    match key.state {
        KeyState::PendingDeletion | KeyState::PendingReplicaDeletion => {
            audit.findings.push(Finding {
                kind: "pending_deletion",
                summary: match &key.deletion_date {
                    Some(date) => format!("the key is scheduled for deletion on {date}"),
                    None => "the key is scheduled for deletion".into(),
                },
                diff: None,
            });
            // CancelKeyDeletion leaves the key Disabled.
            audit
                .corrections
                .extend([Correction::CancelKeyDeletion, Correction::EnableKey]);
        }
        KeyState::Disabled => {
            audit.findings.push(Finding {
                kind: "key_disabled",
                summary: "the key is disabled".into(),
                diff: None,
            });
            audit.corrections.push(Correction::EnableKey);
        }
        _ => {}
    }

    let actual = kms::key_policy(client, &key.arn).await?;
    match Policy::parse(&actual) {
        Ok(policy) => {
            let diff = policy.diff_against(&baseline.policy);
            if !diff.is_empty() {
                audit.findings.push(Finding {
                    kind: "policy_drift",
                    summary: format!(
                        "the key policy differs from the baseline: {} missing, {} extra, {} changed statement(s){}",
                        diff.missing.len(),
                        diff.extra.len(),
                        diff.changed.len(),
                        if diff.version.is_some() { ", different Version" } else { "" }
                    ),
                    diff: Some(diff.to_string()),
                });
                audit.corrections.push(Correction::PutKeyPolicy);
            }
        }
        Err(e) => {
            audit.findings.push(Finding {
                kind: "policy_unreadable",
                summary: format!(
                    "the key policy is not a policy the baseline can be compared with ({e})"
                ),
                diff: None,
            });
            audit.corrections.push(Correction::PutKeyPolicy);
        }
    }

    // Replicas share the primary's rotation; asymmetric, HMAC and imported keys cannot rotate.
    if deps.config.rotation.enabled && key.rotatable && !key.is_replica() {
        match rotation_finding(deps, client, key).await {
            Ok(Some(finding)) => {
                audit.findings.push(finding);
                audit.corrections.push(Correction::EnableKeyRotation);
            }
            Ok(None) => {}
            // KMS may refuse rotation reads while a key is disabled or pending deletion; it is
            // read again once the key is enabled.
            Err(e) if key.state != KeyState::Enabled && e.error_type() == "KeyInvalidState" => {
                audit.rotation_deferred = true;
            }
            Err(e) => return Err(e),
        }
    }
    audit.corrections.sort();
    Ok(audit)
}

async fn apply(
    deps: &Deps,
    client: &aws_sdk_kms::Client,
    key: &KeyInfo,
    baseline: &Baseline,
    correction: Correction,
) -> Result<String, GuardrailError> {
    // Writes name the key by id on its own Region's client: AWS accepts id or ARN, and moto
    // only the id for EnableKey and CancelKeyDeletion. Errors still name the full ARN.
    let (id, arn) = (key.key_id.as_str(), key.arn.as_str());
    let op = correction.operation();
    match correction {
        Correction::CancelKeyDeletion => {
            client
                .cancel_key_deletion()
                .key_id(id)
                .send()
                .await
                .map_err(|e| GuardrailError::aws(op, arn, e))?;
            Ok("cancelled the scheduled deletion".into())
        }
        Correction::EnableKey => {
            client
                .enable_key()
                .key_id(id)
                .send()
                .await
                .map_err(|e| GuardrailError::aws(op, arn, e))?;
            Ok("enabled the key".into())
        }
        Correction::PutKeyPolicy => {
            client
                .put_key_policy()
                .key_id(id)
                .policy_name(kms::DEFAULT_POLICY_NAME)
                .policy(&baseline.document)
                // Never bypass: KMS's own lockout check is a second line of defence.
                .bypass_policy_lockout_safety_check(false)
                .send()
                .await
                .map_err(|e| GuardrailError::aws(op, arn, e))?;
            Ok("restored the baseline key policy".into())
        }
        Correction::EnableKeyRotation => {
            let days = deps.config.rotation.period_days;
            client
                .enable_key_rotation()
                .key_id(id)
                .rotation_period_in_days(days)
                .send()
                .await
                .map_err(|e| GuardrailError::aws(op, arn, e))?;
            Ok(format!("enabled automatic rotation every {days} days"))
        }
    }
}

/// Reads rotation again now that the key is enabled, and restores it if it drifted.
async fn restore_deferred_rotation(
    deps: &Deps,
    client: &aws_sdk_kms::Client,
    key: &KeyInfo,
    baseline: &Baseline,
    outcome: &mut KeyOutcome,
) -> Result<(), GuardrailError> {
    if let Some(finding) = rotation_finding(deps, client, key).await? {
        outcome.findings.push(finding);
        let detail = apply(deps, client, key, baseline, Correction::EnableKeyRotation).await?;
        outcome.actions.push(Action {
            operation: Correction::EnableKeyRotation.operation(),
            detail,
            done: true,
        });
    }
    Ok(())
}

fn planned_detail(correction: Correction, deps: &Deps) -> String {
    match correction {
        Correction::CancelKeyDeletion => "would cancel the scheduled deletion".into(),
        Correction::EnableKey => "would enable the key".into(),
        Correction::PutKeyPolicy => "would restore the baseline key policy".into(),
        Correction::EnableKeyRotation => {
            format!(
                "would enable automatic rotation every {} days",
                deps.config.rotation.period_days
            )
        }
    }
}

/// Compares one managed key with its baseline, corrects it in enforce mode and notifies when
/// anything was found. Writes nothing when nothing drifted.
async fn audit_key(
    deps: &Deps,
    key: &KeyInfo,
    detail: Option<&CloudTrailDetail>,
    sweep_time: Option<&str>,
) -> Result<KeyOutcome, GuardrailError> {
    let mut outcome = KeyOutcome {
        key_arn: key.arn.clone(),
        key_id: key.key_id.clone(),
        region: key.region.clone(),
        alias: None,
        status: Status::Compliant,
        findings: Vec::new(),
        actions: Vec::new(),
        reason: None,
        notification_id: None,
    };
    if !matches!(
        key.state,
        KeyState::Enabled
            | KeyState::Disabled
            | KeyState::PendingDeletion
            | KeyState::PendingReplicaDeletion
    ) {
        let reason = format!(
            "key is in state {}; nothing is written until it settles",
            key.state.as_str()
        );
        info!(key = %key.arn, reason = %reason, "key skipped");
        outcome.status = Status::Skipped;
        outcome.reason = Some(reason);
        return Ok(outcome);
    }
    let client = deps.clients.kms(&key.region);
    let baseline = baseline::render(
        &deps.config.baseline,
        &key.account,
        &key.region,
        arn_partition(&key.arn),
    )
    .map_err(|e| {
        GuardrailError::Configuration(shared::config::ConfigError { problems: vec![e] })
    })?;
    let audit = inspect(deps, &client, key, &baseline).await?;
    if audit.findings.is_empty() {
        info!(key = %key.arn, "key matches its baseline");
        return Ok(outcome);
    }
    outcome.findings = audit.findings;

    let mut failure = None;
    for correction in audit.corrections {
        if deps.config.mode == Mode::Report {
            outcome.actions.push(Action {
                operation: correction.operation(),
                detail: planned_detail(correction, deps),
                done: false,
            });
            continue;
        }
        match apply(deps, &client, key, &baseline, correction).await {
            Ok(detail) => {
                info!(key = %key.arn, operation = correction.operation(), "{detail}");
                outcome.actions.push(Action {
                    operation: correction.operation(),
                    detail,
                    done: true,
                });
            }
            Err(e) => {
                error!(key = %key.arn, operation = correction.operation(), error_type = e.error_type(), error = %e, "correction failed");
                failure = Some(e);
                break;
            }
        }
    }
    if audit.rotation_deferred {
        match deps.config.mode {
            Mode::Report => outcome.findings.push(Finding {
                kind: "rotation_unknown",
                summary: format!(
                    "rotation was not checked: KMS does not report it while the key is {}",
                    key.state.as_str()
                ),
                diff: None,
            }),
            Mode::Enforce if failure.is_none() => {
                if let Err(e) =
                    restore_deferred_rotation(deps, &client, key, &baseline, &mut outcome).await
                {
                    failure = Some(e);
                }
            }
            Mode::Enforce => {}
        }
    }
    outcome.status = match deps.config.mode {
        Mode::Report => Status::Reported,
        Mode::Enforce => Status::Corrected,
    };

    outcome.alias = notification_alias(&client, key).await;
    let notification =
        build_notification(deps, key, &outcome, detail, sweep_time, failure.as_ref());
    // Logged before publishing: if SNS fails, a retry finds the key compliant and has nothing
    // to announce, so the log is the record of what was done.
    info!(
        key = %key.arn,
        status = ?outcome.status,
        findings = ?outcome.findings.iter().map(|f| f.kind).collect::<Vec<_>>(),
        actions = ?outcome.actions.iter().map(|a| a.operation).collect::<Vec<_>>(),
        writes = outcome.writes(),
        "drift handled"
    );
    outcome.notification_id = Some(
        notification
            .publish(&deps.clients, &deps.config.notify_topic_arn)
            .await?,
    );
    match failure {
        Some(e) => Err(e),
        None => Ok(outcome),
    }
}

fn build_notification(
    deps: &Deps,
    key: &KeyInfo,
    outcome: &KeyOutcome,
    detail: Option<&CloudTrailDetail>,
    sweep_time: Option<&str>,
    failure: Option<&GuardrailError>,
) -> Notification {
    let name = outcome.alias.as_deref().unwrap_or(&key.key_id);
    let what = if outcome
        .findings
        .iter()
        .any(|f| f.kind.starts_with("policy"))
    {
        "KMS key policy drift"
    } else {
        "KMS key drift"
    };
    let verb = match (deps.config.mode, failure) {
        (_, Some(_)) => "NOT corrected",
        (Mode::Enforce, None) => "corrected",
        (Mode::Report, None) => "found",
    };
    let subject = format!("{what} {verb}: {name} ({})", key.region);

    let mut body = body_header(deps, key, outcome.alias.as_deref(), detail, sweep_time);
    body.push_str("\nFindings:\n");
    for finding in &outcome.findings {
        body.push_str(&format!("- {}\n", finding.summary));
        if let Some(diff) = &finding.diff {
            body.push_str("  Statement diff (- baseline only, + actual only):\n");
            for line in diff.lines() {
                body.push_str(&format!("  {line}\n"));
            }
        }
    }
    let heading = match deps.config.mode {
        Mode::Enforce => "\nActions taken:\n",
        Mode::Report => "\nReport mode: nothing was changed. Enforce mode would:\n",
    };
    body.push_str(heading);
    for action in &outcome.actions {
        body.push_str(&format!("- {}: {}\n", action.operation, action.detail));
    }
    if let Some(e) = failure {
        body.push_str(&format!(
            "\nCorrection FAILED ({}): {e}\nThe key is still out of baseline. Check that the function's role may call this operation on the key (key policy and IAM), then let the next sweep retry.\n",
            e.error_type()
        ));
    }
    let severity = if failure.is_some() {
        "critical"
    } else {
        "high"
    };
    let event_name = detail.map_or("ScheduledSweep", |d| d.event_name.as_str());
    notification(deps, key, &subject, body, severity, event_name)
}

/// The key's first alias, for people; a failed lookup only costs the notification its alias.
async fn notification_alias(client: &aws_sdk_kms::Client, key: &KeyInfo) -> Option<String> {
    match kms::aliases(client, &key.key_id).await {
        Ok(names) => names.into_iter().next(),
        Err(e) => {
            warn!(error = %e, "aliases unavailable for the notification");
            None
        }
    }
}

/// The start of every message body: the function and mode, which key, and who changed it.
fn body_header(
    deps: &Deps,
    key: &KeyInfo,
    alias: Option<&str>,
    detail: Option<&CloudTrailDetail>,
    sweep_time: Option<&str>,
) -> String {
    format!(
        "kms-guardrails policy-drift, mode {}\n\n{}\n{}",
        deps.config.mode,
        key_block(key, alias),
        change_block(detail, sweep_time)
    )
}

/// A notification about `key`: the environment label before the subject and the message
/// attributes subscribers filter on.
fn notification(
    deps: &Deps,
    key: &KeyInfo,
    subject: &str,
    body: String,
    severity: &str,
    event_name: &str,
) -> Notification {
    let environment = deps.config.environment.clone().unwrap_or_default();
    let label = if environment.is_empty() {
        String::new()
    } else {
        format!("[{environment}] ")
    };
    Notification::new(&format!("{label}{subject}"), body)
        .attribute("function", "policy-drift")
        .attribute("severity", severity)
        .attribute("mode", deps.config.mode.to_string())
        .attribute("key_id", key.key_id.clone())
        .attribute("region", key.region.clone())
        .attribute("event_name", event_name)
        .attribute("environment", environment)
}

/// Where the sweep looks: the configured list, or every key of every sweep Region.
async fn sweep_candidates(deps: &Deps) -> Result<Vec<KeyLocator>, GuardrailError> {
    let config = &deps.config;
    match &config.managed {
        ManagedSelector::Keys(entries) => entries
            .iter()
            .map(|e| {
                KeyLocator::parse(e, &config.region)
                    .map_err(|msg| GuardrailError::InvalidEvent(format!("MANAGED_KEYS: {msg}")))
            })
            .collect(),
        ManagedSelector::Tag { .. } => {
            let mut all = Vec::new();
            for region in &config.sweep_regions {
                let arns = kms::list_key_arns(&deps.clients.kms(region)).await?;
                all.extend(arns.into_iter().map(|arn| KeyLocator {
                    region: region.clone(),
                    identifier: arn,
                }));
            }
            Ok(all)
        }
    }
}

/// A managed key of this account, or `None` when the candidate is not ours to audit.
async fn resolve_managed(
    deps: &Deps,
    locator: &KeyLocator,
) -> Result<Option<KeyInfo>, GuardrailError> {
    let client = deps.clients.kms(&locator.region);
    let key = match kms::describe_key(&client, &locator.identifier, &locator.region).await {
        Ok(key) => key,
        // Deleted between ListKeys and now: nothing left to guard.
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(e),
    };
    if key.account != deps.config.account_id || !key.customer_managed {
        return Ok(None);
    }
    Ok(
        match management(&deps.config.managed, &client, &key).await? {
            Management::Managed => Some(key),
            Management::Unmanaged(_) => None,
        },
    )
}

async fn sweep(deps: &Deps, time: Option<&str>) -> Result<Outcome, GuardrailError> {
    let candidates = sweep_candidates(deps).await?;
    let concurrency = deps.config.sweep_concurrency;
    let mut report = SweepReport {
        regions: deps.config.sweep_regions.clone(),
        keys_examined: candidates.len(),
        ..SweepReport::default()
    };

    let resolved: Vec<(KeyLocator, Result<Option<KeyInfo>, GuardrailError>)> =
        stream::iter(candidates)
            .map(|locator| async move {
                let result = resolve_managed(deps, &locator).await;
                (locator, result)
            })
            .buffer_unordered(concurrency)
            .collect()
            .await;
    let mut seen = HashSet::new();
    let mut managed = Vec::new();
    for (locator, result) in resolved {
        match result {
            Ok(Some(key)) if seen.insert(key.arn.clone()) => managed.push(key),
            Ok(_) => {}
            Err(e) => report.failed.push(KeyFailure {
                key: locator.identifier,
                error_type: e.error_type().to_string(),
                error: e.to_string(),
            }),
        }
    }
    report.managed = managed.len();

    let audited: Vec<(String, Result<KeyOutcome, GuardrailError>)> = stream::iter(managed)
        .map(|key| async move {
            let span = info_span!("key", key = %key.arn);
            let result = audit_key(deps, &key, None, time).instrument(span).await;
            (key.arn, result)
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    for (arn, result) in audited {
        match result {
            Ok(outcome) => {
                match outcome.status {
                    Status::Compliant | Status::Skipped => {
                        report.compliant += usize::from(outcome.status == Status::Compliant)
                    }
                    Status::Corrected => report.corrected += 1,
                    Status::Reported => report.reported += 1,
                }
                if !outcome.findings.is_empty() {
                    report.drifted.push(outcome);
                }
            }
            Err(e) => report.failed.push(KeyFailure {
                key: arn,
                error_type: e.error_type().to_string(),
                error: e.to_string(),
            }),
        }
    }
    report.drifted.sort_by(|a, b| a.key_arn.cmp(&b.key_arn));
    info!(
        keys_examined = report.keys_examined,
        managed = report.managed,
        compliant = report.compliant,
        corrected = report.corrected,
        reported = report.reported,
        failed = report.failed.len(),
        "sweep finished"
    );
    if let Some(first) = report.failed.first() {
        return Err(GuardrailError::Incomplete(format!(
            "sweep finished with {} of {} keys failed; first: {} ({}): {}",
            report.failed.len(),
            report.keys_examined,
            first.key,
            first.error_type,
            first.error
        )));
    }
    Ok(Outcome::Sweep(report))
}

#[cfg(test)]
mod tests {
    //! SDK failures moto cannot produce, against the real SDK clients with mocked responses.

    use super::*;
    use aws_sdk_kms::operation::describe_key::{DescribeKeyError, DescribeKeyOutput};
    use aws_sdk_kms::operation::get_key_policy::{GetKeyPolicyError, GetKeyPolicyOutput};
    use aws_sdk_kms::operation::get_key_rotation_status::GetKeyRotationStatusOutput;
    use aws_sdk_kms::operation::list_aliases::ListAliasesOutput;
    use aws_sdk_kms::operation::list_resource_tags::ListResourceTagsOutput;
    use aws_sdk_kms::operation::put_key_policy::PutKeyPolicyError;
    use aws_sdk_kms::types::{KeyManagerType, KeyMetadata, KeySpec, OriginType, Tag};
    use aws_sdk_kms::Client as KmsClient;
    use aws_sdk_sns::operation::publish::PublishOutput;
    use aws_sdk_sns::Client as SnsClient;
    use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
    use aws_smithy_types::error::ErrorMetadata;
    use std::collections::HashMap;
    use std::time::Duration;

    const KEY_ARN: &str =
        "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    const PUT_KEY_POLICY: &str = include_str!("../../../events/policy-drift/put-key-policy.json");
    const BY_SELF: &str = include_str!("../../../events/policy-drift/put-key-policy-by-self.json");
    const FAILED_CALL: &str =
        include_str!("../../../events/policy-drift/put-key-policy-failed.json");
    const ROTATE_KEY: &str =
        include_str!("../../../events/policy-drift/rotate-key-service-event.json");

    fn config(mode: &str) -> Config {
        let env: HashMap<&str, &str> = HashMap::from([
            ("MODE", mode),
            ("ACCOUNT_ID", "111122223333"),
            ("AWS_REGION", "eu-west-1"),
            ("NOTIFY_TOPIC_ARN", "arn:aws:sns:eu-west-1:111122223333:kms-guardrails"),
            (
                "SELF_ROLE_ARN",
                "arn:aws:iam::111122223333:role/kms-guardrails-PolicyDriftFunctionRole-1A2B3C4D5E6F",
            ),
        ]);
        Config::from_lookup(&|k| env.get(k).map(|v| v.to_string())).unwrap()
    }

    /// Clients whose every call is answered by `kms` and `sns` rules, with the production retry
    /// policy (fast backoff so the test does not sleep for seconds).
    fn deps(mode: &str, kms: &[&Rule], sns: &[&Rule]) -> Deps {
        let retry = shared::aws::retry_config().with_initial_backoff(Duration::from_millis(1));
        let kms_retry = retry.clone();
        let kms_client: KmsClient = mock_client!(aws_sdk_kms, RuleMode::MatchAny, kms, |b| b
            .retry_config(kms_retry.clone())
            .region(aws_sdk_kms::config::Region::new("eu-west-1")));
        let sns_client: SnsClient = mock_client!(aws_sdk_sns, RuleMode::MatchAny, sns, |b| b
            .retry_config(retry.clone()));
        let sdk = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        Deps {
            config: config(mode),
            clients: AwsClients::new(sdk)
                .with_kms_client("eu-west-1", kms_client)
                .with_sns_client("eu-west-1", sns_client),
        }
    }

    fn event(text: &str) -> LambdaEvent<Value> {
        LambdaEvent::new(
            serde_json::from_str(text).unwrap(),
            lambda_runtime::Context::default(),
        )
    }

    fn describe_ok() -> Rule {
        describe_as(KEY_ARN, KeyManagerType::Customer, KeyState::Enabled)
    }

    /// DescribeKey for `arn` (named by its ARN) with the given manager and state.
    fn describe_as(arn: &'static str, manager: KeyManagerType, state: KeyState) -> Rule {
        mock!(KmsClient::describe_key)
            .match_requests(move |r| r.key_id() == Some(arn))
            .then_output(move || {
                DescribeKeyOutput::builder()
                    .key_metadata(
                        KeyMetadata::builder()
                            .key_id(arn.rsplit('/').next().unwrap())
                            .arn(arn)
                            .aws_account_id("111122223333")
                            .key_state(state.clone())
                            .key_manager(manager.clone())
                            .key_spec(KeySpec::SymmetricDefault)
                            .origin(OriginType::AwsKms)
                            .build()
                            .unwrap(),
                    )
                    .build()
            })
    }

    fn managed_tag() -> Rule {
        mock!(KmsClient::list_resource_tags).then_output(|| {
            ListResourceTagsOutput::builder()
                .tags(
                    Tag::builder()
                        .tag_key("guardrails:managed")
                        .tag_value("true")
                        .build()
                        .unwrap(),
                )
                .build()
        })
    }

    fn rotation_on() -> Rule {
        mock!(KmsClient::get_key_rotation_status).then_output(|| {
            GetKeyRotationStatusOutput::builder()
                .key_rotation_enabled(true)
                .rotation_period_in_days(365)
                .build()
        })
    }

    fn no_aliases() -> Rule {
        mock!(KmsClient::list_aliases).then_output(|| ListAliasesOutput::builder().build())
    }

    fn drifted_policy() -> Rule {
        mock!(KmsClient::get_key_policy).then_output(|| {
            GetKeyPolicyOutput::builder()
                .policy(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::444455556666:root"},"Action":"kms:*","Resource":"*"}]}"#)
                .build()
        })
    }

    fn publish_ok() -> Rule {
        mock!(SnsClient::publish)
            .then_output(|| PublishOutput::builder().message_id("msg-1").build())
    }

    fn error(code: &str, message: &str) -> ErrorMetadata {
        ErrorMetadata::builder().code(code).message(message).build()
    }

    #[tokio::test]
    async fn throttling_is_retried_then_the_policy_is_restored() {
        let throttled_then_ok = mock!(KmsClient::get_key_policy)
            .sequence()
            .error(|| GetKeyPolicyError::generic(error("ThrottlingException", "Rate exceeded")))
            .output(|| {
                GetKeyPolicyOutput::builder()
                    .policy(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"kms:*","Resource":"*"}]}"#)
                    .build()
            })
            .build();
        let put = mock!(KmsClient::put_key_policy)
            .match_requests(|r| {
                r.bypass_policy_lockout_safety_check() == Some(false)
                    && r.policy_name() == Some("default")
            })
            .then_output(|| {
                aws_sdk_kms::operation::put_key_policy::PutKeyPolicyOutput::builder().build()
            });
        let publish = publish_ok();
        let (describe, tags, rotation, aliases) =
            (describe_ok(), managed_tag(), rotation_on(), no_aliases());
        let deps = deps(
            "enforce",
            &[
                &describe,
                &tags,
                &throttled_then_ok,
                &put,
                &rotation,
                &aliases,
            ],
            &[&publish],
        );

        let outcome = function_handler(event(PUT_KEY_POLICY), &deps)
            .await
            .unwrap();

        assert_eq!(
            throttled_then_ok.num_calls(),
            2,
            "the throttled GetKeyPolicy is retried once"
        );
        assert_eq!(put.num_calls(), 1);
        assert_eq!(publish.num_calls(), 1);
        let Outcome::Key(key) = outcome else {
            panic!("expected a key outcome")
        };
        assert_eq!(key.status, Status::Corrected);
        assert_eq!(key.actions[0].operation, "PutKeyPolicy");
    }

    #[tokio::test]
    async fn access_denied_on_put_is_not_retried_and_names_operation_and_key() {
        let put = mock!(KmsClient::put_key_policy).then_error(|| {
            PutKeyPolicyError::generic(error(
                "AccessDeniedException",
                "User is not authorized to perform: kms:PutKeyPolicy",
            ))
        });
        let publish = mock!(SnsClient::publish)
            .match_requests(|r| {
                r.subject().is_some_and(|s| s.contains("NOT corrected"))
                    && r.message()
                        .is_some_and(|m| m.contains("Correction FAILED (AccessDenied)"))
            })
            .then_output(|| PublishOutput::builder().message_id("msg-2").build());
        let (describe, tags, policy, rotation, aliases) = (
            describe_ok(),
            managed_tag(),
            drifted_policy(),
            rotation_on(),
            no_aliases(),
        );
        let deps = deps(
            "enforce",
            &[&describe, &tags, &policy, &put, &rotation, &aliases],
            &[&publish],
        );

        let err = function_handler(event(PUT_KEY_POLICY), &deps)
            .await
            .unwrap_err();

        assert_eq!(put.num_calls(), 1, "AccessDenied is not retried");
        assert_eq!(
            publish.num_calls(),
            1,
            "people hear that the correction failed"
        );
        let diagnostic: lambda_runtime::Diagnostic = err.into();
        assert_eq!(diagnostic.error_type, "AccessDenied");
        assert!(
            diagnostic.error_message.starts_with(&format!(
                "PutKeyPolicy on {KEY_ARN} failed: AccessDeniedException"
            )),
            "{}",
            diagnostic.error_message
        );
    }

    #[tokio::test]
    async fn access_denied_on_describe_surfaces_with_the_key() {
        let describe = mock!(KmsClient::describe_key).then_error(|| {
            DescribeKeyError::generic(error("AccessDeniedException", "no kms:DescribeKey"))
        });
        let deps = deps("enforce", &[&describe], &[]);
        let err = function_handler(event(PUT_KEY_POLICY), &deps)
            .await
            .unwrap_err();
        assert_eq!(describe.num_calls(), 1);
        assert_eq!(err.error_type(), "AccessDenied");
        assert!(
            err.to_string()
                .starts_with(&format!("DescribeKey on {KEY_ARN} failed")),
            "{err}"
        );
    }

    #[tokio::test]
    async fn throttling_that_never_stops_gives_up_after_the_retry_budget() {
        let describe = mock!(KmsClient::describe_key).then_error(|| {
            DescribeKeyError::generic(error("ThrottlingException", "Rate exceeded"))
        });
        let deps = deps("enforce", &[&describe], &[]);
        let err = function_handler(event(PUT_KEY_POLICY), &deps)
            .await
            .unwrap_err();
        assert_eq!(describe.num_calls(), shared::aws::MAX_ATTEMPTS as usize);
        assert_eq!(err.error_type(), "Throttling");
    }

    #[tokio::test]
    async fn events_that_change_nothing_make_no_aws_call() {
        // Any AWS call would hit a client with no rules and fail the test.
        for (text, reason) in [
            (BY_SELF, "own role"),
            (FAILED_CALL, "call failed (AccessDeniedException)"),
            (ROTATE_KEY, "does not act on RotateKey"),
        ] {
            let deps = deps("enforce", &[], &[]);
            let outcome = function_handler(event(text), &deps).await.unwrap();
            let Outcome::Skipped { reason: actual, .. } = outcome else {
                panic!("expected a skip")
            };
            assert!(actual.contains(reason), "{actual}");
        }
    }

    #[tokio::test]
    async fn a_key_that_no_longer_exists_is_a_logged_skip() {
        let describe = mock!(KmsClient::describe_key).then_error(|| {
            DescribeKeyError::generic(error("NotFoundException", "Key does not exist"))
        });
        let deps = deps("enforce", &[&describe], &[]);
        let outcome = function_handler(event(PUT_KEY_POLICY), &deps)
            .await
            .unwrap();
        assert!(
            matches!(outcome, Outcome::Skipped { ref reason, .. } if reason.contains("no longer exists")),
            "{outcome:?}"
        );
    }

    #[tokio::test]
    async fn a_key_deleted_during_the_sweep_is_not_a_failure() {
        use aws_sdk_kms::operation::list_keys::ListKeysOutput;
        use aws_sdk_kms::types::KeyListEntry;
        let gone = "arn:aws:kms:eu-west-1:111122223333:key/00000000-0000-0000-0000-000000000000";
        let list = mock!(KmsClient::list_keys).then_output(move || {
            ListKeysOutput::builder()
                .keys(KeyListEntry::builder().key_arn(gone).build())
                .keys(KeyListEntry::builder().key_arn(KEY_ARN).build())
                .build()
        });
        let describe_gone = mock!(KmsClient::describe_key)
            .match_requests(move |r| r.key_id() == Some(gone))
            .then_error(|| {
                DescribeKeyError::generic(error("NotFoundException", "Key does not exist"))
            });
        let unmanaged = mock!(KmsClient::list_resource_tags)
            .then_output(|| ListResourceTagsOutput::builder().build());
        let describe = describe_ok();
        let deps = deps(
            "enforce",
            &[&list, &describe_gone, &describe, &unmanaged],
            &[],
        );
        let sweep = include_str!("../../../events/policy-drift/scheduled-sweep.json");

        let outcome = function_handler(event(sweep), &deps).await.unwrap();

        let Outcome::Sweep(report) = outcome else {
            panic!("expected a sweep report")
        };
        assert_eq!(
            (report.keys_examined, report.managed, report.failed.len()),
            (2, 0, 0)
        );
        assert_eq!(describe_gone.num_calls(), 1);
    }

    #[tokio::test]
    async fn a_changed_rotation_period_is_drift_and_is_set_back() {
        let rotation = mock!(KmsClient::get_key_rotation_status).then_output(|| {
            GetKeyRotationStatusOutput::builder()
                .key_rotation_enabled(true)
                .rotation_period_in_days(2560)
                .build()
        });
        let enable = mock!(KmsClient::enable_key_rotation)
            .match_requests(|r| r.rotation_period_in_days() == Some(365))
            .then_output(|| {
                aws_sdk_kms::operation::enable_key_rotation::EnableKeyRotationOutput::builder()
                    .build()
            });
        let baseline_policy = mock!(KmsClient::get_key_policy).then_output(|| {
            let baseline = baseline::render(
                &config("enforce").baseline,
                "111122223333",
                "eu-west-1",
                "aws",
            )
            .unwrap();
            GetKeyPolicyOutput::builder()
                .policy(baseline.document)
                .build()
        });
        let (describe, tags, aliases, publish) =
            (describe_ok(), managed_tag(), no_aliases(), publish_ok());
        let deps = deps(
            "enforce",
            &[
                &describe,
                &tags,
                &baseline_policy,
                &rotation,
                &enable,
                &aliases,
            ],
            &[&publish],
        );
        let sample = include_str!("../../../events/policy-drift/enable-key-rotation-period.json");

        let outcome = function_handler(event(sample), &deps).await.unwrap();

        assert_eq!(
            enable.num_calls(),
            1,
            "EnableKeyRotation with the baseline period of 365 days"
        );
        let Outcome::Key(key) = outcome else {
            panic!("expected a key outcome")
        };
        assert_eq!(
            key.findings[0].summary,
            "rotation period is 2560 days (baseline: 365 days)"
        );
    }

    #[tokio::test]
    async fn rotation_unreadable_while_pending_deletion_is_checked_after_the_key_is_back() {
        use aws_sdk_kms::operation::get_key_rotation_status::GetKeyRotationStatusError;
        let describe = describe_as(KEY_ARN, KeyManagerType::Customer, KeyState::PendingDeletion);
        let rotation = mock!(KmsClient::get_key_rotation_status)
            .sequence()
            .error(|| {
                GetKeyRotationStatusError::generic(error(
                    "KMSInvalidStateException",
                    "key is pending deletion",
                ))
            })
            .output(|| {
                GetKeyRotationStatusOutput::builder()
                    .key_rotation_enabled(false)
                    .build()
            })
            .build();
        let cancel = mock!(KmsClient::cancel_key_deletion).then_output(|| {
            aws_sdk_kms::operation::cancel_key_deletion::CancelKeyDeletionOutput::builder().build()
        });
        let enable = mock!(KmsClient::enable_key)
            .then_output(|| aws_sdk_kms::operation::enable_key::EnableKeyOutput::builder().build());
        let enable_rotation = mock!(KmsClient::enable_key_rotation).then_output(|| {
            aws_sdk_kms::operation::enable_key_rotation::EnableKeyRotationOutput::builder().build()
        });
        let put = mock!(KmsClient::put_key_policy).then_output(|| {
            aws_sdk_kms::operation::put_key_policy::PutKeyPolicyOutput::builder().build()
        });
        let (tags, policy, aliases, publish) =
            (managed_tag(), drifted_policy(), no_aliases(), publish_ok());
        let deps = deps(
            "enforce",
            &[
                &describe,
                &tags,
                &policy,
                &rotation,
                &cancel,
                &enable,
                &put,
                &enable_rotation,
                &aliases,
            ],
            &[&publish],
        );
        let sample = include_str!("../../../events/policy-drift/schedule-key-deletion.json");

        let outcome = function_handler(event(sample), &deps).await.unwrap();

        let Outcome::Key(key) = outcome else {
            panic!("expected a key outcome")
        };
        let operations: Vec<&str> = key.actions.iter().map(|a| a.operation).collect();
        assert_eq!(
            operations,
            vec![
                "CancelKeyDeletion",
                "EnableKey",
                "PutKeyPolicy",
                "EnableKeyRotation"
            ]
        );
        assert_eq!(
            rotation.num_calls(),
            2,
            "read once refused, once after EnableKey"
        );
        assert_eq!(enable_rotation.num_calls(), 1);
    }

    #[tokio::test]
    async fn an_aws_managed_key_is_skipped() {
        let describe = describe_as(KEY_ARN, KeyManagerType::Aws, KeyState::Enabled);
        let deps = deps("enforce", &[&describe], &[]);
        let outcome = function_handler(event(PUT_KEY_POLICY), &deps)
            .await
            .unwrap();
        assert!(
            matches!(outcome, Outcome::Skipped { ref reason, .. } if reason == "unmanaged key: AWS managed key: its policy is not ours to change"),
            "{outcome:?}"
        );
    }

    #[tokio::test]
    async fn one_failing_key_does_not_stop_the_sweep() {
        use aws_sdk_kms::operation::list_keys::ListKeysOutput;
        use aws_sdk_kms::types::KeyListEntry;
        const OTHER: &str =
            "arn:aws:kms:eu-west-1:111122223333:key/0fff0000-1111-2222-3333-444455556666";
        let list = mock!(KmsClient::list_keys).then_output(|| {
            ListKeysOutput::builder()
                .keys(KeyListEntry::builder().key_arn(OTHER).build())
                .keys(KeyListEntry::builder().key_arn(KEY_ARN).build())
                .build()
        });
        let denied = mock!(KmsClient::get_key_policy)
            .match_requests(|r| r.key_id() == Some(OTHER))
            .then_error(|| {
                GetKeyPolicyError::generic(error("AccessDeniedException", "no kms:GetKeyPolicy"))
            });
        let put = mock!(KmsClient::put_key_policy).then_output(|| {
            aws_sdk_kms::operation::put_key_policy::PutKeyPolicyOutput::builder().build()
        });
        let (describe, describe_other) = (
            describe_ok(),
            describe_as(OTHER, KeyManagerType::Customer, KeyState::Enabled),
        );
        let (tags, policy, rotation, aliases, publish) = (
            managed_tag(),
            drifted_policy(),
            rotation_on(),
            no_aliases(),
            publish_ok(),
        );
        let deps = deps(
            "enforce",
            &[
                &list,
                &describe,
                &describe_other,
                &tags,
                &denied,
                &policy,
                &put,
                &rotation,
                &aliases,
            ],
            &[&publish],
        );
        let sweep = include_str!("../../../events/policy-drift/scheduled-sweep.json");

        let err = function_handler(event(sweep), &deps).await.unwrap_err();

        assert_eq!(err.error_type(), "SweepIncomplete");
        let message = err.to_string();
        assert!(
            message.contains(&format!(
                "1 of 2 keys failed; first: {OTHER} (AccessDenied)"
            )),
            "{message}"
        );
        assert_eq!(put.num_calls(), 1, "the other key was still corrected");
        assert_eq!(publish.num_calls(), 1);
    }

    #[test]
    fn own_role_is_recognised_with_or_without_session_context() {
        let role =
            "arn:aws:iam::111122223333:role/kms-guardrails-PolicyDriftFunctionRole-1A2B3C4D5E6F";
        let Trigger::CloudTrail(mut ev) =
            parse_trigger(&serde_json::from_str(BY_SELF).unwrap()).unwrap()
        else {
            panic!()
        };
        assert!(caused_by_role(&ev.detail, role));
        ev.detail.user_identity.session_context = None;
        assert!(caused_by_role(&ev.detail, role));
        assert!(!caused_by_role(
            &ev.detail,
            "arn:aws:iam::111122223333:role/other"
        ));
    }
}
