//! The local test bed: a moto server on a free loopback port, seeded with keys and an SNS topic
//! whose SQS subscription lets tests and the demo read notifications back.

pub mod replication;
pub mod runtime_api;
pub mod template;

use shared::config::FunctionConfig;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_kms::types::{KeyMetadata, Tag};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use policy_drift::Config;
use serde_json::Value;
use shared::aws::AwsClients;

/// The account moto plays; the sample events in `events/` use the same one.
pub const ACCOUNT_ID: &str = "111122223333";
/// The functions' metrics as the dashboard and the alarms are built against them: each a count,
/// except SweepDuration (milliseconds, sweeps only).
pub const METRICS_CONTRACT: [&str; 9] = [
    "KeysAudited",
    "KeysNotFinished",
    "Findings",
    "Corrections",
    "Blocked",
    "Failed",
    "RegionsNotSwept",
    "ShutOut",
    "SweepDuration",
];
pub const REGION: &str = "eu-west-1";
/// The key id the sample events name; tests substitute the id moto gave their key.
pub const SAMPLE_KEY_ID: &str = "1234abcd-12ab-34cd-56ef-1234567890ab";
/// The multi-Region key id the replica-grant-validator samples name (AWS's form).
pub const SAMPLE_MRK_ID: &str = "mrk-1234abcd12ab34cd56ef1234567890ab";
/// The function role the samples' self-caused event names.
pub const SELF_ROLE_ARN: &str =
    "arn:aws:iam::111122223333:role/kms-guardrails-PolicyDriftFunctionRole-1A2B3C4D5E6F";
pub const ADMIN_ROLE_ARN: &str = "arn:aws:iam::111122223333:role/kms-admin";

/// What someone puts on a key by hand: the root plus debug access for another account, the
/// policy the `put-key-policy.json` sample records.
pub const DRIFTED_POLICY: &str = r#"{
  "Version": "2012-10-17",
  "Statement": [
    {"Sid": "EnableRootAccess", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": "kms:*", "Resource": "*"},
    {"Sid": "TemporaryDebugAccess", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::444455556666:root"}, "Action": ["kms:Decrypt", "kms:DescribeKey"], "Resource": "*"}
  ]
}"#;

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// How to start moto: `MOTO_SERVER` names a server binary to run as is; by default the
/// project's moto runs through `tests/moto_aws.py`, which corrects one emulator behaviour
/// toward AWS (replicas sharing their primary's grants; see the script).
fn moto_command() -> Command {
    if let Ok(path) = std::env::var("MOTO_SERVER") {
        return Command::new(path);
    }
    let python = workspace_root().join(".venv/moto/bin/python");
    assert!(
        python.exists(),
        "moto not found at {}: run `bash scripts/bootstrap.sh` (or set MOTO_SERVER)",
        python.display()
    );
    let mut command = Command::new(python);
    command.arg(workspace_root().join("tests/moto_aws.py"));
    command
}

/// The SDK configuration of a function whose `AWS_ENDPOINT_URL` is `endpoint` (moto, or the
/// fault proxy in front of it), with the production retries and `timeouts`.
async fn local_sdk_config(
    endpoint: &str,
    timeouts: aws_config::timeout::TimeoutConfig,
) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(shared::aws::http_client(
            shared::aws::TrustRoots::AmazonTrustServices,
        ))
        .endpoint_url(endpoint)
        .region(Region::new(REGION))
        .credentials_provider(aws_sdk_kms::config::Credentials::new(
            "testing", "testing", None, None, "moto",
        ))
        .retry_config(shared::aws::retry_config())
        .timeout_config(timeouts)
        .load()
        .await
}

/// `base` with the credentials of a role assumed in `account` (moto: they act in that account).
async fn sdk_in(base: &SdkConfig, account: &str) -> SdkConfig {
    let issued = aws_sdk_sts::Client::new(base)
        .assume_role()
        .role_arn(format!("arn:aws:iam::{account}:role/test-setup"))
        .role_session_name("test-setup")
        .send()
        .await
        .expect("assume a role on moto")
        .credentials
        .expect("credentials");
    let credentials = aws_sdk_kms::config::Credentials::new(
        issued.access_key_id(),
        issued.secret_access_key(),
        Some(issued.session_token().to_string()),
        None,
        "moto-assumed-role",
    );
    base.to_builder()
        .credentials_provider(aws_sdk_kms::config::SharedCredentialsProvider::new(
            credentials,
        ))
        .build()
}

