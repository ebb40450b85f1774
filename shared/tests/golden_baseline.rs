//! Golden tests: the baseline rendered from Terraform-style inputs against key policies written
//! out by hand from the reference modules our users run (`shared/reference/`) and the AWS
//! documentation they follow. Nothing here is rendered by the code under test: every expected
//! statement is a JSON literal.
//!
//! Two kinds of test per reference input:
//! - the rendered baseline is semantically equal to the hand-written expected policy, which is
//!   the module's policy with our deliberate differences applied (each one commented);
//! - the statement diff between the module's own policy and the baseline is exactly the list of
//!   deliberate differences: what a user sees the first time the guardrail meets a key that
//!   Terraform wrote.
//!
//! Account 111122223333, Region eu-west-1, partition aws throughout. The module statements are
//! transcribed from its `main.tf` (the full module's revision with `kms_root_access`,
//! `enable_kms_admin_role` and the Auto Scaling and EC2 statements its README documents; the
//! `AllowAdditionalPrincipals` statement from the revisions that have it), with `name_prefix` and
//! `environment` both `dev`.

use serde_json::{json, Value};
use shared::policy::baseline::{render, BaselineParts, BaselineSource};
use shared::policy::model::Policy;

const ACCOUNT: &str = "111122223333";
const REGION: &str = "eu-west-1";
const PARTITION: &str = "aws";

/// `aws_kms_key.general_encryption_key.arn` of the basic module (a single-Region key).
const BASIC_KEY_ARN: &str =
    "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
/// The same for the full module, whose key is multi-Region (`multi_region = true`).
const FULL_KEY_ARN: &str =
    "arn:aws:kms:eu-west-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab";
/// `${name_prefix}-kms-admin-role-${environment}`, created by `enable_kms_admin_role = true`.
const ADMIN_ROLE: &str = "arn:aws:iam::111122223333:role/dev-kms-admin-role-dev";
/// `additional_principals` of the basic module's usage example.
const EXAMPLE_ROLE: &str = "arn:aws:iam::111122223333:role/example-role";
const ANOTHER_ROLE: &str = "arn:aws:iam::111122223333:role/another-role";
const AUTOSCALING_ROLE: &str = "arn:aws:iam::111122223333:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling";
/// The IRSA role of the Vault auto-unseal design (`vault-kms-role`).
const VAULT_ROLE: &str = "arn:aws:iam::111122223333:role/vault-kms-role";

fn rendered_in(parts: BaselineParts, region: &str) -> Policy {
    render(&BaselineSource::Parts(parts), ACCOUNT, region, PARTITION)
        .expect("the baseline renders")
        .policy
}

fn rendered(parts: BaselineParts) -> Policy {
    rendered_in(parts, REGION)
}

fn rendered_document(parts: BaselineParts) -> Value {
    let baseline = render(&BaselineSource::Parts(parts), ACCOUNT, REGION, PARTITION)
        .expect("the baseline renders");
    serde_json::from_str(&baseline.document).expect("the baseline document is JSON")
}

fn policy(value: Value) -> Policy {
    Policy::parse(&value.to_string()).expect("the hand-written policy parses")
}

/// The rendered baseline grants exactly what the hand-written policy grants.
fn assert_same(rendered: &Policy, expected: &Policy) {
    assert!(
        rendered.semantically_equal(expected),
        "the rendered baseline differs from the hand-written one (- expected only, + rendered only):\n{}",
        rendered.diff_against(expected)
    );
}

/// The statement diff between a module-written key and the baseline is exactly `expected`.
fn assert_differences(rendered: &Policy, module: &Policy, expected: &[&str]) {
    let diff = rendered.diff_against(module).to_string();
    let lines: Vec<&str> = diff.lines().collect();
    assert_eq!(
        lines, expected,
        "undocumented difference from the module (- module only, + baseline only):\n{diff}"
    );
}

/// The AWS default key policy's key-user actions; `kms:ReEncrypt*` is `kms:ReEncryptFrom` and
/// `kms:ReEncryptTo`, `kms:GenerateDataKey*` includes `kms:GenerateDataKeyWithoutPlaintext`.
fn key_user_actions() -> Value {
    json!([
        "kms:Encrypt",
        "kms:Decrypt",
        "kms:ReEncrypt*",
        "kms:GenerateDataKey*",
        "kms:DescribeKey"
    ])
}

