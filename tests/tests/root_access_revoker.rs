//! root-access-revoker end to end: the real handler and the real AWS SDK against moto.
//! moto checks no IAM and none of KMS's policy rules or its lockout check: those are the
//! function's own checks, which these tests exercise.

use integration_tests::{
    revoker_config, sample_event, CallLog, TestBed, ACCOUNT_ID, ADMIN_ROLE_ARN, REVOKER_ROLE_ARN,
};
use lambda_runtime::{Context, LambdaEvent};
use root_access_revoker::{function_handler, Config, Deps, RevokerReport};
use serde_json::{json, Value};
use shared::notify::outcome::{Outcome, Status};
use shared::pipeline::Response;
use shared::policy::model::Policy;

const MANAGED: (&str, &str) = ("guardrails:managed", "true");
const ROOT: &str = "arn:aws:iam::111122223333:root";

fn policy(statements: Value) -> String {
    serde_json::to_string_pretty(&json!({"Version": "2012-10-17", "Statement": statements}))
        .unwrap()
}

fn admin_statement() -> Value {
    json!({"Sid": "AllowKmsAdminRole", "Effect": "Allow",
           "Principal": {"AWS": [ADMIN_ROLE_ARN, REVOKER_ROLE_ARN]}, "Action": "kms:*", "Resource": "*"})
}

fn root_statement() -> Value {
    json!({"Sid": "EnableRootAccess", "Effect": "Allow", "Principal": {"AWS": ROOT}, "Action": "kms:*", "Resource": "*"})
}

fn deps(bed: &TestBed, config: Config) -> (Deps, CallLog) {
    let (clients, calls) = bed.recorded_clients();
    (root_access_revoker::deps::new(config, clients), calls)
}

async fn respond(deps: &Deps, event: Value) -> Response<RevokerReport> {
    function_handler(LambdaEvent::new(event, Context::default()), deps)
        .await
        .unwrap()
}

/// The pipeline's outcome of a key event or sweep.
async fn run(deps: &Deps, event: Value) -> Outcome {
    match respond(deps, event).await {
        Response::Outcome(outcome) => outcome,
        Response::Report(report) => panic!("expected the pipeline's outcome, got {report:?}"),
    }
}

async fn managed_key(bed: &TestBed, policy: &str) -> String {
    bed.create_key("app-data key", &[MANAGED], Some(policy))
        .await
        .key_id
}

fn status(outcome: &Outcome) -> Status {
    match outcome {
        Outcome::Key(key) => key.status,
        other => panic!("expected a key outcome, got {other:?}"),
    }
}

async fn roles(bed: &TestBed) {
    bed.create_role(ADMIN_ROLE_ARN).await;
    bed.create_role(REVOKER_ROLE_ARN).await;
}

#[tokio::test]
async fn the_root_is_removed_when_the_admin_role_exists_and_keeps_control() {
    let bed = TestBed::start().await;
    roles(&bed).await;
    let key = managed_key(&bed, &policy(json!([root_statement(), admin_statement()]))).await;
    let (deps, calls) = deps(&bed, revoker_config(&bed.topic_arn, &[]));

    let outcome = run(
        &deps,
        sample_event("root-access-revoker/put-key-policy.json", &key),
    )
    .await;

    assert_eq!(status(&outcome), Status::Corrected);
    assert_eq!(calls.writes(), vec!["PutKeyPolicy"]);
    let after = Policy::parse(&bed.key_policy(&key).await).unwrap();
    let expected = Policy::parse(&policy(json!([admin_statement()]))).unwrap();
    assert!(
        after.semantically_equal(&expected),
        "{}",
        after.diff_against(&expected)
    );
    let notes = bed.notifications().await;
    assert_eq!(notes.len(), 1);
    assert!(
        notes[0]
            .subject
            .starts_with("[test] Root access removed from KMS key"),
        "{}",
        notes[0].subject
    );

    // The second run finds nothing to remove and writes nothing.
    calls.clear();
    run(
        &deps,
        sample_event("root-access-revoker/put-key-policy.json", &key),
    )
    .await;
    assert!(calls.writes().is_empty(), "{:?}", calls.writes());
    assert!(bed.notifications().await.is_empty());
}

