//! Structured logs: JSON when Lambda's log format is JSON (the template sets it), with the
//! fields of the enclosing span (event id, key) on every line.
//!
//! What `lambda_runtime::tracing::init_default_subscriber` does, with the level read by
//! `LevelFilter` instead of `EnvFilter`: Lambda's advanced logging controls set one level
//! (`AWS_LAMBDA_LOG_LEVEL`), and `EnvFilter`'s per-target directives cost every package its
//! regex engine (about 200 KiB of code, measured with `cargo bloat`).

use std::str::FromStr;

use tracing_subscriber::filter::LevelFilter;

pub fn init() {
    let lookup = |name: &str| std::env::var(name).ok();
    let level = level(&lookup);
    let collector = tracing_subscriber::fmt()
        .with_target(false)
        .without_time()
        .with_max_level(level);
    let json = lookup("AWS_LAMBDA_LOG_FORMAT").is_some_and(|f| f.eq_ignore_ascii_case("json"));
    if json {
        collector.json().init();
    } else {
        collector.init();
    }
}

/// `AWS_LAMBDA_LOG_LEVEL`, else `RUST_LOG` when it is a plain level, else INFO.
fn level(lookup: &dyn Fn(&str) -> Option<String>) -> LevelFilter {
    lookup("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|| lookup("RUST_LOG"))
        .and_then(|l| LevelFilter::from_str(l.trim()).ok())
        .unwrap_or(LevelFilter::INFO)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_level_comes_from_lambda_then_rust_log_then_info() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(level(&env(&[])), LevelFilter::INFO);
        assert_eq!(level(&env(&[("RUST_LOG", "debug")])), LevelFilter::DEBUG);
        assert_eq!(
            level(&env(&[
                ("AWS_LAMBDA_LOG_LEVEL", "WARN"),
                ("RUST_LOG", "debug")
            ])),
            LevelFilter::WARN
        );
        // A per-target directive is not a level: the default holds.
        assert_eq!(
            level(&env(&[("RUST_LOG", "aws_smithy=debug")])),
            LevelFilter::INFO
        );
    }
}