/// The AWS default key policy's key-administrator statement, with the actions AWS adds for a
/// multi-Region key (`kms:UpdatePrimaryRegion` is already in `kms:Update*`).
fn key_administrator_statement(principal: &str) -> Value {
    json!({
        "Sid": "AllowKmsAdminRole",
        "Effect": "Allow",
        "Principal": {"AWS": [principal]},
        "Action": [
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
            "kms:ReplicateKey"
        ],
        "Resource": "*"
    })
}

/// The CloudWatch Logs guide's statement for a key in `region`.
fn cloudwatch_logs_statement(region: &str) -> Value {
    json!({
        "Sid": "AllowCloudWatchLogs",
        "Effect": "Allow",
        "Principal": {"Service": format!("logs.{region}.amazonaws.com")},
        "Action": [
            "kms:Encrypt*",
            "kms:Decrypt*",
            "kms:ReEncrypt*",
            "kms:GenerateDataKey*",
            "kms:Describe*"
        ],
        "Resource": "*",
        "Condition": {"ArnLike": {
            "kms:EncryptionContext:aws:logs:arn": format!("arn:aws:logs:{region}:111122223333:*")
        }}
    })
}

// ---------------------------------------------------------------------------------------------
// Basic module (terraform-kms-module-basic.md): root + CloudWatch Logs + additional_principals.
// ---------------------------------------------------------------------------------------------

/// The basic module's `aws_kms_key_policy`: no Sids, `Resource` is the key's own ARN, one
/// statement per additional principal.
fn basic_module_policy(additional_principals: &[&str]) -> Value {
    let actions = json!([
        "kms:Encrypt",
        "kms:Decrypt",
        "kms:ReEncryptFrom",
        "kms:ReEncryptTo",
        "kms:GenerateDataKey*",
        "kms:DescribeKey"
    ]);
    let mut statements = vec![
        json!({
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
            "Action": "kms:*",
            "Resource": BASIC_KEY_ARN
        }),
        json!({
            "Effect": "Allow",
            "Principal": {"Service": "logs.eu-west-1.amazonaws.com"},
            "Action": actions,
            "Resource": BASIC_KEY_ARN
        }),
    ];
    for principal in additional_principals {
        statements.push(json!({
            "Effect": "Allow",
            "Principal": {"AWS": principal},
            "Action": actions,
            "Resource": BASIC_KEY_ARN
        }));
    }
    json!({"Version": "2012-10-17", "Statement": statements})
}

fn basic_parts(additional_principals: &[&str]) -> BaselineParts {
    BaselineParts {
        root_access: true,
        service_principals: vec!["logs.eu-west-1.amazonaws.com".into()],
        additional_principals: additional_principals
            .iter()
            .map(|p| p.to_string())
            .collect(),
        ..BaselineParts::default()
    }
}

/// The basic module's defaults as the baseline keeps them.
fn basic_expected() -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [
            // As the module writes it but with Resource "*": in a key policy "*" is the key the
            // policy is attached to, and one baseline is written to many keys.
            {
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
                "Action": "kms:*",
                "Resource": "*"
            },
            // The CloudWatch Logs guide's statement instead of the module's: its wildcard
            // actions cover the module's six, and its encryption-context condition keeps the
            // key to this account's log groups, which the module's statement does not.
            cloudwatch_logs_statement("eu-west-1")
        ]
    })
}

#[test]
fn basic_module_defaults_give_root_access_and_cloudwatch_logs() {
    assert_same(&rendered(basic_parts(&[])), &policy(basic_expected()));
}

