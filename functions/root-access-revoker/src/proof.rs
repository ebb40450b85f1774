//! An optional second opinion before a write: IAM Access Analyzer's `CheckNoNewAccess`, asked
//! whether a reference policy ("each admin role may PutKeyPolicy and GetKeyPolicy") grants
//! anything the new key policy does not. `PASS` means the new policy already grants it.

use aws_sdk_accessanalyzer::types::{AccessCheckPolicyType, CheckNoNewAccessResult};
use serde_json::json;
use shared::GuardrailError;

/// The reference statement Access Analyzer compares the new key policy with.
pub fn reference_policy(admin_role_arns: &[String]) -> String {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "AdminKeepsControl",
            "Effect": "Allow",
            "Principal": {"AWS": admin_role_arns},
            "Action": ["kms:PutKeyPolicy", "kms:GetKeyPolicy"],
            "Resource": "*"
        }]
    })
    .to_string()
}

/// `None` when Access Analyzer proves the admins keep control under `new_policy`, else why not.
pub async fn admins_keep_control(
    client: &aws_sdk_accessanalyzer::Client,
    new_policy: &str,
    admin_role_arns: &[String],
) -> Result<Option<String>, GuardrailError> {
    let out = client
        .check_no_new_access()
        .new_policy_document(reference_policy(admin_role_arns))
        .existing_policy_document(new_policy)
        .policy_type(AccessCheckPolicyType::ResourcePolicy)
        .send()
        .await
        .map_err(|e| GuardrailError::aws("CheckNoNewAccess", "the new key policy", e))?;
    let message = shared::base::text::one_line(out.message().unwrap_or_default(), 300);
    Ok(match out.result() {
        Some(CheckNoNewAccessResult::Pass) => None,
        Some(CheckNoNewAccessResult::Fail) => Some(format!(
            "Access Analyzer found that the new policy does not grant the admin role(s) kms:PutKeyPolicy and kms:GetKeyPolicy: {message}"
        )),
        other => Some(format!(
            "Access Analyzer gave no proof (result {}): {message}",
            other.map_or("none", |r| r.as_str())
        )),
    })
}
