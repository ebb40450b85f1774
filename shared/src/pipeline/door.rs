//! [`handle`]: the whole invocation of every function, generic over its [`Guardrail`].

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use lambda_runtime::LambdaEvent;
use serde_json::Value;
use tracing::{info_span, Instrument};

use crate::aws::kms::KeyInfo;
use crate::base::error::{Disposition, GuardrailError};
use crate::base::pace::Paced;
use crate::config::{FanOut, FunctionConfig, DEFAULT_SWEEP_MAX_RECEIVES};
use crate::notify::metrics::{self, Measures};
use crate::notify::outcome::{
    BatchItemFailure, FanOutReport, Finding, FindingKind, KeyOutcome, Outcome, PartDone, PartTally,
    Status, SweepReport, WorkReport,
};
use crate::notify::{deliver, Cause};
use crate::pipeline::announce::Guard;
use crate::pipeline::audit::{Aliases, Audit};
use crate::pipeline::fanout::{self, Ledger};
use crate::pipeline::faults::{kill_point, KillPoint};
use crate::pipeline::guardrail::{Audited, DepsOf, Guardrail, Invocation, Response, SweepMessages};
use crate::pipeline::journal::{
    self, earlier_attempt_summary, late_notification, pending_message, Disposal, Journal, Pending,
    RunView,
};
use crate::pipeline::membership;
use crate::pipeline::notices::{region_subject, sweep_notices, Remembered, SweepMemory};
use crate::pipeline::resolve::{resolve, Resolution};
use crate::pipeline::sweep::{self, Deadline, Scope, Swept};
use crate::triggers::events::{parse_trigger, CloudTrailDetail, KeyLocator, Trigger};
use crate::triggers::work::WorkDelivery;

/// The one retry-or-report rule: `Err` when a retry can fix the failure (propagate it with
/// `?` so the invocation fails and Lambda retries), `Ok` with the failure when only a person
/// can (report it once and go on).
pub fn retry_or_report(error: GuardrailError) -> Result<GuardrailError, GuardrailError> {
    match error.disposition() {
        Disposition::Retry => Err(error),
        Disposition::Report => Ok(error),
    }
}

fn guard<G: Guardrail>(deps: &DepsOf<G>) -> Guard<'_> {
    Guard {
        function: G::NAME,
        clients: &deps.clients,
        common: deps.config.common(),
    }
}

type BoxedResponse<'a, R> = Pin<Box<dyn Future<Output = Result<Response<R>, GuardrailError>> + 'a>>;

/// The invocation: the trigger parsed, the function's own routes first, then CloudTrail
/// events through the gate, resolution and membership, and schedules through the sweep.
pub async fn handle<G: Guardrail>(
    event: LambdaEvent<Value>,
    deps: &DepsOf<G>,
) -> Result<Response<G::Report>, GuardrailError> {
    let started = std::time::Instant::now();
    let mut sweep = false;
    let result = match parse_trigger(&event.payload) {
        Ok(trigger) => {
            sweep = matches!(trigger, Trigger::Scheduled { .. } | Trigger::SweepWork(_));
            let seed = match &trigger {
                Trigger::Scheduled { id, .. } => id.as_deref().unwrap_or("sweep"),
                _ => "",
            };
            let invocation = Invocation {
                deadline: Deadline::from_context_millis(event.context.deadline),
                sweep_seed: seed,
            };
            match G::route(deps, &trigger, invocation).await {
                Some(result) => result,
                None if !G::KEY_PATH => Err(not_handled::<G>(&trigger)),
                // Boxed: the key path's future is deep, and a binary's compiler would otherwise
                // trace its whole layout from `main`.
                None => {
                    let key_path: BoxedResponse<'_, G::Report> =
                        Box::pin(on_trigger::<G>(deps, &trigger, invocation));
                    key_path.await
                }
            }
        }
        Err(e) => Err(e),
    };
    if let Err(e) = &result {
        tracing::error!(error_type = e.error_type(), error = %e, "invocation failed");
    }
    let mut measures = match &result {
        Ok(response) => response.measures(G::measure),
        // Lambda's own Errors metric counts the failed invocation.
        Err(_) => Measures::default(),
    };
    if sweep {
        measures.sweep_duration = Some(started.elapsed());
    }
    metrics::emit(&measures);
    result
}

