use super::*;

const ADMIN: &str = "arn:aws:iam::111122223333:role/kms-admin";
const PUT: &str = "kms:PutKeyPolicy";

fn policy(statements: &str) -> Policy {
    Policy::parse(&format!(
        r#"{{"Version":"2012-10-17","Statement":[{statements}]}}"#
    ))
    .unwrap()
}

const ADMIN_ALLOWED: &str = r#"{"Sid":"Admin","Effect":"Allow",
    "Principal":{"AWS":"arn:aws:iam::111122223333:role/kms-admin"},"Action":"kms:*","Resource":"*"}"#;

fn with_admin(extra: &str) -> Policy {
    policy(&format!("{ADMIN_ALLOWED},{extra}"))
}

fn reason(access: Access) -> String {
    match access {
        Access::NotAllowed { reason } => reason,
        other => panic!("expected NotAllowed, got {other:?}"),
    }
}

#[test]
fn given_an_allow_naming_the_admin_role_when_checked_then_allowed() {
    assert_eq!(access(&policy(ADMIN_ALLOWED), ADMIN, PUT), Access::Allowed);
}

#[test]
fn given_a_deny_naming_the_admin_role_when_checked_then_denied_and_a_lockout() {
    let p = with_admin(
        r#"{"Sid":"NoAdmin","Effect":"Deny","Principal":{"AWS":"arn:aws:iam::111122223333:role/kms-admin"},"Action":"kms:PutKeyPolicy","Resource":"*"}"#,
    );
    assert_eq!(
        access(&p, ADMIN, PUT),
        Access::Denied {
            statement: "\"NoAdmin\"".into()
        }
    );
    let problems = lockout_problems(&p, &[(ADMIN, PUT)], true);
    assert_eq!(problems.len(), 1);
    assert!(
        problems[0].contains(ADMIN)
            && problems[0].contains(PUT)
            && problems[0].contains("\"NoAdmin\" names it"),
        "{problems:?}"
    );
}

#[test]
fn given_a_deny_naming_the_account_or_every_principal_when_checked_then_denied() {
    for principal in [
        r#"{"AWS":"arn:aws:iam::111122223333:root"}"#,
        r#"{"AWS":"111122223333"}"#,
        r#"{"AWS":"*"}"#,
        r#""*""#,
        r#"{"AWS":"arn:aws:sts::111122223333:assumed-role/kms-admin/alice"}"#,
    ] {
        let p = with_admin(&format!(
            r#"{{"Effect":"Deny","Principal":{principal},"Action":"kms:*","Resource":"*"}}"#
        ));
        assert_eq!(
            access(&p, ADMIN, PUT),
            Access::Denied {
                statement: "Statement[1]".into()
            },
            "{principal}"
        );
    }
}

#[test]
fn given_a_deny_naming_someone_else_or_another_action_when_checked_then_still_allowed() {
    for deny in [
        r#"{"Effect":"Deny","Principal":{"AWS":"arn:aws:iam::444455556666:root"},"Action":"kms:*","Resource":"*"}"#,
        r#"{"Effect":"Deny","Principal":{"AWS":"arn:aws:iam::111122223333:role/other"},"Action":"kms:*","Resource":"*"}"#,
        r#"{"Effect":"Deny","Principal":{"AWS":"arn:aws:sts::111122223333:assumed-role/other/alice"},"Action":"kms:*","Resource":"*"}"#,
        r#"{"Effect":"Deny","Principal":"*","Action":"kms:Decrypt","Resource":"*"}"#,
        r#"{"Effect":"Deny","Principal":"*","NotAction":"kms:Put*","Resource":"*"}"#,
        r#"{"Effect":"Deny","Principal":{"Service":"logs.amazonaws.com"},"Action":"kms:*","Resource":"*"}"#,
        r#"{"Effect":"Deny","Principal":{"Federated":"cognito-identity.amazonaws.com"},"Action":"kms:*","Resource":"*"}"#,
    ] {
        assert_eq!(
            access(&with_admin(deny), ADMIN, PUT),
            Access::Allowed,
            "{deny}"
        );
    }
}

