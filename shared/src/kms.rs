//! The KMS reads every guardrail needs, with errors that name the operation and the key.
//! Every list call is paginated.

use aws_sdk_kms::types::{KeyManagerType, KeyMetadata, KeySpec, KeyState, OriginType};
use aws_sdk_kms::Client;

use crate::error::GuardrailError;

/// Only policy name KMS supports.
pub const DEFAULT_POLICY_NAME: &str = "default";

#[derive(Debug, Clone)]
pub struct KeyInfo {
    pub arn: String,
    pub key_id: String,
    pub region: String,
    pub account: String,
    pub state: KeyState,
    pub customer_managed: bool,
    /// Symmetric keys with KMS-generated material are the only ones that can rotate automatically.
    pub rotatable: bool,
    pub multi_region: bool,
    /// For multi-Region keys, the primary's ARN. Compare with `arn`, not `MultiRegionKeyType`,
    /// which moto misreports for primaries after ReplicateKey.
    pub primary_arn: Option<String>,
    pub description: String,
    /// When a key pending deletion will be deleted (RFC 3339).
    pub deletion_date: Option<String>,
}

impl KeyInfo {
    /// A multi-Region replica: rotation and other shared properties are managed on its primary.
    pub fn is_replica(&self) -> bool {
        self.primary_arn.as_deref().is_some_and(|p| p != self.arn)
    }

    fn from_metadata(meta: &KeyMetadata, fallback_region: &str) -> KeyInfo {
        let arn = meta.arn().unwrap_or_default().to_string();
        KeyInfo {
            region: crate::aws::arn_region(&arn)
                .unwrap_or(fallback_region)
                .to_string(),
            account: meta.aws_account_id().unwrap_or_default().to_string(),
            key_id: meta.key_id().to_string(),
            state: meta.key_state().cloned().unwrap_or(KeyState::Unavailable),
            customer_managed: meta.key_manager() == Some(&KeyManagerType::Customer),
            rotatable: meta.key_spec() == Some(&KeySpec::SymmetricDefault)
                && meta.origin() == Some(&OriginType::AwsKms),
            multi_region: meta.multi_region().unwrap_or(false),
            primary_arn: meta
                .multi_region_configuration()
                .and_then(|c| c.primary_key())
                .and_then(|p| p.arn())
                .map(str::to_string),
            description: meta.description().unwrap_or_default().to_string(),
            deletion_date: meta
                .deletion_date()
                .and_then(|d| d.fmt(aws_smithy_types::date_time::Format::DateTime).ok()),
            arn,
        }
    }
}

pub async fn describe_key(
    client: &Client,
    identifier: &str,
    region: &str,
) -> Result<KeyInfo, GuardrailError> {
    let out = client
        .describe_key()
        .key_id(identifier)
        .send()
        .await
        .map_err(|e| GuardrailError::aws("DescribeKey", identifier, e))?;
    let meta = out.key_metadata().ok_or_else(|| {
        GuardrailError::InvalidEvent(format!("DescribeKey returned no metadata for {identifier}"))
    })?;
    Ok(KeyInfo::from_metadata(meta, region))
}

pub async fn key_policy(client: &Client, key_arn: &str) -> Result<String, GuardrailError> {
    let out = client
        .get_key_policy()
        .key_id(key_arn)
        .policy_name(DEFAULT_POLICY_NAME)
        .send()
        .await
        .map_err(|e| GuardrailError::aws("GetKeyPolicy", key_arn, e))?;
    Ok(out.policy().unwrap_or_default().to_string())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RotationStatus {
    pub enabled: bool,
    /// Reported by KMS since on-demand rotation; absent from older endpoints.
    pub period_days: Option<i32>,
}

pub async fn rotation_status(
    client: &Client,
    key_arn: &str,
) -> Result<RotationStatus, GuardrailError> {
    let out = client
        .get_key_rotation_status()
        .key_id(key_arn)
        .send()
        .await
        .map_err(|e| GuardrailError::aws("GetKeyRotationStatus", key_arn, e))?;
    Ok(RotationStatus {
        enabled: out.key_rotation_enabled(),
        period_days: out.rotation_period_in_days(),
    })
}

pub async fn tags(client: &Client, key_arn: &str) -> Result<Vec<(String, String)>, GuardrailError> {
    let mut pages = client
        .list_resource_tags()
        .key_id(key_arn)
        .into_paginator()
        .send();
    let mut tags = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| GuardrailError::aws("ListResourceTags", key_arn, e))?;
        tags.extend(
            page.tags()
                .iter()
                .map(|t| (t.tag_key().to_string(), t.tag_value().to_string())),
        );
    }
    Ok(tags)
}

/// Alias names (`alias/...`) that point at the key.
pub async fn aliases(client: &Client, key_id: &str) -> Result<Vec<String>, GuardrailError> {
    let mut pages = client.list_aliases().key_id(key_id).into_paginator().send();
    let mut names = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| GuardrailError::aws("ListAliases", key_id, e))?;
        names.extend(
            page.aliases()
                .iter()
                .filter_map(|a| a.alias_name().map(str::to_string)),
        );
    }
    Ok(names)
}

/// Every key ARN in the client's Region.
pub async fn list_key_arns(client: &Client) -> Result<Vec<String>, GuardrailError> {
    let region = client
        .config()
        .region()
        .map(|r| r.to_string())
        .unwrap_or_default();
    let mut pages = client.list_keys().into_paginator().send();
    let mut arns = Vec::new();
    while let Some(page) = pages.next().await {
        let page =
            page.map_err(|e| GuardrailError::aws("ListKeys", &format!("all keys in {region}"), e))?;
        arns.extend(
            page.keys()
                .iter()
                .filter_map(|k| k.key_arn().map(str::to_string)),
        );
    }
    Ok(arns)
}
