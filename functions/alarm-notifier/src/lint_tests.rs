use super::*;

const KEY_ID: &str = "1234abcd-12ab-34cd-56ef-1234567890ab";

fn alarm(name: &str, namespace: &str, metric: &str, dims: &[(&str, &str)]) -> AlarmOnMetric {
    AlarmOnMetric {
        alarm_name: name.to_string(),
        alarm_arn: format!("arn:aws:cloudwatch:eu-west-1:111122223333:alarm:{name}"),
        namespace: namespace.to_string(),
        metric_name: metric.to_string(),
        dimensions: dims
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
    }
}

/// The reference module's alarms: DecryptCount per KeyId (its troubleshooting section
/// queries exactly that) and an AccessDenied count per KeyId.
fn reference_alarms() -> Vec<AlarmOnMetric> {
    vec![
        alarm(
            "kms-decrypt-operations",
            KMS_NAMESPACE,
            "DecryptCount",
            &[("KeyId", KEY_ID)],
        ),
        alarm(
            "kms-access-denied",
            KMS_NAMESPACE,
            "AccessDenied",
            &[("KeyId", KEY_ID)],
        ),
    ]
}

#[test]
fn reference_decrypt_count_alarm_is_silent_and_points_to_decrypt_calls() {
    let silent = silent_alarms(&reference_alarms());
    let decrypt = silent
        .iter()
        .find(|s| s.metric_name == "DecryptCount")
        .unwrap();
    assert_eq!(decrypt.alarm_name, "kms-decrypt-operations");
    assert!(decrypt.alarm_arn.ends_with(":alarm:kms-decrypt-operations"));
    assert!(
        decrypt.why.contains("does not publish DecryptCount"),
        "{}",
        decrypt.why
    );
    assert!(decrypt.why.contains("SuccessfulRequest"), "{}", decrypt.why);
    assert_eq!(
        decrypt.instead,
        "the KMSGuardrails/DecryptCalls alarm on the CloudTrail metric filter (template \
         parameter CloudTrailLogGroupName)"
    );
}

#[test]
fn reference_access_denied_alarm_is_silent_and_points_to_access_denied() {
    let silent = silent_alarms(&reference_alarms());
    assert_eq!(silent.len(), 2);
    let denied = silent
        .iter()
        .find(|s| s.metric_name == "AccessDenied")
        .unwrap();
    assert!(denied.why.contains("CloudTrail"), "{}", denied.why);
    assert!(
        denied.instead.contains("KMSGuardrails/AccessDenied"),
        "{}",
        denied.instead
    );
    for name in [
        "AccessDeniedCount",
        "KMSAccessDeniedErrors",
        "UnauthorizedOperations",
    ] {
        let s = silent_alarms(&[alarm("a", KMS_NAMESPACE, name, &[("KeyId", KEY_ID)])]);
        assert!(
            s[0].instead.contains("KMSGuardrails/AccessDenied"),
            "{name}"
        );
    }
}

#[test]
fn key_material_expiration_per_key_id_is_not_silent() {
    let alarms = [alarm(
        "imported-material-expires",
        KMS_NAMESPACE,
        "SecondsUntilKeyMaterialExpiration",
        &[("KeyId", KEY_ID)],
    )];
    assert_eq!(silent_alarms(&alarms), vec![]);
}

#[test]
fn other_namespaces_are_ignored() {
    let alarms = [
        alarm(
            "lambda-errors",
            "AWS/Lambda",
            "Errors",
            &[("FunctionName", "f")],
        ),
        alarm("ours", GUARDRAILS_NAMESPACE, "DecryptCalls", &[]),
        alarm("custom", "Custom/KMS", "DecryptCount", &[("KeyId", KEY_ID)]),
    ];
    assert_eq!(silent_alarms(&alarms), vec![]);
}

#[test]
fn published_metrics_with_their_dimensions_are_not_silent() {
    let alarms = [
        alarm(
            "decrypts",
            KMS_NAMESPACE,
            "SuccessfulRequest",
            &[
                ("KeyArn", "arn:aws:kms:eu-west-1:111122223333:key/k"),
                ("Operation", "Decrypt"),
            ],
        ),
        alarm(
            "cert",
            KMS_NAMESPACE,
            "XksProxyCertificateDaysToExpire",
            &[
                ("CustomKeyStoreId", "cks-1234567890abcdef0"),
                ("CertificateName", "proxy.example.com"),
            ],
        ),
        alarm(
            "cred",
            KMS_NAMESPACE,
            "XksProxyCredentialAge",
            &[("CustomKeyStoreId", "cks-1234567890abcdef0")],
        ),
        alarm(
            "hsm",
            KMS_NAMESPACE,
            "CloudHSMKeyStoreThrottle",
            &[
                ("CustomKeyStoreId", "cks-1"),
                ("KmsOperation", "Decrypt"),
                ("KeySpec", "SYMMETRIC_DEFAULT"),
            ],
        ),
    ];
    assert_eq!(silent_alarms(&alarms), vec![]);
}

#[test]
fn published_metric_with_wrong_or_missing_dimensions_is_silent() {
    let wrong = alarm(
        "w",
        KMS_NAMESPACE,
        "SecondsUntilKeyMaterialExpiration",
        &[("KeyArn", "arn:aws:kms:eu-west-1:111122223333:key/k")],
    );
    let none = alarm("n", KMS_NAMESPACE, "SecondsUntilKeyMaterialExpiration", &[]);
    let by_alias = alarm(
        "a",
        KMS_NAMESPACE,
        "SecondsUntilKeyMaterialExpiration",
        &[("KeyId", "alias/app")],
    );
    let silent = silent_alarms(&[wrong, none, by_alias]);
    assert_eq!(silent.len(), 3);
    assert!(silent[0].why.contains("KeyArn"), "{}", silent[0].why);
    assert!(silent[1].why.contains("per KeyId"), "{}", silent[1].why);
    assert!(silent[2].why.contains("alias/app"), "{}", silent[2].why);
}

