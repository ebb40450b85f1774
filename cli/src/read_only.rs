//! The promise that audit, explain and history write nothing, kept below every client: the
//! HTTP client refuses any request whose operation is not a read, whatever code path asked.

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::retry::ErrorKind;

/// Wraps `inner` so that only reads leave the process.
pub fn read_only(inner: SharedHttpClient) -> SharedHttpClient {
    SharedHttpClient::new(ReadOnlyClient { inner })
}

#[derive(Debug)]
struct ReadOnlyClient {
    inner: SharedHttpClient,
}

impl HttpClient for ReadOnlyClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(ReadOnlyConnector {
            inner: self.inner.http_connector(settings, components),
        })
    }
}

#[derive(Debug)]
struct ReadOnlyConnector {
    inner: SharedHttpConnector,
}

impl HttpConnector for ReadOnlyConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let operation = operation(&request);
        if is_read(&operation) {
            return self.inner.call(request);
        }
        let refused = format!(
            "kms-guardrails only reads here (rollback alone writes): {} refused before it left this machine",
            operation.name()
        );
        HttpConnectorFuture::ready(Err(ConnectorError::other(
            refused.into(),
            Some(ErrorKind::ClientError),
        )))
    }
}

/// The operation a request calls, as each AWS protocol names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    /// JSON protocols (KMS, DynamoDB, tagging, SQS) name it in `X-Amz-Target`, Query protocols
    /// (SNS, STS, IAM, CloudWatch) in the form body's `Action`.
    Named(String),
    /// REST protocols (S3, Access Analyzer): the method and path.
    Rest { method: String, path: String },
}

impl Operation {
    pub fn name(&self) -> String {
        match self {
            Operation::Named(name) => name.clone(),
            Operation::Rest { method, path } => format!("{method} {path}"),
        }
    }
}

pub fn operation(request: &HttpRequest) -> Operation {
    if let Some(target) = request.headers().get("x-amz-target") {
        return Operation::Named(target.rsplit('.').next().unwrap_or(target).to_string());
    }
    let body = request.body().bytes().unwrap_or_default();
    if let Some(action) = form_action(body) {
        return Operation::Named(action);
    }
    let uri = request.uri();
    let path = uri
        .split("://")
        .nth(1)
        .map_or(uri, |rest| rest.find('/').map_or("/", |at| &rest[at..]));
    Operation::Rest {
        method: request.method().to_string(),
        path: path.split('?').next().unwrap_or("/").to_string(),
    }
}

/// `Action=Publish` in a form-encoded Query request body.
fn form_action(body: &[u8]) -> Option<String> {
    let body = std::str::from_utf8(body).ok()?;
    body.split('&')
        .find_map(|pair| pair.strip_prefix("Action="))
        .map(str::to_string)
}

/// Reads by AWS's naming: Get, List, Describe, BatchGet, Query, Scan; IAM's policy simulation;
/// REST GET and HEAD, and Access Analyzer's policy checks (POST, but they only read).
pub fn is_read(operation: &Operation) -> bool {
    match operation {
        Operation::Named(name) => [
            "Get", "List", "Describe", "BatchGet", "Query", "Scan", "Simulate",
        ]
        .iter()
        .any(|prefix| name.starts_with(prefix)),
        Operation::Rest { method, path } => {
            matches!(method.as_str(), "GET" | "HEAD")
                || (method == "POST" && path.starts_with("/policy/"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_types::body::SdkBody;

    fn request(method: &str, uri: &str, target: Option<&str>, body: &str) -> HttpRequest {
        let mut request = HttpRequest::new(SdkBody::from(body.to_string()));
        request.set_method(method).unwrap();
        request.set_uri(uri).unwrap();
        if let Some(target) = target {
            request
                .headers_mut()
                .insert("X-Amz-Target", target.to_string());
        }
        request
    }

    #[test]
    fn reads_pass_and_writes_are_refused_in_every_protocol() {
        let kms = |target| {
            request(
                "POST",
                "https://kms.eu-west-1.amazonaws.com/",
                Some(target),
                "{}",
            )
        };
        assert!(is_read(&operation(&kms("TrentService.GetKeyPolicy"))));
        assert!(is_read(&operation(&kms("TrentService.ListGrants"))));
        assert!(!is_read(&operation(&kms("TrentService.PutKeyPolicy"))));
        assert!(!is_read(&operation(&kms("TrentService.EnableKeyRotation"))));
        assert!(!is_read(&operation(&kms("DynamoDB_20120810.PutItem"))));
        let query = |body| request("POST", "https://sns.eu-west-1.amazonaws.com/", None, body);
        assert_eq!(
            operation(&query("Action=Publish&Version=2010-03-31&TopicArn=x")),
            Operation::Named("Publish".into())
        );
        assert!(!is_read(&operation(&query(
            "Action=Publish&Version=2010-03-31"
        ))));
        assert!(is_read(&operation(&query(
            "Action=GetCallerIdentity&Version=2011-06-15"
        ))));
        assert!(is_read(&operation(&query(
            "Version=2010-05-08&Action=SimulatePrincipalPolicy"
        ))));
        let s3 = |method| request(method, "https://b.s3.amazonaws.com/?replication", None, "");
        assert!(is_read(&operation(&s3("GET"))));
        assert!(!is_read(&operation(&s3("PUT"))));
        assert!(!is_read(&operation(&s3("DELETE"))));
        let analyzer = request(
            "POST",
            "https://access-analyzer.eu-west-1.amazonaws.com/policy/check-no-public-access",
            None,
            "{}",
        );
        assert!(is_read(&operation(&analyzer)));
    }
}
