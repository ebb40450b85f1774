//! Organization scale on moto with several accounts: the hub's functions reach a member
//! account's keys through its member role (moto maps assumed-role credentials to the role's
//! account, so one server plays every account).
//!
//! moto does not check IAM: a role that does not exist can still be assumed there, and no
//! external id is enforced. The missing-role path is tested with the SDK's mocks in
//! `functions/policy-drift/src/handler_tests.rs`.

use integration_tests::{config, expected_baseline, sample_event, TestBed, REGION};
use lambda_runtime::{Context, LambdaEvent};
use policy_drift::{function_handler, Deps};
use serde_json::{json, Value};
use shared::aws::AwsClients;
use shared::notify::outcome::{Outcome, Status};
use shared::policy::model::Policy;

const MEMBER: &str = "444455556666";
const MEMBER_ROLE: &str = "kms-guardrails-member";

/// A KMS client acting in `account` and `region`.
async fn kms_in(bed: &TestBed, account: &str, region: &str) -> aws_sdk_kms::Client {
    let sdk = bed
        .sdk_in(account)
        .await
        .to_builder()
        .region(aws_config::Region::new(region.to_string()))
        .build();
    aws_sdk_kms::Client::new(&sdk)
}

/// A key tagged guardrails:managed=true in `account` and `region` with `policy`: its ARN.
async fn managed_key(
    bed: &TestBed,
    account: &str,
    region: &str,
    description: &str,
    policy: &str,
) -> String {
    kms_in(bed, account, region)
        .await
        .create_key()
        .description(description)
        .tags(
            aws_sdk_kms::types::Tag::builder()
                .tag_key("guardrails:managed")
                .tag_value("true")
                .build()
                .unwrap(),
        )
        .policy(policy)
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap()
        .arn
        .unwrap()
}

/// The key id at the end of a key ARN.
fn key_id_of(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap()
}

/// The sample PutKeyPolicy record, made in `account` on `key_id`.
fn member_event(key_id: &str, account: &str) -> Value {
    member_sample("policy-drift/put-key-policy.json", key_id, account)
}

/// The sample `name`, made in `account` on `key_id`.
fn member_sample(name: &str, key_id: &str, account: &str) -> Value {
    let mut event = sample_event(name, key_id);
    let detail = &mut event["detail"];
    detail["recipientAccountId"] = json!(account);
    detail["userIdentity"]["accountId"] = json!(account);
    detail["resources"] = json!([{
        "accountId": account,
        "type": "AWS::KMS::Key",
        "ARN": format!("arn:aws:kms:{REGION}:{account}:key/{key_id}")
    }]);
    event
}

/// policy-drift in enforce mode reaching member accounts through MEMBER_ROLE, with no admin
/// role (the configured one is the hub's), and `extra` on top.
fn hub_config(bed: &TestBed, extra: &[(&str, &str)]) -> policy_drift::Config {
    let mut env = vec![
        ("MODE", "enforce"),
        ("KMS_ADMIN_ROLE_ARNS", ""),
        ("MEMBER_ROLE_NAME", MEMBER_ROLE),
        ("MEMBER_EXTERNAL_ID", "hub-test"),
    ];
    env.extend_from_slice(extra);
    config(&bed.topic_arn, &env)
}