#[test]
fn given_a_conditional_deny_when_checked_then_its_conditions_are_assumed_to_hold() {
    let p = with_admin(
        r#"{"Sid":"OnlyFromVpc","Effect":"Deny","Principal":"*","Action":"kms:*","Resource":"*",
            "Condition":{"StringNotEquals":{"aws:SourceVpc":"vpc-1"}}}"#,
    );
    assert_eq!(access(&p, ADMIN, PUT).decision(), Decision::Denied);
    assert!(lockout_problems(&p, &[(ADMIN, PUT)], true)[0].contains("conditions are assumed"));
}

#[test]
fn given_a_deny_scoped_to_another_resource_when_checked_then_it_still_counts() {
    let p = with_admin(
        r#"{"Effect":"Deny","Principal":"*","Action":"kms:*","Resource":"arn:aws:kms:eu-west-1:111122223333:key/other"}"#,
    );
    assert_eq!(access(&p, ADMIN, PUT).decision(), Decision::Denied);
}

#[test]
fn given_a_not_principal_deny_not_listing_the_admin_when_checked_then_denied_and_a_lockout() {
    for excepted in [
        r#"{"AWS":"arn:aws:iam::111122223333:role/break-glass"}"#,
        r#"{"AWS":"arn:aws:sts::111122223333:assumed-role/kms-admin/alice"}"#,
        r#"{"AWS":"AROAEXAMPLEID1234567"}"#,
        r#"{"Service":"logs.amazonaws.com"}"#,
    ] {
        let p = with_admin(&format!(
            r#"{{"Sid":"OnlyBreakGlass","Effect":"Deny","NotPrincipal":{excepted},"Action":"kms:*","Resource":"*"}}"#
        ));
        assert_eq!(
            access(&p, ADMIN, PUT),
            Access::Denied {
                statement: "\"OnlyBreakGlass\"".into()
            },
            "{excepted}"
        );
        let problems = lockout_problems(&p, &[(ADMIN, PUT)], true);
        assert!(problems[0].contains("NotPrincipal"), "{problems:?}");
    }
}

#[test]
fn given_a_not_principal_deny_listing_the_admin_or_its_account_when_checked_then_still_denied() {
    // Even the break-glass pattern AWS documents (account, role and session listed) spares
    // only the listed session; the admin's next session is denied.
    for excepted in [
        r#"{"AWS":"arn:aws:iam::111122223333:role/kms-admin"}"#,
        r#"{"AWS":["arn:aws:iam::111122223333:role/kms-admin","arn:aws:iam::111122223333:root"]}"#,
        r#"{"AWS":"arn:aws:iam::111122223333:root"}"#,
        r#"{"AWS":"111122223333"}"#,
        r#"{"AWS":"arn:aws:sts::111122223333:assumed-role/kms-admin/*"}"#,
        r#"{"AWS":["arn:aws:iam::111122223333:root","arn:aws:iam::111122223333:role/kms-admin","arn:aws:sts::111122223333:assumed-role/kms-admin/alice"]}"#,
    ] {
        let p = with_admin(&format!(
            r#"{{"Effect":"Deny","NotPrincipal":{excepted},"Action":"kms:*","Resource":"*"}}"#
        ));
        assert_eq!(
            access(&p, ADMIN, PUT).decision(),
            Decision::Denied,
            "{excepted}"
        );
    }
}

#[test]
fn given_the_admin_only_as_a_wildcard_principal_when_checked_then_a_lockout() {
    for principal in [r#""*""#, r#"{"AWS":"*"}"#] {
        let p = policy(&format!(
            r#"{{"Sid":"Everyone","Effect":"Allow","Principal":{principal},"Action":"kms:*","Resource":"*"}}"#
        ));
        let why = reason(access(&p, ADMIN, PUT));
        assert!(
            why.contains("wildcard principal") && why.contains("\"Everyone\""),
            "{why}"
        );
        assert_eq!(lockout_problems(&p, &[(ADMIN, PUT)], true).len(), 1);
    }
}

