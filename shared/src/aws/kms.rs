//! The KMS reads every guardrail needs, with errors that name the operation and the key.
//! Every list call is paginated.

use std::collections::HashMap;

use aws_sdk_kms::types::{KeyManagerType, KeyMetadata, KeySpec, KeyState, OriginType};
use aws_sdk_kms::Client;

use crate::base::arn::Arn;
use crate::base::error::GuardrailError;
use crate::base::region::Region;

/// Only policy name KMS supports.
pub const DEFAULT_POLICY_NAME: &str = "default";

#[derive(Debug, Clone)]
pub struct KeyInfo {
    pub arn: Arn,
    pub key_id: String,
    pub region: Region,
    pub account: String,
    pub state: KeyState,
    pub customer_managed: bool,
    /// Symmetric keys with KMS-generated material are the only ones that can rotate automatically.
    pub rotatable: bool,
    /// A symmetric encryption key (`SYMMETRIC_DEFAULT`), the only kind S3 encrypts with. An
    /// answer without a key spec (an old emulator) is not held against the key.
    pub symmetric: bool,
    pub multi_region: bool,
    /// For multi-Region keys, the primary's ARN. Compare with `arn`, not `MultiRegionKeyType`,
    /// which moto misreports for primaries after ReplicateKey.
    pub primary_arn: Option<String>,
    /// For a multi-Region primary, its replicas' ARNs as DescribeKey lists them.
    pub replica_arns: Vec<String>,
    pub description: String,
    /// When a key pending deletion will be deleted (RFC 3339).
    pub deletion_date: Option<String>,
}

impl KeyInfo {
    /// A multi-Region replica: rotation and other shared properties are managed on its primary.
    pub fn is_replica(&self) -> bool {
        self.primary_arn
            .as_deref()
            .is_some_and(|p| p != self.arn.as_str())
    }

    /// Whether the key can be read and written now: keys being created, imported or
    /// unavailable are left until they settle.
    pub fn is_settled(&self) -> bool {
        matches!(
            self.state,
            KeyState::Enabled
                | KeyState::Disabled
                | KeyState::PendingDeletion
                | KeyState::PendingReplicaDeletion
        )
    }

    /// For a key KMS is still creating (a new multi-Region replica), the retryable failure
    /// that brings the event back once it settles.
    pub fn not_ready(&self) -> Option<GuardrailError> {
        (self.state == KeyState::Creating).then(|| GuardrailError::KeyNotReady {
            key: self.arn.to_string(),
            state: self.state.as_str().to_string(),
        })
    }

