//! policy-drift's decisions as pure functions of data: the key's state, its policy text and
//! rotation against the baseline give findings and the corrections that fix them.

use aws_sdk_kms::types::KeyState;
use shared::aws::kms::{KeyInfo, RotationStatus};
use shared::config::Mode;
use shared::notify::outcome::{Finding, FindingKind, KeyOutcome, Status};
use shared::policy::model::Policy;

use shared::aws::grants::ExistingGrant;
use shared::desired::Version;
use shared::policy::safe_policy::SafePolicy;

use crate::config::{Config, RotationBaseline};

/// A write that brings the key back to its baseline, in the order they must run: a key pending
/// deletion or disabled refuses PutKeyPolicy and EnableKeyRotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Correction {
    CancelKeyDeletion,
    EnableKey,
    PutKeyPolicy,
    EnableKeyRotation,
}

impl Correction {
    pub fn operation(self) -> &'static str {
        match self {
            Correction::CancelKeyDeletion => "CancelKeyDeletion",
            Correction::EnableKey => "EnableKey",
            Correction::PutKeyPolicy => "PutKeyPolicy",
            Correction::EnableKeyRotation => "EnableKeyRotation",
        }
    }

    /// What the correction does, as done or as enforce mode would do it.
    pub fn detail(self, rotation: RotationBaseline, desired: Desired, done: bool) -> String {
        let (did, would) = match self {
            Correction::CancelKeyDeletion => ("cancelled", "cancel"),
            Correction::EnableKey => ("enabled", "enable"),
            Correction::PutKeyPolicy => ("restored", "restore"),
            Correction::EnableKeyRotation => ("enabled", "enable"),
        };
        let what = match self {
            Correction::CancelKeyDeletion => "the scheduled deletion".to_string(),
            Correction::EnableKey => "the key".to_string(),
            Correction::PutKeyPolicy => match desired {
                Desired::Baseline => "the baseline key policy".to_string(),
                Desired::Record(version) => format!("the key policy recorded as version {version}"),
            },
            Correction::EnableKeyRotation => {
                format!("automatic rotation every {} days", rotation.period_days)
            }
        };
        if done {
            format!("{did} {what}")
        } else {
            format!("would {would} {what}")
        }
    }
}

/// What the key's state, policy text and rotation say, against the baseline: pure.
pub fn plan(
    key: &KeyInfo,
    policy_text: &str,
    baseline: &Policy,
    rotation: Option<RotationStatus>,
    wanted: RotationBaseline,
) -> (Vec<Finding>, Vec<Correction>) {
    let (mut findings, mut corrections) = (Vec::new(), Vec::new());
    match key.state {
        KeyState::PendingDeletion | KeyState::PendingReplicaDeletion => {
            findings.push(Finding::new(
                FindingKind::PendingDeletion,
                scheduled_deletion(key),
            ));
            // CancelKeyDeletion leaves the key Disabled.
            corrections.extend([Correction::CancelKeyDeletion, Correction::EnableKey]);
        }
        KeyState::Disabled => {
            findings.push(Finding::new(
                FindingKind::KeyDisabled,
                "the key is disabled",
            ));
            corrections.push(Correction::EnableKey);
        }
        _ => {}
    }
    if let Some(finding) = policy_finding(policy_text, baseline, &Desired::Baseline) {
        findings.push(finding);
        corrections.push(Correction::PutKeyPolicy);
    }
    if let Some(finding) = rotation.and_then(|r| rotation_finding(r, wanted)) {
        findings.push(finding);
        corrections.push(Correction::EnableKeyRotation);
    }
    corrections.sort();
    (findings, corrections)
}

/// "the key is scheduled for deletion on DATE", as KMS dates it.
pub fn scheduled_deletion(key: &KeyInfo) -> String {
    let when = key
        .deletion_date
        .as_deref()
        .map(|d| format!(" on {d}"))
        .unwrap_or_default();
    format!("the key is scheduled for deletion{when}")
}

/// What KMS says of the key's rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotationRead {
    Read(RotationStatus),
    /// Replicas, asymmetric, HMAC and imported keys, or rotation not in the baseline.
    NotApplicable,
    /// KMS refuses rotation reads while a key is disabled or pending deletion: read again
    /// once the key is enabled.
    Deferred,
}

/// Replicas share the primary's rotation; asymmetric, HMAC and imported keys cannot rotate.
/// Per key, the record says whether rotation is wanted, so it is always read.
pub fn rotation_applies(config: &Config, key: &KeyInfo) -> bool {
    (config.rotation.enabled || config.per_key().is_some()) && key.rotatable && !key.is_replica()
}

pub enum Plan {
    /// The desired policy for this key fails a safety check: nothing is compared or written.
    Blocked(Vec<String>),
    Correct(Box<Correct>),
}

/// What `decide` concluded for a key it may compare and correct.
pub struct Correct {
    pub findings: Vec<Finding>,
    pub corrections: Vec<Correction>,
    /// The policy PutKeyPolicy writes, checked; `None` when none is to be written.
    pub policy: Option<SafePolicy>,
    /// What the key is compared with, as messages name it.
    pub desired: Desired,
    /// The rotation EnableKeyRotation restores.
    pub rotation: RotationBaseline,
    pub rotation_deferred: bool,
    /// Grants to revoke (per-key, `REVOKE_UNEXPECTED_GRANTS=true`).
    pub revoke: Vec<ExistingGrant>,
    /// The desired-state version to record before any write.
    pub record: Option<Version>,
    /// Audited for an operator's command (a rollback), not a change.
    pub commanded: bool,
}