/// A loopback port nothing listens on now.
fn free_loopback_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("no free loopback port")
        .port()
}

/// A moto server process, stopped when dropped.
pub struct MotoServer {
    child: Child,
    pub port: u16,
    pub endpoint: String,
}

impl MotoServer {
    pub fn start() -> MotoServer {
        MotoServer::launch(Some(ACCOUNT_ID))
    }

    /// A server whose account is the one of each request's credentials: static test
    /// credentials are account 123456789012, and credentials from `AssumeRole` are the role's
    /// account (`MOTO_ACCOUNT_ID` would pin every request to one account).
    pub fn start_multi_account() -> MotoServer {
        MotoServer::launch(None)
    }

    fn launch(account: Option<&str>) -> MotoServer {
        let port = free_loopback_port();
        let log_dir = workspace_root().join("target/moto-logs");
        std::fs::create_dir_all(&log_dir).expect("cannot create target/moto-logs");
        let log = std::fs::File::create(log_dir.join(format!("moto-{port}.log")))
            .expect("cannot create moto log");
        let mut command = moto_command();
        command.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
        match account {
            Some(account) => command.env("MOTO_ACCOUNT_ID", account),
            None => command.env_remove("MOTO_ACCOUNT_ID"),
        };
        let child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .expect("cannot start moto server");
        let server = MotoServer {
            child,
            port,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while server.http("GET", "/moto-api/data.json").is_err() {
            assert!(
                Instant::now() < deadline,
                "moto server on port {port} did not answer within 60 s; see target/moto-logs/moto-{port}.log"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }

    /// A minimal HTTP/1.1 request to moto's own API; returns the body.
    pub fn http(&self, method: &str, path: &str) -> std::io::Result<String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.port
        )?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
        if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
            return Err(std::io::Error::other(
                head.lines().next().unwrap_or("no status").to_string(),
            ));
        }
        Ok(body.to_string())
    }

