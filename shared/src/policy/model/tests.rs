use super::*;

const BASE: &str = r#"{
  "Version": "2012-10-17",
  "Statement": [
    {"Sid": "EnableRootAccess", "Effect": "Allow",
     "Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": "kms:*", "Resource": "*"},
    {"Sid": "AllowCloudWatchLogs", "Effect": "Allow",
     "Principal": {"Service": "logs.eu-west-1.amazonaws.com"},
     "Action": ["kms:Encrypt*", "kms:Decrypt*"], "Resource": "*",
     "Condition": {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": "arn:aws:logs:eu-west-1:111122223333:*"}}}
  ]}"#;

fn base() -> Policy {
    Policy::parse(BASE).unwrap()
}

#[test]
fn reordered_statements_renamed_sids_and_reformatted_json_are_equal() {
    let actual = Policy::parse(
        r#"{"Statement":[{"Effect":"Allow","Resource":["*"],"Action":["kms:decrypt*","KMS:Encrypt*"],
          "Principal":{"Service":["logs.eu-west-1.amazonaws.com"]},"Sid":"Logs",
          "Condition":{"ArnLike":{"KMS:EncryptionContext:aws:logs:arn":["arn:aws:logs:eu-west-1:111122223333:*"]}}},
          {"Effect":"Allow","Principal":{"AWS":["111122223333"]},"Action":["kms:*"],"Resource":"*"}],
          "Version":"2012-10-17"}"#,
    )
    .unwrap();
    let diff = actual.diff_against(&base());
    assert!(diff.is_empty(), "unexpected drift:\n{diff}");
}

#[test]
fn a_duplicated_statement_is_not_drift() {
    let mut actual = base();
    actual.statements.push(actual.statements[0].clone());
    assert!(actual.semantically_equal(&base()));
}

#[test]
fn an_added_principal_is_drift_shown_at_field_level() {
    let text = BASE.replace(
        r#""AWS": "arn:aws:iam::111122223333:root""#,
        r#""AWS": ["arn:aws:iam::111122223333:root", "arn:aws:iam::444455556666:user/mallory"]"#,
    );
    let diff = Policy::parse(&text).unwrap().diff_against(&base());
    assert_eq!(
        diff.changed,
        vec![StatementChange {
            sid: "EnableRootAccess".into(),
            changes: vec![FieldChange {
                field: "Principal.AWS".into(),
                added: vec!["arn:aws:iam::444455556666:user/mallory".into()],
                removed: vec![],
            }],
        }]
    );
    assert!(diff
        .to_string()
        .contains("+ Principal.AWS: arn:aws:iam::444455556666:user/mallory"));
}

#[test]
fn a_removed_condition_is_drift() {
    let mut value: Value = serde_json::from_str(BASE).unwrap();
    value["Statement"][1]
        .as_object_mut()
        .unwrap()
        .remove("Condition");
    let diff = Policy::from_value(&value).unwrap().diff_against(&base());
    assert!(!diff.is_empty());
    assert_eq!(
        diff.changed[0].changes[0].field,
        "Condition.ArnLike.kms:encryptioncontext:aws:logs:arn"
    );
    assert_eq!(
        diff.changed[0].changes[0].removed,
        vec!["arn:aws:logs:eu-west-1:111122223333:*"]
    );
}

