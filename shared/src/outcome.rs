//! What a function found and what it did, returned as the invocation result and logged.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Already matched the baseline: nothing written.
    Compliant,
    /// Drift found and corrected.
    Corrected,
    /// Drift found; report mode, nothing written.
    Reported,
    /// Not acted on, with a reason.
    Skipped,
}

/// One way a key departs from its baseline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Stable machine name: `policy_drift`, `rotation_disabled`, ...
    pub kind: &'static str,
    pub summary: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
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
    pub region: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    pub status: Status,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<Finding>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<Action>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notification_id: Option<String>,
}

impl KeyOutcome {
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

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SweepReport {
    pub regions: Vec<String>,
    pub keys_examined: usize,
    pub managed: usize,
    pub compliant: usize,
    pub corrected: usize,
    pub reported: usize,
    pub failed: Vec<KeyFailure>,
    /// Keys that drifted, with their findings.
    pub drifted: Vec<KeyOutcome>,
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
    Sweep(SweepReport),
}
