//! A model of a fanned-out sweep at organization scale, built on the code's own parts: the
//! work items `fanout::work_items` makes, the SendMessageBatch calls `fanout::enqueue` needs,
//! and the request rates `pace::Rates` allows per account, Region and operation. Time per key
//! comes from `--key-latency-ms` (three reads in sequence per key); measure it with bench-sweep.
//! Prints numbers; asserts nothing. No AWS call is made.
//!
//! Usage: bench-fanout [--accounts 1000] [--regions 10] [--keys-per-part 50,1000,10000]
//!        [--drifted-percent 10] [--parallelism 10,100,1000] [--key-latency-ms 60]
//!        [--quota-share 66] [--sweep-concurrency 8] [--timeout-seconds 120]

use shared::base::pace::{kms_quota, Paced, Rates};
use shared::base::region::Region;
use shared::pipeline::fanout::{work_items, SEND_BATCH};
use shared::pipeline::sweep::{Scope, DEADLINE_MARGIN};

struct Args {
    accounts: usize,
    regions: usize,
    keys_per_part: Vec<f64>,
    drifted_percent: f64,
    parallelism: Vec<f64>,
    key_latency_ms: f64,
    quota_share: u32,
    sweep_concurrency: f64,
    timeout_seconds: f64,
}

fn list(text: &str) -> Vec<f64> {
    text.split(',')
        .filter_map(|v| v.trim().parse().ok())
        .collect()
}

fn args() -> Args {
    let mut args = Args {
        accounts: 1000,
        regions: 10,
        keys_per_part: vec![50.0, 1000.0, 10000.0],
        drifted_percent: 10.0,
        parallelism: vec![10.0, 100.0, 1000.0],
        key_latency_ms: 60.0,
        quota_share: 66,
        sweep_concurrency: 8.0,
        timeout_seconds: 120.0,
    };
    let given: Vec<String> = std::env::args().skip(1).collect();
    for pair in given.chunks(2) {
        let value = pair.get(1).map(String::as_str).unwrap_or_default();
        match pair[0].as_str() {
            "--accounts" => args.accounts = value.parse().unwrap_or(args.accounts),
            "--regions" => args.regions = value.parse().unwrap_or(args.regions),
            "--keys-per-part" => args.keys_per_part = list(value),
            "--drifted-percent" => args.drifted_percent = value.parse().unwrap_or(10.0),
            "--parallelism" => args.parallelism = list(value),
            "--key-latency-ms" => args.key_latency_ms = value.parse().unwrap_or(60.0),
            "--quota-share" => args.quota_share = value.parse().unwrap_or(66),
            "--sweep-concurrency" => args.sweep_concurrency = value.parse().unwrap_or(8.0),
            "--timeout-seconds" => args.timeout_seconds = value.parse().unwrap_or(120.0),
            other => {
                eprintln!("unknown argument {other}; see the usage at the top of bench-fanout.rs");
                std::process::exit(2);
            }
        }
    }
    args
}

fn duration(seconds: f64) -> String {
    if seconds < 120.0 {
        format!("{seconds:.1} s")
    } else if seconds < 7200.0 {
        format!("{:.1} min", seconds / 60.0)
    } else {
        format!("{:.1} h", seconds / 3600.0)
    }
}

