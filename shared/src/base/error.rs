//! Errors with a readable `errorType` for the Lambda runtime and a message that names the
//! operation and the key.

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use lambda_runtime::Diagnostic;

use crate::base::text;

/// What kind of AWS failure happened, in the words an operator searches for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AwsErrorKind {
    AccessDenied,
    Throttling,
    NotFound,
    InvalidState,
    /// The request itself was refused (malformed policy, bad parameter, quota on resources).
    Validation,
    Timeout,
    Network,
    /// A 5xx answer: the service failed, not the request.
    ServerError,
}

impl AwsErrorKind {
    /// Whether trying again later can succeed without anyone changing anything.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            AwsErrorKind::Throttling
                | AwsErrorKind::Timeout
                | AwsErrorKind::Network
                | AwsErrorKind::ServerError
        )
    }
}

/// Every configuration problem found, one line each.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    pub problems: Vec<String>,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid configuration ({} problem", self.problems.len())?;
        if self.problems.len() != 1 {
            f.write_str("s")?;
        }
        write!(f, "): {}", self.problems.join("; "))
    }
}

/// The service an AWS operation belongs to, for advice that names the right policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AwsService {
    Kms,
    Iam,
    AccessAnalyzer,
    Sns,
    Sqs,
    Tagging,
    CloudWatch,
    DynamoDb,
    S3,
    Other,
}

impl AwsService {
    /// The service of an operation the functions call (the operation names are theirs alone).
    pub fn of(operation: &str) -> AwsService {
        match operation {
            "DescribeKey"
            | "GetKeyPolicy"
            | "GetKeyRotationStatus"
            | "ListAliases"
            | "ListResourceTags"
            | "ListGrants"
            | "PutKeyPolicy"
            | "EnableKey"
            | "CancelKeyDeletion"
            | "EnableKeyRotation"
            | "CreateGrant"
            | "RevokeGrant" => AwsService::Kms,
            "GetRole" | "SimulatePrincipalPolicy" => AwsService::Iam,
            "CheckNoNewAccess" => AwsService::AccessAnalyzer,
            "Publish" => AwsService::Sns,
            "SendMessage" => AwsService::Sqs,
            "GetResources" => AwsService::Tagging,
            "DescribeAlarms" | "ListTagsForResource" => AwsService::CloudWatch,
            "PutItem" | "GetItem" | "UpdateItem" | "DeleteItem" | "Query" => AwsService::DynamoDb,
            "GetBucketReplication" | "GetBucketLocation" => AwsService::S3,
            _ => AwsService::Other,
        }
    }

    /// Whether the operation is one of the writes the functions make to a key.
    pub fn writes_key(operation: &str) -> bool {
        matches!(
            operation,
            "PutKeyPolicy"
                | "EnableKey"
                | "CancelKeyDeletion"
                | "EnableKeyRotation"
                | "CreateGrant"
                | "RevokeGrant"
        )
    }
}

/// What a failure asks of the invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Trying again later can succeed without anyone changing anything: the invocation fails
    /// so Lambda retries it (a sweep leaves the key to the next sweep).
    Retry,
    /// Only a person can fix it: reported once, and the invocation succeeds.
    Report,
}

/// Longest AWS error message kept: enough to act on, never a whole echoed policy.
const MAX_AWS_MESSAGE_CHARS: usize = 400;

