//! KMS grants: what CreateGrant is given ([`GrantSpec`]), what ListGrants returns
//! ([`ExistingGrant`]), the rules KMS enforces on a new grant ([`kms_refusals`]), and the
//! reads and writes, with errors that name the operation and the key.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use aws_sdk_kms::types::{GrantConstraints as SdkConstraints, GrantListEntry, GrantOperation};
use aws_sdk_kms::Client;
use serde::{Deserialize, Serialize};

use crate::base::arn::is_account_id;
use crate::base::arn::Arn;
use crate::base::error::GuardrailError;
use crate::base::text;

/// Who a grant is for, or who may retire it: an AWS principal (`GranteePrincipal`,
/// `RetiringPrincipal`) or a service principal (`GranteeServicePrincipal`,
/// `RetiringServicePrincipal`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Grantee {
    Principal(String),
    Service(String),
}

impl Grantee {
    pub fn id(&self) -> &str {
        match self {
            Grantee::Principal(p) | Grantee::Service(p) => p,
        }
    }

    /// The same principal: a bare account id and that account's root ARN name the same
    /// principal, as they do in key policies.
    pub fn same_as(&self, other: &Grantee) -> bool {
        match (self, other) {
            (Grantee::Principal(a), Grantee::Principal(b)) => same_principal(a, b),
            (Grantee::Service(a), Grantee::Service(b)) => a == b,
            _ => false,
        }
    }
}

impl fmt::Display for Grantee {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Grantee::Principal(p) => write!(f, "{}", text::value(p)),
            Grantee::Service(s) => write!(f, "service principal {}", text::value(s)),
        }
    }
}

fn same_principal(a: &str, b: &str) -> bool {
    let root_of = |account: &str, arn: &str| {
        is_account_id(account)
            && Arn::parse(arn).is_ok_and(|arn| {
                arn.service() == "iam" && arn.account() == account && arn.resource() == "root"
            })
    };
    a == b || root_of(a, b) || root_of(b, a)
}

fn same_optional(a: Option<&Grantee>, b: Option<&Grantee>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a.same_as(b),
        (None, None) => true,
        _ => false,
    }
}

/// Grant constraints; empty maps and no `SourceArn` mean no constraint.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantConstraints {
    pub encryption_context_subset: BTreeMap<String, String>,
    pub encryption_context_equals: BTreeMap<String, String>,
    pub source_arn: Option<String>,
}

impl GrantConstraints {
    pub fn is_empty(&self) -> bool {
        self.encryption_context_subset.is_empty()
            && self.encryption_context_equals.is_empty()
            && self.source_arn.is_none()
    }

    pub fn has_encryption_context(&self) -> bool {
        !self.encryption_context_subset.is_empty() || !self.encryption_context_equals.is_empty()
    }

    pub fn from_sdk(constraints: Option<&SdkConstraints>) -> GrantConstraints {
        let map = |m: Option<&HashMap<String, String>>| {
            m.map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default()
        };
        GrantConstraints {
            encryption_context_subset: map(constraints.and_then(|c| c.encryption_context_subset())),
            encryption_context_equals: map(constraints.and_then(|c| c.encryption_context_equals())),
            source_arn: constraints
                .and_then(|c| c.source_arn())
                .filter(|s| !s.is_empty())
                .map(str::to_string),
        }
    }

    /// `None` when there is no constraint, so the request carries no empty `Constraints`.
    pub fn to_sdk(&self) -> Option<SdkConstraints> {
        if self.is_empty() {
            return None;
        }
        let map = |m: &BTreeMap<String, String>| {
            (!m.is_empty()).then(|| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        };
        Some(
            SdkConstraints::builder()
                .set_encryption_context_subset(map(&self.encryption_context_subset))
                .set_encryption_context_equals(map(&self.encryption_context_equals))
                .set_source_arn(self.source_arn.clone())
                .build(),
        )
    }
}

/// What CreateGrant is given. The name is what makes a retried CreateGrant idempotent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GrantSpec {
    pub name: String,
    pub grantee: Grantee,
    /// KMS operation names (`Encrypt`, `GenerateDataKey`, ...).
    pub operations: BTreeSet<String>,
    pub retiring: Option<Grantee>,
    pub constraints: GrantConstraints,
}

