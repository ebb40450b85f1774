use super::*;
use serde_json::json;

const ACCOUNT: &str = "111122223333";
const ROOT: &str = "arn:aws:iam::111122223333:root";
const ADMIN: &str = "arn:aws:iam::111122223333:role/kms-admin";
const OTHER_ROOT: &str = "arn:aws:iam::444455556666:root";

fn admin_statement() -> Value {
    json!({"Sid": "Admin", "Effect": "Allow", "Principal": {"AWS": ADMIN},
           "Action": "kms:*", "Resource": "*"})
}

fn text(statements: Vec<Value>) -> String {
    json!({"Version": "2012-10-17", "Statement": statements}).to_string()
}

fn statements(revocation: &Revocation) -> Vec<Value> {
    let document: Value = serde_json::from_str(&revocation.document).unwrap();
    document["Statement"].as_array().unwrap().clone()
}

fn revoked(statements: Vec<Value>) -> Revocation {
    revoke_root(&text(statements), ACCOUNT, false)
        .unwrap()
        .expect("a root grant")
}

fn grant(statement: &str, value: &str, statement_removed: bool) -> RemovedGrant {
    RemovedGrant {
        statement: statement.into(),
        value: value.into(),
        statement_removed,
    }
}

/// The full reference module's account-wide statement.
fn enable_iam_permissions() -> Value {
    json!({"Sid": "EnableIAMPermissions", "Effect": "Allow", "Principal": {"AWS": "*"},
           "Action": "kms:*", "Resource": "*",
           "Condition": {"StringEquals": {"kms:CallerAccount": ACCOUNT}}})
}

#[test]
fn given_root_alone_in_a_statement_when_revoked_then_the_statement_is_removed() {
    let r = revoked(vec![
        json!({"Sid": "EnableRootAccess", "Effect": "Allow", "Principal": {"AWS": ROOT},
               "Action": "kms:*", "Resource": "*"}),
        admin_statement(),
    ]);
    assert_eq!(statements(&r), vec![admin_statement()]);
    assert_eq!(r.removed, vec![grant("EnableRootAccess", ROOT, true)]);
    assert!(r.account_wide.is_empty() && !r.account_wide_removed);
    assert!(r.document.contains('\n'), "pretty JSON");
}

#[test]
fn given_root_in_a_list_with_others_when_revoked_then_only_root_is_removed_and_the_list_kept() {
    let r = revoked(vec![json!({"Sid": "Admins", "Effect": "Allow",
        "Principal": {"AWS": [ROOT, ADMIN, OTHER_ROOT]}, "Action": "kms:*", "Resource": "*"})]);
    assert_eq!(
        statements(&r),
        vec![json!({"Sid": "Admins", "Effect": "Allow",
            "Principal": {"AWS": [ADMIN, OTHER_ROOT]}, "Action": "kms:*", "Resource": "*"})]
    );
    assert_eq!(r.removed, vec![grant("Admins", ROOT, false)]);

    let r = revoked(vec![json!({"Effect": "Allow",
        "Principal": {"AWS": [ADMIN, ROOT]}, "Action": "kms:*", "Resource": "*"})]);
    assert_eq!(
        statements(&r)[0]["Principal"],
        json!({"AWS": [ADMIN]}),
        "one value left stays a list"
    );
    assert_eq!(r.removed, vec![grant("Statement[0]", ROOT, false)]);
}

#[test]
fn given_the_bare_account_id_when_revoked_then_it_is_a_root_grant() {
    let r = revoked(vec![
        admin_statement(),
        json!({"Effect": "Allow", "Principal": {"AWS": ACCOUNT}, "Action": "kms:*", "Resource": "*"}),
        json!({"Sid": "Listed", "Effect": "Allow", "Principal": {"AWS": [ACCOUNT, ADMIN]},
               "Action": "kms:Decrypt", "Resource": "*"}),
        json!({"Sid": "Unquoted", "Effect": "Allow", "Principal": {"AWS": [111122223333u64]},
               "Action": "kms:Encrypt", "Resource": "*"}),
    ]);
    assert_eq!(
        r.removed,
        vec![
            grant("Statement[1]", ACCOUNT, true),
            grant("Listed", ACCOUNT, false),
            grant("Unquoted", ACCOUNT, true),
        ]
    );
    assert_eq!(statements(&r).len(), 2);
    assert_eq!(statements(&r)[1]["Principal"], json!({"AWS": [ADMIN]}));
}

