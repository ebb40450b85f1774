use super::*;
use crate::base::error::Disposition;

const ROLE: &str = "arn:aws:iam::111122223333:role/s3-replication";

fn ops(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// The grant a replication setup needs: the replication role may encrypt.
fn role_grant() -> GrantSpec {
    GrantSpec {
        name: "s3-replication".into(),
        grantee: Grantee::Principal(ROLE.into()),
        operations: ops(&["Encrypt", "GenerateDataKey"]),
        retiring: Some(Grantee::Principal(
            "arn:aws:iam::111122223333:role/kms-admin".into(),
        )),
        constraints: GrantConstraints::default(),
    }
}

fn refused(spec: &GrantSpec, needle: &str) {
    let reasons = kms_refusals(spec);
    assert!(
        reasons.iter().any(|r| r.contains(needle)),
        "expected a refusal containing {needle:?}, got {reasons:?}"
    );
}

#[test]
fn the_reference_grant_to_a_role_is_accepted() {
    assert_eq!(kms_refusals(&role_grant()), Vec::<String>::new());
    for principal in [
        "111122223333",
        "arn:aws:iam::111122223333:root",
        "arn:aws:iam::111122223333:user/ops/alice",
        "arn:aws:iam::111122223333:role/path/to/replication",
        "arn:aws:sts::111122223333:assumed-role/replication/session-1",
        "arn:aws:sts::111122223333:federated-user/bob",
        "arn:aws-us-gov:iam::111122223333:role/replication",
    ] {
        let spec = GrantSpec {
            grantee: Grantee::Principal(principal.into()),
            ..role_grant()
        };
        assert_eq!(kms_refusals(&spec), Vec::<String>::new(), "{principal}");
    }
}

#[test]
fn names_kms_refuses() {
    refused(
        &GrantSpec {
            name: String::new(),
            ..role_grant()
        },
        "Name is empty",
    );
    refused(
        &GrantSpec {
            name: "a".repeat(257),
            ..role_grant()
        },
        "257 characters",
    );
    refused(
        &GrantSpec {
            name: "s3 replication!".into(),
            ..role_grant()
        },
        "\" !\"",
    );
    let max = GrantSpec {
        name: "a:/_-".repeat(51) + "z",
        ..role_grant()
    };
    assert_eq!(kms_refusals(&max), Vec::<String>::new());
}

#[test]
fn the_s3_service_as_grantee_principal_is_refused_with_the_replication_role_as_the_fix() {
    let spec = GrantSpec {
        grantee: Grantee::Principal("s3.amazonaws.com".into()),
        ..role_grant()
    };
    let reasons = kms_refusals(&spec);
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    assert!(reasons[0].contains("GranteeServicePrincipal"));
    assert!(reasons[0].contains("SourceArn"));
    assert!(reasons[0].contains("RetiringPrincipal"));
    assert!(reasons[0].contains("replication role's ARN"));
}

#[test]
fn grantee_principals_that_are_not_aws_principals_are_refused() {
    for principal in [
        "",
        "*",
        "arn:aws:iam::111122223333:role/*",
        "arn:aws:iam::111122223333:group/admins",
        "arn:aws:s3:::bucket",
        "arn:aws:iam::11112222333:role/short-account",
        "arn:aws:sts::111122223333:assumed-role/no-session",
        "arn:aws:iam::111122223333:role/",
        " arn:aws:iam::111122223333:role/padded",
    ] {
        refused(
            &GrantSpec {
                grantee: Grantee::Principal(principal.into()),
                ..role_grant()
            },
            "is not an AWS principal",
        );
    }
}

#[test]
fn a_service_principal_needs_a_source_arn_and_a_retiring_principal() {
    let bare = GrantSpec {
        grantee: Grantee::Service("s3.amazonaws.com".into()),
        retiring: None,
        ..role_grant()
    };
    refused(&bare, "needs a SourceArn constraint");
    refused(
        &bare,
        "needs a RetiringPrincipal or RetiringServicePrincipal",
    );
    let complete = GrantSpec {
        retiring: Some(Grantee::Service("s3.amazonaws.com".into())),
        constraints: GrantConstraints {
            source_arn: Some("arn:aws:s3:::destination-bucket".into()),
            ..GrantConstraints::default()
        },
        ..bare.clone()
    };
    assert_eq!(kms_refusals(&complete), Vec::<String>::new());
    refused(
        &GrantSpec {
            grantee: Grantee::Service(ROLE.into()),
            ..complete.clone()
        },
        "GranteeServicePrincipal \"arn:aws:iam",
    );
    refused(
        &GrantSpec {
            constraints: GrantConstraints {
                source_arn: Some("destination-bucket".into()),
                ..GrantConstraints::default()
            },
            ..complete
        },
        "SourceArn \"destination-bucket\" is not an ARN",
    );
}

#[test]
fn retiring_principals_are_checked_like_grantees() {
    refused(
        &GrantSpec {
            retiring: Some(Grantee::Principal("s3.amazonaws.com".into())),
            ..role_grant()
        },
        "RetiringServicePrincipal",
    );
    refused(
        &GrantSpec {
            retiring: Some(Grantee::Service("not a service".into())),
            ..role_grant()
        },
        "RetiringServicePrincipal \"not a service\" is not a service principal",
    );
}

#[test]
fn operations_must_be_grant_operations_of_a_symmetric_key() {
    refused(
        &GrantSpec {
            operations: BTreeSet::new(),
            ..role_grant()
        },
        "allows no Operations",
    );
    refused(
        &GrantSpec {
            operations: ops(&["Encrypt", "kms:Decrypt", "PutKeyPolicy"]),
            ..role_grant()
        },
        "\"PutKeyPolicy\", \"kms:Decrypt\" are not grant operations",
    );
    refused(
        &GrantSpec {
            operations: ops(&["kms:Encrypt"]),
            ..role_grant()
        },
        "(without the kms: prefix)",
    );
    for op in ASYMMETRIC_OR_HMAC_OPERATIONS {
        refused(
            &GrantSpec {
                operations: ops(&["Encrypt", op]),
                ..role_grant()
            },
            "only on asymmetric or HMAC keys",
        );
    }
    let every_symmetric: Vec<&str> = GRANT_OPERATIONS
        .iter()
        .copied()
        .filter(|o| !ASYMMETRIC_OR_HMAC_OPERATIONS.contains(o))
        .collect();
    let spec = GrantSpec {
        operations: ops(&every_symmetric),
        ..role_grant()
    };
    assert_eq!(kms_refusals(&spec), Vec::<String>::new());
}

#[test]
fn encryption_context_constraints_follow_kms_limits() {
    let context = |n: usize, len: usize| -> BTreeMap<String, String> {
        (0..n).map(|i| (format!("k{i}"), "v".repeat(len))).collect()
    };
    // DescribeKey, RetireGrant and CreateGrant may sit beside an encryption-context
    // constraint; the constraint simply does not apply to them.
    let ok = GrantSpec {
        operations: ops(&[
            "Encrypt",
            "GenerateDataKey",
            "DescribeKey",
            "RetireGrant",
            "CreateGrant",
        ]),
        constraints: GrantConstraints {
            encryption_context_subset: context(8, 384),
            encryption_context_equals: context(1, 1),
            source_arn: None,
        },
        ..role_grant()
    };
    assert_eq!(kms_refusals(&ok), Vec::<String>::new());
    refused(
        &GrantSpec {
            constraints: GrantConstraints {
                encryption_context_subset: context(9, 1),
                ..GrantConstraints::default()
            },
            ..role_grant()
        },
        "EncryptionContextSubset has 9 pairs",
    );
    refused(
        &GrantSpec {
            constraints: GrantConstraints {
                encryption_context_equals: context(1, 385),
                ..GrantConstraints::default()
            },
            ..role_grant()
        },
        "EncryptionContextEquals value of \"k0\" has 385 characters",
    );
    refused(
        &GrantSpec {
            operations: ops(&["Sign", "DescribeKey"]),
            constraints: GrantConstraints {
                encryption_context_equals: context(1, 1),
                ..GrantConstraints::default()
            },
            ..role_grant()
        },
        "encryption-context constraints apply only to operations that take an encryption context, and Sign",
    );
}

#[test]
fn refusals_show_input_escaped_and_bounded() {
    let spec = GrantSpec {
        grantee: Grantee::Principal(format!("evil\nChanged by: root{}", "x".repeat(500))),
        ..role_grant()
    };
    let reasons = kms_refusals(&spec);
    assert!(reasons.iter().all(|r| !r.contains('\n') && r.len() < 600));
}

#[test]
fn from_entry_reads_every_field_and_treats_an_empty_name_as_none() {
    let entry = GrantListEntry::builder()
        .grant_id("g-1")
        .name("")
        .grantee_principal(ROLE)
        .retiring_principal("arn:aws:iam::111122223333:role/kms-admin")
        .operations(GrantOperation::Encrypt)
        .operations(GrantOperation::GenerateDataKey)
        .issuing_account("arn:aws:iam::111122223333:root")
        .constraints(
            SdkConstraints::builder()
                .encryption_context_subset("bucket", "destination")
                .build(),
        )
        .build();
    let grant = ExistingGrant::from_entry(&entry);
    assert_eq!(
        grant,
        ExistingGrant {
            grant_id: "g-1".into(),
            name: None,
            grantee: Some(Grantee::Principal(ROLE.into())),
            retiring: Some(Grantee::Principal(
                "arn:aws:iam::111122223333:role/kms-admin".into()
            )),
            operations: ops(&["Encrypt", "GenerateDataKey"]),
            constraints: GrantConstraints {
                encryption_context_subset: BTreeMap::from([(
                    "bucket".to_string(),
                    "destination".to_string()
                )]),
                ..GrantConstraints::default()
            },
            issuing_account: Some("arn:aws:iam::111122223333:root".into()),
        }
    );

    let service = GrantListEntry::builder()
        .grant_id("g-2")
        .name("s3")
        .grantee_service_principal("s3.amazonaws.com")
        .retiring_service_principal("s3.amazonaws.com")
        .operations(GrantOperation::Decrypt)
        .constraints(
            SdkConstraints::builder()
                .source_arn("arn:aws:s3:::bucket")
                .build(),
        )
        .build();
    let grant = ExistingGrant::from_entry(&service);
    assert_eq!(grant.name.as_deref(), Some("s3"));
    assert_eq!(
        grant.grantee,
        Some(Grantee::Service("s3.amazonaws.com".into()))
    );
    assert_eq!(
        grant.retiring,
        Some(Grantee::Service("s3.amazonaws.com".into()))
    );
    assert_eq!(
        grant.constraints.source_arn.as_deref(),
        Some("arn:aws:s3:::bucket")
    );
    assert_eq!(grant.issuing_account, None);

    let bare = ExistingGrant::from_entry(&GrantListEntry::builder().grant_id("g-3").build());
    assert_eq!(bare.name, None);
    assert_eq!(bare.grantee, None);
    assert!(bare.operations.is_empty() && bare.constraints.is_empty());
}

fn existing_from(spec: &GrantSpec, id: &str) -> ExistingGrant {
    ExistingGrant {
        grant_id: id.into(),
        name: Some(spec.name.clone()),
        grantee: Some(spec.grantee.clone()),
        retiring: spec.retiring.clone(),
        operations: spec.operations.clone(),
        constraints: spec.constraints.clone(),
        issuing_account: None,
    }
}

#[test]
fn matches_needs_every_field_equal() {
    let spec = role_grant();
    let same = existing_from(&spec, "g");
    assert!(matches(&spec, &same));
    let root = GrantSpec {
        grantee: Grantee::Principal("111122223333".into()),
        ..spec.clone()
    };
    let as_root_arn = ExistingGrant {
        grantee: Some(Grantee::Principal("arn:aws:iam::111122223333:root".into())),
        ..existing_from(&root, "g")
    };
    assert!(matches(&root, &as_root_arn), "account id and root ARN");
    for differs in [
        ExistingGrant {
            name: None,
            ..same.clone()
        },
        ExistingGrant {
            grantee: Some(Grantee::Service(ROLE.into())),
            ..same.clone()
        },
        ExistingGrant {
            operations: ops(&["Encrypt"]),
            ..same.clone()
        },
        ExistingGrant {
            retiring: None,
            ..same.clone()
        },
        ExistingGrant {
            constraints: GrantConstraints {
                source_arn: Some("arn:aws:s3:::b".into()),
                ..GrantConstraints::default()
            },
            ..same.clone()
        },
    ] {
        assert!(!matches(&spec, &differs), "{differs:?}");
    }
}

mod io {
    //! The real SDK client with mocked answers and the production retry policy.

    use super::*;
    use crate::aws::kms::KeyInfo;
    use aws_sdk_kms::operation::create_grant::{CreateGrantError, CreateGrantOutput};
    use aws_sdk_kms::operation::list_grants::ListGrantsOutput;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};
    use aws_smithy_runtime_api::box_error::BoxError;
    use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
    use aws_smithy_runtime_api::client::interceptors::Intercept;
    use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
    use aws_smithy_types::config_bag::ConfigBag;
    use aws_smithy_types::error::ErrorMetadata;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    const KEY_ARN: &str =
        "arn:aws:kms:us-west-2:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab";

    fn key() -> KeyInfo {
        KeyInfo::unreadable(
            KEY_ARN,
            &crate::testing::region("us-west-2"),
            "111122223333",
        )
    }

    fn error(code: &str, message: &str) -> ErrorMetadata {
        ErrorMetadata::builder().code(code).message(message).build()
    }

    /// Every request body sent, retries included.
    #[derive(Debug, Clone, Default)]
    struct Sent(Arc<Mutex<Vec<serde_json::Value>>>);

    impl Sent {
        fn bodies(&self) -> Vec<serde_json::Value> {
            self.0.lock().unwrap().clone()
        }
    }

    impl Intercept for Sent {
        fn name(&self) -> &'static str {
            "Sent"
        }

        fn read_before_transmit(
            &self,
            context: &BeforeTransmitInterceptorContextRef<'_>,
            _runtime_components: &RuntimeComponents,
            _cfg: &mut ConfigBag,
        ) -> Result<(), BoxError> {
            let body = context.request().body().bytes().unwrap_or_default();
            let json = serde_json::from_slice(body).unwrap_or(serde_json::Value::Null);
            self.0.lock().unwrap().push(json);
            Ok(())
        }
    }

    fn client(rules: &[&aws_smithy_mocks::Rule], sent: &Sent) -> Client {
        let retry = crate::aws::retry_config().with_initial_backoff(Duration::from_millis(1));
        let sent = sent.clone();
        mock_client!(aws_sdk_kms, RuleMode::MatchAny, rules, |b| b
            .retry_config(retry.clone())
            .interceptor(sent.clone()))
    }

    fn entry(id: &str) -> GrantListEntry {
        GrantListEntry::builder()
            .grant_id(id)
            .name(id)
            .grantee_principal(ROLE)
            .operations(GrantOperation::Encrypt)
            .build()
    }

    #[tokio::test]
    async fn list_grants_reads_every_page() {
        let pages = mock!(Client::list_grants)
            .sequence()
            .output(|| {
                ListGrantsOutput::builder()
                    .grants(entry("g-1"))
                    .grants(entry("g-2"))
                    .next_marker("page-2")
                    .truncated(true)
                    .build()
            })
            .output(|| {
                ListGrantsOutput::builder()
                    .grants(entry("g-3"))
                    .next_marker("page-3")
                    .truncated(true)
                    .build()
            })
            .output(|| {
                ListGrantsOutput::builder()
                    .grants(entry("g-4"))
                    .truncated(false)
                    .build()
            })
            .build();
        let sent = Sent::default();
        let kms = client(&[&pages], &sent);

        let grants = list_grants(&kms, KEY_ARN).await.unwrap();

        let ids: Vec<&str> = grants.iter().map(|g| g.grant_id.as_str()).collect();
        assert_eq!(ids, ["g-1", "g-2", "g-3", "g-4"]);
        assert_eq!(pages.num_calls(), 3);
        assert_eq!(sent.bodies().len(), 3);
        let bodies = sent.bodies();
        assert_eq!(bodies[0]["KeyId"], KEY_ARN);
        assert!(bodies[0].get("Marker").is_none());
        assert_eq!(bodies[1]["Marker"], "page-2");
        assert_eq!(bodies[2]["Marker"], "page-3");
        // The largest page KMS serves, on every request.
        assert!(bodies.iter().all(|b| b["Limit"] == 100), "{bodies:?}");
    }

    #[tokio::test]
    async fn a_throttled_create_grant_is_retried_with_the_same_name_and_yields_one_grant() {
        let throttled_twice = mock!(Client::create_grant)
            .sequence()
            .error(|| CreateGrantError::generic(error("ThrottlingException", "Rate exceeded")))
            .times(2)
            .output(|| {
                CreateGrantOutput::builder()
                    .grant_id("grant-1")
                    .grant_token("token")
                    .build()
            })
            .build();
        let sent = Sent::default();
        let kms = client(&[&throttled_twice], &sent);

        let id = write::create_grant(&kms, &key(), &role_grant())
            .await
            .unwrap();

        assert_eq!(id, "grant-1");
        let bodies = sent.bodies();
        assert_eq!(
            bodies.len(),
            3,
            "two throttled attempts and the one that worked"
        );
        for body in &bodies {
            assert_eq!(body["Name"], "s3-replication");
            assert_eq!(body["KeyId"], KEY_ARN);
            assert_eq!(body["GranteePrincipal"], ROLE);
            assert_eq!(
                body["Operations"],
                serde_json::json!(["Encrypt", "GenerateDataKey"])
            );
            assert!(body.get("Constraints").is_none());
        }
    }

    #[tokio::test]
    async fn access_denied_on_create_grant_is_permanent_and_names_the_call_and_the_key() {
        let denied = mock!(Client::create_grant).then_error(|| {
            CreateGrantError::generic(error(
                "AccessDeniedException",
                "User is not authorized to perform kms:CreateGrant",
            ))
        });
        let sent = Sent::default();
        let kms = client(&[&denied], &sent);

        let err = write::create_grant(&kms, &key(), &role_grant())
            .await
            .unwrap_err();

        assert!(err.is_access_denied());
        assert_eq!(err.disposition(), Disposition::Report);
        assert_eq!(err.operation(), Some("CreateGrant"));
        assert!(err.to_string().contains(KEY_ARN), "{err}");
        assert_eq!(sent.bodies().len(), 1, "not retried");
    }

    #[tokio::test]
    async fn a_grant_kms_would_refuse_is_never_sent() {
        let create = mock!(Client::create_grant)
            .then_output(|| CreateGrantOutput::builder().grant_id("g").build());
        let sent = Sent::default();
        let kms = client(&[&create], &sent);
        let spec = GrantSpec {
            grantee: Grantee::Principal("s3.amazonaws.com".into()),
            ..role_grant()
        };

        let err = write::create_grant(&kms, &key(), &spec).await.unwrap_err();

        assert_eq!(err.disposition(), Disposition::Report);
        assert!(err.to_string().contains("GranteeServicePrincipal"), "{err}");
        assert_eq!(create.num_calls(), 0);
    }

    #[tokio::test]
    async fn a_service_grant_carries_its_service_fields_and_constraints() {
        let create = mock!(Client::create_grant)
            .then_output(|| CreateGrantOutput::builder().grant_id("g-s").build());
        let revoke = mock!(Client::revoke_grant).then_output(|| {
            aws_sdk_kms::operation::revoke_grant::RevokeGrantOutput::builder().build()
        });
        let sent = Sent::default();
        let kms = client(&[&create, &revoke], &sent);
        let spec = GrantSpec {
            grantee: Grantee::Service("s3.amazonaws.com".into()),
            retiring: Some(Grantee::Service("s3.amazonaws.com".into())),
            constraints: GrantConstraints {
                source_arn: Some("arn:aws:s3:::destination".into()),
                ..GrantConstraints::default()
            },
            ..role_grant()
        };

        assert_eq!(
            write::create_grant(&kms, &key(), &spec).await.unwrap(),
            "g-s"
        );
        write::revoke_grant(&kms, &key(), "g-old").await.unwrap();

        let bodies = sent.bodies();
        assert_eq!(bodies[0]["GranteeServicePrincipal"], "s3.amazonaws.com");
        assert_eq!(bodies[0]["RetiringServicePrincipal"], "s3.amazonaws.com");
        assert!(bodies[0].get("GranteePrincipal").is_none());
        assert_eq!(
            bodies[0]["Constraints"],
            serde_json::json!({"SourceArn": "arn:aws:s3:::destination"})
        );
        assert_eq!(
            bodies[1],
            serde_json::json!({"KeyId": KEY_ARN, "GrantId": "g-old"})
        );
    }
}
