//! policy-drift end to end: the real handler and the real AWS SDK against a moto server.

use integration_tests::{
    config, expected_baseline, sample_event, AnswersSeen, CallLog, FaultPlan, FaultProxy, TestBed,
    ACCOUNT_ID, ADMIN_ROLE_ARN, DRIFTED_POLICY, REGION,
};
use lambda_runtime::{Context, LambdaEvent};
use policy_drift::Config;
use policy_drift::{function_handler, Deps};
use serde_json::Value;
use shared::config::FunctionConfig;
use shared::notify::outcome::{Outcome, Status};
use shared::pipeline::faults::KillPoint;
use shared::policy::model::Policy;

const MANAGED: (&str, &str) = ("guardrails:managed", "true");

/// The baseline of `config()`, written out by hand (root on, the admin role, CloudWatch Logs).
fn baseline_document(_config: &Config) -> String {
    expected_baseline(REGION, true, &[ADMIN_ROLE_ARN])
}

/// The function's dependencies on the test bed, with every KMS call it makes recorded.
fn recorded_deps(bed: &TestBed, config: Config) -> (Deps, CallLog) {
    let (clients, calls) = bed.recorded_clients();
    (
        Deps {
            config,
            clients,
            own: (),
        },
        calls,
    )
}

async fn run(deps: &Deps, event: Value) -> Result<Outcome, shared::GuardrailError> {
    function_handler(LambdaEvent::new(event, Context::default()), deps).await
}

/// A managed key exactly at its baseline: baseline policy, rotation on, enabled.
async fn key_at_baseline(bed: &TestBed, config: &Config, alias: &str) -> String {
    let key = bed
        .create_key("app-data key", &[MANAGED], Some(&baseline_document(config)))
        .await;
    bed.kms
        .enable_key_rotation()
        .key_id(&key.key_id)
        .send()
        .await
        .unwrap();
    bed.create_alias(alias, &key.key_id).await;
    key.key_id
}

fn assert_policy_is_baseline(actual: &str, config: &Config) {
    let actual = Policy::parse(actual).unwrap();
    let expected = Policy::parse(&baseline_document(config)).unwrap();
    let diff = actual.diff_against(&expected);
    assert!(
        diff.is_empty(),
        "policy still differs from baseline:\n{diff}"
    );
}

#[tokio::test]
async fn a_drifted_policy_is_restored_and_the_notification_reads_back() {
    let bed = TestBed::start().await;
    let config = config(&bed.topic_arn, &[("MODE", "enforce")]);
    let key_id = key_at_baseline(&bed, &config, "alias/app-data").await;
    bed.put_key_policy(&key_id, DRIFTED_POLICY).await;
    let (deps, calls) = recorded_deps(&bed, config);

    let outcome = run(
        &deps,
        sample_event("policy-drift/put-key-policy.json", &key_id),
    )
    .await
    .unwrap();

    assert_policy_is_baseline(&bed.key_policy(&key_id).await, &deps.config);
    assert_eq!(calls.writes(), vec!["PutKeyPolicy"]);
    let Outcome::Key(key) = outcome else {
        panic!("expected a key outcome, got {outcome:?}")
    };
    assert_eq!(key.status, Status::Corrected);

    let notes = bed.notifications().await;
    assert_eq!(notes.len(), 1, "{notes:?}");
    let note = &notes[0];
    assert_eq!(
        note.subject,
        "[test] KMS key policy drift corrected: alias/app-data (eu-west-1)"
    );
    for expected in [
        &format!("Key id:      {key_id}") as &str,
        "Alias:       alias/app-data",
        "Changed by:  arn:aws:sts::111122223333:assumed-role/Developer/alice",
        "Source IP:   203.0.113.24",
        "Time:        2026-11-20T09:14:27Z",
        "Event:       PutKeyPolicy (event id b0c5e2d1-8f3a-4e6b-a9c7-1d2e3f4a5b01)",
        "+ extra statement \"TemporaryDebugAccess\": Allow AWS=arn:aws:iam::444455556666:root Action=kms:Decrypt, kms:DescribeKey Resource=*",
        "- missing statement \"AllowKmsAdminRole\"",
        "- missing statement \"AllowCloudWatchLogs\"",
        "- PutKeyPolicy: restored the baseline key policy",
    ] {
        assert!(note.message.contains(expected), "notification lacks {expected:?}:\n{}", note.message);
    }
    assert_eq!(note.attributes["severity"]["Value"], "high");
    assert_eq!(note.attributes["key_id"]["Value"], key_id.as_str());
}

#[tokio::test]
async fn rotation_is_re_enabled() {
    let bed = TestBed::start().await;
    let config = config(&bed.topic_arn, &[("MODE", "enforce")]);
    let key_id = key_at_baseline(&bed, &config, "alias/rotating").await;
    bed.kms
        .disable_key_rotation()
        .key_id(&key_id)
        .send()
        .await
        .unwrap();
    let (deps, calls) = recorded_deps(&bed, config);

    run(
        &deps,
        sample_event("policy-drift/disable-key-rotation.json", &key_id),
    )
    .await
    .unwrap();

    assert!(bed.rotation_enabled(&key_id).await);
    assert_eq!(calls.writes(), vec!["EnableKeyRotation"]);
    let notes = bed.notifications().await;
    assert_eq!(
        notes[0].subject,
        "[test] KMS key drift corrected: alias/rotating (eu-west-1)"
    );
    assert!(notes[0]
        .message
        .contains("automatic rotation is disabled (baseline: every 365 days)"));
    assert!(notes[0]
        .message
        .contains("EnableKeyRotation: enabled automatic rotation every 365 days"));
}

