//! policy-drift with per-key desired state (`DESIRED_STATE=per-key`), end to end on moto's KMS
//! and DynamoDB: enrolment, approved changes recorded, others reverted to the record, the
//! floor, grants, history and rollback, and concurrent events for one key.
//!
//! moto checks none of KMS's policy rules nor IAM; the floor and KMS's rules are the
//! function's own checks, so what these tests show holds on AWS too. moto's ListGrants is
//! immediately consistent where AWS's may lag by minutes: the function takes a CreateGrant
//! event's grant from the event itself, which `per_key_tests` shows without moto.

use integration_tests::{config, sample_event, CallLog, TestBed, ACCOUNT_ID};
use lambda_runtime::{Context, LambdaEvent};
use policy_drift::commands::{CommandReport, VersionView};
use policy_drift::{function_handler, invoke, Config, Deps};
use serde_json::{json, Value};
use shared::notify::outcome::{FindingKind, Outcome, Status};
use shared::pipeline::Response;
use shared::policy::model::Policy;

const MANAGED: (&str, &str) = ("guardrails:managed", "true");
const DEPLOYER: &str = "arn:aws:iam::111122223333:role/terraform-ci";
const DEVELOPER: &str = "arn:aws:iam::111122223333:role/Developer";
const VAULT_ROLE: &str = "arn:aws:iam::111122223333:role/vault-unseal";

/// The Terraform module's default policy: the account root, and so IAM, administers the key.
const ROOT_ONLY: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}]}"#;
/// The same, and an application role that may decrypt.
const WITH_APP: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"},{"Sid":"App","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/app"},"Action":"kms:Decrypt","Resource":"*"}]}"#;
/// The same, and another account: outside the floor.
const WITH_STRANGER: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"},{"Sid":"Stranger","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::999988887777:root"},"Action":"kms:Decrypt","Resource":"*"}]}"#;
/// The Vault auto-unseal key as the reference module writes it: root, and the unseal role.
const VAULT_KEY: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"},{"Sid":"VaultUnseal","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/vault-unseal"},"Action":["kms:Encrypt","kms:Decrypt","kms:DescribeKey"],"Resource":"*"}]}"#;
/// The deployer's rewrite of it that drops Decrypt without saying so.
const VAULT_WITHOUT_DECRYPT: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"},{"Sid":"VaultUnseal","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/vault-unseal"},"Action":["kms:Encrypt","kms:DescribeKey"],"Resource":"*"}]}"#;

fn per_key_config(bed: &TestBed, extra: &[(&str, &str)]) -> Config {
    let mut pairs = vec![
        ("MODE", "enforce"),
        ("DESIRED_STATE", "per-key"),
        ("APPROVED_DEPLOYERS", DEPLOYER),
    ];
    pairs.extend_from_slice(extra);
    config(&bed.topic_arn, &pairs)
}

fn deps(bed: &TestBed, config: Config) -> (Deps, CallLog) {
    let (clients, calls) = bed.recorded_clients();
    let deps = Deps {
        config,
        clients,
        own: (),
    };
    (deps, calls)
}

async fn run(deps: &Deps, event: Value) -> Result<Outcome, shared::GuardrailError> {
    function_handler(LambdaEvent::new(event, Context::default()), deps).await
}

async fn command(deps: &Deps, payload: Value) -> Result<CommandReport, shared::GuardrailError> {
    match invoke(LambdaEvent::new(payload, Context::default()), deps).await? {
        Response::Report(report) => Ok(report),
        Response::Outcome(outcome) => panic!("a command answered with an outcome: {outcome:?}"),
    }
}

async fn history(deps: &Deps, key_id: &str) -> Vec<VersionView> {
    match command(deps, json!({"command": "history", "key": key_id}))
        .await
        .unwrap()
    {
        CommandReport::History { versions, .. } => versions,
        other => panic!("expected a history, got {other:?}"),
    }
}

