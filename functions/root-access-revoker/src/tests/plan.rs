//! The pure decision as a table: hand-written key policies and admin roles in, the plan out.
//! No mocks and no I/O: `plan` is all there is between the facts and the writes.

use super::*;
use crate::decide::{AdminRole, Check};
use shared::config::FunctionConfig;
use std::collections::HashMap;

const ACCOUNT: &str = "111122223333";
const KEY_ARN: &str = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
const ADMIN: &str = "arn:aws:iam::111122223333:role/kms-admin";
const SELF: &str = "arn:aws:iam::111122223333:role/root-access-revoker";

fn config(remove_account_wide: bool) -> Config {
    let remove = if remove_account_wide { "true" } else { "false" };
    let env: HashMap<&str, &str> = HashMap::from([
        ("ACCOUNT_ID", ACCOUNT),
        ("AWS_REGION", "eu-west-1"),
        (
            "NOTIFY_TOPIC_ARN",
            "arn:aws:sns:eu-west-1:111122223333:kms-guardrails",
        ),
        ("SELF_ROLE_ARN", SELF),
        ("ROOT_ACCESS", "false"),
        ("KMS_ADMIN_ROLE_ARNS", ADMIN),
        ("REMOVE_ACCOUNT_WIDE_STATEMENTS", remove),
    ]);
    Config::from_lookup(&|k| env.get(k).map(|v| v.to_string())).unwrap()
}

/// The plan's kind, and for a block the check that failed.
#[derive(Debug, PartialEq, Eq)]
enum Kind {
    NothingToRevoke,
    Report,
    Blocked(Check),
    Revoke,
    PolicyUnreadable,
}

fn kind(plan: &Plan) -> Kind {
    match plan {
        Plan::NothingToRevoke => Kind::NothingToRevoke,
        Plan::Report { .. } => Kind::Report,
        Plan::Blocked { check, .. } => Kind::Blocked(*check),
        Plan::Revoke { .. } => Kind::Revoke,
        Plan::PolicyUnreadable(_) => Kind::PolicyUnreadable,
    }
}

const ROOT_ALL: &str = r#"{"Sid":"EnableRootAccess","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}"#;
const ADMIN_ALL: &str = r#"{"Sid":"Admin","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/kms-admin"},"Action":"kms:*","Resource":"*"}"#;
const SELF_CONTROL: &str = r#"{"Sid":"Guardrails","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/root-access-revoker"},"Action":["kms:PutKeyPolicy","kms:GetKeyPolicy","kms:DescribeKey"],"Resource":"*"}"#;

fn policy(statements: &[&str]) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{}]}}"#,
        statements.join(",")
    )
}

fn exists(arn: &str) -> AdminRole {
    AdminRole {
        arn: arn.into(),
        role_id: Some("AROAADMINROLEID123456".into()),
    }
}

fn deleted(arn: &str) -> AdminRole {
    AdminRole {
        arn: arn.into(),
        role_id: None,
    }
}

