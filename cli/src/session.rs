//! Who is asking and where: the caller's own credentials (the default chain or `--profile`),
//! the Regions to look at, and the account those credentials belong to.

use aws_config::{BehaviorVersion, Region};
use shared::aws::{http_client, retry_config, timeout_config, SdkConfig, TrustRoots};
use shared::GuardrailError;

use crate::read_only::read_only;
use crate::CliError;

/// Whether the session may write (rollback) or not (everything else).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writes {
    Refused,
    Allowed,
}

pub struct Session {
    pub sdk: SdkConfig,
    pub account: String,
    /// The caller as an IAM principal: an assumed role's session is its role.
    pub principal: String,
    pub partition: String,
    /// The Regions asked for, the credentials' own Region when none was.
    pub regions: Vec<String>,
}

impl Session {
    pub async fn open(
        profile: Option<&str>,
        regions: &[String],
        writes: Writes,
    ) -> Result<Session, CliError> {
        let lookup = |name: &str| std::env::var(name).ok();
        let http = http_client(TrustRoots::from_env(&lookup));
        let http = match writes {
            Writes::Refused => read_only(http),
            Writes::Allowed => http,
        };
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .http_client(http)
            .retry_config(retry_config())
            .timeout_config(timeout_config());
        if let Some(profile) = profile {
            loader = loader.profile_name(profile);
        }
        if let Some(first) = regions.first() {
            loader = loader.region(Region::new(first.clone()));
        }
        let sdk = loader.load().await;
        let Some(home) = sdk.region().map(|r| r.to_string()) else {
            return Err(CliError::Setup(match profile {
                // The SDK finds no Region both for a profile that is not defined and for one
                // without `region`; both are fixed in the same place.
                Some(profile) => format!(
                    "no AWS Region: profile {profile:?} is not defined in your AWS config file \
                     (~/.aws/config, or AWS_CONFIG_FILE) or sets no region; check it with \
                     `aws configure list-profiles`, or pass --region"
                ),
                None => {
                    "no AWS Region: pass --region, or set one in your profile or AWS_REGION".into()
                }
            }));
        };
        let identity = aws_sdk_sts::Client::new(&sdk)
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| {
                CliError::Setup(format!(
                    "cannot tell who you are ({}); sign in first, or pass --profile",
                    GuardrailError::aws("GetCallerIdentity", "your credentials", e)
                ))
            })?;
        let arn = identity.arn().unwrap_or_default();
        let account = identity.account().unwrap_or_default().to_string();
        let partition = arn.split(':').nth(1).unwrap_or("aws").to_string();
        let regions = if regions.is_empty() {
            vec![home]
        } else {
            regions.to_vec()
        };
        Ok(Session {
            sdk,
            principal: iam_principal(arn),
            account,
            partition,
            regions,
        })
    }
}

/// The IAM principal behind a caller ARN: an assumed role's session is its role
/// (`arn:aws:sts::1:assumed-role/R/s` is `arn:aws:iam::1:role/R`); others keep their name.
pub fn iam_principal(caller: &str) -> String {
    let parts: Vec<&str> = caller.splitn(6, ':').collect();
    let [_, partition, _, _, account, resource] = parts[..] else {
        return caller.to_string();
    };
    match resource.strip_prefix("assumed-role/") {
        Some(role) => {
            let role = role.split('/').next().unwrap_or(role);
            format!("arn:{partition}:iam::{account}:role/{role}")
        }
        None => format!("arn:{partition}:iam::{account}:{resource}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_assumed_role_is_its_role_and_others_keep_their_name() {
        assert_eq!(
            iam_principal("arn:aws:sts::111122223333:assumed-role/SecurityAudit/jane"),
            "arn:aws:iam::111122223333:role/SecurityAudit"
        );
        assert_eq!(
            iam_principal("arn:aws:iam::111122223333:user/jane"),
            "arn:aws:iam::111122223333:user/jane"
        );
        // moto answers GetCallerIdentity with an sts user ARN.
        assert_eq!(
            iam_principal("arn:aws:sts::123456789012:user/moto"),
            "arn:aws:iam::123456789012:user/moto"
        );
    }
}