/// The sample CloudTrail record of `name`, made by a session of `role` with its own event id.
fn event_by(name: &str, key_id: &str, role: &str, event_id: &str) -> Value {
    let mut event = sample_event("policy-drift/put-key-policy.json", key_id);
    let role_name = role.rsplit('/').next().unwrap();
    let detail = &mut event["detail"];
    detail["eventName"] = json!(name);
    detail["eventID"] = json!(event_id);
    detail["userIdentity"]["arn"] = json!(format!(
        "arn:aws:sts::{ACCOUNT_ID}:assumed-role/{role_name}/session"
    ));
    detail["userIdentity"]["sessionContext"]["sessionIssuer"]["arn"] = json!(role);
    detail["requestParameters"] = json!({"keyId": key_id});
    event
}

fn sweep(id: &str) -> Value {
    let mut event = sample_event("policy-drift/scheduled-sweep.json", "unused");
    event["id"] = json!(id);
    event
}

async fn managed_key(bed: &TestBed, policy: &str, alias: &str) -> String {
    let key = bed.create_key("app key", &[MANAGED], Some(policy)).await;
    bed.kms
        .enable_key_rotation()
        .key_id(&key.key_id)
        .send()
        .await
        .unwrap();
    bed.create_alias(alias, &key.key_id).await;
    key.key_id
}

fn same_policy(actual: &str, expected: &str) -> bool {
    Policy::parse(actual)
        .unwrap()
        .semantically_equal(&Policy::parse(expected).unwrap())
}

fn key_outcome(outcome: Outcome) -> shared::notify::outcome::KeyOutcome {
    match outcome {
        Outcome::Key(key) => key,
        other => panic!("expected a key outcome, got {other:?}"),
    }
}

#[tokio::test]
async fn a_key_is_enrolled_an_unapproved_change_is_reverted_and_an_approved_one_recorded() {
    let bed = TestBed::start().await;
    let key_id = managed_key(&bed, ROOT_ONLY, "alias/app").await;
    let (deps, calls) = deps(&bed, per_key_config(&bed, &[]));

    // Enrolment: the sweep records the key as it is, announced, and writes nothing to it.
    run(&deps, sweep("sweep-1")).await.unwrap();
    assert!(calls.writes().is_empty(), "{:?}", calls.writes());
    let versions = history(&deps, &key_id).await;
    assert_eq!(versions.len(), 1);
    assert_eq!(versions[0].reason, "enrolled from the key's state");
    assert_eq!(versions[0].approved_by, "kms-guardrails sweep");
    assert!(same_policy(&versions[0].policy.to_string(), ROOT_ONLY));
    let notes = bed.notifications().await;
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_eq!(
        notes[0].subject,
        "[test] KMS key desired state recorded: alias/app (eu-west-1)"
    );
    assert!(
        notes[0].message.contains("recorded as version 1"),
        "{}",
        notes[0].message
    );
    assert_eq!(notes[0].attributes["severity"]["Value"], "info");

    // A developer's change is drift: restored to version 1.
    bed.put_key_policy(&key_id, WITH_APP).await;
    let outcome = run(
        &deps,
        event_by("PutKeyPolicy", &key_id, DEVELOPER, "ev-dev"),
    )
    .await
    .unwrap();
    assert_eq!(key_outcome(outcome).status, Status::Corrected);
    assert!(same_policy(&bed.key_policy(&key_id).await, ROOT_ONLY));
    let notes = bed.notifications().await;
    assert_eq!(
        notes[0].subject,
        "[test] KMS key policy drift corrected: alias/app (eu-west-1)"
    );
    assert!(
        notes[0]
            .message
            .contains("PutKeyPolicy: restored the key policy recorded as version 1"),
        "{}",
        notes[0].message
    );
    assert!(
        notes[0]
            .message
            .contains("not made by an approved deployer (APPROVED_DEPLOYERS)"),
        "{}",
        notes[0].message
    );
    assert_eq!(history(&deps, &key_id).await.len(), 1);

    // The deployer's same change is version 2 and stays on the key.
    calls.clear();
    bed.put_key_policy(&key_id, WITH_APP).await;
    run(
        &deps,
        event_by("PutKeyPolicy", &key_id, DEPLOYER, "ev-deploy"),
    )
    .await
    .unwrap();
    assert!(calls.writes().is_empty(), "{:?}", calls.writes());
    assert!(same_policy(&bed.key_policy(&key_id).await, WITH_APP));
    let versions = history(&deps, &key_id).await;
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[1].reason, "approved change");
    assert_eq!(versions[1].event_id, "ev-deploy");
    assert_eq!(
        versions[1].approved_by,
        "arn:aws:sts::111122223333:assumed-role/terraform-ci/session"
    );
    assert!(same_policy(&versions[1].policy.to_string(), WITH_APP));
    let notes = bed.notifications().await;
    assert_eq!(
        notes[0].subject,
        "[test] KMS key desired state recorded: alias/app (eu-west-1)"
    );
    assert!(notes[0].message.contains("PutKeyPolicy by arn:aws:sts::111122223333:assumed-role/terraform-ci/session, an approved deployer, is recorded as version 2"), "{}", notes[0].message);

    // Drift is now measured from version 2.
    bed.put_key_policy(&key_id, ROOT_ONLY).await;
    run(
        &deps,
        event_by("PutKeyPolicy", &key_id, DEVELOPER, "ev-dev-2"),
    )
    .await
    .unwrap();
    assert!(same_policy(&bed.key_policy(&key_id).await, WITH_APP));
}