async fn on_trigger<G: Guardrail>(
    deps: &DepsOf<G>,
    trigger: &Trigger,
    invocation: Invocation<'_>,
) -> Result<Response<G::Report>, GuardrailError> {
    match trigger {
        Trigger::CloudTrail(ev) => {
            let d = &ev.detail;
            let span = info_span!("event", event_id = d.event_id(), event_name = %d.event_name);
            on_event::<G>(deps, d).instrument(span).await
        }
        Trigger::Scheduled { id, time } => {
            let span = info_span!("sweep", event_id = id.as_deref().unwrap_or("unknown"));
            let common = deps.config.common();
            if common.fan_out.is_some() && !G::FANS_OUT {
                tracing::warn!(
                    "SWEEP_QUEUE_URL is set, but {} sweeps in place: its sweeps do not fan out",
                    G::NAME
                );
            }
            match &common.fan_out {
                Some(fan_out) if G::FANS_OUT => {
                    // EventBridge always sends an id; a hand-made event still gets its own.
                    let sweep = id
                        .clone()
                        .unwrap_or_else(|| format!("sweep-{}", journal::now()));
                    // Boxed, like the key path: a function that never fans out does not link it.
                    let fanned: BoxedResponse<'_, G::Report> = Box::pin(
                        fan_out_sweep::<G>(deps, fan_out, &sweep, time.as_deref()).instrument(span),
                    );
                    fanned.await
                }
                _ => on_sweep::<G>(deps, invocation, time.as_deref(), &sweep::scopes(common))
                    .instrument(span)
                    .await
                    .map(|(response, _)| response),
            }
        }
        Trigger::SweepWork(batch) if G::FANS_OUT => {
            let work: BoxedResponse<'_, G::Report> =
                Box::pin(on_work::<G>(deps, invocation, batch));
            work.await
        }
        other => Err(not_handled::<G>(other)),
    }
}

fn not_handled<G: Guardrail>(trigger: &Trigger) -> GuardrailError {
    GuardrailError::InvalidEvent(format!(
        "{} does not handle this trigger: {}",
        G::NAME,
        trigger.describe()
    ))
}

/// The function's decisions for one managed key: `read`, `decide`, `apply`. A key KMS is
/// still creating fails (retryably); one in transition is left for later. Writes are recorded
/// in the state table first (`run` names this invocation), so they are announced whatever
/// happens after them.
async fn audit_key<G: Guardrail>(
    deps: &DepsOf<G>,
    key: &KeyInfo,
    cause: Cause<'_>,
) -> (Audit, Option<G::Detail>) {
    if let Some(not_ready) = key.not_ready() {
        return (Audit::failed(key, not_ready, "KMS key not ready"), None);
    }
    if !key.is_settled() {
        let reason = format!(
            "key is in state {}; nothing is read or written until it settles, and the next event or sweep looks again",
            key.state.as_str()
        );
        return (Audit::skipped(key, reason), None);
    }
    let facts = match G::read(deps, key, cause).await {
        Ok(facts) => facts,
        Err(e) => return (Audit::failed(key, e, "KMS key could not be audited"), None),
    };
    let plan = match G::commit(deps, key, G::decide(&deps.config, key, facts)).await {
        Ok(plan) => plan,
        Err(e) => {
            let headline = "KMS key not checked: its desired state could not be recorded";
            return (Audit::failed(key, e, headline), None);
        }
    };
    let mut record = None;
    if let Some(planned) = G::planned_writes(&deps.config, &plan) {
        let guard = guard::<G>(deps);
        if let Some(journal) = guard.journal() {
            let (subject, body) = pending_message(&guard.speaker(), key, cause, &planned);
            let sort_key = Journal::record_key(key, cause);
            let message = (subject.as_str(), body.as_str());
            if let Err(e) = journal
                .record(&sort_key, key, cause, &planned, message)
                .await
            {
                // The record may have landed though its answer was lost: nothing was
                // written, so nothing is to be announced late.
                journal.settle(&sort_key).await;
                let headline = "KMS key not corrected: the state table refused the record";
                return (Audit::failed(key, e, headline), None);
            }
            record = Some(sort_key);
        }
        // KMS's write quotas are per account, Region and operation; the account's own
        // deployments share them.
        for operation in &planned.operations {
            deps.clients
                .pace(&key.account, &key.region, Paced::Write(operation))
                .await;
        }
    }
    kill_point(KillPoint::BeforeWrite, key.arn.as_str()).await;
    let (mut audit, detail) = G::apply(deps, key, plan).await;
    kill_point(KillPoint::AfterWrite, key.arn.as_str()).await;
    audit.records.extend(record);
    (audit, Some(detail))
}

