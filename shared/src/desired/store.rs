//! The desired-state records in the state table: one item per version of a key,
//! `pk` = `desired#<key ARN>`, `sk` = `v#<version, ten digits>`. A version is written only if
//! no item holds its number yet, so two invocations that decide at once cannot both become
//! version N: the second one reads the latest again and decides again.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use crate::aws::{AwsClients, StateAccess};
use crate::base::error::GuardrailError;
use crate::config::{CommonConfig, StateStore};
use crate::desired::{DesiredState, Reason, Version};

/// The outcome of writing a version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Put {
    Recorded,
    /// Another invocation recorded this version number first.
    Taken,
    /// Nothing was written: the state table is read-only here (the command-line audit).
    NotRecorded,
}

pub struct DesiredStore<'a> {
    client: aws_sdk_dynamodb::Client,
    store: &'a StateStore,
    access: StateAccess,
}

type Item = HashMap<String, AttributeValue>;

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn pk(key_arn: &str) -> String {
    format!("desired#{key_arn}")
}

fn sk(number: u32) -> String {
    format!("v#{number:010}")
}

/// A stored version, or why it cannot be read (a hand-edited item).
fn version_of(item: &Item) -> Result<Version, String> {
    let text = |name: &str| {
        item.get(name)
            .and_then(|v| v.as_s().ok())
            .cloned()
            .ok_or_else(|| format!("attribute {name} is missing"))
    };
    let number = item
        .get("version")
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse().ok())
        .ok_or("attribute version is missing")?;
    let state: DesiredState =
        serde_json::from_str(&text("state")?).map_err(|e| format!("attribute state: {e}"))?;
    let reason: Reason =
        serde_json::from_str(&text("reason")?).map_err(|e| format!("attribute reason: {e}"))?;
    Ok(Version {
        number,
        state,
        approved_by: text("approved_by")?,
        approved_at: text("approved_at")?,
        event_id: text("event_id")?,
        reason,
    })
}

fn unreadable(table: &str, key_arn: &str, problem: String) -> GuardrailError {
    GuardrailError::Configuration(crate::config::ConfigError {
        problems: vec![format!(
            "the desired state of {key_arn} in table {table} cannot be read ({problem}); restore the item from the table's point-in-time recovery or delete the key's desired# items to enrol it again"
        )],
    })
}

impl<'a> DesiredStore<'a> {
    /// The store, or `None` without `STATE_TABLE`.
    pub fn open(clients: &AwsClients, common: &'a CommonConfig) -> Option<DesiredStore<'a>> {
        let store = common.state.as_ref()?;
        Some(DesiredStore {
            client: clients.dynamodb(&store.region),
            store,
            access: clients.state_access(),
        })
    }

    /// The key's latest version; `None` when it has no record. One Query.
    pub async fn latest(&self, key_arn: &str) -> Result<Option<Version>, GuardrailError> {
        let out = self
            .client
            .query()
            .table_name(&self.store.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(pk(key_arn)))
            .scan_index_forward(false)
            .limit(1)
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| GuardrailError::aws("Query", &self.store.table, e))?;
        match out.items().first() {
            Some(item) => version_of(item)
                .map(Some)
                .map_err(|p| unreadable(&self.store.table, key_arn, p)),
            None => Ok(None),
        }
    }

    /// Every version of the key, oldest first.
    pub async fn history(&self, key_arn: &str) -> Result<Vec<Version>, GuardrailError> {
        let mut pages = self
            .client
            .query()
            .table_name(&self.store.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(pk(key_arn)))
            .consistent_read(true)
            .into_paginator()
            .send();
        let mut versions = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| GuardrailError::aws("Query", &self.store.table, e))?;
            for item in page.items() {
                versions
                    .push(version_of(item).map_err(|p| unreadable(&self.store.table, key_arn, p))?);
            }
        }
        Ok(versions)
    }

    /// Writes `version` unless its number is taken. A lost answer to our own write also reads
    /// as `Taken`; the caller then finds its own state as the latest.
    pub async fn put(&self, key_arn: &str, version: &Version) -> Result<Put, GuardrailError> {
        if self.access == StateAccess::ReadOnly {
            return Ok(Put::NotRecorded);
        }
        let result = self
            .client
            .put_item()
            .table_name(&self.store.table)
            .item("pk", s(pk(key_arn)))
            .item("sk", s(sk(version.number)))
            .item("version", AttributeValue::N(version.number.to_string()))
            .item("key_arn", s(key_arn))
            .item("state", s(json(&version.state)))
            .item("reason", s(json(&version.reason)))
            .item("approved_by", s(&version.approved_by))
            .item("approved_at", s(&version.approved_at))
            .item("event_id", s(&version.event_id))
            .condition_expression("attribute_not_exists(sk)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(Put::Recorded),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(Put::Taken)
            }
            Err(e) => Err(GuardrailError::aws("PutItem", &self.store.table, e)),
        }
    }
}

/// Serializing these plain structs (string keys only) cannot fail.
fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}
