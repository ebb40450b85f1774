//! Start-up for every function: configuration problems reach Lambda as an init error whose
//! `errorType` is `InvalidConfiguration` (the Runtime API's `/init/error`), not a bare exit.

pub mod telemetry;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::config::ConfigError;

pub const INIT_ERROR_TYPE: &str = "InvalidConfiguration";

/// Reports `error` to the Runtime API at `api` (`AWS_LAMBDA_RUNTIME_API`, host:port) and
/// returns the HTTP status line. Plain HTTP/1.1 on loopback: it runs once, before the runtime
/// client exists.
pub fn report_init_error(api: &str, error: &ConfigError) -> std::io::Result<String> {
    let body = serde_json::json!({
        "errorType": INIT_ERROR_TYPE,
        "errorMessage": error.to_string(),
    })
    .to_string();
    let mut stream = TcpStream::connect(api)?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    write!(
        stream,
        "POST /2018-06-01/runtime/init/error HTTP/1.1\r\nHost: {api}\r\nLambda-Runtime-Function-Error-Type: {INIT_ERROR_TYPE}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response.lines().next().unwrap_or_default().to_string())
}

/// The configuration, or the process ends after telling Lambda (and the log) why.
pub fn config_or_exit<T>(config: Result<T, ConfigError>) -> T {
    match config {
        Ok(config) => config,
        Err(error) => {
            tracing::error!(error_type = INIT_ERROR_TYPE, error = %error, "cannot start");
            if let Ok(api) = std::env::var("AWS_LAMBDA_RUNTIME_API") {
                if let Err(e) = report_init_error(&api, &error) {
                    tracing::error!(error = %e, "could not report the init error to the Runtime API");
                }
            }
            std::process::exit(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn a_configuration_error_reaches_the_runtime_api_as_invalid_configuration() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let api = listener.local_addr().unwrap().to_string();
        let server = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            // Read until the whole body named by Content-Length has arrived.
            loop {
                let n = conn.read(&mut buf).unwrap();
                request.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&request).to_string();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let length: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("Content-Length: "))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    if body.len() >= length {
                        break;
                    }
                }
                if n == 0 {
                    break;
                }
            }
            conn.write_all(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n")
                .unwrap();
            String::from_utf8(request).unwrap()
        });
        let error = ConfigError {
            problems: vec![
                "ACCOUNT_ID is not set".into(),
                "MODE must be enforce or report".into(),
            ],
        };

        let status = report_init_error(&api, &error).unwrap();

        let request = server.join().unwrap();
        assert_eq!(status, "HTTP/1.1 202 Accepted");
        assert!(request.starts_with("POST /2018-06-01/runtime/init/error HTTP/1.1\r\n"));
        assert!(request.contains("Lambda-Runtime-Function-Error-Type: InvalidConfiguration\r\n"));
        let body: serde_json::Value =
            serde_json::from_str(request.split_once("\r\n\r\n").unwrap().1).unwrap();
        assert_eq!(body["errorType"], "InvalidConfiguration");
        assert_eq!(
            body["errorMessage"],
            "invalid configuration (2 problems): ACCOUNT_ID is not set; MODE must be enforce or report"
        );
    }
}
