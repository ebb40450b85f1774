//! Sweeps that outgrow one invocation, on AWS's own fan-out: the schedule enqueues one work
//! item per (account, Region) on SQS; the queue's event source mapping hands them back to the
//! function with bounded concurrency (its `MaximumConcurrency`) and partial batch failures.
//! Each finished part is counted once in the state table, and the part that completes the
//! sweep sends its one summary. One part per (account, Region) also means one invocation at a
//! time spends that account-Region's KMS quota on the sweep.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;

use crate::aws::AwsClients;
use crate::base::error::{AwsErrorKind, GuardrailError};
use crate::base::text;
use crate::config::CommonConfig;
use crate::notify::outcome::{PartTally, Severity};
use crate::notify::{subject_line, Notification, Speaker};
use crate::pipeline::journal;
use crate::pipeline::sweep::Scope;
use crate::triggers::work::WorkItem;

/// SendMessageBatch takes at most 10 entries.
pub const SEND_BATCH: usize = 10;
/// A sweep's progress stays in the state table this long after it starts.
const PROGRESS_KEEP_SECONDS: u64 = 7 * 24 * 3600;

/// The sweep's parts: one work item per scope, each knowing how many parts there are.
pub fn work_items(sweep: &str, time: Option<&str>, scopes: &[Scope]) -> Vec<WorkItem> {
    scopes
        .iter()
        .map(|scope| WorkItem {
            sweep: sweep.to_string(),
            time: time.map(str::to_string),
            account: scope.account.clone(),
            region: scope.region.clone(),
            parts: scopes.len(),
        })
        .collect()
}

/// Sends every item, ten per call; entries SQS refused are sent once more. Anything still
/// refused fails the invocation, so the schedule's retry enqueues the sweep again (parts
/// already counted are not counted twice).
pub async fn enqueue(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    items: &[WorkItem],
) -> Result<usize, GuardrailError> {
    let mut calls = 0;
    for chunk in items.chunks(SEND_BATCH) {
        let mut waiting: Vec<(String, String)> = chunk
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let body = serde_json::to_string(item).unwrap_or_default();
                (i.to_string(), body)
            })
            .collect();
        for attempt in 0..2 {
            let entries = waiting
                .iter()
                .map(|(id, body)| {
                    SendMessageBatchRequestEntry::builder()
                        .id(id)
                        .message_body(body)
                        .build()
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| GuardrailError::InvalidEvent(e.to_string()))?;
            calls += 1;
            let sent = sqs
                .send_message_batch()
                .queue_url(queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| GuardrailError::aws("SendMessageBatch", queue_url, e))?;
            let failed = sent.failed();
            if failed.is_empty() {
                break;
            }
            if attempt == 1 {
                let first = &failed[0];
                return Err(GuardrailError::Aws {
                    operation: "SendMessageBatch",
                    key: queue_url.to_string(),
                    kind: AwsErrorKind::ServerError,
                    code: first.code().to_string(),
                    message: format!(
                        "{} of {} sweep work items refused twice: {}",
                        failed.len(),
                        chunk.len(),
                        text::one_line(first.message().unwrap_or_default(), 300)
                    ),
                });
            }
            let refused: Vec<&str> = failed.iter().map(|f| f.id()).collect();
            waiting.retain(|(id, _)| refused.contains(&id.as_str()));
        }
    }
    Ok(calls)
}

/// A sweep's progress as the state table holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// Whether this call counted the part (false: an earlier delivery already had).
    pub counted: bool,
    pub done: u64,
    pub parts: u64,
    pub totals: PartTally,
    pub summary_sent: bool,
    pub time: Option<String>,
}

impl Progress {
    pub fn complete(&self) -> bool {
        self.parts > 0 && self.done >= self.parts
    }
}

/// The sweeps' progress in the state table: `pk = sweep#<function>`, `sk = <sweep id>`.
pub struct Ledger {
    client: aws_sdk_dynamodb::Client,
    table: String,
    pk: String,
}

type Item = HashMap<String, AttributeValue>;

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn conditional_failed<E: aws_sdk_dynamodb::error::ProvideErrorMetadata>(e: &E) -> bool {
    e.code() == Some("ConditionalCheckFailedException")
}

impl Ledger {
    /// `None` without `STATE_TABLE` (the configuration refuses a fan-out without one).
    pub fn open(clients: &AwsClients, common: &CommonConfig, function: &str) -> Option<Ledger> {
        let store = common.state.as_ref()?;
        Some(Ledger {
            client: clients.dynamodb(&store.region),
            table: store.table.clone(),
            pk: format!("sweep#{function}"),
        })
    }

    fn key(&self, sweep: &str) -> Item {
        HashMap::from([
            ("pk".to_string(), s(&self.pk)),
            ("sk".to_string(), s(sweep)),
        ])
    }

