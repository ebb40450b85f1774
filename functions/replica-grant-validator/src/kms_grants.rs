//! KMS grants: what CreateGrant is given ([`GrantSpec`]), what ListGrants returns
//! ([`ExistingGrant`]), the rules KMS enforces on a new grant ([`kms_refusals`]), and the
//! reads and writes, with errors that name the operation and the key.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use aws_sdk_kms::types::{GrantConstraints as SdkConstraints, GrantListEntry, GrantOperation};
use aws_sdk_kms::Client;
use serde::Serialize;

use shared::base::arn::is_account_id;
use shared::base::arn::Arn;
use shared::base::error::GuardrailError;
use shared::base::text;

/// Who a grant is for, or who may retire it: an AWS principal (`GranteePrincipal`,
/// `RetiringPrincipal`) or a service principal (`GranteeServicePrincipal`,
/// `RetiringServicePrincipal`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
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
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
    existing.name.as_deref() == Some(spec.name.as_str())
        && existing
            .grantee
            .as_ref()
            .is_some_and(|g| g.same_as(&spec.grantee))
        && existing.operations == spec.operations
        && same_optional(existing.retiring.as_ref(), spec.retiring.as_ref())
        && existing.constraints == spec.constraints
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
    use shared::aws::kms::KeyInfo;
    use shared::base::error::AwsErrorKind;
    use shared::config::ConfigError;

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
mod tests {
    use super::*;

    const ROLE: &str = "arn:aws:iam::111122223333:role/s3-replication";

    fn ops(list: &[&str]) -> BTreeSet<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    /// The grant a replication setup needs: the replication role may encrypt.
    fn role_grant() -> GrantSpec {
        GrantSpec {
            name: "s3-replication".into(),
            grantee: Grantee::Principal(ROLE.into()),
            operations: ops(&["Encrypt", "GenerateDataKey"]),
            retiring: Some(Grantee::Principal(
                "arn:aws:iam::111122223333:role/kms-admin".into(),
            )),
            constraints: GrantConstraints::default(),
        }
    }

    fn refused(spec: &GrantSpec, needle: &str) {
        let reasons = kms_refusals(spec);
        assert!(
            reasons.iter().any(|r| r.contains(needle)),
            "expected a refusal containing {needle:?}, got {reasons:?}"
        );
    }

    #[test]
    fn the_reference_grant_to_a_role_is_accepted() {
        assert_eq!(kms_refusals(&role_grant()), Vec::<String>::new());
        for principal in [
            "111122223333",
            "arn:aws:iam::111122223333:root",
            "arn:aws:iam::111122223333:user/ops/alice",
            "arn:aws:iam::111122223333:role/path/to/replication",
            "arn:aws:sts::111122223333:assumed-role/replication/session-1",
            "arn:aws:sts::111122223333:federated-user/bob",
            "arn:aws-us-gov:iam::111122223333:role/replication",
        ] {
            let spec = GrantSpec {
                grantee: Grantee::Principal(principal.into()),
                ..role_grant()
            };
            assert_eq!(kms_refusals(&spec), Vec::<String>::new(), "{principal}");
        }
    }

    #[test]
    fn names_kms_refuses() {
        refused(
            &GrantSpec {
                name: String::new(),
                ..role_grant()
            },
            "Name is empty",
        );
        refused(
            &GrantSpec {
                name: "a".repeat(257),
                ..role_grant()
            },
            "257 characters",
        );
        refused(
            &GrantSpec {
                name: "s3 replication!".into(),
                ..role_grant()
            },
            "\" !\"",
        );
        let max = GrantSpec {
            name: "a:/_-".repeat(51) + "z",
            ..role_grant()
        };
        assert_eq!(kms_refusals(&max), Vec::<String>::new());
    }

    #[test]
    fn the_s3_service_as_grantee_principal_is_refused_with_the_replication_role_as_the_fix() {
        let spec = GrantSpec {
            grantee: Grantee::Principal("s3.amazonaws.com".into()),
            ..role_grant()
        };
        let reasons = kms_refusals(&spec);
        assert_eq!(reasons.len(), 1, "{reasons:?}");
        assert!(reasons[0].contains("GranteeServicePrincipal"));
        assert!(reasons[0].contains("SourceArn"));
        assert!(reasons[0].contains("RetiringPrincipal"));
        assert!(reasons[0].contains("replication role's ARN"));
    }