    pub fn from_metadata(meta: &KeyMetadata) -> Result<KeyInfo, String> {
        let arn = Arn::parse(meta.arn().unwrap_or_default())
            .map_err(|e| format!("DescribeKey returned a key without a usable ARN: {e}"))?;
        Ok(KeyInfo {
            region: Region::parse(arn.region())
                .map_err(|e| format!("DescribeKey returned a key ARN without a Region: {e}"))?,
            account: meta.aws_account_id().unwrap_or_default().to_string(),
            key_id: meta.key_id().to_string(),
            state: meta.key_state().cloned().unwrap_or(KeyState::Unavailable),
            customer_managed: meta.key_manager() == Some(&KeyManagerType::Customer),
            rotatable: meta.key_spec() == Some(&KeySpec::SymmetricDefault)
                && meta.origin() == Some(&OriginType::AwsKms),
            symmetric: meta
                .key_spec()
                .is_none_or(|spec| *spec == KeySpec::SymmetricDefault),
            multi_region: meta.multi_region().unwrap_or(false),
            primary_arn: meta
                .multi_region_configuration()
                .and_then(|c| c.primary_key())
                .and_then(|p| p.arn())
                .map(str::to_string),
            replica_arns: meta
                .multi_region_configuration()
                .map(|c| {
                    c.replica_keys()
                        .iter()
                        .filter_map(|r| r.arn().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
            description: meta.description().unwrap_or_default().to_string(),
            deletion_date: meta
                .deletion_date()
                .and_then(|d| d.fmt(aws_smithy_types::date_time::Format::DateTime).ok()),
            arn,
        })
    }
}

pub async fn describe_key(client: &Client, identifier: &str) -> Result<KeyInfo, GuardrailError> {
    let out = client
        .describe_key()
        .key_id(identifier)
        .send()
        .await
        .map_err(|e| GuardrailError::aws("DescribeKey", identifier, e))?;
    out.key_metadata()
        .ok_or_else(|| format!("DescribeKey returned no metadata for {identifier}"))
        .and_then(KeyInfo::from_metadata)
        .map_err(GuardrailError::InvalidEvent)
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

/// Every alias of the client's Region by target key id: one listing per Region instead of one
/// per key. AWS managed aliases (`alias/aws/...`) are left out.
pub async fn aliases_by_key(
    client: &Client,
) -> Result<HashMap<String, Vec<String>>, GuardrailError> {
    let region = client
        .config()
        .region()
        .map(|r| r.to_string())
        .unwrap_or_default();
    let mut pages = client.list_aliases().into_paginator().send();
    let mut by_key: HashMap<String, Vec<String>> = HashMap::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| {
            GuardrailError::aws("ListAliases", &format!("all aliases in {region}"), e)
        })?;
        for alias in page.aliases() {
            if let (Some(name), Some(target)) = (alias.alias_name(), alias.target_key_id()) {
                if !name.starts_with("alias/aws/") {
                    by_key
                        .entry(target.to_string())
                        .or_default()
                        .push(name.to_string());
                }
            }
        }
    }
    for names in by_key.values_mut() {
        names.sort();
    }
    Ok(by_key)
}

/// The KMS writes. Each names the key by id on its own Region's client: AWS accepts id or
/// ARN, and moto only the id for EnableKey and CancelKeyDeletion. Errors name the full ARN.
pub mod write {
    use super::*;

    pub async fn cancel_key_deletion(client: &Client, key: &KeyInfo) -> Result<(), GuardrailError> {
        client
            .cancel_key_deletion()
            .key_id(&key.key_id)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| GuardrailError::aws("CancelKeyDeletion", key.arn.as_str(), e))
    }

    pub async fn enable_key(client: &Client, key: &KeyInfo) -> Result<(), GuardrailError> {
        client
            .enable_key()
            .key_id(&key.key_id)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| GuardrailError::aws("EnableKey", key.arn.as_str(), e))
    }

    pub async fn enable_key_rotation(
        client: &Client,
        key: &KeyInfo,
        period_days: i32,
    ) -> Result<(), GuardrailError> {
        client
            .enable_key_rotation()
            .key_id(&key.key_id)
            .rotation_period_in_days(period_days)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| GuardrailError::aws("EnableKeyRotation", key.arn.as_str(), e))
    }

    /// PutKeyPolicy with a document that already passed [`crate::policy::kms_rules::check_kms_rules`]
    /// and the lockout check (the caller holds a [`crate::policy::safe_policy::SafePolicy`]).
    pub async fn put_key_policy(
        client: &Client,
        key: &KeyInfo,
        policy: &crate::policy::safe_policy::SafePolicy,
    ) -> Result<(), GuardrailError> {
        client
            .put_key_policy()
            .key_id(&key.key_id)
            .policy_name(DEFAULT_POLICY_NAME)
            .policy(policy.document())
            // Never bypass: KMS's own lockout check is a second line of defence.
            .bypass_policy_lockout_safety_check(false)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| GuardrailError::aws("PutKeyPolicy", key.arn.as_str(), e))
    }
}

impl KeyInfo {
    /// What is known of a key the function may not describe: its identifier, Region and
    /// account, for the message that says so.
    pub fn unreadable(identifier: &str, region: &Region, account: &str) -> KeyInfo {
        let arn = Arn::parse(identifier)
            .ok()
            .or_else(|| {
                let resource = if identifier.starts_with("alias/") {
                    identifier.to_string()
                } else {
                    format!("key/{identifier}")
                };
                Arn::parse(&format!("arn:aws:kms:{region}:{account}:{resource}")).ok()
            })
            .unwrap_or_else(|| {
                Arn::parse(&format!("arn:aws:kms:{region}:{account}:key/unknown"))
                    .unwrap_or_else(|_| unreachable!("a well-formed ARN"))
            });
        KeyInfo {
            key_id: arn.kms_key_id().unwrap_or(arn.resource()).to_string(),
            region: Region::parse(arn.region()).unwrap_or_else(|_| region.clone()),
            account: arn.account().to_string(),
            arn,
            state: KeyState::Unavailable,
            customer_managed: true,
            rotatable: false,
            symmetric: false,
            multi_region: false,
            primary_arn: None,
            replica_arns: Vec::new(),
            description: String::new(),
            deletion_date: None,
        }
    }
}