#[derive(Debug, Clone, thiserror::Error)]
pub enum GuardrailError {
    /// The key is still being created (a new replica): trying again in a minute succeeds.
    #[error("key {key} is still in state {state}; the invocation is retried once it settles")]
    KeyNotReady { key: String, state: String },
    #[error("invalid event: {0}")]
    InvalidEvent(String),
    /// Another delivery of the same announcement is under way: the invocation is retried
    /// until that one lands or its claim goes stale, never called done before.
    #[error("{0}; the invocation is retried until it is announced")]
    AnnouncementInProgress(String),
    #[error(transparent)]
    Configuration(#[from] ConfigError),
    #[error("{operation} on {key} failed: {code}: {message}")]
    Aws {
        operation: &'static str,
        key: String,
        kind: AwsErrorKind,
        code: String,
        message: String,
    },
}

impl GuardrailError {
    /// The `errorType` the Lambda runtime reports; never a Rust type path.
    pub fn error_type(&self) -> &'static str {
        match self {
            GuardrailError::InvalidEvent(_) => "InvalidEvent",
            GuardrailError::AnnouncementInProgress(_) => "AnnouncementInProgress",
            GuardrailError::KeyNotReady { .. } => "KeyNotReady",
            GuardrailError::Configuration(_) => "InvalidConfiguration",
            GuardrailError::Aws { kind, .. } => match kind {
                AwsErrorKind::AccessDenied => "AccessDenied",
                AwsErrorKind::Throttling => "Throttling",
                AwsErrorKind::NotFound => "NotFound",
                AwsErrorKind::InvalidState => "KeyInvalidState",
                AwsErrorKind::Validation => "ValidationError",
                AwsErrorKind::Timeout => "Timeout",
                AwsErrorKind::Network => "NetworkError",
                AwsErrorKind::ServerError => "AwsServiceError",
            },
        }
    }

    /// What this failure asks for: throttling, 5xx, timeouts, connection errors and a key
    /// still being created are retried; everything else needs a person and is reported once.
    /// The pipeline acts on it in one place (`pipeline::retry_or_report`).
    pub fn disposition(&self) -> Disposition {
        let retry = match self {
            GuardrailError::Aws { kind, .. } => kind.is_retryable(),
            GuardrailError::KeyNotReady { .. } | GuardrailError::AnnouncementInProgress(_) => true,
            _ => false,
        };
        if retry {
            Disposition::Retry
        } else {
            Disposition::Report
        }
    }

    pub fn is_retryable(&self) -> bool {
        self.disposition() == Disposition::Retry
    }

    /// The kind of AWS failure, compared as an enum (never by its `error_type` text).
    pub fn aws_kind(&self) -> Option<AwsErrorKind> {
        match self {
            GuardrailError::Aws { kind, .. } => Some(*kind),
            _ => None,
        }
    }

    pub fn is_access_denied(&self) -> bool {
        matches!(
            self,
            GuardrailError::Aws {
                kind: AwsErrorKind::AccessDenied,
                ..
            }
        )
    }

    /// The AWS operation that failed, if this is an AWS failure.
    pub fn operation(&self) -> Option<&'static str> {
        match self {
            GuardrailError::Aws { operation, .. } => Some(operation),
            _ => None,
        }
    }

    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            GuardrailError::Aws {
                kind: AwsErrorKind::NotFound,
                ..
            }
        )
    }

    /// Wraps an SDK failure of `operation` on `key`. Retries already happened in the SDK.
    pub fn aws<E>(
        operation: &'static str,
        key: &str,
        err: SdkError<E, HttpResponse>,
    ) -> GuardrailError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let (kind, code, message) = match &err {
            SdkError::ServiceError(service) => {
                let code = service.err().code().unwrap_or("Unknown").to_string();
                let message = service
                    .err()
                    .message()
                    .map(str::to_string)
                    .unwrap_or_else(|| DisplayErrorContext(service.err()).to_string());
                let server_error = service.raw().status().is_server_error();
                (kind_of(&code, server_error), code, message)
            }
            SdkError::TimeoutError(_) => (
                AwsErrorKind::Timeout,
                "Timeout".to_string(),
                DisplayErrorContext(&err).to_string(),
            ),
            SdkError::DispatchFailure(failure) if failure.is_timeout() => (
                AwsErrorKind::Timeout,
                "Timeout".to_string(),
                DisplayErrorContext(&err).to_string(),
            ),
            SdkError::DispatchFailure(_) => (
                AwsErrorKind::Network,
                "NetworkError".to_string(),
                DisplayErrorContext(&err).to_string(),
            ),
            _ => (
                AwsErrorKind::ServerError,
                "ResponseError".to_string(),
                DisplayErrorContext(&err).to_string(),
            ),
        };
        GuardrailError::Aws {
            operation,
            key: text::value(key),
            kind,
            code: text::one_line(&code, 80),
            message: text::one_line(&message, MAX_AWS_MESSAGE_CHARS),
        }
    }
}

