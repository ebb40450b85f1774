//! root-access-revoker: takes the account root out of managed key policies when root access is
//! configured off, and only when every lockout check passes. The pipeline's one door runs it:
//! the revoker's own routes (ROOT_ACCESS on, IAM events about the admin roles) come first, then
//! each key is `read` (the key policy, the admin roles in IAM), `decide`d (the lockout checks,
//! pure) and `apply`d (the Access Analyzer proof, then the write).

use lambda_runtime::LambdaEvent;
use serde::Serialize;
use serde_json::Value;
use shared::aws::kms::{self, KeyInfo};
use shared::config::Mode;
use shared::notify::metrics::Measures;
use shared::notify::outcome::{Delivery, Outcome};
use shared::notify::Cause;
use shared::pipeline::journal::PlannedWrites;
use shared::pipeline::{Audit, Guardrail, Invocation, Response};
use shared::triggers::events::Trigger;
use shared::triggers::gate::{EventGate, HandledEvents};
use shared::GuardrailError;

use crate::config::Config;
use crate::plan::{Facts, Plan};
use crate::report::root_findings;

pub use crate::deps::{Clients, Deps};

/// The function's name in messages, logs and skip reasons.
pub const NAME: &str = "root-access-revoker";

/// KMS calls that can give a key the root (a new replica starts with the default, root-only
/// policy), and IAM calls that can take an admin role's control away.
pub const HANDLED: &[HandledEvents] = &[
    HandledEvents {
        source: "kms.amazonaws.com",
        names: &["CreateKey", "PutKeyPolicy", "ReplicateKey"],
    },
    HandledEvents {
        source: "iam.amazonaws.com",
        names: crate::watch::ROLE_EVENTS,
    },
];

/// The one list of handled events, as the gate and the template test see it.
pub const GATE: EventGate = EventGate {
    function: NAME,
    handled: HANDLED,
};

const ROOT_ACCESS_ON: &str = "ROOT_ACCESS is on: the account root is meant to stay in key policies (the setting policy-drift restores too), so nothing is revoked";

pub struct RootAccessRevoker;

impl Guardrail for RootAccessRevoker {
    const NAME: &'static str = NAME;
    const HANDLED: &'static [HandledEvents] = HANDLED;

    type Config = Config;
    type Clients = Clients;

    type Report = RevokerReport;

    fn measure(report: &RevokerReport) -> Measures {
        let RevokerReport::AdminAtRisk { keys, .. } = report;
        Measures {
            findings: keys.len() as u64,
            ..Measures::default()
        }
    }

    /// With ROOT_ACCESS on every trigger is a skip; IAM events go to the admin-role watch.
    async fn route(
        deps: &Deps,
        trigger: &Trigger,
        invocation: Invocation<'_>,
    ) -> Option<Result<Response<RevokerReport>, GuardrailError>> {
        if deps.config.root_access {
            let (event_id, event_name) = match trigger {
                Trigger::CloudTrail(ev) => {
                    (ev.envelope_id.as_deref(), ev.detail.event_name.clone())
                }
                Trigger::Scheduled { id, .. } => (id.as_deref(), trigger.describe()),
                Trigger::Alarm(_) | Trigger::Command(_) | Trigger::SweepWork(_) => {
                    (None, trigger.describe())
                }
            };
            let event_id = event_id.unwrap_or("unknown");
            let outcome = Outcome::skipped(event_id, &event_name, ROOT_ACCESS_ON.into());
            return Some(Ok(Response::Outcome(outcome)));
        }
        match trigger {
            Trigger::CloudTrail(ev) if ev.detail.event_source == "iam.amazonaws.com" => {
                let watched = crate::watch::on_role_event(&ev.detail, deps, invocation.deadline);
                Some(watched.await)
            }
            _ => None,
        }
    }

    type Facts = Facts;

    /// The key policy as KMS holds it, then the admin roles as IAM knows them.
    async fn read(deps: &Deps, key: &KeyInfo, _: Cause<'_>) -> Result<Facts, GuardrailError> {
        let client = deps.clients.kms_in(&key.account, &key.region);
        let policy = kms::key_policy(&client, key.arn.as_str()).await?;
        let admins = crate::deps::admin_roles(deps).await?;
        Ok(Facts { policy, admins })
    }

    type Plan = Plan;

    fn decide(config: &Config, key: &KeyInfo, facts: Facts) -> Plan {
        crate::plan::plan(config, key, facts)
    }

    fn planned_writes(config: &Config, plan: &Plan) -> Option<PlannedWrites> {
        match plan {
            Plan::Revoke { revocation, .. } if config.common.mode == Mode::Enforce => {
                Some(PlannedWrites {
                    findings: root_findings(revocation)
                        .into_iter()
                        .map(|f| f.summary)
                        .collect(),
                    operations: vec!["PutKeyPolicy"],
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

/// The Lambda entry point, as the binary and the tests call it.
pub async fn function_handler(
    event: LambdaEvent<Value>,
    deps: &Deps,
) -> Result<Response<RevokerReport>, GuardrailError> {
    shared::pipeline::handle::<RootAccessRevoker>(event, deps).await
}

/// What only this function reports: the admin-role watch's announcement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum RevokerReport {
    /// An admin role that alone administers keys without root can no longer do so.
    AdminAtRisk {
        role: String,
        danger: String,
        keys: Vec<String>,
        notification: Delivery,
    },
}

#[cfg(test)]
#[path = "tests/handler.rs"]
mod tests;
