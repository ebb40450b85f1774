use super::*;
use aws_sdk_kms::operation::describe_key::{DescribeKeyError, DescribeKeyOutput};
use aws_sdk_kms::types::{
    KeyManagerType, KeyMetadata, KeySpec, MultiRegionConfiguration, MultiRegionKey,
    MultiRegionKeyType,
};
use aws_sdk_kms::Client as KmsClient;
use aws_sdk_s3::operation::get_bucket_replication::GetBucketReplicationOutput;
use aws_sdk_s3::types::{
    Destination, EncryptionConfiguration, ReplicationRule, SourceSelectionCriteria,
    SseKmsEncryptedObjects,
};
use aws_sdk_s3::Client as S3Client;
use aws_smithy_mocks::{mock, mock_client, Rule as MockRule, RuleMode};
use aws_smithy_types::error::ErrorMetadata;
use std::collections::HashMap;

const ACCOUNT: &str = "111122223333";
const PRIMARY: &str = "arn:aws:kms:us-east-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab";
const REPLICA: &str = "arn:aws:kms:eu-west-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab";
const ALIAS: &str = "arn:aws:kms:eu-west-1:111122223333:alias/replica-data";
const ROLE: &str = "arn:aws:iam::111122223333:role/s3-replication";
const DESTINATION: &str = "arn:aws:s3:::replica-bucket";

fn kinds(problems: &[BucketProblem]) -> Vec<BucketProblemKind> {
    problems.iter().map(|p| p.kind).collect()
}

fn rule(key: Option<&str>, sse_kms: Option<bool>) -> Rule {
    Rule {
        id: Some("to-dublin".into()),
        enabled: true,
        destination_bucket: DESTINATION.into(),
        replica_kms_key_id: key.map(str::to_string),
        sse_kms_replicated: sse_kms,
    }
}

/// Key metadata as DescribeKey returns it: `primary` None for a single-Region key.
fn metadata(arn: &str, state: KeyState, primary: Option<&str>, spec: KeySpec) -> KeyMetadata {
    let mut meta = KeyMetadata::builder()
        .key_id(arn.rsplit('/').next().unwrap_or_default())
        .arn(arn)
        .aws_account_id(ACCOUNT)
        .key_state(state)
        .key_manager(KeyManagerType::Customer)
        .key_spec(spec)
        .multi_region(primary.is_some());
    if let Some(primary) = primary {
        let kind = if primary == arn {
            MultiRegionKeyType::Primary
        } else {
            MultiRegionKeyType::Replica
        };
        meta = meta.multi_region_configuration(
            MultiRegionConfiguration::builder()
                .multi_region_key_type(kind)
                .primary_key(
                    MultiRegionKey::builder()
                        .arn(primary)
                        .region("us-east-1")
                        .build(),
                )
                .build(),
        );
    }
    meta.build().unwrap()
}

fn found(state: KeyState, primary_managed: Option<bool>) -> KeyLookup {
    KeyLookup::Found {
        key: Box::new(
            KeyInfo::from_metadata(&metadata(
                REPLICA,
                state,
                Some(PRIMARY),
                KeySpec::SymmetricDefault,
            ))
            .unwrap(),
        ),
        primary_managed,
    }
}

#[test]
fn a_good_rule_has_no_problems_and_a_disabled_rule_is_skipped() {
    let good = rule(Some(REPLICA), Some(true));
    assert_eq!(
        check_rule(&good, Some(&found(KeyState::Enabled, Some(true)))),
        vec![]
    );
    // An unknown primary is not held against the rule.
    assert_eq!(
        check_rule(&good, Some(&found(KeyState::Enabled, None))),
        vec![]
    );
    let off = Rule {
        enabled: false,
        ..rule(Some("alias/x"), Some(false))
    };
    assert_eq!(check_rule(&off, Some(&KeyLookup::NotFound)), vec![]);
    // Without SSE-KMS replication and without a key there is nothing to encrypt.
    assert_eq!(check_rule(&rule(None, None), None), vec![]);
}