#[tokio::test]
async fn the_floor_refuses_an_approved_change_and_a_key_that_breaks_it_is_not_enrolled() {
    let bed = TestBed::start().await;
    let keepers = format!(
        r#"{{"alias/vault-unseal":[{{"principal":"{VAULT_ROLE}","actions":["kms:Encrypt","kms:Decrypt","kms:DescribeKey"]}}]}}"#
    );
    let (deps, calls) = deps(&bed, per_key_config(&bed, &[("KEY_KEEPERS", &keepers)]));
    let vault = managed_key(&bed, VAULT_KEY, "alias/vault-unseal").await;
    let stranger = managed_key(&bed, WITH_STRANGER, "alias/shared-out").await;

    run(&deps, sweep("sweep-1")).await.unwrap();
    assert_eq!(history(&deps, &vault).await.len(), 1);
    assert!(
        history(&deps, &stranger).await.is_empty(),
        "a key outside the floor was enrolled"
    );
    let notes = bed.notifications().await;
    let refused = notes
        .iter()
        .find(|n| n.subject == "[test] KMS key breaks the floor: alias/shared-out (eu-west-1)")
        .unwrap_or_else(|| panic!("{notes:?}"));
    assert!(
        refused.message.contains("was not enrolled"),
        "{}",
        refused.message
    );
    assert!(
        refused
            .message
            .contains("nothing is enforced on it until it is enrolled"),
        "{}",
        refused.message
    );
    assert!(
        refused
            .message
            .contains("999988887777, which is neither the key's account nor in ALLOWED_ACCOUNTS"),
        "{}",
        refused.message
    );
    assert!(
        same_policy(&bed.key_policy(&stranger).await, WITH_STRANGER),
        "nothing is written on a guess"
    );

    // The deployer drops Decrypt from the unseal role: refused and restored.
    calls.clear();
    bed.put_key_policy(&vault, VAULT_WITHOUT_DECRYPT).await;
    run(
        &deps,
        event_by("PutKeyPolicy", &vault, DEPLOYER, "ev-vault"),
    )
    .await
    .unwrap();
    assert_eq!(calls.writes(), ["PutKeyPolicy"]);
    assert!(same_policy(&bed.key_policy(&vault).await, VAULT_KEY));
    assert_eq!(history(&deps, &vault).await.len(), 1);
    let notes = bed.notifications().await;
    assert_eq!(
        notes[0].subject,
        "[test] KMS key change refused by the floor and reverted: alias/vault-unseal (eu-west-1)"
    );
    assert!(
        notes[0]
            .message
            .contains("an approved deployer, breaks the floor"),
        "{}",
        notes[0].message
    );
    assert!(
        notes[0]
            .message
            .contains("role/vault-unseal may call kms:Decrypt only through the account principal"),
        "{}",
        notes[0].message
    );
}

