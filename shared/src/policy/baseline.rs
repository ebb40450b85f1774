//! The desired key policy: built from typed inputs that mirror the Terraform KMS modules
//! (`kms_root_access`, `enable_kms_admin_role`, `kms_services`, `additional_principals`), or a
//! complete document supplied by the operator.

use serde_json::{json, Value};

use crate::policy::model::Policy;

/// Inputs with the meaning of the Terraform module variables of the same name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BaselineParts {
    /// `kms_root_access`: the account root gets `kms:*` (and so IAM policies apply).
    pub root_access: bool,
    /// `enable_kms_admin_role`: roles that administer the key, `kms:PutKeyPolicy` included.
    pub admin_role_arns: Vec<String>,
    /// Principals that use the key for cryptographic operations.
    pub key_user_arns: Vec<String>,
    /// `kms_services`: e.g. `logs.eu-west-1.amazonaws.com`, `s3.amazonaws.com`.
    pub service_principals: Vec<String>,
    /// `additional_principals`: extra IAM principals allowed to use the key.
    pub additional_principals: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BaselineSource {
    Parts(BaselineParts),
    /// A complete policy; `${AccountId}`, `${Region}` and `${Partition}` are substituted per key.
    Document(String),
}

/// The baseline for one key: the exact text written by PutKeyPolicy and its parsed form.
#[derive(Clone, Debug)]
pub struct Baseline {
    pub document: String,
    pub policy: Policy,
}

/// The key administrator actions of the AWS default key policy; they include `kms:PutKeyPolicy`.
/// `kms:ReplicateKey` is the one AWS adds for multi-Region keys (`kms:UpdatePrimaryRegion`, the
/// other, is in `kms:Update*`): the Terraform module creates multi-Region keys and replicates them
/// as its admin role, and the action is inert on a single-Region key.
const ADMIN_ACTIONS: &[&str] = &[
    "kms:Create*",
    "kms:Describe*",
    "kms:Enable*",
    "kms:List*",
    "kms:Put*",
    "kms:Update*",
    "kms:Revoke*",
    "kms:Disable*",
    "kms:Get*",
    "kms:Delete*",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:ScheduleKeyDeletion",
    "kms:CancelKeyDeletion",
    "kms:RotateKeyOnDemand",
    "kms:ReplicateKey",
];

const USAGE_ACTIONS: &[&str] = &[
    "kms:Encrypt",
    "kms:Decrypt",
    "kms:ReEncrypt*",
    "kms:GenerateDataKey*",
    "kms:DescribeKey",
];

const GRANT_ACTIONS: &[&str] = &["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"];

fn grant_for_aws_resource() -> Value {
    json!({"Bool": {"kms:GrantIsForAWSResource": "true"}})
}

/// Statement names follow the Terraform module so operators recognise them in diffs.
fn service_statements(service: &str, account: &str, region: &str, partition: &str) -> Vec<Value> {
    let short = service.split('.').next().unwrap_or(service);
    match short {
        "logs" => vec![json!({
            "Sid": "AllowCloudWatchLogs",
            "Effect": "Allow",
            // CloudWatch Logs uses a key only from its own Region's principal, and the condition
            // below names the key's Region: `logs.amazonaws.com` or another Region's principal
            // would leave the statement unusable.
            "Principal": {"Service": format!("logs.{region}.amazonaws.com")},
            "Action": ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
            "Resource": "*",
            "Condition": {"ArnLike": {
                "kms:EncryptionContext:aws:logs:arn": format!("arn:{partition}:logs:{region}:{account}:*")
            }}
        })],
        "autoscaling" => {
            let role = format!(
                "arn:{partition}:iam::{account}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"
            );
            vec![
                json!({
                    "Sid": "AllowAutoScalingServiceRoleUsage",
                    "Effect": "Allow",
                    "Principal": {"AWS": role},
                    "Action": USAGE_ACTIONS,
                    "Resource": "*"
                }),
                json!({
                    "Sid": "AllowAutoScalingServiceRoleCreateGrant",
                    "Effect": "Allow",
                    "Principal": {"AWS": role},
                    "Action": "kms:CreateGrant",
                    "Resource": "*",
                    "Condition": grant_for_aws_resource()
                }),
            ]
        }
        "ec2" => vec![json!({
            "Sid": "AllowEC2LaunchGrant",
            "Effect": "Allow",
            // Any principal of this account, only through EC2 (the AWS-managed EBS key pattern),
            // so the statement needs no root principal when root access is off.
            "Principal": {"AWS": "*"},
            "Action": "kms:CreateGrant",
            "Resource": "*",
            "Condition": {
                "StringEquals": {"kms:ViaService": format!("ec2.{region}.amazonaws.com"), "kms:CallerAccount": account},
                "Bool": {"kms:GrantIsForAWSResource": "true"}
            }
        })],
        _ => {
            let mut name: Vec<char> = short.chars().filter(char::is_ascii_alphanumeric).collect();
            if let Some(first) = name.first_mut() {
                first.make_ascii_uppercase();
            }
            vec![json!({
                "Sid": format!("Allow{}Service", name.into_iter().collect::<String>()),
                "Effect": "Allow",
                "Principal": {"Service": service},
                "Action": USAGE_ACTIONS,
                "Resource": "*",
                // Confused-deputy protection: only on behalf of this account.
                "Condition": {"StringEquals": {"aws:SourceAccount": account}}
            })]
        }
    }
}

