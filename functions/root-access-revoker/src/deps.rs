//! What the revoker needs from AWS beyond the shared clients: IAM and Access Analyzer, each a
//! [`Regional`] cache built on first use, and the admin roles' facts read once a minute.

use std::time::{Duration, Instant};

use shared::aws::{AwsClients, Regional};
use shared::GuardrailError;
use tokio::sync::Mutex;

use crate::config::Config;
use crate::decide::AdminRole;

/// How long the admin roles read from IAM are trusted: one sweep reads them once.
const ROLE_FACTS_TTL: Duration = Duration::from_secs(60);

/// The one deps shape: configuration, the shared clients, and the revoker's own [`Clients`].
pub type Deps = shared::pipeline::Deps<Config, Clients>;

/// The revoker's own clients. IAM is global and Access Analyzer is asked where the function
/// runs, so both are called in the configured Region.
pub struct Clients {
    pub iam: Regional<aws_sdk_iam::Client>,
    pub analyzer: Regional<aws_sdk_accessanalyzer::Client>,
    role_facts: Mutex<Option<(Instant, Vec<AdminRole>)>>,
}

impl Default for Clients {
    fn default() -> Clients {
        Clients {
            iam: Regional::new(shared::regional_client!(aws_sdk_iam)),
            analyzer: Regional::new(shared::regional_client!(aws_sdk_accessanalyzer)),
            role_facts: Mutex::new(None),
        }
    }
}

impl Clients {
    pub fn new() -> Clients {
        Clients::default()
    }

    /// Uses `client` for IAM calls made in `region`; tests hand in a mocked client this way.
    pub fn with_iam_client(self, region: &str, client: aws_sdk_iam::Client) -> Clients {
        self.iam.insert(region, client);
        self
    }

    pub fn with_analyzer_client(
        self,
        region: &str,
        client: aws_sdk_accessanalyzer::Client,
    ) -> Clients {
        self.analyzer.insert(region, client);
        self
    }
}

/// The deps of a cold start: the revoker's own clients are built on first use.
pub fn new(config: Config, clients: AwsClients) -> Deps {
    Deps {
        config,
        clients,
        own: Clients::new(),
    }
}

/// IAM, in the configured Region (IAM is global; this is the Region today's SDK config names).
pub fn iam(deps: &Deps) -> aws_sdk_iam::Client {
    deps.clients
        .regional(&deps.own.iam, &deps.config.common.region)
}

/// IAM in `account`: this account's client, or one on the member account's member role, so
/// an admin role is read where it is.
pub fn iam_in(deps: &Deps, account: &str) -> aws_sdk_iam::Client {
    deps.clients
        .regional_in(&deps.own.iam, account, &deps.config.common.region)
}

pub fn analyzer(deps: &Deps) -> aws_sdk_accessanalyzer::Client {
    deps.clients
        .regional(&deps.own.analyzer, &deps.config.common.region)
}

/// The configured admin roles as IAM knows them now (exists, unique id), read once a minute.
pub async fn admin_roles(deps: &Deps) -> Result<Vec<AdminRole>, GuardrailError> {
    let mut cached = deps.own.role_facts.lock().await;
    if let Some((at, roles)) = cached.as_ref() {
        if at.elapsed() < ROLE_FACTS_TTL {
            return Ok(roles.clone());
        }
    }
    let mut roles = Vec::new();
    for arn in &deps.config.admin_role_arns {
        // A member account's admin role is read in that account, through its member role.
        let account = arn.split(':').nth(4).unwrap_or_default();
        if !account.is_empty() {
            deps.clients.reach(account).await?;
        }
        let role = crate::watch::get_role(&iam_in(deps, account), arn).await?;
        roles.push(AdminRole {
            arn: arn.clone(),
            role_id: role.map(|r| r.role_id),
        });
    }
    *cached = Some((Instant::now(), roles.clone()));
    Ok(roles)
}
