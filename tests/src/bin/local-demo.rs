//! The main job, locally: a function on one of its sample events against moto server.
//!
//! Starts moto, seeds a managed key and an SNS topic with an SQS inbox, makes the change the
//! sample event describes, runs the handler on that event and prints the key before and after,
//! the handler's result and the notification people receive.
//!
//! Usage: local-demo [FUNCTION] [SCENARIO]: FUNCTION is policy-drift (default),
//! root-access-revoker, alarm-notifier or replica-grant-validator; SCENARIO one of its samples
//! in events/FUNCTION/ (alarm-notifier and replica-grant-validator: any of them), or for
//! policy-drift `per-key`: per-key desired state from enrolment to rollback.
//! MODE=report shows the dry run. `local-demo audit`: the `kms-guardrails` command line's
//! audit and explain against the emulator.

use integration_tests::{config, sample_event, TestBed, DRIFTED_POLICY};
use lambda_runtime::{Context, LambdaEvent};
use policy_drift::{function_handler, Deps};

#[path = "../demo/validator.rs"]
mod validator_demo;

#[path = "../demo/audit.rs"]
mod audit_demo;

/// root-access-revoker's samples the demo can replay.
const REVOKER_SCENARIOS: &[&str] = &[
    "put-key-policy",
    "create-key",
    "delete-role",
    "update-assume-role-policy",
    "scheduled-sweep",
];

/// The samples the demo can replay, each with the change it stands for made on moto first.
const SCENARIOS: &[&str] = &[
    "put-key-policy",
    "disable-key-rotation",
    "schedule-key-deletion",
    "disable-key",
    "untag-resource",
    "tag-resource",
    "scheduled-sweep",
    "sweep-part",
];

/// The managed tag taken off, then the policy changed while nobody watches.
async fn leave_management_and_drift(
    bed: &TestBed,
    key_id: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    bed.kms
        .untag_resource()
        .key_id(key_id)
        .tag_keys("guardrails:managed")
        .send()
        .await?;
    bed.put_key_policy(key_id, DRIFTED_POLICY).await;
    Ok(())
}

/// The managed key alias/app-data at `config`'s baseline, rotating: the demo's starting point.
async fn seed_key_at_baseline(
    bed: &TestBed,
    config: &policy_drift::Config,
) -> Result<String, Box<dyn std::error::Error>> {
    let baseline = shared::policy::baseline::render(
        &config.baseline,
        integration_tests::ACCOUNT_ID,
        integration_tests::REGION,
        "aws",
    )?;
    let key = bed
        .create_key(
            "app-data key",
            &[("guardrails:managed", "true")],
            Some(&baseline.document),
        )
        .await;
    bed.kms
        .enable_key_rotation()
        .key_id(&key.key_id)
        .send()
        .await?;
    bed.create_alias("alias/app-data", &key.key_id).await;
    Ok(key.key_id)
}

fn heading(text: &str) {
    println!(
        "\n=== {text} {}",
        "=".repeat(70usize.saturating_sub(text.len()))
    );
}

