//! A function binary run as Lambda runs it, for the tests that read what it prints: a loopback
//! Lambda Runtime API that hands it one event, takes its answer, and the binary's stdout.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

/// What one invocation of a function binary printed and answered.
pub struct Invocation {
    pub stdout: String,
    pub response: String,
}

/// Builds the four function binaries (debug) with the cargo running this test, and returns the
/// directory they are in.
pub fn function_binaries() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(crate::workspace_root())
        .args([
            "build",
            "--quiet",
            "--bins",
            "-p",
            "policy-drift",
            "-p",
            "root-access-revoker",
            "-p",
            "alarm-notifier",
            "-p",
            "replica-grant-validator",
        ])
        .status()
        .expect("run cargo build");
    assert!(
        status.success(),
        "cargo build of the function binaries failed"
    );
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| crate::workspace_root().join("target"));
    target.join("debug")
}

/// Runs `binary` on `event` with `env` (and nothing else of this process's environment but
/// PATH), through one invocation.
pub fn invoke(binary: &PathBuf, event: &str, env: &[(&str, &str)]) -> Invocation {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind runtime API");
    let address = listener.local_addr().expect("runtime API address");
    let mut child = Command::new(binary)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "test")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the function binary");
    let response = serve_one(&listener, event);
    let _ = child.kill();
    let output = child.wait_with_output().expect("function output");
    Invocation {
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        response,
    }
}

/// Answers `GET .../invocation/next` with `event`, then reads the function's answer.
fn serve_one(listener: &TcpListener, event: &str) -> String {
    let deadline = std::time::SystemTime::now() + Duration::from_secs(60);
    let deadline_ms = deadline
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();
    loop {
        let (stream, _) = listener.accept().expect("function connects");
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .expect("read timeout");
        let mut writer = stream.try_clone().expect("clone stream");
        let mut reader = BufReader::new(stream);
        // The runtime client keeps its connection alive: several requests may come on one.
        loop {
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
                break;
            }
            let mut length = 0usize;
            loop {
                let mut header = String::new();
                reader.read_line(&mut header).expect("header");
                if header.trim().is_empty() {
                    break;
                }
                if let Some((name, value)) = header.split_once(':') {
                    if name.eq_ignore_ascii_case("content-length") {
                        length = value.trim().parse().unwrap_or(0);
                    }
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).expect("body");
            if request_line.starts_with("GET") {
                write!(
                    writer,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nLambda-Runtime-Aws-Request-Id: test-request-1\r\nLambda-Runtime-Deadline-Ms: {deadline_ms}\r\nLambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:eu-west-1:111122223333:function:test\r\nContent-Length: {}\r\n\r\n{event}",
                    event.len()
                )
                .expect("hand the event");
            } else {
                let _ = write!(writer, "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n");
                // The answer (or the error) of the one invocation: done.
                return String::from_utf8_lossy(&body).into_owned();
            }
        }
    }
}