#[tokio::test]
async fn a_scheduled_deletion_is_cancelled_and_the_key_enabled_again() {
    let bed = TestBed::start().await;
    let config = config(&bed.topic_arn, &[("MODE", "enforce")]);
    let key_id = key_at_baseline(&bed, &config, "alias/precious").await;
    bed.kms
        .schedule_key_deletion()
        .key_id(&key_id)
        .pending_window_in_days(7)
        .send()
        .await
        .unwrap();
    assert_eq!(bed.key_state(&key_id).await, "PendingDeletion");
    let (deps, calls) = recorded_deps(&bed, config);

    run(
        &deps,
        sample_event("policy-drift/schedule-key-deletion.json", &key_id),
    )
    .await
    .unwrap();

    assert_eq!(bed.key_state(&key_id).await, "Enabled");
    assert_eq!(calls.writes(), vec!["CancelKeyDeletion", "EnableKey"]);
    let message = &bed.notifications().await[0].message;
    assert!(
        message.contains("- the key is scheduled for deletion on 20"),
        "{message}"
    );
}

#[tokio::test]
async fn a_disabled_key_is_enabled_again() {
    let bed = TestBed::start().await;
    let config = config(&bed.topic_arn, &[("MODE", "enforce")]);
    let key_id = key_at_baseline(&bed, &config, "alias/disabled").await;
    bed.kms.disable_key().key_id(&key_id).send().await.unwrap();
    let (deps, calls) = recorded_deps(&bed, config);

    run(
        &deps,
        sample_event("policy-drift/disable-key.json", &key_id),
    )
    .await
    .unwrap();

    assert_eq!(bed.key_state(&key_id).await, "Enabled");
    assert_eq!(calls.writes(), vec!["EnableKey"]);
}

#[tokio::test]
async fn an_unmanaged_key_is_left_untouched() {
    let bed = TestBed::start().await;
    let config = config(&bed.topic_arn, &[("MODE", "enforce")]);
    let key = bed
        .create_key(
            "someone else's key",
            &[("team", "data")],
            Some(DRIFTED_POLICY),
        )
        .await;
    let (deps, calls) = recorded_deps(&bed, config);

    let outcome = run(
        &deps,
        sample_event("policy-drift/put-key-policy.json", &key.key_id),
    )
    .await
    .unwrap();

    let Outcome::Skipped { reason, .. } = outcome else {
        panic!("expected a skip, got {outcome:?}")
    };
    assert_eq!(reason, "unmanaged key: no guardrails:managed tag");
    assert_eq!(bed.key_policy(&key.key_id).await, DRIFTED_POLICY);
    assert!(calls.writes().is_empty());
    assert!(bed.notifications().await.is_empty());
}

#[tokio::test]
async fn report_mode_writes_nothing_but_notifies() {
    let bed = TestBed::start().await;
    let config = config(&bed.topic_arn, &[("MODE", "report")]);
    let key_id = key_at_baseline(&bed, &config, "alias/reported").await;
    bed.put_key_policy(&key_id, DRIFTED_POLICY).await;
    bed.kms
        .disable_key_rotation()
        .key_id(&key_id)
        .send()
        .await
        .unwrap();
    let (deps, calls) = recorded_deps(&bed, config);

    let outcome = run(
        &deps,
        sample_event("policy-drift/put-key-policy.json", &key_id),
    )
    .await
    .unwrap();

    assert!(
        calls.writes().is_empty(),
        "report mode wrote: {:?}",
        calls.writes()
    );
    assert_eq!(bed.key_policy(&key_id).await, DRIFTED_POLICY);
    assert!(!bed.rotation_enabled(&key_id).await);
    let Outcome::Key(key) = outcome else {
        panic!("expected a key outcome")
    };
    assert_eq!(key.status, Status::Reported);
    let notes = bed.notifications().await;
    assert_eq!(notes.len(), 1);
    assert_eq!(
        notes[0].subject,
        "[test] KMS key policy drift found: alias/reported (eu-west-1)"
    );
    assert!(notes[0]
        .message
        .contains("Report mode: nothing was changed. Enforce mode would:"));
    assert!(notes[0]
        .message
        .contains("- PutKeyPolicy: would restore the baseline key policy"));
    assert!(notes[0]
        .message
        .contains("- EnableKeyRotation: would enable automatic rotation every 365 days"));
}

#[tokio::test]
async fn an_event_from_the_functions_own_role_is_skipped() {
    let bed = TestBed::start().await;
    let config = config(&bed.topic_arn, &[("MODE", "enforce")]);
    let key_id = key_at_baseline(&bed, &config, "alias/self").await;
    bed.put_key_policy(&key_id, DRIFTED_POLICY).await;
    let (deps, calls) = recorded_deps(&bed, config);

    let outcome = run(
        &deps,
        sample_event("policy-drift/put-key-policy-by-self.json", &key_id),
    )
    .await
    .unwrap();

    assert!(
        matches!(outcome, Outcome::Skipped { ref reason, .. } if reason.contains("loop prevention")),
        "{outcome:?}"
    );
    assert!(
        calls.operations().is_empty(),
        "made calls: {:?}",
        calls.operations()
    );
    assert_eq!(bed.key_policy(&key_id).await, DRIFTED_POLICY);
    assert!(bed.notifications().await.is_empty());
}

#[tokio::test]
async fn the_same_event_twice_writes_only_once() {
    let bed = TestBed::start().await;
    let config = config(&bed.topic_arn, &[("MODE", "enforce")]);
    let key_id = key_at_baseline(&bed, &config, "alias/twice").await;
    bed.put_key_policy(&key_id, DRIFTED_POLICY).await;
    let (deps, calls) = recorded_deps(&bed, config);
    let event = sample_event("policy-drift/put-key-policy.json", &key_id);

    run(&deps, event.clone()).await.unwrap();
    assert_eq!(calls.writes(), vec!["PutKeyPolicy"]);
    calls.clear();
    let second = run(&deps, event).await.unwrap();

    assert!(
        calls.writes().is_empty(),
        "second run wrote: {:?}",
        calls.writes()
    );
    let Outcome::Key(key) = second else {
        panic!("expected a key outcome")
    };
    assert_eq!(key.status, Status::Compliant);
    assert_eq!(
        bed.notifications().await.len(),
        1,
        "the second run has nothing to announce"
    );
}

