//! policy-drift's operator commands, sent with `aws lambda invoke`: a key's desired-state
//! history, and a rollback that records an earlier version as the latest and restores the key
//! to it through the same checks as any write (the floor, KMS's rules, the lockout check).

use serde::Serialize;
use serde_json::Value;
use shared::aws::kms;
use shared::base::error::{AwsErrorKind, GuardrailError};
use shared::base::text;
use shared::config::ConfigError;
use shared::desired::store::{DesiredStore, Put};
use shared::desired::{Reason, Version};
use shared::notify::outcome::KeyOutcome;
use shared::notify::Cause;
use shared::pipeline::journal::now;
use shared::pipeline::notices::utc;
use shared::pipeline::resolve::{resolve, Resolution};
use shared::pipeline::{audit_one, Response};
use shared::policy::model::Policy;
use shared::policy::safe_policy::SafePolicy;
use shared::triggers::events::{KeyLocator, OperatorCommand};

use crate::config::PerKey;
use crate::handler::{Deps, PolicyDrift};

/// What a command returns.
#[derive(Debug, Serialize)]
#[serde(rename_all = "snake_case", tag = "command")]
pub enum CommandReport {
    History {
        key: String,
        versions: Vec<VersionView>,
    },
    Rollback {
        key: String,
        /// The version now latest, holding `from`'s state.
        recorded_version: u32,
        from: u32,
        /// The key restored to it, as the message says.
        outcome: KeyOutcome,
    },
}

/// One version for people and scripts.
#[derive(Debug, Serialize)]
pub struct VersionView {
    pub version: u32,
    pub reason: String,
    pub approved_by: String,
    pub approved_at: String,
    pub event_id: String,
    pub key_state: &'static str,
    pub rotation: Option<String>,
    pub grants: usize,
    /// The recorded key policy, as JSON.
    pub policy: Value,
}

impl VersionView {
    fn of(version: &Version) -> VersionView {
        VersionView {
            version: version.number,
            reason: version.reason.describe(),
            approved_by: version.approved_by.clone(),
            approved_at: version.approved_at.clone(),
            event_id: version.event_id.clone(),
            key_state: version.state.key_state.as_str(),
            rotation: version
                .state
                .rotation
                .map(|r| match (r.enabled, r.period_days) {
                    (false, _) => "disabled".to_string(),
                    (true, Some(days)) => format!("every {days} days"),
                    (true, None) => "enabled".to_string(),
                }),
            grants: version.state.grants.len(),
            policy: serde_json::from_str(&version.state.policy).unwrap_or(Value::Null),
        }
    }
}

fn refused(problem: String) -> GuardrailError {
    GuardrailError::Configuration(ConfigError {
        problems: vec![problem],
    })
}

/// Runs `command`: the key must be managed and per-key desired state configured.
pub async fn run(
    deps: &Deps,
    command: &OperatorCommand,
) -> Result<Response<CommandReport>, GuardrailError> {
    let common = &deps.config.common;
    let Some(per_key) = deps.config.per_key() else {
        return Err(refused(
            "operator commands work on per-key desired state, and DESIRED_STATE is not per-key"
                .to_string(),
        ));
    };
    let Some(store) = DesiredStore::open(&deps.clients, common) else {
        return Err(refused("STATE_TABLE is not set".to_string()));
    };
    let locator =
        KeyLocator::parse(command.key(), &common.region).map_err(GuardrailError::InvalidEvent)?;
    let account = locator.account().unwrap_or(&common.account_id);
    deps.clients.reach(account).await?;
    let client = deps.clients.kms_in(account, &locator.region);
    let key = kms::describe_key(&client, &locator.identifier).await?;
    let history = store.history(key.arn.as_str()).await?;
    match command {
        OperatorCommand::History { .. } => Ok(Response::Report(CommandReport::History {
            key: key.arn.to_string(),
            versions: history.iter().map(VersionView::of).collect(),
        })),
        OperatorCommand::Rollback {
            version,
            requested_by,
            ..
        } => {
            let by = requested_by
                .as_deref()
                .unwrap_or("an operator (no requested_by given)");
            rollback(deps, per_key, &store, &key, &history, *version, by).await
        }
    }
}

