//! replica-grant-validator's part of the demo: a managed multi-Region primary in eu-west-1
//! with replicas in us-west-2 and eu-central-1 that lack the required grant, the change the
//! sample stands for, then the handler on the sample.

use integration_tests::replication::{all_regions, validator_config, REPLICA_REGIONS};
use integration_tests::{sample_event, workspace_root, TestBed, REGION};
use lambda_runtime::{Context, LambdaEvent};

use crate::heading;

async fn show_grants(bed: &TestBed, key_id: &str) {
    for region in REPLICA_REGIONS {
        let state = bed
            .kms_in(region)
            .describe_key()
            .key_id(key_id)
            .send()
            .await
            .ok()
            .and_then(|d| d.key_metadata)
            .and_then(|m| m.key_state)
            .map(|s| s.as_str().to_string())
            .unwrap_or_default();
        println!("{region} replica ({state}):");
        let grants = bed.grants_in(region, key_id).await;
        if grants.is_empty() {
            println!("  no grants");
        }
        for (name, grantee, operations) in grants {
            println!("  grant {name}: {grantee} may {}", operations.join(", "));
        }
    }
}

pub async fn run(scenario: &str, mode: &str) -> Result<(), Box<dyn std::error::Error>> {
    let sample = format!("replica-grant-validator/{scenario}.json");
    if !workspace_root().join("events").join(&sample).exists() {
        return Err(format!(
            "unknown replica-grant-validator scenario {scenario:?}: use a file name from events/replica-grant-validator/ without .json"
        )
        .into());
    }
    std::env::set_var("AWS_LAMBDA_LOG_FORMAT", "JSON");
    shared::runtime::telemetry::init();
    heading("starting moto server and seeding it");
    let bed = TestBed::start().await;
    println!("moto server: {}", bed.moto.endpoint);
    let key_id = if scenario == "create-grant-single-region-key" {
        let key = bed
            .create_key("single-Region key", &[("guardrails:managed", "true")], None)
            .await;
        println!("managed single-Region key {}", key.key_id);
        key.key_id
    } else {
        let set = bed.create_key_set(&REPLICA_REGIONS).await;
        println!(
            "managed multi-Region primary {} with replicas in {}; mode {mode}",
            set.primary_arn,
            REPLICA_REGIONS.join(" and ")
        );
        // A bucket whose replication names the us-west-2 replica by alias: the bucket event and
        // the sweep report it.
        {
            bed.kms_in("us-west-2")
                .create_alias()
                .alias_name("alias/app-data-replica")
                .target_key_id(&set.key_id)
                .send()
                .await?;
            let alias = format!(
                "arn:aws:kms:us-west-2:{}:alias/app-data-replica",
                integration_tests::ACCOUNT_ID
            );
            bed.create_replicating_bucket("app-data-eu-west-1", "app-data-us-west-2", &alias)
                .await;
            println!("bucket app-data-eu-west-1 replicates to app-data-us-west-2 with ReplicaKmsKeyID {alias}");
            println!("(moto's GetBucketReplication drops SourceSelectionCriteria, so the SseKmsEncryptedObjects finding below shows although the bucket enables it; AWS returns it)");
        }
        heading("replica grants before");
        show_grants(&bed, &set.key_id).await;
        set.key_id
    };

    heading(&format!(
        "invoking replica-grant-validator with events/{sample}"
    ));
    let config = validator_config(
        &bed.topic_arn,
        &[
            ("MODE", mode),
            ("REPLICATION_BUCKETS", "app-data-eu-west-1"),
        ],
    );
    let (clients, _) = bed.recorded_clients_in(&all_regions());
    let deps = replica_grant_validator::Deps {
        config,
        clients,
        own: replica_grant_validator::Clients::new().with_s3_client(REGION, bed.s3_in(REGION)),
    };
    let event = sample_event(&sample, &key_id);
    let result = replica_grant_validator::function_handler(
        LambdaEvent::new(event, Context::default()),
        &deps,
    )
    .await;
    heading("handler result (the structured report)");
    match &result {
        Ok(response) => println!("{}", serde_json::to_string_pretty(response)?),
        Err(e) => println!("error ({}): {e}", e.error_type()),
    }
    if scenario != "create-grant-single-region-key" {
        heading("replica grants after");
        show_grants(&bed, &key_id).await;
    }
    heading("notification received by the SNS topic's SQS subscriber");
    for note in bed.notifications().await {
        println!("Subject: {}\n\n{}", note.subject, note.message);
        println!("Message attributes: {}", note.attributes);
    }
    result.map(|_| ()).map_err(|e| e.into())
}