    /// The SDK configuration a function would build with `AWS_ENDPOINT_URL` pointing here.
    pub async fn sdk_config(&self) -> SdkConfig {
        local_sdk_config(&self.endpoint, shared::aws::timeout_config()).await
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Configuration as the template would set it, with `extra` on top.
pub fn config(topic_arn: &str, extra: &[(&str, &str)]) -> Config {
    let mut env: Vec<(String, String)> = vec![
        ("ACCOUNT_ID".into(), ACCOUNT_ID.into()),
        ("AWS_REGION".into(), REGION.into()),
        ("NOTIFY_TOPIC_ARN".into(), topic_arn.into()),
        ("SELF_ROLE_ARN".into(), SELF_ROLE_ARN.into()),
        ("KMS_ADMIN_ROLE_ARNS".into(), ADMIN_ROLE_ARN.into()),
        (
            "SERVICE_PRINCIPALS".into(),
            "logs.eu-west-1.amazonaws.com".into(),
        ),
        ("ENVIRONMENT".into(), "test".into()),
        ("STATE_TABLE".into(), STATE_TABLE.into()),
    ];
    for (k, v) in extra {
        env.retain(|(name, _)| name != k);
        env.push((k.to_string(), v.to_string()));
    }
    Config::from_lookup(&|name| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
        .unwrap_or_else(|e| panic!("test configuration: {e}"))
}

/// The revoker's role in the samples and tests.
pub const REVOKER_ROLE_ARN: &str =
    "arn:aws:iam::111122223333:role/kms-guardrails-RootAccessRevokerRole-1A2B3C4D5E6F";

/// root-access-revoker's configuration as the template would set it, root access off, with
/// `extra` on top.
pub fn revoker_config(topic_arn: &str, extra: &[(&str, &str)]) -> root_access_revoker::Config {
    let mut env: Vec<(String, String)> = vec![
        ("ACCOUNT_ID".into(), ACCOUNT_ID.into()),
        ("AWS_REGION".into(), REGION.into()),
        ("NOTIFY_TOPIC_ARN".into(), topic_arn.into()),
        ("SELF_ROLE_ARN".into(), REVOKER_ROLE_ARN.into()),
        ("ROOT_ACCESS".into(), "false".into()),
        ("KMS_ADMIN_ROLE_ARNS".into(), ADMIN_ROLE_ARN.into()),
        ("MODE".into(), "enforce".into()),
        ("ENVIRONMENT".into(), "test".into()),
        ("STATE_TABLE".into(), STATE_TABLE.into()),
    ];
    for (k, v) in extra {
        env.retain(|(name, _)| name != k);
        env.push((k.to_string(), v.to_string()));
    }
    root_access_revoker::Config::from_lookup(&|name| {
        env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    })
    .unwrap_or_else(|e| panic!("test configuration: {e}"))
}

/// alarm-notifier's configuration as the template would set it, with `extra` on top.
pub fn notifier_config(topic_arn: &str, extra: &[(&str, &str)]) -> alarm_notifier::Config {
    let mut env: Vec<(String, String)> = vec![
        ("ACCOUNT_ID".into(), ACCOUNT_ID.into()),
        ("AWS_REGION".into(), REGION.into()),
        ("NOTIFY_TOPIC_ARN".into(), topic_arn.into()),
        (
            "SELF_ROLE_ARN".into(),
            "arn:aws:iam::111122223333:role/kms-guardrails-AlarmNotifierRole-1A2B3C4D5E6F".into(),
        ),
        ("ENVIRONMENT".into(), "test".into()),
    ];
    for (k, v) in extra {
        env.retain(|(name, _)| name != k);
        env.push((k.to_string(), v.to_string()));
    }
    alarm_notifier::Config::from_lookup(&|name| {
        env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    })
    .unwrap_or_else(|e| panic!("test configuration: {e}"))
}

/// The fault-injecting proxy (`tests/fault_proxy.py`) in front of a moto server, stopped when
/// dropped.
pub struct FaultProxy {
    child: Child,
    pub endpoint: String,
    /// One JSON line per request: operation, fault, and the policy of each PutKeyPolicy.
    pub log: PathBuf,
}

/// How one fault proxy misbehaves.
#[derive(Debug, Clone, Copy)]
pub struct FaultPlan {
    /// The share of requests that get a fault, 0 to 1.
    pub rate: f64,
    pub seed: u64,
    /// How long a slow answer waits: longer than the client's attempt timeout.
    pub slow: Duration,
}

impl FaultProxy {
    pub fn start(upstream: &MotoServer, plan: FaultPlan) -> FaultProxy {
        FaultProxy::launch(upstream, plan, &[])
    }

    /// A proxy that injects no fault but answers AssumeRole on `roles` with AccessDenied, as
    /// AWS does for a member role that is missing or does not trust the caller.
    pub fn denying_roles(upstream: &MotoServer, roles: &[&str]) -> FaultProxy {
        let plan = FaultPlan {
            rate: 0.0,
            seed: 1,
            slow: Duration::from_secs(1),
        };
        FaultProxy::launch(upstream, plan, roles)
    }

    fn launch(upstream: &MotoServer, plan: FaultPlan, denied_roles: &[&str]) -> FaultProxy {
        let port = free_loopback_port();
        let log_dir = workspace_root().join("target/moto-logs");
        std::fs::create_dir_all(&log_dir).expect("cannot create target/moto-logs");
        let log = log_dir.join(format!("faults-{port}.jsonl"));
        let python = workspace_root().join(".venv/moto/bin/python");
        let child = Command::new(python)
            .arg(workspace_root().join("tests/fault_proxy.py"))
            .args(["--port", &port.to_string()])
            .args(["--upstream", &upstream.endpoint])
            .args(["--rate", &plan.rate.to_string()])
            .args(["--seed", &plan.seed.to_string()])
            .args(["--slow", &plan.slow.as_secs_f64().to_string()])
            .arg("--log")
            .arg(&log)
            .args(denied_roles.iter().flat_map(|r| ["--deny-assume-role", r]))
            .stdin(Stdio::null())
            .spawn()
            .expect("cannot start the fault proxy");
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "fault proxy did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        FaultProxy {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            log,
        }
    }

    /// A function's SDK configuration through the proxy: the standard retries, and an attempt
    /// timeout shorter than the proxy's slow answers.
    pub async fn sdk_config(&self, attempt_timeout: Duration) -> SdkConfig {
        let timeouts = aws_config::timeout::TimeoutConfig::builder()
            .connect_timeout(attempt_timeout)
            .operation_attempt_timeout(attempt_timeout)
            .build();
        local_sdk_config(&self.endpoint, timeouts).await
    }

    /// Every request the proxy saw, in order.
    pub fn requests(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The state table every bed creates, as the template does.
pub const STATE_TABLE: &str = "kms-guardrails-state";

/// Everything a test needs: the server, clients on it and a topic whose notifications land in a queue.
pub struct TestBed {
    pub moto: MotoServer,
    pub sdk: SdkConfig,
    pub kms: aws_sdk_kms::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub topic_arn: String,
    pub queue_url: String,
}

impl TestBed {
    pub async fn start() -> TestBed {
        let moto = MotoServer::start();
        let sdk = moto.sdk_config().await;
        TestBed::seed(moto, sdk).await
    }

    /// A test bed whose hub is account 111122223333 on a multi-account server: other
    /// accounts are reached by assuming a role in them ([`TestBed::sdk_in`]).
    pub async fn start_organization() -> TestBed {
        let moto = MotoServer::start_multi_account();
        let base = moto.sdk_config().await;
        let sdk = sdk_in(&base, ACCOUNT_ID).await;
        TestBed::seed(moto, sdk).await
    }

    /// An SDK configuration acting in `account`, through a role assumed there.
    pub async fn sdk_in(&self, account: &str) -> SdkConfig {
        sdk_in(&self.sdk, account).await
    }

    async fn seed(moto: MotoServer, sdk: SdkConfig) -> TestBed {
        let kms = aws_sdk_kms::Client::new(&sdk);
        let sns = aws_sdk_sns::Client::new(&sdk);
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let topic_arn = sns
            .create_topic()
            .name("kms-guardrails-notifications")
            .send()
            .await
            .expect("create topic")
            .topic_arn
            .expect("topic arn");
        let queue_url = sqs
            .create_queue()
            .queue_name("notifications-inbox")
            .send()
            .await
            .expect("create queue")
            .queue_url
            .expect("queue url");
        let queue_arn = format!("arn:aws:sqs:{REGION}:{ACCOUNT_ID}:notifications-inbox");
        sns.subscribe()
            .topic_arn(&topic_arn)
            .protocol("sqs")
            .endpoint(queue_arn)
            .send()
            .await
            .expect("subscribe queue");
        create_state_table(&sdk, STATE_TABLE).await;
        TestBed {
            moto,
            sdk,
            kms,
            sqs,
            topic_arn,
            queue_url,
        }
    }

    pub fn clients(&self) -> AwsClients {
        AwsClients::new(self.sdk.clone())
    }

    /// A customer managed key with `tags` and, when given, `policy`.
    pub async fn create_key(
        &self,
        description: &str,
        tags: &[(&str, &str)],
        policy: Option<&str>,
    ) -> KeyMetadata {
        let mut request = self.kms.create_key().description(description);
        for (k, v) in tags {
            request = request.tags(
                Tag::builder()
                    .tag_key(*k)
                    .tag_value(*v)
                    .build()
                    .expect("tag"),
            );
        }
        if let Some(policy) = policy {
            request = request.policy(policy);
        }
        request
            .send()
            .await
            .expect("create key")
            .key_metadata
            .expect("key metadata")
    }

    pub async fn create_alias(&self, alias: &str, key_id: &str) {
        self.kms
            .create_alias()
            .alias_name(alias)
            .target_key_id(key_id)
            .send()
            .await
            .expect("create alias");
    }

    pub async fn key_policy(&self, key_id: &str) -> String {
        self.kms
            .get_key_policy()
            .key_id(key_id)
            .policy_name("default")
            .send()
            .await
            .expect("get key policy")
            .policy
            .unwrap_or_default()
    }

    pub async fn put_key_policy(&self, key_id: &str, policy: &str) {
        self.kms
            .put_key_policy()
            .key_id(key_id)
            .policy_name("default")
            .policy(policy)
            .send()
            .await
            .expect("put key policy");
    }

    pub async fn rotation_enabled(&self, key_id: &str) -> bool {
        self.kms
            .get_key_rotation_status()
            .key_id(key_id)
            .send()
            .await
            .expect("rotation status")
            .key_rotation_enabled
    }

    pub async fn key_state(&self, key_id: &str) -> String {
        self.kms
            .describe_key()
            .key_id(key_id)
            .send()
            .await
            .expect("describe key")
            .key_metadata
            .and_then(|m| m.key_state)
            .map(|s| s.as_str().to_string())
            .unwrap_or_default()
    }

    /// Creates the IAM role `arn` (by its name) with a trust policy the account may assume;
    /// returns its unique id.
    pub async fn create_role(&self, arn: &str) -> String {
        let name = arn.rsplit('/').next().expect("role name");
        aws_sdk_iam::Client::new(&self.sdk)
            .create_role()
            .role_name(name)
            .assume_role_policy_document(format!(
                r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{ACCOUNT_ID}:root"}},"Action":"sts:AssumeRole"}}]}}"#
            ))
            .send()
            .await
            .expect("create role")
            .role
            .expect("role")
            .role_id
    }

    /// Every notification delivered so far, drained from the queue.
    pub async fn notifications(&self) -> Vec<SnsMessage> {
        let mut all = Vec::new();
        loop {
            let out = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(0)
                .send()
                .await
                .expect("receive messages");
            let messages = out.messages.unwrap_or_default();
            if messages.is_empty() {
                return all;
            }
            for m in messages {
                let envelope: Value =
                    serde_json::from_str(m.body().unwrap_or("{}")).expect("SNS envelope JSON");
                all.push(SnsMessage {
                    subject: envelope["Subject"].as_str().unwrap_or_default().to_string(),
                    message: envelope["Message"].as_str().unwrap_or_default().to_string(),
                    attributes: envelope["MessageAttributes"].clone(),
                });
                if let Some(handle) = m.receipt_handle() {
                    self.sqs
                        .delete_message()
                        .queue_url(&self.queue_url)
                        .receipt_handle(handle)
                        .send()
                        .await
                        .expect("delete message");
                }
            }
        }
    }

    /// Clients for a function under test, with every KMS call it makes recorded.
    pub fn recorded_clients(&self) -> (AwsClients, CallLog) {
        self.recorded_clients_in(&[REGION])
    }

    /// The same, for KMS in each of `regions`, into one log.
    pub fn recorded_clients_in(&self, regions: &[&str]) -> (AwsClients, CallLog) {
        let log = CallLog::default();
        let mut clients = self.clients();
        for region in regions {
            let kms_config = aws_sdk_kms::config::Builder::from(&self.sdk)
                .region(Region::new(region.to_string()))
                .interceptor(log.clone())
                .build();
            clients = clients.with_kms_client(region, aws_sdk_kms::Client::from_conf(kms_config));
        }
        (clients, log)
    }
}

/// The KMS operations a client sent, in order: an independent count of reads and writes.
#[derive(Debug, Clone, Default)]
pub struct CallLog(Arc<Mutex<Vec<(String, String)>>>);

/// KMS operations that change a key.
const KMS_WRITES: &[&str] = &[
    "PutKeyPolicy",
    "EnableKeyRotation",
    "DisableKeyRotation",
    "CancelKeyDeletion",
    "ScheduleKeyDeletion",
    "EnableKey",
    "DisableKey",
    "CreateGrant",
    "RevokeGrant",
    "RetireGrant",
    "TagResource",
    "UntagResource",
];

impl CallLog {
    pub fn operations(&self) -> Vec<String> {
        self.calls().into_iter().map(|(_, op)| op).collect()
    }

    /// (Region, operation) of every request, the Region read off its signature.
    pub fn calls(&self) -> Vec<(String, String)> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The writes sent to `region`.
    pub fn writes_in(&self, region: &str) -> Vec<String> {
        self.calls()
            .into_iter()
            .filter(|(r, op)| r == region && KMS_WRITES.contains(&op.as_str()))
            .map(|(_, op)| op)
            .collect()
    }

    pub fn writes(&self) -> Vec<String> {
        self.operations()
            .into_iter()
            .filter(|op| KMS_WRITES.contains(&op.as_str()))
            .collect()
    }

    pub fn clear(&self) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

impl Intercept for CallLog {
    fn name(&self) -> &'static str {
        "CallLog"
    }

    /// Reads the operation off the wire request (`X-Amz-Target: TrentService.PutKeyPolicy`),
    /// so every HTTP request sent is counted, retries included.
    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let target = context
            .request()
            .headers()
            .get("x-amz-target")
            .unwrap_or_default();
        let operation = target.rsplit('.').next().unwrap_or(target).to_string();
        // SigV4: `Credential=KEY/DATE/REGION/SERVICE/aws4_request`.
        let region = context
            .request()
            .headers()
            .get("authorization")
            .and_then(|auth| auth.split("Credential=").nth(1))
            .and_then(|scope| scope.split('/').nth(2))
            .unwrap_or_default()
            .to_string();
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((region, operation));
        Ok(())
    }
}

/// The SNS `Publish` requests a client sent, their form fields decoded: what every protocol's
/// subscriber would get, which one SQS subscription cannot show.
#[derive(Debug, Clone, Default)]
pub struct PublishLog(Arc<Mutex<Vec<FormFields>>>);

/// One request's form fields, decoded, in order.
type FormFields = Vec<(String, String)>;

impl PublishLog {
    /// The `Message` of every Publish, in order.
    pub fn messages(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter_map(|fields| {
                fields
                    .iter()
                    .find(|(k, _)| k == "Message")
                    .map(|(_, v)| v.clone())
            })
            .collect()
    }
}

/// A request's body as text (empty when streamed).
fn request_body(context: &BeforeTransmitInterceptorContextRef<'_>) -> String {
    context
        .request()
        .body()
        .bytes()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .unwrap_or_default()
}

/// A Query-protocol body's form fields, decoded, in order.
fn form_fields(body: &str) -> FormFields {
    body.split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| {
            (
                shared::base::text::percent_decode(k),
                shared::base::text::percent_decode(v),
            )
        })
        .collect()
}

impl Intercept for PublishLog {
    fn name(&self) -> &'static str {
        "PublishLog"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let body = request_body(context);
        let fields = form_fields(&body);
        if fields.iter().any(|(k, v)| k == "Action" && v == "Publish") {
            self.0
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(fields);
        }
        Ok(())
    }
}

/// What a function saw of its announcements, counted from the client's side (no clock or
/// socket guess decides it): per `announcement_id`, the SNS Publish and fallback-queue
/// SendMessage calls that returned a success to the function, and the calls that failed to mark
/// its state-table record settled. A delivery SNS or SQS took but whose answer the function
/// never got (reset, past the attempt timeout) is not seen.
#[derive(Debug, Clone, Default)]
pub struct AnswersSeen(Arc<Mutex<AnswerCounts>>);

#[derive(Debug, Default)]
struct AnswerCounts {
    delivered: std::collections::HashMap<String, usize>,
    settles_failed: std::collections::HashMap<String, usize>,
}

/// What an attempt is about, kept from the request to the end of the call.
#[derive(Debug, Clone)]
enum Watched {
    /// A delivery of this announcement.
    Delivery(String),
    /// Marking settled the record of this announcement.
    Settle(String),
}

impl aws_smithy_types::config_bag::Storable for Watched {
    type Storer = aws_smithy_types::config_bag::StoreReplace<Self>;
}

impl AnswersSeen {
    fn counts(&self) -> std::sync::MutexGuard<'_, AnswerCounts> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Deliveries of announcement `id` the function saw succeed.
    pub fn delivered(&self, id: &str) -> usize {
        self.counts().delivered.get(id).copied().unwrap_or_default()
    }

