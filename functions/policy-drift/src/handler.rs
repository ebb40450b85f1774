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
use shared::pipeline::{Audit, Guardrail, Invocation, Response};
use shared::triggers::events::Trigger;

use crate::commands::CommandReport;
use shared::policy::safe_policy::SafePolicy;
use shared::triggers::gate::{EventGate, HandledEvents};
use shared::GuardrailError;

use shared::aws::grants::{self, ExistingGrant};
use shared::base::text;
use shared::desired::store::{DesiredStore, Put};
use shared::desired::Version;
use shared::notify::Cause;
use shared::pipeline::journal::now;
use shared::pipeline::notices::utc;
use shared::triggers::events::CloudTrailDetail;
use tracing::info;

use crate::config::{Config, PerKey, RotationBaseline};
use crate::per_key::{self, current_state, Change, PerKeyFacts, PerKeyPlan};
use crate::plan::{plan, Correction, Desired};

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
    /// With `DESIRED_STATE=per-key`: the key's record, grants and the change that led here.
    pub per_key: Option<PerKeyFacts>,
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

/// Replicas share the primary's rotation; asymmetric, HMAC and imported keys cannot rotate.
/// Per key, the record says whether rotation is wanted, so it is always read.
fn rotation_applies(config: &Config, key: &KeyInfo) -> bool {
    (config.rotation.enabled || config.per_key().is_some()) && key.rotatable && !key.is_replica()
}

/// The CloudTrail call as a per-key decision needs it.
fn change_of(detail: &CloudTrailDetail) -> Change {
    Change {
        event_id: detail.event_id().to_string(),
        event_name: detail.event_name.clone(),
        actor: detail.actor(),
        issuer: detail
            .session_issuer_arn()
            .or(detail.user_identity.arn.as_deref())
            .map(str::to_string),
        time: detail.event_time.clone(),
        grant_made: per_key::grant_made(detail),
        grant_ended: per_key::grant_ended(detail),
        policy_written: per_key::policy_written(detail),
    }
}

/// The record, grants and aliases a per-key audit needs.
async fn read_per_key(
    deps: &Deps,
    per_key: &PerKey,
    key: &KeyInfo,
    cause: Cause<'_>,
) -> Result<PerKeyFacts, GuardrailError> {
    let common = &deps.config.common;
    let record = match DesiredStore::open(&deps.clients, common) {
        Some(store) => store.latest(key.arn.as_str()).await?,
        None => None,
    };
    let client = deps.clients.kms_in(&key.account, &key.region);
    let grants = grants::list_grants(&client, key.arn.as_str()).await?;
    let aliases = if per_key.needs_aliases() {
        kms::aliases(&client, &key.key_id).await?
    } else {
        Vec::new()
    };
    let (change, sweep) = match cause {
        Cause::Event(detail) => (Some(change_of(detail)), None),
        Cause::Sweep { id, .. } => (None, Some(id.to_string())),
        Cause::Command { .. } => (None, None),
    };
    Ok(PerKeyFacts {
        record,
        grants,
        aliases,
        change,
        sweep,
        now: utc(now()),
        acting_as: common.self_principal(&key.account),
    })
}

/// The plan against the baseline (every key alike, or a key without a record).
fn decide_by_baseline(config: &Config, key: &KeyInfo, facts: Facts) -> Plan {
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
        status.filter(|_| config.rotation.enabled),
        config.rotation,
    );
    let rotation_deferred = facts.rotation == RotationRead::Deferred && config.rotation.enabled;
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

fn rotation_unknown(key: &KeyInfo) -> Finding {
    Finding::new(
        FindingKind::RotationUnknown,
        format!(
            "rotation was not checked: KMS does not report it while the key is {}",
            key.state.as_str()
        ),
    )
}

/// The plan against the key's own record.
fn decide_per_key(
    config: &Config,
    per_key: &PerKey,
    key: &KeyInfo,
    facts: Facts,
    known: &PerKeyFacts,
) -> Plan {
    let current = current_state(key, &facts.policy_text, facts.rotation, &known.grants_now());
    let decision = match per_key::decide(per_key, key, &facts.policy_text, current, known) {
        PerKeyPlan::Baseline => return decide_by_baseline(config, key, facts),
        PerKeyPlan::Decided(decision) => decision,
    };
    let policy = if decision.corrections.contains(&Correction::PutKeyPolicy) {
        let acting_as = config.common.self_principal(&key.account);
        match SafePolicy::check(&decision.desired.policy, &config.keepers(&acting_as)) {
            Ok(safe) => Some(safe),
            Err(refusals) => {
                return Plan::Blocked(
                    refusals
                        .iter()
                        .map(|r| {
                            format!(
                                "the key policy recorded as version {} cannot be restored: {r}",
                                decision.version
                            )
                        })
                        .collect(),
                )
            }
        }
    } else {
        None
    };
    let wanted = decision.desired.rotation;
    let rotation = RotationBaseline {
        enabled: wanted.is_some_and(|w| w.enabled),
        period_days: wanted.and_then(|w| w.period_days).unwrap_or(365),
    };
    let rotation_deferred = facts.rotation == RotationRead::Deferred && rotation.enabled;
    let mut findings = decision.findings;
    if rotation_deferred && config.common.mode == Mode::Report {
        findings.push(rotation_unknown(key));
    }
    Plan::Correct(Box::new(Correct {
        findings,
        corrections: decision.corrections,
        policy,
        desired: Desired::Record(decision.version),
        rotation,
        rotation_deferred,
        revoke: decision.revoke,
        record: decision.record,
        commanded: known.change.is_none() && known.sweep.is_none(),
    }))
}

impl Guardrail for PolicyDrift {
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
            Some(per_key) => Some(read_per_key(deps, per_key, key, cause).await?),
            None => None,
        };
        Ok(Facts {
            policy_text,
            rotation,
            per_key,
        })
    }

    type Plan = Plan;

    fn decide(config: &Config, key: &KeyInfo, mut facts: Facts) -> Plan {
        match (config.per_key(), facts.per_key.take()) {
            (Some(per_key), Some(known)) => decide_per_key(config, per_key, key, facts, &known),
            _ => decide_by_baseline(config, key, facts),
        }
    }

    async fn commit(deps: &Deps, key: &KeyInfo, plan: Plan) -> Result<Plan, GuardrailError> {
        let Plan::Correct(correct) = &plan else {
            return Ok(plan);
        };
        let Some(version) = &correct.record else {
            return Ok(plan);
        };
        let Some(store) = DesiredStore::open(&deps.clients, &deps.config.common) else {
            return Ok(plan);
        };
        let arn = key.arn.as_str();
        if store.put(arn, version).await? == Put::Recorded {
            info!(key = %key.arn, version = version.number, "desired state recorded");
            return Ok(plan);
        }
        // Taken: our own write whose answer was lost, or another invocation's.
        match store.latest(arn).await? {
            Some(latest) if latest.event_id == version.event_id && latest.state == version.state => Ok(plan),
            _ => Err(GuardrailError::Aws {
                operation: "PutItem",
                key: text::value(arn),
                kind: AwsErrorKind::ServerError,
                code: "DesiredStateChanged".to_string(),
                message: format!("another invocation recorded version {} of this key's desired state first; nothing was written to the key, and the retry decides again from that version", version.number),
            }),
        }
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
