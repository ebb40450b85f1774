//! policy-drift: restores the baseline key policy, rotation and key state of managed keys.
//! Its decisions, as `read` -> `decide` -> `apply`; the pipeline does the rest.

use aws_sdk_kms::types::KeyState;
use lambda_runtime::LambdaEvent;
use serde_json::Value;
use shared::aws::kms::{self, KeyInfo, RotationStatus};
use shared::base::error::AwsErrorKind;
use shared::config::Mode;
use shared::notify::outcome::{Finding, FindingKind, Outcome};
use shared::pipeline::journal::PlannedWrites;
use shared::pipeline::{Audit, Guardrail, NoReport};
use shared::policy::safe_policy::SafePolicy;
use shared::triggers::gate::{EventGate, HandledEvents};
use shared::GuardrailError;

use crate::config::Config;
use crate::plan::{plan, Correction};

pub const FUNCTION: &str = "policy-drift";

/// CloudTrail events that can move a key away from its baseline or in or out of management.
pub const HANDLED: &[HandledEvents] = &[HandledEvents {
    source: "kms.amazonaws.com",
    names: &[
        "PutKeyPolicy",
        "DisableKeyRotation",
        "EnableKeyRotation",
        "ScheduleKeyDeletion",
        "DisableKey",
        "CreateKey",
        "TagResource",
        "UntagResource",
        "CreateAlias",
        "DeleteAlias",
        "UpdateAlias",
    ],
}];

pub const GATE: EventGate = EventGate {
    function: FUNCTION,
    handled: HANDLED,
};

pub type Deps = shared::pipeline::Deps<Config>;

pub struct PolicyDrift;

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

pub struct Facts {
    pub policy_text: String,
    pub rotation: RotationRead,
}

pub enum Plan {
    /// The baseline for this key fails a safety check: nothing is compared or written.
    Blocked(Vec<String>),
    Correct {
        findings: Vec<Finding>,
        corrections: Vec<Correction>,
        baseline: Box<SafePolicy>,
        rotation_deferred: bool,
    },
}

pub async fn function_handler(
    event: LambdaEvent<Value>,
    deps: &Deps,
) -> Result<Outcome, GuardrailError> {
    let response = shared::pipeline::handle::<PolicyDrift>(event, deps).await?;
    Ok(response.into_outcome())
}

/// Replicas share the primary's rotation; asymmetric, HMAC and imported keys cannot rotate.
fn rotation_applies(config: &Config, key: &KeyInfo) -> bool {
    config.rotation.enabled && key.rotatable && !key.is_replica()
}

impl Guardrail for PolicyDrift {
    const NAME: &'static str = FUNCTION;
    const HANDLED: &'static [HandledEvents] = HANDLED;
    type Config = Config;
    type Clients = ();
    type Report = NoReport;

    type Facts = Facts;

    async fn read(deps: &Deps, key: &KeyInfo) -> Result<Facts, GuardrailError> {
        let client = deps.clients.kms(&key.region);
        let policy_text = kms::key_policy(&client, key.arn.as_str()).await?;
        let rotation = if !rotation_applies(&deps.config, key) {
            RotationRead::NotApplicable
        } else {
            match kms::rotation_status(&client, key.arn.as_str()).await {
                Ok(status) => RotationRead::Read(status),
                Err(e)
                    if key.state != KeyState::Enabled
                        && e.aws_kind() == Some(AwsErrorKind::InvalidState) =>
                {
                    RotationRead::Deferred
                }
                Err(e) => return Err(e),
            }
        };
        Ok(Facts {
            policy_text,
            rotation,
        })
    }

    type Plan = Plan;

    fn decide(config: &Config, key: &KeyInfo, facts: Facts) -> Plan {
        let baseline = match config.baseline_for(&key.account, &key.region, key.arn.partition()) {
            Ok(safe) => safe,
            Err(problems) => return Plan::Blocked(problems),
        };
        let status = match facts.rotation {
            RotationRead::Read(status) => Some(status),
            RotationRead::NotApplicable | RotationRead::Deferred => None,
        };
        let (mut findings, corrections) = plan(
            key,
            &facts.policy_text,
            baseline.policy(),
            status,
            config.rotation,
        );
        let rotation_deferred = facts.rotation == RotationRead::Deferred;
        if rotation_deferred && config.common.mode == Mode::Report {
            findings.push(Finding::new(
                FindingKind::RotationUnknown,
                format!(
                    "rotation was not checked: KMS does not report it while the key is {}",
                    key.state.as_str()
                ),
            ));
        }
        Plan::Correct {
            findings,
            corrections,
            baseline: Box::new(baseline),
            rotation_deferred,
        }
    }

    fn planned_writes(config: &Config, plan: &Plan) -> Option<PlannedWrites> {
        match plan {
            Plan::Correct {
                findings,
                corrections,
                ..
            } if config.common.mode == Mode::Enforce && !corrections.is_empty() => {
                Some(PlannedWrites {
                    findings: findings.iter().map(|f| f.summary.clone()).collect(),
                    operations: corrections.iter().map(|c| c.operation()).collect(),
                })
            }
            _ => None,
        }
    }

    type Detail = ();

    async fn apply(deps: &Deps, key: &KeyInfo, plan: Plan) -> (Audit, ()) {
        (crate::apply::apply(deps, key, plan).await, ())
    }
}

#[cfg(test)]
#[path = "handler_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "decide_tests.rs"]
mod decide_tests;
