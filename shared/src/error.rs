//! Errors with a readable `errorType` for the Lambda runtime and a message that names the
//! operation and the key.

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use lambda_runtime::Diagnostic;

use crate::config::ConfigError;
use crate::policy::PolicyError;

/// What kind of AWS failure happened, in the words an operator searches for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AwsErrorKind {
    AccessDenied,
    Throttling,
    NotFound,
    InvalidState,
    Timeout,
    Network,
    Service,
}

#[derive(Debug, thiserror::Error)]
pub enum GuardrailError {
    #[error("invalid event: {0}")]
    InvalidEvent(String),
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
    #[error("the key policy of {key} cannot be read: {source}")]
    Policy { key: String, source: PolicyError },
    #[error("{0}")]
    Incomplete(String),
}

impl GuardrailError {
    /// The `errorType` the Lambda runtime reports; never a Rust type path.
    pub fn error_type(&self) -> &'static str {
        match self {
            GuardrailError::InvalidEvent(_) => "InvalidEvent",
            GuardrailError::Configuration(_) => "InvalidConfiguration",
            GuardrailError::Policy { .. } => "MalformedKeyPolicy",
            GuardrailError::Incomplete(_) => "SweepIncomplete",
            GuardrailError::Aws { kind, .. } => match kind {
                AwsErrorKind::AccessDenied => "AccessDenied",
                AwsErrorKind::Throttling => "Throttling",
                AwsErrorKind::NotFound => "NotFound",
                AwsErrorKind::InvalidState => "KeyInvalidState",
                AwsErrorKind::Timeout => "Timeout",
                AwsErrorKind::Network => "NetworkError",
                AwsErrorKind::Service => "AwsServiceError",
            },
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
    pub fn aws<E, R>(operation: &'static str, key: &str, err: SdkError<E, R>) -> GuardrailError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug + Send + Sync + 'static,
    {
        let (kind, code, message) = match &err {
            SdkError::ServiceError(service) => {
                let code = service.err().code().unwrap_or("Unknown").to_string();
                let message = service
                    .err()
                    .message()
                    .map(str::to_string)
                    .unwrap_or_else(|| DisplayErrorContext(service.err()).to_string());
                (kind_of(&code), code, message)
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
                AwsErrorKind::Service,
                "ResponseError".to_string(),
                DisplayErrorContext(&err).to_string(),
            ),
        };
        GuardrailError::Aws {
            operation,
            key: key.to_string(),
            kind,
            code,
            message,
        }
    }
}

fn kind_of(code: &str) -> AwsErrorKind {
    match code {
        "AccessDeniedException"
        | "AccessDenied"
        | "AuthorizationError"
        | "UnauthorizedOperation" => AwsErrorKind::AccessDenied,
        "NotFoundException" | "NotFound" | "ResourceNotFoundException" => AwsErrorKind::NotFound,
        "KMSInvalidStateException" => AwsErrorKind::InvalidState,
        c if c.contains("Throttl")
            || c == "TooManyRequestsException"
            || c == "RequestLimitExceeded" =>
        {
            AwsErrorKind::Throttling
        }
        _ => AwsErrorKind::Service,
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
            kind: kind_of("AccessDeniedException"),
            code: "AccessDeniedException".into(),
            message: "not authorized".into(),
        }
        .into();
        assert_eq!(d.error_type, "AccessDenied");
        assert_eq!(
            d.error_message,
            "PutKeyPolicy on arn:aws:kms:eu-west-1:111122223333:key/k failed: AccessDeniedException: not authorized"
        );
        assert_eq!(kind_of("ThrottlingException"), AwsErrorKind::Throttling);
    }
}