/// One key through resolution, `read` -> `decide` -> `apply` and its message, for a function's
/// own route (policy-drift's rollback command). A key that is not managed is an error that
/// says why.
pub async fn audit_one<G: Guardrail>(
    deps: &DepsOf<G>,
    locator: &KeyLocator,
    cause: Cause<'_>,
) -> Result<KeyOutcome, GuardrailError> {
    let common = deps.config.common();
    let resolved = resolve(&deps.clients, common, locator, None).await?;
    match G::target(deps, resolved, locator).await? {
        Resolution::Managed(key) => {
            let (audit, _) = audit_key::<G>(deps, &key, cause).await;
            guard::<G>(deps)
                .finish(&key, cause, Aliases::PerKey, audit)
                .await
        }
        Resolution::Unmanaged { reason, .. } | Resolution::NotOurs(reason) => {
            Err(GuardrailError::InvalidEvent(reason))
        }
        Resolution::ShutOut { key, error } => {
            let account = locator.account().unwrap_or(&common.account_id);
            let key = KeyInfo::unreadable(&key, &locator.region, account);
            guard::<G>(deps).shut_out(&key, cause, error).await
        }
    }
}

/// A retry of an event that has something to announce names what its earlier attempts began
/// (they ended before announcing; their calls may have been made) in its own message, so one
/// message covers the event. `pending`: the key's unannounced corrections.
fn merge_earlier_attempts(audit: &mut Audit, cause: Cause<'_>, pending: &[Pending]) {
    if audit.outcome.findings.is_empty() {
        return;
    }
    let earlier: Vec<&Pending> = pending
        .iter()
        .filter(|p| p.run == cause.run() && !audit.records.contains(&p.sort_key))
        .collect();
    for earlier in earlier {
        audit.outcome.findings.push(Finding::new(
            FindingKind::EarlierAttempt,
            earlier_attempt_summary(earlier),
        ));
        audit.records.push(earlier.sort_key.clone());
    }
}

/// The unannounced corrections of `key_arn` (or of every key); none without a state table. A
/// failure a retry can fix is `Err`; one it cannot is logged, and the records wait.
async fn load_pending<G: Guardrail>(
    deps: &DepsOf<G>,
    key_arn: Option<&str>,
) -> Result<Vec<Pending>, GuardrailError> {
    let guard = guard::<G>(deps);
    let Some(journal) = guard.journal() else {
        return Ok(Vec::new());
    };
    match journal.pending(key_arn).await {
        Ok(pending) => Ok(pending),
        Err(e) => {
            let e = retry_or_report(e)?;
            tracing::error!(error_type = e.error_type(), error = %e, "corrections not yet announced could not be read from the state table");
            Ok(Vec::new())
        }
    }
}

/// Announces the corrections in `pending` that invocations ended before announcing and this
/// invocation (`run`, which knows `view` of the keys it handled) may take over.
async fn announce_pending<G: Guardrail>(
    deps: &DepsOf<G>,
    pending: &[Pending],
    run: &str,
    view: &RunView,
) -> Result<usize, GuardrailError> {
    let guard = guard::<G>(deps);
    let Some(journal) = guard.journal() else {
        return Ok(0);
    };
    let (now, lease) = (journal::now(), journal.store().lease);
    let mut announced = 0;
    for record in pending {
        match record.disposal(run, now, lease, view) {
            Disposal::Wait => continue,
            Disposal::Supersede => {
                tracing::info!(key = %record.key_arn, run = %record.run, "an earlier sweep's correction was made again and announced by this invocation");
            }
            Disposal::Announce(state) => {
                let notification = late_notification(record, state, G::NAME);
                deliver(&deps.clients, deps.config.common(), &notification).await?;
                tracing::warn!(key = %record.key_arn, run = %record.run, "a correction an earlier invocation did not announce was announced late");
                announced += 1;
            }
        }
        journal.settle(&record.sort_key).await;
    }
    Ok(announced)
}

