//! AWS client construction: one shared SDK configuration, one client per Region (a key ARN in
//! another Region sends the call there), the endpoint override for local runs and standard
//! retries with backoff for throttling and transient errors.

pub mod accounts;
pub mod grants;
pub mod kms;
pub mod tagging;

use std::collections::HashMap;
use std::sync::Mutex;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_kms::config::{Credentials, SharedCredentialsProvider};
use aws_smithy_http_client::tls;
use aws_smithy_runtime_api::client::http::SharedHttpClient;

use crate::base::error::GuardrailError;
use crate::base::outbox::Outbox;
use crate::base::pace::{Paced, Paces, Rates};
use crate::config::CommonConfig;

/// Attempts per call, first try included. Throttling and 5xx are retried with jittered
/// exponential backoff; AccessDenied and validation errors are not.
pub const MAX_ATTEMPTS: u32 = 3;

pub fn retry_config() -> RetryConfig {
    RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS)
}

/// How long one attempt may take before it is abandoned and retried: AWS answers these calls in
/// well under a second, and without a bound a connection that hangs holds the invocation until
/// its own timeout, with nothing announced.
pub const ATTEMPT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// How long a connection may take to open.
pub const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

pub fn timeout_config() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .build()
}

/// The roots of Amazon Trust Services, which sign every AWS API endpoint's certificate.
const AMAZON_TRUST_SERVICES_ROOTS: &[u8] = include_bytes!("../../certs/amazon-trust-services.pem");

/// Which certificate authorities TLS connections trust.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrustRoots {
    /// Only Amazon Trust Services. Parsing five roots instead of the system's ~140 is what keeps
    /// the cold start within budget, and nothing but AWS is ever called.
    AmazonTrustServices,
    /// The system's certificate store: for an https `AWS_ENDPOINT_URL` (a proxy, an emulator)
    /// or when `TLS_TRUST_SYSTEM_ROOTS=true`.
    System,
}

impl TrustRoots {
    pub fn from_env(lookup: &dyn Fn(&str) -> Option<String>) -> TrustRoots {
        let custom_https_endpoint =
            lookup("AWS_ENDPOINT_URL").is_some_and(|url| url.starts_with("https://"));
        let asked =
            lookup("TLS_TRUST_SYSTEM_ROOTS").is_some_and(|v| v.eq_ignore_ascii_case("true"));
        if custom_https_endpoint || asked {
            TrustRoots::System
        } else {
            TrustRoots::AmazonTrustServices
        }
    }
}

/// The HTTPS client every SDK client shares: rustls with ring.
pub fn http_client(roots: TrustRoots) -> SharedHttpClient {
    let builder = aws_smithy_http_client::Builder::new().tls_provider(tls::Provider::Rustls(
        tls::rustls_provider::CryptoMode::Ring,
    ));
    let trust_store = match roots {
        TrustRoots::System => return builder.build_https(),
        TrustRoots::AmazonTrustServices => tls::TrustStore::empty()
            .with_native_roots(false)
            .with_pem_certificate(AMAZON_TRUST_SERVICES_ROOTS),
    };
    match tls::TlsContext::builder()
        .with_trust_store(trust_store)
        .build()
    {
        Ok(context) => builder.tls_context(context).build_https(),
        // Unreachable with the bundled roots (a unit test parses them); never fail open.
        Err(_) => builder.build_https(),
    }
}

/// The SDK configuration. Lambda puts the Region and the role's credentials in the
/// environment, so that case is built directly (well under a millisecond); anything else
/// (profiles, SSO, IMDS) goes through the full default provider chain. `AWS_ENDPOINT_URL`
/// (local runs against moto) is honoured either way.
pub async fn load_sdk_config() -> SdkConfig {
    let http = http_client(TrustRoots::from_env(&|name| std::env::var(name).ok()));
    if let Some(config) = from_lambda_environment(&|name| std::env::var(name).ok(), http.clone()) {
        return config;
    }
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(http)
        .retry_config(retry_config())
        .timeout_config(timeout_config())
        .load()
        .await
}

/// The configuration Lambda's environment fully describes: Region and static or session
/// credentials in environment variables. `None` when anything is missing.
pub fn from_lambda_environment(
    lookup: &dyn Fn(&str) -> Option<String>,
    http: SharedHttpClient,
) -> Option<SdkConfig> {
    let present = |name: &str| lookup(name).filter(|v| !v.is_empty());
    let region = present("AWS_REGION").or_else(|| present("AWS_DEFAULT_REGION"))?;
    let access_key = present("AWS_ACCESS_KEY_ID")?;
    let secret_key = present("AWS_SECRET_ACCESS_KEY")?;
    let credentials = Credentials::new(
        access_key,
        secret_key,
        present("AWS_SESSION_TOKEN"),
        None,
        "Environment",
    );
    let mut builder = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region))
        .credentials_provider(SharedCredentialsProvider::new(credentials))
        .retry_config(retry_config())
        .timeout_config(timeout_config())
        .http_client(http);
    if let Some(endpoint) = present("AWS_ENDPOINT_URL") {
        builder = builder.endpoint_url(endpoint);
    }
    Some(builder.build())
}

