use alarm_notifier::{function_handler, Clients, Config, Deps};
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use serde_json::Value;
use shared::aws::{load_sdk_config, AwsClients};
use shared::config::FunctionConfig;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::runtime::telemetry::init();
    shared::notify::metrics::install("alarm-notifier");
    let config = shared::runtime::config_or_exit(Config::from_env());
    let clients = AwsClients::for_function(
        load_sdk_config().await,
        &config.common,
        alarm_notifier::handler::FUNCTION,
    );
    // Built now, in the init phase, not on the first alarm.
    clients.sns(config.common.notify_topic_arn.region());
    let deps = Deps {
        config,
        clients,
        own: Clients::new(),
    };
    run(service_fn(|event: LambdaEvent<Value>| {
        function_handler(event, &deps)
    }))
    .await
}
