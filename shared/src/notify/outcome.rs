//! What a function found and what it did, returned as the invocation result and logged.

use std::fmt;

use serde::Serialize;

use crate::base::region::Region;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Already matched the baseline: nothing written.
    Compliant,
    /// Drift found and corrected.
    Corrected,
    /// Found; report mode or nothing to write (an announcement), nothing written.
    Reported,
    /// Not acted on, with a reason.
    Skipped,
    /// A write was refused by a safety check (lockout, KMS rules): nothing written.
    Blocked,
    /// A failure retrying cannot fix (access denied, invalid state): reported once.
    Failed,
}

/// How urgently a person should look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    High,
    Critical,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Info => "info",
            Severity::High => "high",
            Severity::Critical => "critical",
        })
    }
}

/// The kinds of findings, stable machine names in results and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    PolicyDrift,
    PolicyUnreadable,
    RotationDisabled,
    RotationPeriod,
    RotationUnknown,
    PendingDeletion,
    KeyDisabled,
    /// The key stopped being managed (tag removed, listed alias deleted or moved).
    LeftManagement,
    /// The key became managed (tag added, created with the tag, listed alias pointed at it).
    Enrolled,
    /// The function may no longer read a managed key.
    ShutOut,
    /// A correction was refused by a safety check before any write.
    CorrectionBlocked,
    /// The key policy grants the account root (and so every IAM policy of the account).
    RootAccess,
    /// `Principal: "*"` limited only by `kms:CallerAccount`: root-equivalent or broader.
    AccountWideAccess,
    /// A principal shown by unique id (`AROA...`): deleted, perhaps recreated as another.
    OrphanedPrincipal,
    /// The only administrator of keys without root was deleted, restricted or made unassumable.
    AdminAtRisk,
    /// A grant the configuration requires is not on a replica key.
    GrantMissing,
    /// A grant on a replica key that no required grant accounts for.
    GrantUnexpected,
    /// A replication role may not encrypt with a replica key (key policy, Deny or no grant).
    ReplicationAccess,
    /// A replica in a Region outside the allowed list.
    ReplicaRegionNotAllowed,
    /// A configured replication Region with no replica of the primary.
    ReplicaMissing,
    /// A bucket's replication names a key S3 replication cannot use as it should.
    BucketReplication,
    /// An earlier attempt for the same event began writing and ended before announcing.
    EarlierAttempt,
    /// A key's desired state was recorded: enrolled, an approved change, a rollback.
    DesiredStateRecorded,
    /// A key's state (at enrolment, or after an approved deployer's change) breaks the floor.
    FloorViolation,
}

impl FindingKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::PolicyDrift => "policy_drift",
            FindingKind::PolicyUnreadable => "policy_unreadable",
            FindingKind::RotationDisabled => "rotation_disabled",
            FindingKind::RotationPeriod => "rotation_period",
            FindingKind::RotationUnknown => "rotation_unknown",
            FindingKind::PendingDeletion => "pending_deletion",
            FindingKind::KeyDisabled => "key_disabled",
            FindingKind::LeftManagement => "left_management",
            FindingKind::Enrolled => "enrolled",
            FindingKind::ShutOut => "shut_out",
            FindingKind::CorrectionBlocked => "correction_blocked",
            FindingKind::RootAccess => "root_access",
            FindingKind::AccountWideAccess => "account_wide_access",
            FindingKind::OrphanedPrincipal => "orphaned_principal",
            FindingKind::AdminAtRisk => "admin_at_risk",
            FindingKind::GrantMissing => "grant_missing",
            FindingKind::GrantUnexpected => "grant_unexpected",
            FindingKind::ReplicationAccess => "replication_access",
            FindingKind::ReplicaRegionNotAllowed => "replica_region_not_allowed",
            FindingKind::ReplicaMissing => "replica_missing",
            FindingKind::BucketReplication => "bucket_replication",
            FindingKind::EarlierAttempt => "earlier_attempt",
            FindingKind::DesiredStateRecorded => "desired_state_recorded",
            FindingKind::FloorViolation => "floor_violation",
        }
    }
}

/// One way a key departs from its desired state, or a change people must hear about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub kind: FindingKind,
    pub summary: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
}

impl Finding {
    pub fn new(kind: FindingKind, summary: impl Into<String>) -> Finding {
        Finding {
            kind,
            summary: summary.into(),
            diff: None,
        }
    }
}

/// A write made (or, in report mode, that would be made).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Action {
    pub operation: &'static str,
    pub detail: String,
    pub done: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyOutcome {
    pub key_arn: String,
    pub key_id: String,
    pub region: Region,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    pub status: Status,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<Finding>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<Action>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Where the notification went: an SNS message id, or the fallback queue's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notification: Option<Delivery>,
}

