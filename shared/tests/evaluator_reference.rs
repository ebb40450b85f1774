//! Reference table for the conservative key-policy evaluator (`shared::policy::evaluate`): every
//! statement the key policies of our users' modules write (`shared/reference/`, transcribed as
//! in `golden_baseline.rs`), evaluated alone and inside its whole module policy, for the callers
//! and actions a lockout check cares about; then the classic lockout shapes and
//! `lockout_problems` on module policies.
//!
//! Every expected decision is written by hand from IAM semantics
//! (<https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html>,
//! <https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html>). Where the
//! evaluator answers more conservatively than IAM (it refuses where IAM may allow), the row
//! keeps the evaluator's answer and a `Conservative:` comment says what IAM does. Where it is
//! less conservative than IAM (it allows where IAM denies), the row is not in the table but in
//! `less_conservative_than_iam`, which asserts IAM's answer and is ignored until `evaluate.rs`
//! changes.
//!
//! Account 111122223333, Region eu-west-1, partition aws; the full module with
//! `name_prefix = "dev"`, `environment = "dev"` and `additional_principals = [vault-kms-role]`,
//! the basic module with the same additional principal. `terraform-kms-module-with-monitoring.md`
//! shows no key policy statement, so it has no rows of its own: if it creates its key without a
//! `policy`, the key gets the AWS default key policy, which has rows here (the Vault key's).

use std::collections::BTreeMap;

use serde_json::{json, Value};
use shared::policy::evaluate::{access, lockout_problems, Access};
use shared::policy::model::Policy;

// ---------------------------------------------------------------------------------------------
// Callers and actions.
// ---------------------------------------------------------------------------------------------

/// The full module's admin role, `${name_prefix}-kms-admin-role-${environment}`.
const ADMIN: &str = "arn:aws:iam::111122223333:role/dev-kms-admin-role-dev";
/// The guardrail function's own role.
const REVOKER: &str = "arn:aws:iam::111122223333:role/kms-guardrails-RootAccessRevokerRole-ABC";
/// The account principal: as a caller, the account's root user.
const ROOT: &str = "arn:aws:iam::111122223333:root";
/// A role of another account, with the admin role's name: only the account tells them apart.
const OTHER_ACCOUNT: &str = "arn:aws:iam::444455556666:role/dev-kms-admin-role-dev";
/// The IRSA role of the Vault auto-unseal design.
const VAULT: &str = "arn:aws:iam::111122223333:role/vault-kms-role";
/// Named by the full module's two Auto Scaling statements; a caller outside the grid.
const AUTOSCALING: &str = "arn:aws:iam::111122223333:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling";
/// A role a break-glass Deny spares; a principal in statements, not a caller.
const BREAK_GLASS: &str = "arn:aws:iam::111122223333:role/break-glass";

const PUT: &str = "kms:PutKeyPolicy";
const GET: &str = "kms:GetKeyPolicy";
const DESCRIBE: &str = "kms:DescribeKey";
const DECRYPT: &str = "kms:Decrypt";
const GRANT: &str = "kms:CreateGrant";
const DELETE: &str = "kms:ScheduleKeyDeletion";

/// The grid every module statement and module policy is checked on.
const CALLERS: &[&str] = &[ADMIN, REVOKER, ROOT, OTHER_ACCOUNT, VAULT];
const ACTIONS: &[&str] = &[PUT, GET, DESCRIBE, DECRYPT, GRANT, DELETE];

const THIS_ACCOUNT: &[&str] = &[ADMIN, REVOKER, ROOT, VAULT];
const ALL_BUT_VAULT: &[&str] = &[ADMIN, REVOKER, ROOT, OTHER_ACCOUNT];
const ALL_BUT_ADMIN: &[&str] = &[REVOKER, ROOT, OTHER_ACCOUNT, VAULT];
/// What a key user (Vault) needs among the grid's actions.
const KEY_USE: &[&str] = &[DESCRIBE, DECRYPT];
const NOT_KEY_USE: &[&str] = &[PUT, GET, GRANT, DELETE];
const ALL_BUT_PUT: &[&str] = &[GET, DESCRIBE, DECRYPT, GRANT, DELETE];
const ALL_BUT_DECRYPT: &[&str] = &[PUT, GET, DESCRIBE, GRANT, DELETE];
const ALL_BUT_GRANT: &[&str] = &[PUT, GET, DESCRIBE, DECRYPT, DELETE];

/// What the admin role must keep to control the key.
const ADMIN_CONTROL: &[(&str, &str)] = &[(ADMIN, PUT), (ADMIN, GET), (ADMIN, DELETE)];
/// The actions Vault's awskms seal calls (`vault_kms_policy_document`).
const VAULT_UNSEAL: &[(&str, &str)] =
    &[(VAULT, "kms:Encrypt"), (VAULT, DECRYPT), (VAULT, DESCRIBE)];

// ---------------------------------------------------------------------------------------------
// The statements, transcribed by hand.
// ---------------------------------------------------------------------------------------------

/// `aws_kms_key.general_encryption_key.arn` of the basic module (single-Region key).
const BASIC_KEY_ARN: &str =
    "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
/// The full module's multi-Region key.
const FULL_KEY_ARN: &str =
    "arn:aws:kms:eu-west-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab";

