//! The scheduled sweep over many keys against moto: wall time, this process's CPU time and
//! KMS calls, per key. Prints numbers; asserts nothing.
//!
//! Usage: bench-sweep [KEYS...]   (default: 200 400 800)
//! Every tenth key has a drifted policy, so the run includes corrections and notifications.

use std::time::Instant;

use integration_tests::{config, sample_event, TestBed, ACCOUNT_ID, DRIFTED_POLICY, REGION};
use lambda_runtime::{Context, LambdaEvent};
use policy_drift::{function_handler, Deps};
use shared::outcome::Outcome;

/// User plus system CPU seconds this process has used so far (Linux `/proc/self/stat`).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses and may contain spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line, 11 and 12 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse())
        .collect::<Result<_, _>>()?;
    let sizes = if sizes.is_empty() {
        vec![200, 400, 800]
    } else {
        sizes
    };
    println!("keys  managed  corrected  wall_s  wall_ms/key  cpu_s  cpu_ms/key  kms_calls/key");
    for keys in sizes {
        let bed = TestBed::start().await;
        let config = config(&bed.topic_arn, &[("MODE", "enforce")]);
        let baseline = shared::baseline::render(&config.baseline, ACCOUNT_ID, REGION, "aws")?;
        for i in 0..keys {
            let policy = if i % 10 == 0 {
                DRIFTED_POLICY
            } else {
                &baseline.document
            };
            let key = bed
                .create_key("bench", &[("guardrails:managed", "true")], Some(policy))
                .await;
            bed.kms
                .enable_key_rotation()
                .key_id(&key.key_id)
                .send()
                .await?;
        }
        let (clients, calls) = bed.recorded_clients();
        let deps = Deps { config, clients };
        let event = sample_event("policy-drift/scheduled-sweep.json", "unused");

        let (cpu_before, started) = (cpu_seconds(), Instant::now());
        let outcome = function_handler(LambdaEvent::new(event, Context::default()), &deps).await?;
        let (wall, cpu) = (started.elapsed().as_secs_f64(), cpu_seconds() - cpu_before);

        let Outcome::Sweep(report) = outcome else {
            return Err("the sweep returned no report".into());
        };
        let n = keys as f64;
        println!(
            "{keys:>4}  {:>7}  {:>9}  {wall:>6.2}  {:>11.2}  {cpu:>5.2}  {:>10.3}  {:>13.2}",
            report.managed,
            report.corrected,
            wall * 1000.0 / n,
            cpu * 1000.0 / n,
            calls.operations().len() as f64 / n
        );
    }
    Ok(())
}
