//! The state table's two memories, so nothing a user must know is lost or repeated:
//!
//! - pending corrections: recorded before a key is written and removed once the message about
//!   it is delivered. An invocation that dies, times out or cannot deliver in between leaves the
//!   record, and the next invocation about the key (Lambda's retry of the same event at once,
//!   any other after [`StateStore::lease`]) announces it late instead of finding the key in
//!   order and saying nothing;
//! - announced findings: what a sweep announced about a key, a Region or a `MANAGED_KEYS`
//!   entry, so an unchanged finding is not sent again before its reminder is due.
//!
//! Items: `pk` = `pending#<function>` or `announced#<function>`, `sk` = the subject (a key ARN,
//! `region#<code>`, `entry#<name>`; pending ones end in `#<event or sweep id>`).

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::types::AttributeValue;

use crate::aws::kms::KeyInfo;
use crate::aws::{AwsClients, StateAccess};
use crate::base::error::GuardrailError;
use crate::base::text;
use crate::config::{CommonConfig, StateStore};
use crate::notify::outcome::{KeyOutcome, Status};
use crate::notify::{change_block, key_block, key_subject, Cause, Notification, Speaker};

/// Calls to remove a settled record before giving up (each with the SDK's own retries).
pub const SETTLE_TRIES: usize = 3;
/// What a settled record holds in `state`, and how long it stays to turn late requests away.
const SETTLED: &str = "settled";
const SETTLED_KEEP: Duration = Duration::from_secs(24 * 3600);
/// Pending corrections are kept this long at most (DynamoDB TTL): long past every retry.
const PENDING_KEEP: Duration = Duration::from_secs(30 * 24 * 3600);
/// An announced finding without reminders is forgotten (and so announced again) after a year.
const ANNOUNCED_KEEP_WITHOUT_REMINDER: Duration = Duration::from_secs(365 * 24 * 3600);

/// Seconds since the epoch.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// What an invocation is about to write to a key, recorded before the first write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedWrites {
    /// The findings the writes correct, as the message would list them.
    pub findings: Vec<String>,
    /// The calls, in order.
    pub operations: Vec<&'static str>,
}

/// A correction recorded and not yet announced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub sort_key: String,
    pub key_arn: String,
    /// The CloudTrail event id, or the sweep's id, of the invocation that recorded it.
    pub run: String,
    /// Recorded by a sweep (else by an event, whose record names who made the change).
    pub by_sweep: bool,
    pub started_at: u64,
    /// What the writes were to correct, and the calls, in order.
    pub findings: Vec<String>,
    pub operations: Vec<String>,
    /// The message's subject and body as far as they were known before the writes.
    pub subject: String,
    pub body: String,
}

/// What this invocation knows of the keys it handled, to judge others' records by.
#[derive(Debug, Default)]
pub struct RunView {
    /// Keys audited and announced (or found with nothing to announce), with their status.
    pub statuses: HashMap<String, Status>,
    /// Keys this invocation started on but did not finish (a failure a retry can fix).
    pub unfinished: std::collections::HashSet<String>,
    /// Keys this invocation wrote and could not announce.
    pub undelivered: std::collections::HashSet<String>,
}

/// What to do with a pending record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposal {
    /// Announce it late, saying how the key stands now.
    Announce(Now),
    /// Settle it without a message: this invocation corrected the key again and announced it,
    /// and the record (a sweep's, naming no one) adds nothing to that message.
    Supersede,
    /// Leave it: its invocation may still be at work, or this one does not know how it ended.
    Wait,
}

impl Pending {
    /// Pure: what invocation `run`, at `now`, does with this record. Its own earlier attempt's
    /// record (Lambda retries an event only after the attempt ended) is announced once the key
    /// was audited again; anyone else's once the lease ran out. A key whose audit did not finish
    /// here is left to the next invocation, which will know whether the writes landed.
    pub fn disposal(&self, run: &str, now: u64, lease: Duration, view: &RunView) -> Disposal {
        let own = self.run == run;
        if own && view.undelivered.contains(&self.key_arn) {
            return Disposal::Announce(Now::NotAudited);
        }
        if !own && self.started_at + lease.as_secs() > now {
            return Disposal::Wait;
        }
        match view.statuses.get(&self.key_arn) {
            Some(Status::Corrected) if !own && self.by_sweep => Disposal::Supersede,
            Some(status) => Disposal::Announce(Now::of(*status)),
            None if own || view.unfinished.contains(&self.key_arn) => Disposal::Wait,
            None => Disposal::Announce(Now::NotAudited),
        }
    }
}