    /// Calls that failed to mark the record of announcement `id` settled.
    pub fn settles_failed(&self, id: &str) -> usize {
        self.counts()
            .settles_failed
            .get(id)
            .copied()
            .unwrap_or_default()
    }

    /// Calls that failed to mark any record settled.
    pub fn settles_failed_in_all(&self) -> usize {
        self.counts().settles_failed.values().sum()
    }

    /// What a request body is about: a Publish (form fields), a fallback SendMessage or a
    /// DynamoDB PutItem (JSON).
    fn watched(body: &str) -> Option<Watched> {
        if let Ok(json) = serde_json::from_str::<Value>(body) {
            if json["Item"]["state"]["S"] == "settled" {
                let sort_key = json["Item"]["sk"]["S"].as_str()?;
                return Some(Watched::Settle(
                    shared::pipeline::journal::Journal::announcement_of_record(sort_key)?,
                ));
            }
            let message: Value = serde_json::from_str(json["MessageBody"].as_str()?).ok()?;
            let id = &message["attributes"]["announcement_id"];
            let id = id["Value"].as_str().or(id.as_str())?;
            return Some(Watched::Delivery(id.to_string()));
        }
        let fields = form_fields(body);
        if !fields.iter().any(|(k, v)| k == "Action" && v == "Publish") {
            return None;
        }
        let entry = fields
            .iter()
            .find(|(k, v)| {
                k.starts_with("MessageAttributes.entry.")
                    && k.ends_with(".Name")
                    && v == "announcement_id"
            })
            .map(|(k, _)| k.trim_end_matches(".Name").to_string())?;
        let value = format!("{entry}.Value.StringValue");
        fields
            .into_iter()
            .find(|(k, _)| *k == value)
            .map(|(_, v)| Watched::Delivery(v))
    }

