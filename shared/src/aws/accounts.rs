//! Member accounts of an organization, reached through the member role `spoke.yaml` deploys in
//! each: one AssumeRole per account (with the external id the hub and its spokes share), its
//! credentials kept until five minutes before they expire, so a sweep over an account calls STS
//! once, not once per key or Region.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{future, ProvideCredentials};
use aws_credential_types::Credentials;

use crate::base::error::GuardrailError;
pub use crate::config::MemberRole;

/// Credentials this close to expiring are renewed before use.
pub const RENEW_BEFORE: Duration = Duration::from_secs(300);
/// How long a session asks to last: STS's default, and the most a role chain allows.
const SESSION_SECONDS: i32 = 3600;

#[derive(Debug, Clone)]
struct Session {
    credentials: Credentials,
    expires: SystemTime,
}

/// One cached session per member account.
#[derive(Debug)]
pub struct MemberSessions {
    role: MemberRole,
    partition: String,
    /// Names the session in the member account's CloudTrail: the function.
    session_name: String,
    sts: aws_sdk_sts::Client,
    sessions: Mutex<HashMap<String, Session>>,
}

impl MemberSessions {
    pub fn new(
        role: MemberRole,
        partition: &str,
        session_name: &str,
        sts: aws_sdk_sts::Client,
    ) -> MemberSessions {
        MemberSessions {
            role,
            partition: partition.to_string(),
            session_name: session_name.to_string(),
            sts,
            sessions: Mutex::default(),
        }
    }

    /// The member role's ARN in `account`.
    pub fn role_arn(&self, account: &str) -> String {
        format!(
            "arn:{}:iam::{account}:role/{}",
            self.partition, self.role.name
        )
    }

    /// Credentials for `account`: the cached session, or a new one when it is about to expire.
    /// A role that is missing, denied or trusts another external id is an AccessDenied failure
    /// that names the role.
    pub async fn credentials(&self, account: &str) -> Result<Credentials, GuardrailError> {
        let now = SystemTime::now();
        if let Some(session) = self.lock().get(account) {
            if session.expires > now + RENEW_BEFORE {
                return Ok(session.credentials.clone());
            }
        }
        let role_arn = self.role_arn(account);
        let out = self
            .sts
            .assume_role()
            .role_arn(&role_arn)
            .role_session_name(&self.session_name)
            .external_id(&self.role.external_id)
            .duration_seconds(SESSION_SECONDS)
            .send()
            .await
            .map_err(|e| GuardrailError::aws("AssumeRole", &role_arn, e))?;
        let Some(issued) = out.credentials() else {
            return Err(GuardrailError::Aws {
                operation: "AssumeRole",
                key: crate::base::text::value(&role_arn),
                kind: crate::base::error::AwsErrorKind::ServerError,
                code: "MissingCredentials".to_string(),
                message: "STS answered without credentials".to_string(),
            });
        };
        let expires = SystemTime::try_from(*issued.expiration())
            .unwrap_or_else(|_| now + Duration::from_secs(SESSION_SECONDS as u64));
        let credentials = Credentials::new(
            issued.access_key_id(),
            issued.secret_access_key(),
            Some(issued.session_token().to_string()),
            Some(expires),
            "MemberRole",
        );
        self.lock().insert(
            account.to_string(),
            Session {
                credentials: credentials.clone(),
                expires,
            },
        );
        Ok(credentials)
    }

    /// A poisoned lock only means another task panicked mid-insert; the map is still usable.
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The credentials provider of one member account's clients: the shared session cache.
#[derive(Debug, Clone)]
pub struct MemberCredentials {
    pub sessions: Arc<MemberSessions>,
    pub account: String,
}

impl ProvideCredentials for MemberCredentials {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(async move {
            self.sessions
                .credentials(&self.account)
                .await
                .map_err(CredentialsError::provider_error)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sts::operation::assume_role::{AssumeRoleError, AssumeRoleOutput};
    use aws_sdk_sts::types::Credentials as StsCredentials;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};
    use aws_smithy_types::error::ErrorMetadata;
    use aws_smithy_types::DateTime;

    fn issued(key: &str, expires_in: Duration) -> AssumeRoleOutput {
        let expiration = DateTime::from(SystemTime::now() + expires_in);
        AssumeRoleOutput::builder()
            .credentials(
                StsCredentials::builder()
                    .access_key_id(key)
                    .secret_access_key("secret")
                    .session_token("token")
                    .expiration(expiration)
                    .build()
                    .unwrap(),
            )
            .build()
    }

    fn role() -> MemberRole {
        MemberRole {
            name: "kms-guardrails-member".into(),
            external_id: "hub-7f3a".into(),
        }
    }

    #[tokio::test]
    async fn one_assume_role_per_account_until_the_session_nears_its_end() {
        let assume = mock!(aws_sdk_sts::Client::assume_role)
            .match_requests(|r| {
                r.role_arn() == Some("arn:aws:iam::444455556666:role/kms-guardrails-member")
                    && r.external_id() == Some("hub-7f3a")
                    && r.role_session_name() == Some("policy-drift")
            })
            .then_output(|| issued("ASIAFIRST", Duration::from_secs(3600)));
        let sts = mock_client!(aws_sdk_sts, RuleMode::MatchAny, [&assume]);
        let sessions = MemberSessions::new(role(), "aws", "policy-drift", sts);
        for _ in 0..3 {
            let credentials = sessions.credentials("444455556666").await.unwrap();
            assert_eq!(credentials.access_key_id(), "ASIAFIRST");
        }
        assert_eq!(assume.num_calls(), 1);
    }

    #[tokio::test]
    async fn a_session_about_to_expire_is_renewed() {
        let assume = mock!(aws_sdk_sts::Client::assume_role)
            .then_output(|| issued("ASIASHORT", Duration::from_secs(120)));
        let sts = mock_client!(aws_sdk_sts, RuleMode::MatchAny, [&assume]);
        let sessions = MemberSessions::new(role(), "aws", "policy-drift", sts);
        sessions.credentials("444455556666").await.unwrap();
        sessions.credentials("444455556666").await.unwrap();
        assert_eq!(
            assume.num_calls(),
            2,
            "a session with 2 minutes left is not used"
        );
    }

    #[tokio::test]
    async fn a_missing_or_untrusting_role_is_access_denied_naming_the_role() {
        // STS says AccessDenied both for a role that does not exist and for one whose trust
        // policy does not admit the hub or wants another external id.
        let denied = mock!(aws_sdk_sts::Client::assume_role).then_error(|| {
            AssumeRoleError::generic(
                ErrorMetadata::builder()
                    .code("AccessDenied")
                    .message("User: arn:aws:sts::111122223333:assumed-role/hub/policy-drift is not authorized to perform: sts:AssumeRole")
                    .build(),
            )
        });
        let sts = mock_client!(aws_sdk_sts, RuleMode::MatchAny, [&denied]);
        let sessions = MemberSessions::new(role(), "aws", "policy-drift", sts);
        let err = sessions.credentials("777788889999").await.unwrap_err();
        assert!(err.is_access_denied(), "{err}");
        assert!(
            !err.is_retryable(),
            "a missing role is reported, not retried: {err}"
        );
        assert!(
            err.to_string().contains(
                "AssumeRole on arn:aws:iam::777788889999:role/kms-guardrails-member failed"
            ),
            "{err}"
        );
    }
}