#[test]
fn given_root_in_another_partition_when_revoked_then_it_is_a_root_grant() {
    let root = "arn:aws-cn:iam::111122223333:root";
    let r = revoked(vec![
        admin_statement(),
        json!({"Effect": "Allow", "Principal": {"AWS": root}, "Action": "kms:*", "Resource": "*"}),
    ]);
    assert_eq!(r.removed, vec![grant("Statement[1]", root, true)]);
}

#[test]
fn given_only_another_accounts_root_when_revoked_then_nothing_changes() {
    let policy = text(vec![
        admin_statement(),
        json!({"Sid": "Partner", "Effect": "Allow", "Principal": {"AWS": [OTHER_ROOT, "444455556666"]},
               "Action": "kms:Decrypt", "Resource": "*"}),
        json!({"Sid": "Lookalike", "Effect": "Allow",
               "Principal": {"AWS": ["arn:aws:iam::111122223333:role/root", "arn:aws:sts::111122223333:root"]},
               "Action": "kms:Decrypt", "Resource": "*"}),
    ]);
    assert_eq!(revoke_root(&policy, ACCOUNT, true).unwrap(), None);
}

#[test]
fn given_a_deny_naming_root_when_revoked_then_the_deny_is_untouched() {
    let deny = json!({"Sid": "NoDeletion", "Effect": "Deny", "Principal": {"AWS": [ROOT, ACCOUNT]},
                      "Action": "kms:ScheduleKeyDeletion", "Resource": "*"});
    assert_eq!(
        revoke_root(&text(vec![admin_statement(), deny.clone()]), ACCOUNT, true).unwrap(),
        None
    );
    let r = revoked(vec![
        deny.clone(),
        json!({"Effect": "Allow", "Principal": {"AWS": ROOT}, "Action": "kms:*", "Resource": "*"}),
        admin_statement(),
    ]);
    assert_eq!(statements(&r), vec![deny, admin_statement()]);
}