/// One service's clients, one per Region, built on first use and kept for the container's
/// life. Every client of every function is cached this one way.
pub struct Regional<C> {
    build: fn(&SdkConfig, &str) -> C,
    clients: Mutex<HashMap<String, C>>,
}

impl<C: Clone> Regional<C> {
    /// `build` makes the client for one Region from the shared SDK configuration.
    pub fn new(build: fn(&SdkConfig, &str) -> C) -> Regional<C> {
        Regional {
            build,
            clients: Mutex::default(),
        }
    }

    /// The client for `region`, built from `sdk` the first time.
    pub fn get(&self, sdk: &SdkConfig, region: &str) -> C {
        self.lock()
            .entry(region.to_string())
            .or_insert_with(|| (self.build)(sdk, region))
            .clone()
    }

    /// The client under `key` (another account's, in `region`), built from `sdk()` the first
    /// time.
    fn get_keyed(&self, key: String, region: &str, sdk: impl FnOnce() -> SdkConfig) -> C {
        self.lock()
            .entry(key)
            .or_insert_with(|| (self.build)(&sdk(), region))
            .clone()
    }

    /// Uses `client` for `region`; tests hand in mocked or emulator clients this way.
    pub fn insert(&self, region: &str, client: C) {
        self.lock().insert(region.to_string(), client);
    }

    /// A poisoned lock only means another thread panicked mid-insert; the map is still usable.
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, C>> {
        self.clients.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// `Client::from_conf` for one service in one Region: the `build` of a [`Regional`].
#[macro_export]
macro_rules! regional_client {
    ($service:ident) => {
        |sdk: &$crate::aws::SdkConfig, region: &str| {
            let config = $service::config::Builder::from(sdk)
                .region($crate::aws::SdkRegion::new(region.to_string()))
                .build();
            $service::Client::from_conf(config)
        }
    };
}

pub use aws_config::Region as SdkRegion;
pub use aws_config::SdkConfig;

/// The clients every function uses (KMS, SNS, SQS, tagging, DynamoDB), one per Region, from one SDK
/// configuration; a function's own services are [`Regional`] caches beside it in `Deps`.
pub struct AwsClients {
    sdk: SdkConfig,
    kms: Regional<aws_sdk_kms::Client>,
    sns: Regional<aws_sdk_sns::Client>,
    sqs: Regional<aws_sdk_sqs::Client>,
    tagging: Regional<aws_sdk_resourcegroupstagging::Client>,
    dynamodb: Regional<aws_sdk_dynamodb::Client>,
    /// Other accounts, through their member role; `None`: this account only.
    members: Option<Members>,
    /// Request pacing per (account, Region), below the KMS quotas.
    paces: Paces,
    /// Where notifications go instead of SNS (the command-line audit); `None`: published.
    outbox: Option<Outbox>,
    /// Whether the state table may be written (see [`StateAccess`]).
    state: StateAccess,
}

/// What a function may do with the state table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateAccess {
    /// Record, remember and read: as deployed.
    ReadWrite,
    /// Read each key's desired state, record nothing: the command-line audit, which must show
    /// every finding (no announcement memory) and leave no trace (no journal, no new version).
    ReadOnly,
}

/// The member accounts' sessions; their clients live in the same [`Regional`] caches as this
/// account's, under `account/region`.
struct Members {
    home: String,
    sessions: std::sync::Arc<accounts::MemberSessions>,
}

impl Members {
    /// The SDK configuration of `account`: the home one with the member role's credentials.
    fn sdk(&self, home: &SdkConfig, account: &str) -> SdkConfig {
        let credentials = accounts::MemberCredentials {
            sessions: self.sessions.clone(),
            account: account.to_string(),
        };
        home.to_builder()
            .credentials_provider(SharedCredentialsProvider::new(credentials))
            .build()
    }
}

impl AwsClients {
    pub fn new(sdk: SdkConfig) -> AwsClients {
        AwsClients {
            sdk,
            kms: Regional::new(regional_client!(aws_sdk_kms)),
            sns: Regional::new(regional_client!(aws_sdk_sns)),
            sqs: Regional::new(regional_client!(aws_sdk_sqs)),
            tagging: Regional::new(regional_client!(aws_sdk_resourcegroupstagging)),
            dynamodb: Regional::new(regional_client!(aws_sdk_dynamodb)),
            members: None,
            paces: Paces::default(),
            outbox: None,
            state: StateAccess::ReadWrite,
        }
    }

