//! The main job, locally: policy-drift on a sample event against moto server.
//!
//! Starts moto, seeds a managed key at its baseline (`alias/app-data`) and an SNS topic with an
//! SQS inbox, makes the change the sample event describes, runs the handler on that event and
//! prints the key before and after, the handler's result and the notification people receive.
//!
//! Usage: local-demo [SCENARIO], one of `SCENARIOS` (each a sample in events/policy-drift/).
//! MODE=report shows the dry run.

use integration_tests::{config, sample_event, TestBed, DRIFTED_POLICY};
use lambda_runtime::{Context, LambdaEvent};
use policy_drift::{function_handler, Deps};

/// The samples the demo can replay, each with the change it stands for made on moto first.
const SCENARIOS: &[&str] = &[
    "put-key-policy",
    "disable-key-rotation",
    "schedule-key-deletion",
    "disable-key",
    "untag-resource",
    "tag-resource",
    "scheduled-sweep",
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
    let scenario = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "put-key-policy".to_string());
    let mode = std::env::var("MODE").unwrap_or_else(|_| "enforce".to_string());
    if !SCENARIOS.contains(&scenario.as_str()) {
        return Err(format!(
            "unknown scenario {scenario:?}: use one of {}",
            SCENARIOS.join(", ")
        )
        .into());
    }
    std::env::set_var("AWS_LAMBDA_LOG_FORMAT", "JSON");
    shared::telemetry::init();

    heading("starting moto server and seeding it");
    let bed = TestBed::start().await;
    println!("moto server: {}", bed.moto.endpoint);
    let config = config(&bed.topic_arn, &[("MODE", &mode)]);
    let baseline = shared::baseline::render(
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
    let key_id = key.key_id.clone();
    bed.kms.enable_key_rotation().key_id(&key_id).send().await?;
    bed.create_alias("alias/app-data", &key_id).await;
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
        // A change whose CloudTrail event never arrived: the sweep finds it.
        _ => bed.put_key_policy(&key_id, DRIFTED_POLICY).await,
    }
    heading(&format!("key after {scenario} (before policy-drift)"));
    show_key(&bed, &key_id).await;

    let event_file = format!("policy-drift/{scenario}.json");
    heading(&format!("invoking policy-drift with events/{event_file}"));
    let deps = Deps {
        config,
        clients: bed.clients(),
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
