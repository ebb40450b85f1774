//! What the validator needs from AWS: the shared clients (KMS per Region, SNS, tagging), and
//! S3 clients per bucket Region, built on first use so the cold start does not pay for them.

use std::collections::HashMap;
use std::sync::Mutex;

use shared::aws::AwsClients;
use shared::pipeline::Guard;

use crate::config::Config;
use crate::handler::FUNCTION;

pub struct Deps {
    pub config: Config,
    pub clients: AwsClients,
    sdk: aws_config::SdkConfig,
    s3: Mutex<HashMap<String, aws_sdk_s3::Client>>,
}

impl Deps {
    pub fn new(config: Config, clients: AwsClients, sdk: &aws_config::SdkConfig) -> Deps {
        Deps {
            config,
            clients,
            sdk: sdk.clone(),
            s3: Mutex::new(HashMap::new()),
        }
    }

    /// Uses `client` for S3 in `region`; tests hand in mocked or emulator clients this way.
    pub fn with_s3_client(self, region: &str, client: aws_sdk_s3::Client) -> Deps {
        if let Ok(mut clients) = self.s3.lock() {
            clients.insert(region.to_string(), client);
        }
        self
    }

    /// S3 in the bucket's Region: GetBucketReplication must be asked there.
    pub fn s3(&self, region: &str) -> aws_sdk_s3::Client {
        let build = || {
            let config = aws_sdk_s3::config::Builder::from(&self.sdk)
                .region(aws_config::Region::new(region.to_string()))
                // The local emulator serves buckets by path; AWS accepts both.
                .force_path_style(self.sdk.endpoint_url().is_some())
                .build();
            aws_sdk_s3::Client::from_conf(config)
        };
        match self.s3.lock() {
            Ok(mut clients) => clients
                .entry(region.to_string())
                .or_insert_with(build)
                .clone(),
            Err(_) => build(),
        }
    }

    pub fn guard(&self) -> Guard<'_> {
        Guard {
            function: FUNCTION,
            clients: &self.clients,
            common: &self.config.common,
        }
    }
}
