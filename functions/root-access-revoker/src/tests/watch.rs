#[test]
fn trust_policies_nobody_can_assume_are_told_from_ones_someone_can() {
    use crate::watch::trust_allows_assume;
    use shared::base::text::percent_decode;
    assert!(trust_allows_assume(
        r#"{"Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#
    ));
    assert!(!trust_allows_assume(
        r#"{"Statement":[{"Effect":"Deny","Principal":{"AWS":"*"},"Action":"sts:AssumeRole"}]}"#
    ));
    assert!(!trust_allows_assume(r#"{"Statement":[]}"#));
    assert!(!trust_allows_assume("not json"));
    assert_eq!(percent_decode("%7B%22a%22%3A1%7D"), r#"{"a":1}"#);
}

const ACCOUNT: &str = "111122223333";
const ROLE: &str = "arn:aws:iam::111122223333:role/kms-admin";
const SELF: &str = "arn:aws:iam::111122223333:role/root-access-revoker";

#[test]
fn a_role_is_the_only_administrator_when_nobody_else_may_change_the_policy() {
    let role_all = r#"{"Sid":"Admin","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/kms-admin"},"Action":"kms:*","Resource":"*"}"#;
    let self_control = r#"{"Sid":"Guardrails","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/root-access-revoker"},"Action":["kms:PutKeyPolicy","kms:GetKeyPolicy","kms:DescribeKey"],"Resource":"*"}"#;
    let root_all = r#"{"Sid":"EnableRootAccess","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}"#;
    let bare_account = r#"{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"kms:PutKeyPolicy","Resource":"*"}"#;
    let root_decrypt = r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:Decrypt","Resource":"*"}"#;
    let other_admin = r#"{"Sid":"Other","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/ops-admin"},"Action":"kms:PutKeyPolicy","Resource":"*"}"#;
    let other_user = r#"{"Sid":"App","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/app"},"Action":["kms:Decrypt","kms:Encrypt"],"Resource":"*"}"#;
    let other_conditional = r#"{"Sid":"OtherMfa","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/ops-admin"},"Action":"kms:*","Resource":"*","Condition":{"Bool":{"aws:MultiFactorAuthPresent":"true"}}}"#;
    let other_denied = r#"{"Sid":"NoOps","Effect":"Deny","Principal":{"AWS":"arn:aws:iam::111122223333:role/ops-admin"},"Action":"kms:PutKeyPolicy","Resource":"*"}"#;
    let role_and_other = r#"{"Sid":"Admins","Effect":"Allow","Principal":{"AWS":["arn:aws:iam::111122223333:role/kms-admin","arn:aws:iam::111122223333:role/ops-admin"]},"Action":"kms:*","Resource":"*"}"#;
    let everyone = r#"{"Sid":"Everyone","Effect":"Allow","Principal":{"AWS":"*"},"Action":"kms:Decrypt","Resource":"*"}"#;
    // What KMS shows where the policy named an administrator since deleted.
    let deleted_other = r#"{"Sid":"Former","Effect":"Allow","Principal":{"AWS":"AROAEXAMPLEDELETED1234"},"Action":"kms:*","Resource":"*"}"#;
    let role_and_deleted = r#"{"Sid":"Admins","Effect":"Allow","Principal":{"AWS":["arn:aws:iam::111122223333:role/kms-admin","AROAEXAMPLEDELETED1234"]},"Action":"kms:*","Resource":"*"}"#;

    #[rustfmt::skip]
    let table: Vec<(&str, Vec<&str>, bool)> = vec![
        ("the role and the function alone", vec![role_all, self_control], true),
        ("the role alone", vec![role_all], true),
        ("the root may administer too", vec![role_all, self_control, root_all], false),
        ("the bare account id may change the policy", vec![role_all, bare_account], false),
        ("the root may only decrypt", vec![role_all, self_control, root_decrypt], true),
        ("another role may change the policy", vec![role_all, self_control, other_admin], false),
        ("another role named with it in one statement", vec![role_and_other, self_control], false),
        ("another role may only use the key", vec![role_all, self_control, other_user], true),
        ("another role may administer only under a condition", vec![role_all, self_control, other_conditional], true),
        ("another role's grant is denied", vec![role_all, self_control, other_admin, other_denied], true),
        ("a wildcard principal is nobody's administration", vec![role_all, self_control, everyone], true),
        ("nobody but the function administers (the role is gone)", vec![self_control], true),
        ("the other administrator was deleted: its unique id can act as nobody", vec![role_all, self_control, deleted_other], true),
        ("a deleted administrator named beside the role", vec![role_and_deleted, self_control], true),
    ];

    for (case, statements, expected) in table {
        let text = format!(
            r#"{{"Version":"2012-10-17","Statement":[{}]}}"#,
            statements.join(",")
        );
        let policy = shared::policy::model::Policy::parse(&text).unwrap();
        assert_eq!(
            crate::watch::only_administrator(&policy, ROLE, SELF, ACCOUNT),
            expected,
            "{case}"
        );
    }
}
