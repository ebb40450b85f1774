use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use policy_drift::{function_handler, Deps};
use serde_json::Value;
use shared::aws::{load_sdk_config, AwsClients};
use shared::config::Config;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    let config = Config::from_env().inspect_err(|e| tracing::error!(error = %e, "cannot start"))?;
    let clients = AwsClients::new(load_sdk_config().await);
    // Built now, in the init phase, not on the first event.
    clients.kms(&config.region);
    clients.sns(shared::aws::arn_region(&config.notify_topic_arn).unwrap_or(&config.region));
    let deps = Deps { config, clients };
    run(service_fn(|event: LambdaEvent<Value>| {
        function_handler(event, &deps)
    }))
    .await
}