    #[test]
    fn grantee_principals_that_are_not_aws_principals_are_refused() {
        for principal in [
            "",
            "*",
            "arn:aws:iam::111122223333:role/*",
            "arn:aws:iam::111122223333:group/admins",
            "arn:aws:s3:::bucket",
            "arn:aws:iam::11112222333:role/short-account",
            "arn:aws:sts::111122223333:assumed-role/no-session",
            "arn:aws:iam::111122223333:role/",
            " arn:aws:iam::111122223333:role/padded",
        ] {
            refused(
                &GrantSpec {
                    grantee: Grantee::Principal(principal.into()),
                    ..role_grant()
                },
                "is not an AWS principal",
            );
        }
    }

    #[test]
    fn a_service_principal_needs_a_source_arn_and_a_retiring_principal() {
        let bare = GrantSpec {
            grantee: Grantee::Service("s3.amazonaws.com".into()),
            retiring: None,
            ..role_grant()
        };
        refused(&bare, "needs a SourceArn constraint");
        refused(
            &bare,
            "needs a RetiringPrincipal or RetiringServicePrincipal",
        );
        let complete = GrantSpec {
            retiring: Some(Grantee::Service("s3.amazonaws.com".into())),
            constraints: GrantConstraints {
                source_arn: Some("arn:aws:s3:::destination-bucket".into()),
                ..GrantConstraints::default()
            },
            ..bare.clone()
        };
        assert_eq!(kms_refusals(&complete), Vec::<String>::new());
        refused(
            &GrantSpec {
                grantee: Grantee::Service(ROLE.into()),
                ..complete.clone()
            },
            "GranteeServicePrincipal \"arn:aws:iam",
        );
        refused(
            &GrantSpec {
                constraints: GrantConstraints {
                    source_arn: Some("destination-bucket".into()),
                    ..GrantConstraints::default()
                },
                ..complete
            },
            "SourceArn \"destination-bucket\" is not an ARN",
        );
    }

    #[test]
    fn retiring_principals_are_checked_like_grantees() {
        refused(
            &GrantSpec {
                retiring: Some(Grantee::Principal("s3.amazonaws.com".into())),
                ..role_grant()
            },
            "RetiringServicePrincipal",
        );
        refused(
            &GrantSpec {
                retiring: Some(Grantee::Service("not a service".into())),
                ..role_grant()
            },
            "RetiringServicePrincipal \"not a service\" is not a service principal",
        );
    }

    #[test]
    fn operations_must_be_grant_operations_of_a_symmetric_key() {
        refused(
            &GrantSpec {
                operations: BTreeSet::new(),
                ..role_grant()
            },
            "allows no Operations",
        );
        refused(
            &GrantSpec {
                operations: ops(&["Encrypt", "kms:Decrypt", "PutKeyPolicy"]),
                ..role_grant()
            },
            "\"PutKeyPolicy\", \"kms:Decrypt\" are not grant operations",
        );
        refused(
            &GrantSpec {
                operations: ops(&["kms:Encrypt"]),
                ..role_grant()
            },
            "(without the kms: prefix)",
        );
        for op in ASYMMETRIC_OR_HMAC_OPERATIONS {
            refused(
                &GrantSpec {
                    operations: ops(&["Encrypt", op]),
                    ..role_grant()
                },
                "only on asymmetric or HMAC keys",
            );
        }
        let every_symmetric: Vec<&str> = GRANT_OPERATIONS
            .iter()
            .copied()
            .filter(|o| !ASYMMETRIC_OR_HMAC_OPERATIONS.contains(o))
            .collect();
        let spec = GrantSpec {
            operations: ops(&every_symmetric),
            ..role_grant()
        };
        assert_eq!(kms_refusals(&spec), Vec::<String>::new());
    }

    #[test]
    fn encryption_context_constraints_follow_kms_limits() {
        let context = |n: usize, len: usize| -> BTreeMap<String, String> {
            (0..n).map(|i| (format!("k{i}"), "v".repeat(len))).collect()
        };
        // DescribeKey, RetireGrant and CreateGrant may sit beside an encryption-context
        // constraint; the constraint simply does not apply to them.
        let ok = GrantSpec {
            operations: ops(&[
                "Encrypt",
                "GenerateDataKey",
                "DescribeKey",
                "RetireGrant",
                "CreateGrant",
            ]),
            constraints: GrantConstraints {
                encryption_context_subset: context(8, 384),
                encryption_context_equals: context(1, 1),
                source_arn: None,
            },
            ..role_grant()
        };
        assert_eq!(kms_refusals(&ok), Vec::<String>::new());
        refused(
            &GrantSpec {
                constraints: GrantConstraints {
                    encryption_context_subset: context(9, 1),
                    ..GrantConstraints::default()
                },
                ..role_grant()
            },
            "EncryptionContextSubset has 9 pairs",
        );
        refused(
            &GrantSpec {
                constraints: GrantConstraints {
                    encryption_context_equals: context(1, 385),
                    ..GrantConstraints::default()
                },
                ..role_grant()
            },
            "EncryptionContextEquals value of \"k0\" has 385 characters",
        );
        refused(
            &GrantSpec {
                operations: ops(&["Sign", "DescribeKey"]),
                constraints: GrantConstraints {
                    encryption_context_equals: context(1, 1),
                    ..GrantConstraints::default()
                },
                ..role_grant()
            },
            "encryption-context constraints apply only to operations that take an encryption context, and Sign",
        );
    }

