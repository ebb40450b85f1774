//! `bash scripts/demo.sh audit`: the command line against the emulator, as an operator tries
//! it before deploying. Seeds keys in several states, then runs `kms-guardrails audit` and
//! `kms-guardrails explain` with `AWS_ENDPOINT_URL` pointing at moto.

use integration_tests::{TestBed, ADMIN_ROLE_ARN, DRIFTED_POLICY};

pub async fn audit_demo() -> Result<(), Box<dyn std::error::Error>> {
    let bed = TestBed::start().await;
    let managed = [("guardrails:managed", "true")];
    let config = integration_tests::config(&bed.topic_arn, &[]);
    crate::seed_key_at_baseline(&bed, &config).await?;
    let drifted = bed
        .create_key("payments key", &managed, Some(DRIFTED_POLICY))
        .await
        .key_id;
    bed.kms
        .enable_key_rotation()
        .key_id(&drifted)
        .send()
        .await?;
    bed.create_alias("alias/payments", &drifted).await;
    let disabled = bed.create_key("archive key", &managed, None).await.key_id;
    bed.kms.disable_key().key_id(&disabled).send().await?;
    bed.create_alias("alias/archive", &disabled).await;
    let unmanaged = bed
        .create_key("not managed", &[], Some(DRIFTED_POLICY))
        .await
        .key_id;
    println!("Seeded on the emulator: alias/app-data (at the baseline), alias/payments (another account added to its policy), alias/archive (disabled, KMS's default policy, rotation off), and {unmanaged} (not managed).\n");

    let run = |args: &[&str]| -> Result<i32, Box<dyn std::error::Error>> {
        println!("$ kms-guardrails {}", args.join(" "));
        let status =
            std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
                .args(["run", "--quiet", "--locked", "-p", "kms-guardrails", "--"])
                .args(args)
                .env("AWS_ENDPOINT_URL", &bed.moto.endpoint)
                .env("AWS_ACCESS_KEY_ID", "testing")
                .env("AWS_SECRET_ACCESS_KEY", "testing")
                .env("AWS_REGION", integration_tests::REGION)
                .env("KMS_ADMIN_ROLE_ARNS", ADMIN_ROLE_ARN)
                .env("SERVICE_PRINCIPALS", "logs.eu-west-1.amazonaws.com")
                .env("ENVIRONMENT", "demo")
                .env_remove("AWS_PROFILE")
                .status()?;
        let code = status.code().unwrap_or(-1);
        println!("(exit status {code})\n");
        Ok(code)
    };
    run(&["audit"])?;
    run(&["explain", "alias/payments"])?;
    println!(
        "Nothing was written: alias/payments still holds its drifted policy ({} statements) and alias/archive is still {}.",
        shared::policy::model::Policy::parse(&bed.key_policy(&drifted).await)?
            .statements
            .len(),
        bed.key_state(&disabled).await
    );
    Ok(())
}