async fn show_key(bed: &TestBed, key_id: &str) {
    println!("state:    {}", bed.key_state(key_id).await);
    println!(
        "rotation: {}",
        if bed.rotation_enabled(key_id).await {
            "enabled"
        } else {
            "disabled"
        }
    );
    println!("policy:\n{}", bed.key_policy(key_id).await);
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("audit") {
        return audit_demo::audit_demo().await;
    }
    let function = match args.first().map(String::as_str) {
        Some(
            f @ ("policy-drift"
            | "root-access-revoker"
            | "alarm-notifier"
            | "replica-grant-validator"),
        ) => {
            let f = f.to_string();
            args.remove(0);
            f
        }
        _ => "policy-drift".to_string(),
    };
    let scenario = args
        .first()
        .cloned()
        .unwrap_or_else(|| "put-key-policy".to_string());
    let mode = std::env::var("MODE").unwrap_or_else(|_| "enforce".to_string());
    if function == "root-access-revoker" {
        return revoker_demo(&scenario, &mode).await;
    }
    if function == "alarm-notifier" {
        return notifier_demo(&scenario).await;
    }
    if function == "replica-grant-validator" {
        let scenario = args
            .first()
            .cloned()
            .unwrap_or_else(|| "scheduled-sweep".to_string());
        return validator_demo::run(&scenario, &mode).await;
    }
    if scenario == "per-key" {
        return per_key_demo(&mode).await;
    }
    if !SCENARIOS.contains(&scenario.as_str()) {
        return Err(format!(
            "unknown scenario {scenario:?}: use one of {}, or per-key",
            SCENARIOS.join(", ")
        )
        .into());
    }
    std::env::set_var("AWS_LAMBDA_LOG_FORMAT", "JSON");
    shared::runtime::telemetry::init();

    heading("starting moto server and seeding it");
    let bed = TestBed::start().await;
    println!("moto server: {}", bed.moto.endpoint);
    let config = config(&bed.topic_arn, &[("MODE", &mode)]);
    let key_id = seed_key_at_baseline(&bed, &config).await?;
    println!("managed key alias/app-data ({key_id}) at its baseline; mode {mode}");

    // The change a person made, as the sample event records it.
    match scenario.as_str() {
        "put-key-policy" => bed.put_key_policy(&key_id, DRIFTED_POLICY).await,
        "disable-key-rotation" => {
            bed.kms
                .disable_key_rotation()
                .key_id(&key_id)
                .send()
                .await?;
        }
        "schedule-key-deletion" => {
            bed.kms
                .schedule_key_deletion()
                .key_id(&key_id)
                .pending_window_in_days(7)
                .send()
                .await?;
        }
        "disable-key" => {
            bed.kms.disable_key().key_id(&key_id).send().await?;
        }
        // Someone takes the key out of management, then changes it unwatched.
        "untag-resource" => leave_management_and_drift(&bed, &key_id).await?,
        // A drifted key joins management: it is announced and corrected.
        "tag-resource" => {
            leave_management_and_drift(&bed, &key_id).await?;
            bed.kms
                .tag_resource()
                .key_id(&key_id)
                .tags(
                    aws_sdk_kms::types::Tag::builder()
                        .tag_key("guardrails:managed")
                        .tag_value("true")
                        .build()?,
                )
                .send()
                .await?;
        }
        // A change whose CloudTrail event never arrived: the sweep (or, for sweep-part, the
        // one part of a fanned-out sweep SQS hands back) finds it.
        _ => bed.put_key_policy(&key_id, DRIFTED_POLICY).await,
    }
    heading(&format!("key after {scenario} (before policy-drift)"));
    show_key(&bed, &key_id).await;

    let event_file = format!("policy-drift/{scenario}.json");
    heading(&format!("invoking policy-drift with events/{event_file}"));
    let deps = Deps {
        config,
        clients: bed.clients(),
        own: (),
    };
    let event = sample_event(&event_file, &key_id);
    let result = function_handler(LambdaEvent::new(event, Context::default()), &deps).await;

    heading("handler result");
    match &result {
        Ok(outcome) => println!("{}", serde_json::to_string_pretty(outcome)?),
        Err(e) => println!("error ({}): {e}", e.error_type()),
    }
    heading("key after policy-drift");
    show_key(&bed, &key_id).await;
    heading("notification received by the SNS topic's SQS subscriber");
    for note in bed.notifications().await {
        println!("Subject: {}\n\n{}", note.subject, note.message);
        println!("Message attributes: {}", note.attributes);
    }
    result.map(|_| ()).map_err(|e| e.into())
}

