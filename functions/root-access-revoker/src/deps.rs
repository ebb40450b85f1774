//! What the revoker needs from AWS: the shared clients, and IAM and Access Analyzer clients
//! built on first use, with the admin roles' facts read once a minute.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use shared::aws::AwsClients;
use shared::pipeline::Guard;
use shared::GuardrailError;
use tokio::sync::Mutex;

use crate::config::Config;
use crate::decide::AdminRole;
use crate::handler::FUNCTION;

/// How long the admin roles read from IAM are trusted: one sweep reads them once.
const ROLE_FACTS_TTL: Duration = Duration::from_secs(60);

pub struct Deps {
    pub config: Config,
    pub clients: AwsClients,
    sdk: aws_config::SdkConfig,
    iam: OnceLock<aws_sdk_iam::Client>,
    analyzer: OnceLock<aws_sdk_accessanalyzer::Client>,
    role_facts: Mutex<Option<(Instant, Vec<AdminRole>)>>,
}

impl Deps {
    pub fn new(config: Config, clients: AwsClients, sdk: &aws_config::SdkConfig) -> Deps {
        Deps {
            config,
            clients,
            sdk: sdk.clone(),
            iam: OnceLock::new(),
            analyzer: OnceLock::new(),
            role_facts: Mutex::new(None),
        }
    }

    /// Uses `client` for IAM; tests hand in a mocked client this way.
    pub fn with_iam_client(self, client: aws_sdk_iam::Client) -> Deps {
        let _ = self.iam.set(client);
        self
    }

    pub fn with_analyzer_client(self, client: aws_sdk_accessanalyzer::Client) -> Deps {
        let _ = self.analyzer.set(client);
        self
    }

    /// IAM is global; built on first use so the cold start does not pay for it.
    pub fn iam(&self) -> &aws_sdk_iam::Client {
        self.iam.get_or_init(|| aws_sdk_iam::Client::new(&self.sdk))
    }

    pub fn analyzer(&self) -> &aws_sdk_accessanalyzer::Client {
        self.analyzer
            .get_or_init(|| aws_sdk_accessanalyzer::Client::new(&self.sdk))
    }

    pub fn guard(&self) -> Guard<'_> {
        Guard {
            function: FUNCTION,
            clients: &self.clients,
            common: &self.config.common,
        }
    }

    /// The configured admin roles as IAM knows them now (exists, unique id), read once a minute.
    pub async fn admin_roles(&self) -> Result<Vec<AdminRole>, GuardrailError> {
        let mut cached = self.role_facts.lock().await;
        if let Some((at, roles)) = cached.as_ref() {
            if at.elapsed() < ROLE_FACTS_TTL {
                return Ok(roles.clone());
            }
        }
        let mut roles = Vec::new();
        for arn in &self.config.admin_role_arns {
            let role = crate::watch::get_role(self.iam(), arn).await?;
            roles.push(AdminRole {
                arn: arn.clone(),
                role_id: role.map(|r| r.role_id),
            });
        }
        *cached = Some((Instant::now(), roles.clone()));
        Ok(roles)
    }
}