#[test]
fn given_only_a_conditional_allow_when_checked_then_not_access() {
    let p = policy(
        r#"{"Sid":"AdminWithMfa","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/kms-admin"},
            "Action":"kms:*","Resource":"*","Condition":{"Bool":{"aws:MultiFactorAuthPresent":"true"}}}"#,
    );
    let why = reason(access(&p, ADMIN, PUT));
    assert!(
        why.contains("\"AdminWithMfa\" allows it only under conditions"),
        "{why}"
    );
}

#[test]
fn given_a_not_action_allow_covering_put_key_policy_when_checked_then_access() {
    let p = policy(
        r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/kms-admin"},"NotAction":["kms:Decrypt","kms:Encrypt"],"Resource":"*"}"#,
    );
    assert_eq!(access(&p, ADMIN, PUT), Access::Allowed);
    let excluding = policy(
        r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/kms-admin"},"NotAction":"kms:Put*","Resource":"*"}"#,
    );
    assert_eq!(
        access(&excluding, ADMIN, PUT).decision(),
        Decision::NotAllowed
    );
}

#[test]
fn given_wildcard_action_patterns_when_checked_then_they_match_case_insensitively() {
    for action in [
        "kms:Put*",
        "*",
        "kms:*",
        "KMS:PUTKEYPOLICY",
        "kms:?utKeyPolicy",
    ] {
        let p = policy(&format!(
            r#"{{"Effect":"Allow","Principal":{{"AWS":"{ADMIN}"}},"Action":"{action}","Resource":"*"}}"#
        ));
        assert_eq!(access(&p, ADMIN, PUT), Access::Allowed, "{action}");
    }
    let p = policy(&format!(
        r#"{{"Effect":"Allow","Principal":{{"AWS":"{ADMIN}"}},"Action":"kms:Get*","Resource":"*"}}"#
    ));
    assert_eq!(access(&p, ADMIN, PUT).decision(), Decision::NotAllowed);
}

#[test]
fn given_an_account_root_allow_when_checked_then_via_iam() {
    for root in ["arn:aws:iam::111122223333:root", "111122223333"] {
        let p = policy(&format!(
            r#"{{"Sid":"EnableRootAccess","Effect":"Allow","Principal":{{"AWS":"{root}"}},"Action":"kms:*","Resource":"*"}}"#
        ));
        assert_eq!(access(&p, ADMIN, PUT), Access::ViaIam, "{root}");
        assert!(lockout_problems(&p, &[(ADMIN, PUT)], true).is_empty());
        let problems = lockout_problems(&p, &[(ADMIN, PUT)], false);
        assert!(
            problems[0].contains("only through the account principal")
                && problems[0].contains("\"EnableRootAccess\""),
            "{problems:?}"
        );
    }
    let other_account = policy(
        r#"{"Effect":"Allow","Principal":{"AWS":"444455556666"},"Action":"kms:*","Resource":"*"}"#,
    );
    assert_eq!(
        access(&other_account, ADMIN, PUT).decision(),
        Decision::NotAllowed
    );
}

#[test]
fn given_both_a_named_and_an_account_allow_when_checked_then_the_named_one_wins() {
    let p = with_admin(
        r#"{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"kms:*","Resource":"*"}"#,
    );
    assert_eq!(access(&p, ADMIN, PUT), Access::Allowed);
}