#[test]
fn condition_keys_differing_only_in_case_are_both_kept_and_both_apply() {
    let with_condition = |condition: &str| {
        Policy::parse(&format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Sid":"ViaKms","Effect":"Allow",
              "Principal":{{"AWS":"arn:aws:iam::111122223333:role/app"}},"Action":"kms:Decrypt",
              "Resource":"*","Condition":{{"StringEquals":{condition}}}}}]}}"#
        ))
        .unwrap()
    };
    let both = with_condition(r#"{"kms:ViaService":"a","KMS:viaservice":"b"}"#);
    let only_a = with_condition(r#"{"kms:ViaService":"a"}"#);
    let only_b = with_condition(r#"{"KMS:viaservice":"b"}"#);

    assert!(!both.semantically_equal(&only_a));
    assert!(!both.semantically_equal(&only_b));
    assert!(!only_a.semantically_equal(&only_b));
    assert!(
        both.semantically_equal(&with_condition(
            r#"{"kms:viaservice":"b","KMS:VIASERVICE":["a"]}"#
        )),
        "key case and list spelling are still not differences"
    );
    assert!(
        !both.semantically_equal(&with_condition(r#"{"kms:ViaService":["a","b"]}"#)),
        "two entries (a AND b) are not one entry (a OR b)"
    );

    let diff = both.diff_against(&only_a);
    assert_eq!(
        diff.changed,
        vec![StatementChange {
            sid: "ViaKms".into(),
            changes: vec![FieldChange {
                field: "Condition.StringEquals.kms:viaservice".into(),
                added: vec!["[b]".into()],
                removed: vec![],
            }],
        }]
    );
    let text = diff.to_string();
    assert!(
        text.contains("+ Condition.StringEquals.kms:viaservice: [b]"),
        "{text}"
    );
    let reverse = only_b.diff_against(&both).to_string();
    assert!(
        reverse.contains("- Condition.StringEquals.kms:viaservice: [a]"),
        "{reverse}"
    );
}

#[test]
fn a_widened_action_is_drift() {
    let text = BASE.replace(r#"["kms:Encrypt*", "kms:Decrypt*"]"#, r#""kms:*""#);
    let diff = Policy::parse(&text).unwrap().diff_against(&base());
    let change = &diff.changed[0].changes[0];
    assert_eq!(change.field, "Action");
    assert_eq!(change.added, vec!["kms:*"]);
    assert_eq!(
        change.removed,
        vec!["kms:Decrypt*", "kms:Encrypt*"],
        "shown as written"
    );
}

#[test]
fn a_changed_effect_is_drift() {
    let text = BASE.replacen(r#""Effect": "Allow""#, r#""Effect": "Deny""#, 1);
    let diff = Policy::parse(&text).unwrap().diff_against(&base());
    assert_eq!(diff.changed[0].changes[0].field, "Effect");
}

#[test]
fn an_extra_and_a_missing_statement_are_drift() {
    let mut value: Value = serde_json::from_str(BASE).unwrap();
    let statements = value["Statement"].as_array_mut().unwrap();
    statements.remove(1);
    statements.push(serde_json::json!({"Sid": "Backdoor", "Effect": "Allow", "Principal": "*", "Action": "kms:Decrypt", "Resource": "*"}));
    let diff = Policy::from_value(&value).unwrap().diff_against(&base());
    assert_eq!(diff.missing.len(), 1);
    assert_eq!(diff.missing[0].sid.as_deref(), Some("AllowCloudWatchLogs"));
    assert_eq!(diff.extra.len(), 1);
    let text = diff.to_string();
    assert!(
        text.contains(
            "+ extra statement \"Backdoor\": Allow Principal=* Action=kms:Decrypt Resource=*"
        ),
        "{text}"
    );
    assert!(
        text.contains("- missing statement \"AllowCloudWatchLogs\""),
        "{text}"
    );
}

#[test]
fn a_changed_version_or_resource_is_drift() {
    let text = BASE.replace("2012-10-17", "2008-10-17");
    assert!(Policy::parse(&text)
        .unwrap()
        .diff_against(&base())
        .version
        .is_some());
    let text = BASE.replacen(r#""Resource": "*""#, r#""Resource": "arn:aws:kms:*""#, 1);
    assert!(!Policy::parse(&text).unwrap().semantically_equal(&base()));
}

#[test]
fn a_single_statement_object_parses() {
    let p = Policy::parse(r#"{"Version":"2012-10-17","Statement":{"Effect":"Deny","Principal":"*","NotAction":"kms:Decrypt","Resource":"*"}}"#).unwrap();
    assert_eq!(p.statements.len(), 1);
    assert_eq!(p.statements[0].body.effect, Effect::Deny);
}

#[test]
fn malformed_policies_are_clear_errors() {
    for (text, expected) in [
        ("not json", "not JSON"),
        ("[]", "not a JSON object"),
        (r#"{"Version":"2012-10-17"}"#, "no Statement"),
        (
            r#"{"Statement":[{"Effect":"Maybe","Action":"kms:*"}]}"#,
            "Effect must be Allow or Deny",
        ),
        (
            r#"{"Statement":[{"Effect":"Allow","Resource":"*"}]}"#,
            "neither Action nor NotAction",
        ),
        (
            r#"{"Statement":[{"Effect":"Allow","Action":"kms:*","Actions":"x"}]}"#,
            "unknown statement element",
        ),
        (
            r#"{"Statement":[{"Effect":"Allow","Action":[{"a":1}]}]}"#,
            "must be strings",
        ),
    ] {
        let err = Policy::parse(text).unwrap_err();
        assert!(err.to_string().contains(expected), "{text}: {err}");
    }
}

#[test]
fn action_patterns_match_like_iam() {
    assert!(action_matches("kms:*", "kms:PutKeyPolicy"));
    assert!(action_matches("kms:Put*", "kms:PutKeyPolicy"));
    assert!(action_matches("KMS:putkeypolicy", "kms:PutKeyPolicy"));
    assert!(action_matches("*", "kms:PutKeyPolicy"));
    assert!(action_matches("kms:?etKeyPolicy", "kms:GetKeyPolicy"));
    assert!(!action_matches("kms:Get*", "kms:PutKeyPolicy"));
    assert!(!action_matches("kms:PutKeyPolicy", "kms:PutKeyPolicyX"));
}
