//! replica-grant-validator end to end: the real handler and the real AWS SDK against moto, a
//! managed primary in eu-west-1 with replicas in us-west-2 and eu-central-1.
//!
//! Where moto differs from AWS (tests/moto_aws.py and the test bed say so): moto checks no IAM
//! and none of KMS's grant rules (the function checks those itself, see `shared::aws::grants`); its
//! ReplicateKey copies the primary's policy (the test bed puts each replica's own), and shares
//! the primary's grants with every replica unless corrected (tests/moto_aws.py gives each
//! replica its own, as AWS does); its GetBucketReplication drops SourceSelectionCriteria.

use integration_tests::replication::{
    all_regions, validator_config, KeySet, REPLICATION_ROLE_ARN, REPLICA_REGIONS,
};
use integration_tests::{sample_event, CallLog, TestBed, ACCOUNT_ID, REGION};
use lambda_runtime::{Context, LambdaEvent};
use replica_grant_validator::report::ValidationReport;
use replica_grant_validator::{function_handler, Clients, Config, Deps, Response};
use serde_json::{json, Value};
use shared::notify::outcome::{FindingKind, Outcome};

fn deps(bed: &TestBed, config: Config) -> (Deps, CallLog) {
    // Every Region a test puts a key in, so a write anywhere is seen.
    let mut regions = all_regions();
    regions.extend(["ap-south-1", "sa-east-1"]);
    let (clients, calls) = bed.recorded_clients_in(&regions);
    let deps = Deps {
        config,
        clients,
        own: Clients::new().with_s3_client(REGION, bed.s3_in(REGION)),
    };
    (deps, calls)
}

async fn run(deps: &Deps, event: Value) -> Response {
    function_handler(LambdaEvent::new(event, Context::default()), deps)
        .await
        .unwrap()
}

fn report(response: Response) -> ValidationReport {
    match response {
        Response::Report(report) => *report,
        Response::Outcome(other) => panic!("expected a validation report, got {other:?}"),
    }
}

/// Finding kinds of the one key validated, per replica Region.
fn kinds_in(report: &ValidationReport, region: &str) -> Vec<FindingKind> {
    report.keys[0]
        .replicas
        .iter()
        .filter(|r| r.region == region)
        .flat_map(|r| r.findings.iter().map(|f| f.kind))
        .collect()
}

async fn grant_everywhere(bed: &TestBed, set: &KeySet) {
    for region in REPLICA_REGIONS {
        bed.create_grant_in(
            region,
            &set.key_id,
            "s3-replication",
            REPLICATION_ROLE_ARN,
            &["Encrypt", "GenerateDataKey"],
        )
        .await;
    }
}

fn sweep() -> Value {
    sample_event("replica-grant-validator/scheduled-sweep.json", "unused")
}

#[tokio::test]
async fn a_missing_grant_is_created_in_each_replica_region_and_a_second_run_writes_nothing() {
    let bed = TestBed::start().await;
    let set = bed.create_key_set(&REPLICA_REGIONS).await;
    let (deps, calls) = deps(&bed, validator_config(&bed.topic_arn, &[]));

    let first = report(run(&deps, sweep()).await);

    for region in REPLICA_REGIONS {
        assert_eq!(calls.writes_in(region), ["CreateGrant"], "{region}");
        assert_eq!(
            bed.grants_in(region, &set.key_id).await,
            [(
                "s3-replication".to_string(),
                REPLICATION_ROLE_ARN.to_string(),
                vec!["Encrypt".to_string(), "GenerateDataKey".to_string()]
            )],
            "{region}"
        );
        assert_eq!(
            kinds_in(&first, region),
            [FindingKind::GrantMissing],
            "{region}"
        );
    }
    assert!(
        calls.writes_in(REGION).is_empty(),
        "the primary is never written"
    );
    assert_eq!(first.keys[0].primary, set.primary_arn);
    let messages = bed.notifications().await;
    assert_eq!(messages.len(), 1, "one message for the run");
    assert!(
        messages[0].subject.contains("2 repair(s)"),
        "{}",
        messages[0].subject
    );
    assert!(messages[0].message.contains("created grant s3-replication"));
    assert!(
        bed.state_items()
            .await
            .iter()
            .all(|(pk, _)| !pk.starts_with("pending#")),
        "the digest announced the grants, so their record is settled"
    );

    calls.clear();
    let second = report(run(&deps, sweep()).await);
    assert!(calls.writes().is_empty(), "{:?}", calls.writes());
    // Three reads per replica Region and nothing else: the fewest the checks allow.
    for region in REPLICA_REGIONS {
        let in_region: Vec<String> = calls
            .calls()
            .into_iter()
            .filter(|(r, _)| r == region)
            .map(|(_, op)| op)
            .collect();
        assert_eq!(
            in_region,
            ["DescribeKey", "GetKeyPolicy", "ListGrants"],
            "{region}"
        );
    }
    assert!(second.keys[0]
        .replicas
        .iter()
        .all(|r| r.findings.is_empty()));
    assert!(
        bed.notifications().await.is_empty(),
        "nothing to say the second time"
    );
}