    /// `clients` with SNS, SQS and DynamoDB clients in `region` that count what they saw.
    pub fn install(&self, sdk: &SdkConfig, region: &str, clients: AwsClients) -> AwsClients {
        let region = Region::new(region.to_string());
        let sns = aws_sdk_sns::config::Builder::from(sdk)
            .region(region.clone())
            .interceptor(self.clone())
            .build();
        let sqs = aws_sdk_sqs::config::Builder::from(sdk)
            .region(region.clone())
            .interceptor(self.clone())
            .build();
        let dynamodb = aws_sdk_dynamodb::config::Builder::from(sdk)
            .region(region.clone())
            .interceptor(self.clone())
            .build();
        clients
            .with_sns_client(region.as_ref(), aws_sdk_sns::Client::from_conf(sns))
            .with_sqs_client(region.as_ref(), aws_sdk_sqs::Client::from_conf(sqs))
            .with_dynamodb_client(
                region.as_ref(),
                aws_sdk_dynamodb::Client::from_conf(dynamodb),
            )
    }
}

impl Intercept for AnswersSeen {
    fn name(&self) -> &'static str {
        "AnswersSeen"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let body = request_body(context);
        if let Some(watched) = Self::watched(&body) {
            cfg.interceptor_state().store_put(watched);
        }
        Ok(())
    }