#[tokio::test]
async fn an_event_from_a_member_account_is_corrected_through_its_member_role() {
    let bed = TestBed::start_organization().await;
    // Root access and CloudWatch Logs, rendered for the member account (no admin role: the
    // configured one belongs to the hub).
    let mut baseline: Value =
        serde_json::from_str(&expected_baseline(REGION, true, &[]).replace("111122223333", MEMBER))
            .unwrap();
    baseline["Statement"]
        .as_array_mut()
        .unwrap()
        .retain(|s| s["Principal"]["AWS"] != json!([]));
    let baseline = baseline.to_string();
    let arn = managed_key(&bed, MEMBER, REGION, "member app key", r#"{"Version":"2012-10-17","Statement":[{"Sid":"Open","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::444455556666:root"},"Action":"kms:*","Resource":"*"},{"Sid":"TemporaryDebugAccess","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::999988887777:root"},"Action":"kms:Decrypt","Resource":"*"}]}"#).await;
    assert!(arn.contains(MEMBER), "{arn}");
    let key_id = key_id_of(&arn);

    let config = hub_config(&bed, &[]);
    let clients = AwsClients::for_function(bed.sdk.clone(), &config.common, "policy-drift");
    let deps = Deps {
        config,
        clients,
        own: (),
    };
    let outcome = function_handler(
        LambdaEvent::new(member_event(key_id, MEMBER), Context::default()),
        &deps,
    )
    .await
    .unwrap();
    let Outcome::Key(outcome) = outcome else {
        panic!("expected a key outcome, got {outcome:?}")
    };
    assert_eq!(outcome.status, Status::Corrected);

    // The member account's key now holds the member account's baseline.
    let policy = policy_of(&bed, &arn).await;
    let diff = Policy::parse(&policy)
        .unwrap()
        .diff_against(&Policy::parse(&baseline).unwrap());
    assert!(diff.is_empty(), "{diff}");

    // The message names the account, and the hub's own account holds no such key.
    let notes = bed.notifications().await;
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        notes[0].message.contains("Account:     444455556666"),
        "{}",
        notes[0].message
    );
    assert_eq!(
        notes[0].subject,
        "[test] KMS key policy drift corrected: member app key (eu-west-1)"
            .replace("member app key", key_id)
    );
    let hub_keys = bed.kms.list_keys().send().await.unwrap();
    assert!(hub_keys.keys().iter().all(|k| k.key_id() != Some(key_id)));
}

#[tokio::test]
async fn without_a_member_role_another_accounts_key_is_skipped_with_the_reason() {
    let bed = TestBed::start().await;
    let config = config(&bed.topic_arn, &[("MODE", "enforce")]);
    let deps = Deps {
        clients: AwsClients::for_function(bed.sdk.clone(), &config.common, "policy-drift"),
        config,
        own: (),
    };
    let outcome = function_handler(
        LambdaEvent::new(
            member_event("1234abcd-12ab-34cd-56ef-1234567890ab", MEMBER),
            Context::default(),
        ),
        &deps,
    )
    .await
    .unwrap();
    let text = serde_json::to_string(&outcome).unwrap();
    assert!(text.contains("\"skipped\""), "{text}");
    assert!(
        text.contains("set MEMBER_ROLE_NAME to reach other accounts"),
        "{text}"
    );
    assert!(bed.notifications().await.is_empty());
}

const THIRD: &str = "777788889999";
const OTHER_REGION: &str = "us-east-1";
const DEBUG_GRANT: &str = r#"{"Sid":"TemporaryDebugAccess","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::999988887777:root"},"Action":"kms:Decrypt","Resource":"*"}"#;

/// A managed key in `account` and `region` whose policy lets a stranger decrypt.
async fn drifted_key(bed: &TestBed, account: &str, region: &str) -> String {
    let policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Sid":"Root","Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{account}:root"}},"Action":"kms:*","Resource":"*"}},{DEBUG_GRANT}]}}"#
    );
    let description = format!("app key {account} {region}");
    managed_key(bed, account, region, &description, &policy).await
}

async fn policy_of(bed: &TestBed, arn: &str) -> String {
    let (account, region) = (
        arn.split(':').nth(4).unwrap(),
        arn.split(':').nth(3).unwrap(),
    );
    kms_in(bed, account, region)
        .await
        .get_key_policy()
        .key_id(key_id_of(arn))
        .policy_name("default")
        .send()
        .await
        .unwrap()
        .policy
        .unwrap()
}

/// The SQS event Lambda's event source mapping would send for `messages`.
fn sqs_batch(messages: &[aws_sdk_sqs::types::Message], receive_count: u32) -> Value {
    let records: Vec<Value> = messages
        .iter()
        .map(|m| {
            json!({
                "messageId": m.message_id().unwrap(),
                "receiptHandle": m.receipt_handle().unwrap(),
                "body": m.body().unwrap(),
                "attributes": {"ApproximateReceiveCount": receive_count.to_string()},
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:eu-west-1:111122223333:kms-guardrails-sweep",
                "awsRegion": "eu-west-1"
            })
        })
        .collect();
    json!({ "Records": records })
}