#[tokio::test]
async fn a_created_key_with_a_non_baseline_policy_is_corrected() {
    let bed = TestBed::start().await;
    let config = config(
        &bed.topic_arn,
        &[("MODE", "enforce"), ("ROTATION_ENABLED", "false")],
    );
    // moto gives a key created without a policy the AWS default policy (root only).
    let key = bed.create_key("new key", &[MANAGED], None).await;
    let (deps, calls) = recorded_deps(&bed, config);

    run(
        &deps,
        sample_event("policy-drift/create-key.json", &key.key_id),
    )
    .await
    .unwrap();

    assert_policy_is_baseline(&bed.key_policy(&key.key_id).await, &deps.config);
    assert_eq!(calls.writes(), vec!["PutKeyPolicy"]);
}

#[tokio::test]
async fn the_scheduled_sweep_corrects_only_drifted_managed_keys() {
    let bed = TestBed::start().await;
    let config = config(&bed.topic_arn, &[("MODE", "enforce")]);
    let compliant = key_at_baseline(&bed, &config, "alias/fine").await;
    let drifted = key_at_baseline(&bed, &config, "alias/drifted").await;
    bed.put_key_policy(&drifted, DRIFTED_POLICY).await;
    let unmanaged = bed
        .create_key("not ours", &[], Some(DRIFTED_POLICY))
        .await
        .key_id;
    let (deps, calls) = recorded_deps(&bed, config);

    let outcome = run(
        &deps,
        sample_event("policy-drift/scheduled-sweep.json", "unused"),
    )
    .await
    .unwrap();

    let Outcome::Sweep(report) = outcome else {
        panic!("expected a sweep report, got {outcome:?}")
    };
    // One tag-filtered listing: the untagged key is never even described.
    assert_eq!(
        (
            report.keys_listed,
            report.managed,
            report.compliant,
            report.corrected
        ),
        (2, 2, 1, 1)
    );
    assert_eq!(report.findings.len(), 1);
    assert!(report.findings[0].key_arn.ends_with(&drifted));
    assert_eq!(calls.writes(), vec!["PutKeyPolicy"]);
    assert_policy_is_baseline(&bed.key_policy(&drifted).await, &deps.config);
    assert_policy_is_baseline(&bed.key_policy(&compliant).await, &deps.config);
    assert_eq!(bed.key_policy(&unmanaged).await, DRIFTED_POLICY);
    let notes = bed.notifications().await;
    assert_eq!(notes.len(), 1);
    assert!(
        notes[0]
            .message
            .contains("Found by:    scheduled sweep at 2026-11-20T12:00:00+00:00"),
        "{}",
        notes[0].message
    );
}

#[tokio::test]
async fn an_explicit_key_list_selects_keys_by_alias() {
    let bed = TestBed::start().await;
    let listed_config = config(
        &bed.topic_arn,
        &[("MODE", "enforce"), ("MANAGED_KEYS", "alias/listed")],
    );
    // No managed tag: the list alone decides.
    let listed = bed
        .create_key("listed", &[], Some(DRIFTED_POLICY))
        .await
        .key_id;
    bed.kms
        .enable_key_rotation()
        .key_id(&listed)
        .send()
        .await
        .unwrap();
    bed.create_alias("alias/listed", &listed).await;
    let other = bed
        .create_key("other", &[MANAGED], Some(DRIFTED_POLICY))
        .await
        .key_id;
    let deps = Deps {
        config: listed_config,
        clients: bed.clients(),
        own: (),
    };

    let outcome = run(
        &deps,
        sample_event("policy-drift/put-key-policy.json", &other),
    )
    .await
    .unwrap();
    assert!(
        matches!(outcome, Outcome::Skipped { ref reason, .. } if reason == "unmanaged key: not in MANAGED_KEYS"),
        "{outcome:?}"
    );
    let outcome = run(
        &deps,
        sample_event("policy-drift/scheduled-sweep.json", "unused"),
    )
    .await
    .unwrap();

    let Outcome::Sweep(report) = outcome else {
        panic!("expected a sweep report")
    };
    assert_eq!(
        (report.keys_listed, report.managed, report.corrected),
        (1, 1, 1)
    );
    assert_policy_is_baseline(&bed.key_policy(&listed).await, &deps.config);
    assert_eq!(bed.key_policy(&other).await, DRIFTED_POLICY);
}

#[tokio::test]
async fn a_key_arn_in_another_region_is_handled_there() {
    let bed = TestBed::start().await;
    let config = config(
        &bed.topic_arn,
        &[("MODE", "enforce"), ("ROTATION_ENABLED", "false")],
    );
    let us_east = aws_sdk_kms::Client::from_conf(
        aws_sdk_kms::config::Builder::from(&bed.sdk)
            .region(aws_sdk_kms::config::Region::new("us-east-1"))
            .build(),
    );
    let key = us_east
        .create_key()
        .tags(
            aws_sdk_kms::types::Tag::builder()
                .tag_key(MANAGED.0)
                .tag_value(MANAGED.1)
                .build()
                .unwrap(),
        )
        .policy(DRIFTED_POLICY)
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap();
    // The event names the key by its full ARN; the record's awsRegion says eu-west-1.
    let mut event = sample_event("policy-drift/disable-key.json", &key.key_id);
    let arn = key.arn.clone().unwrap();
    event["detail"]["requestParameters"]["keyId"] = Value::from(arn.clone());
    event["detail"]["resources"] = Value::Array(vec![]);
    let deps = Deps {
        config,
        clients: bed.clients(),
        own: (),
    };

    let outcome = run(&deps, event).await.unwrap();

    let Outcome::Key(outcome) = outcome else {
        panic!("expected a key outcome, got {outcome:?}")
    };
    assert_eq!(outcome.region, "us-east-1");
    let policy = us_east
        .get_key_policy()
        .key_id(&key.key_id)
        .policy_name("default")
        .send()
        .await
        .unwrap()
        .policy
        .unwrap();
    let expected = Policy::parse(&expected_baseline("us-east-1", true, &[ADMIN_ROLE_ARN])).unwrap();
    let actual = Policy::parse(&policy).unwrap();
    assert!(
        actual.semantically_equal(&expected),
        "{}",
        actual.diff_against(&expected)
    );
}

