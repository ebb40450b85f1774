use super::*;
use serde_json::json;

const KEY_ID: &str = "1234abcd-12ab-34cd-56ef-1234567890ab";

#[test]
fn every_key_reference_form_resolves() {
    let cases = [
        (KEY_ID, "eu-west-1", KEY_ID),
        (
            "mrk-1234abcd12ab34cd56ef1234567890ab",
            "eu-west-1",
            "mrk-1234abcd12ab34cd56ef1234567890ab",
        ),
        ("alias/app-data", "eu-west-1", "alias/app-data"),
        (
            "arn:aws:kms:us-east-2:111122223333:alias/app-data",
            "us-east-2",
            "arn:aws:kms:us-east-2:111122223333:alias/app-data",
        ),
        (
            "arn:aws:kms:ap-northeast-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            "ap-northeast-2",
            "arn:aws:kms:ap-northeast-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        ),
    ];
    for (reference, region, identifier) in cases {
        let loc = KeyLocator::parse(reference, &Region::parse("eu-west-1").unwrap()).unwrap();
        assert_eq!(loc.region, region, "{reference}");
        assert_eq!(loc.identifier, identifier);
    }
}

#[test]
fn a_huge_or_multi_line_key_reference_is_named_bounded_on_one_line() {
    let err = KeyLocator::parse(
        &format!("evil\nChanged by: me{}", "x".repeat(5000)),
        &Region::parse("eu-west-1").unwrap(),
    )
    .unwrap_err();
    assert!(!err.contains('\n'), "{err}");
    assert!(err.len() < 300, "{} characters", err.len());
}

#[test]
fn malformed_key_references_are_refused() {
    for bad in [
        "",
        "my-key",
        "alias/",
        "arn:aws:s3:::bucket",
        "arn:aws:kms:us-east-1:111122223333:key/nope",
        "1234",
    ] {
        assert!(
            KeyLocator::parse(bad, &Region::parse("eu-west-1").unwrap()).is_err(),
            "{bad}"
        );
    }
}

#[test]
fn non_events_are_clear_errors() {
    for (payload, expected) in [
        (serde_json::json!("hello"), "expected an EventBridge event"),
        (serde_json::json!({"foo": 1}), "not an EventBridge event"),
        (
            serde_json::json!({"detail-type": "Evil\nChanged by: me", "source": "x", "detail": {}}),
            "unsupported detail-type \"Evil\\nChanged by: me\"",
        ),
        (
            serde_json::json!({"detail-type": "EC2 Instance State-change Notification", "source": "aws.ec2", "detail": {}}),
            "unsupported detail-type",
        ),
        (
            serde_json::json!({"detail-type": "AWS API Call via CloudTrail", "source": "aws.kms", "detail": {"eventName": 5}}),
            "CloudTrail record in detail is malformed",
        ),
    ] {
        let err = parse_trigger(&payload).unwrap_err();
        assert_eq!(err.error_type(), "InvalidEvent");
        assert!(err.to_string().contains(expected), "{err}");
    }
}

#[test]
fn a_record_without_a_key_says_so() {
    let payload = serde_json::json!({
        "detail-type": "AWS API Call via CloudTrail", "source": "aws.kms",
        "detail": {"eventSource": "kms.amazonaws.com", "eventName": "PutKeyPolicy", "eventID": "e-1",
                   "awsRegion": "eu-west-1", "requestParameters": {"policyName": "default"}}
    });
    let Trigger::CloudTrail(event) = parse_trigger(&payload).unwrap() else {
        panic!("expected a CloudTrail trigger");
    };
    let err = event
        .detail
        .key_locator(&Region::parse("eu-west-1").unwrap())
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("PutKeyPolicy event e-1 names no key"),
        "{err}"
    );
}