/// The basic module's statements carry no Sid, so each deliberate difference shows as a missing
/// module statement and an extra baseline statement.
const BASIC_MODULE_ROOT: &str = "- missing statement (no Sid): Allow AWS=arn:aws:iam::111122223333:root Action=kms:* Resource=arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
const BASIC_MODULE_LOGS: &str = "- missing statement (no Sid): Allow Service=logs.eu-west-1.amazonaws.com Action=kms:Encrypt, kms:Decrypt, kms:ReEncryptFrom, kms:ReEncryptTo, kms:GenerateDataKey*, kms:DescribeKey Resource=arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
const BASELINE_ROOT: &str = "+ extra statement \"EnableRootAccess\": Allow AWS=arn:aws:iam::111122223333:root Action=kms:* Resource=*";
const BASELINE_LOGS: &str = "+ extra statement \"AllowCloudWatchLogs\": Allow Service=logs.eu-west-1.amazonaws.com Action=kms:Encrypt*, kms:Decrypt*, kms:ReEncrypt*, kms:GenerateDataKey*, kms:Describe* Resource=* If ArnLike(kms:EncryptionContext:aws:logs:arn=arn:aws:logs:eu-west-1:111122223333:*)";

#[test]
fn basic_module_key_is_reported_only_for_the_documented_differences() {
    assert_differences(
        &rendered(basic_parts(&[])),
        &policy(basic_module_policy(&[])),
        &[
            // Root: only the Resource spelling differs (the key's ARN versus "*", the same key).
            BASIC_MODULE_ROOT,
            // Logs: the module's statement has no encryption-context condition.
            BASIC_MODULE_LOGS,
            BASELINE_ROOT,
            BASELINE_LOGS,
        ],
    );
}

#[test]
fn basic_module_additional_principals_get_the_modules_usage_actions() {
    let parts = basic_parts(&[EXAMPLE_ROLE, ANOTHER_ROLE]);
    let mut expected = basic_expected();
    expected["Statement"].as_array_mut().unwrap().push(
        // One statement for the list, as the full module writes it, instead of one per
        // principal; the AWS default key-user actions grant what the module's six do.
        json!({
            "Sid": "AllowAdditionalPrincipals",
            "Effect": "Allow",
            "Principal": {"AWS": [EXAMPLE_ROLE, ANOTHER_ROLE]},
            "Action": key_user_actions(),
            "Resource": "*"
        }),
    );
    assert_same(&rendered(parts.clone()), &policy(expected));
    assert_differences(
        &rendered(parts),
        &policy(basic_module_policy(&[EXAMPLE_ROLE, ANOTHER_ROLE])),
        &[
            BASIC_MODULE_ROOT,
            BASIC_MODULE_LOGS,
            // One module statement per principal, replaced by one statement for both.
            "- missing statement (no Sid): Allow AWS=arn:aws:iam::111122223333:role/example-role Action=kms:Encrypt, kms:Decrypt, kms:ReEncryptFrom, kms:ReEncryptTo, kms:GenerateDataKey*, kms:DescribeKey Resource=arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            "- missing statement (no Sid): Allow AWS=arn:aws:iam::111122223333:role/another-role Action=kms:Encrypt, kms:Decrypt, kms:ReEncryptFrom, kms:ReEncryptTo, kms:GenerateDataKey*, kms:DescribeKey Resource=arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            BASELINE_ROOT,
            BASELINE_LOGS,
            "+ extra statement \"AllowAdditionalPrincipals\": Allow AWS=arn:aws:iam::111122223333:role/example-role, arn:aws:iam::111122223333:role/another-role Action=kms:Encrypt, kms:Decrypt, kms:ReEncrypt*, kms:GenerateDataKey*, kms:DescribeKey Resource=*",
        ],
    );
}

// ---------------------------------------------------------------------------------------------
// Full module (terraform-kms-module-full.md): kms_root_access, enable_kms_admin_role, services,
// the Auto Scaling and EC2 launch statements, S3 replication, additional_principals.
// ---------------------------------------------------------------------------------------------