#[tokio::test]
async fn malformed_events_are_clear_errors_and_write_nothing() {
    let bed = TestBed::start().await;
    let config = config(&bed.topic_arn, &[("MODE", "enforce")]);
    let (deps, calls) = recorded_deps(&bed, config);
    for name in [
        "invalid/wrong-detail-type.json",
        "invalid/missing-key-id.json",
        "invalid/missing-event-name.json",
    ] {
        let err = run(&deps, sample_event(name, "unused")).await.unwrap_err();
        let diagnostic: lambda_runtime::Diagnostic = err.into();
        assert_eq!(
            diagnostic.error_type, "InvalidEvent",
            "{name}: {}",
            diagnostic.error_message
        );
    }
    let err = run(&deps, Value::from("not an event")).await.unwrap_err();
    assert_eq!(err.error_type(), "InvalidEvent");
    assert!(calls.operations().is_empty());
}

#[tokio::test]
async fn removing_the_managed_tag_is_announced_and_changes_nothing() {
    let bed = TestBed::start().await;
    let config = config(&bed.topic_arn, &[("MODE", "enforce")]);
    let key_id = key_at_baseline(&bed, &config, "alias/escaping").await;
    bed.kms
        .untag_resource()
        .key_id(&key_id)
        .tag_keys(MANAGED.0)
        .send()
        .await
        .unwrap();
    bed.put_key_policy(&key_id, DRIFTED_POLICY).await;
    let (deps, calls) = recorded_deps(&bed, config);

    let outcome = run(
        &deps,
        sample_event("policy-drift/untag-resource.json", &key_id),
    )
    .await
    .unwrap();

    let Outcome::Key(key) = outcome else {
        panic!("expected a key outcome, got {outcome:?}")
    };
    assert_eq!(key.status, Status::Reported);
    assert!(calls.writes().is_empty(), "wrote: {:?}", calls.writes());
    assert_eq!(bed.key_policy(&key_id).await, DRIFTED_POLICY);
    let notes = bed.notifications().await;
    assert_eq!(notes.len(), 1);
    assert_eq!(
        notes[0].subject,
        "[test] KMS key left guardrails management: alias/escaping (eu-west-1)"
    );
    assert!(notes[0].message.contains("the managed tag guardrails:managed=true was removed (unmanaged key: no guardrails:managed tag): policy-drift no longer guards this key"));
    assert!(notes[0]
        .message
        .contains("Changed by:  arn:aws:sts::111122223333:assumed-role/Developer/alice"));
    assert!(notes[0].message.contains(&format!("aws kms tag-resource --region eu-west-1 --key-id {key_id} --tags TagKey=guardrails:managed,TagValue=true")));
}

#[tokio::test]
async fn deleting_a_listed_alias_is_announced_with_the_command_that_undoes_it() {
    let bed = TestBed::start().await;
    let config = config(
        &bed.topic_arn,
        &[("MODE", "enforce"), ("MANAGED_KEYS", "alias/app-data")],
    );
    let key_id = key_at_baseline(&bed, &config, "alias/app-data").await;
    bed.kms
        .delete_alias()
        .alias_name("alias/app-data")
        .send()
        .await
        .unwrap();
    bed.put_key_policy(&key_id, DRIFTED_POLICY).await;
    let (deps, calls) = recorded_deps(&bed, config);

    let key = match run(
        &deps,
        sample_event("policy-drift/delete-alias.json", &key_id),
    )
    .await
    .unwrap()
    {
        Outcome::Key(key) => key,
        other => panic!("expected a key outcome, got {other:?}"),
    };

    assert_eq!(key.status, Status::Reported);
    assert!(calls.writes().is_empty(), "wrote: {:?}", calls.writes());
    assert_eq!(bed.key_policy(&key_id).await, DRIFTED_POLICY);
    let notes = bed.notifications().await;
    assert_eq!(notes.len(), 1);
    assert!(notes[0]
        .subject
        .starts_with("[test] KMS key left guardrails management:"));
    assert!(notes[0]
        .message
        .contains("the MANAGED_KEYS alias alias/app-data no longer points at it (DeleteAlias)"));
    assert!(notes[0].message.contains(&format!(
        "aws kms create-alias --region eu-west-1 --alias-name alias/app-data --target-key-id {key_id}"
    )));
}

