//! The command line against moto, as an operator runs it: the real binary, the default
//! credential chain from the environment, `AWS_ENDPOINT_URL` pointing at a recording proxy in
//! front of moto, so every call the tool makes is counted.

use std::collections::BTreeSet;
use std::process::{Command, Output};
use std::time::Duration;

use integration_tests::{FaultPlan, FaultProxy, TestBed, ADMIN_ROLE_ARN, DRIFTED_POLICY};
use serde_json::Value;

const MANAGED: (&str, &str) = ("guardrails:managed", "true");

/// The reads an audit or explanation may make; anything else recorded is a write.
const READS: &[&str] = &[
    "GetCallerIdentity",
    "GetResources",
    "DescribeKey",
    "GetKeyPolicy",
    "ListGrants",
    "ListAliases",
    "GetKeyRotationStatus",
    "ListResourceTags",
    "ListKeys",
    "GetRole",
    "DescribeAlarms",
    "ListTagsForResource",
];

/// A proxy that injects nothing and records every request.
fn recorder(bed: &TestBed) -> FaultProxy {
    FaultProxy::start(
        &bed.moto,
        FaultPlan {
            rate: 0.0,
            seed: 1,
            slow: Duration::from_secs(1),
        },
    )
}

/// Runs the binary with only the environment an operator would have.
fn kms_guardrails(proxy: &FaultProxy, args: &[&str], settings: &[(&str, &str)]) -> Output {
    let home =
        std::env::temp_dir().join(format!("kms-guardrails-cli-home-{}", proxy.endpoint.len()));
    std::fs::create_dir_all(&home).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_kms-guardrails"));
    command
        .args(args)
        .env_clear()
        .env("HOME", &home)
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_ENDPOINT_URL", &proxy.endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", integration_tests::REGION);
    for (name, value) in settings {
        command.env(name, value);
    }
    command.output().expect("run kms-guardrails")
}

fn operations(proxy: &FaultProxy) -> BTreeSet<String> {
    proxy
        .requests()
        .iter()
        .filter_map(|r| r["operation"].as_str().map(str::to_string))
        .collect()
}

fn assert_only_reads(proxy: &FaultProxy) {
    let made = operations(proxy);
    let writes: Vec<&String> = made
        .iter()
        .filter(|op| !READS.contains(&op.as_str()))
        .collect();
    assert!(
        writes.is_empty(),
        "calls other than reads: {writes:?} (all calls: {made:?})"
    );
    assert!(
        made.contains("GetKeyPolicy"),
        "the tool read no key policy: {made:?}"
    );
}

const SETTINGS: &[(&str, &str)] = &[
    ("KMS_ADMIN_ROLE_ARNS", ADMIN_ROLE_ARN),
    ("ENVIRONMENT", "test"),
];

#[tokio::test]
async fn audit_reports_every_managed_key_in_trouble_and_writes_nothing() {
    let bed = TestBed::start().await;
    let drifted = bed
        .create_key("drifted", &[MANAGED], Some(DRIFTED_POLICY))
        .await
        .key_id;
    let disabled = bed.create_key("disabled", &[MANAGED], None).await.key_id;
    bed.kms
        .disable_key()
        .key_id(&disabled)
        .send()
        .await
        .unwrap();
    let unmanaged = bed
        .create_key("not ours", &[], Some(DRIFTED_POLICY))
        .await
        .key_id;
    let policies_before = (
        bed.key_policy(&drifted).await,
        bed.key_policy(&disabled).await,
    );
    let proxy = recorder(&bed);

    let table = kms_guardrails(&proxy, &["audit", "--function", "policy-drift"], SETTINGS);
    let stdout = String::from_utf8_lossy(&table.stdout);
    eprintln!("{stdout}{}", String::from_utf8_lossy(&table.stderr));
    assert_eq!(table.status.code(), Some(1), "findings exit with 1");
    assert!(
        stdout.contains(&drifted) && stdout.contains(&disabled),
        "{stdout}"
    );
    assert!(
        !stdout.contains(&unmanaged),
        "an unmanaged key is not audited: {stdout}"
    );
    assert!(
        stdout.contains("report mode: nothing was written"),
        "{stdout}"
    );

    let json = kms_guardrails(
        &proxy,
        &["audit", "--json", "--function", "policy-drift"],
        SETTINGS,
    );
    assert_eq!(json.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&json.stdout).expect("JSON on stdout");
    assert_eq!(report["account"], integration_tests::ACCOUNT_ID);
    let part = &report["parts"][0];
    assert_eq!(part["function"], "policy-drift");
    assert_eq!(part["result"], "audited");
    assert_eq!(part["counts"]["KeysAudited"], 2, "{part}");
    assert_eq!(part["counts"]["Findings"], 2, "{part}");
    assert_eq!(part["counts"]["Corrections"], 0, "{part}");
    let keys: BTreeSet<&str> = report["found"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["key_id"].as_str())
        .collect();
    assert_eq!(keys, BTreeSet::from([drifted.as_str(), disabled.as_str()]));
    for found in report["found"].as_array().unwrap() {
        assert_eq!(found["status"], "reported", "{found}");
        let message = found["message"].as_str().unwrap();
        assert!(
            message.contains("Report mode: nothing was changed"),
            "{found}"
        );
        assert!(
            message.contains("the key policy differs from the baseline"),
            "{found}"
        );
        if found["key_id"] == disabled.as_str() {
            assert!(message.contains("- the key is disabled"), "{found}");
        }
    }

    // Nothing changed on the keys, nothing published, and every call was a read.
    assert_eq!(
        (
            bed.key_policy(&drifted).await,
            bed.key_policy(&disabled).await
        ),
        policies_before
    );
    assert_eq!(bed.key_state(&disabled).await, "Disabled");
    assert!(
        bed.notifications().await.is_empty(),
        "the audit published a message"
    );
    assert_only_reads(&proxy);
}

