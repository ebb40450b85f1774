//! policy-drift's decisions against each key's own record (`DESIRED_STATE=per-key`), pure: the
//! key's state now, its latest recorded version and the change that led here give the findings,
//! the corrections, and the version to record, if any.

use std::collections::BTreeMap;

use aws_sdk_kms::types::KeyState;
use serde_json::Value;
use shared::aws::grants::{ExistingGrant, GrantConstraints, Grantee};
use shared::aws::kms::KeyInfo;
use shared::base::text;
use shared::desired::{
    aspects_of, canonical_policy, merge, Aspect, DesiredState, KeyStateWanted, Reason,
    RotationWanted, Version, ALL_ASPECTS,
};
use shared::notify::outcome::{Finding, FindingKind};
use shared::policy::model::Policy;
use shared::triggers::events::CloudTrailDetail;

use shared::config::Mode;
use shared::policy::safe_policy::SafePolicy;

use crate::config::{Config, PerKey, RotationBaseline, Unrecorded};
use crate::plan::{
    decide_by_baseline, policy_finding, rotation_unknown, scheduled_deletion, Correct, Correction,
    Desired, Plan, RotationRead,
};

/// The CloudTrail call that led to this audit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub event_id: String,
    pub event_name: String,
    /// Who made the call, for people.
    pub actor: String,
    /// The role behind the session, else the identity's ARN: what `APPROVED_DEPLOYERS` matches.
    pub issuer: Option<String>,
    pub time: Option<String>,
    /// The grant a CreateGrant made: ListGrants may not show it for up to five minutes.
    pub grant_made: Option<ExistingGrant>,
    /// The grant a RevokeGrant or RetireGrant ended, by id.
    pub grant_ended: Option<String>,
    /// The policy a PutKeyPolicy or CreateKey wrote, as CloudTrail recorded it: what an
    /// approved deployer approved, even if someone changed the key again before this read.
    pub policy_written: Option<String>,
}

/// The policy a successful PutKeyPolicy or CreateKey record wrote.
pub fn policy_written(detail: &CloudTrailDetail) -> Option<String> {
    if !matches!(detail.event_name.as_str(), "PutKeyPolicy" | "CreateKey")
        || detail.error_code.is_some()
    {
        return None;
    }
    let policy = detail
        .request_parameters
        .as_ref()?
        .get("policy")?
        .as_str()?;
    canonical_policy(policy).ok()
}

/// The CloudTrail call as a per-key decision needs it.
impl Change {
    pub fn of(detail: &CloudTrailDetail) -> Change {
        Change {
            event_id: detail.event_id().to_string(),
            event_name: detail.event_name.clone(),
            actor: detail.actor(),
            issuer: detail
                .session_issuer_arn()
                .or(detail.user_identity.arn.as_deref())
                .map(str::to_string),
            time: detail.event_time.clone(),
            grant_made: grant_made(detail),
            grant_ended: grant_ended(detail),
            policy_written: policy_written(detail),
        }
    }
}