#[test]
fn sse_kms_replication_and_the_replica_key_go_together() {
    let problems = check_rule(&rule(None, Some(true)), None);
    assert_eq!(kinds(&problems), [BucketProblemKind::NoReplicaKey]);
    assert!(
        problems[0]
            .summary
            .starts_with("rule \"to-dublin\" replicates SSE-KMS objects"),
        "{}",
        problems[0].summary
    );
    for criteria in [None, Some(false)] {
        let problems = check_rule(
            &rule(Some(REPLICA), criteria),
            Some(&found(KeyState::Enabled, Some(true))),
        );
        assert_eq!(kinds(&problems), [BucketProblemKind::SseKmsNotReplicated]);
        assert!(problems[0]
            .summary
            .contains("objects encrypted with SSE-KMS are not replicated"));
    }
}

#[test]
fn an_alias_is_replaced_by_the_key_it_points_to() {
    let problems = check_rule(
        &rule(Some(ALIAS), Some(true)),
        Some(&found(KeyState::Enabled, Some(true))),
    );
    assert_eq!(kinds(&problems), [BucketProblemKind::AliasNotKeyArn]);
    assert_eq!(
        problems[0].summary,
        format!("rule \"to-dublin\" names alias {ALIAS}: replace it with the key ARN {REPLICA} it points to now: an alias can be moved to another key without the bucket noticing")
    );
    // An alias name cannot be described without knowing its Region.
    let problems = check_rule(&rule(Some("alias/replica-data"), Some(true)), None);
    assert_eq!(kinds(&problems), [BucketProblemKind::AliasNotKeyArn]);
    assert!(problems[0]
        .summary
        .contains("key ARN of the replica in the destination bucket's Region"));
}

#[test]
fn anything_but_a_key_or_alias_arn_is_not_an_arn() {
    for id in [
        "mrk-1234abcd12ab34cd56ef1234567890ab",
        "1234abcd-12ab-34cd-56ef-1234567890ab",
        "arn:aws:s3:::replica-bucket",
        "arn:aws:kms::111122223333:key/mrk-1",
    ] {
        let problems = check_rule(&rule(Some(id), Some(true)), None);
        assert_eq!(kinds(&problems), [BucketProblemKind::KeyIdNotArn], "{id}");
    }
}

#[test]
fn a_missing_or_unreadable_key_is_reported() {
    let r = rule(Some(REPLICA), Some(true));
    assert_eq!(
        kinds(&check_rule(&r, Some(&KeyLookup::NotFound))),
        [BucketProblemKind::KeyNotFound]
    );
    let problems = check_rule(
        &r,
        Some(&KeyLookup::Unreadable("AccessDeniedException:\nno".into())),
    );
    assert_eq!(kinds(&problems), [BucketProblemKind::KeyUnreadable]);
    assert!(
        problems[0]
            .summary
            .contains("(AccessDeniedException:\\nno)"),
        "{}",
        problems[0].summary
    );
}

#[test]
fn the_replica_must_be_enabled_and_not_pending_deletion() {
    let r = rule(Some(REPLICA), Some(true));
    for (state, kind) in [
        (KeyState::Disabled, BucketProblemKind::KeyDisabled),
        (KeyState::Unavailable, BucketProblemKind::KeyDisabled),
        (
            KeyState::PendingDeletion,
            BucketProblemKind::KeyPendingDeletion,
        ),
        (
            KeyState::PendingReplicaDeletion,
            BucketProblemKind::KeyPendingDeletion,
        ),
    ] {
        let problems = check_rule(&r, Some(&found(state.clone(), Some(true))));
        assert_eq!(kinds(&problems), [kind], "{state:?}");
    }
    let problems = check_rule(&r, Some(&found(KeyState::Disabled, Some(true))));
    assert!(
        problems[0].summary.contains("which is Disabled: enable it"),
        "{}",
        problems[0].summary
    );
}

#[test]
fn only_a_symmetric_replica_of_a_managed_primary_will_do() {
    let r = rule(Some(PRIMARY), Some(true));
    let lookup = |arn: &str, primary: Option<&str>, spec: KeySpec| KeyLookup::Found {
        key: Box::new(
            KeyInfo::from_metadata(&metadata(arn, KeyState::Enabled, primary, spec.clone()))
                .unwrap(),
        ),
        primary_managed: Some(true),
    };
    let primary = check_rule(
        &r,
        Some(&lookup(PRIMARY, Some(PRIMARY), KeySpec::SymmetricDefault)),
    );
    assert_eq!(kinds(&primary), [BucketProblemKind::NotMultiRegionReplica]);
    assert!(primary[0]
        .summary
        .contains("a multi-Region primary, not a replica"));
    let single = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    let problems = check_rule(
        &rule(Some(single), Some(true)),
        Some(&lookup(single, None, KeySpec::SymmetricDefault)),
    );
    assert_eq!(kinds(&problems), [BucketProblemKind::NotMultiRegionReplica]);
    assert!(problems[0].summary.contains("a single-Region key"));
    let problems = check_rule(
        &rule(Some(REPLICA), Some(true)),
        Some(&lookup(REPLICA, Some(PRIMARY), KeySpec::Rsa2048)),
    );
    assert_eq!(kinds(&problems), [BucketProblemKind::NotSymmetric]);
    let problems = check_rule(
        &rule(Some(REPLICA), Some(true)),
        Some(&found(KeyState::Enabled, Some(false))),
    );
    assert_eq!(kinds(&problems), [BucketProblemKind::NotManagedPrimary]);
    assert!(problems[0].summary.contains(&format!(
        "a replica of {PRIMARY}, which the guardrails do not manage"
    )));
}