#[test]
fn given_an_allow_for_another_resource_when_checked_then_not_access() {
    let p = policy(&format!(
        r#"{{"Effect":"Allow","Principal":{{"AWS":"{ADMIN}"}},"Action":"kms:*","Resource":"arn:aws:kms:eu-west-1:111122223333:key/x"}}"#
    ));
    assert!(reason(access(&p, ADMIN, PUT)).contains("Resource other than"));
    let not_resource = policy(&format!(
        r#"{{"Effect":"Allow","Principal":{{"AWS":"{ADMIN}"}},"Action":"kms:*","NotResource":"arn:aws:kms:eu-west-1:111122223333:key/x"}}"#
    ));
    assert_eq!(
        access(&not_resource, ADMIN, PUT).decision(),
        Decision::NotAllowed
    );
}

#[test]
fn given_service_federated_or_session_principals_when_checked_then_they_never_grant_the_role() {
    for principal in [
        r#"{"Service":"kms-admin.amazonaws.com"}"#,
        r#"{"Federated":"arn:aws:iam::111122223333:saml-provider/kms-admin"}"#,
        r#"{"AWS":"arn:aws:sts::111122223333:assumed-role/kms-admin/alice"}"#,
    ] {
        let p = policy(&format!(
            r#"{{"Effect":"Allow","Principal":{principal},"Action":"kms:*","Resource":"*"}}"#
        ));
        assert_eq!(
            access(&p, ADMIN, PUT).decision(),
            Decision::NotAllowed,
            "{principal}"
        );
    }
}

#[test]
fn given_a_role_with_a_path_when_checked_then_only_its_full_arn_matches() {
    let with_path = "arn:aws:iam::111122223333:role/ops/kms-admin";
    let p = policy(&format!(
        r#"{{"Effect":"Allow","Principal":{{"AWS":"{with_path}"}},"Action":"kms:*","Resource":"*"}}"#
    ));
    assert_eq!(access(&p, with_path, PUT), Access::Allowed);
    assert_eq!(access(&p, ADMIN, PUT).decision(), Decision::NotAllowed);
}

#[test]
fn given_a_unique_id_of_a_deleted_role_when_checked_then_it_does_not_match_the_role() {
    let p = policy(
        r#"{"Effect":"Allow","Principal":{"AWS":"AROAEXAMPLEID1234567"},"Action":"kms:*","Resource":"*"},
           {"Effect":"Deny","Principal":{"AWS":"AROAEXAMPLEID7654321"},"Action":"kms:*","Resource":"*"}"#,
    );
    assert!(reason(access(&p, ADMIN, PUT)).contains("no Allow statement names it"));
}

#[test]
fn given_an_allow_with_not_principal_when_checked_then_not_access() {
    let p = policy(
        r#"{"Effect":"Allow","NotPrincipal":{"AWS":"arn:aws:iam::444455556666:root"},"Action":"kms:*","Resource":"*"}"#,
    );
    assert!(reason(access(&p, ADMIN, PUT)).contains("NotPrincipal"));
}

#[test]
fn given_several_requirements_when_checked_then_every_failure_is_listed() {
    let p = policy(
        r#"{"Sid":"EnableRootAccess","Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"kms:*","Resource":"*"},
           {"Sid":"Admin","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/kms-admin"},"Action":"kms:*","Resource":"*"},
           {"Sid":"NoBreakGlassDecrypt","Effect":"Deny","Principal":{"AWS":"arn:aws:iam::111122223333:role/break-glass"},"Action":"kms:Decrypt","Resource":"*"}"#,
    );
    let problems = lockout_problems(
        &p,
        &[
            (ADMIN, PUT),
            ("arn:aws:iam::111122223333:role/break-glass", PUT),
            ("arn:aws:iam::111122223333:role/break-glass", "kms:Decrypt"),
            ("arn:aws:iam::444455556666:role/auditor", "kms:DescribeKey"),
        ],
        false,
    );
    assert_eq!(problems.len(), 3, "{problems:#?}");
    assert!(problems[0].contains("role/break-glass may call kms:PutKeyPolicy only through"));
    assert!(problems[1].contains("\"NoBreakGlassDecrypt\""));
    assert!(problems[2].contains("role/auditor may not call kms:DescribeKey"));
}

