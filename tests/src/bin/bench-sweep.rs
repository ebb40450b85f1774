//! The scheduled sweep over many keys against moto: wall time, this process's CPU time and the
//! API requests sent, per key. Prints numbers; asserts nothing.
//!
//! Usage: bench-sweep [--drift-every N] [KEYS...]   (default: every 10th key, 200 400 800 keys)
//! Every Nth key has a drifted policy, so the run includes corrections and notifications.
//!
//! Requests are counted below the SDK, in the HTTP client every client of the sweep shares:
//! every request sent to moto (KMS, Tagging API, SNS, SQS; retries included) is recorded with
//! its service (from the signature's credential scope), its operation and its body. After the
//! timed sweep each request is attributed to the key whose id its body names (KMS requests
//! carry the key ARN, an SNS message names its key); requests naming no key (GetResources
//! pages, the Region's ListAliases) are the sweep's shared cost. Per-key figures are therefore
//! exact counts, not averages of a mixed total; min and max show whether every key of a kind
//! cost the same.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::runtime_components::{
    RuntimeComponents, RuntimeComponentsBuilder,
};
use aws_smithy_types::config_bag::ConfigBag;
use integration_tests::{config, sample_event, TestBed, ACCOUNT_ID, DRIFTED_POLICY, REGION};
use lambda_runtime::{Context, LambdaEvent};
use policy_drift::{function_handler, Deps};
use shared::aws::AwsClients;
use shared::notify::outcome::Outcome;

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

/// Calls a compliant key needs at the least: its state, its policy, its rotation.
const MIN_COMPLIANT: usize = 3;
/// A drifted key also needs its correction, its message, and in enforce mode the state
/// table's record before the write and its tombstone after the message.
const MIN_DRIFTED: usize = 7;

/// This process's peak resident memory so far (`VmHWM`), in MB.
fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// One request as it left for moto.
struct Sent {
    /// "kms:GetKeyPolicy", "tagging:GetResources", "sns:Publish", ...
    operation: String,
    body: Vec<u8>,
}

/// Every request sent through the wrapped HTTP client, in order. Recording only copies the
/// request's operation and body; parsing waits until the timed sweep is over.
#[derive(Clone, Default)]
struct Requests(Arc<Mutex<Vec<Sent>>>);

impl fmt::Debug for Requests {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Requests")
    }
}

impl Requests {
    fn record(&self, request: &HttpRequest) {
        let headers = request.headers();
        // "AWS4-HMAC-SHA256 Credential=AKID/20250101/eu-west-1/kms/aws4_request, ..."
        let service = headers
            .get("authorization")
            .and_then(|a| a.split('/').nth(3))
            .unwrap_or("unknown");
        let body = request.body().bytes().unwrap_or_default();
        // JSON protocols name the operation in X-Amz-Target ("TrentService.DescribeKey");
        // the query protocol (SNS) in the form body ("Action=Publish&...").
        let operation = match headers.get("x-amz-target") {
            Some(target) => target.rsplit('.').next().unwrap_or(target).to_string(),
            None => std::str::from_utf8(body)
                .ok()
                .and_then(|form| {
                    form.split('&')
                        .find_map(|pair| pair.strip_prefix("Action="))
                        .map(str::to_string)
                })
                .unwrap_or_else(|| "unknown".to_string()),
        };
        let sent = Sent {
            operation: format!("{service}:{operation}"),
            body: body.to_vec(),
        };
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(sent);
    }

    fn take(&self) -> Vec<Sent> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// The test bed's HTTP client, recording each request before sending it.
#[derive(Debug)]
struct CountingClient {
    inner: SharedHttpClient,
    requests: Requests,
}

#[derive(Debug)]
struct CountingConnector {
    inner: SharedHttpConnector,
    requests: Requests,
}

impl HttpConnector for CountingConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        self.requests.record(&request);
        self.inner.call(request)
    }
}