async fn on_event<G: Guardrail>(
    deps: &DepsOf<G>,
    detail: &CloudTrailDetail,
) -> Result<Response<G::Report>, GuardrailError> {
    let common = deps.config.common();
    let skipped = |reason: String| {
        let outcome = Outcome::skipped(detail.event_id(), &detail.event_name, reason);
        Ok(Response::Outcome(outcome))
    };
    if let Err(reason) = G::gate().admit(detail, &common.self_role_arn) {
        return skipped(reason);
    }
    let (mut outcomes, mut details, mut reasons) = (Vec::new(), Vec::new(), Vec::new());
    for locator in membership::event_keys(detail, &common.region)? {
        match on_key::<G>(deps, detail, &locator).await? {
            Ok((outcome, detail)) => {
                outcomes.push(outcome);
                details.extend(detail);
            }
            Err(reason) => reasons.push(reason),
        }
    }
    let outcome = match outcomes.len() {
        0 => return skipped(reasons.join("; ")),
        1 => Outcome::Key(outcomes.remove(0)),
        _ => Outcome::Keys(outcomes),
    };
    Ok(G::respond(outcome, details))
}

type KeyResult<D> = Result<Result<(KeyOutcome, Option<D>), String>, GuardrailError>;

/// Acts on one key an event names; `Ok(Err(reason))` when it is not ours.
async fn on_key<G: Guardrail>(
    deps: &DepsOf<G>,
    detail: &CloudTrailDetail,
    locator: &KeyLocator,
) -> KeyResult<G::Detail> {
    let (common, cause) = (deps.config.common(), Cause::Event(detail));
    let run = detail.event_id();
    let account = detail.recipient_account_id.as_deref();
    let resolved = resolve(&deps.clients, common, locator, account).await?;
    // The key's unannounced corrections, read once (after this attempt's own record) for its
    // message and for the late announcements after it; `None` when that read failed.
    let (key, audit, own, pending) = match G::target(deps, resolved, locator).await? {
        Resolution::Managed(key) => {
            let (mut audit, own) = audit_key::<G>(deps, &key, cause).await;
            let pending = match guard::<G>(deps).journal() {
                Some(journal) => match journal.pending(Some(key.arn.as_str())).await {
                    Ok(pending) => Some(pending),
                    Err(e) => {
                        tracing::warn!(error = %e, "earlier attempts unreadable: they are announced on their own later");
                        None
                    }
                },
                None => Some(Vec::new()),
            };
            if let Some(pending) = &pending {
                merge_earlier_attempts(&mut audit, cause, pending);
            }
            if let Some(enrolled) = membership::enrolment(G::NAME, detail, &common.managed, &key) {
                audit.add_event_finding(enrolled);
            }
            (key, audit, own, pending)
        }
        Resolution::Unmanaged { key, reason } => {
            let Some(departure) = membership::left_management(detail, &common.managed, &key) else {
                return Ok(Err(reason));
            };
            let audit = membership::left_audit(G::NAME, &key, &reason, &departure);
            (key, audit, None, None)
        }
        Resolution::NotOurs(reason) => return Ok(Err(reason)),
        Resolution::ShutOut { key, error } => {
            let account = locator.account().or(account).unwrap_or(&common.account_id);
            let key = KeyInfo::unreadable(&key, &locator.region, account);
            let outcome = guard::<G>(deps).shut_out(&key, cause, error).await?;
            return Ok(Ok((outcome, None)));
        }
    };
    let announced = audit.records.clone();
    let outcome = guard::<G>(deps)
        .finish(&key, cause, Aliases::PerKey, audit)
        .await?;
    let pending = match pending {
        Some(pending) => pending
            .into_iter()
            .filter(|p| !announced.contains(&p.sort_key))
            .collect(),
        None => load_pending::<G>(deps, Some(key.arn.as_str())).await?,
    };
    let view = RunView {
        statuses: HashMap::from([(key.arn.to_string(), outcome.status)]),
        ..RunView::default()
    };
    announce_pending::<G>(deps, &pending, run, &view).await?;
    Ok(Ok((outcome, own)))
}