    /// Counts `item`'s part once, whatever SQS delivers twice, and returns the progress.
    pub async fn count(
        &self,
        item: &WorkItem,
        tally: &PartTally,
    ) -> Result<Progress, GuardrailError> {
        let now = journal::now();
        let mut adds = vec!["done :one".to_string(), "finished :part".to_string()];
        let mut values: Item = HashMap::from([
            (":one".to_string(), n(1)),
            (":part".to_string(), AttributeValue::Ss(vec![item.part()])),
            (":part_name".to_string(), s(item.part())),
            (":parts".to_string(), n(item.parts as u64)),
            (":expires".to_string(), n(now + PROGRESS_KEEP_SECONDS)),
            (
                ":time".to_string(),
                s(item.time.clone().unwrap_or_default()),
            ),
        ]);
        for (name, value) in tally.counters() {
            adds.push(format!("{name} :{name}"));
            values.insert(format!(":{name}"), n(value));
        }
        if !tally.not_swept.is_empty() {
            adds.push("not_swept :not_swept".to_string());
            values.insert(
                ":not_swept".to_string(),
                AttributeValue::Ss(tally.not_swept.clone()),
            );
        }
        let update = format!(
            "ADD {} SET parts = if_not_exists(parts, :parts), expires_at = if_not_exists(expires_at, :expires), sweep_time = if_not_exists(sweep_time, :time)",
            adds.join(", ")
        );
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(self.key(&item.sweep)))
            .update_expression(update)
            .condition_expression(
                "attribute_not_exists(finished) OR NOT contains(finished, :part_name)",
            )
            .set_expression_attribute_values(Some(values))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(updated) => Ok(progress_of(
                true,
                updated.attributes().unwrap_or(&Item::new()),
            )),
            Err(e) if e.as_service_error().is_some_and(conditional_failed) => {
                let read = self
                    .client
                    .get_item()
                    .table_name(&self.table)
                    .set_key(Some(self.key(&item.sweep)))
                    .consistent_read(true)
                    .send()
                    .await
                    .map_err(|e| GuardrailError::aws("GetItem", &self.table, e))?;
                Ok(progress_of(false, read.item().unwrap_or(&Item::new())))
            }
            Err(e) => Err(GuardrailError::aws("UpdateItem", &self.table, e)),
        }
    }

    /// Claims the summary of `sweep`: true for exactly one caller until it is released.
    pub async fn claim_summary(&self, sweep: &str) -> Result<bool, GuardrailError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(self.key(sweep)))
            .update_expression("SET summary_at = :now")
            .condition_expression("attribute_not_exists(summary_at)")
            .expression_attribute_values(":now", n(journal::now()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(conditional_failed) => Ok(false),
            Err(e) => Err(GuardrailError::aws("UpdateItem", &self.table, e)),
        }
    }

    /// Gives the claim back after the summary could not be sent, so a retry sends it.
    pub async fn release_summary(&self, sweep: &str) {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(self.key(sweep)))
            .update_expression("REMOVE summary_at")
            .send()
            .await;
        if let Err(e) = result {
            tracing::error!(sweep = %sweep, error = %GuardrailError::aws("UpdateItem", &self.table, e), "the sweep summary's claim could not be released: the summary is not sent again");
        }
    }
}

fn progress_of(counted: bool, item: &Item) -> Progress {
    let number = |name: &str| {
        item.get(name)
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0u64)
    };
    let mut not_swept: Vec<String> = item
        .get("not_swept")
        .and_then(|v| v.as_ss().ok())
        .cloned()
        .unwrap_or_default();
    not_swept.sort();
    Progress {
        counted,
        done: number("done"),
        parts: number("parts"),
        totals: PartTally::from_counters(number, not_swept),
        summary_sent: item.contains_key("summary_at"),
        time: item
            .get("sweep_time")
            .and_then(|v| v.as_s().ok())
            .filter(|t| !t.is_empty())
            .cloned(),
    }
}