#[test]
fn the_role_must_be_a_configured_one_when_roles_are_configured() {
    assert_eq!(check_role(ROLE, &[]), None);
    assert_eq!(check_role(ROLE, &[ROLE.to_string()]), None);
    let problem = check_role(
        "arn:aws:iam::111122223333:role/other\n",
        &[ROLE.to_string()],
    )
    .unwrap();
    assert_eq!(problem.kind, BucketProblemKind::RoleNotConfigured);
    assert!(problem.summary.starts_with(
        "replication role arn:aws:iam::111122223333:role/other\\n is not in REPLICATION_ROLE_ARNS"
    ));
}

#[test]
fn problem_kinds_serialize_in_snake_case() {
    let json = serde_json::to_value(BucketProblem::new(
        BucketProblemKind::AliasNotKeyArn,
        "s".into(),
    ))
    .unwrap();
    assert_eq!(
        json,
        serde_json::json!({"kind": "alias_not_key_arn", "summary": "s"})
    );
}

#[test]
fn bucket_entries_name_a_bucket_and_optionally_its_region() {
    assert_eq!(
        parse_bucket_entry(" logs.example-1 ", &shared::testing::region("eu-west-1")),
        Ok(BucketRef {
            name: "logs.example-1".into(),
            region: shared::testing::region("eu-west-1")
        })
    );
    assert_eq!(
        parse_bucket_entry("data@us-east-2", &shared::testing::region("eu-west-1")),
        Ok(BucketRef {
            name: "data".into(),
            region: shared::testing::region("us-east-2")
        })
    );
    for (bad, says) in [
        ("ab", "3 to 63 characters"),
        (&"a".repeat(64) as &str, "3 to 63 characters"),
        ("My-Bucket", "only lowercase letters"),
        ("bucket_name", "only lowercase letters"),
        ("-bucket", "begins and ends"),
        ("bucket.", "begins and ends"),
        ("my..bucket", "adjacent dots"),
        ("192.168.5.4", "IP address"),
        ("data@europe", "\"europe\" is not a Region"),
        ("data@", "\"\" is not a Region"),
        ("x\ny", "\"x\\ny\" is not an S3 bucket name"),
    ] {
        let err = parse_bucket_entry(bad, &shared::testing::region("eu-west-1")).unwrap_err();
        assert!(err.contains(says), "{bad}: {err}");
    }
}

// --- I/O against the real SDK clients with mocked answers ---

fn s3_error(status: u16, code: &str) -> MockRule {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>from S3</Message><BucketName>source-bucket</BucketName><RequestId>R</RequestId><HostId>H</HostId></Error>"
    );
    mock!(S3Client::get_bucket_replication)
        .sequence()
        .http_status(status, Some(body))
        .build()
}

fn s3_replication(rules: Vec<ReplicationRule>) -> MockRule {
    mock!(S3Client::get_bucket_replication)
        .match_requests(|r| r.bucket() == Some("source-bucket"))
        .then_output(move || {
            GetBucketReplicationOutput::builder()
                .replication_configuration(
                    ReplicationConfiguration::builder()
                        .role(ROLE)
                        .set_rules(Some(rules.clone()))
                        .build()
                        .unwrap(),
                )
                .build()
        })
}

