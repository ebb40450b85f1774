//! Each alarm transition is announced once, across retries and containers: a conditional write
//! of its id to a DynamoDB table with a TTL. If the table cannot be used, announce anyway.

use std::time::{SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::types::AttributeValue;
use shared::GuardrailError;

/// How long a transition id is kept: longer than EventBridge and SNS retry an event.
pub const KEEP_SECONDS: u64 = 7 * 24 * 3600;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FirstTime {
    Yes,
    /// Another delivery of this transition was announced already.
    AlreadyAnnounced,
    /// The table could not say; the caller announces rather than stay silent.
    Unknown(String),
}

pub async fn first_time(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    transition: &str,
) -> FirstTime {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let result = client
        .put_item()
        .table_name(table)
        .item("transition", AttributeValue::S(transition.to_string()))
        .item(
            "expires_at",
            AttributeValue::N((now + KEEP_SECONDS).to_string()),
        )
        .condition_expression("attribute_not_exists(#t)")
        .expression_attribute_names("#t", "transition")
        .send()
        .await;
    match result {
        Ok(_) => FirstTime::Yes,
        Err(e) => {
            let conditional = e
                .as_service_error()
                .is_some_and(|s| s.is_conditional_check_failed_exception());
            if conditional {
                FirstTime::AlreadyAnnounced
            } else {
                let e = GuardrailError::aws("PutItem", table, e);
                FirstTime::Unknown(e.to_string())
            }
        }
    }
}