fn kind_of(code: &str, server_error: bool) -> AwsErrorKind {
    match code {
        "AccessDeniedException"
        | "AccessDenied"
        | "AuthorizationError"
        | "UnauthorizedOperation" => AwsErrorKind::AccessDenied,
        "NotFoundException"
        | "NotFound"
        | "ResourceNotFoundException"
        | "NoSuchEntity"
        | "NoSuchBucket" => AwsErrorKind::NotFound,
        // DisabledException: the key is not enabled (CreateGrant, cryptographic calls).
        "KMSInvalidStateException" | "DisabledException" => AwsErrorKind::InvalidState,
        // S3 throttles with 503 SlowDown: still throttling, not a failing service.
        c if c.contains("Throttl")
            || c == "TooManyRequestsException"
            || c == "RequestLimitExceeded"
            || c == "SlowDown" =>
        {
            AwsErrorKind::Throttling
        }
        // S3's 400 for a connection idle too long: the next attempt can succeed.
        "RequestTimeout" => AwsErrorKind::Timeout,
        "KMSInternalException"
        | "DependencyTimeoutException"
        | "InternalFailure"
        | "InternalError"
        | "ServiceUnavailable"
        | "ServiceUnavailableException"
        | "KMSInternal" => AwsErrorKind::ServerError,
        _ if server_error => AwsErrorKind::ServerError,
        _ => AwsErrorKind::Validation,
    }
}

impl From<GuardrailError> for Diagnostic {
    fn from(err: GuardrailError) -> Diagnostic {
        Diagnostic {
            error_type: err.error_type().to_string(),
            error_message: err.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diagnostics_carry_readable_types() {
        let d: Diagnostic = GuardrailError::InvalidEvent("no key".into()).into();
        assert_eq!(d.error_type, "InvalidEvent");
        assert_eq!(d.error_message, "invalid event: no key");
        let d: Diagnostic = GuardrailError::Aws {
            operation: "PutKeyPolicy",
            key: "arn:aws:kms:eu-west-1:111122223333:key/k".into(),
            kind: kind_of("AccessDeniedException", false),
            code: "AccessDeniedException".into(),
            message: "not authorized".into(),
        }
        .into();
        assert_eq!(d.error_type, "AccessDenied");
        assert_eq!(
            d.error_message,
            "PutKeyPolicy on arn:aws:kms:eu-west-1:111122223333:key/k failed: AccessDeniedException: not authorized"
        );
        assert_eq!(
            kind_of("ThrottlingException", false),
            AwsErrorKind::Throttling
        );
    }

    #[test]
    fn retryable_and_permanent_failures_are_told_apart() {
        for (code, server, retryable) in [
            ("ThrottlingException", false, true),
            ("KMSInternalException", true, true),
            ("DependencyTimeoutException", false, true),
            ("SomethingNew", true, true),
            ("AccessDeniedException", false, false),
            ("KMSInvalidStateException", false, false),
            ("DisabledException", false, false),
            ("MalformedPolicyDocumentException", false, false),
            ("NotFoundException", false, false),
        ] {
            assert_eq!(kind_of(code, server).is_retryable(), retryable, "{code}");
        }
        // A disabled key is a state to fix, not a permission or a malformed request.
        assert_eq!(
            kind_of("DisabledException", false),
            AwsErrorKind::InvalidState
        );
    }

    #[test]
    fn s3_error_codes_are_classified() {
        for (code, status, kind) in [
            ("AccessDenied", false, AwsErrorKind::AccessDenied),
            ("SlowDown", true, AwsErrorKind::Throttling),
            ("RequestTimeout", false, AwsErrorKind::Timeout),
            ("InternalError", true, AwsErrorKind::ServerError),
            ("ServiceUnavailable", true, AwsErrorKind::ServerError),
            ("NoSuchBucket", false, AwsErrorKind::NotFound),
            ("InvalidRequest", false, AwsErrorKind::Validation),
        ] {
            assert_eq!(kind_of(code, status), kind, "{code}");
        }
    }
}
