//! replica-grant-validator: checks that every managed multi-Region primary's replicas, their
//! grants and key policies, and the S3 replication rules that name them let S3 replication
//! encrypt, and creates the grants that are missing. KMS events and sweeps go through the
//! shared pipeline (`shared::pipeline::handle`); S3 events are the validator's own route.

use lambda_runtime::LambdaEvent;
use serde_json::Value;
use shared::aws::kms::KeyInfo;
use shared::notify::metrics::Measures;
use shared::notify::outcome::{Outcome, SweepReport};
use shared::notify::Cause;
use shared::pipeline::guardrail::{Audited, Invocation};
use shared::pipeline::journal::PlannedWrites;
use shared::pipeline::notices::SweepMemory;
use shared::pipeline::resolve::Resolution;
use shared::pipeline::{handle, Audit, Guardrail, SweepMessages};
use shared::triggers::events::{parse_trigger, KeyLocator, Trigger};
use shared::triggers::gate::{EventGate, HandledEvents};
use shared::GuardrailError;

use crate::audit::{Facts, Plan};
use crate::config::Config;
use crate::deps::{Clients, Deps};
use crate::report::{PrimaryReport, ValidationReport};

pub const FUNCTION: &str = "replica-grant-validator";

/// KMS calls that change what a replica lets S3 replication do or move a key in or out of
/// management (the managed tag, a listed alias), and the S3 call that changes which replica a
/// bucket's replication uses.
pub const HANDLED: &[HandledEvents] = &[
    HandledEvents {
        source: "kms.amazonaws.com",
        names: &[
            "CreateAlias",
            "CreateGrant",
            "DeleteAlias",
            "DisableKey",
            "PutKeyPolicy",
            "ReplicateKey",
            "RetireGrant",
            "RevokeGrant",
            "ScheduleKeyDeletion",
            "TagResource",
            "UntagResource",
            "UpdateAlias",
            "UpdatePrimaryRegion",
        ],
    },
    HandledEvents {
        source: S3,
        names: &["PutBucketReplication"],
    },
];

pub const GATE: EventGate = EventGate {
    function: FUNCTION,
    handled: HANDLED,
};

const S3: &str = "s3.amazonaws.com";

/// The trigger of a sweep's report.
pub const SWEEP_TRIGGER: &str = "ScheduledSweep";

/// The invocation's result: an event not acted on (or a key the function was shut out of),
/// or the validation report.
pub type Response = shared::pipeline::Response<Box<ValidationReport>>;

pub struct ReplicaGrantValidator;

impl Guardrail for ReplicaGrantValidator {
    const NAME: &'static str = FUNCTION;
    const HANDLED: &'static [HandledEvents] = HANDLED;
    /// One message for the whole sweep, keys and buckets together.
    const SWEEP_MESSAGES: SweepMessages = SweepMessages::Digest;

    type Config = Config;
    type Clients = Clients;

    type Report = Box<ValidationReport>;

    fn measure(report: &Box<ValidationReport>) -> Measures {
        report.measures()
    }

    /// PutBucketReplication, once the gate admits it: the bucket's rules against the replicas
    /// they name. Everything else goes down the pipeline (whose gate skips what it must).
    async fn route(
        deps: &Deps,
        trigger: &Trigger,
        _: Invocation<'_>,
    ) -> Option<Result<Response, GuardrailError>> {
        let Trigger::CloudTrail(event) = trigger else {
            return None;
        };
        let detail = &event.detail;
        let self_role = &deps.config.common.self_role_arn;
        if detail.event_source != S3 || Self::gate().admit(detail, self_role).is_err() {
            return None;
        }
        Some(crate::buckets::on_bucket_event(deps, detail).await)
    }

    /// A replica's primary, managed when the primary or the key named is.
    async fn target(
        deps: &Deps,
        resolved: Resolution,
        _: &KeyLocator,
    ) -> Result<Resolution, GuardrailError> {
        crate::primary::target(deps, resolved).await
    }

    type Facts = Facts;

    async fn read(deps: &Deps, key: &KeyInfo, _: Cause<'_>) -> Result<Facts, GuardrailError> {
        Ok(crate::audit::read(deps, key).await)
    }

    type Plan = Plan;

    fn decide(config: &Config, key: &KeyInfo, facts: Facts) -> Plan {
        crate::audit::decide(config, key, facts)
    }

    fn planned_writes(_: &Config, plan: &Plan) -> Option<PlannedWrites> {
        crate::audit::planned_writes(plan)
    }

    type Detail = PrimaryReport;

    async fn apply(deps: &Deps, key: &KeyInfo, plan: Plan) -> (Audit, PrimaryReport) {
        crate::audit::apply(deps, key, plan).await
    }

    /// The validation report of the primary an event led to, with where its message went;
    /// the pipeline's outcome when no key was validated (skipped, shut out, not settled).
    /// `function_handler` stamps the trigger and mode, which the pipeline does not pass here.
    fn respond(outcome: Outcome, details: Vec<PrimaryReport>) -> Response {
        if details.is_empty() {
            return Response::Outcome(outcome);
        }
        let notification = match outcome {
            Outcome::Key(key) => key.notification,
            Outcome::Keys(keys) => keys.into_iter().find_map(|k| k.notification),
            _ => None,
        };
        let mut report = ValidationReport::unstamped();
        report.keys = details;
        report.notification = notification;
        Response::Report(Box::new(report))
    }

    /// The sweep's keys, then every configured bucket, in one message.
    async fn digest(
        deps: &Deps,
        time: Option<&str>,
        sweep: SweepReport,
        audited: Vec<Audited<PrimaryReport>>,
        memory: Option<&SweepMemory<'_>>,
    ) -> Result<Response, GuardrailError> {
        let keys = audited.into_iter().map(|a| a.detail).collect();
        crate::message::sweep_digest(deps, time, sweep, keys, memory).await
    }
}

pub async fn function_handler(
    event: LambdaEvent<Value>,
    deps: &Deps,
) -> Result<Response, GuardrailError> {
    let trigger = match parse_trigger(&event.payload) {
        Ok(Trigger::CloudTrail(event)) => event.detail.event_name,
        _ => SWEEP_TRIGGER.to_string(),
    };
    let mut result = handle::<ReplicaGrantValidator>(event, deps).await;
    if let Ok(Response::Report(report)) = &mut result {
        report.stamp(&trigger, deps.config.common.mode);
        let json = serde_json::to_string(report).unwrap_or_default();
        tracing::info!(report = %json, "validation report");
    }
    result
}

#[cfg(test)]
#[path = "handler_tests.rs"]
mod tests;