#[tokio::test]
async fn history_and_rollback_restore_a_chosen_version_through_the_same_checks() {
    let bed = TestBed::start().await;
    let key_id = managed_key(&bed, ROOT_ONLY, "alias/rolled").await;
    let (deps, _) = deps(&bed, per_key_config(&bed, &[]));
    run(&deps, sweep("sweep-1")).await.unwrap();
    bed.put_key_policy(&key_id, WITH_APP).await;
    run(
        &deps,
        event_by("PutKeyPolicy", &key_id, DEPLOYER, "ev-deploy"),
    )
    .await
    .unwrap();
    bed.notifications().await;

    let report = command(
        &deps,
        json!({"command": "rollback", "key": "alias/rolled", "version": 1, "requested_by": "jane"}),
    )
    .await
    .unwrap();
    let CommandReport::Rollback {
        recorded_version,
        from,
        outcome,
        ..
    } = report
    else {
        panic!("expected a rollback report")
    };
    assert_eq!((recorded_version, from), (3, 1));
    assert_eq!(outcome.status, Status::Corrected);
    assert!(same_policy(&bed.key_policy(&key_id).await, ROOT_ONLY));
    let versions = history(&deps, &key_id).await;
    assert_eq!(
        versions.iter().map(|v| v.version).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert_eq!(versions[2].reason, "rollback to version 1");
    assert_eq!(
        versions[2].approved_by,
        "rollback command requested by jane"
    );
    let notes = bed.notifications().await;
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        notes[0]
            .message
            .contains("Requested:   operator command rollback by jane"),
        "{}",
        notes[0].message
    );
    assert!(
        notes[0]
            .message
            .contains("restored the key policy recorded as version 3"),
        "{}",
        notes[0].message
    );
    assert!(
        notes[0]
            .message
            .contains("The rollback recorded version 3 and the key was brought to it"),
        "{}",
        notes[0].message
    );

    let err = command(
        &deps,
        json!({"command": "rollback", "key": key_id, "version": 9}),
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("has no version 9; its versions are 1 to 3"),
        "{err}"
    );
    assert_eq!(history(&deps, &key_id).await.len(), 3);
}

#[tokio::test]
async fn a_rollback_to_a_version_the_floor_now_refuses_writes_nothing() {
    let bed = TestBed::start().await;
    let key_id = managed_key(&bed, WITH_STRANGER, "alias/once-shared").await;
    let (allowing, _) = deps(
        &bed,
        per_key_config(&bed, &[("ALLOWED_ACCOUNTS", "999988887777")]),
    );
    run(&allowing, sweep("sweep-1")).await.unwrap();
    bed.put_key_policy(&key_id, ROOT_ONLY).await;
    run(
        &allowing,
        event_by("PutKeyPolicy", &key_id, DEPLOYER, "ev-deploy"),
    )
    .await
    .unwrap();

    // The account is no longer allowed: version 1 may not come back.
    let (deps, calls) = deps(&bed, per_key_config(&bed, &[]));
    let err = command(
        &deps,
        json!({"command": "rollback", "key": key_id, "version": 1}),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("breaks the floor"), "{err}");
    assert!(calls.writes().is_empty());
    assert_eq!(history(&deps, &key_id).await.len(), 2);
    assert!(same_policy(&bed.key_policy(&key_id).await, ROOT_ONLY));
}

async fn create_grant(bed: &TestBed, key_id: &str, grantee: &str) -> String {
    bed.kms
        .create_grant()
        .key_id(key_id)
        .grantee_principal(grantee)
        .operations(aws_sdk_kms::types::GrantOperation::Decrypt)
        .send()
        .await
        .unwrap()
        .grant_id
        .unwrap()
}

fn grant_event(key_id: &str, role: &str, grant_id: &str, grantee: &str, event_id: &str) -> Value {
    let mut event = event_by("CreateGrant", key_id, role, event_id);
    event["detail"]["requestParameters"] = json!({
        "keyId": key_id,
        "granteePrincipal": grantee,
        "operations": ["Decrypt"]
    });
    event["detail"]["responseElements"] = json!({"grantId": grant_id});
    event
}