/// The full module's `aws_kms_key_policy` with `kms_root_access` as given, the admin role on,
/// default feature flags and one additional principal.
fn full_module_policy(root_access: bool) -> Value {
    let mut statements = Vec::new();
    if root_access {
        statements.push(json!({
            "Sid": "EnableIAMUserPermissions",
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
            "Action": "kms:*",
            "Resource": "*"
        }));
    }
    statements.extend([
        json!({
            "Sid": "EnableIAMPermissions",
            "Effect": "Allow",
            "Principal": {"AWS": "*"},
            "Action": "kms:*",
            "Resource": "*",
            "Condition": {"StringEquals": {"kms:CallerAccount": "111122223333"}}
        }),
        json!({
            "Sid": "AllowKMSAdminRoleKeyManagement",
            "Effect": "Allow",
            "Principal": {"AWS": ADMIN_ROLE},
            "Action": "kms:*",
            "Resource": "*"
        }),
        json!({
            "Sid": "AllowAWSServicesUsage",
            "Effect": "Allow",
            "Principal": {"Service": [
                "logs.amazonaws.com",
                "rds.amazonaws.com",
                "elasticache.amazonaws.com",
                "s3.amazonaws.com",
                "ssm.amazonaws.com",
                "ec2.amazonaws.com",
                "wafv2.amazonaws.com",
                "vpc-flow-logs.amazonaws.com",
                "secretsmanager.amazonaws.com",
                "cloudfront.amazonaws.com"
            ]},
            "Action": [
                "kms:Encrypt",
                "kms:Decrypt",
                "kms:ReEncryptFrom",
                "kms:ReEncryptTo",
                "kms:GenerateDataKey*",
                "kms:GenerateDataKeyWithoutPlaintext",
                "kms:DescribeKey",
                "kms:CreateGrant"
            ],
            "Resource": FULL_KEY_ARN
        }),
        json!({
            "Sid": "AllowEC2LaunchGrant",
            "Effect": "Allow",
            "Principal": {"Service": "ec2.amazonaws.com"},
            "Action": ["kms:CreateGrant"],
            "Resource": FULL_KEY_ARN,
            "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}}
        }),
        json!({
            "Sid": "AllowAutoScalingServiceRoleUsage",
            "Effect": "Allow",
            "Principal": {"AWS": AUTOSCALING_ROLE},
            "Action": [
                "kms:Encrypt",
                "kms:Decrypt",
                "kms:ReEncrypt*",
                "kms:GenerateDataKey*",
                "kms:DescribeKey"
            ],
            "Resource": "*"
        }),
        json!({
            "Sid": "AllowAutoScalingServiceRoleCreateGrant",
            "Effect": "Allow",
            "Principal": {"AWS": AUTOSCALING_ROLE},
            "Action": ["kms:CreateGrant"],
            "Resource": "*",
            "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}}
        }),
        json!({
            "Sid": "AllowS3ReplicationUsage",
            "Effect": "Allow",
            "Principal": {"Service": "s3.amazonaws.com"},
            "Action": [
                "kms:Encrypt",
                "kms:Decrypt",
                "kms:ReEncryptFrom",
                "kms:ReEncryptTo",
                "kms:GenerateDataKey",
                "kms:GenerateDataKeyWithoutPlaintext",
                "kms:DescribeKey"
            ],
            "Resource": FULL_KEY_ARN
        }),
        json!({
            "Sid": "AllowAdditionalPrincipals",
            "Effect": "Allow",
            "Principal": {"AWS": [EXAMPLE_ROLE]},
            "Action": [
                "kms:Encrypt",
                "kms:Decrypt",
                "kms:ReEncryptFrom",
                "kms:ReEncryptTo",
                "kms:GenerateDataKey*",
                "kms:GenerateDataKeyWithoutPlaintext",
                "kms:DescribeKey"
            ],
            "Resource": FULL_KEY_ARN
        }),
    ]);
    json!({"Version": "2012-10-17", "Id": "key-policy-1", "Statement": statements})
}

fn full_parts(root_access: bool) -> BaselineParts {
    BaselineParts {
        root_access,
        admin_role_arns: vec![ADMIN_ROLE.into()],
        key_user_arns: vec![],
        service_principals: vec![
            "logs.eu-west-1.amazonaws.com".into(),
            "s3.amazonaws.com".into(),
            "autoscaling.amazonaws.com".into(),
            "ec2.amazonaws.com".into(),
        ],
        additional_principals: vec![EXAMPLE_ROLE.into()],
    }
}