impl GrantSpec {
    /// One line for people: `"s3-replication" for <grantee>: Encrypt, GenerateDataKey`.
    pub fn summary(&self) -> String {
        format!(
            "{} for {}: {}",
            text::quoted(&self.name, 120),
            self.grantee,
            operations_list(&self.operations)
        )
    }
}

/// A grant as ListGrants returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExistingGrant {
    pub grant_id: String,
    pub name: Option<String>,
    pub grantee: Option<Grantee>,
    pub retiring: Option<Grantee>,
    pub operations: BTreeSet<String>,
    pub constraints: GrantConstraints,
    pub issuing_account: Option<String>,
}

impl ExistingGrant {
    /// The grant CreateGrant just made from `spec`, before ListGrants shows it (grants take
    /// up to five minutes to be consistent).
    pub fn from_spec(spec: &GrantSpec, grant_id: &str) -> ExistingGrant {
        ExistingGrant {
            grant_id: grant_id.to_string(),
            name: Some(spec.name.clone()),
            grantee: Some(spec.grantee.clone()),
            retiring: spec.retiring.clone(),
            operations: spec.operations.clone(),
            constraints: spec.constraints.clone(),
            issuing_account: None,
        }
    }

    pub fn from_entry(entry: &GrantListEntry) -> ExistingGrant {
        // AWS reports an unnamed grant as absent or as "": both mean no name.
        let present = |s: Option<&str>| s.filter(|s| !s.is_empty()).map(str::to_string);
        let either = |service: Option<&str>, principal: Option<&str>| {
            present(service)
                .map(Grantee::Service)
                .or_else(|| present(principal).map(Grantee::Principal))
        };
        ExistingGrant {
            grant_id: entry.grant_id().unwrap_or_default().to_string(),
            name: present(entry.name()),
            grantee: either(entry.grantee_service_principal(), entry.grantee_principal()),
            retiring: either(
                entry.retiring_service_principal(),
                entry.retiring_principal(),
            ),
            operations: entry
                .operations()
                .iter()
                .map(|o| o.as_str().to_string())
                .collect(),
            constraints: GrantConstraints::from_sdk(entry.constraints()),
            issuing_account: present(entry.issuing_account()),
        }
    }

    /// One line for people: `grant <id> "name" for <grantee>: Encrypt`.
    pub fn summary(&self) -> String {
        let name = self
            .name
            .as_deref()
            .map(|n| format!(" {}", text::quoted(n, 120)))
            .unwrap_or_default();
        let grantee = self
            .grantee
            .as_ref()
            .map(|g| g.to_string())
            .unwrap_or_else(|| "no grantee".to_string());
        format!(
            "grant {}{name} for {grantee}: {}",
            text::value(&self.grant_id),
            operations_list(&self.operations)
        )
    }
}

fn operations_list(operations: &BTreeSet<String>) -> String {
    if operations.is_empty() {
        return "no operations".to_string();
    }
    operations
        .iter()
        .map(|o| text::one_line(o, 60))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether `existing` is exactly the grant `spec` describes: same name, grantee, operations,
/// retiring principal and constraints.
pub fn matches(spec: &GrantSpec, existing: &ExistingGrant) -> bool {
    differences(spec, existing).is_empty()
}

/// The CreateGrant fields in which `existing` differs from `spec`, in CreateGrant's order:
/// the one comparison of a grant with its description.
pub fn differences(spec: &GrantSpec, existing: &ExistingGrant) -> Vec<&'static str> {
    let mut what = Vec::new();
    if existing.name.as_deref() != Some(spec.name.as_str()) {
        what.push("Name");
    }
    let same_grantee = existing
        .grantee
        .as_ref()
        .is_some_and(|g| g.same_as(&spec.grantee));
    if !same_grantee {
        what.push("GranteePrincipal");
    }
    if existing.operations != spec.operations {
        what.push("Operations");
    }
    if !same_optional(existing.retiring.as_ref(), spec.retiring.as_ref()) {
        what.push("RetiringPrincipal");
    }
    let (have, want) = (&existing.constraints, &spec.constraints);
    if have.encryption_context_subset != want.encryption_context_subset {
        what.push("Constraints.EncryptionContextSubset");
    }
    if have.encryption_context_equals != want.encryption_context_equals {
        what.push("Constraints.EncryptionContextEquals");
    }
    if have.source_arn != want.source_arn {
        what.push("Constraints.SourceArn");
    }
    what
}