// A schedule over three accounts and two Regions enqueues six parts; the parts, handed back
// in two batches as the event source mapping would, correct every key in every account and
// Region through the member roles, and the part that completes the sweep sends one summary.
// SQS delivers at least once: a part delivered again is swept again but not counted twice.
#[tokio::test]
async fn a_sweep_over_three_accounts_and_two_regions_is_fanned_out_and_summarised_once() {
    let bed = TestBed::start_organization().await;
    let mut keys = Vec::new();
    for account in [integration_tests::ACCOUNT_ID, MEMBER, THIRD] {
        for region in [REGION, OTHER_REGION] {
            keys.push(drifted_key(&bed, account, region).await);
        }
    }
    let queue_url = bed
        .sqs
        .create_queue()
        .queue_name("kms-guardrails-sweep")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let accounts = format!("{MEMBER},{THIRD}");
    let regions = format!("{REGION},{OTHER_REGION}");
    let config = hub_config(
        &bed,
        &[
            ("SWEEP_ACCOUNTS", &accounts),
            ("SWEEP_REGIONS", &regions),
            ("SWEEP_QUEUE_URL", &queue_url),
        ],
    );
    let deps = Deps {
        clients: AwsClients::for_function(bed.sdk.clone(), &config.common, "policy-drift"),
        config,
        own: (),
    };
    let invoke = |payload: Value| {
        let deps = &deps;
        async move {
            function_handler(LambdaEvent::new(payload, Context::default()), deps)
                .await
                .unwrap()
        }
    };

    let fanned = invoke(sample_event("policy-drift/scheduled-sweep.json", "")).await;
    let Outcome::FanOut(fanned) = fanned else {
        panic!("expected the sweep to fan out, got {fanned:?}")
    };
    assert_eq!((fanned.parts, fanned.accounts, fanned.regions), (6, 3, 2));
    // Nothing is swept by the schedule itself.
    assert!(policy_of(&bed, &keys[0])
        .await
        .contains("TemporaryDebugAccess"));

    let mut messages = Vec::new();
    while messages.len() < 6 {
        let received = bed
            .sqs
            .receive_message()
            .queue_url(&queue_url)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
        assert!(
            !received.messages().is_empty(),
            "only {} parts queued",
            messages.len()
        );
        messages.extend(received.messages().iter().cloned());
    }
    assert_eq!(messages.len(), 6);

    let mut parts = Vec::new();
    for batch in [&messages[..4], &messages[4..]] {
        let Outcome::SweepWork(work) = invoke(sqs_batch(batch, 1)).await else {
            panic!("expected sweep work")
        };
        assert!(work.batch_item_failures.is_empty(), "{work:?}");
        parts.extend(work.parts);
    }
    let mut names: Vec<&str> = parts.iter().map(|p| p.part.as_str()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "111122223333/eu-west-1",
            "111122223333/us-east-1",
            "444455556666/eu-west-1",
            "444455556666/us-east-1",
            "777788889999/eu-west-1",
            "777788889999/us-east-1",
        ]
    );
    assert!(parts.iter().all(|p| p.tally.corrected == 1), "{parts:?}");
    assert_eq!(parts.iter().filter(|p| p.summary_sent).count(), 1);
    assert_eq!(parts.last().unwrap().done, Some(6));
    for key in &keys {
        let policy = policy_of(&bed, key).await;
        assert!(!policy.contains("999988887777"), "{key}: {policy}");
        let account = key.split(':').nth(4).unwrap();
        assert!(
            policy.contains(&format!("arn:aws:iam::{account}:root")),
            "{key}: {policy}"
        );
    }

    let notes = bed.notifications().await;
    let summaries: Vec<_> = notes
        .iter()
        .filter(|n| n.subject.contains("sweep done"))
        .collect();
    assert_eq!(summaries.len(), 1, "{notes:?}");
    assert_eq!(
        summaries[0].subject,
        "[test] KMS guardrail sweep done: 6 keys in 6 parts, 6 corrected, 0 reported"
    );
    assert!(summaries[0]
        .message
        .contains("Corrected                        6\n"));
    // Each correction was announced in its own message, naming its account.
    let corrections: Vec<_> = notes
        .iter()
        .filter(|n| n.subject.contains("drift corrected"))
        .collect();
    assert_eq!(corrections.len(), 6, "{notes:?}");
    for account in [integration_tests::ACCOUNT_ID, MEMBER, THIRD] {
        let named = corrections
            .iter()
            .filter(|n| n.message.contains(&format!("Account:     {account}")))
            .count();
        assert_eq!(named, 2, "{account}");
    }

    // SQS delivers one part again: swept again (nothing to correct), not counted twice.
    let Outcome::SweepWork(again) = invoke(sqs_batch(&messages[..1], 2)).await else {
        panic!("expected sweep work")
    };
    assert!(again.batch_item_failures.is_empty());
    assert_eq!(again.parts[0].done, None, "{again:?}");
    assert!(!again.parts[0].summary_sent);
    assert!(bed.notifications().await.is_empty());
}