fn full_expected(root_access: bool) -> Value {
    let mut statements = Vec::new();
    if root_access {
        statements.push(json!({
            "Sid": "EnableIAMUserPermissions",
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
            "Action": "kms:*",
            "Resource": "*"
        }));
    }
    // "EnableIAMPermissions" is left out: "*" with only a kms:CallerAccount condition gives
    // every principal of the account kms:* on the key (PutKeyPolicy and ScheduleKeyDeletion
    // included) without any IAM policy, which undoes kms_root_access = false. Lockout is
    // prevented by refusing a baseline without a named kms:PutKeyPolicy principal instead.
    statements.extend([
        // The admin role gets the AWS default key-administrator actions, not kms:*:
        // administrators manage the key but do not use it (no Encrypt/Decrypt).
        key_administrator_statement(ADMIN_ROLE),
        // "AllowAWSServicesUsage" is replaced by one statement per service the user lists,
        // each in the form AWS documents for that service.
        cloudwatch_logs_statement("eu-west-1"),
        // S3 (module: "AllowS3ReplicationUsage" and a place in "AllowAWSServicesUsage"): the
        // same actions, only on behalf of this account (confused-deputy protection).
        json!({
            "Sid": "AllowS3Service",
            "Effect": "Allow",
            "Principal": {"Service": "s3.amazonaws.com"},
            "Action": key_user_actions(),
            "Resource": "*",
            "Condition": {"StringEquals": {"aws:SourceAccount": "111122223333"}}
        }),
        // Auto Scaling: exactly the module's two statements (and the Auto Scaling guide's).
        json!({
            "Sid": "AllowAutoScalingServiceRoleUsage",
            "Effect": "Allow",
            "Principal": {"AWS": AUTOSCALING_ROLE},
            "Action": [
                "kms:Encrypt",
                "kms:Decrypt",
                "kms:ReEncrypt*",
                "kms:GenerateDataKey*",
                "kms:DescribeKey"
            ],
            "Resource": "*"
        }),
        json!({
            "Sid": "AllowAutoScalingServiceRoleCreateGrant",
            "Effect": "Allow",
            "Principal": {"AWS": AUTOSCALING_ROLE},
            "Action": ["kms:CreateGrant"],
            "Resource": "*",
            "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}}
        }),
        // EC2 launch grant: EBS calls KMS as the launching principal through EC2, never as
        // ec2.amazonaws.com, so the grant goes to this account's principals via EC2 in this
        // Region (the aws/ebs key's pattern); it needs no root statement when root is off.
        json!({
            "Sid": "AllowEC2LaunchGrant",
            "Effect": "Allow",
            "Principal": {"AWS": "*"},
            "Action": "kms:CreateGrant",
            "Resource": "*",
            "Condition": {
                "StringEquals": {
                    "kms:ViaService": "ec2.eu-west-1.amazonaws.com",
                    "kms:CallerAccount": "111122223333"
                },
                "Bool": {"kms:GrantIsForAWSResource": "true"}
            }
        }),
        // The AWS default key-user actions: the same grant as the module's seven.
        json!({
            "Sid": "AllowAdditionalPrincipals",
            "Effect": "Allow",
            "Principal": {"AWS": [EXAMPLE_ROLE]},
            "Action": key_user_actions(),
            "Resource": "*"
        }),
    ]);
    json!({"Version": "2012-10-17", "Statement": statements})
}