impl KeyOutcome {
    pub fn new(key: &crate::aws::kms::KeyInfo) -> KeyOutcome {
        KeyOutcome {
            key_arn: key.arn.to_string(),
            key_id: key.key_id.clone(),
            region: key.region.clone(),
            alias: None,
            status: Status::Compliant,
            findings: Vec::new(),
            actions: Vec::new(),
            reason: None,
            notification: None,
        }
    }

    /// A key left alone rather than audited, with the reason.
    pub fn skipped(key: &crate::aws::kms::KeyInfo, reason: String) -> KeyOutcome {
        KeyOutcome {
            status: Status::Skipped,
            reason: Some(reason),
            ..KeyOutcome::new(key)
        }
    }

    pub fn writes(&self) -> usize {
        self.actions.iter().filter(|a| a.done).count()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyFailure {
    pub key: String,
    pub error_type: String,
    pub error: String,
}

/// One Region of a sweep: how many keys it listed, or why it could not be swept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegionReport {
    pub account: String,
    pub region: Region,
    pub keys_listed: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<KeyFailure>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Keys with findings and failures shown in the response; the rest are in the logs, so the
/// response stays small whatever the number of keys.
pub const MAX_REPORTED_KEYS: usize = 20;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SweepReport {
    pub regions: Vec<RegionReport>,
    pub keys_listed: usize,
    pub managed: usize,
    pub compliant: usize,
    pub corrected: usize,
    pub reported: usize,
    pub blocked: usize,
    /// Keys that failed in a way only a person can fix (announced once each).
    pub failed: usize,
    /// Of those, keys the function may no longer read: shut out by a key policy or an SCP.
    #[serde(skip_serializing_if = "is_zero")]
    pub shut_out: usize,
    /// Keys whose audit hit a transient failure: the next sweep audits them again.
    pub retry_later: usize,
    /// Keys not started before the invocation deadline: the next sweep covers them.
    pub not_started: usize,
    /// True when the deadline also left pages of keys unlisted (not counted in `not_started`).
    pub listing_cut_short: bool,
    /// The first keys with findings (at most [`MAX_REPORTED_KEYS`]).
    pub findings: Vec<KeyOutcome>,
    pub findings_not_shown: usize,
    /// The first failures (at most [`MAX_REPORTED_KEYS`]).
    pub failures: Vec<KeyFailure>,
    pub failures_not_shown: usize,
    /// `MANAGED_KEYS` entries that name no key any more (deleted keys, deleted aliases).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unresolved_entries: Vec<UnresolvedEntry>,
    /// Findings found again unchanged and not announced again (their reminder is not due).
    pub not_announced_again: usize,
    /// Corrections an earlier invocation made and did not announce, announced by this sweep.
    pub announced_late: usize,
}

/// A `MANAGED_KEYS` entry that no longer names a key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnresolvedEntry {
    pub entry: String,
    pub region: Region,
}

impl SweepReport {
    pub fn add_finding(&mut self, outcome: KeyOutcome) {
        if self.findings.len() < MAX_REPORTED_KEYS {
            self.findings.push(outcome);
        } else {
            self.findings_not_shown += 1;
        }
    }

    pub fn add_failure(&mut self, failure: KeyFailure) {
        if self.failures.len() < MAX_REPORTED_KEYS {
            self.failures.push(failure);
        } else {
            self.failures_not_shown += 1;
        }
    }
}

impl Outcome {
    /// An event not acted on, with the reason, which is logged.
    pub fn skipped(event_id: &str, event_name: &str, reason: String) -> Outcome {
        tracing::info!(reason = %reason, "event skipped");
        Outcome::Skipped {
            event_id: event_id.to_string(),
            event_name: event_name.to_string(),
            reason,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// The event was not acted on.
    Skipped {
        event_id: String,
        event_name: String,
        reason: String,
    },
    Key(KeyOutcome),
    /// An event about two keys (UpdateAlias moves an alias from one to the other).
    Keys(Vec<KeyOutcome>),
    Sweep(SweepReport),
    /// A schedule that enqueued its sweep's parts, one per (account, Region).
    FanOut(FanOutReport),
    /// Parts of a fanned-out sweep, from SQS. Serialized as exactly the partial batch
    /// response Lambda documents (`{"batchItemFailures": [...]}`), with no tag: each part's
    /// counts are in the log and the state table.
    #[serde(untagged)]
    SweepWork(WorkReport),
}

/// The counts of one part (account, Region) of a fanned-out sweep, added up in the state
/// table into the sweep's summary.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PartTally {
    pub managed: u64,
    pub compliant: u64,
    pub corrected: u64,
    pub reported: u64,
    pub blocked: u64,
    pub failed: u64,
    pub retry_later: u64,
    pub not_started: u64,
    /// `account/Region: why`, for each part or Region that could not be swept.
    pub not_swept: Vec<String>,
    /// This part's keys the function was shut out of (its metric; not summed in the ledger).
    pub shut_out: u64,
}

impl PartTally {
    pub fn of(report: &SweepReport) -> PartTally {
        let n = |v: usize| v as u64;
        PartTally {
            managed: n(report.managed),
            compliant: n(report.compliant),
            corrected: n(report.corrected),
            reported: n(report.reported),
            blocked: n(report.blocked),
            failed: n(report.failed),
            retry_later: n(report.retry_later),
            not_started: n(report.not_started),
            shut_out: n(report.shut_out),
            not_swept: report
                .regions
                .iter()
                .filter_map(|r| {
                    let e = r.error.as_ref()?;
                    Some(format!("{}/{}: {}", r.account, r.region, e.error_type))
                })
                .collect(),
        }
    }