#[tokio::test]
async fn moving_a_listed_alias_enrols_the_key_it_now_names_and_corrects_it() {
    let bed = TestBed::start().await;
    let config = config(
        &bed.topic_arn,
        &[
            ("MODE", "enforce"),
            ("MANAGED_KEYS", "alias/app-data"),
            ("ROTATION_ENABLED", "false"),
        ],
    );
    let old = key_at_baseline(&bed, &config, "alias/app-data").await;
    let new = bed
        .create_key("replacement", &[], Some(DRIFTED_POLICY))
        .await
        .key_id;
    bed.kms
        .update_alias()
        .alias_name("alias/app-data")
        .target_key_id(&new)
        .send()
        .await
        .unwrap();
    let (deps, calls) = recorded_deps(&bed, config);

    run(&deps, sample_event("policy-drift/update-alias.json", &new))
        .await
        .unwrap();

    assert_eq!(calls.writes(), vec!["PutKeyPolicy"]);
    assert_policy_is_baseline(&bed.key_policy(&new).await, &deps.config);
    assert_policy_is_baseline(&bed.key_policy(&old).await, &deps.config);
    let notes = bed.notifications().await;
    assert_eq!(notes.len(), 1);
    assert!(notes[0].message.contains(
        "the key became managed by policy-drift: a MANAGED_KEYS alias was moved to it, so the key it named before is no longer guarded through that alias (UpdateAlias by arn:aws:sts::111122223333:assumed-role/Developer/alice)"
    ), "{}", notes[0].message);
}

#[tokio::test]
async fn tagging_a_key_enrols_it_corrects_it_and_names_who_did_it() {
    let bed = TestBed::start().await;
    let config = config(
        &bed.topic_arn,
        &[("MODE", "enforce"), ("ROTATION_ENABLED", "false")],
    );
    let key_id = bed
        .create_key("joining", &[], Some(DRIFTED_POLICY))
        .await
        .key_id;
    bed.kms
        .tag_resource()
        .key_id(&key_id)
        .tags(
            aws_sdk_kms::types::Tag::builder()
                .tag_key(MANAGED.0)
                .tag_value(MANAGED.1)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let (deps, calls) = recorded_deps(&bed, config);

    run(
        &deps,
        sample_event("policy-drift/tag-resource.json", &key_id),
    )
    .await
    .unwrap();

    assert_eq!(calls.writes(), vec!["PutKeyPolicy"]);
    let notes = bed.notifications().await;
    assert_eq!(notes.len(), 1);
    assert!(notes[0].message.contains("- the key became managed by policy-drift: it was given the managed tag (TagResource by arn:aws:sts::111122223333:assumed-role/Developer/alice)"), "{}", notes[0].message);
}

#[tokio::test]
async fn a_key_description_cannot_forge_lines_in_the_message() {
    let bed = TestBed::start().await;
    let config = config(&bed.topic_arn, &[("MODE", "report")]);
    let forged = "app data\nChanged by:  arn:aws:iam::111122223333:user/trusted-admin";
    let key_id = bed
        .create_key(forged, &[MANAGED], Some(DRIFTED_POLICY))
        .await
        .key_id;
    let (deps, _) = recorded_deps(&bed, config);

    run(
        &deps,
        sample_event("policy-drift/put-key-policy.json", &key_id),
    )
    .await
    .unwrap();

    let message = &bed.notifications().await[0].message;
    let changed_by: Vec<&str> = message
        .lines()
        .filter(|l| l.starts_with("Changed by:"))
        .collect();
    assert_eq!(
        changed_by,
        ["Changed by:  arn:aws:sts::111122223333:assumed-role/Developer/alice"]
    );
    assert!(message.contains(
        "Description: app data\\nChanged by:  arn:aws:iam::111122223333:user/trusted-admin"
    ));
}

#[tokio::test]
async fn a_baseline_kms_would_reject_is_refused_at_cold_start_though_moto_accepts_it() {
    // moto does not enforce KMS's policy rules: it stores a policy with duplicate Sids and a
    // wildcard inside a principal ARN. Real KMS rejects both, so the function must not start
    // with such a baseline rather than fail on every write in AWS.
    let bed = TestBed::start().await;
    let invalid = r#"{"Version":"2012-10-17","Statement":[
      {"Sid":"Admin","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"},
      {"Sid":"Admin","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/app-*"},"Action":"kms:Decrypt","Resource":"*"}]}"#;
    let key = bed.create_key("lenient", &[], None).await;
    bed.put_key_policy(&key.key_id, invalid).await;
    assert_eq!(bed.key_policy(&key.key_id).await, invalid, "moto stored it");

    let env = [
        ("ACCOUNT_ID", ACCOUNT_ID),
        ("AWS_REGION", REGION),
        ("NOTIFY_TOPIC_ARN", bed.topic_arn.as_str()),
        ("SELF_ROLE_ARN", integration_tests::SELF_ROLE_ARN),
        ("BASELINE_POLICY", invalid),
    ];
    let err = Config::from_lookup(&|k| {
        env.iter()
            .find(|(name, _)| *name == k)
            .map(|(_, v)| v.to_string())
    })
    .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("the baseline policy would be refused by KMS"),
        "{text}"
    );
    assert!(
        text.contains("[unique Sid] Statement[1] (Sid \"Admin\")"),
        "{text}"
    );
    assert!(
        text.contains("a wildcard inside a principal ARN is not allowed"),
        "{text}"
    );
}

#[tokio::test]
async fn two_invocations_correcting_one_key_at_once_converge_on_the_baseline() {
    // EventBridge may deliver the same drift twice, or an event and the sweep may meet: both
    // read the drifted policy and both write. PutKeyPolicy writes the whole document, so the
    // last write wins and both are the baseline: no mixture of the two is possible.
    let bed = TestBed::start().await;
    let config = config(&bed.topic_arn, &[("MODE", "enforce")]);
    let key_id = key_at_baseline(&bed, &config, "alias/app-data").await;
    bed.put_key_policy(&key_id, DRIFTED_POLICY).await;
    let (first, first_calls) = recorded_deps(&bed, config.clone());
    let (second, second_calls) = recorded_deps(&bed, config);
    let event = sample_event("policy-drift/put-key-policy.json", &key_id);

    let (a, b) = tokio::join!(run(&first, event.clone()), run(&second, event));

    for outcome in [a.unwrap(), b.unwrap()] {
        let Outcome::Key(key) = outcome else {
            panic!("expected a key outcome, got {outcome:?}")
        };
        assert!(
            matches!(key.status, Status::Corrected | Status::Compliant),
            "{key:?}"
        );
    }
    assert_policy_is_baseline(&bed.key_policy(&key_id).await, &first.config);
    let writes = first_calls.writes().len() + second_calls.writes().len();
    assert!((1..=2).contains(&writes), "{writes} writes");
    // A third look finds nothing to do.
    let (third, third_calls) = recorded_deps(&bed, first.config.clone());
    let again = run(
        &third,
        sample_event("policy-drift/put-key-policy.json", &key_id),
    )
    .await
    .unwrap();
    assert!(
        matches!(again, Outcome::Key(ref k) if k.status == Status::Compliant),
        "{again:?}"
    );
    assert!(third_calls.writes().is_empty());
}