    fn read_after_execution(
        &self,
        context: &aws_smithy_runtime_api::client::interceptors::context::FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let succeeded = matches!(context.output_or_error(), Some(Ok(_)));
        let mut counts = self.counts();
        match cfg.load::<Watched>() {
            Some(Watched::Delivery(id)) if succeeded => {
                *counts.delivered.entry(id.clone()).or_default() += 1;
            }
            Some(Watched::Settle(id)) if !succeeded => {
                *counts.settles_failed.entry(id.clone()).or_default() += 1;
            }
            _ => {}
        }
        Ok(())
    }
}

impl TestBed {
    /// Clients whose SNS Publish requests are recorded.
    pub fn clients_recording_publish(&self) -> (AwsClients, PublishLog) {
        let log = PublishLog::default();
        let sns_config = aws_sdk_sns::config::Builder::from(&self.sdk)
            .interceptor(log.clone())
            .build();
        let clients = self
            .clients()
            .with_sns_client(REGION, aws_sdk_sns::Client::from_conf(sns_config));
        (clients, log)
    }

    /// The open items of the state table (settled records left out), as (pk, sk) pairs.
    pub async fn state_items(&self) -> Vec<(String, String)> {
        let out = aws_sdk_dynamodb::Client::new(&self.sdk)
            .scan()
            .table_name(STATE_TABLE)
            .send()
            .await
            .expect("scan the state table");
        let text =
            |item: &std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>,
             name: &str| {
                item.get(name)
                    .and_then(|v| v.as_s().ok())
                    .cloned()
                    .unwrap_or_default()
            };
        out.items()
            .iter()
            .filter(|item| text(item, "state") != "settled")
            .map(|item| (text(item, "pk"), text(item, "sk")))
            .collect()
    }