#[tokio::test]
async fn nothing_is_written_or_sent_when_every_replica_is_in_order() {
    let bed = TestBed::start().await;
    let set = bed.create_key_set(&REPLICA_REGIONS).await;
    grant_everywhere(&bed, &set).await;
    let (deps, calls) = deps(&bed, validator_config(&bed.topic_arn, &[]));

    let checked = report(run(&deps, sweep()).await);

    assert!(calls.writes().is_empty(), "{:?}", calls.writes());
    let replicas = &checked.keys[0].replicas;
    assert_eq!(replicas.len(), 2);
    for replica in replicas {
        assert!(replica.findings.is_empty(), "{replica:?}");
        assert_eq!(replica.grants.ok, ["s3-replication"]);
        assert_eq!(replica.state, "Enabled");
    }
    assert!(checked.notification.is_none());
    assert!(bed.notifications().await.is_empty());
}

#[tokio::test]
async fn an_unchanged_sweep_message_is_not_sent_again_and_a_change_is() {
    let bed = TestBed::start().await;
    let set = bed.create_key_set(&REPLICA_REGIONS).await;
    grant_everywhere(&bed, &set).await;
    let outsider = "arn:aws:iam::444455556666:role/partner";
    bed.create_grant_in(
        "us-west-2",
        &set.key_id,
        "partner-decrypt",
        outsider,
        &["Decrypt"],
    )
    .await;
    let (deps, _) = deps(&bed, validator_config(&bed.topic_arn, &[]));

    report(run(&deps, sweep()).await);
    assert_eq!(bed.notifications().await.len(), 1, "first sweep: announced");
    let second = report(run(&deps, sweep()).await);
    assert!(
        bed.notifications().await.is_empty(),
        "unchanged: not sent again"
    );
    assert!(second.not_announced_again.is_some(), "{second:?}");

    // A second unexpected grant changes the findings: news.
    bed.create_grant_in(
        "eu-central-1",
        &set.key_id,
        "partner-decrypt",
        outsider,
        &["Decrypt"],
    )
    .await;
    report(run(&deps, sweep()).await);
    let notes = bed.notifications().await;
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        notes[0].message.contains("eu-central-1"),
        "{}",
        notes[0].message
    );
}

#[tokio::test]
async fn an_unexpected_grant_is_reported_and_revoked_only_in_strict_mode() {
    let bed = TestBed::start().await;
    let set = bed.create_key_set(&REPLICA_REGIONS).await;
    grant_everywhere(&bed, &set).await;
    let outsider = "arn:aws:iam::444455556666:role/partner";
    bed.create_grant_in(
        "us-west-2",
        &set.key_id,
        "partner-decrypt",
        outsider,
        &["Decrypt"],
    )
    .await;

    let (report_only, calls) = deps(&bed, validator_config(&bed.topic_arn, &[]));
    let reported = report(run(&report_only, sweep()).await);
    assert_eq!(
        kinds_in(&reported, "us-west-2"),
        [FindingKind::GrantUnexpected]
    );
    assert!(calls.writes().is_empty(), "{:?}", calls.writes());
    assert_eq!(bed.grants_in("us-west-2", &set.key_id).await.len(), 2);
    let message = &bed.notifications().await[0].message;
    assert!(message.contains(outsider), "{message}");

    let (strict, calls) = deps(
        &bed,
        validator_config(&bed.topic_arn, &[("STRICT_GRANTS", "true")]),
    );
    run(&strict, sweep()).await;
    assert_eq!(calls.writes_in("us-west-2"), ["RevokeGrant"]);
    let left = bed.grants_in("us-west-2", &set.key_id).await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].0, "s3-replication");
}

