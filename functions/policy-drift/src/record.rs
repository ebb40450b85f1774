//! policy-drift's per-key record, at the edges: what a per-key audit reads (the key's latest
//! version, its grants, the change that led here), and the new version written before any
//! write to the key.

use shared::aws::grants;
use shared::aws::kms::{self, KeyInfo};
use shared::base::error::AwsErrorKind;
use shared::base::text;
use shared::desired::store::{DesiredStore, Put};
use shared::notify::Cause;
use shared::pipeline::journal::now;
use shared::pipeline::notices::utc;
use shared::GuardrailError;
use tracing::info;

use crate::config::PerKey;
use crate::handler::Deps;
use crate::per_key::{Change, PerKeyFacts};
use crate::plan::Plan;

/// The record, grants and aliases a per-key audit needs.
pub async fn read_facts(
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
        Cause::Event(detail) => (Some(Change::of(detail)), None),
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

/// Records the plan's new version before any write. A number another invocation took first
/// (or our own write whose answer was lost) is read back: ours is done; another's fails
/// retryably, and the retry decides again from it.
pub async fn commit(deps: &Deps, key: &KeyInfo, plan: Plan) -> Result<Plan, GuardrailError> {
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
    match store.put(arn, version).await? {
        Put::Recorded => {
            info!(key = %key.arn, version = version.number, "desired state recorded");
            return Ok(plan);
        }
        // An audit: the plan is reported as the deployed function would announce it.
        Put::NotRecorded => return Ok(plan),
        Put::Taken => {}
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