async fn grant_ids(bed: &TestBed, key_id: &str) -> Vec<String> {
    let out = bed.kms.list_grants().key_id(key_id).send().await.unwrap();
    out.grants()
        .iter()
        .filter_map(|g| g.grant_id().map(str::to_string))
        .collect()
}

#[tokio::test]
async fn a_grant_its_record_does_not_hold_is_found_and_revoked_when_configured() {
    let bed = TestBed::start().await;
    let key_id = managed_key(&bed, ROOT_ONLY, "alias/granted").await;
    let (deps, calls) = deps(
        &bed,
        per_key_config(&bed, &[("REVOKE_UNEXPECTED_GRANTS", "true")]),
    );
    run(&deps, sweep("sweep-1")).await.unwrap();
    bed.notifications().await;

    // The deployer's grant to the app role is recorded.
    let app = "arn:aws:iam::111122223333:role/app";
    let approved = create_grant(&bed, &key_id, app).await;
    run(
        &deps,
        grant_event(&key_id, DEPLOYER, &approved, app, "ev-grant-1"),
    )
    .await
    .unwrap();
    let versions = history(&deps, &key_id).await;
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[1].grants, 1);
    let notes = bed.notifications().await;
    assert_eq!(
        notes[0].subject,
        "[test] KMS key desired state recorded: alias/granted (eu-west-1)"
    );

    // A developer's grant to another account is found and revoked; the approved one stays.
    calls.clear();
    let outsider = "arn:aws:iam::444455556666:root";
    let unexpected = create_grant(&bed, &key_id, outsider).await;
    let outcome = run(
        &deps,
        grant_event(&key_id, DEVELOPER, &unexpected, outsider, "ev-grant-2"),
    )
    .await
    .unwrap();
    let key = key_outcome(outcome);
    assert_eq!(key.status, Status::Corrected);
    assert_eq!(
        key.findings.iter().map(|f| f.kind).collect::<Vec<_>>(),
        [FindingKind::GrantUnexpected]
    );
    assert_eq!(calls.writes(), ["RevokeGrant"]);
    assert_eq!(grant_ids(&bed, &key_id).await, [approved]);
    let notes = bed.notifications().await;
    assert_eq!(
        notes[0].subject,
        "[test] KMS key grant drift corrected: alias/granted (eu-west-1)"
    );
    assert!(
        notes[0].message.contains(&unexpected),
        "{}",
        notes[0].message
    );
    assert!(
        notes[0].message.contains("444455556666"),
        "{}",
        notes[0].message
    );
}