    /// This account's clients, and other accounts' through the member role when the
    /// configuration names one (`function` names the sessions in their CloudTrail).
    pub fn for_function(sdk: SdkConfig, common: &CommonConfig, function: &str) -> AwsClients {
        let clients = AwsClients::new(sdk.clone()).with_rates(common.rates);
        match &common.members {
            None => clients,
            Some(role) => {
                let sts = aws_sdk_sts::Client::new(&sdk);
                let partition = common.self_role_arn.partition();
                let sessions =
                    accounts::MemberSessions::new(role.clone(), partition, function, sts);
                clients.with_members(&common.account_id, sessions)
            }
        }
    }

    /// Reaches the accounts of the organization through `sessions` (their member role);
    /// `home` is this account, reached with the function's own credentials.
    pub fn with_members(mut self, home: &str, sessions: accounts::MemberSessions) -> AwsClients {
        self.members = Some(Members {
            home: home.to_string(),
            sessions: std::sync::Arc::new(sessions),
        });
        self
    }

    /// Keeps every notification in `outbox` instead of publishing it.
    pub fn with_outbox(mut self, outbox: Outbox) -> AwsClients {
        self.outbox = Some(outbox);
        self
    }

    /// Reads the state table's desired state and records nothing there.
    pub fn with_state_read_only(mut self) -> AwsClients {
        self.state = StateAccess::ReadOnly;
        self
    }

    pub fn state_access(&self) -> StateAccess {
        self.state
    }

    /// The outbox notifications are kept in, when they are not published.
    pub fn outbox(&self) -> Option<&Outbox> {
        self.outbox.as_ref()
    }

    /// Paces sweeps and corrections at `rates` per account and Region.
    pub fn with_rates(mut self, rates: Rates) -> AwsClients {
        self.paces = Paces::new(rates);
        self
    }

    /// Waits until `paced` may go on in `account` and `region` (see [`crate::base::pace`]).
    pub async fn pace(&self, account: &str, region: &str, paced: Paced) {
        self.paces.wait(account, region, paced).await;
    }

