//! What one key's audit produced, and where its message finds the key's alias.

use std::collections::HashMap;

use tokio::sync::OnceCell;

use crate::aws::kms::{self, KeyInfo};
use crate::aws::AwsClients;
use crate::base::error::GuardrailError;
use crate::notify::outcome::{Finding, KeyOutcome, Severity, Status};

/// What a function's audit of one key produced; the function's decisions are all here.
#[derive(Debug)]
pub struct Audit {
    pub outcome: KeyOutcome,
    /// The call that stopped the audit or a correction, if any.
    pub failure: Option<GuardrailError>,
    /// The subject before the key's name, e.g. "KMS key policy drift corrected".
    pub headline: String,
    pub severity: Severity,
    pub guidance: Option<String>,
    /// The state table's records this message announces (this attempt's writes, an earlier
    /// attempt's), settled once it is delivered.
    pub records: Vec<String>,
    /// Why this audit's message is not sent (announced already, unchanged): logged instead.
    pub quiet: Option<String>,
}

/// The aliases of a Region's keys, listed once and only when a message needs them.
pub struct RegionAliases {
    region: String,
    by_key: OnceCell<HashMap<String, Vec<String>>>,
}

impl RegionAliases {
    pub fn new(region: &str) -> RegionAliases {
        RegionAliases {
            region: region.to_string(),
            by_key: OnceCell::new(),
        }
    }

    pub(crate) async fn first(&self, clients: &AwsClients, key_id: &str) -> Option<String> {
        let client = clients.kms(&self.region);
        let map = self
            .by_key
            .get_or_try_init(|| async move { kms::aliases_by_key(&client).await })
            .await;
        match map {
            Ok(map) => map.get(key_id).and_then(|names| names.first().cloned()),
            Err(e) => {
                tracing::warn!(error = %e, "aliases unavailable for the notification");
                None
            }
        }
    }
}

/// How a message finds the key's alias: one ListAliases for the key (events), or the
/// Region's listing shared by the whole sweep.
#[derive(Clone, Copy)]
pub enum Aliases<'a> {
    PerKey,
    Region(&'a RegionAliases),
}

impl Audit {
    /// An audit of high severity without advice: what most decisions produce.
    pub fn new(outcome: KeyOutcome, failure: Option<GuardrailError>, headline: &str) -> Audit {
        Audit {
            outcome,
            failure,
            headline: headline.into(),
            severity: Severity::High,
            guidance: None,
            records: Vec::new(),
            quiet: None,
        }
    }

    /// An audit a call stopped before any decision: the pipeline classifies `failure`.
    pub fn failed(key: &KeyInfo, failure: GuardrailError, headline: &str) -> Audit {
        Audit::new(KeyOutcome::new(key), Some(failure), headline)
    }

    /// A key left alone for now, with the reason. Announced only with an enrolment finding.
    pub fn skipped(key: &KeyInfo, reason: String) -> Audit {
        Audit::new(KeyOutcome::skipped(key, reason), None, ENROLLED)
    }

    /// A finding the event itself made (a key entering management), shown first. A key found
    /// in order is then reported for it, under a headline that says so.
    pub fn add_event_finding(&mut self, finding: Finding) {
        self.outcome.findings.insert(0, finding);
        if self.outcome.status == Status::Compliant {
            self.outcome.status = Status::Reported;
            self.headline = ENROLLED.into();
        }
    }
}

const ENROLLED: &str = "KMS key enrolled in guardrails";
