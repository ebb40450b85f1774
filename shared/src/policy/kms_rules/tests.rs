use super::*;

/// The shape `baseline.rs` renders: root, an admin role with a path, key users, services.
const VALID: &str = r#"{
  "Version": "2012-10-17",
  "Id": "kms-guardrails-baseline",
  "Statement": [
    {"Sid": "EnableRootAccess", "Effect": "Allow",
     "Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": "kms:*", "Resource": "*"},
    {"Sid": "AllowKmsAdminRole", "Effect": "Allow",
     "Principal": {"AWS": ["arn:aws:iam::111122223333:role/ops/kms-admin", "111122223333"]},
     "Action": ["kms:Create*", "kms:Put*"], "Resource": ["*"]},
    {"Sid": "Allow key users (spaces are fine in key policy Sids)", "Effect": "Allow",
     "Principal": {"AWS": ["arn:aws:iam::111122223333:user/app",
                           "arn:aws:sts::111122223333:assumed-role/app/session-1",
                           "arn:aws-cn:iam::111122223333:role/app"]},
     "NotAction": "kms:Put*", "Resource": "*"},
    {"Sid": "AllowCloudWatchLogs", "Effect": "Allow",
     "Principal": {"Service": "logs.eu-west-1.amazonaws.com"}, "Action": "kms:Decrypt*", "Resource": "*",
     "Condition": {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": "arn:aws:logs:eu-west-1:111122223333:*"}}},
    {"Sid": "AllowEC2LaunchGrant", "Effect": "Allow", "Principal": {"AWS": "*"},
     "Action": "kms:CreateGrant", "Resource": "*",
     "Condition": {"StringEquals": {"kms:ViaService": "ec2.eu-west-1.amazonaws.com"},
                   "Bool": {"kms:GrantIsForAWSResource": true}}},
    {"Effect": "Deny", "NotPrincipal": {"AWS": ["arn:aws:iam::111122223333:role/ops/kms-admin", "arn:aws:iam::111122223333:root"]},
     "Action": "kms:ScheduleKeyDeletion", "Resource": "*"}
  ]}"#;

fn violations(document: &str) -> Vec<String> {
    match check_kms_rules(document) {
        Ok(_) => panic!("accepted: {document}"),
        Err(e) => e.violations,
    }
}

/// A one-statement policy with `statement` spliced in.
fn single(statement: &str) -> String {
    format!(r#"{{"Version":"2012-10-17","Statement":[{statement}]}}"#)
}

fn assert_single_violation(document: &str, expected: &[&str]) {
    let found = violations(document);
    assert_eq!(found.len(), 1, "{found:#?}");
    for part in expected {
        assert!(found[0].contains(part), "{:?} lacks {part:?}", found[0]);
    }
}

#[test]
fn a_valid_baseline_like_policy_passes() {
    let policy = check_kms_rules(VALID).unwrap();
    assert_eq!(policy.statements.len(), 6);
}

#[test]
fn a_document_that_is_not_a_json_object_is_refused() {
    assert_single_violation("{\"Statement\": [", &["[JSON object]", "not JSON"]);
    assert_single_violation("[]", &["[JSON object]", "not a JSON object"]);
    assert_single_violation(
        r#"{"Version":"2012-10-17"}"#,
        &["[Statement]", "no Statement"],
    );
    assert_single_violation(
        r#"{"Version":"2012-10-17","Statement":[]}"#,
        &["[Statement]", "at least one statement"],
    );
    assert_single_violation(
        r#"{"Version":"2012-10-17","Statement":[42]}"#,
        &["[Statement] Statement[0]", "not a JSON object"],
    );
    assert_single_violation(
        &single(r#"{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"}"#)
            .replace("2012-10-17", "2020-01-01"),
        &["[Version]", "\"2020-01-01\""],
    );
}

#[test]
fn a_document_over_32768_bytes_is_refused_and_one_at_the_limit_passes() {
    let statement = r#"{"Sid":"Admin","Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"kms:*","Resource":"*"}"#;
    let base = single(statement);
    let at_limit = format!("{base}{}", " ".repeat(MAX_POLICY_BYTES - base.len()));
    assert_eq!(at_limit.len(), MAX_POLICY_BYTES);
    assert!(check_kms_rules(&at_limit).is_ok());
    assert_single_violation(
        &format!("{at_limit} "),
        &["[size] document", "32769 bytes", "at most 32768"],
    );
    // Latin-1 characters take two UTF-8 bytes; the byte count is what is limited.
    let latin1 = format!(
        "{base}{}",
        "é".repeat((MAX_POLICY_BYTES - base.len()) / 2 + 1)
    )
    .replacen("\"Sid\":\"Admin\"", "\"Sid\":\"Admin\"", 1);
    assert!(violations(&latin1)[0].starts_with("[size]"));
}

#[test]
fn characters_outside_latin1_are_refused() {
    assert!(check_kms_rules(&single(
        r#"{"Sid":"Clé d'accès","Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"}"#
    ))
    .is_ok());
    assert_single_violation(
        &single(
            r#"{"Sid":"Key €","Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"}"#,
        ),
        &["[characters] document", "1 character(s)", "U+20AC"],
    );
}

#[test]
fn a_repeated_sid_is_refused_naming_both_statements() {
    let statement =
        r#"{"Sid":"Admin","Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"}"#;
    let no_sid =
        r#"{"Sid":"","Effect":"Allow","Principal":"*","Action":"kms:Decrypt","Resource":"*"}"#;
    assert_single_violation(
        &single(&format!("{statement},{no_sid},{no_sid},{statement}")),
        &[
            "[unique Sid] Statement[3] (Sid \"Admin\")",
            "already used by Statement[0]",
        ],
    );
}

#[test]
fn an_effect_other_than_allow_or_deny_is_refused() {
    assert_single_violation(
        &single(r#"{"Sid":"S","Effect":"allow","Principal":"*","Action":"kms:*","Resource":"*"}"#),
        &["[Effect] Statement[0] (Sid \"S\")", "got \"allow\""],
    );
}

#[test]
fn principals_kms_does_not_accept_are_refused() {
    for (principal, expected) in [
        (
            r#"{"AWS":"arn:aws:iam::111122223333:role/*"}"#,
            "wildcard inside a principal ARN",
        ),
        (
            r#"{"AWS":"arn:aws:iam::111122223333:role/kms-admin?"}"#,
            "wildcard inside a principal ARN",
        ),
        (
            r#"{"AWS":"arn:aws:sts::111122223333:assumed-role/kms-admin/*"}"#,
            "wildcard inside a principal ARN",
        ),
        (
            r#"{"AWS":"AROAEXAMPLEID1234567890"}"#,
            "unique id names a deleted principal",
        ),
        (
            r#"{"AWS":"11112222333"}"#,
            "not \"*\", a 12-digit account id or an IAM ARN",
        ),
        (r#"{"AWS":"arn:aws:iam::11112222333:root"}"#, "12 digits"),
        (
            r#"{"AWS":"arn:aws:iam::111122223333:group/admins"}"#,
            "expected root, user/NAME or role/NAME",
        ),
        (
            r#"{"AWS":"arn:aws:s3:::bucket"}"#,
            "service \"s3\" is not iam or sts",
        ),
        (
            r#"{"AWS":"arn:azure:iam::111122223333:root"}"#,
            "unknown partition",
        ),
        (
            r#"{"AWS":"arn:aws:kms:eu-west-1:111122223333:key/k"}"#,
            "not \"*\", a 12-digit account id",
        ),
        (r#"{"AWS":[]}"#, "empty list"),
        (r#"{"AWS":7}"#, "must be a string"),
        (r#"{"Service":"*"}"#, "service's DNS name"),
        (r#"{"Service":"Logs"}"#, "service's DNS name"),
        (
            r#"{"Federated":"cognito-identity.amazonaws.com"}"#,
            "type \"Federated\" is not accepted",
        ),
        (
            r#"{"CanonicalUser":"79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be"}"#,
            "type \"CanonicalUser\"",
        ),
        (
            r#""arn:aws:iam::111122223333:root""#,
            "must be \"*\" or an object",
        ),
        (r#"{}"#, "must be \"*\" or an object"),
    ] {
        let document = single(&format!(
            r#"{{"Sid":"P","Effect":"Allow","Principal":{principal},"Action":"kms:*","Resource":"*"}}"#
        ));
        assert_single_violation(
            &document,
            &["[Principal] Statement[0] (Sid \"P\")", expected],
        );
    }
}

#[test]
fn a_statement_without_principals_or_with_an_allow_not_principal_is_refused() {
    assert_single_violation(
        &single(r#"{"Effect":"Allow","Action":"kms:*","Resource":"*"}"#),
        &["[Principal] Statement[0]:", "one or more principals"],
    );
    assert_single_violation(
        &single(
            r#"{"Effect":"Allow","NotPrincipal":{"AWS":"111122223333"},"Action":"kms:*","Resource":"*"}"#,
        ),
        &[
            "[Principal] Statement[0]:",
            "NotPrincipal with Effect Allow",
        ],
    );
    assert_single_violation(
        &single(
            r#"{"Effect":"Deny","Principal":"*","NotPrincipal":{"AWS":"111122223333"},"Action":"kms:*","Resource":"*"}"#,
        ),
        &["[Principal]", "both Principal and NotPrincipal"],
    );
}

#[test]
fn a_statement_without_action_or_with_a_malformed_one_is_refused() {
    assert_single_violation(
        &single(r#"{"Sid":"NoAction","Effect":"Allow","Principal":"*","Resource":"*"}"#),
        &[
            "[Action] Statement[0] (Sid \"NoAction\")",
            "neither Action nor NotAction",
        ],
    );
    assert_single_violation(
        &single(
            r#"{"Effect":"Allow","Principal":"*","Action":"kms:*","NotAction":"kms:Decrypt","Resource":"*"}"#,
        ),
        &["[Action]", "both Action and NotAction"],
    );
    assert_single_violation(
        &single(
            r#"{"Effect":"Allow","Principal":"*","Action":["kms:Decrypt","Encrypt"],"Resource":"*"}"#,
        ),
        &["[Action]", "\"Encrypt\" is not \"*\" or SERVICE:ACTION"],
    );
    assert_single_violation(
        &single(r#"{"Effect":"Allow","Principal":"*","Action":[],"Resource":"*"}"#),
        &["[Action]", "empty list"],
    );
}

#[test]
fn a_statement_without_resource_star_is_refused() {
    for (resource, expected) in [
        (r#""Action":"kms:*""#, "no Resource"),
        (
            r#""Action":"kms:*","Resource":"arn:aws:kms:eu-west-1:111122223333:key/k""#,
            "Resource must be \"*\"",
        ),
        (
            r#""Action":"kms:*","Resource":["*","arn:aws:kms:*"]"#,
            "Resource must be \"*\"",
        ),
    ] {
        assert_single_violation(
            &single(&format!(
                r#"{{"Sid":"R","Effect":"Allow","Principal":"*",{resource}}}"#
            )),
            &["[Resource] Statement[0] (Sid \"R\")", expected],
        );
    }
    let found = violations(&single(
        r#"{"Effect":"Allow","Principal":"*","Action":"kms:*","NotResource":"arn:aws:kms:*"}"#,
    ));
    assert_eq!(found.len(), 2, "{found:#?}");
    assert!(found[0].contains("NotResource is not a key policy element"));
    assert!(found[1].contains("no Resource"));
}

#[test]
fn unknown_elements_and_malformed_conditions_are_refused() {
    assert_single_violation(
        &single(
            r#"{"Effect":"Allow","Principal":"*","Actions":"kms:*","Action":"kms:*","Resource":"*"}"#,
        ),
        &[
            "[statement elements] Statement[0]",
            "unknown element \"Actions\"",
        ],
    );
    assert_single_violation(
        &single(
            r#"{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"Bool":"true"}}"#,
        ),
        &["[Condition]", "operator \"Bool\" must map condition keys"],
    );
    assert_single_violation(
        &single(
            r#"{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"StringEquals":{"kms:ViaService":{"a":1}}}}"#,
        ),
        &["[Condition]", "\"StringEquals\".\"kms:ViaService\" values"],
    );
}

#[test]
fn every_violation_is_listed_with_its_statement() {
    let document = r#"{"Version":"2012-10-17","Statement":[
        {"Sid":"A","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/*"},"Action":"kms:*"},
        {"Sid":"A","Effect":"Permit","Principal":{"Federated":"x"},"Resource":"arn:aws:kms:*"},
        {"Effect":"Allow","Principal":{"AWS":"AROAEXAMPLEID1234567"},"Action":"kms:*","Resource":"*"}
    ]}"#;
    let found = violations(document);
    let expected = [
        "[Principal] Statement[0] (Sid \"A\")",
        "[Resource] Statement[0] (Sid \"A\")",
        "[unique Sid] Statement[1] (Sid \"A\")",
        "[Effect] Statement[1] (Sid \"A\")",
        "[Principal] Statement[1] (Sid \"A\")",
        "[Action] Statement[1] (Sid \"A\")",
        "[Resource] Statement[1] (Sid \"A\")",
        "[Principal] Statement[2]:",
    ];
    assert_eq!(found.len(), expected.len(), "{found:#?}");
    for prefix in expected {
        assert!(
            found.iter().any(|v| v.starts_with(prefix)),
            "no {prefix}: {found:#?}"
        );
    }
    let message = check_kms_rules(document).unwrap_err().to_string();
    assert!(
        message.starts_with("the key policy breaks 8 KMS key policy rule(s): "),
        "{message}"
    );
}

#[test]
fn messages_never_echo_a_huge_value_and_are_bounded_in_number() {
    let huge = format!("arn:aws:iam::111122223333:role/{}", "x".repeat(10_000));
    let document = single(&format!(
        r#"{{"Sid":"{huge}","Effect":"Allow","Principal":{{"AWS":"{huge}*"}},"Action":"kms:*","Resource":"*"}}"#
    ));
    let found = violations(&document);
    assert!(found.iter().all(|v| v.len() < 400), "{found:#?}");
    assert!(found[0].contains("xxx\"..."), "{found:#?}");

    let bad = r#"{"Effect":"Allow","Principal":"*","Action":"kms:*"}"#;
    let many = single(&vec![bad; 30].join(","));
    let error = check_kms_rules(&many).unwrap_err();
    assert_eq!(error.violations.len(), 30);
    assert!(error.to_string().ends_with("; and 10 more"), "{error}");
}

#[test]
fn odd_documents_do_not_panic() {
    for document in [
        "",
        "null",
        "\"*\"",
        "{\"Statement\":{}}",
        "{\"Statement\":[{\"Sid\":{},\"Principal\":{\"AWS\":[null,{}]},\"Action\":[1],\"Resource\":[]}]}",
        "{\"Statement\":[{\"Principal\":{\"AWS\":\"arn:aws:sts::111122223333:assumed-role//\"}}]}",
        "{\"Statement\":[{\"Principal\":{\"AWS\":\"arn:aws-:iam::111122223333:root\"}}]}",
        "{\"Statement\":[{\"Principal\":{\"AWS\":\"é\u{1F600}\"}}]}",
    ] {
        assert!(check_kms_rules(document).is_err(), "{document}");
    }
}