/// What a sweep announced about one subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announced {
    pub fingerprint: String,
    pub announced_at: u64,
}

/// Whether a sweep sends a finding it has announced before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repeat {
    /// Never announced, or changed since: send it.
    New,
    /// Unchanged, but the reminder is due: send it again.
    Reminder,
    /// Unchanged and announced at `since`: not sent.
    Unchanged { since: u64 },
}

/// Pure: what to do with a finding whose `fingerprint` was last announced as `last`.
pub fn repeat(
    last: Option<&Announced>,
    fingerprint: &str,
    now: u64,
    reminder: Option<Duration>,
) -> Repeat {
    match last {
        Some(last) if last.fingerprint == fingerprint => match reminder {
            Some(every) if last.announced_at + every.as_secs() <= now => Repeat::Reminder,
            _ => Repeat::Unchanged {
                since: last.announced_at,
            },
        },
        _ => Repeat::New,
    }
}

/// A stable digest of what a message about a key says (status, findings, failure), blind to
/// what changes without the finding changing (message ids, aliases, times of sweeps).
pub fn fingerprint(outcome: &KeyOutcome, failure: Option<&GuardrailError>) -> String {
    let mut text = format!("{:?}\n", outcome.status);
    for finding in &outcome.findings {
        text.push_str(finding.kind.as_str());
        text.push('\n');
        text.push_str(&finding.summary);
        text.push('\n');
    }
    for action in &outcome.actions {
        text.push_str(action.operation);
        text.push('\n');
    }
    if let Some(e) = failure {
        text.push_str(e.error_type());
        text.push('\n');
        text.push_str(e.operation().unwrap_or_default());
    }
    fnv1a(&text)
}

/// The same for every message about one key's handling by one run (a correction, its retries,
/// its late announcement): subscribers drop repeats by it, as SNS delivers at least once.
pub fn announcement_id(key_arn: &str, run: &str) -> String {
    fnv1a(&format!("{key_arn}#{run}"))
}

/// FNV-1a, 64 bits: the same digest in every build (the standard hasher is not promised to be).
pub fn fnv1a(text: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// The message a pending correction would have been announced with, rendered before the
/// writes, so the record is enough to announce it whatever happens next.
pub fn pending_message(
    speaker: &Speaker<'_>,
    key: &KeyInfo,
    cause: Cause<'_>,
    planned: &PlannedWrites,
) -> (String, String) {
    let subject = key_subject(
        &speaker.subject_label(),
        "KMS key correction announced late",
        &key.key_id,
        &key.region,
    );
    let mut body = format!(
        "kms-guardrails {}, mode {}\n\n{}\n{}",
        speaker.function,
        speaker.mode,
        key_block(key, None),
        change_block(cause)
    );
    body.push_str("\nFindings:\n");
    for finding in &planned.findings {
        body.push_str(&format!("- {}\n", text::one_line(finding, 2000)));
    }
    body.push_str("\nCorrections started:\n");
    for operation in &planned.operations {
        body.push_str(&format!("- {operation}\n"));
    }
    (subject, body)
}

/// The finding a retry's message adds for an earlier attempt of the same event.
pub fn earlier_attempt_summary(earlier: &Pending) -> String {
    let found = if earlier.findings.is_empty() {
        String::new()
    } else {
        format!(
            " It had found: {}.",
            earlier
                .findings
                .iter()
                .map(|f| text::one_line(f, 500))
                .collect::<Vec<_>>()
                .join("; ")
        )
    };
    format!(
        "an earlier attempt for this event began {} and ended (timed out, crashed, or could not deliver) before announcing; those calls may have been made, and this message is their announcement.{found}",
        earlier.operations.join(", ")
    )
}

/// How the key stands now, for a late announcement: what the invocation announcing it found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Now {
    /// This invocation audited the key and found it as the corrections left it.
    InOrder,
    /// This invocation found the key out of its desired state again; its own message says more.
    StillWrong,
    /// This invocation did not audit the key (a sweep announcing another run's record).
    NotAudited,
}