fn main() {
    let args = args();
    let rates = Rates {
        quota_share_percent: args.quota_share,
    };
    let regions: Vec<Region> = [
        "us-east-1",
        "us-east-2",
        "us-west-1",
        "us-west-2",
        "eu-west-1",
        "eu-west-2",
        "eu-west-3",
        "eu-central-1",
        "eu-north-1",
        "ap-northeast-1",
        "ap-southeast-1",
        "ap-southeast-2",
        "ap-south-1",
        "sa-east-1",
        "ca-central-1",
    ]
    .iter()
    .take(args.regions)
    .map(|r| Region::parse(r).unwrap())
    .collect();
    let scopes: Vec<Scope> = (0..args.accounts)
        .flat_map(|i| {
            regions.iter().map(move |region| Scope {
                account: format!("{:012}", 100_000_000_000u64 + i as u64),
                region: region.clone(),
            })
        })
        .collect();
    let items = work_items("bench", Some("2026-12-03T06:00:00Z"), &scopes);
    let send_calls = items.len().div_ceil(SEND_BATCH);
    let call_seconds = args.key_latency_ms / 3.0 / 1000.0;
    let body_bytes = serde_json::to_string(&items[0])
        .map(|b| b.len())
        .unwrap_or(0);
    println!(
        "fan-out: {} accounts x {} Regions = {} work items ({} bytes each), {} SendMessageBatch calls (~{} at {:.0} ms a call)",
        args.accounts,
        regions.len(),
        items.len(),
        body_bytes,
        send_calls,
        duration(send_calls as f64 * call_seconds),
        call_seconds * 1000.0
    );
    let key_rate_paced = rates.per_second(Paced::KeyAudit);
    let key_rate_latency = args.sweep_concurrency / (args.key_latency_ms / 1000.0);
    let key_rate = key_rate_paced.min(key_rate_latency);
    let write_rate = rates.per_second(Paced::Write("PutKeyPolicy"));
    let budget = args.timeout_seconds - DEADLINE_MARGIN.as_secs_f64();
    println!(
        "per part: keys start at {key_rate:.0}/s (paced {key_rate_paced:.0}/s at {}% of ListGrants' {}/s; latency allows {key_rate_latency:.0}/s at concurrency {}), corrections at {write_rate:.1}/s ({}% of PutKeyPolicy's {}/s); one invocation ({} s timeout, {} s kept free) sweeps up to {:.0} keys",
        args.quota_share,
        kms_quota("ListGrants"),
        args.sweep_concurrency,
        args.quota_share,
        kms_quota("PutKeyPolicy"),
        args.timeout_seconds,
        DEADLINE_MARGIN.as_secs(),
        key_rate * budget
    );
    println!();
    println!("| keys per account-Region | drifted | part time | parts needing another sweep | DescribeKey/s (quota) | GetKeyPolicy/s (quota) | ListGrants/s, per-key mode (quota) | PutKeyPolicy/s (quota) | total at parallelism |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for &keys in &args.keys_per_part {
        let drifted = (keys * args.drifted_percent / 100.0).round();
        // Setup: AssumeRole, GetResources pages of 100, ListAliases; then reads and writes
        // on their own schedules, overlapping.
        let setup = (2.0 + (keys / 100.0).ceil()) * call_seconds;
        let work = (keys / key_rate).max(drifted / write_rate);
        let part = (setup + work).min(args.timeout_seconds);
        // Past the budget the deadline stops starting keys; the rest wait for the next sweep.
        let share_done = (budget / (setup + work)).min(1.0);
        let unfinished = if share_done < 1.0 {
            format!("all: {:.0}% of the keys per sweep", share_done * 100.0)
        } else {
            "none".to_string()
        };
        let per_second = |n: f64| n * share_done / part;
        let rate_cell = |op: &str, n: f64| {
            format!(
                "{:.1} ({}, {:.0}%)",
                per_second(n),
                kms_quota(op),
                per_second(n) / f64::from(kms_quota(op)) * 100.0
            )
        };
        let totals: Vec<String> = args
            .parallelism
            .iter()
            .map(|p| {
                let waves = (items.len() as f64 / p).ceil();
                format!(
                    "{}: {}",
                    p,
                    duration(send_calls as f64 * call_seconds + waves * part)
                )
            })
            .collect();
        println!(
            "| {keys:.0} | {drifted:.0} | {} | {unfinished} | {} | {} | {} | {} | {} |",
            duration(part),
            rate_cell("DescribeKey", keys),
            rate_cell("GetKeyPolicy", keys),
            rate_cell("ListGrants", keys),
            rate_cell("PutKeyPolicy", drifted),
            totals.join("; ")
        );
    }
}
