//! The work items of a fanned-out sweep, one per (account, Region), as the SQS event source
//! mapping delivers them: `{"Records": [{"eventSource": "aws:sqs", "messageId", "body",
//! "attributes": {"ApproximateReceiveCount"}}]}`.
//! <https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html>

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::base::arn::is_account_id;
use crate::base::region::Region;
use crate::base::text;

/// One part of a sweep: every managed key of one account in one Region.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkItem {
    /// The scheduled event's id: every part of one sweep carries it.
    pub sweep: String,
    /// When the schedule fired, for the messages.
    #[serde(default)]
    pub time: Option<String>,
    pub account: String,
    pub region: Region,
    /// How many parts the sweep has.
    pub parts: usize,
}

impl WorkItem {
    /// The part's name in the sweep's progress: `account/Region`.
    pub fn part(&self) -> String {
        format!("{}/{}", self.account, self.region)
    }
}

/// One SQS record: its message id (what a partial batch failure names), how often SQS has
/// delivered it, and its work item or why its body is not one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkDelivery {
    pub message_id: String,
    pub receive_count: u32,
    pub item: Result<WorkItem, String>,
}

/// `Some` when `payload` is an SQS batch.
pub fn parse_sqs_batch(payload: &Value) -> Option<Vec<WorkDelivery>> {
    let records = payload.get("Records")?.as_array()?;
    let from_sqs = records
        .first()
        .and_then(|r| r.get("eventSource"))
        .and_then(Value::as_str)
        == Some("aws:sqs");
    from_sqs.then(|| records.iter().map(parse_record).collect())
}

fn parse_record(record: &Value) -> WorkDelivery {
    let text_of = |name: &str| record.get(name).and_then(Value::as_str);
    let receive_count = record
        .pointer("/attributes/ApproximateReceiveCount")
        .and_then(Value::as_str)
        .and_then(|c| c.parse().ok())
        .unwrap_or(1);
    let item = match text_of("body") {
        None => Err("the SQS record has no body".to_string()),
        Some(body) => serde_json::from_str::<WorkItem>(body)
            .map_err(|e| {
                format!(
                    "the body is not a sweep work item ({}): {}",
                    text::one_line(&e.to_string(), 200),
                    text::quoted(body, 200)
                )
            })
            .and_then(|item| {
                if is_account_id(&item.account) {
                    Ok(item)
                } else {
                    Err(format!(
                        "the work item's account is not a 12-digit account id: {}",
                        text::quoted(&item.account, 40)
                    ))
                }
            }),
    };
    WorkDelivery {
        message_id: text_of("messageId").unwrap_or_default().to_string(),
        receive_count,
        item,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(id: &str, body: &str, receives: &str) -> Value {
        json!({
            "messageId": id,
            "receiptHandle": "AQEB",
            "body": body,
            "attributes": {"ApproximateReceiveCount": receives, "SentTimestamp": "1796304155000"},
            "messageAttributes": {},
            "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:eu-west-1:111122223333:kms-guardrails-sweep",
            "awsRegion": "eu-west-1"
        })
    }

    #[test]
    fn a_batch_of_work_items_is_read_with_each_message_id_and_receive_count() {
        let body = r#"{"sweep":"e1","time":"2026-12-03T06:00:00Z","account":"444455556666","region":"us-east-1","parts":6}"#;
        let batch = parse_sqs_batch(&json!({"Records": [record("m-1", body, "2")]})).unwrap();
        assert_eq!(batch.len(), 1);
        assert_eq!(batch[0].message_id, "m-1");
        assert_eq!(batch[0].receive_count, 2);
        let item = batch[0].item.as_ref().unwrap();
        assert_eq!(item.part(), "444455556666/us-east-1");
        assert_eq!(item.parts, 6);
    }

    #[test]
    fn a_body_that_is_not_a_work_item_is_named_not_guessed() {
        let batch = parse_sqs_batch(&json!({"Records": [
            record("m-1", "hello", "1"),
            record("m-2", r#"{"sweep":"e1","account":"not-an-account","region":"us-east-1","parts":1}"#, "1"),
            record("m-3", r#"{"sweep":"e1","account":"444455556666","region":"Mars","parts":1}"#, "1"),
        ]}))
        .unwrap();
        assert!(batch[0]
            .item
            .as_ref()
            .unwrap_err()
            .contains("not a sweep work item"));
        assert!(batch[1].item.as_ref().unwrap_err().contains("12-digit"));
        assert!(batch[2]
            .item
            .as_ref()
            .unwrap_err()
            .contains("not a sweep work item"));
    }

    #[test]
    fn sns_records_and_other_payloads_are_not_sqs_batches() {
        assert!(parse_sqs_batch(&json!({"Records": [{"EventSource": "aws:sns"}]})).is_none());
        assert!(parse_sqs_batch(&json!({"detail-type": "Scheduled Event"})).is_none());
    }
}