impl HttpClient for CountingClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(CountingConnector {
            inner: self.inner.http_connector(settings, components),
            requests: self.requests.clone(),
        })
    }

    fn validate_base_client_config(
        &self,
        runtime_components: &RuntimeComponentsBuilder,
        cfg: &ConfigBag,
    ) -> Result<(), BoxError> {
        self.inner
            .validate_base_client_config(runtime_components, cfg)
    }

    fn validate_final_config(
        &self,
        runtime_components: &RuntimeComponents,
        cfg: &ConfigBag,
    ) -> Result<(), BoxError> {
        self.inner.validate_final_config(runtime_components, cfg)
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        self.inner.connector_metadata()
    }
}

/// Requests of one kind of key: per-operation totals and the spread of requests per key.
#[derive(Default)]
struct KindCount {
    keys: usize,
    per_operation: BTreeMap<String, usize>,
    per_key: HashMap<String, usize>,
}

impl KindCount {
    fn total(&self) -> usize {
        self.per_operation.values().sum()
    }

    fn per_key(&self) -> f64 {
        self.total() as f64 / self.keys.max(1) as f64
    }

    /// Fewest and most requests any key of this kind cost (keys without any request count 0).
    fn spread(&self) -> (usize, usize) {
        let min = if self.per_key.len() < self.keys {
            0
        } else {
            self.per_key.values().copied().min().unwrap_or(0)
        };
        (min, self.per_key.values().copied().max().unwrap_or(0))
    }