    #[test]
    fn refusals_show_input_escaped_and_bounded() {
        let spec = GrantSpec {
            grantee: Grantee::Principal(format!("evil\nChanged by: root{}", "x".repeat(500))),
            ..role_grant()
        };
        let reasons = kms_refusals(&spec);
        assert!(reasons.iter().all(|r| !r.contains('\n') && r.len() < 600));
    }

    #[test]
    fn from_entry_reads_every_field_and_treats_an_empty_name_as_none() {
        let entry = GrantListEntry::builder()
            .grant_id("g-1")
            .name("")
            .grantee_principal(ROLE)
            .retiring_principal("arn:aws:iam::111122223333:role/kms-admin")
            .operations(GrantOperation::Encrypt)
            .operations(GrantOperation::GenerateDataKey)
            .issuing_account("arn:aws:iam::111122223333:root")
            .constraints(
                SdkConstraints::builder()
                    .encryption_context_subset("bucket", "destination")
                    .build(),
            )
            .build();
        let grant = ExistingGrant::from_entry(&entry);
        assert_eq!(
            grant,
            ExistingGrant {
                grant_id: "g-1".into(),
                name: None,
                grantee: Some(Grantee::Principal(ROLE.into())),
                retiring: Some(Grantee::Principal(
                    "arn:aws:iam::111122223333:role/kms-admin".into()
                )),
                operations: ops(&["Encrypt", "GenerateDataKey"]),
                constraints: GrantConstraints {
                    encryption_context_subset: BTreeMap::from([(
                        "bucket".to_string(),
                        "destination".to_string()
                    )]),
                    ..GrantConstraints::default()
                },
                issuing_account: Some("arn:aws:iam::111122223333:root".into()),
            }
        );

        let service = GrantListEntry::builder()
            .grant_id("g-2")
            .name("s3")
            .grantee_service_principal("s3.amazonaws.com")
            .retiring_service_principal("s3.amazonaws.com")
            .operations(GrantOperation::Decrypt)
            .constraints(
                SdkConstraints::builder()
                    .source_arn("arn:aws:s3:::bucket")
                    .build(),
            )
            .build();
        let grant = ExistingGrant::from_entry(&service);
        assert_eq!(grant.name.as_deref(), Some("s3"));
        assert_eq!(
            grant.grantee,
            Some(Grantee::Service("s3.amazonaws.com".into()))
        );
        assert_eq!(
            grant.retiring,
            Some(Grantee::Service("s3.amazonaws.com".into()))
        );
        assert_eq!(
            grant.constraints.source_arn.as_deref(),
            Some("arn:aws:s3:::bucket")
        );
        assert_eq!(grant.issuing_account, None);

        let bare = ExistingGrant::from_entry(&GrantListEntry::builder().grant_id("g-3").build());
        assert_eq!(bare.name, None);
        assert_eq!(bare.grantee, None);
        assert!(bare.operations.is_empty() && bare.constraints.is_empty());
    }

    fn existing_from(spec: &GrantSpec, id: &str) -> ExistingGrant {
        ExistingGrant {
            grant_id: id.into(),
            name: Some(spec.name.clone()),
            grantee: Some(spec.grantee.clone()),
            retiring: spec.retiring.clone(),
            operations: spec.operations.clone(),
            constraints: spec.constraints.clone(),
            issuing_account: None,
        }
    }

