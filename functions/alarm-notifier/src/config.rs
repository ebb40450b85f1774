//! alarm-notifier's configuration: the common part and its own.

use shared::config::FunctionConfig;
use shared::config::{CommonConfig, Env};
use shared::triggers::events::KeyLocator;

#[derive(Clone, Debug)]
pub struct Config {
    pub common: CommonConfig,
    /// DynamoDB table that records announced transitions, so each is announced once.
    pub dedup_table: Option<String>,
    /// The key that alarms on CloudTrail metric filters are about (they carry no KeyId).
    pub alarm_key: Option<String>,
    /// Announce INSUFFICIENT_DATA transitions too.
    pub announce_insufficient_data: bool,
}

impl FunctionConfig for Config {
    fn read(env: &mut Env<'_>) -> Config {
        let common = CommonConfig::read(env);
        let alarm_key = env.optional("ALARM_KEY_ID");
        if let Some(key) = &alarm_key {
            if KeyLocator::parse(key, &common.region).is_err() {
                env.problem(format!(
                    "ALARM_KEY_ID {} is not a key ARN, key id or alias",
                    shared::base::text::quoted(key, 120)
                ));
            }
        }
        Config {
            common,
            dedup_table: env.optional("DEDUP_TABLE"),
            alarm_key,
            announce_insufficient_data: env.bool("ANNOUNCE_INSUFFICIENT_DATA", false),
        }
    }

    fn common(&self) -> &CommonConfig {
        &self.common
    }
}