const REPLICATION: &str = "arn:aws:iam::111122223333:role/s3-replication";
const ENCRYPT: &str = "kms:Encrypt";
const GENERATE: &str = "kms:GenerateDataKey";
const S3_WEST_2: &str = "s3.us-west-2.amazonaws.com";

/// S3 replicating into us-west-2 on behalf of the replication role.
fn through_s3() -> RequestContext {
    RequestContext::new()
        .with("kms:ViaService", S3_WEST_2)
        .with("kms:CallerAccount", "111122223333")
}

/// An Allow of Encrypt and GenerateDataKey to the replication role under `condition`.
fn replication_allow(condition: &str) -> String {
    format!(
        r#"{{"Sid":"AllowReplication","Effect":"Allow","Principal":{{"AWS":"{REPLICATION}"}},
            "Action":["kms:Encrypt","kms:GenerateDataKey"],"Resource":"*","Condition":{condition}}}"#
    )
}

#[test]
fn given_an_allow_via_s3_in_the_replica_region_when_s3_asks_there_then_allowed() {
    let p = policy(&replication_allow(
        r#"{"StringEquals":{"kms:ViaService":"s3.us-west-2.amazonaws.com","kms:CallerAccount":"111122223333"}}"#,
    ));
    for action in [ENCRYPT, GENERATE] {
        assert_eq!(
            access_in_context(&p, REPLICATION, action, &through_s3()),
            Access::Allowed,
            "{action}"
        );
    }
    // Without a context nothing is known, exactly as before.
    assert!(reason(access(&p, REPLICATION, ENCRYPT)).contains("only under conditions"));
}

#[test]
fn given_an_allow_via_s3_in_another_region_when_s3_asks_then_not_allowed_naming_both() {
    let p = policy(&replication_allow(
        r#"{"StringEquals":{"kms:ViaService":"s3.eu-west-1.amazonaws.com"}}"#,
    ));
    let why = reason(access_in_context(&p, REPLICATION, ENCRYPT, &through_s3()));
    assert_eq!(
        why,
        "statement \"AllowReplication\" allows it only when kms:ViaService is \
         s3.eu-west-1.amazonaws.com, and the request comes through s3.us-west-2.amazonaws.com"
    );
}

#[test]
fn given_a_string_like_allow_for_s3_in_any_region_when_s3_asks_then_allowed() {
    let p = policy(&replication_allow(
        r#"{"StringLike":{"kms:ViaService":"s3.*.amazonaws.com"}}"#,
    ));
    assert_eq!(
        access_in_context(&p, REPLICATION, GENERATE, &through_s3()),
        Access::Allowed
    );
    let ec2 = RequestContext::new().with("kms:ViaService", "ec2.us-west-2.amazonaws.com");
    assert!(reason(access_in_context(&p, REPLICATION, GENERATE, &ec2)).contains("is like s3.*"));
}