/// The module's usage actions (basic module, and the full module's additional principals).
fn module_usage_actions() -> Value {
    json!([
        "kms:Encrypt",
        "kms:Decrypt",
        "kms:ReEncryptFrom",
        "kms:ReEncryptTo",
        "kms:GenerateDataKey*",
        "kms:DescribeKey"
    ])
}

fn basic_root() -> Value {
    json!({
        "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
        "Action": "kms:*",
        "Resource": BASIC_KEY_ARN
    })
}

fn basic_logs() -> Value {
    json!({
        "Effect": "Allow",
        "Principal": {"Service": "logs.eu-west-1.amazonaws.com"},
        "Action": module_usage_actions(),
        "Resource": BASIC_KEY_ARN
    })
}

/// One statement per entry of `additional_principals`; ours has Vault's role only.
fn basic_additional_vault() -> Value {
    json!({
        "Effect": "Allow",
        "Principal": {"AWS": VAULT},
        "Action": module_usage_actions(),
        "Resource": BASIC_KEY_ARN
    })
}

fn basic_module() -> Value {
    policy_of(
        None,
        vec![basic_root(), basic_logs(), basic_additional_vault()],
    )
}

fn enable_iam_user_permissions() -> Value {
    json!({
        "Sid": "EnableIAMUserPermissions",
        "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
        "Action": "kms:*",
        "Resource": "*"
    })
}

fn enable_iam_permissions() -> Value {
    json!({
        "Sid": "EnableIAMPermissions",
        "Effect": "Allow",
        "Principal": {"AWS": "*"},
        "Action": "kms:*",
        "Resource": "*",
        "Condition": {"StringEquals": {"kms:CallerAccount": "111122223333"}}
    })
}

fn admin_role_key_management() -> Value {
    json!({
        "Sid": "AllowKMSAdminRoleKeyManagement",
        "Effect": "Allow",
        "Principal": {"AWS": ADMIN},
        "Action": "kms:*",
        "Resource": "*"
    })
}

fn aws_services_usage() -> Value {
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
    })
}

fn ec2_launch_grant() -> Value {
    json!({
        "Sid": "AllowEC2LaunchGrant",
        "Effect": "Allow",
        "Principal": {"Service": "ec2.amazonaws.com"},
        "Action": ["kms:CreateGrant"],
        "Resource": FULL_KEY_ARN,
        "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}}
    })
}

fn autoscaling_usage() -> Value {
    json!({
        "Sid": "AllowAutoScalingServiceRoleUsage",
        "Effect": "Allow",
        "Principal": {"AWS": AUTOSCALING},
        "Action": [
            "kms:Encrypt",
            "kms:Decrypt",
            "kms:ReEncrypt*",
            "kms:GenerateDataKey*",
            "kms:DescribeKey"
        ],
        "Resource": "*"
    })
}

fn autoscaling_create_grant() -> Value {
    json!({
        "Sid": "AllowAutoScalingServiceRoleCreateGrant",
        "Effect": "Allow",
        "Principal": {"AWS": AUTOSCALING},
        "Action": ["kms:CreateGrant"],
        "Resource": "*",
        "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}}
    })
}

fn s3_replication_usage() -> Value {
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
    })
}

fn additional_principals() -> Value {
    json!({
        "Sid": "AllowAdditionalPrincipals",
        "Effect": "Allow",
        "Principal": {"AWS": [VAULT]},
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
    })
}

/// The full module's `aws_kms_key_policy`, admin role on, with `kms_root_access` as given.
fn full_module(root_access: bool) -> Value {
    let mut statements = Vec::new();
    if root_access {
        statements.push(enable_iam_user_permissions());
    }
    statements.extend([
        enable_iam_permissions(),
        admin_role_key_management(),
        aws_services_usage(),
        ec2_launch_grant(),
        autoscaling_usage(),
        autoscaling_create_grant(),
        s3_replication_usage(),
        additional_principals(),
    ]);
    policy_of(Some("key-policy-1"), statements)
}

/// The AWS default key policy's only statement (a key created through the API without one).
fn default_root_statement() -> Value {
    json!({
        "Sid": "Enable IAM User Permissions",
        "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
        "Action": "kms:*",
        "Resource": "*"
    })
}

/// The key policy of Vault's `aws_kms_key.vault_unseal_key`, which sets no `policy`.
fn aws_default_key_policy() -> Value {
    policy_of(Some("key-default-1"), vec![default_root_statement()])
}

fn console_key_administrators() -> Value {
    json!({
        "Sid": "Allow access for Key Administrators",
        "Effect": "Allow",
        "Principal": {"AWS": [ADMIN]},
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
            "kms:RotateKeyOnDemand"
        ],
        "Resource": "*"
    })
}

fn console_key_use() -> Value {
    json!({
        "Sid": "Allow use of the key",
        "Effect": "Allow",
        "Principal": {"AWS": [VAULT]},
        "Action": [
            "kms:Encrypt",
            "kms:Decrypt",
            "kms:ReEncrypt*",
            "kms:GenerateDataKey*",
            "kms:DescribeKey"
        ],
        "Resource": "*"
    })
}

fn console_persistent_resources() -> Value {
    json!({
        "Sid": "Allow attachment of persistent resources",
        "Effect": "Allow",
        "Principal": {"AWS": [VAULT]},
        "Action": ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"],
        "Resource": "*",
        "Condition": {"Bool": {"kms:GrantIsForAWSResource": true}}
    })
}