// The rules below are CreateGrant's, from
// https://docs.aws.amazon.com/kms/latest/APIReference/API_CreateGrant.html and
// https://docs.aws.amazon.com/kms/latest/developerguide/grants.html#terms-grant-operations

/// Every operation a grant can allow (the `GrantOperation` enum).
pub const GRANT_OPERATIONS: &[&str] = &[
    "CreateGrant",
    "Decapsulate",
    "Decrypt",
    "DeriveSharedSecret",
    "DescribeKey",
    "Encapsulate",
    "Encrypt",
    "GenerateDataKey",
    "GenerateDataKeyPair",
    "GenerateDataKeyPairWithoutPlaintext",
    "GenerateDataKeyWithoutPlaintext",
    "GenerateMac",
    "GetPublicKey",
    "ReEncryptFrom",
    "ReEncryptTo",
    "RetireGrant",
    "Sign",
    "Verify",
    "VerifyMac",
];

/// Operations of asymmetric and HMAC keys: KMS refuses them on a symmetric encryption key,
/// the only kind S3 replication uses. None of them takes an encryption context.
pub const ASYMMETRIC_OR_HMAC_OPERATIONS: &[&str] = &[
    "Decapsulate",
    "DeriveSharedSecret",
    "Encapsulate",
    "GenerateMac",
    "GetPublicKey",
    "Sign",
    "Verify",
    "VerifyMac",
];

/// Longest grant name and its characters (`^[a-zA-Z0-9:/_-]+$`).
pub const MAX_NAME_CHARS: usize = 256;
/// Encryption-context pairs per constraint, and characters per value.
pub const MAX_CONTEXT_PAIRS: usize = 8;
pub const MAX_CONTEXT_VALUE_CHARS: usize = 384;

fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, ':' | '/' | '_' | '-')
}

/// Something that looks like `s3.amazonaws.com` rather than an ARN or an account.
fn looks_like_service_principal(p: &str) -> bool {
    !p.is_empty()
        && !p.contains(':')
        && p.contains('.')
        && p.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
}

/// An AWS principal KMS accepts as GranteePrincipal or RetiringPrincipal: an account id, or
/// the ARN of an account root, IAM user or role, assumed-role session or federated user.
/// Grants take no wildcards.
fn is_aws_principal(p: &str) -> bool {
    if is_account_id(p) {
        return true;
    }
    let Ok(arn) = Arn::parse(p) else {
        return false;
    };
    if p.contains('*') || p.contains('?') || !is_account_id(arn.account()) || p != arn.as_str() {
        return false;
    }
    let resource = arn.resource();
    let named = |prefix: &str| {
        resource
            .strip_prefix(prefix)
            .is_some_and(|rest| !rest.is_empty() && !rest.ends_with('/'))
    };
    match arn.service() {
        "iam" => resource == "root" || named("user/") || named("role/"),
        "sts" => {
            named("federated-user/")
                || resource
                    .strip_prefix("assumed-role/")
                    .and_then(|rest| rest.split_once('/'))
                    .is_some_and(|(role, session)| !role.is_empty() && !session.is_empty())
        }
        _ => false,
    }
}

/// Every reason KMS would refuse CreateGrant with `spec` on a symmetric encryption key, each a
/// sentence that names the fix. Empty when KMS would accept it.
pub fn kms_refusals(spec: &GrantSpec) -> Vec<String> {
    let mut out = Vec::new();
    name_refusals(&spec.name, &mut out);

    match &spec.grantee {
        Grantee::Principal(p) if looks_like_service_principal(p) => out.push(format!(
            "GranteePrincipal {} is a service principal, which KMS refuses there: give it as \
             GranteeServicePrincipal with a SourceArn constraint and a RetiringPrincipal. For S3 \
             replication no grant to the S3 service is needed at all: replication encrypts as the \
             replication role, so grant the replication role's ARN instead",
            text::quoted(p, 120)
        )),
        Grantee::Principal(p) if !is_aws_principal(p) => out.push(format!(
            "GranteePrincipal {} is not an AWS principal: use an account id or the ARN of an \
             account root, IAM role, IAM user, assumed-role session or federated user, without \
             wildcards",
            text::quoted(p, 120)
        )),
        Grantee::Principal(_) => {}
        Grantee::Service(s) => {
            if !looks_like_service_principal(s) {
                out.push(format!(
                    "GranteeServicePrincipal {} is not a service principal: use a name such as \
                     s3.amazonaws.com, or give an ARN as GranteePrincipal",
                    text::quoted(s, 120)
                ));
            }
            if spec.constraints.source_arn.is_none() {
                out.push(
                    "a grant to a service principal needs a SourceArn constraint: add \
                     Constraints.SourceArn naming the resource the service acts for"
                        .to_string(),
                );
            }
            if spec.retiring.is_none() {
                out.push(
                    "a grant to a service principal needs a RetiringPrincipal or \
                     RetiringServicePrincipal: add the principal that may retire the grant"
                        .to_string(),
                );
            }
        }
    }

    match &spec.retiring {
        Some(Grantee::Principal(p)) if !is_aws_principal(p) => out.push(format!(
            "RetiringPrincipal {} is not an AWS principal: use an account id or the ARN of an \
             account root, IAM role, IAM user, assumed-role session or federated user{}",
            text::quoted(p, 120),
            if looks_like_service_principal(p) {
                ", or give a service as RetiringServicePrincipal"
            } else {
                ""
            }
        )),
        Some(Grantee::Service(s)) if !looks_like_service_principal(s) => out.push(format!(
            "RetiringServicePrincipal {} is not a service principal: use a name such as \
             s3.amazonaws.com, or give an ARN as RetiringPrincipal",
            text::quoted(s, 120)
        )),
        _ => {}
    }

    operation_refusals(spec, &mut out);
    constraint_refusals(&spec.constraints, &mut out);
    out
}