    #[test]
    fn matches_needs_every_field_equal() {
        let spec = role_grant();
        let same = existing_from(&spec, "g");
        assert!(matches(&spec, &same));
        let root = GrantSpec {
            grantee: Grantee::Principal("111122223333".into()),
            ..spec.clone()
        };
        let as_root_arn = ExistingGrant {
            grantee: Some(Grantee::Principal("arn:aws:iam::111122223333:root".into())),
            ..existing_from(&root, "g")
        };
        assert!(matches(&root, &as_root_arn), "account id and root ARN");
        for differs in [
            ExistingGrant {
                name: None,
                ..same.clone()
            },
            ExistingGrant {
                grantee: Some(Grantee::Service(ROLE.into())),
                ..same.clone()
            },
            ExistingGrant {
                operations: ops(&["Encrypt"]),
                ..same.clone()
            },
            ExistingGrant {
                retiring: None,
                ..same.clone()
            },
            ExistingGrant {
                constraints: GrantConstraints {
                    source_arn: Some("arn:aws:s3:::b".into()),
                    ..GrantConstraints::default()
                },
                ..same.clone()
            },
        ] {
            assert!(!matches(&spec, &differs), "{differs:?}");
        }
    }

    mod io {
        //! The real SDK client with mocked answers and the production retry policy.

        use super::*;
        use aws_sdk_kms::operation::create_grant::{CreateGrantError, CreateGrantOutput};
        use aws_sdk_kms::operation::list_grants::ListGrantsOutput;
        use aws_smithy_mocks::{mock, mock_client, RuleMode};
        use aws_smithy_runtime_api::box_error::BoxError;
        use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
        use aws_smithy_runtime_api::client::interceptors::Intercept;
        use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
        use aws_smithy_types::config_bag::ConfigBag;
        use aws_smithy_types::error::ErrorMetadata;
        use shared::aws::kms::KeyInfo;
        use std::sync::{Arc, Mutex};
        use std::time::Duration;

        const KEY_ARN: &str =
            "arn:aws:kms:us-west-2:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab";

        fn key() -> KeyInfo {
            KeyInfo::unreadable(KEY_ARN, "us-west-2", "111122223333")
        }

        fn error(code: &str, message: &str) -> ErrorMetadata {
            ErrorMetadata::builder().code(code).message(message).build()
        }

        /// Every request body sent, retries included.
        #[derive(Debug, Clone, Default)]
        struct Sent(Arc<Mutex<Vec<serde_json::Value>>>);

        impl Sent {
            fn bodies(&self) -> Vec<serde_json::Value> {
                self.0.lock().unwrap().clone()
            }
        }

        impl Intercept for Sent {
            fn name(&self) -> &'static str {
                "Sent"
            }

            fn read_before_transmit(
                &self,
                context: &BeforeTransmitInterceptorContextRef<'_>,
                _runtime_components: &RuntimeComponents,
                _cfg: &mut ConfigBag,
            ) -> Result<(), BoxError> {
                let body = context.request().body().bytes().unwrap_or_default();
                let json = serde_json::from_slice(body).unwrap_or(serde_json::Value::Null);
                self.0.lock().unwrap().push(json);
                Ok(())
            }
        }

        fn client(rules: &[&aws_smithy_mocks::Rule], sent: &Sent) -> Client {
            let retry = shared::aws::retry_config().with_initial_backoff(Duration::from_millis(1));
            let sent = sent.clone();
            mock_client!(aws_sdk_kms, RuleMode::MatchAny, rules, |b| b
                .retry_config(retry.clone())
                .interceptor(sent.clone()))
        }

        fn entry(id: &str) -> GrantListEntry {
            GrantListEntry::builder()
                .grant_id(id)
                .name(id)
                .grantee_principal(ROLE)
                .operations(GrantOperation::Encrypt)
                .build()
        }

        #[tokio::test]
        async fn list_grants_reads_every_page() {
            let pages = mock!(Client::list_grants)
                .sequence()
                .output(|| {
                    ListGrantsOutput::builder()
                        .grants(entry("g-1"))
                        .grants(entry("g-2"))
                        .next_marker("page-2")
                        .truncated(true)
                        .build()
                })
                .output(|| {
                    ListGrantsOutput::builder()
                        .grants(entry("g-3"))
                        .next_marker("page-3")
                        .truncated(true)
                        .build()
                })
                .output(|| {
                    ListGrantsOutput::builder()
                        .grants(entry("g-4"))
                        .truncated(false)
                        .build()
                })
                .build();
            let sent = Sent::default();
            let kms = client(&[&pages], &sent);

            let grants = list_grants(&kms, KEY_ARN).await.unwrap();

            let ids: Vec<&str> = grants.iter().map(|g| g.grant_id.as_str()).collect();
            assert_eq!(ids, ["g-1", "g-2", "g-3", "g-4"]);
            assert_eq!(pages.num_calls(), 3);
            assert_eq!(sent.bodies().len(), 3);
            let bodies = sent.bodies();
            assert_eq!(bodies[0]["KeyId"], KEY_ARN);
            assert!(bodies[0].get("Marker").is_none());
            assert_eq!(bodies[1]["Marker"], "page-2");
            assert_eq!(bodies[2]["Marker"], "page-3");
            // The largest page KMS serves, on every request.
            assert!(bodies.iter().all(|b| b["Limit"] == 100), "{bodies:?}");
        }