/// The AWS default key policy as the console writes it, the admin role as key administrator
/// and Vault's role as key user.
fn console_default_key_policy() -> Value {
    policy_of(
        Some("key-consolepolicy-3"),
        vec![
            default_root_statement(),
            console_key_administrators(),
            console_key_use(),
            console_persistent_resources(),
        ],
    )
}

/// Every module policy of the reference docs; each of its statements and the whole are
/// checked on the full grid.
fn module_policies() -> Vec<(&'static str, Value)> {
    vec![
        ("basic module", basic_module()),
        ("full module, root access on", full_module(true)),
        ("full module, root access off", full_module(false)),
        ("AWS default key policy", aws_default_key_policy()),
        (
            "AWS default key policy (console)",
            console_default_key_policy(),
        ),
    ]
}

// ---------------------------------------------------------------------------------------------
// Lockout shapes.
// ---------------------------------------------------------------------------------------------

/// The admin role's statement and `extra`.
fn with_admin(extra: Value) -> Value {
    policy_of(None, vec![admin_role_key_management(), extra])
}

fn deny_admin_put_key_policy() -> Value {
    json!({
        "Sid": "NoPolicyChangesByAdmin",
        "Effect": "Deny",
        "Principal": {"AWS": ADMIN},
        "Action": "kms:PutKeyPolicy",
        "Resource": "*"
    })
}

fn deny_account_deletion() -> Value {
    json!({
        "Sid": "NoDeletion",
        "Effect": "Deny",
        "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
        "Action": "kms:ScheduleKeyDeletion",
        "Resource": "*"
    })
}

/// A NotPrincipal Deny sparing `spared`.
fn deny_all_but(spared: Value) -> Value {
    json!({
        "Sid": "OnlyBreakGlass",
        "Effect": "Deny",
        "NotPrincipal": {"AWS": spared},
        "Action": "kms:*",
        "Resource": "*"
    })
}

fn deny_outside_vpc() -> Value {
    json!({
        "Sid": "OnlyFromVpc",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "kms:*",
        "Resource": "*",
        "Condition": {"StringNotEquals": {"aws:SourceVpc": "vpc-0abc1234"}}
    })
}

fn everyone_allowed() -> Value {
    policy_of(
        None,
        vec![json!({
            "Sid": "Everyone",
            "Effect": "Allow",
            "Principal": {"AWS": "*"},
            "Action": "kms:*",
            "Resource": "*"
        })],
    )
}

fn admin_with_mfa_only() -> Value {
    policy_of(
        None,
        vec![json!({
            "Sid": "AdminWithMfa",
            "Effect": "Allow",
            "Principal": {"AWS": ADMIN},
            "Action": "kms:*",
            "Resource": "*",
            "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}}
        })],
    )
}

fn admin_not_action(excluded: Value) -> Value {
    policy_of(
        None,
        vec![json!({
            "Sid": "AdminAllBut",
            "Effect": "Allow",
            "Principal": {"AWS": ADMIN},
            "NotAction": excluded,
            "Resource": "*"
        })],
    )
}

// ---------------------------------------------------------------------------------------------
// Table machinery.
// ---------------------------------------------------------------------------------------------

fn policy_of(id: Option<&str>, statements: Vec<Value>) -> Value {
    let mut policy = json!({"Version": "2012-10-17", "Statement": statements});
    if let Some(id) = id {
        policy["Id"] = json!(id);
    }
    policy
}

/// One statement as a whole policy.
fn alone(statement: Value) -> Value {
    policy_of(None, vec![statement])
}

/// `policy` without the statement whose Sid is `sid`.
fn without(mut policy: Value, sid: &str) -> Value {
    let statements = policy["Statement"]
        .as_array_mut()
        .expect("a statement list");
    let before = statements.len();
    statements.retain(|s| s["Sid"] != sid);
    assert_eq!(statements.len() + 1, before, "no single statement {sid:?}");
    policy
}

fn parse(policy: &Value) -> Policy {
    Policy::parse(&policy.to_string())
        .unwrap_or_else(|e| panic!("the hand-written policy does not parse: {}", e.0))
}

#[derive(Clone, Copy, Debug)]
enum Expect {
    Allowed,
    ViaIam,
    Denied,
    NotAllowed,
}

fn holds(expect: Expect, got: &Access) -> bool {
    match expect {
        Expect::Allowed => matches!(got, Access::Allowed),
        Expect::ViaIam => matches!(got, Access::ViaIam),
        Expect::Denied => matches!(got, Access::Denied { .. }),
        Expect::NotAllowed => matches!(got, Access::NotAllowed { .. }),
    }
}

enum Check {
    /// `access` gives `expect` for every caller and action listed.
    Access {
        callers: &'static [&'static str],
        actions: &'static [&'static str],
        expect: Expect,
    },
    /// `lockout_problems` lists `problems` sentences.
    Lockout {
        requirements: &'static [(&'static str, &'static str)],
        iam_may_grant: bool,
        problems: usize,
    },
}

struct Row {
    name: &'static str,
    policy: Value,
    check: Check,
}

fn decides(
    name: &'static str,
    policy: Value,
    callers: &'static [&'static str],
    actions: &'static [&'static str],
    expect: Expect,
) -> Row {
    Row {
        name,
        policy,
        check: Check::Access {
            callers,
            actions,
            expect,
        },
    }
}

