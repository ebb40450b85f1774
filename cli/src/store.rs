//! `history` and `rollback`: policy-drift's operator commands, run here as the deployed
//! function runs them, with the caller's credentials.

use lambda_runtime::{Context, LambdaEvent};
use policy_drift::commands::CommandReport;
use serde_json::{json, Value};
use shared::aws::AwsClients;
use shared::base::outbox::Outbox;
use shared::config::FunctionConfig;
use shared::pipeline::Response;

use crate::session::Session;
use crate::CliError;

/// The versions of `key`'s desired state. Reads only: nothing is announced.
pub async fn history(
    session: &Session,
    key: &str,
    table: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<CommandReport, CliError> {
    let placeholder_topic = format!(
        "arn:{}:sns:{}:{}:kms-guardrails-history",
        session.partition, session.regions[0], session.account
    );
    let lookup = |name: &str| match name {
        "MODE" => Some("report".to_string()),
        "NOTIFY_TOPIC_ARN" => Some(placeholder_topic.clone()),
        name => setting(session, table, name, env),
    };
    let event = json!({"command": "history", "key": key});
    command(session, &lookup, event, Some(Outbox::default())).await
}

/// Records `version` of `key` as its latest and restores the key to it, announced on the
/// stack's topic (`NOTIFY_TOPIC_ARN`) like every correction.
pub async fn rollback(
    session: &Session,
    key: &str,
    version: u32,
    table: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<CommandReport, CliError> {
    let lookup = |name: &str| match name {
        "MODE" => Some("enforce".to_string()),
        name => setting(session, table, name, env),
    };
    let event = json!({
        "command": "rollback",
        "key": key,
        "version": version,
        "requested_by": session.principal,
    });
    command(session, &lookup, event, None).await
}

/// policy-drift's settings for a command: the per-key store in `table`, the caller's account
/// and Region; the rest (baseline, admin roles, topic) as the deployed function has them.
fn setting(
    session: &Session,
    table: &str,
    name: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<String> {
    match name {
        "STATE_TABLE" => Some(table.to_string()),
        "DESIRED_STATE" => Some("per-key".to_string()),
        "ACCOUNT_ID" => Some(session.account.clone()),
        "AWS_REGION" => Some(session.regions[0].clone()),
        "SELF_ROLE_ARN" => env(name).or_else(|| Some(session.principal.clone())),
        name => env(name),
    }
}

async fn command(
    session: &Session,
    lookup: &dyn Fn(&str) -> Option<String>,
    event: Value,
    outbox: Option<Outbox>,
) -> Result<CommandReport, CliError> {
    let config = policy_drift::Config::from_lookup(lookup)
        .map_err(|e| CliError::Setup(format!("policy-drift's settings are not complete: {e}")))?;
    let mut clients = AwsClients::new(session.sdk.clone());
    if let Some(outbox) = outbox {
        clients = clients.with_outbox(outbox);
    }
    let deps = policy_drift::Deps {
        config,
        clients,
        own: (),
    };
    let event = LambdaEvent::new(event, Context::default());
    match policy_drift::invoke(event, &deps).await {
        Ok(Response::Report(report)) => Ok(report),
        Ok(Response::Outcome(outcome)) => Err(CliError::Setup(format!(
            "policy-drift did not run the command: {}",
            serde_json::to_string(&outcome).unwrap_or_default()
        ))),
        Err(error) => Err(CliError::Aws(error)),
    }
}