/// What the guardrail reports on a key the full module wrote, root access on or off: the module
/// statements it drops or replaces (-) and the baseline statements that replace them (+).
const FULL_MODULE_DIFFERENCES: &[&str] = &[
    // Dropped: kms:* for every principal of the account, which undoes kms_root_access = false.
    "- missing statement \"EnableIAMPermissions\": Allow AWS=* Action=kms:* Resource=* If StringEquals(kms:CallerAccount=111122223333)",
    // Replaced by the AWS default key-administrator actions (no cryptographic use).
    "- missing statement \"AllowKMSAdminRoleKeyManagement\": Allow AWS=arn:aws:iam::111122223333:role/dev-kms-admin-role-dev Action=kms:* Resource=*",
    // Replaced by per-service statements with conditions: this one has none (any account's
    // resources), a regionless logs principal CloudWatch Logs does not use, and CreateGrant.
    "- missing statement \"AllowAWSServicesUsage\": Allow Service=logs.amazonaws.com, rds.amazonaws.com, elasticache.amazonaws.com, s3.amazonaws.com, ssm.amazonaws.com, ec2.amazonaws.com, wafv2.amazonaws.com, vpc-flow-logs.amazonaws.com, secretsmanager.amazonaws.com, cloudfront.amazonaws.com Action=kms:Encrypt, kms:Decrypt, kms:ReEncryptFrom, kms:ReEncryptTo, kms:GenerateDataKey*, kms:GenerateDataKeyWithoutPlaintext, kms:DescribeKey, kms:CreateGrant Resource=arn:aws:kms:eu-west-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab",
    // Replaced by "AllowS3Service": the same actions, only on behalf of this account.
    "- missing statement \"AllowS3ReplicationUsage\": Allow Service=s3.amazonaws.com Action=kms:Encrypt, kms:Decrypt, kms:ReEncryptFrom, kms:ReEncryptTo, kms:GenerateDataKey, kms:GenerateDataKeyWithoutPlaintext, kms:DescribeKey Resource=arn:aws:kms:eu-west-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab",
    "+ extra statement \"AllowKmsAdminRole\": Allow AWS=arn:aws:iam::111122223333:role/dev-kms-admin-role-dev Action=kms:Create*, kms:Describe*, kms:Enable*, kms:List*, kms:Put*, kms:Update*, kms:Revoke*, kms:Disable*, kms:Get*, kms:Delete*, kms:TagResource, kms:UntagResource, kms:ScheduleKeyDeletion, kms:CancelKeyDeletion, kms:RotateKeyOnDemand, kms:ReplicateKey Resource=*",
    "+ extra statement \"AllowCloudWatchLogs\": Allow Service=logs.eu-west-1.amazonaws.com Action=kms:Encrypt*, kms:Decrypt*, kms:ReEncrypt*, kms:GenerateDataKey*, kms:Describe* Resource=* If ArnLike(kms:EncryptionContext:aws:logs:arn=arn:aws:logs:eu-west-1:111122223333:*)",
    "+ extra statement \"AllowS3Service\": Allow Service=s3.amazonaws.com Action=kms:Encrypt, kms:Decrypt, kms:ReEncrypt*, kms:GenerateDataKey*, kms:DescribeKey Resource=* If StringEquals(aws:SourceAccount=111122223333)",
    // Same Sid, so shown field by field: EBS asks for the grant as the launching principal via
    // EC2, not as ec2.amazonaws.com.
    "~ changed statement \"AllowEC2LaunchGrant\":",
    "    + Principal.AWS: *",
    "    - Principal.Service: ec2.amazonaws.com",
    "    - Resource: arn:aws:kms:eu-west-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab",
    "    + Resource: *",
    "    + Condition.StringEquals.kms:calleraccount: 111122223333",
    "    + Condition.StringEquals.kms:viaservice: ec2.eu-west-1.amazonaws.com",
    // Same grant in the AWS default key-user spelling.
    "~ changed statement \"AllowAdditionalPrincipals\":",
    "    - Action: kms:GenerateDataKeyWithoutPlaintext",
    "    - Action: kms:ReEncryptFrom",
    "    - Action: kms:ReEncryptTo",
    "    + Action: kms:ReEncrypt*",
    "    - Resource: arn:aws:kms:eu-west-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab",
    "    + Resource: *",
];

#[test]
fn full_module_with_root_access_renders_the_reference_statements() {
    assert_same(&rendered(full_parts(true)), &policy(full_expected(true)));
}

#[test]
fn full_module_key_with_root_access_is_reported_only_for_the_documented_differences() {
    // The root statement ("EnableIAMUserPermissions") and both Auto Scaling statements are
    // the module's own, so they are not reported.
    assert_differences(
        &rendered(full_parts(true)),
        &policy(full_module_policy(true)),
        FULL_MODULE_DIFFERENCES,
    );
}

#[test]
fn full_module_without_root_access_keeps_the_admin_role_and_drops_root() {
    assert_same(&rendered(full_parts(false)), &policy(full_expected(false)));
}