#[test]
fn given_a_deny_unless_via_listed_services_when_s3_is_listed_or_not_then_skipped_or_denied() {
    let deny = |services: &str| {
        format!(
            r#"{},{{"Sid":"OnlyThroughServices","Effect":"Deny","Principal":"*","Action":"kms:*","Resource":"*",
                "Condition":{{"StringNotEquals":{{"kms:ViaService":{services}}}}}}}"#,
            replication_allow(r#"{"StringLike":{"kms:ViaService":"s3.*.amazonaws.com"}}"#)
        )
    };
    let listed = policy(&deny(
        r#"["s3.us-west-2.amazonaws.com","ec2.us-west-2.amazonaws.com"]"#,
    ));
    assert_eq!(
        access_in_context(&listed, REPLICATION, ENCRYPT, &through_s3()),
        Access::Allowed
    );
    let unlisted = policy(&deny(r#"["ec2.us-west-2.amazonaws.com"]"#));
    assert_eq!(
        access_in_context(&unlisted, REPLICATION, ENCRYPT, &through_s3()),
        Access::Denied {
            statement: "\"OnlyThroughServices\"".into()
        }
    );
    let caller = Caller::parse(REPLICATION);
    let known = through_s3().for_caller(&caller);
    let detail = evaluate(&unlisted, &caller, ENCRYPT, Some(&known)).detail;
    assert_eq!(
        detail,
        "names every principal (\"*\") (its conditions hold: kms:ViaService is not \
         ec2.us-west-2.amazonaws.com, and the request comes through s3.us-west-2.amazonaws.com)"
    );
}

#[test]
fn given_a_deny_to_all_but_listed_principal_arns_when_the_role_is_listed_then_not_denied() {
    let p = policy(&format!(
        r#"{},{{"Sid":"OnlyListedRoles","Effect":"Deny","Principal":"*","Action":"kms:*","Resource":"*",
            "Condition":{{"StringNotEquals":{{"aws:PrincipalArn":["{REPLICATION}","{ADMIN}"]}}}}}}"#,
        replication_allow(r#"{"StringEquals":{"kms:ViaService":"s3.us-west-2.amazonaws.com"}}"#)
    ));
    // aws:PrincipalArn comes from the principal evaluated, whatever the context says.
    let lying = through_s3().with("aws:PrincipalArn", "arn:aws:iam::111122223333:role/x");
    assert_eq!(
        access_in_context(&p, REPLICATION, ENCRYPT, &lying),
        Access::Allowed
    );
    let other = "arn:aws:iam::111122223333:role/other";
    assert_eq!(
        access_in_context(&p, other, ENCRYPT, &through_s3()).decision(),
        Decision::Denied
    );
    // A session ARN does not tell its role's ARN, so the Deny may apply.
    let session = "arn:aws:sts::111122223333:assumed-role/s3-replication/s";
    assert_eq!(
        access_in_context(&p, session, ENCRYPT, &through_s3()).decision(),
        Decision::Denied
    );
    assert_eq!(
        access(&p, REPLICATION, ENCRYPT).decision(),
        Decision::Denied
    );
}

#[test]
fn given_a_condition_on_a_key_not_in_the_context_when_checked_then_allow_void_and_deny_applies() {
    let allow = policy(&replication_allow(
        r#"{"StringEquals":{"kms:ViaService":"s3.us-west-2.amazonaws.com"},
            "StringLike":{"kms:EncryptionContext:aws:s3:arn":"arn:aws:s3:::replica-bucket/*"}}"#,
    ));
    let why = reason(access_in_context(
        &allow,
        REPLICATION,
        ENCRYPT,
        &through_s3(),
    ));
    assert!(
        why.contains("kms:EncryptionContext:aws:s3:arn is like arn:aws:s3:::replica-bucket/*")
            && why.contains("is not known"),
        "{why}"
    );
    let deny = with_admin(
        r#"{"Sid":"OnlyReplicaBucket","Effect":"Deny","Principal":"*","Action":"kms:*","Resource":"*",
            "Condition":{"StringNotLike":{"kms:EncryptionContext:aws:s3:arn":"arn:aws:s3:::replica-bucket/*"}}}"#,
    );
    assert_eq!(
        access_in_context(&deny, ADMIN, ENCRYPT, &through_s3()).decision(),
        Decision::Denied
    );
}