/// The grant a successful CreateGrant record made, from its request and response.
pub fn grant_made(detail: &CloudTrailDetail) -> Option<ExistingGrant> {
    if detail.event_name != "CreateGrant" || detail.error_code.is_some() {
        return None;
    }
    let request = detail.request_parameters.as_ref()?;
    let grant_id = detail
        .response_elements
        .as_ref()?
        .get("grantId")?
        .as_str()?;
    let field = |name: &str| {
        request
            .get(name)
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let grantee = |name: &str| {
        field(name).map(|p| {
            if p.ends_with(".amazonaws.com") {
                Grantee::Service(p)
            } else {
                Grantee::Principal(p)
            }
        })
    };
    let map = |name: &str| -> BTreeMap<String, String> {
        request
            .get("constraints")
            .and_then(|c| c.get(name))
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default()
    };
    Some(ExistingGrant {
        grant_id: grant_id.to_string(),
        name: field("name").filter(|n| !n.is_empty()),
        grantee: grantee("granteePrincipal"),
        retiring: grantee("retiringPrincipal"),
        operations: request
            .get("operations")
            .and_then(Value::as_array)
            .map(|ops| {
                ops.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default(),
        constraints: GrantConstraints {
            encryption_context_subset: map("encryptionContextSubset"),
            encryption_context_equals: map("encryptionContextEquals"),
            source_arn: request
                .get("constraints")
                .and_then(|c| c.get("sourceArn"))
                .and_then(Value::as_str)
                .map(str::to_string),
        },
        issuing_account: None,
    })
}

/// The grant a successful RevokeGrant or RetireGrant record ended.
pub fn grant_ended(detail: &CloudTrailDetail) -> Option<String> {
    if !matches!(detail.event_name.as_str(), "RevokeGrant" | "RetireGrant")
        || detail.error_code.is_some()
    {
        return None;
    }
    let id = detail
        .request_parameters
        .as_ref()?
        .get("grantId")?
        .as_str()?;
    Some(id.to_string())
}

/// What `read` gathers for a per-key audit beyond the policy and rotation.
#[derive(Debug, Clone, Default)]
pub struct PerKeyFacts {
    pub record: Option<Version>,
    pub grants: Vec<ExistingGrant>,
    pub aliases: Vec<String>,
    pub change: Option<Change>,
    /// The sweep's id when a sweep led here.
    pub sweep: Option<String>,
    /// Now, for a version recorded without an event time.
    pub now: String,
    /// The function's principal in the key's account (its role, or the member role).
    pub acting_as: String,
}

impl PerKeyFacts {
    /// The key's grants as the change left them: ListGrants, plus the grant the change made
    /// and without the one it ended (ListGrants may lag by minutes).
    pub fn grants_now(&self) -> Vec<ExistingGrant> {
        let mut grants = self.grants.clone();
        if let Some(change) = &self.change {
            if let Some(made) = &change.grant_made {
                if !grants.iter().any(|g| g.grant_id == made.grant_id) {
                    grants.push(made.clone());
                }
            }
            if let Some(ended) = &change.grant_ended {
                grants.retain(|g| &g.grant_id != ended);
            }
        }
        grants
    }
}

/// What the key is to become and what that takes.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub findings: Vec<Finding>,
    pub corrections: Vec<Correction>,
    /// What the key is compared with: its version after this audit.
    pub desired: DesiredState,
    pub version: u32,
    /// The version to write before any correction.
    pub record: Option<Version>,
    pub revoke: Vec<ExistingGrant>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum PerKeyPlan {
    /// No record, and `UNRECORDED_KEYS=baseline`: the baseline decides.
    Baseline,
    Decided(Box<Decision>),
}

/// The key's state as a record would hold it.
pub fn current_state(
    key: &KeyInfo,
    policy_text: &str,
    rotation: RotationRead,
    grants: &[ExistingGrant],
) -> Result<DesiredState, String> {
    Ok(DesiredState {
        policy: canonical_policy(policy_text)?,
        rotation: match rotation {
            RotationRead::Read(status) => Some(RotationWanted {
                enabled: status.enabled,
                period_days: status.period_days,
            }),
            RotationRead::NotApplicable | RotationRead::Deferred => None,
        },
        key_state: match key.state {
            KeyState::Disabled => KeyStateWanted::Disabled,
            KeyState::PendingDeletion | KeyState::PendingReplicaDeletion => {
                KeyStateWanted::PendingDeletion
            }
            _ => KeyStateWanted::Enabled,
        },
        grants: grants.to_vec(),
    })
}

/// Why `state` may not be recorded for `key`: the floor, and a deletion no deployer asked for.
fn floor_problems(
    per_key: &PerKey,
    key: &KeyInfo,
    facts: &PerKeyFacts,
    state: &DesiredState,
) -> Vec<String> {
    let policy = match Policy::parse(&state.policy) {
        Ok(policy) => policy,
        Err(e) => return vec![format!("the key policy cannot be evaluated ({e})")],
    };
    let keepers = per_key.keepers_of(&key.key_id, &facts.aliases);
    per_key
        .floor
        .violations(&policy, &key.account, &facts.acting_as, &keepers)
}

/// Who recorded a version, when, and from which event or sweep. An enrolment is the
/// guardrail's own act, whoever's call led to it.
fn who(facts: &PerKeyFacts, enrolment: bool) -> (String, String, String) {
    match (&facts.change, &facts.sweep) {
        (Some(change), _) if enrolment => (
            format!(
                "kms-guardrails enrolment, after {} by {}",
                change.event_name, change.actor
            ),
            change.time.clone().unwrap_or_else(|| facts.now.clone()),
            change.event_id.clone(),
        ),
        (Some(change), _) => (
            change.actor.clone(),
            change.time.clone().unwrap_or_else(|| facts.now.clone()),
            change.event_id.clone(),
        ),
        (None, Some(sweep)) => (
            "kms-guardrails sweep".to_string(),
            facts.now.clone(),
            sweep.clone(),
        ),
        (None, None) => (
            "kms-guardrails".to_string(),
            facts.now.clone(),
            String::new(),
        ),
    }
}

/// Pure: the decision for `key` whose state now is `current` (`Err`: its policy is not JSON).
pub fn decide(
    per_key: &PerKey,
    key: &KeyInfo,
    policy_text: &str,
    current: Result<DesiredState, String>,
    facts: &PerKeyFacts,
) -> PerKeyPlan {
    let (actor, at, event_id) = who(facts, facts.record.is_none());
    let Some(recorded) = &facts.record else {
        if per_key.unrecorded == Unrecorded::Baseline {
            return PerKeyPlan::Baseline;
        }
        return PerKeyPlan::Decided(Box::new(enrol(
            per_key,
            key,
            current,
            facts,
            (actor, at, event_id),
        )));
    };
    let mut findings = Vec::new();
    let mut desired = recorded.state.clone();
    let mut version = recorded.number;
    let mut record = None;
    let approved = facts.change.as_ref().filter(|c| {
        c.issuer
            .as_deref()
            .is_some_and(|issuer| per_key.approves(issuer))
    });
    if let (Some(change), Ok(current)) = (approved, &current) {
        let mut approved_state = current.clone();
        if let Some(policy) = &change.policy_written {
            approved_state.policy = policy.clone();
        }
        let merged = merge(
            &recorded.state,
            &approved_state,
            aspects_of(&change.event_name),
        );
        if merged != recorded.state {
            let problems = floor_problems(per_key, key, facts, &merged);
            if problems.is_empty() {
                version = recorded.number + 1;
                findings.push(Finding::new(
                    FindingKind::DesiredStateRecorded,
                    format!(
                        "{} by {}, an approved deployer, is recorded as version {version} of the key's desired state (was version {})",
                        change.event_name,
                        text::value(&actor),
                        recorded.number
                    ),
                ));
                record = Some(Version {
                    number: version,
                    state: merged.clone(),
                    approved_by: actor.clone(),
                    approved_at: at.clone(),
                    event_id: event_id.clone(),
                    reason: Reason::Approved,
                });
                desired = merged;
            } else {
                findings.push(Finding::new(
                    FindingKind::FloorViolation,
                    format!(
                        "{} by {}, an approved deployer, breaks the floor every key keeps, so it was not recorded and version {} stays the key's desired state: {}",
                        change.event_name,
                        text::value(&actor),
                        recorded.number,
                        problems.join("; ")
                    ),
                ));
            }
        }
    }
    // An event is judged on what its call changed: another aspect's change is judged by its own
    // event (which may be an approved deployer's, still on its way) or by the sweep.
    let scope = facts
        .change
        .as_ref()
        .map(|c| aspects_of(&c.event_name))
        .filter(|aspects| !aspects.is_empty())
        .unwrap_or(ALL_ASPECTS);
    let (drift, corrections, revoke) = compare(
        per_key,
        key,
        policy_text,
        &current,
        &desired,
        version,
        scope,
    );
    findings.extend(drift);
    PerKeyPlan::Decided(Box::new(Decision {
        findings,
        corrections,
        desired,
        version,
        record,
        revoke,
    }))
}

fn enrol(
    per_key: &PerKey,
    key: &KeyInfo,
    current: Result<DesiredState, String>,
    facts: &PerKeyFacts,
    (actor, at, event_id): (String, String, String),
) -> Decision {
    let refused = |problems: String, state: DesiredState| {
        Decision {
        findings: vec![Finding::new(
            FindingKind::FloorViolation,
            format!("the key has no recorded desired state and was not enrolled, because its current state breaks the floor every key keeps: {problems}. Fix the key (or have the deployer fix it); the next event or sweep enrols it"),
        )],
        corrections: Vec::new(),
        desired: state,
        version: 0,
        record: None,
        revoke: Vec::new(),
    }
    };
    let state = match current {
        Ok(state) => state,
        Err(e) => {
            let empty = DesiredState {
                policy: String::new(),
                rotation: None,
                key_state: KeyStateWanted::Enabled,
                grants: Vec::new(),
            };
            return refused(e, empty);
        }
    };
    let mut problems = floor_problems(per_key, key, facts, &state);
    if state.key_state == KeyStateWanted::PendingDeletion {
        problems.push("the key is pending deletion, and a deletion is recorded only when an approved deployer schedules it".to_string());
    }
    if !problems.is_empty() {
        return refused(problems.join("; "), state);
    }
    let finding = Finding::new(
        FindingKind::DesiredStateRecorded,
        format!(
            "the key had no recorded desired state; its current state (policy, rotation, {} state, {} grant(s)) passes the floor and is recorded as version 1. From now on a change by anyone but an approved deployer is drift",
            state.key_state.as_str(),
            state.grants.len()
        ),
    );
    Decision {
        findings: vec![finding],
        corrections: Vec::new(),
        record: Some(Version {
            number: 1,
            state: state.clone(),
            approved_by: actor,
            approved_at: at,
            event_id,
            reason: Reason::Enrolled,
        }),
        desired: state,
        version: 1,
        revoke: Vec::new(),
    }
}

/// How the key departs from `desired` (version `version`), and the writes that restore it.
fn compare(
    per_key: &PerKey,
    key: &KeyInfo,
    policy_text: &str,
    current: &Result<DesiredState, String>,
    desired: &DesiredState,
    version: u32,
    scope: &[Aspect],
) -> (Vec<Finding>, Vec<Correction>, Vec<ExistingGrant>) {
    let (mut findings, mut corrections, mut revoke) = (Vec::new(), Vec::new(), Vec::new());
    let now = current.as_ref().ok();
    let state_now = now
        .map(|c| c.key_state)
        .filter(|_| scope.contains(&Aspect::KeyState));
    match (desired.key_state, state_now) {
        (
            KeyStateWanted::Enabled | KeyStateWanted::Disabled,
            Some(KeyStateWanted::PendingDeletion),
        ) => {
            findings.push(Finding::new(
                FindingKind::PendingDeletion,
                format!(
                    "{}, and no approved deployer scheduled it",
                    scheduled_deletion(key)
                ),
            ));
            corrections.push(Correction::CancelKeyDeletion);
            if desired.key_state == KeyStateWanted::Enabled {
                // CancelKeyDeletion leaves the key Disabled.
                corrections.push(Correction::EnableKey);
            }
        }
        (KeyStateWanted::Enabled, Some(KeyStateWanted::Disabled)) => {
            findings.push(Finding::new(
                FindingKind::KeyDisabled,
                "the key is disabled, and its record says enabled",
            ));
            corrections.push(Correction::EnableKey);
        }
        _ => {}
    }
    let recorded_policy = Policy::parse(&desired.policy);
    match &recorded_policy {
        _ if !scope.contains(&Aspect::Policy) => {}
        Ok(policy) => {
            if let Some(finding) = policy_finding(policy_text, policy, &Desired::Record(version)) {
                findings.push(finding);
                corrections.push(Correction::PutKeyPolicy);
            }
        }
        Err(e) => findings.push(Finding::new(
            FindingKind::PolicyUnreadable,
            format!("the key policy recorded as version {version} is not a policy ({e}); roll the key back to a version that is"),
        )),
    }
    let rotation_now = now
        .and_then(|c| c.rotation)
        .filter(|_| scope.contains(&Aspect::Rotation));
    if let (Some(wanted), Some(have)) = (desired.rotation, rotation_now) {
        let period = wanted.period_days.unwrap_or(365);
        if wanted.enabled && !have.enabled {
            findings.push(Finding::new(
                FindingKind::RotationDisabled,
                format!("automatic rotation is disabled (recorded: every {period} days)"),
            ));
            corrections.push(Correction::EnableKeyRotation);
        } else if let (true, Some(want), Some(got)) =
            (wanted.enabled, wanted.period_days, have.period_days)
        {
            if want != got {
                findings.push(Finding::new(
                    FindingKind::RotationPeriod,
                    format!("rotation period is {got} days (recorded: {want} days)"),
                ));
                corrections.push(Correction::EnableKeyRotation);
            }
        }
    }
    if let Some(now) = now.filter(|_| scope.contains(&Aspect::Grants)) {
        for grant in &now.grants {
            if !desired.grants.iter().any(|g| g.grant_id == grant.grant_id) {
                let what = if per_key.revoke_unexpected_grants {
                    "it is revoked (REVOKE_UNEXPECTED_GRANTS=true)"
                } else {
                    "revoke it with aws kms revoke-grant, or set REVOKE_UNEXPECTED_GRANTS=true to have it revoked"
                };
                findings.push(Finding::new(
                    FindingKind::GrantUnexpected,
                    format!("{} is not in the key's recorded desired state (version {version}) and was not made by an approved deployer; {what}", grant.summary()),
                ));
                if per_key.revoke_unexpected_grants {
                    revoke.push(grant.clone());
                }
            }
        }
        for grant in &desired.grants {
            if !now.grants.iter().any(|g| g.grant_id == grant.grant_id) {
                findings.push(Finding::new(
                    FindingKind::GrantMissing,
                    format!("{} is recorded in version {version} and no longer on the key: grants cannot be restored as they were (a new grant gets a new id and token), so have its owner create it again; an approved deployer's change then records it", grant.summary()),
                ));
            }
        }
    }
    corrections.sort();
    (findings, corrections, revoke)
}

/// The plan against the key's own record.
pub fn plan(
    config: &Config,
    per_key: &PerKey,
    key: &KeyInfo,
    policy_text: &str,
    rotation_read: RotationRead,
    known: &PerKeyFacts,
) -> Plan {
    let current = current_state(key, policy_text, rotation_read, &known.grants_now());
    let decision = match decide(per_key, key, policy_text, current, known) {
        PerKeyPlan::Baseline => return decide_by_baseline(config, key, policy_text, rotation_read),
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
    let rotation_deferred = rotation_read == RotationRead::Deferred && rotation.enabled;
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

#[cfg(test)]
#[path = "per_key_tests.rs"]
mod tests;