/// Runs the revoker on `statements` and expects a blocked message naming `check`.
async fn assert_blocked(bed: &TestBed, statements: Value, check: &str) {
    let key = managed_key(bed, &policy(statements)).await;
    let before = bed.key_policy(&key).await;
    let (deps, calls) = deps(bed, revoker_config(&bed.topic_arn, &[]));

    let outcome = run(
        &deps,
        sample_event("root-access-revoker/put-key-policy.json", &key),
    )
    .await;

    assert_eq!(status(&outcome), Status::Blocked);
    assert!(calls.writes().is_empty(), "{:?}", calls.writes());
    assert_eq!(bed.key_policy(&key).await, before);
    let notes = bed.notifications().await;
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(notes[0]
        .subject
        .starts_with("[test] Removal of root access from KMS key blocked"));
    assert!(
        notes[0].message.contains(&format!("check failed: {check}")),
        "{}",
        notes[0].message
    );
    assert!(notes[0].message.contains("Fix: "), "{}", notes[0].message);
}

#[tokio::test]
async fn blocked_when_the_admin_role_does_not_exist() {
    let bed = TestBed::start().await;
    bed.create_role(REVOKER_ROLE_ARN).await;
    assert_blocked(
        &bed,
        json!([root_statement(), admin_statement()]),
        "the administrator role exists",
    )
    .await;
}

#[tokio::test]
async fn blocked_when_the_policy_does_not_let_the_admin_change_it() {
    let bed = TestBed::start().await;
    roles(&bed).await;
    let decrypt_only = json!({"Sid": "AdminUsesOnly", "Effect": "Allow", "Principal": {"AWS": ADMIN_ROLE_ARN}, "Action": "kms:Decrypt", "Resource": "*"});
    let function = json!({"Sid": "Function", "Effect": "Allow", "Principal": {"AWS": REVOKER_ROLE_ARN}, "Action": "kms:*", "Resource": "*"});
    assert_blocked(
        &bed,
        json!([root_statement(), decrypt_only, function]),
        "the administrator role keeps kms:PutKeyPolicy and kms:GetKeyPolicy",
    )
    .await;
}

#[tokio::test]
async fn blocked_when_an_explicit_deny_takes_the_admins_control() {
    let bed = TestBed::start().await;
    roles(&bed).await;
    let deny = json!({"Sid": "NoPolicyChanges", "Effect": "Deny", "Principal": {"AWS": ADMIN_ROLE_ARN}, "Action": "kms:PutKeyPolicy", "Resource": "*"});
    assert_blocked(
        &bed,
        json!([root_statement(), admin_statement(), deny]),
        "the administrator role keeps kms:PutKeyPolicy and kms:GetKeyPolicy",
    )
    .await;
}

#[tokio::test]
async fn blocked_when_the_admin_role_was_deleted_and_recreated() {
    let bed = TestBed::start().await;
    roles(&bed).await;
    // AWS shows a deleted role's unique id in the policy; the role now under that name is a
    // different principal. moto does not rewrite policies, so the test writes what AWS shows.
    let orphaned = json!({"Sid": "AllowKmsAdminRole", "Effect": "Allow",
        "Principal": {"AWS": ["AROAEXAMPLEDELETEDROLE", REVOKER_ROLE_ARN]}, "Action": "kms:*", "Resource": "*"});
    assert_blocked(
        &bed,
        json!([root_statement(), orphaned]),
        "the key policy names the administrator role that exists now",
    )
    .await;
}