#[test]
fn the_plan_for_each_policy_and_admin_set() {
    let admin_decrypt_only = r#"{"Sid":"AdminUses","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/kms-admin"},"Action":["kms:GetKeyPolicy","kms:Decrypt"],"Resource":"*"}"#;
    let root_describe_only = r#"{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"kms:DescribeKey","Resource":"*"}"#;
    let self_without_describe = r#"{"Sid":"Guardrails","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/root-access-revoker"},"Action":["kms:PutKeyPolicy","kms:GetKeyPolicy"],"Resource":"*"}"#;
    let deny_admin = r#"{"Sid":"NoPolicyChanges","Effect":"Deny","Principal":{"AWS":"arn:aws:iam::111122223333:role/kms-admin"},"Action":"kms:PutKeyPolicy","Resource":"*"}"#;
    let orphan = r#"{"Sid":"OldAdmin","Effect":"Allow","Principal":{"AWS":"AROAOLDROLEID12345678"},"Action":"kms:*","Resource":"*"}"#;
    let account_wide = r#"{"Sid":"EnableIAMPermissions","Effect":"Allow","Principal":{"AWS":"*"},"Action":"kms:*","Resource":"*","Condition":{"StringEquals":{"kms:CallerAccount":"111122223333"}}}"#;
    let self_with_admin_sid = r#"{"Sid":"Admin","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/root-access-revoker"},"Action":["kms:PutKeyPolicy","kms:GetKeyPolicy","kms:DescribeKey"],"Resource":"*"}"#;
    let other_root = r#"{"Sid":"Partner","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::444455556666:root"},"Action":"kms:Decrypt","Resource":"*"}"#;

    #[rustfmt::skip]
    let table: Vec<(&str, String, Vec<AdminRole>, bool, Kind)> = vec![
        ("root, admin and function: the root goes",
         policy(&[ROOT_ALL, ADMIN_ALL, SELF_CONTROL]), vec![exists(ADMIN)], false, Kind::Revoke),
        ("root as the bare account id: the root goes",
         policy(&[r#"{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"kms:*","Resource":"*"}"#, ADMIN_ALL, SELF_CONTROL]),
         vec![exists(ADMIN)], false, Kind::Revoke),
        ("no root: nothing to revoke",
         policy(&[ADMIN_ALL, SELF_CONTROL]), vec![exists(ADMIN)], false, Kind::NothingToRevoke),
        ("another account's root is not ours to revoke",
         policy(&[ADMIN_ALL, SELF_CONTROL, other_root]), vec![exists(ADMIN)], false, Kind::NothingToRevoke),
        ("no root, no admins configured: still nothing to revoke",
         policy(&[ADMIN_ALL, SELF_CONTROL]), vec![], false, Kind::NothingToRevoke),
        ("no root but a deleted principal's unique id: reported",
         policy(&[ADMIN_ALL, SELF_CONTROL, orphan]), vec![exists(ADMIN)], false, Kind::Report),
        ("no admin configured: blocked",
         policy(&[ROOT_ALL, ADMIN_ALL, SELF_CONTROL]), vec![], false, Kind::Blocked(Check::AdminRoleExists)),
        ("the admin role was deleted: blocked",
         policy(&[ROOT_ALL, ADMIN_ALL, SELF_CONTROL]), vec![deleted(ADMIN)], false, Kind::Blocked(Check::AdminRoleExists)),
        ("the policy does not name the admin: blocked",
         policy(&[ROOT_ALL, SELF_CONTROL]), vec![exists(ADMIN)], false, Kind::Blocked(Check::SameRole)),
        ("the policy names a recreated admin's old id: blocked",
         policy(&[ROOT_ALL, orphan, SELF_CONTROL]), vec![exists(ADMIN)], false, Kind::Blocked(Check::SameRole)),
        ("the admin may only use the key: blocked",
         policy(&[ROOT_ALL, admin_decrypt_only, SELF_CONTROL]), vec![exists(ADMIN)], false, Kind::Blocked(Check::AdminKeepsControl)),
        ("a Deny takes PutKeyPolicy from the admin: blocked",
         policy(&[ROOT_ALL, ADMIN_ALL, SELF_CONTROL, deny_admin]), vec![exists(ADMIN)], false, Kind::Blocked(Check::AdminKeepsControl)),
        ("the function could not describe the key without root: blocked",
         policy(&[root_describe_only, ADMIN_ALL, self_without_describe]), vec![exists(ADMIN)], false, Kind::Blocked(Check::FunctionKeepsControl)),
        ("KMS would refuse a duplicate Sid: blocked",
         policy(&[ROOT_ALL, ADMIN_ALL, self_with_admin_sid]), vec![exists(ADMIN)], false, Kind::Blocked(Check::KmsRules)),
        ("the account-wide statement alone, kept: reported whenever present",
         policy(&[ADMIN_ALL, SELF_CONTROL, account_wide]), vec![exists(ADMIN)], false, Kind::Report),
        ("the account-wide statement alone, configured to go: revoked",
         policy(&[ADMIN_ALL, SELF_CONTROL, account_wide]), vec![exists(ADMIN)], true, Kind::Revoke),
        ("not JSON: unreadable",
         "{".to_string(), vec![exists(ADMIN)], false, Kind::PolicyUnreadable),
        ("a statement without a principal or action: unreadable",
         r#"{"Statement":[{"Effect":"Allow"}]}"#.to_string(), vec![exists(ADMIN)], false, Kind::PolicyUnreadable),
    ];

    let key = KeyInfo::unreadable(KEY_ARN, &shared::testing::region("eu-west-1"), ACCOUNT);
    for (case, text, admins, remove_account_wide, expected) in table {
        let facts = Facts {
            policy: text,
            admins,
        };
        let plan = plan(&config(remove_account_wide), &key, facts);
        assert_eq!(kind(&plan), expected, "{case}: {plan:?}");
    }
}

#[test]
fn a_revoke_plan_carries_the_policy_without_root_and_what_was_removed() {
    let key = KeyInfo::unreadable(KEY_ARN, &shared::testing::region("eu-west-1"), ACCOUNT);
    let facts = Facts {
        policy: policy(&[ROOT_ALL, ADMIN_ALL, SELF_CONTROL]),
        admins: vec![exists(ADMIN)],
    };
    let Plan::Revoke {
        revocation,
        policy: new,
    } = plan(&config(false), &key, facts)
    else {
        panic!("expected a revoke plan");
    };
    assert_eq!(new.document(), revocation.document);
    assert!(!new.document().contains(":root"), "{}", new.document());
    assert_eq!(revocation.removed.len(), 1);
    assert_eq!(revocation.removed[0].statement, "EnableRootAccess");
}

#[test]
fn an_orphan_plan_names_each_unique_id_once() {
    let key = KeyInfo::unreadable(KEY_ARN, &shared::testing::region("eu-west-1"), ACCOUNT);
    let orphans = r#"{"Effect":"Allow","Principal":{"AWS":["AROAOLDROLEID12345678","AIDAOLDUSERID12345678"]},"Action":"kms:Decrypt","Resource":"*"}"#;
    let again = r#"{"Effect":"Allow","Principal":{"AWS":"AROAOLDROLEID12345678"},"Action":"kms:Encrypt","Resource":"*"}"#;
    let facts = Facts {
        policy: policy(&[ADMIN_ALL, SELF_CONTROL, orphans, again]),
        admins: vec![exists(ADMIN)],
    };
    let Plan::Report {
        orphans,
        account_wide,
    } = plan(&config(false), &key, facts)
    else {
        panic!("expected a report of orphaned principals");
    };
    assert_eq!(orphans, ["AIDAOLDUSERID12345678", "AROAOLDROLEID12345678"]);
    assert!(account_wide.is_empty());
}

#[test]
fn an_account_wide_statement_without_root_is_reported_by_its_label() {
    let key = KeyInfo::unreadable(KEY_ARN, &shared::testing::region("eu-west-1"), ACCOUNT);
    let account_wide = r#"{"Sid":"EnableIAMPermissions","Effect":"Allow","Principal":{"AWS":"*"},"Action":"kms:*","Resource":"*","Condition":{"StringEquals":{"kms:CallerAccount":"111122223333"}}}"#;
    let facts = Facts {
        policy: policy(&[ADMIN_ALL, SELF_CONTROL, account_wide]),
        admins: vec![exists(ADMIN)],
    };
    let Plan::Report {
        account_wide,
        orphans,
    } = plan(&config(false), &key, facts)
    else {
        panic!("expected the account-wide statement reported");
    };
    assert_eq!(account_wide, ["EnableIAMPermissions"]);
    assert!(orphans.is_empty());
    let finding = crate::report::account_wide_finding(&account_wide, false);
    assert_eq!(
        finding.kind,
        shared::notify::outcome::FindingKind::AccountWideAccess
    );
    assert!(
        finding.summary.contains("EnableIAMPermissions")
            && finding
                .summary
                .contains("set REMOVE_ACCOUNT_WIDE_STATEMENTS=true"),
        "{}",
        finding.summary
    );
}
