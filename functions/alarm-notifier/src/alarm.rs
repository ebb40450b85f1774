//! One alarm state change: whether it is announced (pure, before any call), then read (the
//! de-duplication claim, the key's context) -> decide (pure: the message) -> apply (deliver).

use shared::base::text;
use shared::notify::outcome::Outcome;
use shared::notify::{deliver, Notification};
use shared::pipeline::Response;
use shared::triggers::alarm::AlarmChange;
use shared::GuardrailError;

use crate::dedup::{self, Claim};
use crate::handler::{AlarmReport, Deps};
use crate::message::{render, transition, KeyContext, Rendered, Transition};

/// Whether a transition is announced, or why not: ALARM and OK after ALARM always are,
/// INSUFFICIENT_DATA when configured, OK without a previous ALARM never.
pub fn announced(
    change: &AlarmChange,
    announce_insufficient_data: bool,
) -> Result<Transition, String> {
    match transition(change) {
        Transition::InsufficientData if !announce_insufficient_data => {
            Err("INSUFFICIENT_DATA is not announced (ANNOUNCE_INSUFFICIENT_DATA=false)".into())
        }
        Transition::Ok => Err("OK without a previous ALARM: nothing was wrong".into()),
        other => Ok(other),
    }
}

/// What is sent for one announced transition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlarmPlan {
    pub transition: Transition,
    /// The key the message is about, when its context could be read.
    pub key_id: Option<String>,
    pub rendered: Rendered,
}

impl AlarmPlan {
    /// The one SNS publish: the variants as `MessageStructure=json`, with the attributes.
    pub fn notification(&self) -> Notification {
        let r = &self.rendered;
        r.attributes.iter().fold(
            Notification::structured(&r.subject, r.sns_message()),
            |n, (name, value)| n.attribute(name, value.clone()),
        )
    }
}

/// The message for an announced transition: a pure function of the change, the key's context
/// (or why it is missing) and the environment label.
pub fn decide(
    change: &AlarmChange,
    transition: Transition,
    key: Result<KeyContext, String>,
    environment: Option<&str>,
) -> AlarmPlan {
    let (key, problem) = match key {
        Ok(key) => (Some(key), None),
        Err(problem) => (None, Some(problem)),
    };
    AlarmPlan {
        transition,
        rendered: render(change, key.as_ref(), environment, problem.as_deref()),
        key_id: key.map(|k| k.key_id),
    }
}

pub async fn on_alarm(
    deps: &Deps,
    change: &AlarmChange,
) -> Result<Response<AlarmReport>, GuardrailError> {
    let config = &deps.config;
    let skipped = |reason: String| {
        let id = change.event_id.as_deref().unwrap_or("unknown");
        Ok(Response::Outcome(Outcome::skipped(
            id,
            &change.alarm_name,
            reason,
        )))
    };
    let transition = match announced(change, config.announce_insufficient_data) {
        Ok(transition) => transition,
        Err(reason) => return skipped(reason),
    };
    let claimed = match claim(deps, change).await? {
        Ok(claimed) => claimed,
        Err(reason) => return skipped(reason),
    };
    let key = key_context(deps, change).await;
    let plan = decide(
        change,
        transition,
        key,
        config.common.environment.as_deref(),
    );
    let result = apply(deps, change, plan).await;
    // Recorded as announced only once delivered; a failed delivery gives the claim up, so
    // Lambda's retry announces it.
    if let (Some(table), true) = (&config.dedup_table, claimed) {
        let (client, id) = (crate::handler::dynamodb(deps), change.transition_id());
        match &result {
            Ok(_) => dedup::mark_announced(&client, table, &id).await,
            Err(_) => dedup::release(&client, table, &id).await,
        }
    }
    result
}

/// Claims the transition in the de-duplication table: `Ok(true)` when this delivery announces
/// it, `Ok(false)` when the table cannot say (announced anyway, not recorded), `Err(reason)` to
/// skip a redelivery of one announced already. Another delivery announcing it now fails this
/// invocation, so it is retried rather than called done before the message went out.
async fn claim(deps: &Deps, change: &AlarmChange) -> Result<Result<bool, String>, GuardrailError> {
    let Some(table) = deps.config.dedup_table.as_deref() else {
        return Ok(Ok(false));
    };
    let transition_id = change.transition_id();
    Ok(
        match dedup::claim(&crate::handler::dynamodb(deps), table, &transition_id).await {
            Claim::Claimed => Ok(true),
            Claim::AlreadyAnnounced => Err(format!(
                "transition {} was announced already (a redelivery)",
                text::value(&transition_id)
            )),
            Claim::InProgress => {
                return Err(GuardrailError::AnnouncementInProgress(format!(
                    "transition {} is being announced by another delivery",
                    text::value(&transition_id)
                )))
            }
            Claim::Unknown(problem) => {
                tracing::warn!(problem = %problem, "the de-duplication table could not be used; announcing anyway");
                Ok(false)
            }
        },
    )
}

/// The key the alarm is about (its KeyId dimension, else the alarm's own tags, else the
/// configured key) and its context, or why the message goes without it.
async fn key_context(deps: &Deps, change: &AlarmChange) -> Result<KeyContext, String> {
    let config = &deps.config;
    let region = change.region.as_ref().unwrap_or(&config.common.region);
    let mut key_ref = change.key_id_dimension().map(str::to_string);
    let account = change.account.as_deref();
    if let (None, Some(arn)) = (&key_ref, &change.alarm_arn) {
        let alarm_account = arn.split(':').nth(4).or(account).unwrap_or_default();
        let cloudwatch = crate::handler::cloudwatch_in(deps, alarm_account, region);
        key_ref = crate::enrich::key_from_alarm_tags(&cloudwatch, arn).await;
    }
    let Some(identifier) = key_ref.or_else(|| config.alarm_key.clone()) else {
        return Err("the alarm names no key (no KeyId dimension, no ALARM_KEY_ID)".to_string());
    };
    crate::enrich::key_context(deps, &identifier, region, account)
        .await
        .map_err(|problem| {
            format!(
                "the key {} could not be read: {problem}",
                text::value(&identifier)
            )
        })
}

async fn apply(
    deps: &Deps,
    change: &AlarmChange,
    plan: AlarmPlan,
) -> Result<Response<AlarmReport>, GuardrailError> {
    let delivery = deliver(&deps.clients, &deps.config.common, &plan.notification()).await?;
    tracing::info!(alarm = %change.alarm_name, transition = ?plan.transition, "alarm announced");
    Ok(Response::Report(AlarmReport::Alarm {
        alarm: change.alarm_name.clone(),
        // As before the port: `insufficientdata`, not `Transition::as_str`'s spelling.
        transition: format!("{:?}", plan.transition).to_lowercase(),
        key_id: plan.key_id,
        notification: delivery,
    }))
}

#[cfg(test)]
#[path = "alarm_tests.rs"]
mod tests;