#[test]
fn case_mismatch_and_other_unpublished_names() {
    let s = silent_alarms(&[alarm(
        "c",
        KMS_NAMESPACE,
        "secondsuntilkeymaterialexpiration",
        &[("KeyId", KEY_ID)],
    )]);
    assert!(s[0].instead.contains("SecondsUntilKeyMaterialExpiration"));

    let s = silent_alarms(&[alarm(
        "d",
        KMS_NAMESPACE,
        "KeyDisabled",
        &[("KeyId", KEY_ID)],
    )]);
    assert!(s[0].instead.contains("KeyDisabledOrScheduledForDeletion"));

    let s = silent_alarms(&[alarm("p", KMS_NAMESPACE, "KeyPolicyChanges", &[])]);
    assert!(s[0].instead.contains("KMSGuardrails/KeyPolicyChanged"));

    let s = silent_alarms(&[alarm("u", KMS_NAMESPACE, "KeyUsage", &[("KeyId", KEY_ID)])]);
    assert!(s[0].instead.contains("SuccessfulRequest"));

    let s = silent_alarms(&[alarm("x", KMS_NAMESPACE, "Something", &[])]);
    assert!(s[0].why.contains("does not publish Something"));
    assert!(!s[0].instead.is_empty());
}

#[test]
fn empty_input_and_order_are_kept() {
    assert_eq!(silent_alarms(&[]), vec![]);
    let mut alarms = reference_alarms();
    alarms.reverse();
    let names: Vec<_> = silent_alarms(&alarms)
        .into_iter()
        .map(|s| s.alarm_name)
        .collect();
    assert_eq!(names, ["kms-access-denied", "kms-decrypt-operations"]);
}

/// One row: an alarm's metric and what the lint says of it.
struct Row {
    namespace: &'static str,
    metric: &'static str,
    dimensions: &'static [(&'static str, &'static str)],
    /// Fragments of `why` and `instead`; `None` when the alarm can fire.
    silent: Option<(&'static str, &'static str)>,
}

const fn row(
    namespace: &'static str,
    metric: &'static str,
    dimensions: &'static [(&'static str, &'static str)],
    silent: Option<(&'static str, &'static str)>,
) -> Row {
    Row {
        namespace,
        metric,
        dimensions,
        silent,
    }
}

#[test]
fn which_alarms_are_silent_table() {
    const ARN: &str = "arn:aws:kms:eu-west-1:111122223333:key/k";
    let rows = [
        row(
            KMS_NAMESPACE,
            "SuccessfulRequest",
            &[("KeyArn", ARN), ("Operation", "Decrypt")],
            None,
        ),
        row(
            KMS_NAMESPACE,
            "SuccessfulRequest",
            &[("Operation", "Decrypt")],
            Some(("per KeyArn or SourceKeyArn", "SuccessfulRequest")),
        ),
        row(
            KMS_NAMESPACE,
            "SuccessfulRequest",
            &[("KeyId", KEY_ID)],
            Some(("also filters on KeyId", "dimensions from KeyArn")),
        ),
        row(
            KMS_NAMESPACE,
            "SecondsUntilKeyMaterialExpiration",
            &[("KeyId", KEY_ID)],
            None,
        ),
        row(
            KMS_NAMESPACE,
            "SecondsUntilKeyMaterialExpiration",
            &[("KeyId", "alias/app")],
            Some(("not an alias", "the key id the alias points to")),
        ),
        row(
            KMS_NAMESPACE,
            "DecryptCount",
            &[("KeyId", KEY_ID)],
            Some((
                "does not publish DecryptCount",
                "KMSGuardrails/DecryptCalls",
            )),
        ),
        row(
            KMS_NAMESPACE,
            "AccessDenied",
            &[("KeyId", KEY_ID)],
            Some(("CloudTrail", "KMSGuardrails/AccessDenied")),
        ),
        row(
            KMS_NAMESPACE,
            "KeyDisabled",
            &[],
            Some(("does not publish", "KeyDisabledOrScheduledForDeletion")),
        ),
        row(
            KMS_NAMESPACE,
            "KeyPolicyChanges",
            &[],
            Some(("does not publish", "KMSGuardrails/KeyPolicyChanged")),
        ),
        row(GUARDRAILS_NAMESPACE, "DecryptCalls", &[], None),
        row("Custom/KMS", "DecryptCount", &[("KeyId", KEY_ID)], None),
    ];
    for Row {
        namespace,
        metric,
        dimensions,
        silent,
    } in rows
    {
        let found = silent_alarms(&[alarm("a", namespace, metric, dimensions)]);
        match (found.as_slice(), silent) {
            ([], None) => {}
            ([found], Some((why, instead))) => {
                assert!(
                    found.why.contains(why),
                    "{namespace} {metric}: {}",
                    found.why
                );
                assert!(
                    found.instead.contains(instead),
                    "{namespace} {metric}: {}",
                    found.instead
                );
                assert_eq!(found.metric_name, metric);
            }
            (found, expected) => panic!("{namespace} {metric}: {found:?}, expected {expected:?}"),
        }
    }
}
