//! `kms-guardrails`: the operator's command line. See `kms-guardrails --help`.

mod audit;
mod explain;
mod read_only;
mod render;
mod session;
mod store;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::audit::{Function, Verdict};
use crate::session::{Session, Writes};

/// Exit status: something found (audit).
const EXIT_FOUND: u8 = 1;
/// Exit status: the command could not do its work (credentials, settings, AWS errors).
const EXIT_FAILED: u8 = 3;

#[derive(Debug, Parser)]
#[command(
    name = "kms-guardrails",
    version,
    about = "Try the KMS guardrails on your own account before deploying them, and read a key's access and desired state.",
    long_about = "Try the KMS guardrails on your own account before deploying them, and read a key's access and desired state.\n\nCredentials come from the default AWS chain (environment, profile, SSO, instance role) or --profile. AWS_ENDPOINT_URL sends every call elsewhere (the local emulator)."
)]
struct Cli {
    /// The AWS profile to use instead of the default credential chain.
    #[arg(long, global = true)]
    profile: Option<String>,
    /// A Region to look at; repeat it or separate with commas. Default: your profile's Region.
    #[arg(long, global = true, value_delimiter = ',')]
    region: Vec<String>,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the guardrails' audits in report mode: what they would find and announce. Never
    /// writes anything. Exit status 0: nothing found; 1: something found; 3: the audit could
    /// not finish.
    ///
    /// The desired state comes from the same variables as the deployed functions
    /// (KMS_ADMIN_ROLE_ARNS, ROOT_ACCESS, BASELINE_POLICY, MANAGED_TAG, REPLICATION_ROLE_ARNS,
    /// ...); the account, Regions and identity are your credentials'. With
    /// DESIRED_STATE=per-key and STATE_TABLE, policy-drift compares each key with its own
    /// record there (read only: nothing is recorded, so a key without a record is shown as it
    /// would be enrolled).
    Audit {
        /// Only these guardrails (repeat or separate with commas). Default: all four.
        #[arg(long, value_enum, value_delimiter = ',')]
        function: Vec<Function>,
    },
    /// Who can do what with a key: each principal of its policy put to the evaluator action by
    /// action, what only conditions allow, its grants; other accounts and everyone (*) flagged.
    /// Never writes anything.
    Explain {
        /// Key id, key ARN, alias name (alias/...) or alias ARN.
        key: String,
    },
    /// The versions of a key's desired state (policy-drift with DESIRED_STATE=per-key), oldest
    /// first. Needs STATE_TABLE. Never writes anything.
    History {
        /// Key id or key ARN.
        key: String,
        /// The state table (default: STATE_TABLE).
        #[arg(long, env = "STATE_TABLE")]
        table: String,
    },
    /// Record an earlier version of a key's desired state as its latest, and restore the key to
    /// it through the same checks as any correction (the floor, KMS's rules, the lockout
    /// check). Announced on NOTIFY_TOPIC_ARN like every correction.
    Rollback {
        /// Key id or key ARN.
        key: String,
        /// The version to return to (see `history`).
        version: u32,
        /// The state table (default: STATE_TABLE).
        #[arg(long, env = "STATE_TABLE")]
        table: String,
    },
}

#[derive(Debug)]
pub enum CliError {
    /// Credentials, Region or settings: nothing was asked of AWS yet.
    Setup(String),
    /// AWS refused or failed.
    Aws(shared::GuardrailError),
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CliError::Setup(message) => f.write_str(message),
            CliError::Aws(error) => write!(f, "{error}"),
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("kms-guardrails: {error}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}

async fn run(cli: Cli) -> Result<ExitCode, CliError> {
    let env = |name: &str| std::env::var(name).ok();
    let writes = match cli.command {
        Command::Rollback { .. } => Writes::Allowed,
        _ => Writes::Refused,
    };
    let session = Session::open(cli.profile.as_deref(), &cli.region, writes).await?;
    match cli.command {
        Command::Audit { function } => {
            let functions = if function.is_empty() {
                Function::ALL.to_vec()
            } else {
                function
            };
            let steps = (functions.len() * session.regions.len()) as u64;
            let bar = render::progress(steps, cli.json);
            let report = audit::run(&session, &functions, &env, &|done, step| {
                bar.set_position(done as u64);
                bar.set_message(step.to_string());
            })
            .await;
            bar.finish_and_clear();
            print(cli.json, &report, render::audit)?;
            Ok(match report.verdict() {
                Verdict::Clean => ExitCode::SUCCESS,
                Verdict::Found => ExitCode::from(EXIT_FOUND),
                Verdict::Incomplete => ExitCode::from(EXIT_FAILED),
            })
        }
        Command::Explain { key } => {
            let region = key_region(&key).unwrap_or(&session.regions[0]);
            let kms = aws_sdk_kms::Client::from_conf(
                aws_sdk_kms::config::Builder::from(&session.sdk)
                    .region(aws_config::Region::new(region.to_string()))
                    .build(),
            );
            let explanation = explain::explain(&kms, &key).await.map_err(CliError::Aws)?;
            print(cli.json, &explanation, render::explanation)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::History { key, table } => {
            let report = store::history(&session, &key, &table, &env).await?;
            print(cli.json, &report, render::command)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Rollback {
            key,
            version,
            table,
        } => {
            let report = store::rollback(&session, &key, version, &table, &env).await?;
            print(cli.json, &report, render::command)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The Region a key ARN names, if it is one.
fn key_region(key: &str) -> Option<&str> {
    key.strip_prefix("arn:")
        .and_then(|rest| rest.split(':').nth(2))
        .filter(|r| !r.is_empty())
}

fn print<T: serde::Serialize>(
    json: bool,
    value: &T,
    table: fn(&T) -> String,
) -> Result<(), CliError> {
    if json {
        let text = serde_json::to_string_pretty(value)
            .map_err(|e| CliError::Setup(format!("cannot write JSON: {e}")))?;
        println!("{text}");
    } else {
        print!("{}", table(value));
    }
    Ok(())
}