/// Runs `event` until the kill point armed for `key_arn` is reached, then drops the invocation
/// there, as a crash or a timeout would end it.
async fn run_until_killed(deps: &Deps, event: Value, point: KillPoint, key_arn: &str) {
    let reached = shared::pipeline::faults::arm(point, key_arn);
    tokio::select! {
        result = run(deps, event) => panic!("the invocation ended before the kill point: {result:?}"),
        () = reached.notified() => {}
    }
}

#[tokio::test]
async fn killed_after_the_write_the_retry_finds_the_key_in_order_and_still_announces() {
    let bed = TestBed::start().await;
    let config = config(&bed.topic_arn, &[("MODE", "enforce")]);
    let key_id = key_at_baseline(&bed, &config, "alias/app-data").await;
    bed.put_key_policy(&key_id, DRIFTED_POLICY).await;
    let key_arn = format!("arn:aws:kms:{REGION}:{ACCOUNT_ID}:key/{key_id}");
    let (deps, _) = recorded_deps(&bed, config);
    let event = sample_event("policy-drift/put-key-policy.json", &key_id);

    run_until_killed(&deps, event.clone(), KillPoint::AfterWrite, &key_arn).await;
    assert_policy_is_baseline(&bed.key_policy(&key_id).await, &deps.config);
    assert!(
        bed.notifications().await.is_empty(),
        "the process died before publishing"
    );
    assert_eq!(
        bed.state_items().await.len(),
        1,
        "the correction was recorded before the write"
    );

    // Lambda retries the same event: the key is in order now, and the record says why.
    let outcome = run(&deps, event).await.unwrap();

    assert!(
        matches!(outcome, Outcome::Key(ref k) if k.status == Status::Compliant),
        "{outcome:?}"
    );
    let notes = bed.notifications().await;
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        notes[0]
            .subject
            .starts_with("[test] KMS key correction announced late:"),
        "{}",
        notes[0].subject
    );
    let body = &notes[0].message;
    assert!(
        body.contains("Changed by:"),
        "who made the change is kept: {body}"
    );
    assert!(body.contains("- PutKeyPolicy"), "{body}");
    assert!(
        body.contains("is in its desired state: the corrections were made"),
        "{body}"
    );
    assert!(bed.state_items().await.is_empty(), "announced, so settled");
}

#[tokio::test]
async fn killed_before_the_write_the_retry_corrects_and_announces_once() {
    let bed = TestBed::start().await;
    let config = config(&bed.topic_arn, &[("MODE", "enforce")]);
    let key_id = key_at_baseline(&bed, &config, "alias/app-data").await;
    bed.put_key_policy(&key_id, DRIFTED_POLICY).await;
    let key_arn = format!("arn:aws:kms:{REGION}:{ACCOUNT_ID}:key/{key_id}");
    let (deps, _) = recorded_deps(&bed, config);
    let event = sample_event("policy-drift/put-key-policy.json", &key_id);

    run_until_killed(&deps, event.clone(), KillPoint::BeforeWrite, &key_arn).await;
    let outcome = run(&deps, event).await.unwrap();

    assert!(
        matches!(outcome, Outcome::Key(ref k) if k.status == Status::Corrected),
        "{outcome:?}"
    );
    let notes = bed.notifications().await;
    assert_eq!(
        notes.len(),
        1,
        "one message, not a late one beside it: {notes:?}"
    );
    assert!(
        notes[0]
            .message
            .contains("an earlier attempt for this event began PutKeyPolicy"),
        "the retry's message covers the attempt that died: {}",
        notes[0].message
    );
    assert!(
        notes[0].subject.contains("drift corrected"),
        "{}",
        notes[0].subject
    );
    assert!(bed.state_items().await.is_empty());
}

#[tokio::test]
async fn without_a_fallback_queue_a_failed_publish_is_announced_by_the_retry() {
    let bed = TestBed::start().await;
    // The topic is gone (moto answers NotFound) and FALLBACK_QUEUE_URL is unset, as in the
    // README's local recipe: the correction is made and nobody can be told yet.
    let missing_topic = format!("arn:aws:sns:{REGION}:{ACCOUNT_ID}:deleted-topic");
    let broken = config(&missing_topic, &[("MODE", "enforce")]);
    let key_id = key_at_baseline(&bed, &broken, "alias/app-data").await;
    bed.put_key_policy(&key_id, DRIFTED_POLICY).await;
    let (deps, _) = recorded_deps(&bed, broken);
    let event = sample_event("policy-drift/put-key-policy.json", &key_id);

    let failed = run(&deps, event.clone()).await;
    assert!(
        failed.is_err(),
        "the invocation fails so Lambda retries: {failed:?}"
    );
    assert_policy_is_baseline(&bed.key_policy(&key_id).await, &deps.config);

    // The retry, once the topic is back.
    let (deps, _) = recorded_deps(&bed, config(&bed.topic_arn, &[("MODE", "enforce")]));
    run(&deps, event).await.unwrap();

    let notes = bed.notifications().await;
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        notes[0].subject.contains("correction announced late"),
        "{}",
        notes[0].subject
    );
    assert!(notes[0].message.contains("restored") || notes[0].message.contains("PutKeyPolicy"));
    assert!(bed.state_items().await.is_empty());
}

