//! The functions' metrics as CloudWatch reads them: each function binary, run as Lambda runs
//! it against moto, prints embedded-metric-format lines on stdout among its logs; CloudWatch
//! Logs turns each into metrics in the namespace, with the dimensions, the line declares.

use integration_tests::runtime_api::{function_binaries, invoke};
use integration_tests::{
    TestBed, ACCOUNT_ID, ADMIN_ROLE_ARN, DRIFTED_POLICY, REGION, SELF_ROLE_ARN,
};
use serde_json::Value;

/// The embedded-metric-format documents among `stdout`'s lines (the CloudWatch Logs
/// specification: a JSON object whose `_aws.CloudWatchMetrics` declares them).
fn emf_lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|doc| doc["_aws"]["CloudWatchMetrics"].is_array())
        .collect()
}

/// The one metric document of a function's invocation, checked against the specification:
/// a timestamp, the namespace, the `Function` dimension with its value, and each metric
/// declared with its unit and present as a number at the top level.
fn metrics_of(function: &str, stdout: &str) -> Value {
    let docs = emf_lines(stdout);
    assert_eq!(
        docs.len(),
        1,
        "{function}: one metric line per invocation:\n{stdout}"
    );
    let doc = docs.into_iter().next().unwrap();
    eprintln!("{function}: {doc}");
    assert!(doc["_aws"]["Timestamp"].as_u64().is_some(), "{doc}");
    let directive = &doc["_aws"]["CloudWatchMetrics"][0];
    assert_eq!(directive["Namespace"], "KmsGuardrails", "{doc}");
    assert_eq!(
        directive["Dimensions"],
        serde_json::json!([["Function"]]),
        "{doc}"
    );
    assert_eq!(doc["Function"], function, "{doc}");
    let declared: Vec<(&str, &str)> = directive["Metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["Name"].as_str().unwrap(),
                m["Unit"].as_str().unwrap_or("None"),
            )
        })
        .collect();
    for name in integration_tests::METRICS_CONTRACT {
        if name == "SweepDuration" && doc.get(name).is_none() {
            continue;
        }
        let unit = if name == "SweepDuration" {
            "Milliseconds"
        } else {
            "Count"
        };
        assert!(
            declared.contains(&(name, unit)),
            "{function}: {name} ({unit}) not declared: {doc}"
        );
        let value = &doc[name];
        let number = value.as_f64().or_else(|| value[0].as_f64());
        assert!(number.is_some(), "{function}: {name} has no value: {doc}");
    }
    doc
}

fn value(doc: &Value, name: &str) -> f64 {
    let v = &doc[name];
    v.as_f64().or_else(|| v[0].as_f64()).unwrap()
}

#[tokio::test]
async fn every_function_prints_its_metrics_with_the_function_dimension() {
    let bin = function_binaries();
    let bed = TestBed::start().await;
    let drifted = bed
        .create_key(
            "drifted",
            &[("guardrails:managed", "true")],
            Some(DRIFTED_POLICY),
        )
        .await
        .key_id;
    let sweep = std::fs::read_to_string(
        integration_tests::workspace_root().join("events/policy-drift/scheduled-sweep.json"),
    )
    .unwrap();
    let common: Vec<(&str, &str)> = vec![
        ("AWS_ENDPOINT_URL", &bed.moto.endpoint),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_REGION", REGION),
        ("ACCOUNT_ID", ACCOUNT_ID),
        ("NOTIFY_TOPIC_ARN", &bed.topic_arn),
        ("SELF_ROLE_ARN", SELF_ROLE_ARN),
        ("KMS_ADMIN_ROLE_ARNS", ADMIN_ROLE_ARN),
        ("REPLICATION_REGIONS", "us-west-2"),
        ("STATE_TABLE", integration_tests::STATE_TABLE),
    ];

    // policy-drift corrects the drifted key on its sweep: the counts say so.
    let mut env = common.clone();
    env.push(("MODE", "enforce"));
    let run = invoke(&bin.join("policy-drift"), &sweep, &env);
    let doc = metrics_of("policy-drift", &run.stdout);
    assert_eq!(value(&doc, "KeysAudited"), 1.0, "{doc}\n{}", run.response);
    assert_eq!(value(&doc, "Findings"), 1.0, "{doc}");
    assert_eq!(value(&doc, "Corrections"), 1.0, "{doc}");
    assert_eq!(value(&doc, "Failed"), 0.0, "{doc}");
    assert!(
        value(&doc, "SweepDuration") > 0.0,
        "a sweep reports its duration: {doc}"
    );
    assert!(
        bed.key_policy(&drifted).await != DRIFTED_POLICY,
        "the sweep corrected the key"
    );

    // The others, on their own sweeps: the same namespace, each its own dimension value.
    for function in [
        "root-access-revoker",
        "alarm-notifier",
        "replica-grant-validator",
    ] {
        let run = invoke(&bin.join(function), &sweep, &common);
        let doc = metrics_of(function, &run.stdout);
        assert!(doc.get("SweepDuration").is_some(), "{function}: {doc}");
    }
}