#[test]
fn given_if_exists_and_null_when_the_key_is_known_or_not_then_judged_like_the_plain_operator() {
    let allow = |condition: &str| policy(&replication_allow(condition));
    let equals =
        allow(r#"{"StringEqualsIfExists":{"kms:ViaService":"s3.us-west-2.amazonaws.com"}}"#);
    assert_eq!(
        access_in_context(&equals, REPLICATION, ENCRYPT, &through_s3()),
        Access::Allowed
    );
    let elsewhere = RequestContext::new().with("kms:ViaService", "s3.eu-west-1.amazonaws.com");
    assert!(
        reason(access_in_context(&equals, REPLICATION, ENCRYPT, &elsewhere))
            .contains("or is absent, and the request comes through s3.eu-west-1")
    );
    // Absent would satisfy it, present with another value would not: unknown.
    assert!(reason(access_in_context(
        &equals,
        REPLICATION,
        ENCRYPT,
        &RequestContext::new()
    ))
    .contains("is not known"));
    let present = allow(r#"{"Null":{"kms:ViaService":"false"}}"#);
    assert_eq!(
        access_in_context(&present, REPLICATION, ENCRYPT, &through_s3()),
        Access::Allowed
    );
    assert_eq!(
        access_in_context(&present, REPLICATION, ENCRYPT, &RequestContext::new()).decision(),
        Decision::NotAllowed
    );
    for deny in [
        r#"{"Effect":"Deny","Principal":"*","Action":"kms:*","Resource":"*",
            "Condition":{"StringNotEqualsIfExists":{"kms:ViaService":"s3.us-west-2.amazonaws.com"}}}"#,
        r#"{"Effect":"Deny","Principal":"*","Action":"kms:*","Resource":"*",
            "Condition":{"Null":{"kms:ViaService":"true"}}}"#,
        r#"{"Effect":"Deny","Principal":"*","Action":"kms:*","Resource":"*",
            "Condition":{"BoolIfExists":{"aws:ViaAWSService":"false"}}}"#,
    ] {
        let p = with_admin(deny);
        let via_aws = through_s3().with("aws:ViaAWSService", "TRUE");
        assert_eq!(
            access_in_context(&p, ADMIN, ENCRYPT, &via_aws),
            Access::Allowed,
            "{deny}"
        );
        assert_eq!(
            access_in_context(&p, ADMIN, ENCRYPT, &RequestContext::new()).decision(),
            Decision::Denied,
            "{deny}"
        );
    }
}