impl Now {
    pub fn of(status: Status) -> Now {
        match status {
            Status::Compliant | Status::Skipped => Now::InOrder,
            _ => Now::StillWrong,
        }
    }
}

/// The late announcement of `pending`: its recorded message, what became of it, and now.
pub fn late_notification(pending: &Pending, now: Now, function: &str) -> Notification {
    let mut body = pending.body.clone();
    body.push_str(&format!(
        "\nThis message comes late: the invocation that started these corrections (for event or sweep {}) recorded them, then ended before its message was confirmed delivered (it timed out, crashed, or neither SNS nor the fallback queue took the message) or before the state table could mark it delivered. A message about this key with the same announcement_id, if you received one, already said this.\n",
        text::value(&pending.run)
    ));
    body.push_str(match now {
        Now::InOrder => "The key was audited again just now and is in its desired state: the corrections were made.\n",
        Now::StillWrong => "The key was audited again just now and is still out of its desired state: the message sent with this one says what was found and done.\n",
        Now::NotAudited => "Whether every correction was made is not known here: the key is audited on every event about it and every sweep, and anything still wrong is announced on its own.\n",
    });
    let arn = crate::base::arn::Arn::parse(&pending.key_arn).ok();
    let key_id = arn
        .as_ref()
        .map(|a| a.resource().trim_start_matches("key/").to_string());
    let region = arn.as_ref().map(|a| a.region().to_string());
    Notification::new(&pending.subject, body)
        .attribute("function", function.to_string())
        .attribute("key_id", key_id.unwrap_or_default())
        .attribute("region", region.unwrap_or_default())
        .attribute("severity", "high")
        .attribute("status", "corrected")
        .attribute("late", "true")
        .attribute(
            "announcement_id",
            announcement_id(&pending.key_arn, &pending.run),
        )
}

/// The state table as one function uses it.
pub struct Journal<'a> {
    client: aws_sdk_dynamodb::Client,
    store: &'a StateStore,
    function: &'static str,
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// One DynamoDB item.
type Item = HashMap<String, AttributeValue>;

fn text_of(item: &Item, name: &str) -> String {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .cloned()
        .unwrap_or_default()
}

fn list_of(item: &Item, name: &str) -> Vec<String> {
    item.get(name)
        .and_then(|v| v.as_l().ok())
        .map(|l| l.iter().filter_map(|v| v.as_s().ok().cloned()).collect())
        .unwrap_or_default()
}

fn number_of(item: &Item, name: &str) -> u64 {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or_default()
}