/// The sweep's one summary, sent by the part that completes it: pure.
pub fn summary(speaker: &Speaker<'_>, sweep: &str, progress: &Progress) -> Notification {
    let t = &progress.totals;
    let troubled = t.failed + t.blocked + t.retry_later + t.not_started;
    let mut headline = format!(
        "{}KMS guardrail sweep done: {} in {}, {} corrected, {} reported",
        speaker.subject_label(),
        counted(t.managed, "key", "keys"),
        counted(progress.parts, "part", "parts"),
        t.corrected,
        t.reported
    );
    if troubled > 0 {
        headline.push_str(&format!(", {troubled} not finished"));
    }
    if !t.not_swept.is_empty() {
        headline.push_str(&format!(", {} not swept", t.not_swept.len()));
    }
    let severity = if t.not_swept.is_empty() && troubled == 0 {
        Severity::Info
    } else {
        Severity::High
    };
    let mut body = format!(
        "kms-guardrails {}, mode {}\n\nThe scheduled sweep {} (started {}) has finished: {}, one per account and Region.\n\n",
        speaker.function,
        speaker.mode,
        text::value(sweep),
        text::value(progress.time.as_deref().unwrap_or("at an unknown time")),
        counted(progress.parts, "part", "parts")
    );
    for (label, value) in [
        ("Managed keys audited", t.managed),
        ("Compliant", t.compliant),
        ("Corrected", t.corrected),
        ("Reported", t.reported),
        ("Blocked (not written)", t.blocked),
        ("Failed (a person must act)", t.failed),
        ("Retried at the next sweep", t.retry_later),
        ("Not started before the deadline", t.not_started),
    ] {
        body.push_str(&format!("{label:<33}{value}\n"));
    }
    if !t.not_swept.is_empty() {
        body.push_str("\nNot swept (account/Region: error):\n");
        for part in &t.not_swept {
            body.push_str(&format!("  {}\n", text::one_line(part, 300)));
        }
    }
    body.push_str(if severity == Severity::Info {
        "\nEach key with a finding was announced in its own message. Nothing else is needed.\n"
    } else {
        "\nEach key with a finding, and each part not swept, was announced in its own message with its fix; start there. Keys retried or not started are audited again by the next sweep; if the same ones repeat, the function's log names them (\"key not audited\").\n"
    });
    Notification::new(&subject_line(&headline), body)
        .attribute("function", speaker.function)
        .attribute("severity", severity.to_string())
        .attribute("status", "sweep_summary")
        .attribute("environment", speaker.environment.unwrap_or_default())
}

/// `1 key`, `2 keys`.
fn counted(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// One part a delivery could not finish on its last try: counted as not swept, so the sweep
/// still completes and its summary names it.
pub fn not_swept(item: &WorkItem, error: &GuardrailError) -> PartTally {
    PartTally {
        not_swept: vec![format!(
            "{}: {} ({})",
            item.part(),
            error.error_type(),
            text::one_line(&error.to_string(), 200)
        )],
        ..PartTally::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::region::Region;

    fn scope(account: &str, region: &str) -> Scope {
        Scope {
            account: account.into(),
            region: Region::parse(region).unwrap(),
        }
    }

    use crate::testing::speaker;

    #[test]
    fn one_work_item_per_account_and_region_each_knowing_the_count() {
        let scopes = [
            scope("111122223333", "eu-west-1"),
            scope("111122223333", "us-east-1"),
            scope("444455556666", "eu-west-1"),
        ];
        let items = work_items("e-1", Some("2026-12-03T06:00:00Z"), &scopes);
        let parts: Vec<String> = items.iter().map(WorkItem::part).collect();
        assert_eq!(
            parts,
            [
                "111122223333/eu-west-1",
                "111122223333/us-east-1",
                "444455556666/eu-west-1"
            ]
        );
        assert!(items.iter().all(|i| i.parts == 3 && i.sweep == "e-1"));
    }

    #[test]
    fn a_clean_sweep_summary_is_info_and_says_nothing_is_needed() {
        let progress = Progress {
            counted: true,
            done: 6,
            parts: 6,
            totals: PartTally {
                managed: 12,
                compliant: 9,
                corrected: 3,
                ..PartTally::default()
            },
            summary_sent: false,
            time: Some("2026-12-03T06:00:00Z".into()),
        };
        let n = summary(&speaker(), "e-1", &progress);
        assert_eq!(
            n.subject,
            "[prod] KMS guardrail sweep done: 12 keys in 6 parts, 3 corrected, 0 reported"
        );
        assert_eq!(n.attributes["severity"], "info");
        assert!(
            n.body.contains("Corrected                        3\n"),
            "{}",
            n.body
        );
        assert!(n.body.contains("Nothing else is needed"), "{}", n.body);
    }

    #[test]
    fn a_summary_with_parts_not_swept_is_high_and_names_them_on_one_line_each() {
        let progress = Progress {
            counted: true,
            done: 2,
            parts: 2,
            totals: PartTally {
                managed: 1,
                compliant: 1,
                not_swept: vec!["444455556666/us-east-1: AccessDenied\nforged line".into()],
                ..PartTally::default()
            },
            summary_sent: false,
            time: None,
        };
        let n = summary(&speaker(), "e-1", &progress);
        assert_eq!(
            n.subject,
            "[prod] KMS guardrail sweep done: 1 key in 2 parts, 0 corrected, 0 reported, 1 not swept"
        );
        assert_eq!(n.attributes["severity"], "high");
        assert!(
            n.body
                .contains("  444455556666/us-east-1: AccessDenied\\nforged line\n"),
            "{}",
            n.body
        );
        assert!(n.body.contains("announced in its own message with its fix"));
    }

    #[test]
    fn progress_is_complete_only_when_every_part_is_counted() {
        let mut p = progress_of(true, &Item::new());
        assert!(!p.complete(), "no parts known yet");
        p.parts = 3;
        p.done = 2;
        assert!(!p.complete());
        p.done = 3;
        assert!(p.complete());
    }
}