    fn describe(&self) -> String {
        let n = self.keys.max(1) as f64;
        self.per_operation
            .iter()
            .map(|(op, count)| format!("{op} {:.2}", *count as f64 / n))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Where each request went: to a compliant key, a drifted key, the sweep as a whole, or
/// (never expected) a request naming several keys.
struct Attribution {
    compliant: KindCount,
    drifted: KindCount,
    shared: BTreeMap<String, usize>,
    several: usize,
}

/// Attributes `requests` to the keys in `drifted_by_id` (key id -> drifted?).
fn attribute(requests: &[Sent], drifted_by_id: &HashMap<String, bool>) -> Attribution {
    let mut result = Attribution {
        compliant: KindCount {
            keys: drifted_by_id.values().filter(|d| !**d).count(),
            ..KindCount::default()
        },
        drifted: KindCount {
            keys: drifted_by_id.values().filter(|d| **d).count(),
            ..KindCount::default()
        },
        shared: BTreeMap::new(),
        several: 0,
    };
    for sent in requests {
        let named = uuids_in(&sent.body)
            .filter(|id| drifted_by_id.contains_key(*id))
            .collect::<HashSet<_>>();
        let mut named = named.into_iter();
        match (named.next(), named.next()) {
            (None, _) => *result.shared.entry(sent.operation.clone()).or_default() += 1,
            (Some(id), None) => {
                let kind = if drifted_by_id[id] {
                    &mut result.drifted
                } else {
                    &mut result.compliant
                };
                *kind
                    .per_operation
                    .entry(sent.operation.clone())
                    .or_default() += 1;
                *kind.per_key.entry(id.to_string()).or_default() += 1;
            }
            (Some(_), Some(_)) => result.several += 1,
        }
    }
    result
}

/// Every UUID-shaped run of text (8-4-4-4-12 hex digits) in `body`: how a key id appears in
/// a KMS request (inside the key ARN) and in an SNS message, URL-encoded or not.
fn uuids_in(body: &[u8]) -> impl Iterator<Item = &str> {
    const LEN: usize = 36;
    let is_uuid = |w: &[u8]| {
        w.iter().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => *b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
    };
    body.windows(LEN)
        .filter(move |w| is_uuid(w))
        .filter_map(|w| std::str::from_utf8(w).ok())
}

fn parse_args() -> Result<(usize, Vec<usize>), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (mut drift_every, mut sizes) = (10, Vec::new());
    while let Some(arg) = args.next() {
        if arg == "--drift-every" {
            drift_every = args.next().ok_or("--drift-every needs a number")?.parse()?;
            if drift_every == 0 {
                return Err("--drift-every must be at least 1".into());
            }
        } else {
            sizes.push(arg.parse()?);
        }
    }
    if sizes.is_empty() {
        sizes = vec![200, 400, 800];
    }
    Ok((drift_every, sizes))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (drift_every, sizes) = parse_args()?;
    println!(
        "1 key in {drift_every} drifted; requests to moto counted for KMS, Tagging API, SNS, SQS and DynamoDB"
    );
    println!(
        "keys  managed  corrected  wall_s  wall_ms/key  cpu_s  cpu_ms/key  calls/compliant  calls/drifted  shared  calls/key  peak_rss_mb"
    );
    println!(
        "(the fewest calls possible: a compliant key {MIN_COMPLIANT} (DescribeKey, GetKeyPolicy, GetKeyRotationStatus), a drifted one {MIN_DRIFTED} (+ PutKeyPolicy, Publish, and the state table's record before the write and its tombstone after the message, which keep a correction announced through a crash); peak RSS is this whole process, moto client and all)"
    );
    let mut details = Vec::new();
    for keys in sizes {
        let bed = TestBed::start().await;
        let config = config(&bed.topic_arn, &[("MODE", "enforce")]);
        let baseline =
            shared::policy::baseline::render(&config.baseline, ACCOUNT_ID, REGION, "aws")?;
        let mut drifted_by_id = HashMap::new();
        for i in 0..keys {
            let drifted = i % drift_every == 0;
            let policy = if drifted {
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
            drifted_by_id.insert(key.key_id, drifted);
        }
        let requests = Requests::default();
        let inner = bed
            .sdk
            .http_client()
            .ok_or("the test bed has no HTTP client")?;
        let sdk = bed
            .sdk
            .to_builder()
            .http_client(CountingClient {
                inner,
                requests: requests.clone(),
            })
            .build();
        let deps = Deps {
            config,
            clients: AwsClients::new(sdk),
            own: (),
        };
        let event = sample_event("policy-drift/scheduled-sweep.json", "unused");

        let (cpu_before, started) = (cpu_seconds(), Instant::now());
        let outcome = function_handler(LambdaEvent::new(event, Context::default()), &deps).await?;
        let (wall, cpu) = (started.elapsed().as_secs_f64(), cpu_seconds() - cpu_before);

        let Outcome::Sweep(report) = outcome else {
            return Err("the sweep returned no report".into());
        };
        let sent = requests.take();
        let counts = attribute(&sent, &drifted_by_id);
        let shared: usize = counts.shared.values().sum();
        let n = keys as f64;
        println!(
            "{keys:>4}  {:>7}  {:>9}  {wall:>6.2}  {:>11.2}  {cpu:>5.2}  {:>10.3}  {:>15.2}  {:>13.2}  {shared:>6}  {:>9.2}  {:>11.1}",
            report.managed,
            report.corrected,
            wall * 1000.0 / n,
            cpu * 1000.0 / n,
            counts.compliant.per_key(),
            counts.drifted.per_key(),
            sent.len() as f64 / n,
            peak_rss_mb(),
        );
        details.push((keys, counts));
    }
    println!();
    for (keys, counts) in details {
        let (c_min, c_max) = counts.compliant.spread();
        let (d_min, d_max) = counts.drifted.spread();
        println!("{keys} keys:");
        println!(
            "  compliant ({} keys, {c_min}..{c_max} requests each): {}",
            counts.compliant.keys,
            counts.compliant.describe()
        );
        println!(
            "  drifted   ({} keys, {d_min}..{d_max} requests each): {}",
            counts.drifted.keys,
            counts.drifted.describe()
        );
        let shared = counts
            .shared
            .iter()
            .map(|(op, count)| format!("{op} {count}"))
            .collect::<Vec<_>>()
            .join(", ");
        println!("  shared by the sweep: {shared}");
        if counts.several > 0 {
            println!(
                "  requests naming several keys: {} (not attributed)",
                counts.several
            );
        }
    }
    Ok(())
}