fn sample_files(folder: &str) -> Vec<(String, String)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../events")
        .join(folder);
    let mut files: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            (
                path.display().to_string(),
                std::fs::read_to_string(&path).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

#[test]
fn every_sample_event_parses_and_names_its_key() {
    let samples = sample_files("policy-drift");
    assert!(
        samples.len() >= 10,
        "expected the policy-drift samples, found {}",
        samples.len()
    );
    for (path, text) in samples {
        let payload: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
        match parse_trigger(&payload).unwrap_or_else(|e| panic!("{path}: {e}")) {
            Trigger::CloudTrail(event) => {
                let locator = event
                    .detail
                    .key_locator(&Region::parse("us-east-1").unwrap())
                    .unwrap_or_else(|e| panic!("{path}: {e}"));
                assert_eq!(locator.region, "eu-west-1", "{path}");
                assert!(locator.identifier.contains(KEY_ID), "{path}: {locator:?}");
                assert!(event.detail.event_id.is_some(), "{path}");
            }
            Trigger::Scheduled { id, .. } => assert!(id.is_some(), "{path}"),
            Trigger::Alarm(_) => panic!("{path}: a policy-drift sample parsed as an alarm"),
            Trigger::Command(command) => assert!(command.key().contains(KEY_ID), "{path}"),
            Trigger::SweepWork(batch) => {
                assert!(!batch.is_empty(), "{path}");
                for delivery in batch {
                    let item = delivery.item.unwrap_or_else(|e| panic!("{path}: {e}"));
                    assert_eq!(item.account, "111122223333", "{path}");
                }
            }
        }
    }
}

#[test]
fn operator_commands_parse_and_a_malformed_one_says_what_to_send() {
    let rollback =
        json!({"command": "rollback", "key": "alias/app", "version": 2, "requested_by": "jane"});
    let Ok(Trigger::Command(command)) = parse_trigger(&rollback) else {
        panic!("not a command")
    };
    assert_eq!(
        command,
        OperatorCommand::Rollback {
            key: "alias/app".into(),
            version: 2,
            requested_by: Some("jane".into())
        }
    );
    for bad in [
        json!({"command": "rollback", "key": "alias/app"}),
        json!({"command": "delete", "key": "alias/app"}),
        json!({"command": "history", "key": "alias/app", "extra": 1}),
    ] {
        let err = parse_trigger(&bad).unwrap_err();
        assert_eq!(err.error_type(), "InvalidEvent");
        assert!(
            err.to_string().contains("\"command\": \"rollback\""),
            "{err}"
        );
    }
}

#[test]
fn every_invalid_sample_is_a_clear_error() {
    for (path, text) in sample_files("invalid") {
        let result = serde_json::from_str::<Value>(&text)
            .map_err(|e| GuardrailError::InvalidEvent(format!("not JSON: {e}")))
            .and_then(|payload| parse_trigger(&payload))
            .and_then(|trigger| match trigger {
                Trigger::CloudTrail(event) => event
                    .detail
                    .key_locator(&Region::parse("eu-west-1").unwrap())
                    .map(|_| ()),
                Trigger::Scheduled { .. }
                | Trigger::Alarm(_)
                | Trigger::Command(_)
                | Trigger::SweepWork(_) => Ok(()),
            });
        let err = result.expect_err(&path);
        assert_eq!(err.error_type(), "InvalidEvent", "{path}: {err}");
    }
}

#[test]
fn every_sample_of_every_function_parses_to_its_trigger() {
    let events = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../events");
    let mut folders: Vec<String> = std::fs::read_dir(&events)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|name| name != "invalid")
        .collect();
    folders.sort();
    assert_eq!(
        folders,
        [
            "alarm-notifier",
            "policy-drift",
            "replica-grant-validator",
            "root-access-revoker"
        ]
    );
    for folder in folders {
        for (path, text) in sample_files(&folder) {
            let payload: Value = serde_json::from_str(&text).unwrap();
            let trigger = parse_trigger(&payload).unwrap_or_else(|e| panic!("{path}: {e}"));
            let expected = matches!(
                (&trigger, folder.as_str()),
                (Trigger::Alarm(_), "alarm-notifier")
                    | (Trigger::Command(_) | Trigger::SweepWork(_), "policy-drift")
                    | (
                        Trigger::CloudTrail(_) | Trigger::Scheduled { .. },
                        "policy-drift" | "replica-grant-validator" | "root-access-revoker"
                    )
            );
            assert!(expected, "{path} parsed as {}", trigger.describe());
        }
    }
}