/// Enqueues the sweep's parts, one per (account, Region); the queue brings each back as
/// [`Trigger::SweepWork`].
async fn fan_out_sweep<G: Guardrail>(
    deps: &DepsOf<G>,
    fan_out: &FanOut,
    sweep: &str,
    time: Option<&str>,
) -> Result<Response<G::Report>, GuardrailError> {
    let common = deps.config.common();
    let scopes = sweep::scopes(common);
    let items = fanout::work_items(sweep, time, &scopes);
    let sqs = deps.clients.sqs(&common.region);
    let calls = fanout::enqueue(&sqs, &fan_out.queue_url, &items).await?;
    tracing::info!(sweep = %sweep, parts = items.len(), send_calls = calls, "sweep fanned out: one work item per account and Region");
    Ok(Response::Outcome(Outcome::FanOut(FanOutReport {
        sweep: sweep.to_string(),
        parts: items.len(),
        accounts: common.sweep_accounts.len(),
        regions: common.sweep_regions.len(),
    })))
}

/// Parts of a fanned-out sweep: each swept, counted once, and the last one sends the
/// summary. A part that failed in a way a retry can fix goes back to the queue (a partial
/// batch failure); on its last delivery it is counted as not swept, so the summary comes.
async fn on_work<G: Guardrail>(
    deps: &DepsOf<G>,
    invocation: Invocation<'_>,
    batch: &[WorkDelivery],
) -> Result<Response<G::Report>, GuardrailError> {
    let common = deps.config.common();
    let Some(ledger) = Ledger::open(&deps.clients, common, G::NAME) else {
        return Err(GuardrailError::InvalidEvent(format!(
            "{} received sweep work items from SQS but has no STATE_TABLE to count them in; set STATE_TABLE and SWEEP_QUEUE_URL as template.yaml does",
            G::NAME
        )));
    };
    let max_receives = common
        .fan_out
        .as_ref()
        .map_or(DEFAULT_SWEEP_MAX_RECEIVES, |f| f.max_receives);
    let (mut parts, mut failures) = (Vec::new(), Vec::new());
    for delivery in batch {
        let returned = BatchItemFailure {
            item_identifier: delivery.message_id.clone(),
        };
        if invocation.deadline.too_close() {
            tracing::warn!(message_id = %delivery.message_id, "sweep part not started: the invocation deadline is near; SQS delivers it again");
            failures.push(returned);
            continue;
        }
        let span = info_span!("part", message_id = %delivery.message_id);
        match work_part::<G>(deps, invocation, &ledger, max_receives, delivery)
            .instrument(span)
            .await
        {
            Ok(done) => parts.extend(done),
            Err(e) => {
                tracing::error!(message_id = %delivery.message_id, error_type = e.error_type(), error = %e, "sweep part not finished: SQS delivers it again");
                failures.push(returned);
            }
        }
    }
    Ok(Response::Outcome(Outcome::SweepWork(WorkReport {
        parts,
        batch_item_failures: failures,
    })))
}

async fn work_part<G: Guardrail>(
    deps: &DepsOf<G>,
    invocation: Invocation<'_>,
    ledger: &Ledger,
    max_receives: u32,
    delivery: &WorkDelivery,
) -> Result<Option<PartDone>, GuardrailError> {
    let item = match &delivery.item {
        Ok(item) => item,
        Err(reason) => {
            // Delivering it again cannot make it a work item.
            tracing::error!(message_id = %delivery.message_id, reason = %reason, "SQS message dropped: not a sweep work item, so nothing was swept for it");
            return Ok(None);
        }
    };
    let scope = Scope {
        account: item.account.clone(),
        region: item.region.clone(),
    };
    let invocation = Invocation {
        deadline: invocation.deadline,
        sweep_seed: &item.sweep,
    };
    let swept = on_sweep::<G>(
        deps,
        invocation,
        item.time.as_deref(),
        std::slice::from_ref(&scope),
    )
    .await;
    let tally = match swept {
        Ok((_, tally)) => tally,
        Err(e) if delivery.receive_count < max_receives => return Err(e),
        Err(e) => {
            tracing::error!(part = %item.part(), error_type = e.error_type(), error = %e, "sweep part failed on its last delivery: counted as not swept");
            fanout::not_swept(item, &e)
        }
    };
    let progress = ledger.count(item, &tally).await?;
    if progress.counted {
        tracing::info!(sweep = %item.sweep, part = %item.part(), done = progress.done, parts = progress.parts, "sweep progress");
    } else {
        tracing::info!(sweep = %item.sweep, part = %item.part(), "part already counted by an earlier delivery");
    }
    let mut summary_sent = false;
    if progress.complete() && !progress.summary_sent && ledger.claim_summary(&item.sweep).await? {
        let notification = fanout::summary(&guard::<G>(deps).speaker(), &item.sweep, &progress);
        if let Err(e) = deliver(&deps.clients, deps.config.common(), &notification).await {
            ledger.release_summary(&item.sweep).await;
            return Err(e);
        }
        tracing::info!(sweep = %item.sweep, parts = progress.parts, "sweep finished: summary sent");
        summary_sent = true;
    }
    Ok(Some(PartDone {
        sweep: item.sweep.clone(),
        part: item.part(),
        tally,
        done: progress.counted.then_some(progress.done),
        of: progress.parts,
        summary_sent,
    }))
}