#[tokio::test]
async fn replica_policy_drift_and_a_replica_that_denies_the_replication_role_are_reported() {
    let bed = TestBed::start().await;
    let set = bed.create_key_set(&REPLICA_REGIONS).await;
    grant_everywhere(&bed, &set).await;
    // Someone denies the replication role in us-west-2: S3 replication can no longer encrypt
    // there, whatever grants it holds.
    let mut denied = integration_tests::replication::replica_policy("us-west-2");
    denied["Statement"].as_array_mut().unwrap().push(json!({
        "Sid": "NoReplicationHere", "Effect": "Deny", "Principal": {"AWS": REPLICATION_ROLE_ARN},
        "Action": ["kms:Encrypt", "kms:GenerateDataKey"], "Resource": "*"
    }));
    bed.kms_in("us-west-2")
        .put_key_policy()
        .key_id(&set.key_id)
        .policy_name("default")
        .policy(denied.to_string())
        .send()
        .await
        .unwrap();
    let (deps, calls) = deps(&bed, validator_config(&bed.topic_arn, &[]));

    let checked = report(run(&deps, sweep()).await);

    assert_eq!(
        kinds_in(&checked, "us-west-2"),
        [FindingKind::PolicyDrift, FindingKind::ReplicationAccess]
    );
    assert!(kinds_in(&checked, "eu-central-1").is_empty());
    let west = checked.keys[0]
        .replicas
        .iter()
        .find(|r| r.region == "us-west-2")
        .unwrap();
    assert!(west.replication_role_access[0]
        .detail
        .as_deref()
        .unwrap()
        .contains("\"NoReplicationHere\""));
    assert!(
        calls.writes().is_empty(),
        "nothing to repair: policies are reported"
    );
    let message = &bed.notifications().await[0];
    assert_eq!(message.attributes["severity"]["Value"], "critical");
}

#[tokio::test]
async fn an_event_about_a_replica_validates_its_primary() {
    let bed = TestBed::start().await;
    let set = bed.create_key_set(&REPLICA_REGIONS).await;
    let (deps, calls) = deps(&bed, validator_config(&bed.topic_arn, &[]));

    // A grant revoked on the us-west-2 replica: the event names the replica only.
    let event = sample_event("replica-grant-validator/revoke-grant.json", &set.key_id);
    let checked = report(run(&deps, event).await);

    assert_eq!(checked.trigger, "RevokeGrant");
    assert_eq!(checked.keys.len(), 1);
    assert_eq!(checked.keys[0].primary, set.primary_arn);
    assert_eq!(
        checked.keys[0].replicas.len(),
        2,
        "every replica of the primary"
    );
    for region in REPLICA_REGIONS {
        assert_eq!(calls.writes_in(region), ["CreateGrant"], "{region}");
    }
    let messages = bed.notifications().await;
    assert_eq!(messages.len(), 1);
    assert!(messages[0].message.contains("RevokeGrant"));
}