    /// The member account's sessions, when `account` is another account reached through its
    /// member role (an empty account is this one).
    fn member<'a>(&'a self, account: &str) -> Option<&'a Members> {
        self.members
            .as_ref()
            .filter(|m| m.home != account && !account.is_empty())
    }

    /// Whether keys of `account` can be reached at all: this account, or any account when a
    /// member role is configured.
    pub fn serves(&self, account: &str, home: &str) -> bool {
        account == home || self.members.is_some()
    }

    /// Checks that `account` can be reached, assuming its member role once (then cached): a
    /// missing or denied role is an AccessDenied failure naming the role, before any key call.
    pub async fn reach(&self, account: &str) -> Result<(), GuardrailError> {
        match self.member(account) {
            Some(members) => members.sessions.credentials(account).await.map(|_| ()),
            None => Ok(()),
        }
    }

    /// A service of `cache` in `account` and `region`: this account's client, or one on the
    /// member role, each built once.
    pub fn regional_in<C: Clone>(&self, cache: &Regional<C>, account: &str, region: &str) -> C {
        match self.member(account) {
            None => self.regional(cache, region),
            Some(members) => cache.get_keyed(format!("{account}/{region}"), region, || {
                members.sdk(&self.sdk, account)
            }),
        }
    }

    /// KMS in `account` and `region`: this account's client, or one on the member role.
    pub fn kms_in(&self, account: &str, region: &str) -> aws_sdk_kms::Client {
        self.regional_in(&self.kms, account, region)
    }

    /// The Tagging API in `account` and `region`.
    pub fn tagging_in(&self, account: &str, region: &str) -> aws_sdk_resourcegroupstagging::Client {
        self.regional_in(&self.tagging, account, region)
    }

    pub fn sdk(&self) -> &SdkConfig {
        &self.sdk
    }

    /// A function's own service in `region`, from the same SDK configuration.
    pub fn regional<C: Clone>(&self, cache: &Regional<C>, region: &str) -> C {
        cache.get(&self.sdk, region)
    }

    /// Uses `client` for every KMS call to `region`; tests hand in mocked clients this way.
    pub fn with_kms_client(self, region: &str, client: aws_sdk_kms::Client) -> AwsClients {
        self.kms.insert(region, client);
        self
    }

    pub fn with_sns_client(self, region: &str, client: aws_sdk_sns::Client) -> AwsClients {
        self.sns.insert(region, client);
        self
    }

    pub fn with_sqs_client(self, region: &str, client: aws_sdk_sqs::Client) -> AwsClients {
        self.sqs.insert(region, client);
        self
    }

    pub fn with_tagging_client(
        self,
        region: &str,
        client: aws_sdk_resourcegroupstagging::Client,
    ) -> AwsClients {
        self.tagging.insert(region, client);
        self
    }

    pub fn with_dynamodb_client(
        self,
        region: &str,
        client: aws_sdk_dynamodb::Client,
    ) -> AwsClients {
        self.dynamodb.insert(region, client);
        self
    }

    pub fn kms(&self, region: &str) -> aws_sdk_kms::Client {
        self.kms.get(&self.sdk, region)
    }

    pub fn sns(&self, region: &str) -> aws_sdk_sns::Client {
        self.sns.get(&self.sdk, region)
    }

    pub fn sqs(&self, region: &str) -> aws_sdk_sqs::Client {
        self.sqs.get(&self.sdk, region)
    }

    /// DynamoDB: the state table (corrections not yet announced, findings announced).
    pub fn dynamodb(&self, region: &str) -> aws_sdk_dynamodb::Client {
        self.dynamodb.get(&self.sdk, region)
    }

    /// The Resource Groups Tagging API: one tag-filtered listing instead of a tag read per key.
    pub fn tagging(&self, region: &str) -> aws_sdk_resourcegroupstagging::Client {
        self.tagging.get(&self.sdk, region)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lambda_environment_builds_the_config_directly() {
        let env = |name: &str| {
            match name {
                "AWS_REGION" => Some("eu-west-1"),
                "AWS_ACCESS_KEY_ID" => Some("ASIAEXAMPLE"),
                "AWS_SECRET_ACCESS_KEY" => Some("secret"),
                "AWS_SESSION_TOKEN" => Some("token"),
                "AWS_ENDPOINT_URL" => Some("http://127.0.0.1:5000"),
                _ => None,
            }
            .map(str::to_string)
        };
        let config =
            from_lambda_environment(&env, http_client(TrustRoots::AmazonTrustServices)).unwrap();
        assert_eq!(config.region().map(|r| r.as_ref()), Some("eu-west-1"));
        assert_eq!(config.endpoint_url(), Some("http://127.0.0.1:5000"));
        assert_eq!(
            config.retry_config().map(|r| r.max_attempts()),
            Some(MAX_ATTEMPTS)
        );
        assert!(config.credentials_provider().is_some());
        // Without credentials in the environment the full provider chain is used instead.
        let no_keys = |name: &str| (name == "AWS_REGION").then(|| "eu-west-1".to_string());
        assert!(
            from_lambda_environment(&no_keys, http_client(TrustRoots::AmazonTrustServices))
                .is_none()
        );
    }

    #[test]
    fn the_bundled_amazon_roots_load_into_a_client() {
        // Connectors, and with them the trust store, are built with the client: a bad PEM panics here.
        let sdk = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("eu-west-1"))
            .http_client(http_client(TrustRoots::AmazonTrustServices))
            .build();
        let _client = aws_sdk_kms::Client::new(&sdk);
        let text = std::str::from_utf8(AMAZON_TRUST_SERVICES_ROOTS).unwrap();
        assert_eq!(text.matches("-----BEGIN CERTIFICATE-----").count(), 5);
    }

    #[test]
    fn system_roots_only_when_asked_or_for_a_custom_https_endpoint() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(
            TrustRoots::from_env(&env(&[])),
            TrustRoots::AmazonTrustServices
        );
        assert_eq!(
            TrustRoots::from_env(&env(&[("AWS_ENDPOINT_URL", "http://127.0.0.1:5000")])),
            TrustRoots::AmazonTrustServices
        );
        assert_eq!(
            TrustRoots::from_env(&env(&[("AWS_ENDPOINT_URL", "https://proxy.internal")])),
            TrustRoots::System
        );
        assert_eq!(
            TrustRoots::from_env(&env(&[("TLS_TRUST_SYSTEM_ROOTS", "true")])),
            TrustRoots::System
        );
    }

    #[tokio::test]
    async fn clients_follow_the_requested_region() {
        let sdk = SdkConfig::builder()
            .region(Region::new("eu-west-1"))
            .behavior_version(BehaviorVersion::latest())
            .build();
        let clients = AwsClients::new(sdk);
        assert_eq!(
            clients
                .kms("ap-northeast-2")
                .config()
                .region()
                .map(|r| r.as_ref()),
            Some("ap-northeast-2")
        );
        assert_eq!(
            clients
                .sns("us-east-1")
                .config()
                .region()
                .map(|r| r.as_ref()),
            Some("us-east-1")
        );
    }
}