#[tokio::test]
async fn concurrent_approved_events_for_one_key_end_in_one_record_holding_both() {
    let bed = TestBed::start().await;
    let key_id = managed_key(&bed, ROOT_ONLY, "alias/busy").await;
    let (deps, calls) = deps(&bed, per_key_config(&bed, &[]));
    run(&deps, sweep("sweep-1")).await.unwrap();

    // One terraform apply: a new policy and rotation turned off, two events at once.
    bed.put_key_policy(&key_id, WITH_APP).await;
    bed.kms
        .disable_key_rotation()
        .key_id(&key_id)
        .send()
        .await
        .unwrap();
    calls.clear();
    let policy_event = event_by("PutKeyPolicy", &key_id, DEPLOYER, "ev-policy");
    let rotation_event = event_by("DisableKeyRotation", &key_id, DEPLOYER, "ev-rotation");
    let (a, b) = tokio::join!(
        run(&deps, policy_event.clone()),
        run(&deps, rotation_event.clone())
    );
    // The one that lost the conditional write failed retryably and wrote nothing; Lambda
    // retries it, as here.
    for (result, event) in [(a, policy_event), (b, rotation_event)] {
        if let Err(e) = result {
            assert!(e.is_retryable(), "{e}");
            assert!(
                e.to_string()
                    .contains("another invocation recorded version 2"),
                "{e}"
            );
            eprintln!("lost the race and retried: {e}");
            run(&deps, event).await.unwrap();
        }
    }
    assert!(
        calls.writes().is_empty(),
        "an approved change was reverted: {:?}",
        calls.writes()
    );
    let versions = history(&deps, &key_id).await;
    assert_eq!(
        versions.iter().map(|v| v.version).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    let latest = versions.last().unwrap();
    assert!(
        same_policy(&latest.policy.to_string(), WITH_APP),
        "{latest:?}"
    );
    assert_eq!(latest.rotation.as_deref(), Some("disabled"));
    assert!(same_policy(&bed.key_policy(&key_id).await, WITH_APP));
    assert!(!bed.rotation_enabled(&key_id).await);
}

/// Deps whose KMS and DynamoDB requests are both counted, retries included.
fn counting_deps(bed: &TestBed, config: Config) -> (Deps, CallLog) {
    let (clients, calls) = bed.recorded_clients();
    let dynamodb = aws_sdk_dynamodb::config::Builder::from(&bed.sdk)
        .interceptor(calls.clone())
        .build();
    let clients = clients.with_dynamodb_client(
        integration_tests::REGION,
        aws_sdk_dynamodb::Client::from_conf(dynamodb),
    );
    (
        Deps {
            config,
            clients,
            own: (),
        },
        calls,
    )
}

fn count(calls: &CallLog, operation: &str) -> usize {
    calls
        .operations()
        .iter()
        .filter(|op| *op == operation)
        .count()
}

#[tokio::test]
async fn desired_state_costs_per_event_and_per_swept_key() {
    let bed = TestBed::start().await;
    let first = managed_key(&bed, ROOT_ONLY, "alias/one").await;
    let (deps, calls) = counting_deps(&bed, per_key_config(&bed, &[]));
    run(&deps, sweep("enrol-1")).await.unwrap();
    calls.clear();
    run(&deps, sweep("sweep-1")).await.unwrap();
    let one_key = (
        count(&calls, "Query"),
        count(&calls, "PutItem"),
        count(&calls, "ListGrants"),
    );
    for alias in ["alias/two", "alias/three"] {
        managed_key(&bed, ROOT_ONLY, alias).await;
    }
    run(&deps, sweep("enrol-2")).await.unwrap();
    calls.clear();
    run(&deps, sweep("sweep-2")).await.unwrap();
    let three_keys = (
        count(&calls, "Query"),
        count(&calls, "PutItem"),
        count(&calls, "ListGrants"),
    );
    // Two keys more: per swept key in order, one Query of its record, one ListGrants, no write.
    assert_eq!(three_keys.0 - one_key.0, 2, "{one_key:?} {three_keys:?}");
    assert_eq!(three_keys.1 - one_key.1, 0, "{one_key:?} {three_keys:?}");
    assert_eq!(three_keys.2 - one_key.2, 2, "{one_key:?} {three_keys:?}");

    // An approved change: the record read, the version written; the journal reads once.
    bed.put_key_policy(&first, WITH_APP).await;
    calls.clear();
    run(
        &deps,
        event_by("PutKeyPolicy", &first, DEPLOYER, "ev-cost-1"),
    )
    .await
    .unwrap();
    let approved = (count(&calls, "Query"), count(&calls, "PutItem"));
    // A developer's change reverted: the record read, and the journal's record and settle.
    bed.put_key_policy(&first, ROOT_ONLY).await;
    calls.clear();
    run(
        &deps,
        event_by("PutKeyPolicy", &first, DEVELOPER, "ev-cost-2"),
    )
    .await
    .unwrap();
    let reverted = (count(&calls, "Query"), count(&calls, "PutItem"));
    println!(
        "DynamoDB per swept key: {} Query, {} PutItem; KMS ListGrants {}; per sweep otherwise: {} Query",
        (three_keys.0 - one_key.0) / 2,
        (three_keys.1 - one_key.1) / 2,
        (three_keys.2 - one_key.2) / 2,
        one_key.0 - 1
    );
    println!(
        "approved change event: {} Query, {} PutItem",
        approved.0, approved.1
    );
    println!(
        "reverted change event: {} Query, {} PutItem",
        reverted.0, reverted.1
    );
    assert_eq!(approved, (2, 1));
    assert_eq!(reverted, (2, 2));
}