async fn rollback(
    deps: &Deps,
    per_key: &PerKey,
    store: &DesiredStore<'_>,
    key: &kms::KeyInfo,
    history: &[Version],
    wanted: u32,
    by: &str,
) -> Result<Response<CommandReport>, GuardrailError> {
    let locator = KeyLocator {
        region: key.region.clone(),
        identifier: key.arn.to_string(),
    };
    // Only a managed key is ever written: check before anything is recorded.
    match resolve(&deps.clients, &deps.config.common, &locator, None).await? {
        Resolution::Managed(_) => {}
        Resolution::Unmanaged { reason, .. } | Resolution::NotOurs(reason) => {
            return Err(refused(format!("{} is not rolled back: {reason}", key.arn)));
        }
        Resolution::ShutOut { error, .. } => return Err(error),
    }
    let Some(latest) = history.last() else {
        return Err(refused(format!("{} has no recorded desired state to roll back: it is enrolled by its next event or sweep", key.arn)));
    };
    let Some(target) = history.iter().find(|v| v.number == wanted) else {
        return Err(refused(format!(
            "{} has no version {wanted}; its versions are 1 to {}",
            key.arn, latest.number
        )));
    };
    let policy = Policy::parse(&target.state.policy).map_err(|e| {
        refused(format!(
            "version {wanted}'s key policy is not a policy ({e})"
        ))
    })?;
    let aliases = if per_key.needs_aliases() {
        kms::aliases(&deps.clients.kms_in(&key.account, &key.region), &key.key_id).await?
    } else {
        Vec::new()
    };
    let acting_as = deps.config.common.self_principal(&key.account);
    let mut problems = per_key.floor.violations(
        &policy,
        &key.account,
        &acting_as,
        &per_key.keepers_of(&key.key_id, &aliases),
    );
    if let Err(refusals) = SafePolicy::check(&target.state.policy, &deps.config.keepers(&acting_as))
    {
        problems.extend(refusals.iter().map(|r| r.to_string()));
    }
    if !problems.is_empty() {
        return Err(refused(format!(
            "version {wanted} of {} breaks the floor or could not be written, so nothing was recorded or written: {}",
            key.arn,
            problems.join("; ")
        )));
    }
    let id = format!("rollback-{}-{:x}", now(), std::process::id());
    let version = Version {
        number: latest.number + 1,
        state: target.state.clone(),
        approved_by: format!("rollback command requested by {}", text::one_line(by, 120)),
        approved_at: utc(now()),
        event_id: id.clone(),
        reason: Reason::Rollback { from: wanted },
    };
    match store.put(key.arn.as_str(), &version).await? {
        Put::Recorded => {}
        Put::Taken => {
            return Err(GuardrailError::Aws {
                operation: "PutItem",
                key: text::value(key.arn.as_str()),
                kind: AwsErrorKind::ServerError,
                code: "DesiredStateChanged".to_string(),
                message: format!("another change recorded version {} first; read the history again and repeat the rollback if it still applies", version.number),
            });
        }
        Put::NotRecorded => {
            return Err(refused(format!(
                "the state table is read-only here, so version {wanted} was not recorded again and nothing was written to {}",
                key.arn
            )));
        }
    }
    let cause = Cause::Command {
        id: &id,
        name: "rollback",
        requested_by: by,
    };
    let outcome = audit_one::<PolicyDrift>(deps, &locator, cause).await?;
    Ok(Response::Report(CommandReport::Rollback {
        key: key.arn.to_string(),
        recorded_version: version.number,
        from: wanted,
        outcome,
    }))
}