impl<'a> Journal<'a> {
    /// The function's journal, or `None` without `STATE_TABLE` or when the state table is
    /// read-only (an audit neither records nor remembers).
    pub fn open(
        clients: &AwsClients,
        common: &'a CommonConfig,
        function: &'static str,
    ) -> Option<Journal<'a>> {
        if clients.state_access() == StateAccess::ReadOnly {
            return None;
        }
        let store = common.state.as_ref()?;
        Some(Journal {
            client: clients.dynamodb(&store.region),
            store,
            function,
        })
    }

    pub fn store(&self) -> &StateStore {
        self.store
    }

    fn pending_pk(&self) -> String {
        format!("pending#{}", self.function)
    }

    fn announced_pk(&self) -> String {
        format!("announced#{}", self.function)
    }

    /// The sort key of one attempt's record: the run (the same on retries) and a nonce, so a
    /// request of this attempt that lands late can never revive a record another settled.
    pub fn record_key(key: &KeyInfo, cause: Cause<'_>) -> String {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        format!("{}#{}#{nanos:x}", key.arn, cause.run())
    }

    /// The announcement a record under `sort_key` (from [`Journal::record_key`]) belongs to:
    /// its run's message about its key. For readers of the table, such as the fault tests.
    pub fn announcement_of_record(sort_key: &str) -> Option<String> {
        let (key_and_run, _nanos) = sort_key.rsplit_once('#')?;
        let (key_arn, run) = key_and_run.rsplit_once('#')?;
        Some(announcement_id(key_arn, run))
    }

    /// Records a correction under `sort_key` before its first write. An `Err` means nothing
    /// may be written: without the record a crash could lose the announcement.
    pub async fn record(
        &self,
        sort_key: &str,
        key: &KeyInfo,
        cause: Cause<'_>,
        planned: &PlannedWrites,
        (subject, body): (&str, &str),
    ) -> Result<(), GuardrailError> {
        let list = |items: Vec<String>| AttributeValue::L(items.into_iter().map(s).collect());
        let started_at = now();
        let result = self
            .client
            .put_item()
            .table_name(&self.store.table)
            .item("pk", s(self.pending_pk()))
            .item("sk", s(sort_key))
            .item("key_arn", s(key.arn.to_string()))
            .item("run", s(cause.run()))
            .item(
                "by_sweep",
                AttributeValue::Bool(matches!(cause, Cause::Sweep { .. })),
            )
            .item("started_at", n(started_at))
            .item("subject", s(subject))
            .item("body", s(body))
            .item("findings", list(planned.findings.clone()))
            .item(
                "operations",
                list(planned.operations.iter().map(|o| o.to_string()).collect()),
            )
            .item("expires_at", n(started_at + PENDING_KEEP.as_secs()))
            .condition_expression("attribute_not_exists(sk)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // The key is this attempt's own: an earlier try of this very request landed.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(GuardrailError::aws("PutItem", &self.store.table, e)),
        }
    }

    /// Marks a record settled once its message was delivered: a tombstone (kept a day), not a
    /// deletion, so a late copy of the recording request finds it and changes nothing. Tried a
    /// few times beyond the SDK's own retries: a record left pending is announced once more.
    pub async fn settle(&self, sort_key: &str) {
        let mut last = None;
        for _ in 0..SETTLE_TRIES {
            let result = self
                .client
                .put_item()
                .table_name(&self.store.table)
                .item("pk", s(self.pending_pk()))
                .item("sk", s(sort_key))
                .item("state", s(SETTLED))
                .item("expires_at", n(now() + SETTLED_KEEP.as_secs()))
                .send()
                .await;
            match result {
                Ok(_) => return,
                Err(e) => last = Some(GuardrailError::aws("PutItem", &self.store.table, e)),
            }
        }
        if let Some(e) = last {
            tracing::warn!(error = %e, record = sort_key, "the correction was announced but its record stays; it may be announced once more");
        }
    }

    /// Every item of partition `pk` (those whose sort key starts with `prefix`, if given),
    /// page by page.
    async fn items(
        &self,
        pk: String,
        prefix: Option<String>,
        consistent: bool,
    ) -> Result<Vec<Item>, GuardrailError> {
        let mut found = Vec::new();
        let mut start = None;
        loop {
            let query = self
                .client
                .query()
                .table_name(&self.store.table)
                .consistent_read(consistent)
                .expression_attribute_names("#pk", "pk")
                .expression_attribute_values(":pk", s(pk.clone()))
                .set_exclusive_start_key(start.take());
            let query = match &prefix {
                Some(prefix) => query
                    .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
                    .expression_attribute_names("#sk", "sk")
                    .expression_attribute_values(":prefix", s(prefix.clone())),
                None => query.key_condition_expression("#pk = :pk"),
            };
            let out = query
                .send()
                .await
                .map_err(|e| GuardrailError::aws("Query", &self.store.table, e))?;
            found.extend(out.items().iter().cloned());
            match out.last_evaluated_key() {
                Some(last) if !last.is_empty() => start = Some(last.clone()),
                _ => return Ok(found),
            }
        }
    }

    /// The pending corrections of one key (`Some`), or of every key; settled ones left out.
    pub async fn pending(&self, key_arn: Option<&str>) -> Result<Vec<Pending>, GuardrailError> {
        let prefix = key_arn.map(|arn| format!("{arn}#"));
        let items = self.items(self.pending_pk(), prefix, true).await?;
        Ok(items
            .iter()
            .filter(|item| text_of(item, "state") != SETTLED)
            .map(|item| Pending {
                sort_key: text_of(item, "sk"),
                key_arn: text_of(item, "key_arn"),
                run: text_of(item, "run"),
                by_sweep: item
                    .get("by_sweep")
                    .and_then(|v| v.as_bool().ok())
                    .copied()
                    .unwrap_or(false),
                started_at: number_of(item, "started_at"),
                findings: list_of(item, "findings"),
                operations: list_of(item, "operations"),
                subject: text_of(item, "subject"),
                body: text_of(item, "body"),
            })
            .collect())
    }

    /// Everything this function's sweeps announced, by subject.
    pub async fn announced(&self) -> Result<HashMap<String, Announced>, GuardrailError> {
        let items = self.items(self.announced_pk(), None, false).await?;
        Ok(items
            .iter()
            .map(|item| {
                let announced = Announced {
                    fingerprint: text_of(item, "fingerprint"),
                    announced_at: number_of(item, "announced_at"),
                };
                (text_of(item, "sk"), announced)
            })
            .collect())
    }

    /// Remembers that `subject`'s finding was announced now. A failure is logged: the finding
    /// is then announced again by the next sweep, never lost.
    pub async fn remember(&self, subject: &str, fingerprint: &str) {
        let announced_at = now();
        let keep = self
            .store
            .reminder
            .map_or(ANNOUNCED_KEEP_WITHOUT_REMINDER, |every| every + every);
        let result = self
            .client
            .put_item()
            .table_name(&self.store.table)
            .item("pk", s(self.announced_pk()))
            .item("sk", s(subject))
            .item("fingerprint", s(fingerprint))
            .item("announced_at", n(announced_at))
            .item("expires_at", n(announced_at + keep.as_secs()))
            .send()
            .await;
        if let Err(e) = result {
            let e = GuardrailError::aws("PutItem", &self.store.table, e);
            tracing::warn!(error = %e, subject, "announced, but not remembered: the next sweep announces it again");
        }
    }

    /// Forgets `subject`: its finding is gone, so its return is news.
    pub async fn forget(&self, subject: &str) {
        let result = self
            .client
            .delete_item()
            .table_name(&self.store.table)
            .key("pk", s(self.announced_pk()))
            .key("sk", s(subject))
            .send()
            .await;
        if let Err(e) = result {
            let e = GuardrailError::aws("DeleteItem", &self.store.table, e);
            tracing::warn!(error = %e, subject, "a resolved finding is still remembered: if it returns unchanged before its reminder, it is not announced");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(run: &str, started_at: u64) -> Pending {
        Pending {
            sort_key: format!("arn:aws:kms:eu-west-1:111122223333:key/k#{run}"),
            key_arn: KEY.into(),
            run: run.into(),
            by_sweep: false,
            started_at,
            findings: vec!["the key policy differs from the baseline".into()],
            operations: vec!["PutKeyPolicy".into()],
            subject: "s".into(),
            body: "b".into(),
        }
    }

    const KEY: &str = "arn:aws:kms:eu-west-1:111122223333:key/k";
    const LEASE: Duration = Duration::from_secs(150);

    fn view(statuses: &[Status]) -> RunView {
        RunView {
            statuses: statuses.iter().map(|s| (KEY.to_string(), *s)).collect(),
            ..RunView::default()
        }
    }

    #[test]
    fn a_record_names_the_announcement_of_its_run_and_key() {
        let key = crate::testing::key(KEY);
        let cause = Cause::Sweep {
            id: "sweep-7",
            time: None,
        };
        let sort_key = Journal::record_key(&key, cause);
        assert_eq!(
            Journal::announcement_of_record(&sort_key),
            Some(announcement_id(KEY, "sweep-7"))
        );
        assert_ne!(
            Journal::announcement_of_record(&sort_key),
            Some(announcement_id(KEY, "sweep-8"))
        );
        assert_eq!(Journal::announcement_of_record("no separators"), None);
    }

    #[test]
    fn a_retry_of_the_same_event_announces_its_own_record_once_it_audited_the_key() {
        let record = pending("event-1", 1_000);
        assert_eq!(
            record.disposal("event-1", 1_001, LEASE, &view(&[Status::Compliant])),
            Disposal::Announce(Now::InOrder)
        );
        assert_eq!(
            record.disposal("event-1", 1_001, LEASE, &view(&[])),
            Disposal::Wait
        );
    }

    #[test]
    fn a_sweep_that_wrote_and_could_not_announce_announces_before_it_ends() {
        let record = pending("sweep-1", 1_000);
        let mut view = RunView::default();
        view.undelivered.insert(KEY.to_string());
        assert_eq!(
            record.disposal("sweep-1", 1_001, LEASE, &view),
            Disposal::Announce(Now::NotAudited)
        );
    }

    #[test]
    fn another_invocation_waits_for_the_lease_before_taking_over() {
        let record = pending("event-1", 1_000);
        let audited = view(&[Status::Compliant]);
        assert_eq!(
            record.disposal("event-2", 1_149, LEASE, &audited),
            Disposal::Wait
        );
        assert_eq!(
            record.disposal("event-2", 1_150, LEASE, &audited),
            Disposal::Announce(Now::InOrder)
        );
    }

    #[test]
    fn a_key_whose_audit_did_not_finish_here_is_left_to_the_next_invocation() {
        let record = pending("sweep-1", 1_000);
        let mut view = RunView::default();
        view.unfinished.insert(KEY.to_string());
        assert_eq!(
            record.disposal("sweep-2", 9_999, LEASE, &view),
            Disposal::Wait
        );
        assert_eq!(
            record.disposal("sweep-2", 9_999, LEASE, &RunView::default()),
            Disposal::Announce(Now::NotAudited),
            "a key this invocation never saw (deleted, left management) is announced as it is"
        );
    }

    #[test]
    fn a_sweeps_record_is_superseded_by_a_later_correction_an_events_is_not() {
        let mut record = pending("sweep-1", 1_000);
        record.by_sweep = true;
        let corrected = view(&[Status::Corrected]);
        assert_eq!(
            record.disposal("sweep-2", 9_999, LEASE, &corrected),
            Disposal::Supersede
        );
        record.by_sweep = false;
        assert_eq!(
            record.disposal("sweep-2", 9_999, LEASE, &corrected),
            Disposal::Announce(Now::StillWrong),
            "an event's record names who made the change: it is announced"
        );
    }

    #[test]
    fn an_unchanged_finding_waits_for_its_reminder() {
        let day = Duration::from_secs(24 * 3600);
        let last = Announced {
            fingerprint: "abc".into(),
            announced_at: 10_000,
        };
        assert_eq!(
            repeat(Some(&last), "abc", 10_000 + 3600, Some(day)),
            Repeat::Unchanged { since: 10_000 }
        );
        assert_eq!(
            repeat(Some(&last), "abc", 10_000 + 86_400, Some(day)),
            Repeat::Reminder
        );
        assert_eq!(
            repeat(Some(&last), "abc", 10_000 + 10 * 86_400, None),
            Repeat::Unchanged { since: 10_000 }
        );
    }

    #[test]
    fn a_changed_or_new_finding_is_sent() {
        let last = Announced {
            fingerprint: "abc".into(),
            announced_at: 10_000,
        };
        assert_eq!(repeat(Some(&last), "abd", 10_001, None), Repeat::New);
        assert_eq!(repeat(None, "abc", 10_001, None), Repeat::New);
    }

    #[test]
    fn the_digest_is_the_published_fnv1a() {
        // Reference values of FNV-1a 64 (Fowler, Noll, Vo test vectors).
        assert_eq!(fnv1a(""), "cbf29ce484222325");
        assert_eq!(fnv1a("a"), "af63dc4c8601ec8c");
        assert_eq!(fnv1a("foobar"), "85944171f73967e8");
    }

    #[test]
    fn a_late_announcement_says_what_was_started_and_how_the_key_is_now() {
        let record = pending("event-1", 1_000);
        let message = late_notification(&record, Now::InOrder, "policy-drift");
        assert!(
            message.body.contains("for event or sweep event-1"),
            "{}",
            message.body
        );
        assert!(message.body.contains("the corrections were made"));
        assert_eq!(
            message.attributes.get("late").map(String::as_str),
            Some("true")
        );
        let unknown = late_notification(&record, Now::NotAudited, "policy-drift");
        assert!(unknown.body.contains("is not known here"));
    }

    #[test]
    fn a_late_announcement_carries_the_id_of_its_runs_own_message() {
        // The run's own message may have been delivered before its record could be settled:
        // the same id lets subscribers drop the late copy.
        let record = pending("sweep-7", 1_000);
        let late = late_notification(&record, Now::InOrder, "policy-drift");
        let id = late.attributes.get("announcement_id").cloned();
        assert_eq!(id, Some(announcement_id(&record.key_arn, "sweep-7")));
        assert_ne!(id, Some(announcement_id(&record.key_arn, "sweep-8")));
    }
}