        #[tokio::test]
        async fn a_throttled_create_grant_is_retried_with_the_same_name_and_yields_one_grant() {
            let throttled_twice = mock!(Client::create_grant)
                .sequence()
                .error(|| CreateGrantError::generic(error("ThrottlingException", "Rate exceeded")))
                .times(2)
                .output(|| {
                    CreateGrantOutput::builder()
                        .grant_id("grant-1")
                        .grant_token("token")
                        .build()
                })
                .build();
            let sent = Sent::default();
            let kms = client(&[&throttled_twice], &sent);

            let id = write::create_grant(&kms, &key(), &role_grant())
                .await
                .unwrap();

            assert_eq!(id, "grant-1");
            let bodies = sent.bodies();
            assert_eq!(
                bodies.len(),
                3,
                "two throttled attempts and the one that worked"
            );
            for body in &bodies {
                assert_eq!(body["Name"], "s3-replication");
                assert_eq!(body["KeyId"], KEY_ARN);
                assert_eq!(body["GranteePrincipal"], ROLE);
                assert_eq!(
                    body["Operations"],
                    serde_json::json!(["Encrypt", "GenerateDataKey"])
                );
                assert!(body.get("Constraints").is_none());
            }
        }

        #[tokio::test]
        async fn access_denied_on_create_grant_is_permanent_and_names_the_call_and_the_key() {
            let denied = mock!(Client::create_grant).then_error(|| {
                CreateGrantError::generic(error(
                    "AccessDeniedException",
                    "User is not authorized to perform kms:CreateGrant",
                ))
            });
            let sent = Sent::default();
            let kms = client(&[&denied], &sent);

            let err = write::create_grant(&kms, &key(), &role_grant())
                .await
                .unwrap_err();

            assert!(err.is_access_denied());
            assert!(!err.is_retryable());
            assert_eq!(err.operation(), Some("CreateGrant"));
            assert!(err.to_string().contains(KEY_ARN), "{err}");
            assert_eq!(sent.bodies().len(), 1, "not retried");
        }

        #[tokio::test]
        async fn a_grant_kms_would_refuse_is_never_sent() {
            let create = mock!(Client::create_grant)
                .then_output(|| CreateGrantOutput::builder().grant_id("g").build());
            let sent = Sent::default();
            let kms = client(&[&create], &sent);
            let spec = GrantSpec {
                grantee: Grantee::Principal("s3.amazonaws.com".into()),
                ..role_grant()
            };

            let err = write::create_grant(&kms, &key(), &spec).await.unwrap_err();

            assert!(!err.is_retryable());
            assert!(err.to_string().contains("GranteeServicePrincipal"), "{err}");
            assert_eq!(create.num_calls(), 0);
        }

        #[tokio::test]
        async fn a_service_grant_carries_its_service_fields_and_constraints() {
            let create = mock!(Client::create_grant)
                .then_output(|| CreateGrantOutput::builder().grant_id("g-s").build());
            let revoke = mock!(Client::revoke_grant).then_output(|| {
                aws_sdk_kms::operation::revoke_grant::RevokeGrantOutput::builder().build()
            });
            let sent = Sent::default();
            let kms = client(&[&create, &revoke], &sent);
            let spec = GrantSpec {
                grantee: Grantee::Service("s3.amazonaws.com".into()),
                retiring: Some(Grantee::Service("s3.amazonaws.com".into())),
                constraints: GrantConstraints {
                    source_arn: Some("arn:aws:s3:::destination".into()),
                    ..GrantConstraints::default()
                },
                ..role_grant()
            };

            assert_eq!(
                write::create_grant(&kms, &key(), &spec).await.unwrap(),
                "g-s"
            );
            write::revoke_grant(&kms, &key(), "g-old").await.unwrap();

            let bodies = sent.bodies();
            assert_eq!(bodies[0]["GranteeServicePrincipal"], "s3.amazonaws.com");
            assert_eq!(bodies[0]["RetiringServicePrincipal"], "s3.amazonaws.com");
            assert!(bodies[0].get("GranteePrincipal").is_none());
            assert_eq!(
                bodies[0]["Constraints"],
                serde_json::json!({"SourceArn": "arn:aws:s3:::destination"})
            );
            assert_eq!(
                bodies[1],
                serde_json::json!({"KeyId": KEY_ARN, "GrantId": "g-old"})
            );
        }
    }
}
