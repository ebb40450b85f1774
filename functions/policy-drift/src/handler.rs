//! policy-drift: restores the baseline key policy, rotation and key state of managed keys.
//! Its decisions, as `read` -> `decide` -> `apply`; the pipeline does the rest.

use aws_sdk_kms::types::KeyState;
use lambda_runtime::LambdaEvent;
use serde_json::Value;
use shared::aws::kms::{self, KeyInfo};
use shared::base::error::AwsErrorKind;
use shared::config::Mode;
use shared::notify::outcome::Outcome;
use shared::notify::Cause;
use shared::pipeline::journal::PlannedWrites;
use shared::pipeline::{Audit, Guardrail, Invocation, Response};
use shared::triggers::events::Trigger;
use shared::triggers::gate::{EventGate, HandledEvents};
use shared::GuardrailError;

use crate::commands::CommandReport;
use crate::config::Config;
use crate::per_key::{self, PerKeyFacts};
use crate::plan::{decide_by_baseline, rotation_applies, Correct, Plan, RotationRead};

pub const FUNCTION: &str = "policy-drift";

/// CloudTrail events that can move a key away from its baseline or in or out of management.
pub const HANDLED: &[HandledEvents] = &[HandledEvents {
    source: "kms.amazonaws.com",
    names: &[
        "PutKeyPolicy",
        "DisableKeyRotation",
        "EnableKeyRotation",
        "ScheduleKeyDeletion",
        "CancelKeyDeletion",
        "DisableKey",
        "EnableKey",
        "CreateKey",
        "TagResource",
        "UntagResource",
        "CreateAlias",
        "DeleteAlias",
        "UpdateAlias",
        // Grants and re-enabling change a key's desired state when an approved deployer makes
        // them (DESIRED_STATE=per-key); otherwise they are checked like any change.
        "CreateGrant",
        "RevokeGrant",
        "RetireGrant",
    ],
}];

pub const GATE: EventGate = EventGate {
    function: FUNCTION,
    handled: HANDLED,
};

pub type Deps = shared::pipeline::Deps<Config>;

pub struct PolicyDrift;

pub struct Facts {
    pub policy_text: String,
    pub rotation: RotationRead,
    /// With `DESIRED_STATE=per-key`: the key's record, grants and the change that led here.
    pub per_key: Option<PerKeyFacts>,
}

/// The whole invocation: events and sweeps give an `Outcome`, operator commands their report.
pub async fn invoke(
    event: LambdaEvent<Value>,
    deps: &Deps,
) -> Result<Response<CommandReport>, GuardrailError> {
    shared::pipeline::handle::<PolicyDrift>(event, deps).await
}

/// An event or sweep: its outcome. An operator command is refused here (use [`invoke`]).
pub async fn function_handler(
    event: LambdaEvent<Value>,
    deps: &Deps,
) -> Result<Outcome, GuardrailError> {
    match invoke(event, deps).await? {
        Response::Outcome(outcome) => Ok(outcome),
        Response::Report(_) => Err(GuardrailError::InvalidEvent(
            "an operator command returns a report, not an outcome".to_string(),
        )),
    }
}

/// Grant calls change nothing policy-drift compares when every key has the one baseline.
const GRANT_EVENTS: &[&str] = &["CreateGrant", "RevokeGrant", "RetireGrant"];

impl Guardrail for PolicyDrift {
    /// Organizations' sweeps run on the stack's sweep queue (template: FanOutSweeps).
    const FANS_OUT: bool = true;
    const NAME: &'static str = FUNCTION;
    const HANDLED: &'static [HandledEvents] = HANDLED;
    type Config = Config;
    type Clients = ();
    type Report = CommandReport;

    async fn route(
        deps: &Deps,
        trigger: &Trigger,
        _: Invocation<'_>,
    ) -> Option<Result<Response<CommandReport>, GuardrailError>> {
        match trigger {
            Trigger::Command(command) => Some(crate::commands::run(deps, command).await),
            Trigger::CloudTrail(event)
                if deps.config.per_key().is_none()
                    && GRANT_EVENTS.contains(&event.detail.event_name.as_str()) =>
            {
                let reason = "grants are compared only with DESIRED_STATE=per-key".to_string();
                let d = &event.detail;
                Some(Ok(Response::Outcome(Outcome::skipped(
                    d.event_id(),
                    &d.event_name,
                    reason,
                ))))
            }
            _ => None,
        }
    }

    type Facts = Facts;

    async fn read(deps: &Deps, key: &KeyInfo, cause: Cause<'_>) -> Result<Facts, GuardrailError> {
        let client = deps.clients.kms_in(&key.account, &key.region);
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
        let per_key = match deps.config.per_key() {
            Some(per_key) => Some(crate::record::read_facts(deps, per_key, key, cause).await?),
            None => None,
        };
        Ok(Facts {
            policy_text,
            rotation,
            per_key,
        })
    }

    type Plan = Plan;

    fn decide(config: &Config, key: &KeyInfo, facts: Facts) -> Plan {
        match (config.per_key(), &facts.per_key) {
            (Some(per_key), Some(known)) => per_key::plan(
                config,
                per_key,
                key,
                &facts.policy_text,
                facts.rotation,
                known,
            ),
            _ => decide_by_baseline(config, key, &facts.policy_text, facts.rotation),
        }
    }

    async fn commit(deps: &Deps, key: &KeyInfo, plan: Plan) -> Result<Plan, GuardrailError> {
        crate::record::commit(deps, key, plan).await
    }

    fn planned_writes(config: &Config, plan: &Plan) -> Option<PlannedWrites> {
        let Plan::Correct(correct) = plan else {
            return None;
        };
        let Correct {
            findings,
            corrections,
            revoke,
            ..
        } = correct.as_ref();
        let mut operations: Vec<&'static str> = corrections.iter().map(|c| c.operation()).collect();
        operations.extend(revoke.iter().map(|_| "RevokeGrant"));
        (config.common.mode == Mode::Enforce && !operations.is_empty()).then(|| PlannedWrites {
            findings: findings.iter().map(|f| f.summary.clone()).collect(),
            operations,
        })
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