#[tokio::test]
async fn only_the_root_is_removed_from_a_list_and_the_bare_account_id_counts() {
    let bed = TestBed::start().await;
    roles(&bed).await;
    let users = json!({"Sid": "Users", "Effect": "Allow",
        "Principal": {"AWS": [ACCOUNT_ID, "arn:aws:iam::111122223333:role/app", ROOT]},
        "Action": ["kms:Decrypt", "kms:Encrypt"], "Resource": "*"});
    let key = managed_key(&bed, &policy(json!([admin_statement(), users]))).await;
    let (deps, _) = deps(&bed, revoker_config(&bed.topic_arn, &[]));

    run(
        &deps,
        sample_event("root-access-revoker/put-key-policy.json", &key),
    )
    .await;

    let after: Value = serde_json::from_str(&bed.key_policy(&key).await).unwrap();
    let users_after = after["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["Sid"] == "Users")
        .unwrap();
    assert_eq!(
        users_after["Principal"]["AWS"],
        json!(["arn:aws:iam::111122223333:role/app"])
    );
    assert_eq!(users_after["Action"], json!(["kms:Decrypt", "kms:Encrypt"]));
}

#[tokio::test]
async fn the_account_wide_statement_is_reported_and_removed_only_when_configured() {
    let bed = TestBed::start().await;
    roles(&bed).await;
    // The full reference module's EnableIAMPermissions statement.
    let account_wide = json!({"Sid": "EnableIAMPermissions", "Effect": "Allow", "Principal": {"AWS": "*"},
        "Action": "kms:*", "Resource": "*", "Condition": {"StringEquals": {"kms:CallerAccount": ACCOUNT_ID}}});
    let key = managed_key(
        &bed,
        &policy(json!([root_statement(), admin_statement(), account_wide])),
    )
    .await;

    let (report_only, _) = deps(&bed, revoker_config(&bed.topic_arn, &[]));
    run(
        &report_only,
        sample_event("root-access-revoker/put-key-policy.json", &key),
    )
    .await;
    assert!(
        bed.key_policy(&key).await.contains("EnableIAMPermissions"),
        "kept by default"
    );
    let notes = bed.notifications().await;
    assert!(
        notes[0].message.contains("EnableIAMPermissions"),
        "{}",
        notes[0].message
    );
    assert!(
        notes[0]
            .message
            .contains("REMOVE_ACCOUNT_WIDE_STATEMENTS=true"),
        "{}",
        notes[0].message
    );

    let (removing, _) = deps(
        &bed,
        revoker_config(
            &bed.topic_arn,
            &[("REMOVE_ACCOUNT_WIDE_STATEMENTS", "true")],
        ),
    );
    run(
        &removing,
        sample_event("root-access-revoker/put-key-policy.json", &key),
    )
    .await;
    assert!(!bed.key_policy(&key).await.contains("EnableIAMPermissions"));
}

#[tokio::test]
async fn a_new_replica_with_the_default_policy_is_blocked_with_the_fix() {
    let bed = TestBed::start().await;
    roles(&bed).await;
    let primary = bed
        .kms
        .create_key()
        .multi_region(true)
        .tags(
            aws_sdk_kms::types::Tag::builder()
                .tag_key(MANAGED.0)
                .tag_value(MANAGED.1)
                .build()
                .unwrap(),
        )
        .policy(policy(json!([root_statement(), admin_statement()])))
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap();
    // A replica starts with the default key policy: the root only.
    let replica = bed
        .kms
        .replicate_key()
        .key_id(&primary.key_id)
        .replica_region("eu-central-1")
        .tags(
            aws_sdk_kms::types::Tag::builder()
                .tag_key(MANAGED.0)
                .tag_value(MANAGED.1)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap()
        .replica_key_metadata
        .unwrap();
    // AWS gives a replica made without a Policy the default key policy (the root only) and
    // applies ReplicateKey's tags; moto copies the primary's policy and drops the tags, so the
    // test gives the replica what AWS would.
    let frankfurt = aws_sdk_kms::Client::from_conf(
        aws_sdk_kms::config::Builder::from(&bed.sdk)
            .region(aws_sdk_kms::config::Region::new("eu-central-1"))
            .build(),
    );
    frankfurt
        .tag_resource()
        .key_id(&replica.key_id)
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
    frankfurt
        .put_key_policy()
        .key_id(&replica.key_id)
        .policy_name("default")
        .policy(policy(
            json!([{"Sid": "Enable IAM User Permissions", "Effect": "Allow",
            "Principal": {"AWS": ROOT}, "Action": "kms:*", "Resource": "*"}]),
        ))
        .send()
        .await
        .unwrap();
    let mut event = sample_event("root-access-revoker/replicate-key.json", "unused");
    event["detail"]["responseElements"]["replicaKeyMetadata"]["arn"] =
        Value::from(replica.arn.clone().unwrap());
    let (deps, _) = deps(&bed, revoker_config(&bed.topic_arn, &[]));

    let outcome = run(&deps, event).await;

    assert_eq!(status(&outcome), Status::Blocked, "{outcome:?}");
    let notes = bed.notifications().await;
    // The default policy names no administrator: removing the root would leave none.
    let message = &notes[0].message;
    assert!(
        message.contains("check failed: the key policy names the administrator role"),
        "{message}"
    );
    assert!(
        message.contains(&format!("Fix: add {ADMIN_ROLE_ARN} to an Allow statement")),
        "{message}"
    );
}

#[tokio::test]
async fn a_policy_without_the_root_is_not_written() {
    let bed = TestBed::start().await;
    roles(&bed).await;
    let key = managed_key(&bed, &policy(json!([admin_statement()]))).await;
    let (deps, calls) = deps(&bed, revoker_config(&bed.topic_arn, &[]));
    run(
        &deps,
        sample_event("root-access-revoker/put-key-policy.json", &key),
    )
    .await;
    assert!(calls.writes().is_empty());
    assert!(bed.notifications().await.is_empty());
}

#[tokio::test]
async fn with_root_access_on_the_revoker_does_nothing() {
    let bed = TestBed::start().await;
    let key = managed_key(&bed, &policy(json!([root_statement(), admin_statement()]))).await;
    let (deps, calls) = deps(
        &bed,
        revoker_config(&bed.topic_arn, &[("ROOT_ACCESS", "true")]),
    );
    let outcome = run(
        &deps,
        sample_event("root-access-revoker/put-key-policy.json", &key),
    )
    .await;
    assert!(
        matches!(outcome, Outcome::Skipped { ref reason, .. } if reason.contains("ROOT_ACCESS is on")),
        "{outcome:?}"
    );
    assert!(calls.operations().is_empty());
}

#[tokio::test]
async fn policy_drift_and_the_revoker_converge_in_either_order_with_one_write_each_at_most() {
    let bed = TestBed::start().await;
    roles(&bed).await;
    bed.create_role(integration_tests::SELF_ROLE_ARN).await;
    // Both read ROOT_ACCESS=false; the admins include both functions' roles.
    let admins = format!(
        "{ADMIN_ROLE_ARN},{},{REVOKER_ROLE_ARN}",
        integration_tests::SELF_ROLE_ARN
    );
    let drift_config = integration_tests::config(
        &bed.topic_arn,
        &[
            ("MODE", "enforce"),
            ("ROOT_ACCESS", "false"),
            ("KMS_ADMIN_ROLE_ARNS", &admins),
            ("ROTATION_ENABLED", "false"),
        ],
    );
    let revoker = revoker_config(&bed.topic_arn, &[("KMS_ADMIN_ROLE_ARNS", &admins)]);
    let baseline = integration_tests::expected_baseline(
        integration_tests::REGION,
        false,
        &[
            ADMIN_ROLE_ARN,
            integration_tests::SELF_ROLE_ARN,
            REVOKER_ROLE_ARN,
        ],
    );
    let baseline = Policy::parse(&baseline).unwrap();
    let drifted = policy(json!([root_statement(), admin_statement(),
        {"Sid": "Extra", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::444455556666:root"}, "Action": "kms:Decrypt", "Resource": "*"}]));

    for revoker_first in [true, false] {
        let key = managed_key(&bed, &drifted).await;
        let (drift_clients, drift_calls) = bed.recorded_clients();
        let drift = policy_drift::Deps {
            config: drift_config.clone(),
            clients: drift_clients,
            own: (),
        };
        let (revoke, revoke_calls) = deps(&bed, revoker.clone());
        let drift_event = sample_event("policy-drift/put-key-policy.json", &key);
        let revoke_event = sample_event("root-access-revoker/put-key-policy.json", &key);
        if revoker_first {
            run(&revoke, revoke_event.clone()).await;
            policy_drift::function_handler(
                LambdaEvent::new(drift_event.clone(), Context::default()),
                &drift,
            )
            .await
            .unwrap();
        } else {
            policy_drift::function_handler(
                LambdaEvent::new(drift_event.clone(), Context::default()),
                &drift,
            )
            .await
            .unwrap();
            run(&revoke, revoke_event.clone()).await;
        }
        // And once more each: nothing left to do.
        run(&revoke, revoke_event).await;
        policy_drift::function_handler(LambdaEvent::new(drift_event, Context::default()), &drift)
            .await
            .unwrap();

        let after = Policy::parse(&bed.key_policy(&key).await).unwrap();
        assert!(
            after.semantically_equal(&baseline),
            "revoker first: {revoker_first}\n{}",
            after.diff_against(&baseline)
        );
        assert!(
            drift_calls.writes().len() <= 1,
            "policy-drift wrote {:?}",
            drift_calls.writes()
        );
        assert!(
            revoke_calls.writes().len() <= 1,
            "the revoker wrote {:?}",
            revoke_calls.writes()
        );
        bed.notifications().await;
    }
}

#[tokio::test]
async fn deleting_the_only_admin_role_announces_the_keys_at_risk() {
    let bed = TestBed::start().await;
    roles(&bed).await;
    let key = managed_key(&bed, &policy(json!([admin_statement()]))).await;
    let with_root = managed_key(&bed, &policy(json!([root_statement(), admin_statement()]))).await;
    aws_sdk_iam::Client::new(&bed.sdk)
        .delete_role()
        .role_name("kms-admin")
        .send()
        .await
        .unwrap();
    let (deps, calls) = deps(&bed, revoker_config(&bed.topic_arn, &[]));

    let outcome = respond(
        &deps,
        sample_event("root-access-revoker/delete-role.json", "unused"),
    )
    .await;

    let Response::Report(RevokerReport::AdminAtRisk { keys, .. }) = outcome else {
        panic!("expected an admin-at-risk outcome, got {outcome:?}")
    };
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert!(
        keys[0].ends_with(&key),
        "the key with the root is not at risk: {with_root}"
    );
    assert!(calls.writes().is_empty());
    let notes = bed.notifications().await;
    assert_eq!(notes.len(), 1);
    assert!(
        notes[0]
            .subject
            .starts_with("[test] KMS admin role at risk: 1 key(s)"),
        "{}",
        notes[0].subject
    );
    assert!(
        notes[0].message.contains("was deleted"),
        "{}",
        notes[0].message
    );
    assert_eq!(notes[0].attributes["severity"]["Value"], "critical");
}

#[tokio::test]
async fn a_trust_policy_nobody_can_assume_is_announced() {
    let bed = TestBed::start().await;
    roles(&bed).await;
    managed_key(&bed, &policy(json!([admin_statement()]))).await;
    aws_sdk_iam::Client::new(&bed.sdk)
        .update_assume_role_policy()
        .role_name("kms-admin")
        .policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":{"AWS":"*"},"Action":"sts:AssumeRole"}]}"#)
        .send()
        .await
        .unwrap();
    let (deps, _) = deps(&bed, revoker_config(&bed.topic_arn, &[]));

    let outcome = respond(
        &deps,
        sample_event(
            "root-access-revoker/update-assume-role-policy.json",
            "unused",
        ),
    )
    .await;

    assert!(
        matches!(outcome, Response::Report(RevokerReport::AdminAtRisk { .. })),
        "{outcome:?}"
    );
    let notes = bed.notifications().await;
    assert!(
        notes[0].message.contains("trust policy nobody can assume"),
        "{}",
        notes[0].message
    );
}

#[tokio::test]
async fn the_sweep_removes_the_root_where_it_is_and_report_mode_writes_nothing() {
    let bed = TestBed::start().await;
    roles(&bed).await;
    let with_root = managed_key(&bed, &policy(json!([root_statement(), admin_statement()]))).await;
    let without = managed_key(&bed, &policy(json!([admin_statement()]))).await;

    let (report, report_calls) = deps(&bed, revoker_config(&bed.topic_arn, &[("MODE", "report")]));
    let outcome = run(
        &report,
        sample_event("root-access-revoker/scheduled-sweep.json", "unused"),
    )
    .await;
    let Outcome::Sweep(swept) = outcome else {
        panic!("expected a sweep report, got {outcome:?}")
    };
    assert_eq!((swept.managed, swept.reported, swept.compliant), (2, 1, 1));
    assert!(
        report_calls.writes().is_empty(),
        "{:?}",
        report_calls.writes()
    );
    let notes = bed.notifications().await;
    assert_eq!(notes.len(), 1);
    assert!(
        notes[0].message.contains("would remove the account root"),
        "{}",
        notes[0].message
    );

    let (enforce, calls) = deps(&bed, revoker_config(&bed.topic_arn, &[]));
    let outcome = run(
        &enforce,
        sample_event("root-access-revoker/scheduled-sweep.json", "unused"),
    )
    .await;
    let Outcome::Sweep(swept) = outcome else {
        panic!("expected a sweep report, got {outcome:?}")
    };
    assert_eq!((swept.corrected, swept.compliant), (1, 1));
    assert_eq!(calls.writes(), vec!["PutKeyPolicy"]);
    assert!(!bed.key_policy(&with_root).await.contains(":root"));
    assert!(bed.key_policy(&without).await.contains("AllowKmsAdminRole"));
}

#[tokio::test]
async fn a_blocked_key_and_a_deleted_principal_are_announced_once_across_sweeps() {
    let bed = TestBed::start().await;
    // The admin role does not exist: removing the root is blocked at every sweep.
    bed.create_role(REVOKER_ROLE_ARN).await;
    managed_key(&bed, &policy(json!([root_statement(), admin_statement()]))).await;
    // No root, but a deleted role left behind as its unique id.
    let orphan = json!({"Sid": "OldApp", "Effect": "Allow", "Principal": {"AWS": "AROAEXAMPLEDELETED123"},
                        "Action": "kms:Decrypt", "Resource": "*"});
    managed_key(&bed, &policy(json!([admin_statement(), orphan]))).await;
    let (deps, calls) = deps(&bed, revoker_config(&bed.topic_arn, &[]));
    let sweep = sample_event("root-access-revoker/scheduled-sweep.json", "unused");

    let Outcome::Sweep(first) = run(&deps, sweep.clone()).await else {
        panic!("a sweep report")
    };
    assert_eq!((first.blocked, first.reported), (1, 1), "{first:?}");
    let subjects: Vec<String> = bed
        .notifications()
        .await
        .into_iter()
        .map(|n| n.subject)
        .collect();
    assert_eq!(subjects.len(), 2, "{subjects:?}");

    let Outcome::Sweep(second) = run(&deps, sweep).await else {
        panic!("a sweep report")
    };
    assert_eq!((second.blocked, second.reported), (1, 1), "still found");
    assert_eq!(second.not_announced_again, 2);
    assert!(
        bed.notifications().await.is_empty(),
        "not sent again before the reminder"
    );
    assert!(calls.writes().is_empty(), "{:?}", calls.writes());
}