#[test]
fn given_root_with_a_service_principal_when_revoked_then_the_statement_keeps_the_service() {
    let r = revoked(vec![json!({"Sid": "Logs", "Effect": "Allow",
        "Principal": {"AWS": ROOT, "Service": "logs.amazonaws.com"},
        "Action": ["kms:Encrypt*", "kms:Decrypt*"], "Resource": "*",
        "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}}})]);
    assert_eq!(
        statements(&r),
        vec![json!({"Sid": "Logs", "Effect": "Allow",
            "Principal": {"Service": "logs.amazonaws.com"},
            "Action": ["kms:Encrypt*", "kms:Decrypt*"], "Resource": "*",
            "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}}})]
    );
    assert_eq!(r.removed, vec![grant("Logs", ROOT, false)]);
}

#[test]
fn given_statements_without_root_when_revoked_then_they_are_the_same_json_values() {
    let others = vec![
        admin_statement(),
        json!({"Sid": "Odd", "Resource": "*", "Action": ["kms:Decrypt"], "Effect": "Allow",
               "Principal": {"Service": ["logs.amazonaws.com"], "AWS": ["arn:aws:iam::111122223333:user/x"]}}),
        json!({"Effect": "Deny", "NotPrincipal": {"AWS": ROOT}, "Action": "kms:*", "Resource": "*"}),
        json!({"Effect": "Allow", "Principal": "*", "Action": "kms:Decrypt", "Resource": "*",
               "Condition": {"StringEquals": {"kms:ViaService": "s3.eu-west-1.amazonaws.com"}}}),
    ];
    let mut all = others.clone();
    all.insert(
        2,
        json!({"Effect": "Allow", "Principal": {"AWS": ROOT}, "Action": "kms:*", "Resource": "*"}),
    );
    assert_eq!(statements(&revoked(all)), others);
}

#[test]
fn given_the_full_modules_enable_iam_permissions_when_revoked_then_reported_and_kept_unless_configured(
) {
    let root = json!({"Sid": "EnableIAMUserPermissions", "Effect": "Allow",
                      "Principal": {"AWS": ROOT}, "Action": "kms:*", "Resource": "*"});
    let policy = text(vec![root, enable_iam_permissions(), admin_statement()]);

    let kept = revoke_root(&policy, ACCOUNT, false).unwrap().unwrap();
    assert_eq!(kept.account_wide, vec!["EnableIAMPermissions"]);
    assert!(!kept.account_wide_removed);
    assert_eq!(
        statements(&kept),
        vec![enable_iam_permissions(), admin_statement()]
    );

    let removed = revoke_root(&policy, ACCOUNT, true).unwrap().unwrap();
    assert_eq!(removed.account_wide, vec!["EnableIAMPermissions"]);
    assert!(removed.account_wide_removed);
    assert_eq!(statements(&removed), vec![admin_statement()]);
    assert_eq!(
        removed.removed,
        vec![grant("EnableIAMUserPermissions", ROOT, true)]
    );
}

#[test]
fn given_only_the_account_wide_statement_when_revoked_then_removed_only_when_configured() {
    let spellings = [
        enable_iam_permissions(),
        json!({"Effect": "Allow", "Principal": "*", "Action": "kms:Decrypt", "Resource": "*",
               "Condition": {"StringEquals": {"KMS:callerACCOUNT": [ACCOUNT]}}}),
    ];
    for statement in spellings {
        let policy = text(vec![admin_statement(), statement.clone()]);
        assert_eq!(
            revoke_root(&policy, ACCOUNT, false).unwrap(),
            None,
            "{statement}"
        );
        let r = revoke_root(&policy, ACCOUNT, true).unwrap().unwrap();
        assert!(r.removed.is_empty() && r.account_wide_removed);
        assert_eq!(statements(&r), vec![admin_statement()]);
        let parsed = Policy::parse(&policy).unwrap();
        assert_eq!(account_wide_statements(&parsed, ACCOUNT).len(), 1);
    }
}

#[test]
fn given_a_wildcard_allow_with_more_than_the_caller_account_when_checked_then_not_account_wide() {
    for statement in [
        // Also limited to one service: narrower than the account.
        json!({"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "kms:CreateGrant", "Resource": "*",
               "Condition": {"StringEquals": {"kms:CallerAccount": ACCOUNT, "kms:ViaService": "ec2.eu-west-1.amazonaws.com"}}}),
        json!({"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "kms:*", "Resource": "*",
               "Condition": {"StringEquals": {"kms:CallerAccount": "444455556666"}}}),
        json!({"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "kms:*", "Resource": "*"}),
        json!({"Effect": "Deny", "Principal": "*", "Action": "kms:*", "Resource": "*",
               "Condition": {"StringEquals": {"kms:CallerAccount": ACCOUNT}}}),
        json!({"Effect": "Allow", "Principal": {"AWS": ["*", ADMIN]}, "Action": "kms:*", "Resource": "*",
               "Condition": {"StringEquals": {"kms:CallerAccount": ACCOUNT}}}),
    ] {
        let policy = Policy::parse(&text(vec![statement.clone()])).unwrap();
        assert!(
            account_wide_statements(&policy, ACCOUNT).is_empty(),
            "{statement}"
        );
    }
}

#[test]
fn given_root_beside_an_account_limited_wildcard_when_revoked_then_what_is_left_is_account_wide() {
    let both = json!({"Sid": "RootAndAccount", "Effect": "Allow", "Principal": {"AWS": [ROOT, "*"]},
                      "Action": "kms:*", "Resource": "*",
                      "Condition": {"StringEquals": {"kms:CallerAccount": ACCOUNT}}});
    let policy = text(vec![admin_statement(), both]);

    let kept = revoke_root(&policy, ACCOUNT, false).unwrap().unwrap();
    assert_eq!(kept.account_wide, vec!["RootAndAccount"]);
    assert_eq!(kept.removed, vec![grant("RootAndAccount", ROOT, false)]);
    assert_eq!(statements(&kept)[1]["Principal"], json!({"AWS": ["*"]}));

    let removed = revoke_root(&policy, ACCOUNT, true).unwrap().unwrap();
    assert!(removed.account_wide_removed);
    assert_eq!(removed.removed, vec![grant("RootAndAccount", ROOT, true)]);
    assert_eq!(statements(&removed), vec![admin_statement()]);
    assert_eq!(
        revoke_root(&removed.document, ACCOUNT, true).unwrap(),
        None,
        "nothing left for the next run"
    );
}

#[test]
fn given_no_root_grant_when_revoked_then_none() {
    assert_eq!(
        revoke_root(&text(vec![admin_statement()]), ACCOUNT, true).unwrap(),
        None
    );
}

#[test]
fn given_a_revoked_policy_when_revoked_again_then_none() {
    let policy = text(vec![
        json!({"Effect": "Allow", "Principal": {"AWS": [ROOT, ACCOUNT, ADMIN]}, "Action": "kms:*", "Resource": "*"}),
        enable_iam_permissions(),
    ]);
    for remove_account_wide in [false, true] {
        let once = revoke_root(&policy, ACCOUNT, remove_account_wide)
            .unwrap()
            .unwrap();
        assert_eq!(
            revoke_root(&once.document, ACCOUNT, remove_account_wide).unwrap(),
            None
        );
    }
}

#[test]
fn given_a_single_statement_object_when_revoked_then_its_form_is_kept_or_the_list_is_empty() {
    let one = |principal: Value| {
        json!({"Version": "2012-10-17", "Statement": {"Sid": "Only", "Effect": "Allow",
               "Principal": principal, "Action": "kms:*", "Resource": "*"}})
        .to_string()
    };
    let r = revoke_root(&one(json!({"AWS": [ROOT, ADMIN]})), ACCOUNT, false)
        .unwrap()
        .unwrap();
    let document: Value = serde_json::from_str(&r.document).unwrap();
    assert_eq!(document["Statement"]["Principal"], json!({"AWS": [ADMIN]}));

    let r = revoke_root(&one(json!({"AWS": ROOT})), ACCOUNT, false)
        .unwrap()
        .unwrap();
    assert_eq!(statements(&r), Vec::<Value>::new());
}

#[test]
fn given_top_level_elements_when_revoked_then_they_are_kept() {
    let policy = json!({"Version": "2012-10-17", "Id": "key-default-1", "Statement": [
        json!({"Effect": "Allow", "Principal": {"AWS": ROOT}, "Action": "kms:*", "Resource": "*"}),
        admin_statement()]})
    .to_string();
    let r = revoke_root(&policy, ACCOUNT, false).unwrap().unwrap();
    let document: Value = serde_json::from_str(&r.document).unwrap();
    assert_eq!(document["Id"], "key-default-1");
    assert_eq!(document["Version"], "2012-10-17");
}

#[test]
fn given_a_policy_that_is_not_a_policy_when_revoked_then_an_error() {
    for bad in ["not json", "[]", r#"{"Statement":[{"Effect":"Allow"}]}"#] {
        assert!(revoke_root(bad, ACCOUNT, false).is_err(), "{bad}");
    }
}

#[test]
fn given_an_account_that_is_not_an_account_id_when_revoked_then_no_root_is_named() {
    let policy = text(vec![
        json!({"Effect": "Allow", "Principal": {"AWS": ""}, "Action": "kms:*", "Resource": "*"}),
    ]);
    assert_eq!(revoke_root(&policy, "", true).unwrap(), None);
}

#[test]
fn given_unique_id_principals_when_listed_then_roles_and_users_sorted_once() {
    let policy = Policy::parse(&text(vec![
        json!({"Effect": "Allow", "Principal": {"AWS": ["AROAEXAMPLEID12345678", ADMIN, "AIDAEXAMPLEID12345678"]},
               "Action": "kms:*", "Resource": "*"}),
        json!({"Effect": "Deny", "NotPrincipal": {"AWS": "AROAEXAMPLEID12345678"}, "Action": "kms:*", "Resource": "*"}),
        json!({"Effect": "Allow", "Principal": {"AWS": ["AROA", "arn:aws:iam::111122223333:role/AROAEXAMPLEID12345678"]},
               "Action": "kms:*", "Resource": "*"}),
    ]))
    .unwrap();
    assert_eq!(
        unique_id_principals(&policy),
        vec!["AIDAEXAMPLEID12345678", "AROAEXAMPLEID12345678"]
    );
}
