//! What every invocation did, in numbers: the metrics each function emits in CloudWatch's
//! embedded metric format, and the command-line audit's counts. Derived from the invocation's
//! outcome alone, so a decision is never made twice.

use std::time::Duration;

use crate::notify::outcome::{FindingKind, KeyOutcome, Outcome, PartTally, Status, SweepReport};

/// The namespace of every function's metrics.
pub const NAMESPACE: &str = "KmsGuardrails";
/// The one dimension: which function.
pub const DIMENSION: &str = "Function";

/// One invocation's counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Measures {
    /// Managed keys whose audit finished (or began and failed).
    pub keys_audited: u64,
    /// Keys (or roles, alarms, replicas) with something found: corrected, reported, blocked or
    /// failed.
    pub findings: u64,
    pub corrections: u64,
    /// Corrections refused by a safety check (lockout, KMS's rules) before any write.
    pub blocked: u64,
    /// Failures only a person can fix.
    pub failed: u64,
    /// Account-Regions a sweep could not list or reach.
    pub regions_not_swept: u64,
    /// Keys the function may no longer read: a key policy or SCP shuts it out.
    pub shut_out: u64,
    /// How long a sweep took; `None` for events.
    pub sweep_duration: Option<Duration>,
}

impl Measures {
    /// The counts of the pipeline's own outcome.
    pub fn of_outcome(outcome: &Outcome) -> Measures {
        match outcome {
            Outcome::Skipped { .. } | Outcome::FanOut(_) => Measures::default(),
            Outcome::Key(key) => Measures::of_key(key),
            Outcome::Keys(keys) => keys.iter().map(Measures::of_key).sum(),
            Outcome::Sweep(report) => Measures::of_sweep(report),
            Outcome::SweepWork(work) => work
                .parts
                .iter()
                .filter(|part| part.done.is_some())
                .map(|part| Measures::of_tally(&part.tally))
                .sum(),
        }
    }

    pub fn of_key(key: &KeyOutcome) -> Measures {
        let is = |status: Status| u64::from(key.status == status);
        Measures {
            keys_audited: u64::from(key.status != Status::Skipped),
            findings: u64::from(matches!(
                key.status,
                Status::Corrected | Status::Reported | Status::Blocked | Status::Failed
            )),
            corrections: is(Status::Corrected),
            blocked: is(Status::Blocked),
            failed: is(Status::Failed),
            shut_out: u64::from(key.findings.iter().any(|f| f.kind == FindingKind::ShutOut)),
            ..Measures::default()
        }
    }

    pub fn of_sweep(report: &SweepReport) -> Measures {
        let n = |v: usize| v as u64;
        Measures {
            keys_audited: n(report.managed),
            findings: n(report.corrected + report.reported + report.blocked + report.failed),
            corrections: n(report.corrected),
            blocked: n(report.blocked),
            failed: n(report.failed),
            regions_not_swept: n(report.regions.iter().filter(|r| r.error.is_some()).count()),
            shut_out: n(report.shut_out),
            sweep_duration: None,
        }
    }

    /// One part of a fanned-out sweep, counted when this delivery counted it.
    pub fn of_tally(tally: &PartTally) -> Measures {
        Measures {
            keys_audited: tally.managed,
            findings: tally.corrected + tally.reported + tally.blocked + tally.failed,
            corrections: tally.corrected,
            blocked: tally.blocked,
            failed: tally.failed,
            regions_not_swept: tally.not_swept.len() as u64,
            shut_out: tally.shut_out,
            sweep_duration: None,
        }
    }

    /// The metrics by name and value, in the order they are emitted.
    pub fn counts(&self) -> [(&'static str, u64); 7] {
        [
            ("KeysAudited", self.keys_audited),
            ("Findings", self.findings),
            ("Corrections", self.corrections),
            ("Blocked", self.blocked),
            ("Failed", self.failed),
            ("RegionsNotSwept", self.regions_not_swept),
            ("ShutOut", self.shut_out),
        ]
    }
}

impl std::ops::Add for Measures {
    type Output = Measures;

    fn add(self, other: Measures) -> Measures {
        Measures {
            keys_audited: self.keys_audited + other.keys_audited,
            findings: self.findings + other.findings,
            corrections: self.corrections + other.corrections,
            blocked: self.blocked + other.blocked,
            failed: self.failed + other.failed,
            regions_not_swept: self.regions_not_swept + other.regions_not_swept,
            shut_out: self.shut_out + other.shut_out,
            sweep_duration: match (self.sweep_duration, other.sweep_duration) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            },
        }
    }
}

impl std::iter::Sum for Measures {
    fn sum<I: Iterator<Item = Measures>>(iter: I) -> Measures {
        iter.fold(Measures::default(), |a, b| a + b)
    }
}