    /// The de-duplication table as the template creates it.
    pub async fn create_dedup_table(&self, name: &str) {
        use aws_sdk_dynamodb::types::{
            AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
        };
        aws_sdk_dynamodb::Client::new(&self.sdk)
            .create_table()
            .table_name(name)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name("transition")
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .expect("attribute"),
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name("transition")
                    .key_type(KeyType::Hash)
                    .build()
                    .expect("key schema"),
            )
            .send()
            .await
            .expect("create table");
    }
}

#[derive(Debug, Clone)]
pub struct SnsMessage {
    pub subject: String,
    pub message: String,
    pub attributes: Value,
}

/// A sample event from `events/`, rewritten to name the key moto created.
pub fn sample_event(name: &str, key_id: &str) -> Value {
    let path = workspace_root().join("events").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let text = text
        .replace(SAMPLE_KEY_ID, key_id)
        .replace(SAMPLE_MRK_ID, key_id);
    serde_json::from_str(&text).expect("sample event JSON")
}

/// The key-administrator actions of AWS's default key policy, as the Terraform module's
/// `kms_admin_role` statement lists them (written out here, not taken from the code under test).
const KEY_ADMINISTRATOR_ACTIONS: &[&str] = &[
    "kms:Create*",
    "kms:Describe*",
    "kms:Enable*",
    "kms:List*",
    "kms:Put*",
    "kms:Update*",
    "kms:Revoke*",
    "kms:Disable*",
    "kms:Get*",
    "kms:Delete*",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:ScheduleKeyDeletion",
    "kms:CancelKeyDeletion",
    "kms:RotateKeyOnDemand",
    "kms:ReplicateKey",
];

