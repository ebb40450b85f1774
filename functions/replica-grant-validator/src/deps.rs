//! What the validator needs at run time: the one deps shape of every function, with S3, per
//! bucket Region, as its own client, built on first use so the cold start does not pay for it.

use shared::aws::{Regional, SdkConfig, SdkRegion};

use crate::config::Config;

pub type Deps = shared::pipeline::Deps<Config, Clients>;

/// The validator's own clients beside the shared ones.
pub struct Clients {
    /// S3 in a bucket's Region: GetBucketReplication must be asked there.
    pub s3: Regional<aws_sdk_s3::Client>,
}

impl Clients {
    pub fn new() -> Clients {
        Clients {
            s3: Regional::new(s3_client),
        }
    }

    /// Uses `client` for S3 in `region`; tests hand in mocked or emulator clients this way.
    pub fn with_s3_client(self, region: &str, client: aws_sdk_s3::Client) -> Clients {
        self.s3.insert(region, client);
        self
    }
}

impl Default for Clients {
    fn default() -> Clients {
        Clients::new()
    }
}

/// S3 in `region`. The local emulator serves buckets by path; AWS accepts both.
fn s3_client(sdk: &SdkConfig, region: &str) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::config::Builder::from(sdk)
        .region(SdkRegion::new(region.to_string()))
        .force_path_style(sdk.endpoint_url().is_some())
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// S3 in the bucket's Region.
pub fn s3(deps: &Deps, region: &str) -> aws_sdk_s3::Client {
    deps.clients.regional(&deps.own.s3, region)
}
