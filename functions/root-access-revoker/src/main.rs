use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use root_access_revoker::{deps, function_handler, Config};
use serde_json::Value;
use shared::aws::{load_sdk_config, AwsClients};
use shared::config::FunctionConfig;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::runtime::telemetry::init();
    shared::notify::metrics::install("root-access-revoker");
    let config = shared::runtime::config_or_exit(Config::from_env());
    let clients = AwsClients::for_function(
        load_sdk_config().await,
        &config.common,
        "root-access-revoker",
    );
    // Built now, in the init phase, not on the first event.
    clients.kms(&config.common.region);
    clients.sns(config.common.notify_topic_arn.region());
    let deps = deps::new(config, clients);
    run(service_fn(|event: LambdaEvent<Value>| {
        function_handler(event, &deps)
    }))
    .await
}