/// The baseline `config()` describes, for a key in `region`, written out by hand: the account
/// root when `root_access`, the admin roles with the key-administrator actions, and the
/// CloudWatch Logs guide's statement for the key's own Region.
pub fn expected_baseline(region: &str, root_access: bool, admins: &[&str]) -> String {
    let mut statements = Vec::new();
    if root_access {
        statements.push(serde_json::json!({
            "Effect": "Allow",
            "Principal": {"AWS": format!("arn:aws:iam::{ACCOUNT_ID}:root")},
            "Action": "kms:*",
            "Resource": "*"
        }));
    }
    statements.push(serde_json::json!({
        "Effect": "Allow",
        "Principal": {"AWS": admins},
        "Action": KEY_ADMINISTRATOR_ACTIONS,
        "Resource": "*"
    }));
    statements.push(serde_json::json!({
        "Effect": "Allow",
        "Principal": {"Service": format!("logs.{region}.amazonaws.com")},
        "Action": ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
        "Resource": "*",
        "Condition": {"ArnLike": {
            "kms:EncryptionContext:aws:logs:arn": format!("arn:aws:logs:{region}:{ACCOUNT_ID}:*")
        }}
    }));
    serde_json::json!({"Version": "2012-10-17", "Statement": statements}).to_string()
}

/// The state table as template.yaml creates it: `pk` and `sk`, both strings.
pub async fn create_state_table(sdk: &SdkConfig, name: &str) {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    };
    let attribute = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .expect("attribute")
    };
    let key = |name: &str, kind: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .expect("key schema")
    };
    aws_sdk_dynamodb::Client::new(sdk)
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attribute("pk"))
        .attribute_definitions(attribute("sk"))
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        .send()
        .await
        .expect("create the state table");
}