#[test]
fn full_module_key_without_root_access_loses_the_account_wide_kms_star() {
    // With kms_root_access = false the module keeps "EnableIAMPermissions", so every principal
    // of the account still has kms:* on the key; the baseline leaves only the named admin role.
    assert_differences(
        &rendered(full_parts(false)),
        &policy(full_module_policy(false)),
        FULL_MODULE_DIFFERENCES,
    );
}

#[test]
fn admin_role_keeps_every_key_administrator_action_of_a_multi_region_key() {
    // The module's admin role has kms:*, and the module replicates its multi-Region key as
    // that role once root access is off: kms:ReplicateKey must stay (AWS adds it to the default
    // key-administrator statement of multi-Region keys).
    let parts = BaselineParts {
        root_access: false,
        admin_role_arns: vec![ADMIN_ROLE.into()],
        ..BaselineParts::default()
    };
    let expected = json!({
        "Version": "2012-10-17",
        "Statement": [key_administrator_statement(ADMIN_ROLE)]
    });
    assert_same(&rendered(parts), &policy(expected));
}

#[test]
fn statements_keep_the_sids_the_module_readme_tells_users_to_check() {
    // Sids are not compared semantically; the full module's README (troubleshooting item 11)
    // tells users to look for these three, and "AllowAdditionalPrincipals" is the module's too.
    let document = rendered_document(full_parts(true));
    let sids: Vec<&str> = document["Statement"]
        .as_array()
        .expect("a statement list")
        .iter()
        .filter_map(|s| s["Sid"].as_str())
        .collect();
    for sid in [
        "AllowAutoScalingServiceRoleUsage",
        "AllowAutoScalingServiceRoleCreateGrant",
        "AllowEC2LaunchGrant",
        "AllowAdditionalPrincipals",
    ] {
        assert!(sids.contains(&sid), "no statement {sid:?} in {sids:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// CloudWatch Logs across Regions.
// ---------------------------------------------------------------------------------------------

#[test]
fn cloudwatch_logs_statement_names_the_logs_principal_of_the_keys_region() {
    // The basic module writes logs.${aws_region}.amazonaws.com: the key's own Region. A key in
    // another swept Region, or the full module's regionless logs.amazonaws.com, must get the
    // key's Region too, or CloudWatch Logs there cannot use the key.
    for (configured, region) in [
        ("logs.eu-west-1.amazonaws.com", "us-east-1"),
        ("logs.amazonaws.com", "eu-west-1"),
    ] {
        let parts = BaselineParts {
            root_access: true,
            service_principals: vec![configured.into()],
            ..BaselineParts::default()
        };
        let expected = json!({
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
                    "Action": "kms:*",
                    "Resource": "*"
                },
                cloudwatch_logs_statement(region)
            ]
        });
        assert_same(&rendered_in(parts, region), &policy(expected));
    }
}

#[test]
fn a_service_listed_twice_or_for_two_regions_is_written_once() {
    let parts = BaselineParts {
        root_access: true,
        service_principals: vec![
            "logs.eu-west-1.amazonaws.com".into(),
            "logs.us-east-1.amazonaws.com".into(),
            "s3.amazonaws.com".into(),
            "s3.amazonaws.com".into(),
        ],
        ..BaselineParts::default()
    };
    let document = rendered_document(parts);
    let sids: Vec<&str> = document["Statement"]
        .as_array()
        .expect("a statement list")
        .iter()
        .filter_map(|s| s["Sid"].as_str())
        .collect();
    assert_eq!(
        sids,
        ["EnableRootAccess", "AllowCloudWatchLogs", "AllowS3Service"],
        "a key policy with a repeated Sid is ambiguous in diffs"
    );
}

// ---------------------------------------------------------------------------------------------
// Key users: the AWS default key policy (key-policy-default.html), as the console writes it.
// ---------------------------------------------------------------------------------------------

#[test]
fn key_users_get_the_aws_default_key_user_statements() {
    let parts = BaselineParts {
        root_access: true,
        key_user_arns: vec![EXAMPLE_ROLE.into()],
        ..BaselineParts::default()
    };
    let expected = json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "Enable IAM User Permissions",
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
                "Action": "kms:*",
                "Resource": "*"
            },
            {
                "Sid": "Allow use of the key",
                "Effect": "Allow",
                "Principal": {"AWS": [EXAMPLE_ROLE]},
                "Action": [
                    "kms:Encrypt",
                    "kms:Decrypt",
                    "kms:ReEncrypt*",
                    "kms:GenerateDataKey*",
                    "kms:DescribeKey"
                ],
                "Resource": "*"
            },
            {
                "Sid": "Allow attachment of persistent resources",
                "Effect": "Allow",
                "Principal": {"AWS": [EXAMPLE_ROLE]},
                "Action": ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"],
                "Resource": "*",
                // The documentation writes the boolean unquoted; it means the same.
                "Condition": {"Bool": {"kms:GrantIsForAWSResource": true}}
            }
        ]
    });
    assert_same(&rendered(parts), &policy(expected));
}