/// The plan against the baseline (every key alike, or a key without a record).
pub fn decide_by_baseline(
    config: &Config,
    key: &KeyInfo,
    policy_text: &str,
    rotation: RotationRead,
) -> Plan {
    let baseline = match config.baseline_for(&key.account, &key.region, key.arn.partition()) {
        Ok(safe) => safe,
        Err(problems) => return Plan::Blocked(problems),
    };
    let status = match rotation {
        RotationRead::Read(status) => Some(status),
        RotationRead::NotApplicable | RotationRead::Deferred => None,
    };
    let (mut findings, corrections) = plan(
        key,
        policy_text,
        baseline.policy(),
        status.filter(|_| config.rotation.enabled),
        config.rotation,
    );
    let rotation_deferred = rotation == RotationRead::Deferred && config.rotation.enabled;
    if rotation_deferred && config.common.mode == Mode::Report {
        findings.push(rotation_unknown(key));
    }
    Plan::Correct(Box::new(Correct {
        findings,
        corrections,
        policy: Some(baseline),
        desired: Desired::Baseline,
        rotation: config.rotation,
        rotation_deferred,
        revoke: Vec::new(),
        record: None,
        commanded: false,
    }))
}

pub fn rotation_unknown(key: &KeyInfo) -> Finding {
    Finding::new(
        FindingKind::RotationUnknown,
        format!(
            "rotation was not checked: KMS does not report it while the key is {}",
            key.state.as_str()
        ),
    )
}

/// What a key is compared with, as messages name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Desired {
    Baseline,
    /// The key's own record, at this version.
    Record(u32),
}

impl Desired {
    pub fn name(self) -> String {
        match self {
            Desired::Baseline => "the baseline".to_string(),
            Desired::Record(version) => format!("its recorded desired state (version {version})"),
        }
    }
}

/// The finding when the policy text departs from `desired` (or cannot be compared): pure.
pub fn policy_finding(policy_text: &str, desired: &Policy, against: &Desired) -> Option<Finding> {
    let against = against.name();
    match Policy::parse(policy_text) {
        Ok(actual) => {
            let diff = actual.diff_against(desired);
            if diff.is_empty() {
                return None;
            }
            let version = if diff.version.is_some() {
                ", different Version"
            } else {
                ""
            };
            let summary = format!("the key policy differs from {against}: {} missing, {} extra, {} changed statement(s){version}", diff.missing.len(), diff.extra.len(), diff.changed.len());
            Some(Finding {
                kind: FindingKind::PolicyDrift,
                summary,
                diff: Some(diff.to_string()),
            })
        }
        Err(e) => Some(Finding::new(
            FindingKind::PolicyUnreadable,
            format!("the key policy is not a policy {against} can be compared with ({e})"),
        )),
    }
}

pub fn rotation_finding(status: RotationStatus, wanted: RotationBaseline) -> Option<Finding> {
    if !status.enabled {
        return Some(Finding::new(
            FindingKind::RotationDisabled,
            format!(
                "automatic rotation is disabled (baseline: every {} days)",
                wanted.period_days
            ),
        ));
    }
    let period = status.period_days.filter(|p| *p != wanted.period_days)?;
    Some(Finding::new(
        FindingKind::RotationPeriod,
        format!(
            "rotation period is {period} days (baseline: {} days)",
            wanted.period_days
        ),
    ))
}

/// The subject of the message about one key.
pub fn headline(outcome: &KeyOutcome, mode: Mode, failed: bool) -> String {
    let kinds: Vec<FindingKind> = outcome.findings.iter().map(|f| f.kind).collect();
    if kinds.iter().all(|k| *k == FindingKind::Enrolled) {
        return "KMS key enrolled in guardrails".into();
    }
    if kinds
        .iter()
        .all(|k| *k == FindingKind::DesiredStateRecorded)
    {
        return "KMS key desired state recorded".into();
    }
    if kinds.contains(&FindingKind::FloorViolation) {
        return match (outcome.status, failed) {
            (_, true) => "KMS key breaks the floor, NOT corrected".into(),
            (Status::Corrected, false) => "KMS key change refused by the floor and reverted".into(),
            _ => "KMS key breaks the floor".into(),
        };
    }
    let policy = kinds
        .iter()
        .any(|k| matches!(k, FindingKind::PolicyDrift | FindingKind::PolicyUnreadable));
    let grants = kinds.iter().all(|k| {
        matches!(
            k,
            FindingKind::GrantUnexpected
                | FindingKind::GrantMissing
                | FindingKind::DesiredStateRecorded
        )
    });
    let what = if policy {
        "KMS key policy drift"
    } else if grants {
        "KMS key grant drift"
    } else {
        "KMS key drift"
    };
    let verb = match (mode, failed) {
        (_, true) => "NOT corrected",
        (Mode::Enforce, false) if outcome.status == Status::Corrected => "corrected",
        // Report mode, or findings enforce mode does not write for (a grant not revoked).
        _ => "found",
    };
    format!("{what} {verb}")
}