#[tokio::test]
async fn a_sweep_announces_an_unchanged_finding_once_and_a_changed_one_again() {
    let bed = TestBed::start().await;
    let config = config(&bed.topic_arn, &[("MODE", "report")]);
    let key_id = key_at_baseline(&bed, &config, "alias/app-data").await;
    bed.put_key_policy(&key_id, DRIFTED_POLICY).await;
    let (deps, _) = recorded_deps(&bed, config);
    let sweep = sample_event("policy-drift/scheduled-sweep.json", &key_id);

    run(&deps, sweep.clone()).await.unwrap();
    assert_eq!(bed.notifications().await.len(), 1, "first sweep: announced");
    let second = run(&deps, sweep.clone()).await.unwrap();
    assert!(
        bed.notifications().await.is_empty(),
        "second sweep: unchanged, not repeated"
    );
    let Outcome::Sweep(report) = second else {
        panic!("{second:?}")
    };
    assert_eq!(report.not_announced_again, 1);
    assert!(
        report.findings[0]
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("unchanged since it was announced at")
                && r.contains("a reminder follows at")),
        "{:?}",
        report.findings[0].reason
    );

    // Another change to the key is news.
    bed.kms
        .disable_key_rotation()
        .key_id(&key_id)
        .send()
        .await
        .unwrap();
    run(&deps, sweep).await.unwrap();
    let notes = bed.notifications().await;
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        notes[0].message.contains("rotation"),
        "{}",
        notes[0].message
    );
}

#[tokio::test]
async fn a_managed_keys_entry_that_names_no_key_is_announced_once() {
    let bed = TestBed::start().await;
    let config = config(
        &bed.topic_arn,
        &[
            ("MODE", "report"),
            ("MANAGED_KEYS", "alias/retired-payments"),
        ],
    );
    let (deps, _) = recorded_deps(&bed, config);
    let sweep = sample_event("policy-drift/scheduled-sweep.json", "unused");

    let first = run(&deps, sweep.clone()).await.unwrap();
    let Outcome::Sweep(report) = first else {
        panic!("{first:?}")
    };
    assert_eq!(report.unresolved_entries.len(), 1, "{report:?}");
    let notes = bed.notifications().await;
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        notes[0].subject.contains("MANAGED_KEYS entry names no key"),
        "{}",
        notes[0].subject
    );
    assert!(
        notes[0].message.contains("\"alias/retired-payments\""),
        "{}",
        notes[0].message
    );

    run(&deps, sweep).await.unwrap();
    assert!(
        bed.notifications().await.is_empty(),
        "not repeated before its reminder"
    );
}

/// The figures of a sweep under injected faults, printed for the README.
#[derive(Debug, Default)]
struct FaultFigures {
    sweeps: usize,
    failed_invocations: usize,
    requests: usize,
    faults: std::collections::BTreeMap<String, usize>,
    announced_once: usize,
    announced_twice_or_more: usize,
    keys_with_two_announcements: usize,
    repeated_deliveries: usize,
    repeats_after_a_settle_failed: usize,
    settle_calls_failed: usize,
    in_fallback_queue: usize,
    lost_publish_answers: usize,
    seconds: f64,
}

