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

/// A KMS client acting in `account`.
async fn kms_in(bed: &TestBed, account: &str) -> aws_sdk_kms::Client {
    aws_sdk_kms::Client::new(&bed.sdk_in(account).await)
}

/// The sample PutKeyPolicy record, made in `account` on `key_id`.
fn member_event(key_id: &str, account: &str) -> Value {
    let mut event = sample_event("policy-drift/put-key-policy.json", key_id);
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

#[tokio::test]
async fn an_event_from_a_member_account_is_corrected_through_its_member_role() {
    let bed = TestBed::start_organization().await;
    let member_kms = kms_in(&bed, MEMBER).await;
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
    let key = member_kms
        .create_key()
        .description("member app key")
        .tags(
            aws_sdk_kms::types::Tag::builder()
                .tag_key("guardrails:managed")
                .tag_value("true")
                .build()
                .unwrap(),
        )
        .policy(r#"{"Version":"2012-10-17","Statement":[{"Sid":"Open","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::444455556666:root"},"Action":"kms:*","Resource":"*"},{"Sid":"TemporaryDebugAccess","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::999988887777:root"},"Action":"kms:Decrypt","Resource":"*"}]}"#)
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap();
    assert!(key.arn().unwrap().contains(MEMBER), "{:?}", key.arn());

    let config = config(
        &bed.topic_arn,
        &[
            ("MODE", "enforce"),
            ("KMS_ADMIN_ROLE_ARNS", ""),
            ("MEMBER_ROLE_NAME", MEMBER_ROLE),
            ("MEMBER_EXTERNAL_ID", "hub-test"),
        ],
    );
    let clients = AwsClients::for_function(bed.sdk.clone(), &config.common, "policy-drift");
    let deps = Deps {
        config,
        clients,
        own: (),
    };
    let outcome = function_handler(
        LambdaEvent::new(member_event(key.key_id(), MEMBER), Context::default()),
        &deps,
    )
    .await
    .unwrap();
    let Outcome::Key(outcome) = outcome else {
        panic!("expected a key outcome, got {outcome:?}")
    };
    assert_eq!(outcome.status, Status::Corrected);

    // The member account's key now holds the member account's baseline.
    let policy = member_kms
        .get_key_policy()
        .key_id(key.key_id())
        .policy_name("default")
        .send()
        .await
        .unwrap()
        .policy
        .unwrap();
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
            .replace("member app key", key.key_id())
    );
    let hub_keys = bed.kms.list_keys().send().await.unwrap();
    assert!(hub_keys
        .keys()
        .iter()
        .all(|k| k.key_id() != Some(key.key_id())));
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
