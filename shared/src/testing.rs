//! What the functions' own tests share: the variables every configuration needs, a key as
//! DescribeKey shows it, and the KMS answers every mocked handler test starts from. Built only
//! with the `test-support` feature, which only dev-dependencies turn on.

use aws_sdk_kms::operation::describe_key::DescribeKeyOutput;
use aws_sdk_kms::operation::list_aliases::ListAliasesOutput;
use aws_sdk_kms::operation::list_resource_tags::ListResourceTagsOutput;
use aws_sdk_kms::types::{KeyManagerType, KeyMetadata, KeySpec, KeyState, OriginType, Tag};
use aws_sdk_kms::Client as KmsClient;
use aws_smithy_mocks::{mock, Rule};

use crate::aws::kms::KeyInfo;
use crate::base::arn::Arn;
use crate::base::region::Region;

pub const ACCOUNT_ID: &str = "111122223333";
pub const REGION: &str = "eu-west-1";
pub const TOPIC_ARN: &str = "arn:aws:sns:eu-west-1:111122223333:kms-guardrails";
pub const STATE_TABLE: &str = "kms-guardrails-state";
pub const KEY_ID: &str = "1234abcd-12ab-34cd-56ef-1234567890ab";
pub const KEY_ARN: &str =
    "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

/// A variable lookup with what every function requires (account, Region, topic, its own role
/// `self_role`), and `extra` on top, replacing any of those.
pub fn env(self_role: &str, extra: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let mut pairs: Vec<(String, String)> = [
        ("ACCOUNT_ID", ACCOUNT_ID),
        ("AWS_REGION", REGION),
        ("NOTIFY_TOPIC_ARN", TOPIC_ARN),
        ("SELF_ROLE_ARN", self_role),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (name, value) in extra {
        pairs.retain(|(k, _)| k != name);
        pairs.push((name.to_string(), value.to_string()));
    }
    // Enforce mode needs the state table; mocked tests get one from [`state_table`].
    let enforce = pairs.iter().any(|(k, v)| k == "MODE" && v == "enforce");
    if enforce && !pairs.iter().any(|(k, _)| k == "STATE_TABLE") {
        pairs.push(("STATE_TABLE".to_string(), STATE_TABLE.to_string()));
    }
    move |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }
}

/// policy-drift speaking in enforce mode, labelled `prod`: the voice the message tests read.
pub fn speaker() -> crate::notify::Speaker<'static> {
    crate::notify::Speaker {
        function: "policy-drift",
        mode: crate::config::Mode::Enforce,
        environment: Some("prod"),
    }
}

/// An enabled, customer-managed, symmetric single-Region key at `arn`.
pub fn key(arn: &str) -> KeyInfo {
    let arn = Arn::parse(arn).expect("a key ARN");
    KeyInfo {
        key_id: arn.resource().trim_start_matches("key/").to_string(),
        region: Region::parse(arn.region()).expect("a key ARN names its Region"),
        account: arn.account().to_string(),
        arn,
        state: KeyState::Enabled,
        customer_managed: true,
        rotatable: true,
        symmetric: true,
        multi_region: false,
        primary_arn: None,
        replica_arns: Vec::new(),
        description: String::new(),
        deletion_date: None,
    }
}

/// DescribeKey answering for [`KEY_ARN`]: enabled, customer managed, symmetric.
pub fn describe_key_ok() -> Rule {
    mock!(KmsClient::describe_key).then_output(|| {
        DescribeKeyOutput::builder()
            .key_metadata(
                KeyMetadata::builder()
                    .key_id(KEY_ID)
                    .arn(KEY_ARN)
                    .aws_account_id(ACCOUNT_ID)
                    .key_state(KeyState::Enabled)
                    .key_manager(KeyManagerType::Customer)
                    .key_spec(KeySpec::SymmetricDefault)
                    .origin(OriginType::AwsKms)
                    .build()
                    .expect("key metadata"),
            )
            .build()
    })
}

/// ListResourceTags showing the default managed tag.
pub fn managed_tag() -> Rule {
    mock!(KmsClient::list_resource_tags).then_output(|| {
        ListResourceTagsOutput::builder()
            .tags(
                Tag::builder()
                    .tag_key("guardrails:managed")
                    .tag_value("true")
                    .build()
                    .expect("a tag"),
            )
            .build()
    })
}

/// ListAliases with no alias: messages then name the key by its id.
pub fn no_aliases() -> Rule {
    mock!(KmsClient::list_aliases).then_output(|| ListAliasesOutput::builder().build())
}

/// SNS Publish answering only a message whose subject starts with `subject` and whose body
/// contains `body`: a test that expects one message checks both with `num_calls`.
pub fn publish_where(subject: &'static str, body: &'static str) -> Rule {
    mock!(aws_sdk_sns::Client::publish)
        .match_requests(move |r| {
            r.subject().is_some_and(|s| s.starts_with(subject))
                && r.message().is_some_and(|m| m.contains(body))
        })
        .then_output(|| {
            aws_sdk_sns::operation::publish::PublishOutput::builder()
                .message_id("m")
                .build()
        })
}

/// A Region code written in a test, which must be valid.
pub fn region(code: &str) -> Region {
    Region::parse(code).expect("a Region code")
}

/// A state table that takes every record and holds none: for mocked tests about other things
/// (the table's own behaviour is tested against the emulator's DynamoDB).
pub fn state_table() -> aws_sdk_dynamodb::Client {
    use aws_sdk_dynamodb::operation::delete_item::DeleteItemOutput;
    use aws_sdk_dynamodb::operation::put_item::PutItemOutput;
    use aws_sdk_dynamodb::operation::query::QueryOutput;
    use aws_sdk_dynamodb::Client;
    use aws_smithy_mocks::{mock_client, RuleMode};
    let put = mock!(Client::put_item)
        .sequence()
        .output(|| PutItemOutput::builder().build())
        .repeatedly()
        .build();
    let delete = mock!(Client::delete_item)
        .sequence()
        .output(|| DeleteItemOutput::builder().build())
        .repeatedly()
        .build();
    let query = mock!(Client::query)
        .sequence()
        .output(|| QueryOutput::builder().build())
        .repeatedly()
        .build();
    mock_client!(
        aws_sdk_dynamodb,
        RuleMode::MatchAny,
        &[&put, &delete, &query]
    )
}