// ---------------------------------------------------------------------------------------------
// Vault auto-unseal (vault-auto-unseal-kms.md): aws_kms_key without a policy, so AWS applies
// its default key policy, and an IAM policy giving vault-kms-role Encrypt, Decrypt, DescribeKey.
// ---------------------------------------------------------------------------------------------

/// The key policy AWS KMS applies to a key created through the API without one.
fn aws_default_key_policy() -> Value {
    json!({
        "Version": "2012-10-17",
        "Id": "key-default-1",
        "Statement": [{
            "Sid": "Enable IAM User Permissions",
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
            "Action": "kms:*",
            "Resource": "*"
        }]
    })
}

/// `vault_kms_policy_document`: the actions Vault's awskms seal calls.
const VAULT_UNSEAL_ACTIONS: [&str; 3] = ["kms:Encrypt", "kms:Decrypt", "kms:DescribeKey"];

#[test]
fn vault_unseal_key_keeps_the_default_key_policy_its_iam_role_relies_on() {
    // The role's IAM policy works only through the root statement; the baseline with root
    // access and nothing else is that default policy, so the key is not reported or rewritten.
    let parts = BaselineParts {
        root_access: true,
        ..BaselineParts::default()
    };
    let reference = policy(aws_default_key_policy());
    assert_same(&rendered(parts.clone()), &reference);
    assert_differences(&rendered(parts), &reference, &[]);
}

#[test]
fn vault_unseal_role_named_in_the_baseline_keeps_unsealing_after_root_access_is_removed() {
    // Without the root statement the IAM policy no longer counts, so the role must be in the
    // key policy, here as an additional principal next to the admin role.
    let parts = BaselineParts {
        root_access: false,
        admin_role_arns: vec![ADMIN_ROLE.into()],
        additional_principals: vec![VAULT_ROLE.into()],
        ..BaselineParts::default()
    };
    let expected = json!({
        "Version": "2012-10-17",
        "Statement": [
            key_administrator_statement(ADMIN_ROLE),
            {
                "Sid": "AllowAdditionalPrincipals",
                "Effect": "Allow",
                "Principal": {"AWS": [VAULT_ROLE]},
                "Action": key_user_actions(),
                "Resource": "*"
            }
        ]
    });
    assert_same(&rendered(parts.clone()), &policy(expected));

    let document = rendered_document(parts);
    let vault_statement = document["Statement"]
        .as_array()
        .expect("a statement list")
        .iter()
        .find(|s| s["Principal"]["AWS"] == json!([VAULT_ROLE]))
        .expect("a statement for the Vault role");
    let actions: Vec<&str> = vault_statement["Action"]
        .as_array()
        .expect("an action list")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for action in VAULT_UNSEAL_ACTIONS {
        assert!(
            actions.contains(&action),
            "{action} missing from {actions:?}"
        );
    }
    // Deliberately more than Vault's three: additional_principals carries the module's one
    // key-user action set (ReEncrypt*, GenerateDataKey* too) for every principal listed.
    assert_eq!(
        actions,
        [
            "kms:Encrypt",
            "kms:Decrypt",
            "kms:ReEncrypt*",
            "kms:GenerateDataKey*",
            "kms:DescribeKey"
        ]
    );
}