/// Per-key desired state: the sweep enrols a key, the deployer's change is recorded, a
/// developer's is reverted to it, then the history and a rollback to version 1.
async fn per_key_demo(mode: &str) -> Result<(), Box<dyn std::error::Error>> {
    std::env::set_var("AWS_LAMBDA_LOG_FORMAT", "JSON");
    shared::runtime::telemetry::init();
    heading("starting moto server and seeding it");
    let bed = TestBed::start().await;
    let config = config(
        &bed.topic_arn,
        &[
            ("MODE", mode),
            ("DESIRED_STATE", "per-key"),
            (
                "APPROVED_DEPLOYERS",
                "arn:aws:iam::111122223333:role/terraform-ci",
            ),
        ],
    );
    let key_id = seed_key_at_baseline(&bed, &config).await?;
    println!("managed key alias/app-data ({key_id}); DESIRED_STATE=per-key, mode {mode}");
    let deps = Deps {
        config,
        clients: bed.clients(),
        own: (),
    };
    let deployer_sample = sample_event("policy-drift/put-key-policy-by-deployer.json", &key_id);
    let deployer_policy = deployer_sample["detail"]["requestParameters"]["policy"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let steps: [(&str, &str, Option<&str>); 5] = [
        ("the sweep enrols the key", "scheduled-sweep", None),
        (
            "terraform-ci (an approved deployer) changes the policy",
            "put-key-policy-by-deployer",
            Some(&deployer_policy),
        ),
        (
            "a developer changes the policy",
            "put-key-policy",
            Some(DRIFTED_POLICY),
        ),
        ("the history command", "history", None),
        ("rollback to version 1", "rollback", None),
    ];
    for (what, sample, change) in steps {
        if let Some(policy) = change {
            bed.put_key_policy(&key_id, policy).await;
        }
        heading(&format!("{what}: events/policy-drift/{sample}.json"));
        let event = sample_event(&format!("policy-drift/{sample}.json"), &key_id);
        match policy_drift::invoke(LambdaEvent::new(event, Context::default()), &deps).await {
            Ok(response) => println!("{}", serde_json::to_string_pretty(&response)?),
            Err(e) => println!("error ({}): {e}", e.error_type()),
        }
        for note in bed.notifications().await {
            println!("\n--- notification: {}\n{}", note.subject, note.message);
        }
    }
    heading("key policy at the end");
    show_key(&bed, &key_id).await;
    Ok(())
}

/// root-access-revoker: a key whose policy still grants the root, an admin role in IAM, and the
/// change the sample records.
async fn revoker_demo(scenario: &str, mode: &str) -> Result<(), Box<dyn std::error::Error>> {
    use integration_tests::{revoker_config, ADMIN_ROLE_ARN, REVOKER_ROLE_ARN};
    if !REVOKER_SCENARIOS.contains(&scenario) {
        return Err(format!(
            "unknown root-access-revoker scenario {scenario:?}: use one of {}",
            REVOKER_SCENARIOS.join(", ")
        )
        .into());
    }
    std::env::set_var("AWS_LAMBDA_LOG_FORMAT", "JSON");
    shared::runtime::telemetry::init();
    heading("starting moto server and seeding it");
    let bed = TestBed::start().await;
    println!("moto server: {}", bed.moto.endpoint);
    bed.create_role(ADMIN_ROLE_ARN).await;
    bed.create_role(REVOKER_ROLE_ARN).await;
    let admins = format!(
        r#"{{"Sid":"AllowKmsAdminRole","Effect":"Allow","Principal":{{"AWS":["{ADMIN_ROLE_ARN}","{REVOKER_ROLE_ARN}"]}},"Action":"kms:*","Resource":"*"}}"#
    );
    let root = r#"{"Sid":"EnableRootAccess","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}"#;
    let policy = match scenario {
        // A new key gets the default policy: the root only, no administrator named.
        "create-key" => format!(r#"{{"Version":"2012-10-17","Statement":[{root}]}}"#),
        // The admin role is the only administrator; the root is already gone.
        "delete-role" | "update-assume-role-policy" => {
            format!(r#"{{"Version":"2012-10-17","Statement":[{admins}]}}"#)
        }
        _ => format!(r#"{{"Version":"2012-10-17","Statement":[{root},{admins}]}}"#),
    };
    let key = bed
        .create_key(
            "app-data key",
            &[("guardrails:managed", "true")],
            Some(&policy),
        )
        .await;
    bed.create_alias("alias/app-data", &key.key_id).await;
    let iam = aws_sdk_iam::Client::new(&bed.sdk);
    match scenario {
        "delete-role" => {
            iam.delete_role().role_name("kms-admin").send().await?;
        }
        "update-assume-role-policy" => {
            iam.update_assume_role_policy()
                .role_name("kms-admin")
                .policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":{"AWS":"*"},"Action":"sts:AssumeRole"}]}"#)
                .send()
                .await?;
        }
        _ => {}
    }
    println!("managed key alias/app-data ({}); admin role {ADMIN_ROLE_ARN}; ROOT_ACCESS=false; mode {mode}", key.key_id);
    heading("key policy before root-access-revoker");
    println!("{}", bed.key_policy(&key.key_id).await);

    let event_file = format!("root-access-revoker/{scenario}.json");
    heading(&format!(
        "invoking root-access-revoker with events/{event_file}"
    ));
    let config = revoker_config(&bed.topic_arn, &[("MODE", mode)]);
    let deps = root_access_revoker::deps::new(config, bed.clients());
    let event = sample_event(&event_file, &key.key_id);
    let result =
        root_access_revoker::function_handler(LambdaEvent::new(event, Context::default()), &deps)
            .await;
    heading("handler result");
    match &result {
        Ok(outcome) => println!("{}", serde_json::to_string_pretty(outcome)?),
        Err(e) => println!("error ({}): {e}", e.error_type()),
    }
    heading("key policy after root-access-revoker");
    println!("{}", bed.key_policy(&key.key_id).await);
    heading("notification received by the SNS topic's SQS subscriber");
    for note in bed.notifications().await {
        println!("Subject: {}\n\n{}", note.subject, note.message);
        println!("Message attributes: {}", note.attributes);
    }
    result.map(|_| ()).map_err(|e| e.into())
}

/// alarm-notifier: a managed key with an alias, the de-duplication table, and the alarm sample
/// (or, for `scheduled-sweep`, an alarm on a metric AWS does not publish).
async fn notifier_demo(scenario: &str) -> Result<(), Box<dyn std::error::Error>> {
    use integration_tests::{notifier_config, workspace_root};
    let sample = format!("alarm-notifier/{scenario}.json");
    let is_sweep = scenario == "scheduled-sweep";
    if !is_sweep && !workspace_root().join("events").join(&sample).exists() {
        return Err(format!(
            "unknown alarm-notifier scenario {scenario:?}: use a file name from events/alarm-notifier/ without .json, or scheduled-sweep"
        )
        .into());
    }
    std::env::set_var("AWS_LAMBDA_LOG_FORMAT", "JSON");
    shared::runtime::telemetry::init();
    heading("starting moto server and seeding it");
    let bed = TestBed::start().await;
    println!("moto server: {}", bed.moto.endpoint);
    bed.create_dedup_table("alarm-transitions").await;
    let key = bed
        .create_key("app-data key", &[("guardrails:managed", "true")], None)
        .await;
    bed.create_alias("alias/app-data", &key.key_id).await;
    if is_sweep {
        aws_sdk_cloudwatch::Client::new(&bed.sdk)
            .put_metric_alarm()
            .alarm_name("kms-decrypt-count-high")
            .namespace("AWS/KMS")
            .metric_name("DecryptCount")
            .dimensions(
                aws_sdk_cloudwatch::types::Dimension::builder()
                    .name("KeyId")
                    .value(&key.key_id)
                    .build(),
            )
            .statistic(aws_sdk_cloudwatch::types::Statistic::Sum)
            .period(300)
            .evaluation_periods(1)
            .threshold(1000.0)
            .comparison_operator(
                aws_sdk_cloudwatch::types::ComparisonOperator::GreaterThanThreshold,
            )
            .send()
            .await?;
        println!("alarm kms-decrypt-count-high on AWS/KMS DecryptCount, as the reference module creates it");
    }
    println!("managed key alias/app-data ({})", key.key_id);
    let event_file = if is_sweep {
        "policy-drift/scheduled-sweep.json".to_string()
    } else {
        sample
    };
    heading(&format!("invoking alarm-notifier with events/{event_file}"));
    let (clients, published) = bed.clients_recording_publish();
    let config = notifier_config(&bed.topic_arn, &[("DEDUP_TABLE", "alarm-transitions")]);
    let deps = alarm_notifier::Deps {
        config,
        clients,
        own: alarm_notifier::Clients::new(),
    };
    let event = sample_event(&event_file, &key.key_id);
    let result =
        alarm_notifier::function_handler(LambdaEvent::new(event, Context::default()), &deps).await;
    heading("handler result");
    match &result {
        Ok(outcome) => println!("{}", serde_json::to_string_pretty(outcome)?),
        Err(e) => println!("error ({}): {e}", e.error_type()),
    }
    heading("notification received by the SNS topic's SQS subscriber");
    for note in bed.notifications().await {
        println!("Subject: {}\n\n{}", note.subject, note.message);
        println!("Message attributes: {}", note.attributes);
    }
    for message in published.messages() {
        if let Ok(serde_json::Value::Object(variants)) =
            serde_json::from_str::<serde_json::Value>(&message)
        {
            for (protocol, text) in variants {
                if protocol != "default" {
                    heading(&format!("variant for {protocol} subscribers"));
                    println!("{}", text.as_str().unwrap_or_default());
                }
            }
        }
    }
    result.map(|_| ()).map_err(|e| e.into())
}