// root-access-revoker in a member account: the admin role is read in that account through
// the member role, and the member role (the principal the revoker acts as there) must keep
// control of the key, so the lockout check looks for it, not for the hub's function role.
#[tokio::test]
async fn root_access_revoker_removes_a_member_accounts_root_through_its_member_role() {
    let bed = TestBed::start_organization().await;
    let member_sdk = bed.sdk_in(MEMBER).await;
    let member_admin = format!("arn:aws:iam::{MEMBER}:role/kms-admin");
    let member_role = format!("arn:aws:iam::{MEMBER}:role/{MEMBER_ROLE}");
    let iam = aws_sdk_iam::Client::new(&member_sdk);
    for name in ["kms-admin", MEMBER_ROLE] {
        iam.create_role()
            .role_name(name)
            .assume_role_policy_document(
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"sts:AssumeRole"}]}"#,
            )
            .send()
            .await
            .unwrap();
    }
    let admins = json!({"Sid": "AllowKmsAdminRole", "Effect": "Allow",
        "Principal": {"AWS": [member_admin, member_role]}, "Action": "kms:*", "Resource": "*"});
    let root = json!({"Sid": "EnableRootAccess", "Effect": "Allow",
        "Principal": {"AWS": format!("arn:aws:iam::{MEMBER}:root")}, "Action": "kms:*", "Resource": "*"});
    let policy = json!({"Version": "2012-10-17", "Statement": [root, admins.clone()]});
    let arn = managed_key(&bed, MEMBER, REGION, "member key", &policy.to_string()).await;
    let config = integration_tests::revoker_config(
        &bed.topic_arn,
        &[
            ("KMS_ADMIN_ROLE_ARNS", member_admin.as_str()),
            ("MEMBER_ROLE_NAME", MEMBER_ROLE),
            ("MEMBER_EXTERNAL_ID", "hub-test"),
        ],
    );
    let clients = AwsClients::for_function(bed.sdk.clone(), &config.common, "root-access-revoker");
    let deps = root_access_revoker::deps::new(config, clients);
    let event = member_sample(
        "root-access-revoker/put-key-policy.json",
        key_id_of(&arn),
        MEMBER,
    );
    let response =
        root_access_revoker::function_handler(LambdaEvent::new(event, Context::default()), &deps)
            .await
            .unwrap();
    let shared::pipeline::Response::Outcome(Outcome::Key(outcome)) = response else {
        panic!("expected a key outcome, got {response:?}")
    };
    assert_eq!(outcome.status, Status::Corrected, "{outcome:?}");
    let after = Policy::parse(&policy_of(&bed, &arn).await).unwrap();
    let expected =
        Policy::parse(&json!({"Version": "2012-10-17", "Statement": [admins]}).to_string())
            .unwrap();
    assert!(
        after.semantically_equal(&expected),
        "{}",
        after.diff_against(&expected)
    );
    let notes = bed.notifications().await;
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        notes[0].message.contains("Account:     444455556666"),
        "{}",
        notes[0].message
    );
}

// alarm-notifier on a member account's alarm, forwarded to the hub: the alarm's KeyId names a
// key of that account, read through its member role, so the message carries the key's alias.
#[tokio::test]
async fn alarm_notifier_reads_a_member_accounts_alarm_key_through_its_member_role() {
    let bed = TestBed::start_organization().await;
    let member_kms = kms_in(&bed, MEMBER, REGION).await;
    let key = member_kms
        .create_key()
        .description("member payments key")
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap();
    member_kms
        .create_alias()
        .alias_name("alias/member-payments")
        .target_key_id(key.key_id())
        .send()
        .await
        .unwrap();
    let mut event = sample_event(
        "alarm-notifier/eventbridge-decrypt-volume-alarm.json",
        key.key_id(),
    );
    event["account"] = json!(MEMBER);
    event["resources"] = json!([format!(
        "arn:aws:cloudwatch:{REGION}:{MEMBER}:alarm:kms-decrypt-volume"
    )]);
    let config = integration_tests::notifier_config(
        &bed.topic_arn,
        &[
            ("MEMBER_ROLE_NAME", MEMBER_ROLE),
            ("MEMBER_EXTERNAL_ID", "hub-test"),
        ],
    );
    let deps = alarm_notifier::Deps {
        clients: AwsClients::for_function(bed.sdk.clone(), &config.common, "alarm-notifier"),
        config,
        own: alarm_notifier::Clients::new(),
    };
    alarm_notifier::function_handler(LambdaEvent::new(event, Context::default()), &deps)
        .await
        .unwrap();
    let notes = bed.notifications().await;
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_eq!(
        notes[0].subject,
        "[test] FIRING: KMS decrypt volume on alias/member-payments (eu-west-1)"
    );
}