fn sdk_rule(id: &str, key: &str) -> ReplicationRule {
    ReplicationRule::builder()
        .id(id)
        .status(ReplicationRuleStatus::Enabled)
        .destination(
            Destination::builder()
                .bucket(DESTINATION)
                .encryption_configuration(
                    EncryptionConfiguration::builder()
                        .replica_kms_key_id(key)
                        .build(),
                )
                .build()
                .unwrap(),
        )
        .source_selection_criteria(
            SourceSelectionCriteria::builder()
                .sse_kms_encrypted_objects(
                    SseKmsEncryptedObjects::builder()
                        .status(SseKmsEncryptedObjectsStatus::Enabled)
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .build()
        .unwrap()
}

/// S3 in `region` with the production retry settings.
fn s3(region: &'static str, rules: &[&MockRule]) -> S3Client {
    mock_client!(aws_sdk_s3, RuleMode::MatchAny, rules, |c| c
        .region(aws_sdk_s3::config::Region::new(region))
        .retry_config(shared::aws::retry_config()))
}

/// GetBucketLocation of every destination: `region`.
fn located(region: &'static str) -> MockRule {
    use aws_sdk_s3::operation::get_bucket_location::GetBucketLocationOutput;
    use aws_sdk_s3::types::BucketLocationConstraint;
    mock!(S3Client::get_bucket_location)
        .sequence()
        .output(move || {
            GetBucketLocationOutput::builder()
                .location_constraint(BucketLocationConstraint::from(region))
                .build()
        })
        .repeatedly()
        .build()
}

fn describes(identifier: &'static str, meta: KeyMetadata) -> MockRule {
    mock!(KmsClient::describe_key)
        .match_requests(move |r| r.key_id() == Some(identifier))
        .then_output(move || {
            DescribeKeyOutput::builder()
                .key_metadata(meta.clone())
                .build()
        })
}

fn clients(replica_region: &[&MockRule], primary_region: &[&MockRule]) -> AwsClients {
    let eu: KmsClient = mock_client!(aws_sdk_kms, RuleMode::MatchAny, replica_region);
    let us: KmsClient = mock_client!(aws_sdk_kms, RuleMode::MatchAny, primary_region);
    let sdk = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .build();
    AwsClients::new(sdk)
        .with_kms_client("eu-west-1", eu)
        .with_kms_client("us-east-1", us)
}

/// The primary is managed by being listed: resolving it needs its DescribeKey only.
fn common() -> CommonConfig {
    let env: HashMap<&str, &str> = HashMap::from([
        ("MODE", "report"),
        ("ACCOUNT_ID", ACCOUNT),
        ("AWS_REGION", "eu-west-1"),
        (
            "NOTIFY_TOPIC_ARN",
            "arn:aws:sns:eu-west-1:111122223333:kms-guardrails",
        ),
        (
            "SELF_ROLE_ARN",
            "arn:aws:iam::111122223333:role/replica-grant-validator",
        ),
        ("MANAGED_KEYS", PRIMARY),
    ]);
    shared::config::load(
        &|k| env.get(k).map(|v| v.to_string()),
        CommonConfig::read,
        |_| Vec::new(),
    )
    .unwrap()
}

fn source() -> BucketRef {
    BucketRef {
        name: "source-bucket".into(),
        region: shared::testing::region("eu-west-1"),
    }
}

fn primary_described() -> MockRule {
    describes(
        PRIMARY,
        metadata(
            PRIMARY,
            KeyState::Enabled,
            Some(PRIMARY),
            KeySpec::SymmetricDefault,
        ),
    )
}

#[tokio::test]
async fn s3_xml_errors_carry_their_codes() {
    let denied = s3_error(403, "AccessDenied");
    let err = replication(&s3("eu-west-1", &[&denied]), "source-bucket")
        .await
        .unwrap_err();
    assert!(
        err.is_access_denied() && err.disposition() == Disposition::Report,
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "GetBucketReplication on source-bucket failed: AccessDenied: from S3"
    );

    let none = s3_error(404, "ReplicationConfigurationNotFoundError");
    assert_eq!(
        replication(&s3("eu-west-1", &[&none]), "source-bucket")
            .await
            .unwrap(),
        None
    );

    let slow = mock!(S3Client::get_bucket_replication)
        .sequence()
        .http_status(503, Some("<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>".into()))
        .times(3)
        .build();
    let err = replication(&s3("eu-west-1", &[&slow]), "source-bucket")
        .await
        .unwrap_err();
    assert_eq!(
        (err.error_type(), err.disposition()),
        ("Throttling", Disposition::Retry),
        "{err}"
    );
    assert_eq!(slow.num_calls(), shared::aws::MAX_ATTEMPTS as usize);
}

#[tokio::test]
async fn a_denied_replication_read_is_a_permanent_error_of_the_report() {
    let denied = s3_error(403, "AccessDenied");
    let report = validate_bucket(
        &s3("eu-west-1", &[&denied]),
        &clients(&[], &[]),
        &common(),
        &[],
        &source(),
    )
    .await;
    assert!(report
        .error
        .as_ref()
        .is_some_and(GuardrailError::is_access_denied));
    assert_eq!(report.disposition(), Some(Disposition::Report));
    assert!(report.rules.is_empty() && report.problems.is_empty());
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(
        json["error"],
        "GetBucketReplication on source-bucket failed: AccessDenied: from S3"
    );
}

#[tokio::test]
async fn a_bucket_without_replication_is_a_problem() {
    let none = s3_error(404, "ReplicationConfigurationNotFoundError");
    let report = validate_bucket(
        &s3("eu-west-1", &[&none]),
        &clients(&[], &[]),
        &common(),
        &[],
        &source(),
    )
    .await;
    assert!(report.error.is_none());
    assert_eq!(
        kinds(&report.problems),
        [BucketProblemKind::NoReplicationConfiguration]
    );
    assert!(serde_json::to_value(&report)
        .unwrap()
        .get("error")
        .is_none());
}

#[tokio::test]
async fn a_good_rule_has_no_problems_and_each_key_is_described_once() {
    let bucket = s3_replication(vec![sdk_rule("one", REPLICA), sdk_rule("two", REPLICA)]);
    let replica = describes(
        REPLICA,
        metadata(
            REPLICA,
            KeyState::Enabled,
            Some(PRIMARY),
            KeySpec::SymmetricDefault,
        ),
    );
    let primary = primary_described();
    // The client is in another Region: the call still goes to the bucket's.
    let report = validate_bucket(
        &s3("us-west-2", &[&bucket, &located("eu-west-1")]),
        &clients(&[&replica], &[&primary]),
        &common(),
        &[ROLE.to_string()],
        &source(),
    )
    .await;
    assert!(report.error.is_none(), "{:?}", report.error);
    assert_eq!(report.role.as_deref(), Some(ROLE));
    assert_eq!(report.rules.len(), 2);
    assert_eq!(report.all_problems().count(), 0, "{report:?}");
    assert_eq!((replica.num_calls(), primary.num_calls()), (1, 1));
    assert_eq!(bucket.num_calls(), 1);
}

#[tokio::test]
async fn an_alias_is_named_by_the_key_it_points_to() {
    let bucket = s3_replication(vec![sdk_rule("via-alias", ALIAS)]);
    let alias = describes(
        ALIAS,
        metadata(
            REPLICA,
            KeyState::Enabled,
            Some(PRIMARY),
            KeySpec::SymmetricDefault,
        ),
    );
    let primary = primary_described();
    let report = validate_bucket(
        &s3("eu-west-1", &[&bucket, &located("eu-west-1")]),
        &clients(&[&alias], &[&primary]),
        &common(),
        &["arn:aws:iam::111122223333:role/other".to_string()],
        &source(),
    )
    .await;
    assert_eq!(
        kinds(&report.problems),
        [BucketProblemKind::RoleNotConfigured]
    );
    let problems = &report.rules[0].problems;
    assert_eq!(kinds(problems), [BucketProblemKind::AliasNotKeyArn]);
    assert!(problems[0].summary.contains(&format!(
        "replace it with the key ARN {REPLICA} it points to now"
    )));
}

#[tokio::test]
async fn a_disabled_replica_and_an_unmanaged_primary_are_reported() {
    let bucket = s3_replication(vec![sdk_rule("disabled", REPLICA)]);
    let replica = describes(
        REPLICA,
        metadata(
            REPLICA,
            KeyState::Disabled,
            Some(PRIMARY),
            KeySpec::SymmetricDefault,
        ),
    );
    let primary = primary_described();
    let report = validate_bucket(
        &s3("eu-west-1", &[&bucket, &located("eu-west-1")]),
        &clients(&[&replica], &[&primary]),
        &common(),
        &[],
        &source(),
    )
    .await;
    assert_eq!(
        kinds(&report.rules[0].problems),
        [BucketProblemKind::KeyDisabled]
    );

    // Not in MANAGED_KEYS: the primary is not managed.
    let other = "arn:aws:kms:us-east-1:111122223333:key/mrk-99999999999999999999999999999999";
    let replica = describes(
        REPLICA,
        metadata(
            REPLICA,
            KeyState::Enabled,
            Some(other),
            KeySpec::SymmetricDefault,
        ),
    );
    let unlisted = describes(
        other,
        metadata(
            other,
            KeyState::Enabled,
            Some(other),
            KeySpec::SymmetricDefault,
        ),
    );
    let report = validate_bucket(
        &s3("eu-west-1", &[&bucket, &located("eu-west-1")]),
        &clients(&[&replica], &[&unlisted]),
        &common(),
        &[],
        &source(),
    )
    .await;
    assert_eq!(
        kinds(&report.rules[0].problems),
        [BucketProblemKind::NotManagedPrimary]
    );
}

#[tokio::test]
async fn missing_and_unreadable_keys_are_problems_and_throttling_a_retryable_error() {
    let bucket = s3_replication(vec![sdk_rule("r", REPLICA)]);
    let kms_error = |code: &'static str| {
        mock!(KmsClient::describe_key).then_error(move || {
            DescribeKeyError::generic(ErrorMetadata::builder().code(code).message("m").build())
        })
    };
    for (code, kind) in [
        ("NotFoundException", BucketProblemKind::KeyNotFound),
        ("AccessDeniedException", BucketProblemKind::KeyUnreadable),
    ] {
        let answer = kms_error(code);
        let report = validate_bucket(
            &s3("eu-west-1", &[&bucket]),
            &clients(&[&answer], &[]),
            &common(),
            &[],
            &source(),
        )
        .await;
        assert_eq!(kinds(&report.rules[0].problems), [kind], "{code}");
    }
    let throttled = kms_error("ThrottlingException");
    let report = validate_bucket(
        &s3("eu-west-1", &[&bucket]),
        &clients(&[&throttled], &[]),
        &common(),
        &[],
        &source(),
    )
    .await;
    assert!(
        report.disposition() == Some(Disposition::Retry) && report.rules.is_empty(),
        "{report:?}"
    );
}

#[test]
fn get_bucket_location_answers_name_their_regions() {
    assert_eq!(location_region(None).unwrap(), "us-east-1");
    assert_eq!(location_region(Some("")).unwrap(), "us-east-1");
    assert_eq!(location_region(Some("EU")).unwrap(), "eu-west-1");
    assert_eq!(
        location_region(Some("ap-southeast-2")).unwrap(),
        "ap-southeast-2"
    );
    assert!(location_region(Some("not a region")).is_none());
}

#[tokio::test]
async fn a_replica_key_outside_the_destination_region_is_reported_and_an_unknown_region_is_not_guessed(
) {
    let replica_meta = || {
        metadata(
            REPLICA,
            KeyState::Enabled,
            Some(PRIMARY),
            KeySpec::SymmetricDefault,
        )
    };
    let bucket = s3_replication(vec![sdk_rule("one", REPLICA)]);
    let (replica, primary) = (describes(REPLICA, replica_meta()), primary_described());
    let report = validate_bucket(
        &s3("eu-west-1", &[&bucket, &located("us-west-2")]),
        &clients(&[&replica], &[&primary]),
        &common(),
        &[ROLE.to_string()],
        &source(),
    )
    .await;
    let problems: Vec<_> = report.all_problems().collect();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(
        problems[0].kind,
        BucketProblemKind::KeyNotInDestinationRegion
    );
    assert!(
        problems[0].summary.contains("a key in eu-west-1"),
        "{}",
        problems[0].summary
    );

    // A destination of another account that does not share its location: not checked, not an error.
    let denied = mock!(S3Client::get_bucket_location).then_error(|| {
        aws_sdk_s3::operation::get_bucket_location::GetBucketLocationError::generic(
            ErrorMetadata::builder()
                .code("AccessDenied")
                .message("Access Denied")
                .build(),
        )
    });
    let bucket = s3_replication(vec![sdk_rule("one", REPLICA)]);
    let (replica, primary) = (describes(REPLICA, replica_meta()), primary_described());
    let report = validate_bucket(
        &s3("eu-west-1", &[&bucket, &denied]),
        &clients(&[&replica], &[&primary]),
        &common(),
        &[ROLE.to_string()],
        &source(),
    )
    .await;
    assert!(report.error.is_none(), "{:?}", report.error);
    assert_eq!(report.all_problems().count(), 0);
}