/// Every managed key through the sweep runner; each target audited once per sweep. Findings
/// announced before and unchanged wait for their reminder; a Region not swept and a
/// `MANAGED_KEYS` entry that names no key are announced; corrections earlier invocations did
/// not announce are announced late.
async fn on_sweep<G: Guardrail>(
    deps: &DepsOf<G>,
    invocation: Invocation<'_>,
    time: Option<&str>,
    scopes: &[Scope],
) -> Result<(Response<G::Report>, PartTally), GuardrailError> {
    let common = deps.config.common();
    let guard = guard::<G>(deps);
    let run = invocation.sweep_seed;
    let memory = SweepMemory::load(guard.journal()).await;
    let details = Mutex::new(Vec::new());
    let audited = Mutex::new(Vec::new());
    let targets = Mutex::new(HashSet::new());
    let view = Mutex::new(RunView::default());
    let quiet = AtomicUsize::new(0);
    let (details_ref, audited_ref, targets_ref, view_ref, memory_ref, quiet_ref) =
        (&details, &audited, &targets, &view, &memory, &quiet);
    let mut report = sweep::run(
        &deps.clients,
        common,
        invocation.deadline,
        invocation.sweep_seed,
        scopes,
        |swept| async move {
            let cause = Cause::Sweep { id: run, time };
            let swept = match swept {
                Swept::Key(swept) => swept,
                Swept::ShutOut { key, error } => return guard.shut_out(&key, cause, error).await,
            };
            let listed = swept.key.clone();
            let locator = KeyLocator {
                region: listed.region.clone(),
                identifier: listed.arn.to_string(),
            };
            let key = match G::target(deps, Resolution::Managed(listed.clone()), &locator).await? {
                Resolution::Managed(key) => key,
                Resolution::Unmanaged { reason, .. } | Resolution::NotOurs(reason) => {
                    return Ok(KeyOutcome::skipped(&listed, reason));
                }
                Resolution::ShutOut { key, error } => {
                    let key = KeyInfo::unreadable(&key, &locator.region, &listed.account);
                    return guard.shut_out(&key, cause, error).await;
                }
            };
            let first_time = lock(targets_ref).insert(key.arn.to_string());
            if !first_time {
                let reason = format!("audited through {} in this sweep", key.arn);
                return Ok(KeyOutcome::skipped(&listed, reason));
            }
            let span = info_span!("key", key = %key.arn);
            let (mut audit, detail) = audit_key::<G>(deps, &key, cause)
                .instrument(span.clone())
                .await;
            match G::SWEEP_MESSAGES {
                SweepMessages::PerKey => {
                    let subject = key.arn.to_string();
                    let remembered = memory_ref.check(&subject, &mut audit);
                    if audit.quiet.is_some() {
                        quiet_ref.fetch_add(1, Ordering::Relaxed);
                    }
                    let wrote = audit.outcome.writes() > 0;
                    let finished = guard
                        .finish(&key, cause, Aliases::Region(&swept.aliases), audit)
                        .instrument(span)
                        .await;
                    let outcome = match finished {
                        Ok(outcome) => outcome,
                        Err(e) => {
                            let mut view = lock(view_ref);
                            view.unfinished.insert(subject.clone());
                            if wrote {
                                view.undelivered.insert(subject);
                            }
                            return Err(e);
                        }
                    };
                    let delivered = outcome.notification.is_some();
                    memory_ref.settle(&subject, remembered, delivered).await;
                    lock(view_ref).statuses.insert(subject, outcome.status);
                    lock(details_ref).extend(detail);
                    Ok(outcome)
                }
                SweepMessages::Digest => {
                    let mut outcome = audit.outcome.clone();
                    let failure = audit.failure.clone();
                    let arn = key.arn.to_string();
                    if failure.is_some() {
                        lock(view_ref).unfinished.insert(arn);
                    } else {
                        lock(view_ref).statuses.insert(arn, outcome.status);
                    }
                    // Kept for the digest before the failure is settled: writes made before a
                    // transient failure are announced, and the next sweep finishes the key.
                    if let Some(detail) = detail {
                        lock(audited_ref).push(Audited { key, audit, detail });
                    }
                    if let Some(failure) = failure {
                        let failure = retry_or_report(failure)?;
                        outcome.status = Status::Failed;
                        outcome.reason = Some(format!("{failure} ({})", failure.error_type()));
                    }
                    Ok(outcome)
                }
            }
        },
    )
    .await;
    report.not_announced_again = quiet.load(Ordering::Relaxed);
    announce_notices::<G>(deps, &memory, &report, scopes).await?;
    let tally = PartTally::of(&report);
    let view = view.into_inner().unwrap_or_else(|e| e.into_inner());
    match G::SWEEP_MESSAGES {
        SweepMessages::PerKey => {
            let pending = load_pending::<G>(deps, None).await?;
            report.announced_late = announce_pending::<G>(deps, &pending, run, &view).await?;
            let response = G::respond(
                Outcome::Sweep(report),
                details.into_inner().unwrap_or_else(|e| e.into_inner()),
            );
            Ok((response, tally))
        }
        SweepMessages::Digest => {
            let audited = audited.into_inner().unwrap_or_else(|e| e.into_inner());
            let records: Vec<String> = audited
                .iter()
                .flat_map(|a| a.audit.records.clone())
                .collect();
            // This sweep's own records are the digest's to announce and settle.
            let mut pending = load_pending::<G>(deps, None).await?;
            pending.retain(|p| !records.contains(&p.sort_key));
            report.announced_late = announce_pending::<G>(deps, &pending, run, &view).await?;
            let memory = records.is_empty().then_some(&memory);
            let response = G::digest(deps, time, report, audited, memory).await?;
            // The digest was delivered: the writes it announces are settled.
            if let Some(journal) = guard.journal() {
                for record in &records {
                    journal.settle(record).await;
                }
            }
            Ok((response, tally))
        }
    }
}