#[tokio::test]
async fn an_event_about_a_single_region_key_is_skipped_with_its_reason() {
    let bed = TestBed::start().await;
    let key = bed
        .create_key("single-Region", &[("guardrails:managed", "true")], None)
        .await;
    let (deps, calls) = deps(&bed, validator_config(&bed.topic_arn, &[]));

    let event = sample_event(
        "replica-grant-validator/create-grant-single-region-key.json",
        &key.key_id,
    );
    match run(&deps, event).await {
        Response::Outcome(Outcome::Skipped { reason, .. }) => {
            assert!(reason.contains("single-Region key"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    assert!(calls.writes().is_empty());
}

#[tokio::test]
async fn disabled_pending_deletion_disallowed_and_missing_replicas_are_reported() {
    let bed = TestBed::start().await;
    let set = bed
        .create_key_set(&["us-west-2", "eu-central-1", "ap-south-1"])
        .await;
    grant_everywhere(&bed, &set).await;
    bed.kms_in("us-west-2")
        .disable_key()
        .key_id(&set.key_id)
        .send()
        .await
        .unwrap();
    bed.kms_in("eu-central-1")
        .schedule_key_deletion()
        .key_id(&set.key_id)
        .pending_window_in_days(7)
        .send()
        .await
        .unwrap();
    let config = validator_config(
        &bed.topic_arn,
        &[("REPLICATION_REGIONS", "us-west-2,eu-central-1,sa-east-1")],
    );
    let (deps, calls) = deps(&bed, config);

    let checked = report(run(&deps, sweep()).await);

    assert!(kinds_in(&checked, "us-west-2").contains(&FindingKind::KeyDisabled));
    assert!(kinds_in(&checked, "eu-central-1").contains(&FindingKind::PendingDeletion));
    assert!(kinds_in(&checked, "ap-south-1").contains(&FindingKind::ReplicaRegionNotAllowed));
    assert_eq!(checked.keys[0].missing_regions, ["sa-east-1"]);
    assert_eq!(
        checked.keys[0].findings[0].kind,
        FindingKind::ReplicaMissing
    );
    // ap-south-1 is not allowed and eu-central-1 is going away: no grant is created there.
    assert!(calls.writes_in("ap-south-1").is_empty());
    assert!(calls.writes_in("eu-central-1").is_empty());
}

#[tokio::test]
async fn a_bucket_whose_replication_names_an_alias_or_a_disabled_replica_is_reported() {
    let bed = TestBed::start().await;
    let set = bed.create_key_set(&REPLICA_REGIONS).await;
    grant_everywhere(&bed, &set).await;
    bed.kms_in("us-west-2")
        .create_alias()
        .alias_name("alias/app-data-replica")
        .target_key_id(&set.key_id)
        .send()
        .await
        .unwrap();
    bed.kms_in("eu-central-1")
        .disable_key()
        .key_id(&set.key_id)
        .send()
        .await
        .unwrap();
    let alias_arn = format!("arn:aws:kms:us-west-2:{ACCOUNT_ID}:alias/app-data-replica");
    bed.create_replicating_bucket("app-data-eu-west-1", "app-data-us-west-2", &alias_arn)
        .await;
    bed.create_replicating_bucket(
        "logs-eu-west-1",
        "logs-eu-central-1",
        &set.arn_in("eu-central-1"),
    )
    .await;
    let config = validator_config(
        &bed.topic_arn,
        &[("REPLICATION_BUCKETS", "app-data-eu-west-1,logs-eu-west-1")],
    );
    let (deps, _) = deps(&bed, config);

    let event = sample_event(
        "replica-grant-validator/put-bucket-replication.json",
        &set.key_id,
    );
    let checked = report(run(&deps, event).await);
    assert_eq!(checked.buckets.len(), 1, "the event's bucket only");
    let problems: Vec<String> = checked.buckets[0].rules[0]
        .problems
        .iter()
        .map(|p| p.summary.clone())
        .collect();
    assert!(
        problems
            .iter()
            .any(|p| p.contains(&set.arn_in("us-west-2"))),
        "names the key the alias points at: {problems:?}"
    );

    let swept = report(run(&deps, sweep()).await);
    let logs = swept
        .buckets
        .iter()
        .find(|b| b.bucket == "logs-eu-west-1")
        .unwrap();
    let kinds: Vec<String> = logs.rules[0]
        .problems
        .iter()
        .map(|p| {
            serde_json::to_value(p.kind)
                .unwrap()
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert!(kinds.contains(&"key_disabled".to_string()), "{kinds:?}");
}

#[tokio::test]
async fn a_bucket_rule_whose_replica_key_is_not_in_the_destination_region_is_reported() {
    let bed = TestBed::start().await;
    let set = bed.create_key_set(&REPLICA_REGIONS).await;
    grant_everywhere(&bed, &set).await;
    // The destination is in us-west-2; one rule names the eu-central-1 replica, S3 needs the
    // us-west-2 one. moto does not check this when it replicates; AWS refuses the object.
    bed.create_bucket_in("app-data-us-west-2", "us-west-2")
        .await;
    bed.create_replicating_bucket(
        "app-data-eu-west-1",
        "app-data-us-west-2",
        &set.arn_in("eu-central-1"),
    )
    .await;
    bed.create_replicating_bucket(
        "logs-eu-west-1",
        "app-data-us-west-2",
        &set.arn_in("us-west-2"),
    )
    .await;
    let config = validator_config(
        &bed.topic_arn,
        &[("REPLICATION_BUCKETS", "app-data-eu-west-1,logs-eu-west-1")],
    );
    let (deps, _) = deps(&bed, config);

    let swept = report(run(&deps, sweep()).await);

    // moto drops SourceSelectionCriteria from GetBucketReplication, so every rule here also
    // shows "SseKmsEncryptedObjects is not Enabled"; only the Region problem is looked at.
    let region_problems = |bucket: &str| -> Vec<String> {
        swept
            .buckets
            .iter()
            .find(|b| b.bucket == bucket)
            .unwrap()
            .rules[0]
            .problems
            .iter()
            .filter(|p| serde_json::to_value(p.kind).unwrap() == "key_not_in_destination_region")
            .map(|p| p.summary.clone())
            .collect()
    };
    let wrong = region_problems("app-data-eu-west-1");
    assert_eq!(wrong.len(), 1, "{wrong:?}");
    assert!(
        wrong[0].contains("(us-west-2)")
            && wrong[0].contains("a key in eu-central-1")
            && wrong[0].contains("name the replica of the same primary in us-west-2"),
        "{wrong:?}"
    );
    assert!(
        region_problems("logs-eu-west-1").is_empty(),
        "the us-west-2 replica is right"
    );
}

#[tokio::test]
async fn report_mode_writes_nothing_and_says_which_grants_it_would_create() {
    let bed = TestBed::start().await;
    let set = bed.create_key_set(&REPLICA_REGIONS).await;
    let (deps, calls) = deps(
        &bed,
        validator_config(&bed.topic_arn, &[("MODE", "report")]),
    );

    let checked = report(run(&deps, sweep()).await);

    assert!(calls.writes().is_empty(), "{:?}", calls.writes());
    for region in REPLICA_REGIONS {
        assert!(
            bed.grants_in(region, &set.key_id).await.is_empty(),
            "{region}"
        );
    }
    let actions: Vec<_> = checked.keys[0]
        .replicas
        .iter()
        .flat_map(|r| &r.actions)
        .collect();
    assert_eq!(actions.len(), 2);
    assert!(actions
        .iter()
        .all(|a| !a.done && a.detail == "would create grant s3-replication"));
    let message = &bed.notifications().await[0];
    assert!(
        message.subject.contains("2 problem(s)"),
        "{}",
        message.subject
    );
    assert!(!message.subject.contains("repair"), "{}", message.subject);
}

#[tokio::test]
async fn removing_the_managed_tag_from_a_primary_is_announced_and_writes_nothing() {
    let bed = TestBed::start().await;
    let set = bed.create_key_set(&REPLICA_REGIONS).await;
    bed.kms
        .untag_resource()
        .key_id(&set.key_id)
        .tag_keys("guardrails:managed")
        .send()
        .await
        .unwrap();
    let (deps, calls) = deps(&bed, validator_config(&bed.topic_arn, &[]));

    let response = run(
        &deps,
        sample_event("replica-grant-validator/untag-resource.json", &set.key_id),
    )
    .await;

    let Response::Outcome(Outcome::Key(key)) = response else {
        panic!("expected the key's outcome, got {response:?}")
    };
    let kinds: Vec<FindingKind> = key.findings.iter().map(|f| f.kind).collect();
    assert_eq!(kinds, [FindingKind::LeftManagement]);
    assert!(calls.writes().is_empty(), "wrote: {:?}", calls.writes());
    let notes = bed.notifications().await;
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        notes[0]
            .subject
            .starts_with("[test] KMS key left guardrails management:"),
        "{}",
        notes[0].subject
    );
    assert!(
        notes[0]
            .message
            .contains("replica-grant-validator no longer guards this key"),
        "{}",
        notes[0].message
    );
}

#[tokio::test]
async fn tagging_a_primary_announces_its_enrolment_with_the_validation() {
    let bed = TestBed::start().await;
    let set = bed.create_key_set(&REPLICA_REGIONS).await;
    grant_everywhere(&bed, &set).await;
    let (deps, _) = deps(&bed, validator_config(&bed.topic_arn, &[]));

    let response = run(
        &deps,
        sample_event("replica-grant-validator/tag-resource.json", &set.key_id),
    )
    .await;

    let validated = report(response);
    assert_eq!(validated.keys.len(), 1);
    let notes = bed.notifications().await;
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        notes[0]
            .subject
            .starts_with("[test] KMS key enrolled in guardrails:"),
        "{}",
        notes[0].subject
    );
    assert!(
        notes[0].message.contains("it was given the managed tag"),
        "{}",
        notes[0].message
    );
}