    /// A tally from its counters by name (the names of [`PartTally::counters`]).
    pub fn from_counters(count: impl Fn(&str) -> u64, not_swept: Vec<String>) -> PartTally {
        PartTally {
            managed: count("managed"),
            compliant: count("compliant"),
            corrected: count("corrected"),
            reported: count("reported"),
            blocked: count("blocked"),
            failed: count("failed"),
            retry_later: count("retry_later"),
            not_started: count("not_started"),
            not_swept,
            shut_out: 0,
        }
    }

    /// The counters by name, as the state table sums them.
    pub fn counters(&self) -> [(&'static str, u64); 8] {
        [
            ("managed", self.managed),
            ("compliant", self.compliant),
            ("corrected", self.corrected),
            ("reported", self.reported),
            ("blocked", self.blocked),
            ("failed", self.failed),
            ("retry_later", self.retry_later),
            ("not_started", self.not_started),
        ]
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FanOutReport {
    /// The scheduled event's id, carried by every part.
    pub sweep: String,
    pub parts: usize,
    pub accounts: usize,
    pub regions: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkReport {
    #[serde(skip_serializing)]
    pub parts: Vec<PartDone>,
    /// The Lambda SQS partial batch response: these messages return to the queue.
    #[serde(rename = "batchItemFailures")]
    pub batch_item_failures: Vec<BatchItemFailure>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartDone {
    pub sweep: String,
    /// `account/Region`.
    pub part: String,
    pub tally: PartTally,
    /// Parts of the sweep done, this one included; `None` when it was already counted.
    pub done: Option<u64>,
    pub of: u64,
    /// Whether this part finished the sweep and sent its summary.
    pub summary_sent: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BatchItemFailure {
    #[serde(rename = "itemIdentifier")]
    pub item_identifier: String,
}

/// Where a notification ended up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "via", rename_all = "snake_case")]
pub enum Delivery {
    Sns {
        message_id: String,
    },
    /// SNS refused or was unreachable; the message waits in the fallback queue.
    FallbackQueue {
        message_id: String,
    },
    /// Kept, not sent (the command-line audit): its place in the outbox.
    Outbox {
        place: usize,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    // Lambda reads an SQS batch's answer as `{"batchItemFailures": [{"itemIdentifier": ID}]}`
    // (AWS Lambda Developer Guide, "Implementing partial batch responses"): nothing else is
    // sent, so no other field can be misread.
    #[test]
    fn a_tally_read_back_from_its_counters_is_the_same_tally() {
        let tally = PartTally {
            managed: 9,
            compliant: 1,
            corrected: 2,
            reported: 3,
            blocked: 4,
            failed: 5,
            retry_later: 6,
            not_started: 7,
            not_swept: vec!["444455556666/us-east-1: AccessDenied".into()],
            // Not a ledger counter: each part emits its own, the summary does not sum it.
            shut_out: 0,
        };
        let counters = tally.counters();
        let read = PartTally::from_counters(
            |name| counters.iter().find(|(n, _)| *n == name).map_or(0, |c| c.1),
            tally.not_swept.clone(),
        );
        assert_eq!(read, tally);
    }

    #[test]
    fn sweep_work_answers_with_exactly_the_partial_batch_response() {
        let work = Outcome::SweepWork(WorkReport {
            parts: vec![PartDone {
                sweep: "e-1".into(),
                part: "111122223333/eu-west-1".into(),
                tally: PartTally::default(),
                done: Some(1),
                of: 2,
                summary_sent: false,
            }],
            batch_item_failures: vec![BatchItemFailure {
                item_identifier: "m-2".into(),
            }],
        });
        assert_eq!(
            serde_json::to_value(&work).unwrap(),
            serde_json::json!({"batchItemFailures": [{"itemIdentifier": "m-2"}]})
        );
        let none = Outcome::SweepWork(WorkReport {
            parts: Vec::new(),
            batch_item_failures: Vec::new(),
        });
        assert_eq!(
            serde_json::to_value(&none).unwrap(),
            serde_json::json!({"batchItemFailures": []})
        );
    }
}