/// The sweep's own notices (Regions not swept, entries naming no key): each sent when it is
/// news or its reminder is due, and forgotten once resolved. Only notices of the swept
/// `scopes` can be resolved: another part of a fanned-out sweep speaks for its own.
async fn announce_notices<G: Guardrail>(
    deps: &DepsOf<G>,
    memory: &SweepMemory<'_>,
    report: &SweepReport,
    scopes: &[Scope],
) -> Result<(), GuardrailError> {
    let guard = guard::<G>(deps);
    let notices = sweep_notices(&guard.speaker(), deps.config.common(), report);
    for notice in &notices {
        if !memory.is_news(notice) {
            tracing::info!(subject = %notice.subject, "unchanged since announced: not announced again");
            continue;
        }
        deliver(&deps.clients, deps.config.common(), &notice.notification).await?;
        memory
            .settle(
                &notice.subject,
                Remembered::Remember(notice.fingerprint.clone()),
                true,
            )
            .await;
    }
    let home = deps.config.common().account_id.as_str();
    let covered: Vec<String> = scopes
        .iter()
        .flat_map(|s| {
            let entries = (s.account == home).then(|| format!("entry#{}#", s.region));
            std::iter::once(region_subject(home, &s.account, &s.region)).chain(entries)
        })
        .collect();
    let covered: Vec<&str> = covered.iter().map(String::as_str).collect();
    for resolved in memory.resolved(&covered, &notices) {
        memory.settle(resolved, Remembered::Forget, false).await;
    }
    Ok(())
}

/// A poisoned lock only means another audit panicked mid-push; what it holds is still usable.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}