fn lockout(
    name: &'static str,
    policy: Value,
    requirements: &'static [(&'static str, &'static str)],
    iam_may_grant: bool,
    problems: usize,
) -> Row {
    Row {
        name,
        policy,
        check: Check::Lockout {
            requirements,
            iam_may_grant,
            problems,
        },
    }
}

/// What the row gets wrong, one line per failing caller/action.
fn failures(row: &Row) -> Vec<String> {
    let policy = parse(&row.policy);
    match row.check {
        Check::Access {
            callers,
            actions,
            expect,
        } => callers
            .iter()
            .flat_map(|caller| actions.iter().map(move |action| (*caller, *action)))
            .filter_map(|(caller, action)| {
                let got = access(&policy, caller, action);
                (!holds(expect, &got)).then(|| {
                    format!(
                        "{}: {caller} {action}: expected {expect:?}, got {got:?}",
                        row.name
                    )
                })
            })
            .collect(),
        Check::Lockout {
            requirements,
            iam_may_grant,
            problems,
        } => {
            let got = lockout_problems(&policy, requirements, iam_may_grant);
            if got.len() == problems {
                Vec::new()
            } else {
                vec![format!(
                    "{}: expected {problems} lockout problem(s), got {got:#?}",
                    row.name
                )]
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The table.
// ---------------------------------------------------------------------------------------------

fn table() -> Vec<Row> {
    use Expect::*;
    vec![
        // ---- Basic module (terraform-kms-module-basic.md), each statement alone. ----
        // Conservative: in a key policy the key's own ARN names the same key as "*", so IAM
        // reads this statement as the usual root statement and delegates to IAM (ViaIam); the
        // evaluator sees a Resource other than "*" and cannot tell it is this key's ARN.
        decides(
            "basic module root statement alone: scoped to the key's ARN, so no delegation to IAM is counted",
            alone(basic_root()),
            THIS_ACCOUNT,
            ACTIONS,
            NotAllowed,
        ),
        decides(
            "basic module root statement alone: a role of another account gets nothing",
            alone(basic_root()),
            &[OTHER_ACCOUNT],
            ACTIONS,
            NotAllowed,
        ),
        decides(
            "basic module CloudWatch Logs statement alone: a service principal gives no role anything",
            alone(basic_logs()),
            CALLERS,
            ACTIONS,
            NotAllowed,
        ),
        // Conservative: IAM allows Vault Decrypt and DescribeKey here (the key's ARN is the key).
        decides(
            "basic module additional principal statement alone: Vault is not counted as able to decrypt (Resource is the key's ARN)",
            alone(basic_additional_vault()),
            &[VAULT],
            KEY_USE,
            NotAllowed,
        ),
        decides(
            "basic module additional principal statement alone: Vault may not change the policy, create grants or delete the key",
            alone(basic_additional_vault()),
            &[VAULT],
            NOT_KEY_USE,
            NotAllowed,
        ),
        decides(
            "basic module additional principal statement alone: names nobody but Vault",
            alone(basic_additional_vault()),
            ALL_BUT_VAULT,
            ACTIONS,
            NotAllowed,
        ),
        // ---- Basic module, whole policy. ----
        // Conservative: IAM gives this account's callers every action through IAM (ViaIam).
        decides(
            "basic module: the admin role, the guardrail's role and the root user are not counted as able to change the policy",
            basic_module(),
            &[ADMIN, REVOKER, ROOT],
            ACTIONS,
            NotAllowed,
        ),
        // Conservative: IAM allows Vault Decrypt and DescribeKey from the key policy alone.
        decides(
            "basic module: Vault as an additional principal is not counted as able to decrypt",
            basic_module(),
            &[VAULT],
            KEY_USE,
            NotAllowed,
        ),
        // Conservative: IAM delegates the rest to Vault's IAM policy (ViaIam).
        decides(
            "basic module: Vault's other actions are not counted either",
            basic_module(),
            &[VAULT],
            NOT_KEY_USE,
            NotAllowed,
        ),
        decides(
            "basic module: a role of another account gets nothing",
            basic_module(),
            &[OTHER_ACCOUNT],
            ACTIONS,
            NotAllowed,
        ),
        // ---- Full module (terraform-kms-module-full.md), each statement alone. ----
        decides(
            "EnableIAMUserPermissions alone: this account's roles get every action only through IAM",
            alone(enable_iam_user_permissions()),
            &[ADMIN, REVOKER, VAULT],
            ACTIONS,
            ViaIam,
        ),
        // Conservative: the root user is not limited by IAM policies, so for it the account
        // principal is a full Allow.
        decides(
            "EnableIAMUserPermissions alone: the root user is counted only through IAM too",
            alone(enable_iam_user_permissions()),
            &[ROOT],
            ACTIONS,
            ViaIam,
        ),
        decides(
            "EnableIAMUserPermissions alone: a role of another account gets nothing",
            alone(enable_iam_user_permissions()),
            &[OTHER_ACCOUNT],
            ACTIONS,
            NotAllowed,
        ),
        // Conservative: kms:CallerAccount is 111122223333 for every caller of this account, so
        // IAM allows each of them kms:* from the key policy alone, no IAM policy needed.
        decides(
            "EnableIAMPermissions gives a caller of this account nothing the evaluator counts (wildcard principal with a condition)",
            alone(enable_iam_permissions()),
            THIS_ACCOUNT,
            ACTIONS,
            NotAllowed,
        ),
        decides(
            "EnableIAMPermissions gives a role of another account nothing (its kms:CallerAccount differs)",
            alone(enable_iam_permissions()),
            &[OTHER_ACCOUNT],
            ACTIONS,
            NotAllowed,
        ),
        decides(
            "AllowKMSAdminRoleKeyManagement alone: the admin role may change the policy, use and delete the key",
            alone(admin_role_key_management()),
            &[ADMIN],
            ACTIONS,
            Allowed,
        ),
        decides(
            "AllowKMSAdminRoleKeyManagement alone: no other role, not the root user, not the same role name in another account",
            alone(admin_role_key_management()),
            ALL_BUT_ADMIN,
            ACTIONS,
            NotAllowed,
        ),
        decides(
            "AllowAWSServicesUsage alone: service principals give no role anything",
            alone(aws_services_usage()),
            CALLERS,
            ACTIONS,
            NotAllowed,
        ),
        decides(
            "AllowEC2LaunchGrant alone: the EC2 service principal gives no role a grant",
            alone(ec2_launch_grant()),
            CALLERS,
            ACTIONS,
            NotAllowed,
        ),
        decides(
            "AllowAutoScalingServiceRoleUsage alone: names only the Auto Scaling service-linked role",
            alone(autoscaling_usage()),
            CALLERS,
            ACTIONS,
            NotAllowed,
        ),
        decides(
            "AllowAutoScalingServiceRoleUsage alone: the Auto Scaling role may use the key",
            alone(autoscaling_usage()),
            &[AUTOSCALING],
            KEY_USE,
            Allowed,
        ),
        decides(
            "AllowAutoScalingServiceRoleUsage alone: the Auto Scaling role may not manage the key or create grants",
            alone(autoscaling_usage()),
            &[AUTOSCALING],
            NOT_KEY_USE,
            NotAllowed,
        ),
        decides(
            "AllowAutoScalingServiceRoleCreateGrant alone: names only the Auto Scaling service-linked role",
            alone(autoscaling_create_grant()),
            CALLERS,
            ACTIONS,
            NotAllowed,
        ),
        // Conservative: IAM allows the grant when kms:GrantIsForAWSResource is true.
        decides(
            "AllowAutoScalingServiceRoleCreateGrant alone: the Auto Scaling role's grant is conditional, so not counted",
            alone(autoscaling_create_grant()),
            &[AUTOSCALING],
            &[GRANT],
            NotAllowed,
        ),
        decides(
            "AllowS3ReplicationUsage alone: the S3 service principal gives no role anything",
            alone(s3_replication_usage()),
            CALLERS,
            ACTIONS,
            NotAllowed,
        ),
        // Conservative: IAM allows Vault Decrypt and DescribeKey here (the key's ARN is the key).
        decides(
            "AllowAdditionalPrincipals alone: Vault is not counted as able to decrypt (Resource is the key's ARN)",
            alone(additional_principals()),
            &[VAULT],
            KEY_USE,
            NotAllowed,
        ),
        decides(
            "AllowAdditionalPrincipals alone: Vault may not change the policy, create grants or delete the key",
            alone(additional_principals()),
            &[VAULT],
            NOT_KEY_USE,
            NotAllowed,
        ),
        decides(
            "AllowAdditionalPrincipals alone: names nobody but Vault",
            alone(additional_principals()),
            ALL_BUT_VAULT,
            ACTIONS,
            NotAllowed,
        ),
        // ---- Full module, root access on. ----
        decides(
            "full module, root access on: the admin role may change the policy and delete the key without IAM",
            full_module(true),
            &[ADMIN],
            ACTIONS,
            Allowed,
        ),
        // Conservative: IAM also allows it from the key policy alone through EnableIAMPermissions.
        decides(
            "full module, root access on: the guardrail's own role may act only through IAM (root statement)",
            full_module(true),
            &[REVOKER],
            ACTIONS,
            ViaIam,
        ),
        // Conservative: the root user is not limited by IAM policies; EnableIAMPermissions too.
        decides(
            "full module, root access on: the root user is counted only through IAM",
            full_module(true),
            &[ROOT],
            ACTIONS,
            ViaIam,
        ),
        // Conservative: IAM allows Vault every action from the key policy alone
        // (EnableIAMPermissions; AllowAdditionalPrincipals for its usage actions).
        decides(
            "full module, root access on: Vault may decrypt only through IAM (its own statement is scoped to the key's ARN)",
            full_module(true),
            &[VAULT],
            ACTIONS,
            ViaIam,
        ),
        decides(
            "full module, root access on: a role of another account gets nothing",
            full_module(true),
            &[OTHER_ACCOUNT],
            ACTIONS,
            NotAllowed,
        ),
        // ---- Full module, root access off. ----
        decides(
            "full module, root access off: the admin role may still change the policy",
            full_module(false),
            &[ADMIN],
            &[PUT],
            Allowed,
        ),
        decides(
            "full module, root access off: the admin role keeps every other action too",
            full_module(false),
            &[ADMIN],
            ALL_BUT_PUT,
            Allowed,
        ),
        // Conservative (this row and the next two): EnableIAMPermissions still gives every
        // caller of this account kms:* in IAM, which is what kms_root_access = false was for.
        decides(
            "full module, root access off: the guardrail's own role has no access the evaluator counts",
            full_module(false),
            &[REVOKER],
            ACTIONS,
            NotAllowed,
        ),
        decides(
            "full module, root access off: the root user has no access the evaluator counts",
            full_module(false),
            &[ROOT],
            ACTIONS,
            NotAllowed,
        ),
        decides(
            "full module, root access off: Vault is not counted as able to decrypt",
            full_module(false),
            &[VAULT],
            ACTIONS,
            NotAllowed,
        ),
        decides(
            "full module, root access off: a role of another account gets nothing",
            full_module(false),
            &[OTHER_ACCOUNT],
            ACTIONS,
            NotAllowed,
        ),
        // ---- AWS default key policy: Vault's key (vault-auto-unseal-kms.md). ----
        decides(
            "AWS default key policy statement alone: this account's roles get every action only through IAM",
            alone(default_root_statement()),
            &[ADMIN, REVOKER, VAULT],
            ACTIONS,
            ViaIam,
        ),
        // Conservative: the root user is not limited by IAM policies.
        decides(
            "AWS default key policy statement alone: the root user is counted only through IAM",
            alone(default_root_statement()),
            &[ROOT],
            ACTIONS,
            ViaIam,
        ),
        decides(
            "AWS default key policy statement alone: a role of another account gets nothing",
            alone(default_root_statement()),
            &[OTHER_ACCOUNT],
            ACTIONS,
            NotAllowed,
        ),
        decides(
            "Vault's key (AWS default key policy): Vault may unseal only if its IAM policy allows it",
            aws_default_key_policy(),
            &[VAULT],
            KEY_USE,
            ViaIam,
        ),
        decides(
            "Vault's key: Vault's other actions go through IAM too (its IAM policy grants none of them)",
            aws_default_key_policy(),
            &[VAULT],
            NOT_KEY_USE,
            ViaIam,
        ),
        decides(
            "Vault's key: the admin role and the guardrail's role may change the policy only through IAM",
            aws_default_key_policy(),
            &[ADMIN, REVOKER],
            ACTIONS,
            ViaIam,
        ),
        // Conservative: the root user is not limited by IAM policies.
        decides(
            "Vault's key: the root user is counted only through IAM",
            aws_default_key_policy(),
            &[ROOT],
            ACTIONS,
            ViaIam,
        ),
        decides(
            "Vault's key: a role of another account gets nothing",
            aws_default_key_policy(),
            &[OTHER_ACCOUNT],
            ACTIONS,
            NotAllowed,
        ),
        // ---- AWS default key policy as the console writes it, each added statement alone. ----
        decides(
            "console key-administrator statement alone: the admin role may change the policy, create grants and schedule deletion",
            alone(console_key_administrators()),
            &[ADMIN],
            ALL_BUT_DECRYPT,
            Allowed,
        ),
        decides(
            "console key-administrator statement alone: the admin role may not decrypt",
            alone(console_key_administrators()),
            &[ADMIN],
            &[DECRYPT],
            NotAllowed,
        ),
        decides(
            "console key-administrator statement alone: names nobody but the admin role",
            alone(console_key_administrators()),
            ALL_BUT_ADMIN,
            ACTIONS,
            NotAllowed,
        ),
        decides(
            "console key-user statement alone: Vault may decrypt and describe the key",
            alone(console_key_use()),
            &[VAULT],
            KEY_USE,
            Allowed,
        ),
        decides(
            "console key-user statement alone: Vault may not change the policy, create grants or delete the key",
            alone(console_key_use()),
            &[VAULT],
            NOT_KEY_USE,
            NotAllowed,
        ),
        decides(
            "console key-user statement alone: names nobody but Vault",
            alone(console_key_use()),
            ALL_BUT_VAULT,
            ACTIONS,
            NotAllowed,
        ),
        // Conservative: IAM allows the grant when kms:GrantIsForAWSResource is true.
        decides(
            "console persistent-resources statement alone: Vault's grant is conditional, so not counted",
            alone(console_persistent_resources()),
            &[VAULT],
            &[GRANT],
            NotAllowed,
        ),
        decides(
            "console persistent-resources statement alone: gives Vault nothing else",
            alone(console_persistent_resources()),
            &[VAULT],
            ALL_BUT_GRANT,
            NotAllowed,
        ),
        decides(
            "console persistent-resources statement alone: names nobody but Vault",
            alone(console_persistent_resources()),
            ALL_BUT_VAULT,
            ACTIONS,
            NotAllowed,
        ),
        // ---- Console default key policy, whole. ----
        decides(
            "console default key policy: the admin role may change the policy and delete the key without IAM",
            console_default_key_policy(),
            &[ADMIN],
            ALL_BUT_DECRYPT,
            Allowed,
        ),
        decides(
            "console default key policy: the admin role may decrypt only through IAM",
            console_default_key_policy(),
            &[ADMIN],
            &[DECRYPT],
            ViaIam,
        ),
        decides(
            "console default key policy: Vault may unseal without IAM",
            console_default_key_policy(),
            &[VAULT],
            KEY_USE,
            Allowed,
        ),
        // CreateGrant too: the conditional grant statement is not counted, the root one is.
        decides(
            "console default key policy: Vault's grants and management go through IAM",
            console_default_key_policy(),
            &[VAULT],
            NOT_KEY_USE,
            ViaIam,
        ),
        // Conservative for the root user: it is not limited by IAM policies.
        decides(
            "console default key policy: the guardrail's role and the root user act only through IAM",
            console_default_key_policy(),
            &[REVOKER, ROOT],
            ACTIONS,
            ViaIam,
        ),
        decides(
            "console default key policy: a role of another account gets nothing",
            console_default_key_policy(),
            &[OTHER_ACCOUNT],
            ACTIONS,
            NotAllowed,
        ),
        // ---- Classic lockout shapes. ----
        decides(
            "a Deny naming the admin role for kms:PutKeyPolicy locks it out of the policy",
            with_admin(deny_admin_put_key_policy()),
            &[ADMIN],
            &[PUT],
            Denied,
        ),
        decides(
            "a Deny naming the admin role for kms:PutKeyPolicy leaves it its other actions",
            with_admin(deny_admin_put_key_policy()),
            &[ADMIN],
            ALL_BUT_PUT,
            Allowed,
        ),
        decides(
            "a Deny naming the account for kms:ScheduleKeyDeletion denies the admin role too",
            with_admin(deny_account_deletion()),
            &[ADMIN],
            &[DELETE],
            Denied,
        ),
        decides(
            "a NotPrincipal Deny listing only a break-glass role denies every caller it does not list",
            with_admin(deny_all_but(json!(BREAK_GLASS))),
            CALLERS,
            ACTIONS,
            Denied,
        ),
        // Conservative: IAM denies only requests from outside the VPC.
        decides(
            "a conditional Deny (outside a VPC) is assumed to apply to the admin role",
            with_admin(deny_outside_vpc()),
            &[ADMIN],
            ACTIONS,
            Denied,
        ),
        // Conservative: an unconditional Allow to "*" admits the admin role in IAM, from the key
        // policy alone; the evaluator does not count a wildcard as naming an administrator.
        decides(
            "the admin role only through the wildcard principal \"*\": not counted as an administrator",
            everyone_allowed(),
            &[ADMIN],
            ACTIONS,
            NotAllowed,
        ),
        // Conservative: IAM allows it whenever the condition holds (an MFA session).
        decides(
            "the admin role only under an MFA condition: not counted",
            admin_with_mfa_only(),
            &[ADMIN],
            ACTIONS,
            NotAllowed,
        ),
        decides(
            "a NotAction Allow excluding only cryptographic use lets the admin role change the policy",
            admin_not_action(json!([
                "kms:Encrypt",
                "kms:Decrypt",
                "kms:ReEncrypt*",
                "kms:GenerateDataKey*"
            ])),
            &[ADMIN],
            ALL_BUT_DECRYPT,
            Allowed,
        ),
        decides(
            "a NotAction Allow excluding cryptographic use leaves the admin role no Decrypt",
            admin_not_action(json!([
                "kms:Encrypt",
                "kms:Decrypt",
                "kms:ReEncrypt*",
                "kms:GenerateDataKey*"
            ])),
            &[ADMIN],
            &[DECRYPT],
            NotAllowed,
        ),
        decides(
            "a NotAction Allow excluding kms:Put* takes kms:PutKeyPolicy from the admin role",
            admin_not_action(json!("kms:Put*")),
            &[ADMIN],
            &[PUT],
            NotAllowed,
        ),
        decides(
            "a NotAction Allow excluding kms:Put* leaves the admin role the rest",
            admin_not_action(json!("kms:Put*")),
            &[ADMIN],
            ALL_BUT_PUT,
            Allowed,
        ),
        // ---- lockout_problems on module policies and shapes. ----
        lockout(
            "full module, root access off: lockout_problems finds the admin role keeps control of the key",
            full_module(false),
            ADMIN_CONTROL,
            false,
            0,
        ),
        // Conservative: EnableIAMPermissions still gives the admin role kms:* in IAM.
        lockout(
            "full module without the root and the admin role statements: lockout_problems lists the admin role",
            without(
                without(full_module(true), "EnableIAMUserPermissions"),
                "AllowKMSAdminRoleKeyManagement",
            ),
            ADMIN_CONTROL,
            true,
            3,
        ),
        lockout(
            "full module, root access on: the guardrail's own role may write the policy only if its IAM policy allows it",
            full_module(true),
            &[(REVOKER, PUT)],
            false,
            1,
        ),
        lockout(
            "full module, root access on: the guardrail's own role may write the policy when its IAM policy allows it",
            full_module(true),
            &[(REVOKER, PUT)],
            true,
            0,
        ),
        // Conservative: EnableIAMPermissions still gives the guardrail's role kms:* in IAM.
        lockout(
            "full module, root access off: the guardrail's own role is listed even when IAM is trusted",
            full_module(false),
            &[(REVOKER, PUT)],
            true,
            1,
        ),
        lockout(
            "Vault's key: Vault keeps unsealing when its IAM policy grants Encrypt, Decrypt and DescribeKey",
            aws_default_key_policy(),
            VAULT_UNSEAL,
            true,
            0,
        ),
        lockout(
            "Vault's key: without knowing Vault's IAM policy, all three unseal actions are listed",
            aws_default_key_policy(),
            VAULT_UNSEAL,
            false,
            3,
        ),
        // Conservative: IAM reads the root statement scoped to the key's ARN as delegation.
        lockout(
            "basic module: the admin role is listed even when IAM is trusted (root statement scoped to the key's ARN)",
            basic_module(),
            &[(ADMIN, PUT)],
            true,
            1,
        ),
        lockout(
            "a Deny naming the admin role: lockout_problems lists it even when IAM is trusted",
            with_admin(deny_admin_put_key_policy()),
            &[(ADMIN, PUT)],
            true,
            1,
        ),
        lockout(
            "a NotPrincipal Deny listing only a break-glass role: lockout_problems lists every admin action",
            with_admin(deny_all_but(json!(BREAK_GLASS))),
            ADMIN_CONTROL,
            true,
            3,
        ),
    ]
}

/// Rows where IAM denies and the evaluator does not (see `less_conservative_than_iam`).
fn less_conservative_rows() -> Vec<Row> {
    use Expect::*;
    vec![
        // IAM checks the account, the role and the session one by one against NotPrincipal
        // (reference_policies_elements_notprincipal.html); the admin role is not listed, so it
        // is denied. The evaluator takes the listed account as sparing all of its principals.
        decides(
            "a break-glass Deny written as AWS documents it (role, session and account in NotPrincipal) denies the admin role",
            with_admin(deny_all_but(json!([
                "arn:aws:sts::111122223333:assumed-role/break-glass/alice",
                BREAK_GLASS,
                ROOT
            ]))),
            &[ADMIN],
            ACTIONS,
            Denied,
        ),
        lockout(
            "a break-glass Deny written as AWS documents it: lockout_problems lists the admin role",
            with_admin(deny_all_but(json!([
                "arn:aws:sts::111122223333:assumed-role/break-glass/alice",
                BREAK_GLASS,
                ROOT
            ]))),
            &[(ADMIN, PUT)],
            true,
            1,
        ),
        decides(
            "a NotPrincipal Deny listing only the account may deny the admin role (its role ARN is not listed)",
            with_admin(deny_all_but(json!(ROOT))),
            &[ADMIN],
            ACTIONS,
            Denied,
        ),
        // A role calls KMS as a session (assumed-role/NAME/SESSION), which must be listed too
        // (AWS Security Blog, "How to restrict Amazon S3 bucket access to a specific IAM role").
        decides(
            "a NotPrincipal Deny listing only the admin role's ARN may deny it (neither its account nor its session is listed)",
            with_admin(deny_all_but(json!(ADMIN))),
            &[ADMIN],
            ACTIONS,
            Denied,
        ),
        decides(
            "a NotPrincipal Deny listing the admin role and its account may deny the session it calls KMS with",
            with_admin(deny_all_but(json!([ADMIN, ROOT]))),
            &[ADMIN],
            ACTIONS,
            Denied,
        ),
        // "you cannot use a wildcard (*) to mean all sessions" (NotPrincipal documentation).
        decides(
            "a NotPrincipal Deny listing assumed-role/<admin>/* spares no session: IAM has no session wildcard",
            with_admin(deny_all_but(json!([
                "arn:aws:sts::111122223333:assumed-role/dev-kms-admin-role-dev/*",
                ADMIN,
                ROOT
            ]))),
            &[ADMIN],
            ACTIONS,
            Denied,
        ),
    ]
}

// ---------------------------------------------------------------------------------------------
// Tests.
// ---------------------------------------------------------------------------------------------

#[test]
fn every_row_gets_the_expected_decision() {
    let wrong: Vec<String> = table().iter().flat_map(failures).collect();
    assert!(
        wrong.is_empty(),
        "{} wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

#[test]
fn every_statement_and_module_policy_is_decided_once_for_every_caller_and_action() {
    let rows = table();
    let mut subjects: Vec<(String, Value)> = Vec::new();
    for (module, policy) in module_policies() {
        for statement in policy["Statement"].as_array().expect("a statement list") {
            let sid = statement["Sid"].as_str().unwrap_or("(no Sid)");
            subjects.push((format!("{module}: {sid} alone"), alone(statement.clone())));
        }
        subjects.push((module.to_string(), policy));
    }
    let mut gaps = Vec::new();
    for (subject, policy) in &subjects {
        let mut decided: BTreeMap<(&str, &str), usize> = BTreeMap::new();
        for row in rows.iter().filter(|r| &r.policy == policy) {
            if let Check::Access {
                callers, actions, ..
            } = row.check
            {
                for caller in callers {
                    for action in actions {
                        *decided.entry((*caller, *action)).or_default() += 1;
                    }
                }
            }
        }
        for caller in CALLERS {
            for action in ACTIONS {
                match decided.get(&(*caller, *action)).copied().unwrap_or(0) {
                    1 => {}
                    n => gaps.push(format!("{subject}: {caller} {action} decided {n} times")),
                }
            }
        }
    }
    assert!(gaps.is_empty(), "{}", gaps.join("\n"));
}

#[test]
fn row_names_are_unique() {
    let rows = table();
    let mut names: Vec<&str> = rows.iter().map(|r| r.name).collect();
    names.sort_unstable();
    let before = names.len();
    names.dedup();
    assert_eq!(names.len(), before, "two rows share a name");
}

/// NotPrincipal Denies, where IAM checks account, role and exact session one by one: the
/// evaluator once spared the admin role here and missed the lockout; these rows hold it to IAM.
#[test]
fn not_principal_denies_are_lockouts_as_in_iam() {
    let wrong: Vec<String> = less_conservative_rows().iter().flat_map(failures).collect();
    assert!(
        wrong.is_empty(),
        "{} wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}
