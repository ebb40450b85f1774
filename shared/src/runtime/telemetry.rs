//! Structured logs: JSON when Lambda's log format is JSON (the template sets it), with the
//! fields of the enclosing span (event id, key) on every line.

pub fn init() {
    lambda_runtime::tracing::init_default_subscriber();
}
