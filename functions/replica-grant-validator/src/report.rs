//! The structured report: per primary, per replica Region, what was checked, found and done.
//! It is the invocation's result, logged as JSON, and the source of every message.

use serde::Serialize;
use shared::base::region::Region;
use shared::config::Mode;
use shared::notify::metrics::Measures;
use shared::notify::outcome::Delivery;
use shared::notify::outcome::{Action, Finding, FindingKind, SweepReport};

use crate::buckets::BucketReport;
use crate::replicas::{PolicyCheck, RoleAccess};

/// Findings that stop replication into a Region now or soon: a replica going away, or a
/// replication role that may not encrypt with it.
pub fn is_critical(finding: &Finding) -> bool {
    matches!(
        finding.kind,
        FindingKind::PendingDeletion | FindingKind::ReplicationAccess
    )
}

/// The grants of one replica against the required ones, as people read them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GrantsReport {
    /// Required grants present, by name.
    pub ok: Vec<String>,
    /// Required grants absent, by name (created in enforce mode: see `actions`).
    pub missing: Vec<String>,
    /// Grants no required grant accounts for: grant id and why.
    pub unexpected: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReplicaReport {
    pub region: Region,
    pub arn: String,
    /// The key state KMS reports (`Enabled`, `Disabled`, `PendingDeletion`, ...).
    pub state: String,
    pub allowed_region: bool,
    pub grants: GrantsReport,
    /// The replica's key policy against the primary's with the Region substituted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<PolicyCheck>,
    pub replication_role_access: Vec<RoleAccess>,
    pub actions: Vec<Action>,
    pub findings: Vec<Finding>,
    /// The call that stopped this replica's checks, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl ReplicaReport {
    pub fn new(region: &Region, arn: &str) -> ReplicaReport {
        ReplicaReport {
            region: region.clone(),
            arn: arn.to_string(),
            state: "Unknown".into(),
            allowed_region: true,
            grants: GrantsReport::default(),
            policy: None,
            replication_role_access: Vec::new(),
            actions: Vec::new(),
            findings: Vec::new(),
            error: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PrimaryReport {
    pub primary: String,
    pub region: Region,
    pub replicas: Vec<ReplicaReport>,
    /// Configured replication Regions with no replica of this primary.
    pub missing_regions: Vec<Region>,
    /// Findings about the set as a whole (a missing replica).
    pub findings: Vec<Finding>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl PrimaryReport {
    /// Whether a write (a grant created or revoked) was made on any replica.
    pub fn wrote(&self) -> bool {
        self.replicas
            .iter()
            .any(|r| r.actions.iter().any(|a| a.done))
    }

    /// Every finding, the replicas' ones prefixed with their Region.
    pub fn all_findings(&self) -> Vec<Finding> {
        let mut all = self.findings.clone();
        for replica in &self.replicas {
            all.extend(replica.findings.iter().map(|f| Finding {
                summary: format!("{}: {}", replica.region, f.summary),
                ..f.clone()
            }));
        }
        all
    }

    /// Every action, with the replica's Region in its detail.
    pub fn all_actions(&self) -> Vec<Action> {
        self.replicas
            .iter()
            .flat_map(|r| {
                r.actions.iter().map(|a| Action {
                    detail: format!("{}: {}", r.region, a.detail),
                    ..a.clone()
                })
            })
            .collect()
    }

    pub fn needs_attention(&self) -> bool {
        !self.findings.is_empty()
            || self.error.is_some()
            || self
                .replicas
                .iter()
                .any(|r| !r.findings.is_empty() || !r.actions.is_empty() || r.error.is_some())
    }
}

/// The whole invocation: the keys validated, the buckets checked, and the one message sent.
#[derive(Debug, Serialize)]
pub struct ValidationReport {
    /// The CloudTrail event name, or `ScheduledSweep`.
    pub trigger: String,
    pub mode: Mode,
    pub keys: Vec<PrimaryReport>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub buckets: Vec<BucketReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sweep: Option<SweepReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notification: Option<Delivery>,
    /// Why a sweep's message was not sent: the same as the one announced before.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_announced_again: Option<String>,
}

impl ValidationReport {
    pub fn new(trigger: &str, mode: Mode) -> ValidationReport {
        ValidationReport {
            trigger: trigger.to_string(),
            mode,
            keys: Vec::new(),
            buckets: Vec::new(),
            sweep: None,
            notification: None,
            not_announced_again: None,
        }
    }

    /// A report for the pipeline's `respond`, which knows neither the trigger nor the mode:
    /// `function_handler` sets both with [`ValidationReport::stamp`].
    pub fn unstamped() -> ValidationReport {
        ValidationReport::new("", Mode::Report)
    }

    /// Sets the invocation's trigger (the CloudTrail event name, or `ScheduledSweep`) and mode.
    pub fn stamp(&mut self, trigger: &str, mode: Mode) {
        self.trigger = trigger.to_string();
        self.mode = mode;
    }

    /// The counts of the invocation: replicas audited, with findings, corrected.
    pub fn measures(&self) -> Measures {
        let replicas = self.keys.iter().flat_map(|k| &k.replicas);
        let swept = self
            .sweep
            .as_ref()
            .map(Measures::of_sweep)
            .unwrap_or_default();
        Measures {
            keys_audited: replicas.clone().count() as u64,
            findings: self.keys.iter().filter(|k| k.needs_attention()).count() as u64,
            corrections: self.keys.iter().filter(|k| k.wrote()).count() as u64,
            failed: self.keys.iter().filter(|k| k.error.is_some()).count() as u64,
            ..swept
        }
    }

    pub fn writes(&self) -> usize {
        self.keys
            .iter()
            .flat_map(|k| &k.replicas)
            .flat_map(|r| &r.actions)
            .filter(|a| a.done)
            .count()
    }
}