#[test]
fn given_keys_in_any_case_and_ignore_case_operators_when_checked_then_keys_match_values_per_operator(
) {
    let context = RequestContext::new().with("KMS:viaService", S3_WEST_2);
    assert_eq!(context.get("kms:ViaService"), Some(S3_WEST_2));
    let allow = |condition: &str| policy(&replication_allow(condition));
    let upper_key = allow(r#"{"StringEquals":{"KMS:VIASERVICE":"s3.us-west-2.amazonaws.com"}}"#);
    assert_eq!(
        access_in_context(&upper_key, REPLICATION, ENCRYPT, &context),
        Access::Allowed
    );
    let upper_value = allow(r#"{"StringEquals":{"kms:ViaService":"S3.US-WEST-2.AMAZONAWS.COM"}}"#);
    assert_eq!(
        access_in_context(&upper_value, REPLICATION, ENCRYPT, &context).decision(),
        Decision::NotAllowed
    );
    let ignoring =
        allow(r#"{"StringEqualsIgnoreCase":{"kms:ViaService":"S3.US-WEST-2.AMAZONAWS.COM"}}"#);
    assert_eq!(
        access_in_context(&ignoring, REPLICATION, ENCRYPT, &context),
        Access::Allowed
    );
    let deny = with_admin(
        r#"{"Effect":"Deny","Principal":"*","Action":"kms:*","Resource":"*",
            "Condition":{"StringNotEqualsIgnoreCase":{"kms:viaservice":["S3.US-WEST-2.AMAZONAWS.COM"]}}}"#,
    );
    assert_eq!(
        access_in_context(&deny, ADMIN, ENCRYPT, &context),
        Access::Allowed
    );
    let other = RequestContext::new().with("kms:ViaService", "ec2.us-west-2.amazonaws.com");
    assert_eq!(
        access_in_context(&deny, ADMIN, ENCRYPT, &other).decision(),
        Decision::Denied
    );
}

#[test]
fn given_set_operators_other_operators_or_policy_variables_when_checked_then_unknown() {
    for condition in [
        r#"{"ForAnyValue:StringEquals":{"kms:ViaService":"s3.us-west-2.amazonaws.com"}}"#,
        r#"{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::111122223333:role/*"}}"#,
        r#"{"StringEquals":{"kms:ViaService":"${aws:username}"}}"#,
        r#"{"NullIfExists":{"kms:ViaService":"false"}}"#,
    ] {
        let allow = policy(&replication_allow(condition));
        assert_eq!(
            access_in_context(&allow, REPLICATION, ENCRYPT, &through_s3()).decision(),
            Decision::NotAllowed,
            "{condition}"
        );
        let deny = with_admin(&format!(
            r#"{{"Effect":"Deny","Principal":"*","Action":"kms:*","Resource":"*","Condition":{condition}}}"#
        ));
        assert_eq!(
            access_in_context(&deny, ADMIN, ENCRYPT, &through_s3()).decision(),
            Decision::Denied,
            "{condition}"
        );
    }
    let set = policy(&replication_allow(
        r#"{"ForAnyValue:StringEquals":{"kms:ViaService":"s3.us-west-2.amazonaws.com"}}"#,
    ));
    let why = reason(access_in_context(&set, REPLICATION, ENCRYPT, &through_s3()));
    assert!(why.contains("an operator not evaluated here"), "{why}");
}

#[test]
fn given_long_condition_values_when_reported_then_the_reason_is_bounded() {
    let long = "s".repeat(500);
    let p = policy(&replication_allow(&format!(
        r#"{{"StringEquals":{{"kms:ViaService":["{long}","a","b","c","d","e","f"]}}}}"#
    )));
    let context = RequestContext::new().with("kms:ViaService", long.repeat(2));
    let why = reason(access_in_context(&p, REPLICATION, ENCRYPT, &context));
    assert!(why.chars().count() < 400, "{why}");
}

#[test]
fn given_odd_principals_and_actions_when_checked_then_nothing_panics() {
    let p = with_admin(
        r#"{"Sid":"é","Effect":"Deny","NotPrincipal":{"AWS":["arn:","arn:aws:sts::1:assumed-role","arn:aws:sts::111122223333:assumed-role/x"]},"NotAction":"","Resource":"*"}"#,
    );
    let long = "é".repeat(500);
    for principal in [
        "",
        "*",
        "arn",
        "arn:aws:iam::",
        ":::::::",
        "arn:aws:iam::111122223333:role/",
        long.as_str(),
    ] {
        for action in ["", "*", "kms:", long.as_str()] {
            let _ = access(&p, principal, action);
            for problem in lockout_problems(&p, &[(principal, action)], false) {
                assert!(problem.chars().count() < 600, "{problem}");
            }
        }
    }
}

#[test]
fn a_unique_id_left_for_a_deleted_principal_can_do_nothing() {
    // KMS shows a deleted role by its unique id; nobody can make a request as that id, and a
    // role created again under the same name is a different principal the policy does not name.
    let policy = Policy::parse(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":["AROAEXAMPLEDELETED1234","arn:aws:iam::111122223333:role/kms-admin"]},"Action":"kms:*","Resource":"*"}]}"#,
    )
    .unwrap();
    assert!(matches!(
        access(&policy, "AROAEXAMPLEDELETED1234", "kms:PutKeyPolicy"),
        Access::NotAllowed { .. }
    ));
    assert!(matches!(
        access_in_context(
            &policy,
            "AROAEXAMPLEDELETED1234",
            "kms:Encrypt",
            &RequestContext::new()
        ),
        Access::NotAllowed { .. }
    ));
    assert_eq!(
        access(
            &policy,
            "arn:aws:iam::111122223333:role/kms-admin",
            "kms:PutKeyPolicy"
        ),
        Access::Allowed
    );
}
