//! Each alarm transition is announced once, across retries and containers, and never called
//! announced before its message was delivered: a transition is claimed with a conditional
//! write, marked announced after delivery, and released when delivery fails. A claim left by
//! a process that died mid-way goes stale after [`LEASE_SECONDS`], so a retry announces it
//! then (possibly a second time, never not at all). If the table cannot be used, announce
//! anyway.

use aws_sdk_dynamodb::types::AttributeValue;
use shared::pipeline::journal::now;
use shared::GuardrailError;

/// How long a transition id is kept: longer than EventBridge and SNS retry an event.
pub const KEEP_SECONDS: u64 = 7 * 24 * 3600;

/// How long a claim holds before a retry may take it over: longer than one invocation may
/// run (template.yaml's `Timeout`, which a test holds below this).
pub const LEASE_SECONDS: u64 = 150;

const CLAIMED: &str = "claimed";
const ANNOUNCED: &str = "announced";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This delivery announces the transition.
    Claimed,
    /// Another delivery of this transition was announced already.
    AlreadyAnnounced,
    /// Another delivery is announcing it now (or died doing so, until its claim goes stale).
    InProgress,
    /// The table could not say; the caller announces rather than stay silent.
    Unknown(String),
}

/// Claims `transition`: a new one, or one whose claim went stale without being announced.
pub async fn claim(client: &aws_sdk_dynamodb::Client, table: &str, transition: &str) -> Claim {
    let now = now();
    let result = client
        .put_item()
        .table_name(table)
        .item("transition", AttributeValue::S(transition.to_string()))
        .item("state", AttributeValue::S(CLAIMED.to_string()))
        .item("claimed_at", AttributeValue::N(now.to_string()))
        .item(
            "expires_at",
            AttributeValue::N((now + KEEP_SECONDS).to_string()),
        )
        .condition_expression("attribute_not_exists(#t) OR (#s = :claimed AND #c < :stale)")
        .expression_attribute_names("#t", "transition")
        .expression_attribute_names("#s", "state")
        .expression_attribute_names("#c", "claimed_at")
        .expression_attribute_values(":claimed", AttributeValue::S(CLAIMED.to_string()))
        .expression_attribute_values(
            ":stale",
            AttributeValue::N(now.saturating_sub(LEASE_SECONDS).to_string()),
        )
        .send()
        .await;
    match result {
        Ok(_) => Claim::Claimed,
        Err(e) => {
            let conditional = e
                .as_service_error()
                .is_some_and(|s| s.is_conditional_check_failed_exception());
            if !conditional {
                return Claim::Unknown(GuardrailError::aws("PutItem", table, e).to_string());
            }
            match state(client, table, transition).await {
                Ok(Some(state)) if state == ANNOUNCED => Claim::AlreadyAnnounced,
                Ok(_) => Claim::InProgress,
                Err(problem) => Claim::Unknown(problem),
            }
        }
    }
}

/// The recorded state of `transition`, read consistently.
async fn state(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    transition: &str,
) -> Result<Option<String>, String> {
    let out = client
        .get_item()
        .table_name(table)
        .key("transition", AttributeValue::S(transition.to_string()))
        .consistent_read(true)
        .send()
        .await
        .map_err(|e| GuardrailError::aws("GetItem", table, e).to_string())?;
    Ok(out
        .item()
        .and_then(|item| item.get("state"))
        .and_then(|v| v.as_s().ok())
        .cloned())
}

/// After delivery: the transition is announced. A failure here is logged; the claim then goes
/// stale and a later redelivery may announce it once more.
pub async fn mark_announced(client: &aws_sdk_dynamodb::Client, table: &str, transition: &str) {
    let result = client
        .update_item()
        .table_name(table)
        .key("transition", AttributeValue::S(transition.to_string()))
        .update_expression("SET #s = :announced")
        .expression_attribute_names("#s", "state")
        .expression_attribute_values(":announced", AttributeValue::S(ANNOUNCED.to_string()))
        .send()
        .await;
    if let Err(e) = result {
        let e = GuardrailError::aws("UpdateItem", table, e);
        tracing::warn!(error = %e, "the transition was announced but could not be recorded so");
    }
}

/// After a failed delivery: the claim is given up, so the retry announces at once.
pub async fn release(client: &aws_sdk_dynamodb::Client, table: &str, transition: &str) {
    let result = client
        .delete_item()
        .table_name(table)
        .key("transition", AttributeValue::S(transition.to_string()))
        .condition_expression("#s = :claimed")
        .expression_attribute_names("#s", "state")
        .expression_attribute_values(":claimed", AttributeValue::S(CLAIMED.to_string()))
        .send()
        .await;
    if let Err(e) = result {
        let e = GuardrailError::aws("DeleteItem", table, e);
        tracing::warn!(error = %e, "the claim stays until it goes stale");
    }
}