fn name_refusals(name: &str, out: &mut Vec<String>) {
    let chars = name.chars().count();
    if chars == 0 {
        out.push(
            "the grant Name is empty: give it a name of 1 to 256 letters, digits, ':', '/', '_' \
             or '-'"
                .to_string(),
        );
        return;
    }
    if chars > MAX_NAME_CHARS {
        out.push(format!(
            "the grant Name has {chars} characters: shorten it to at most {MAX_NAME_CHARS}"
        ));
    }
    let bad: BTreeSet<char> = name.chars().filter(|c| !name_char(*c)).collect();
    if !bad.is_empty() {
        let shown: String = bad.into_iter().take(10).collect();
        out.push(format!(
            "the grant Name {} contains {}: use only letters, digits, ':', '/', '_' and '-'",
            text::quoted(name, 120),
            text::quoted(&shown, 40)
        ));
    }
}

fn operation_refusals(spec: &GrantSpec, out: &mut Vec<String>) {
    if spec.operations.is_empty() {
        out.push(
            "the grant allows no Operations: list the operations it allows, such as Encrypt and \
             GenerateDataKey"
                .to_string(),
        );
    }
    let unknown: Vec<String> = spec
        .operations
        .iter()
        .filter(|o| !GRANT_OPERATIONS.contains(&o.as_str()))
        .map(|o| text::quoted(o, 60))
        .collect();
    if !unknown.is_empty() {
        let prefixed = spec.operations.iter().any(|o| o.starts_with("kms:"));
        out.push(format!(
            "Operations {} are not grant operations: use only {}{}",
            unknown.join(", "),
            GRANT_OPERATIONS.join(", "),
            if prefixed {
                " (without the kms: prefix)"
            } else {
                ""
            }
        ));
    }
    let asymmetric = asymmetric_operations(&spec.operations);
    if !asymmetric.is_empty() {
        out.push(format!(
            "Operations {} exist only on asymmetric or HMAC keys and KMS refuses them on the \
             symmetric encryption keys S3 replication uses: remove them",
            asymmetric.join(", ")
        ));
    }
    if spec.constraints.has_encryption_context() && !asymmetric.is_empty() {
        out.push(format!(
            "encryption-context constraints apply only to operations that take an encryption \
             context, and {} do not: remove those operations or the constraint",
            asymmetric.join(", ")
        ));
    }
}

fn asymmetric_operations(operations: &BTreeSet<String>) -> Vec<&str> {
    operations
        .iter()
        .map(String::as_str)
        .filter(|o| ASYMMETRIC_OR_HMAC_OPERATIONS.contains(o))
        .collect()
}