// A member account whose role is missing (AWS answers AssumeRole with AccessDenied; moto would
// assume any role, so a proxy in front of it answers as AWS does): the sweep reports that
// account once, with the role and the fix, and still corrects the other accounts' keys; an
// event from that account is reported the same way and nothing else is called for it.
#[tokio::test]
async fn a_member_account_without_its_role_is_reported_and_the_others_are_still_swept() {
    let bed = TestBed::start_organization().await;
    let denied_role = format!("arn:aws:iam::{THIRD}:role/{MEMBER_ROLE}");
    let proxy = integration_tests::FaultProxy::denying_roles(&bed.moto, &[&denied_role]);
    let hub_key = drifted_key(&bed, integration_tests::ACCOUNT_ID, REGION).await;
    let member_key = drifted_key(&bed, MEMBER, REGION).await;
    let third_key = drifted_key(&bed, THIRD, REGION).await;
    let accounts = format!("{MEMBER},{THIRD}");
    let config = hub_config(&bed, &[("SWEEP_ACCOUNTS", &accounts)]);
    // The hub's own credentials, every request through the proxy.
    let sdk = proxy
        .sdk_config(std::time::Duration::from_secs(10))
        .await
        .to_builder()
        .credentials_provider(bed.sdk.credentials_provider().unwrap())
        .build();
    let deps = Deps {
        clients: AwsClients::for_function(sdk, &config.common, "policy-drift"),
        config,
        own: (),
    };

    let outcome = function_handler(
        LambdaEvent::new(
            sample_event("policy-drift/scheduled-sweep.json", ""),
            Context::default(),
        ),
        &deps,
    )
    .await
    .unwrap();
    let Outcome::Sweep(report) = outcome else {
        panic!("expected a sweep report, got {outcome:?}")
    };
    assert_eq!(report.corrected, 2, "{report:?}");
    let third = report
        .regions
        .iter()
        .find(|r| r.account == THIRD)
        .expect("the third account's part");
    assert_eq!(third.error.as_ref().unwrap().error_type, "AccessDenied");
    for key in [&hub_key, &member_key] {
        assert!(
            !policy_of(&bed, key).await.contains("999988887777"),
            "{key}"
        );
    }
    assert!(policy_of(&bed, &third_key).await.contains("999988887777"));

    let notes = bed.notifications().await;
    let denied: Vec<_> = notes
        .iter()
        .filter(|n| n.subject.contains("could not sweep"))
        .collect();
    assert_eq!(denied.len(), 1, "{notes:?}");
    assert_eq!(
        denied[0].subject,
        format!("[test] KMS guardrail could not sweep account {THIRD} in Region {REGION}")
    );
    assert!(
        denied[0].message.contains(&denied_role),
        "{}",
        denied[0].message
    );
    assert!(
        denied[0].message.contains("spoke.yaml"),
        "{}",
        denied[0].message
    );
    assert_eq!(
        notes.len(),
        3,
        "two corrections and the account not swept: {notes:?}"
    );

    // An event about the unreachable account's key: reported once, nothing written.
    let key_id = key_id_of(&third_key);
    let outcome = function_handler(
        LambdaEvent::new(member_event(key_id, THIRD), Context::default()),
        &deps,
    )
    .await
    .unwrap();
    let text = serde_json::to_string(&outcome).unwrap();
    assert!(text.contains("\"failed\""), "{text}");
    let notes = bed.notifications().await;
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        notes[0]
            .subject
            .contains(&format!("cannot reach account {THIRD}")),
        "{}",
        notes[0].subject
    );
    assert!(policy_of(&bed, &third_key).await.contains("999988887777"));
}