impl BaselineParts {
    pub fn to_value(&self, account: &str, region: &str, partition: &str) -> Value {
        let mut statements = Vec::new();
        if self.root_access {
            statements.push(json!({
                "Sid": "EnableRootAccess",
                "Effect": "Allow",
                "Principal": {"AWS": format!("arn:{partition}:iam::{account}:root")},
                "Action": "kms:*",
                "Resource": "*"
            }));
        }
        if !self.admin_role_arns.is_empty() {
            statements.push(json!({
                "Sid": "AllowKmsAdminRole",
                "Effect": "Allow",
                "Principal": {"AWS": self.admin_role_arns},
                "Action": ADMIN_ACTIONS,
                "Resource": "*"
            }));
        }
        if !self.key_user_arns.is_empty() {
            statements.push(json!({
                "Sid": "AllowKeyUsers",
                "Effect": "Allow",
                "Principal": {"AWS": self.key_user_arns},
                "Action": USAGE_ACTIONS,
                "Resource": "*"
            }));
            statements.push(json!({
                "Sid": "AllowKeyUsersGrantsForAwsResources",
                "Effect": "Allow",
                "Principal": {"AWS": self.key_user_arns},
                "Action": GRANT_ACTIONS,
                "Resource": "*",
                "Condition": grant_for_aws_resource()
            }));
        }
        for service in &self.service_principals {
            for statement in service_statements(service, account, region, partition) {
                // A service listed twice (or logs principals of several Regions) writes one statement.
                if !statements.contains(&statement) {
                    statements.push(statement);
                }
            }
        }
        if !self.additional_principals.is_empty() {
            statements.push(json!({
                "Sid": "AllowAdditionalPrincipals",
                "Effect": "Allow",
                "Principal": {"AWS": self.additional_principals},
                "Action": USAGE_ACTIONS,
                "Resource": "*"
            }));
        }
        json!({"Version": "2012-10-17", "Id": "kms-guardrails-baseline", "Statement": statements})
    }
}

/// The baseline for a key in `region` of `account`.
pub fn render(
    source: &BaselineSource,
    account: &str,
    region: &str,
    partition: &str,
) -> Result<Baseline, String> {
    let document = match source {
        BaselineSource::Parts(parts) => {
            serde_json::to_string_pretty(&parts.to_value(account, region, partition))
                .map_err(|e| format!("baseline policy could not be serialised: {e}"))?
        }
        BaselineSource::Document(text) => text
            .replace("${AccountId}", account)
            .replace("${Region}", region)
            .replace("${Partition}", partition),
    };
    let policy = Policy::parse(&document)
        .map_err(|e| format!("BASELINE_POLICY is not a valid key policy: {e}"))?;
    Ok(Baseline { document, policy })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts() -> BaselineParts {
        BaselineParts {
            root_access: true,
            admin_role_arns: vec!["arn:aws:iam::111122223333:role/kms-admin".into()],
            key_user_arns: vec!["arn:aws:iam::111122223333:role/app".into()],
            service_principals: vec![
                "logs.eu-west-1.amazonaws.com".into(),
                "autoscaling.amazonaws.com".into(),
                "ec2.amazonaws.com".into(),
                "s3.amazonaws.com".into(),
            ],
            additional_principals: vec!["arn:aws:iam::111122223333:role/vault-unseal".into()],
        }
    }

    #[test]
    fn parts_render_the_terraform_module_statements() {
        let b = render(
            &BaselineSource::Parts(parts()),
            "111122223333",
            "eu-west-1",
            "aws",
        )
        .unwrap();
        let sids: Vec<&str> = b
            .policy
            .statements
            .iter()
            .filter_map(|s| s.sid.as_deref())
            .collect();
        assert_eq!(
            sids,
            vec![
                "EnableRootAccess",
                "AllowKmsAdminRole",
                "AllowKeyUsers",
                "AllowKeyUsersGrantsForAwsResources",
                "AllowCloudWatchLogs",
                "AllowAutoScalingServiceRoleUsage",
                "AllowAutoScalingServiceRoleCreateGrant",
                "AllowEC2LaunchGrant",
                "AllowS3Service",
                "AllowAdditionalPrincipals",
            ]
        );
        assert!(b.document.contains("arn:aws:logs:eu-west-1:111122223333:*"));
        assert!(crate::policy::evaluate::lockout_problems(
            &b.policy,
            &[(
                "arn:aws:iam::111122223333:role/kms-admin",
                "kms:PutKeyPolicy"
            )],
            true
        )
        .is_empty());
    }

    #[test]
    fn root_off_keeps_the_admin_role_and_drops_root() {
        let p = BaselineParts {
            root_access: false,
            ..parts()
        };
        let b = render(
            &BaselineSource::Parts(p),
            "111122223333",
            "eu-west-1",
            "aws",
        )
        .unwrap();
        assert!(!b.document.contains(":root\""));
        assert!(crate::policy::evaluate::lockout_problems(
            &b.policy,
            &[(
                "arn:aws:iam::111122223333:role/kms-admin",
                "kms:PutKeyPolicy"
            )],
            true
        )
        .is_empty());
    }

    #[test]
    fn a_document_gets_placeholders_substituted() {
        let doc = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:${Partition}:iam::${AccountId}:root"},"Action":"kms:*","Resource":"*"}]}"#;
        let b = render(
            &BaselineSource::Document(doc.into()),
            "111122223333",
            "us-east-1",
            "aws",
        )
        .unwrap();
        assert!(b.document.contains("arn:aws:iam::111122223333:root"));
    }
}