fn constraint_refusals(constraints: &GrantConstraints, out: &mut Vec<String>) {
    for (field, map) in [
        (
            "EncryptionContextSubset",
            &constraints.encryption_context_subset,
        ),
        (
            "EncryptionContextEquals",
            &constraints.encryption_context_equals,
        ),
    ] {
        if map.len() > MAX_CONTEXT_PAIRS {
            out.push(format!(
                "Constraints.{field} has {} pairs: keep at most {MAX_CONTEXT_PAIRS}",
                map.len()
            ));
        }
        for (key, value) in map {
            let chars = value.chars().count();
            if chars > MAX_CONTEXT_VALUE_CHARS {
                out.push(format!(
                    "Constraints.{field} value of {} has {chars} characters: shorten it to at \
                     most {MAX_CONTEXT_VALUE_CHARS}",
                    text::quoted(key, 60)
                ));
            }
        }
    }
    if let Some(source) = &constraints.source_arn {
        if Arn::parse(source).is_err() || source.trim() != source {
            out.push(format!(
                "Constraints.SourceArn {} is not an ARN: name the resource the service acts for \
                 by its ARN",
                text::quoted(source, 120)
            ));
        }
    }
}

/// ListGrants' `Limit` may be 1 to 100; KMS serves 50 without it.
pub const MAX_GRANTS_PER_PAGE: i32 = 100;

/// Every grant of the key, all pages.
pub async fn list_grants(
    client: &Client,
    key_arn: &str,
) -> Result<Vec<ExistingGrant>, GuardrailError> {
    // The largest page KMS serves (default 50): fewer requests against the shared quota.
    let mut pages = client
        .list_grants()
        .key_id(key_arn)
        .limit(MAX_GRANTS_PER_PAGE)
        .into_paginator()
        .send();
    let mut grants = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| GuardrailError::aws("ListGrants", key_arn, e))?;
        grants.extend(page.grants().iter().map(ExistingGrant::from_entry));
    }
    Ok(grants)
}

/// The grant writes. Each names the key by ARN; errors name the operation and the key.
pub mod write {
    use super::*;
    use crate::aws::kms::KeyInfo;
    use crate::base::error::AwsErrorKind;
    use crate::config::ConfigError;

    /// CreateGrant with `spec`, returning the grant id. A spec KMS would refuse is not sent
    /// (a configuration error listing the reasons).
    ///
    /// Name is always sent: "When this value is present, you can retry a CreateGrant request
    /// with identical parameters; if the grant already exists, the original GrantId is
    /// returned without creating a new grant." (CreateGrant API reference), so the SDK's
    /// retries and a retried invocation never create a duplicate.
    pub async fn create_grant(
        client: &Client,
        key: &KeyInfo,
        spec: &GrantSpec,
    ) -> Result<String, GuardrailError> {
        let refusals = kms_refusals(spec);
        if !refusals.is_empty() {
            return Err(GuardrailError::Configuration(ConfigError {
                problems: refusals
                    .into_iter()
                    .map(|r| format!("grant {}: {r}", text::quoted(&spec.name, 120)))
                    .collect(),
            }));
        }
        let mut request = client
            .create_grant()
            .key_id(key.arn.as_str())
            .name(&spec.name)
            .set_operations(Some(
                spec.operations
                    .iter()
                    .map(|o| GrantOperation::from(o.as_str()))
                    .collect(),
            ))
            .set_constraints(spec.constraints.to_sdk());
        request = match &spec.grantee {
            Grantee::Principal(p) => request.grantee_principal(p),
            Grantee::Service(s) => request.grantee_service_principal(s),
        };
        request = match &spec.retiring {
            Some(Grantee::Principal(p)) => request.retiring_principal(p),
            Some(Grantee::Service(s)) => request.retiring_service_principal(s),
            None => request,
        };
        let out = request
            .send()
            .await
            .map_err(|e| GuardrailError::aws("CreateGrant", key.arn.as_str(), e))?;
        match out.grant_id() {
            Some(id) if !id.is_empty() => Ok(id.to_string()),
            // Retrying is safe (same Name) and the next answer should carry the id.
            _ => Err(GuardrailError::Aws {
                operation: "CreateGrant",
                key: text::value(key.arn.as_str()),
                kind: AwsErrorKind::ServerError,
                code: "MissingGrantId".to_string(),
                message: "KMS answered without a GrantId".to_string(),
            }),
        }
    }

    pub async fn revoke_grant(
        client: &Client,
        key: &KeyInfo,
        grant_id: &str,
    ) -> Result<(), GuardrailError> {
        client
            .revoke_grant()
            .key_id(key.arn.as_str())
            .grant_id(grant_id)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| GuardrailError::aws("RevokeGrant", key.arn.as_str(), e))
    }
}

#[cfg(test)]
mod tests;