/// Every message in the fallback queue, drained.
async fn fallback_messages(bed: &TestBed, queue_url: &str) -> Vec<Value> {
    let mut all = Vec::new();
    loop {
        let out = bed
            .sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
        let messages = out.messages.unwrap_or_default();
        if messages.is_empty() {
            return all;
        }
        for m in messages {
            all.push(serde_json::from_str(m.body().unwrap_or("{}")).unwrap());
            bed.sqs
                .delete_message()
                .queue_url(queue_url)
                .receipt_handle(m.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
    }
}

// Under 30% transient faults (throttling, 500, 503, resets before and after the request
// reached moto, answers slower than the attempt timeout), sweeps of drifted keys correct every
// key, every PutKeyPolicy that ever reached a key carried the whole baseline, and every
// correction is announced: on the topic or in the fallback queue. SNS standard topics deliver
// at least once, and so does a Publish whose answer was lost: a key is announced twice only
// where SNS or SQS took a message whose answer the function never saw, or where every try to
// mark a delivered message's record settled failed (its late copy carries the same id).
#[tokio::test]
async fn under_injected_faults_every_drifted_key_is_corrected_whole_and_announced() {
    let keys: usize = std::env::var("FAULT_SWEEP_KEYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let rate: f64 = std::env::var("FAULT_RATE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.3);
    let bed = TestBed::start().await;
    let fallback = bed
        .sqs
        .create_queue()
        .queue_name("kms-guardrails-fallback")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let config = config(
        &bed.topic_arn,
        &[("MODE", "enforce"), ("FALLBACK_QUEUE_URL", &fallback)],
    );
    let baseline = baseline_document(&config);
    let mut key_ids = Vec::new();
    for chunk in (0..keys).collect::<Vec<_>>().chunks(20) {
        let bed = &bed;
        let made = futures::future::join_all(chunk.iter().map(|i| async move {
            let key = bed
                .create_key(&format!("key {i}"), &[MANAGED], Some(DRIFTED_POLICY))
                .await;
            bed.kms
                .enable_key_rotation()
                .key_id(&key.key_id)
                .send()
                .await
                .unwrap();
            key.key_id
        }))
        .await;
        key_ids.extend(made);
    }
    let attempt_timeout = std::time::Duration::from_millis(1000);
    let proxy = FaultProxy::start(
        &bed.moto,
        FaultPlan {
            rate,
            seed: std::env::var("FAULT_SEED")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(20261203),
            slow: std::time::Duration::from_millis(2000),
        },
    );
    let sdk = proxy.sdk_config(attempt_timeout).await;
    let mut config = config;
    // Sweeps follow each other at once here, not hours apart: a correction an earlier sweep
    // recorded and could not announce is taken over by the next one without waiting.
    if let Some(state) = config.common.state.as_mut() {
        state.lease = std::time::Duration::ZERO;
    }
    let answers = AnswersSeen::default();
    let deps = Deps {
        config,
        clients: answers.install(&sdk, REGION, shared::aws::AwsClients::new(sdk.clone())),
        own: (),
    };
    let started = std::time::Instant::now();
    let mut figures = FaultFigures::default();
    let mut notes = Vec::new();
    let mut parked = Vec::new();
    for sweep in 1..=10 {
        figures.sweeps = sweep;
        let mut event = sample_event("policy-drift/scheduled-sweep.json", "unused");
        event["id"] = Value::from(format!("fault-sweep-{sweep}"));
        let result = run(&deps, event).await;
        notes.extend(bed.notifications().await);
        parked.extend(fallback_messages(&bed, &fallback).await);
        if result.is_err() {
            figures.failed_invocations += 1;
        }
        // Done when every key is back and every recorded correction was announced (a later
        // sweep would find nothing to do: keys still failing under faults are only audited).
        let pending = bed
            .state_items()
            .await
            .iter()
            .filter(|(pk, _)| pk.starts_with("pending#"))
            .count();
        let mut drifted = 0;
        for key_id in &key_ids {
            let policy = Policy::parse(&bed.key_policy(key_id).await).unwrap();
            if !policy
                .diff_against(&Policy::parse(&baseline).unwrap())
                .is_empty()
            {
                drifted += 1;
            }
        }
        if drifted == 0 && pending == 0 {
            break;
        }
    }
    figures.seconds = started.elapsed().as_secs_f64();

    // Every key holds the whole baseline.
    for key_id in &key_ids {
        assert_policy_is_baseline(&bed.key_policy(key_id).await, &deps.config);
    }
    // Every policy ever sent to a key was the baseline: never a partial or another document.
    let requests = proxy.requests();
    figures.requests = requests.len();
    for request in &requests {
        if let Some(fault) = request["fault"].as_str() {
            *figures.faults.entry(fault.to_string()).or_default() += 1;
        }
        if request["operation"] == "PutKeyPolicy" && request["forwarded"] == true {
            let sent = Policy::parse(request["policy"].as_str().unwrap()).unwrap();
            let diff = sent.diff_against(&Policy::parse(&baseline).unwrap());
            assert!(
                diff.is_empty(),
                "a PutKeyPolicy sent another policy:\n{diff}"
            );
        }
    }
    // Every key's correction announced: on the topic or in the fallback queue. A message seen
    // twice carries its `announcement_id` twice, by which subscribers drop the repeat.
    let mut ids: std::collections::HashMap<String, Vec<String>> = Default::default();
    let attribute = |attributes: &Value, name: &str| {
        attributes[name]["Value"]
            .as_str()
            .or(attributes[name].as_str())
            .unwrap_or_default()
            .to_string()
    };
    for note in &notes {
        let key = attribute(&note.attributes, "key_id");
        ids.entry(key)
            .or_default()
            .push(attribute(&note.attributes, "announcement_id"));
    }
    figures.in_fallback_queue = parked.len();
    for message in &parked {
        let key = attribute(&message["attributes"], "key_id");
        ids.entry(key)
            .or_default()
            .push(attribute(&message["attributes"], "announcement_id"));
    }
    for key_id in &key_ids {
        let delivered = ids.get(key_id.as_str()).cloned().unwrap_or_default();
        assert!(
            !delivered.is_empty(),
            "{key_id} corrected and never announced"
        );
        if delivered.len() == 1 {
            figures.announced_once += 1;
        } else {
            figures.announced_twice_or_more += 1;
        }
        // A key may be announced by more than one run; one run's messages about it (its own,
        // its retries', its late one) share one id.
        let distinct: std::collections::BTreeSet<&String> = delivered.iter().collect();
        if distinct.len() > 1 {
            figures.keys_with_two_announcements += 1;
        }
        for id in distinct {
            let copies = delivered.iter().filter(|d| *d == id).count();
            // An announcement the function saw delivered is sent again only when its record
            // could not be marked settled (every try failed): the next sweep announces it late,
            // with the same id. Every other copy is one SNS or SQS took while its answer was
            // lost.
            let seen = answers.delivered(id);
            let settles_given_up =
                answers.settles_failed(id) / shared::pipeline::journal::SETTLE_TRIES;
            if seen > 1 + settles_given_up {
                let about: Vec<String> = notes
                    .iter()
                    .filter(|n| attribute(&n.attributes, "announcement_id") == *id)
                    .map(|n| format!("{}\n{}", n.subject, n.message))
                    .collect();
                panic!(
                    "{key_id}: announcement {id} sent again after the function saw it delivered ({seen} successes, {copies} copies, {settles_given_up} settles given up): {figures:?}\n{}",
                    about.join("\n-----\n")
                );
            }
            figures.repeats_after_a_settle_failed += seen.saturating_sub(1);
            figures.repeated_deliveries += copies - 1;
            figures.lost_publish_answers += copies - seen;
        }
    }
    figures.settle_calls_failed = answers.settles_failed_in_all();
    assert!(
        bed.state_items()
            .await
            .iter()
            .all(|(pk, _)| !pk.starts_with("pending#")),
        "every recorded correction was announced and settled"
    );
    eprintln!("fault sweep: {keys} drifted keys, fault rate {rate}: {figures:#?}");
}