#[tokio::test]
async fn audit_of_a_clean_region_exits_zero_and_every_guardrail_says_how_it_went() {
    let bed = TestBed::start().await;
    let proxy = recorder(&bed);
    let out = kms_guardrails(
        &proxy,
        &["audit", "--json", "--region", "us-west-2"],
        SETTINGS,
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    let parts = report["parts"].as_array().unwrap();
    let names: Vec<&str> = parts
        .iter()
        .map(|p| p["function"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "policy-drift",
            "root-access-revoker",
            "alarm-notifier",
            "replica-grant-validator"
        ]
    );
    for part in parts {
        assert_eq!(part["region"], "us-west-2");
    }
    assert_eq!(parts[0]["result"], "audited", "{}", parts[0]);
    // ROOT_ACCESS is on by default: the revoker is off, and says so.
    assert_eq!(parts[1]["result"], "skipped", "{}", parts[1]);
    assert!(
        parts[1]["reason"]
            .as_str()
            .unwrap()
            .contains("ROOT_ACCESS is on"),
        "{}",
        parts[1]
    );
    // replica-grant-validator has nothing to compare replicas with until its settings are set.
    let validator = &parts[3];
    assert_eq!(validator["result"], "not_configured", "{validator}");
    assert!(
        validator["problems"]
            .as_str()
            .unwrap()
            .contains("REPLICATION_REGIONS is required"),
        "{validator}"
    );
    assert!(report["found"].as_array().unwrap().is_empty(), "{report}");
    assert_eq!(out.status.code(), Some(0), "{report}");
    assert!(!operations(&proxy)
        .iter()
        .any(|op| !READS.contains(&op.as_str())));
}

#[tokio::test]
async fn explain_shows_who_may_do_what_and_flags_other_accounts_and_everyone() {
    let bed = TestBed::start().await;
    let policy = r#"{
      "Version": "2012-10-17",
      "Statement": [
        {"Sid": "EnableRootAccess", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": "kms:*", "Resource": "*"},
        {"Sid": "Admins", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:role/kms-admin"}, "Action": ["kms:Describe*", "kms:PutKeyPolicy"], "Resource": "*"},
        {"Sid": "TemporaryDebugAccess", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::444455556666:root"}, "Action": ["kms:Decrypt", "kms:DescribeKey"], "Resource": "*"},
        {"Sid": "AnyoneInTheAccount", "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "kms:Encrypt", "Resource": "*", "Condition": {"StringEquals": {"kms:CallerAccount": "111122223333"}}},
        {"Sid": "NoDeletion", "Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "kms:ScheduleKeyDeletion", "Resource": "*"}
      ]
    }"#;
    let key = bed
        .create_key("shared", &[MANAGED], Some(policy))
        .await
        .key_id;
    bed.create_alias("alias/shared-data", &key).await;
    bed.kms
        .create_grant()
        .key_id(&key)
        .grantee_principal("arn:aws:iam::777788889999:role/replication")
        .operations(aws_sdk_kms::types::GrantOperation::Encrypt)
        .name("replication")
        .send()
        .await
        .unwrap();
    let proxy = recorder(&bed);

    let out = kms_guardrails(&proxy, &["explain", "alias/shared-data", "--json"], &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let e: Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(e["key_id"], key.as_str());
    assert_eq!(e["aliases"], serde_json::json!(["alias/shared-data"]));
    let who = |principal: &str| {
        e["principals"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["principal"] == principal)
            .unwrap_or_else(|| panic!("{principal} not explained: {e}"))
            .clone()
    };
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect()
    };
    let root = who("arn:aws:iam::111122223333:root");
    assert_eq!(root["cross_account"], false);
    assert!(strings(&root["through_iam"]).contains(&"kms:PutKeyPolicy".to_string()));
    // The Deny on everyone takes ScheduleKeyDeletion from the root too.
    assert!(
        strings(&root["denied"]).contains(&"kms:ScheduleKeyDeletion".to_string()),
        "{root}"
    );
    let admin = who("arn:aws:iam::111122223333:role/kms-admin");
    assert_eq!(
        strings(&admin["allowed"]),
        ["kms:DescribeKey", "kms:PutKeyPolicy"],
        "an exact role ARN is allowed by the policy alone: {admin}"
    );
    let other = who("arn:aws:iam::444455556666:root");
    assert_eq!(other["cross_account"], true);
    assert_eq!(
        strings(&other["through_iam"]),
        ["kms:Decrypt", "kms:DescribeKey"]
    );
    let everyone = who("*");
    assert_eq!(everyone["public"], true);
    assert_eq!(
        everyone["conditional"][0]["actions"],
        serde_json::json!(["kms:Encrypt"])
    );
    assert_eq!(
        everyone["conditional"][0]["conditions"],
        serde_json::json!(["StringEquals kms:CallerAccount = 111122223333"])
    );
    let grant = &e["grants"][0];
    assert_eq!(
        grant["grantee"],
        "arn:aws:iam::777788889999:role/replication"
    );
    assert_eq!(grant["cross_account"], true);
    assert_eq!(
        e["cross_account"], 2,
        "the other account's root and the grant"
    );
    assert_eq!(e["public"], 1);

    let table = kms_guardrails(&proxy, &["explain", &key], &[]);
    let text = String::from_utf8_lossy(&table.stdout);
    eprintln!("{text}");
    assert!(
        text.contains("arn:aws:iam::444455556666:root  [CROSS-ACCOUNT]"),
        "{text}"
    );
    assert!(
        text.contains("*  [PUBLIC: anyone, in any account]"),
        "{text}"
    );
    assert!(
        text.contains("only if StringEquals kms:CallerAccount = 111122223333"),
        "{text}"
    );
    assert!(text.contains("2 cross-account, 1 public."), "{text}");
    assert_only_reads(&proxy);
}

#[test]
fn every_command_has_help() {
    for command in [
        &["--help"][..],
        &["audit", "--help"],
        &["explain", "--help"],
        &["history", "--help"],
        &["rollback", "--help"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_kms-guardrails"))
            .args(command)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{command:?}");
        assert!(
            text.contains("Usage: kms-guardrails"),
            "{command:?}: {text}"
        );
    }
    let bad = Command::new(env!("CARGO_BIN_EXE_kms-guardrails"))
        .args(["audit", "--function", "nope"])
        .output()
        .unwrap();
    assert_eq!(
        bad.status.code(),
        Some(2),
        "a usage error is clap's exit status 2"
    );
    assert!(String::from_utf8_lossy(&bad.stderr).contains("possible values: policy-drift"));
}

#[test]
fn a_profile_that_is_not_defined_is_named_in_the_error() {
    let home = std::env::temp_dir().join("kms-guardrails-cli-no-profile");
    std::fs::create_dir_all(&home).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_kms-guardrails"))
        .args(["audit", "--profile", "nope"])
        .env_clear()
        .env("HOME", &home)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("profile \"nope\" is not defined") && stderr.contains("--region"),
        "{stderr}"
    );
}

const DEPLOYER: &str = "arn:aws:iam::111122223333:role/terraform-ci";
const ROOT_ONLY: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}]}"#;
const WITH_APP: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"},{"Sid":"App","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/app"},"Action":"kms:Decrypt","Resource":"*"}]}"#;

#[tokio::test]
async fn history_reads_a_keys_versions_and_rollback_restores_one() {
    use lambda_runtime::{Context, LambdaEvent};
    let bed = TestBed::start().await;
    let key = bed
        .create_key("app key", &[MANAGED], Some(ROOT_ONLY))
        .await
        .key_id;
    bed.kms
        .enable_key_rotation()
        .key_id(&key)
        .send()
        .await
        .unwrap();
    // policy-drift as deployed (per-key desired state) records version 1 on its sweep and the
    // deployer's change as version 2.
    let config = integration_tests::config(
        &bed.topic_arn,
        &[
            ("MODE", "enforce"),
            ("DESIRED_STATE", "per-key"),
            ("APPROVED_DEPLOYERS", DEPLOYER),
        ],
    );
    let deps = policy_drift::Deps {
        config,
        clients: bed.clients(),
        own: (),
    };
    let run = |event: Value| {
        policy_drift::function_handler(LambdaEvent::new(event, Context::default()), &deps)
    };
    run(integration_tests::sample_event(
        "policy-drift/scheduled-sweep.json",
        "unused",
    ))
    .await
    .unwrap();
    bed.put_key_policy(&key, WITH_APP).await;
    let mut change = integration_tests::sample_event("policy-drift/put-key-policy.json", &key);
    change["detail"]["userIdentity"]["sessionContext"]["sessionIssuer"]["arn"] = DEPLOYER.into();
    change["detail"]["userIdentity"]["arn"] =
        "arn:aws:sts::111122223333:assumed-role/terraform-ci/session".into();
    change["detail"]["requestParameters"] = serde_json::json!({"keyId": key});
    run(change).await.unwrap();
    bed.notifications().await;

    let settings: &[(&str, &str)] = &[
        ("STATE_TABLE", integration_tests::STATE_TABLE),
        ("KMS_ADMIN_ROLE_ARNS", ADMIN_ROLE_ARN),
        ("SERVICE_PRINCIPALS", "logs.eu-west-1.amazonaws.com"),
        ("APPROVED_DEPLOYERS", DEPLOYER),
        ("SELF_ROLE_ARN", integration_tests::SELF_ROLE_ARN),
        ("NOTIFY_TOPIC_ARN", &bed.topic_arn),
        ("ENVIRONMENT", "test"),
    ];
    let proxy = recorder(&bed);
    let out = kms_guardrails(&proxy, &["history", &key, "--json"], settings);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let history: Value = serde_json::from_slice(&out.stdout).unwrap();
    let versions = history["versions"].as_array().unwrap();
    let numbers: Vec<u64> = versions
        .iter()
        .map(|v| v["version"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers.len(), 2, "{history}");
    assert_eq!(versions[0]["reason"], "enrolled from the key's state");
    assert_eq!(versions[1]["reason"], "approved change");
    assert_eq!(
        versions[1]["approved_by"],
        "arn:aws:sts::111122223333:assumed-role/terraform-ci/session"
    );
    let table = kms_guardrails(&proxy, &["history", &key], settings);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.starts_with("Desired state of arn:aws:kms:eu-west-1:111122223333:key/"),
        "{text}"
    );
    assert!(text.contains("approved change"), "{text}");
    assert!(text.contains("VERSION  APPROVED AT"), "{text}");
    // history reads only: the state table and nothing else.
    let made = operations(&proxy);
    assert!(
        made.iter().all(
            |op| ["GetCallerIdentity", "Query", "GetItem", "DescribeKey"].contains(&op.as_str())
        ),
        "{made:?}"
    );

    let out = kms_guardrails(&proxy, &["rollback", &key, "1"], settings);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("version 1 recorded again as version 3"),
        "{text}"
    );
    let policy = shared::policy::model::Policy::parse(&bed.key_policy(&key).await).unwrap();
    assert!(
        policy.semantically_equal(&shared::policy::model::Policy::parse(ROOT_ONLY).unwrap()),
        "the key holds version 1 again"
    );
    let sent = bed.notifications().await;
    assert_eq!(sent.len(), 1, "the rollback is announced once");
    assert!(sent[0].message.contains("rollback"), "{}", sent[0].message);
}

#[tokio::test]
async fn audit_with_per_key_desired_state_compares_each_key_with_its_own_record_and_records_nothing(
) {
    use lambda_runtime::{Context, LambdaEvent};
    let bed = TestBed::start().await;
    let kept = bed
        .create_key("kept as recorded", &[MANAGED], Some(ROOT_ONLY))
        .await
        .key_id;
    let changed = bed
        .create_key("changed by hand", &[MANAGED], Some(ROOT_ONLY))
        .await
        .key_id;
    // policy-drift as deployed (per-key desired state) enrols both keys on its sweep.
    let config = integration_tests::config(
        &bed.topic_arn,
        &[
            ("MODE", "enforce"),
            ("DESIRED_STATE", "per-key"),
            ("APPROVED_DEPLOYERS", DEPLOYER),
        ],
    );
    let deps = policy_drift::Deps {
        config,
        clients: bed.clients(),
        own: (),
    };
    policy_drift::function_handler(
        LambdaEvent::new(
            integration_tests::sample_event("policy-drift/scheduled-sweep.json", "unused"),
            Context::default(),
        ),
        &deps,
    )
    .await
    .unwrap();
    // Then someone who is not a deployer changes one key (its event never arrived), and a key
    // is made that no sweep has seen yet.
    bed.put_key_policy(&changed, WITH_APP).await;
    let unrecorded = bed
        .create_key("not yet enrolled", &[MANAGED], Some(ROOT_ONLY))
        .await
        .key_id;
    bed.notifications().await;
    let table_before = bed.state_items().await;

    let per_key: &[(&str, &str)] = &[
        ("DESIRED_STATE", "per-key"),
        ("STATE_TABLE", integration_tests::STATE_TABLE),
        ("APPROVED_DEPLOYERS", DEPLOYER),
        ("KMS_ADMIN_ROLE_ARNS", ADMIN_ROLE_ARN),
        ("SELF_ROLE_ARN", integration_tests::SELF_ROLE_ARN),
        ("ENVIRONMENT", "test"),
    ];
    let proxy = recorder(&bed);
    let out = kms_guardrails(
        &proxy,
        &["audit", "--json", "--function", "policy-drift"],
        per_key,
    );
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "the changed key is a finding");
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(report["parts"][0]["counts"]["KeysAudited"], 3, "{report}");
    let found = report["found"].as_array().unwrap();
    let about = |key: &str| -> Vec<&Value> {
        found
            .iter()
            .filter(|f| f["key_id"].as_str() == Some(key))
            .collect()
    };
    // The key as recorded is not drift, though its policy is not the baseline.
    assert!(about(&kept).is_empty(), "{report}");
    let drift = about(&changed);
    assert_eq!(drift.len(), 1, "{report}");
    assert_eq!(drift[0]["severity"], "high", "{report}");
    let message = drift[0]["message"].as_str().unwrap();
    assert!(
        message.contains("the key policy differs from its recorded desired state (version 1)"),
        "{message}"
    );
    // The key without a record is shown as the deployed function would enrol it: information.
    let enrolment = about(&unrecorded);
    assert_eq!(enrolment.len(), 1, "{report}");
    assert_eq!(enrolment[0]["severity"], "info", "{report}");
    assert!(
        enrolment[0]["message"]
            .as_str()
            .unwrap()
            .contains("is recorded as version 1"),
        "{report}"
    );

    // Nothing was recorded or remembered: the state table is as it was, and every call was a
    // read (the table's included).
    assert_eq!(bed.state_items().await, table_before);
    let made = operations(&proxy);
    let writes: Vec<&String> = made
        .iter()
        .filter(|op| !READS.contains(&op.as_str()) && op.as_str() != "Query")
        .collect();
    assert!(writes.is_empty(), "calls other than reads: {made:?}");
    assert!(
        made.contains("Query"),
        "the records were not read: {made:?}"
    );
    assert!(bed.notifications().await.is_empty());

    // Against the baseline, the same account looks different: every key departs from it.
    let baseline = kms_guardrails(
        &proxy,
        &["audit", "--json", "--function", "policy-drift"],
        SETTINGS,
    );
    let report: Value = serde_json::from_slice(&baseline.stdout).expect("JSON on stdout");
    let drifted: BTreeSet<&str> = report["found"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] != "info")
        .filter_map(|f| f["key_id"].as_str())
        .collect();
    assert_eq!(
        drifted,
        BTreeSet::from([kept.as_str(), changed.as_str(), unrecorded.as_str()])
    );
}
