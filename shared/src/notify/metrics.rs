//! What every invocation did, in numbers: the metrics each function emits in CloudWatch's
//! embedded metric format, and the command-line audit's counts. Derived from the invocation's
//! outcome alone, so a decision is never made twice.

use std::io::Write;
use std::sync::OnceLock;
use std::time::Duration;

use metrics_cloudwatch_embedded::{Builder, Collector};

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
    /// Managed keys a sweep left to the next one: a failure a retry can fix (throttling, a
    /// timeout), or the invocation's deadline.
    pub keys_not_finished: u64,
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
            keys_not_finished: n(report.retry_later + report.not_started),
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
            keys_not_finished: tally.retry_later + tally.not_started,
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
    pub fn counts(&self) -> [(&'static str, u64); 8] {
        [
            ("KeysAudited", self.keys_audited),
            ("KeysNotFinished", self.keys_not_finished),
            ("Findings", self.findings),
            ("Corrections", self.corrections),
            ("Blocked", self.blocked),
            ("Failed", self.failed),
            ("RegionsNotSwept", self.regions_not_swept),
            ("ShutOut", self.shut_out),
        ]
    }
}

/// The recorder a Lambda binary installs at start; a process without one (the command line,
/// tests in process) emits nothing.
static COLLECTOR: OnceLock<&'static Collector> = OnceLock::new();

/// The metric of how long a sweep took, in milliseconds.
pub const SWEEP_DURATION: &str = "SweepDuration";

/// Installs the EMF recorder for `function`: once, in `main`, before the first invocation.
pub fn install(function: &'static str) {
    let built = Builder::new()
        .cloudwatch_namespace(NAMESPACE)
        .with_dimension(DIMENSION, function)
        // Every count on every line, zeros included: a dashboard shows 0, not a gap.
        .emit_zeros(true)
        .init();
    match built {
        Ok(collector) => {
            for (name, _) in Measures::default().counts() {
                metrics::describe_counter!(name, metrics::Unit::Count, "");
                metrics::counter!(name).increment(0);
            }
            metrics::describe_histogram!(SWEEP_DURATION, metrics::Unit::Milliseconds, "");
            let _ = COLLECTOR.set(collector);
        }
        Err(e) => tracing::warn!(error = %e, "metrics recorder not installed: no metrics"),
    }
}

/// Writes one EMF line with `measures` on stdout, where Lambda sends it to CloudWatch Logs.
pub fn emit(measures: &Measures) {
    let Some(collector) = COLLECTOR.get() else {
        return;
    };
    for (name, value) in measures.counts() {
        metrics::counter!(name).increment(value);
    }
    if let Some(duration) = measures.sweep_duration {
        metrics::histogram!(SWEEP_DURATION).record(duration.as_secs_f64() * 1000.0);
    }
    // One write of the whole line: a log line from another thread cannot land inside it.
    let mut line = Vec::with_capacity(1024);
    match collector.flush(&mut line) {
        Ok(()) => {
            let _ = std::io::stdout().lock().write_all(&line);
        }
        Err(e) => tracing::warn!(error = %e, "metrics not written"),
    }
}

impl std::ops::Add for Measures {
    type Output = Measures;

    fn add(self, other: Measures) -> Measures {
        Measures {
            keys_audited: self.keys_audited + other.keys_audited,
            keys_not_finished: self.keys_not_finished + other.keys_not_finished,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::outcome::{Finding, KeyFailure, RegionReport};

    fn key(status: Status, kinds: &[FindingKind]) -> KeyOutcome {
        let mut outcome = KeyOutcome::new(&crate::testing::key(
            "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        ));
        outcome.status = status;
        outcome.findings = kinds.iter().map(|k| Finding::new(*k, "x")).collect();
        outcome
    }

    #[test]
    fn an_event_counts_its_one_key_and_a_skip_counts_nothing() {
        let corrected = Measures::of_outcome(&Outcome::Key(key(
            Status::Corrected,
            &[FindingKind::PolicyDrift],
        )));
        assert_eq!(
            (
                corrected.keys_audited,
                corrected.findings,
                corrected.corrections
            ),
            (1, 1, 1)
        );
        let shut_out = Measures::of_key(&key(Status::Failed, &[FindingKind::ShutOut]));
        assert_eq!(
            (shut_out.failed, shut_out.shut_out, shut_out.findings),
            (1, 1, 1)
        );
        let compliant = Measures::of_key(&key(Status::Compliant, &[]));
        assert_eq!((compliant.keys_audited, compliant.findings), (1, 0));
        assert_eq!(
            Measures::of_key(&key(Status::Skipped, &[])),
            Measures::default()
        );
        let two = Measures::of_outcome(&Outcome::Keys(vec![
            key(Status::Blocked, &[FindingKind::CorrectionBlocked]),
            key(Status::Reported, &[FindingKind::RotationDisabled]),
        ]));
        assert_eq!((two.keys_audited, two.findings, two.blocked), (2, 2, 1));
    }

    #[test]
    fn a_sweep_counts_every_key_not_only_those_shown_and_each_region_not_swept() {
        let region = |error: bool| RegionReport {
            account: "111122223333".into(),
            region: crate::testing::region("eu-west-1"),
            keys_listed: 0,
            error: error.then(|| KeyFailure {
                key: String::new(),
                error_type: "AccessDenied".into(),
                error: "denied".into(),
            }),
        };
        let report = SweepReport {
            regions: vec![region(false), region(true), region(true)],
            managed: 120,
            compliant: 100,
            corrected: 9,
            reported: 5,
            blocked: 2,
            failed: 4,
            shut_out: 3,
            retry_later: 6,
            not_started: 1,
            ..SweepReport::default()
        };
        let m = Measures::of_outcome(&Outcome::Sweep(report));
        assert_eq!(
            m.counts(),
            [
                ("KeysAudited", 120),
                ("KeysNotFinished", 7),
                ("Findings", 20),
                ("Corrections", 9),
                ("Blocked", 2),
                ("Failed", 4),
                ("RegionsNotSwept", 2),
                ("ShutOut", 3),
            ]
        );
    }

    #[test]
    fn measures_add_up_and_keep_the_longest_sweep() {
        let a = Measures {
            keys_audited: 2,
            sweep_duration: Some(Duration::from_secs(3)),
            ..Measures::default()
        };
        let b = Measures {
            keys_audited: 5,
            sweep_duration: Some(Duration::from_secs(7)),
            ..Measures::default()
        };
        let total: Measures = [a, b].into_iter().sum();
        assert_eq!(total.keys_audited, 7);
        assert_eq!(total.sweep_duration, Some(Duration::from_secs(7)));
    }
}
