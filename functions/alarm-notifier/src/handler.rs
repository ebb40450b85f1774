//! alarm-notifier: turns KMS alarm state changes into one message a person can act on, and
//! finds alarms that can never fire. It audits no key from CloudTrail: every trigger it takes
//! is one of its own routes (`alarm.rs` for alarm state changes, `sweep.rs` for the scheduled
//! lint of alarms); the door, delivery and the retry rule are `shared`'s.

use lambda_runtime::LambdaEvent;
use serde::Serialize;
use serde_json::Value;
use shared::aws::kms::KeyInfo;
use shared::aws::Regional;
use shared::notify::metrics::Measures;
use shared::notify::outcome::{Delivery, Outcome};
use shared::notify::Cause;
use shared::pipeline::{Audit, Guardrail, Invocation, Response};
use shared::triggers::events::Trigger;
use shared::triggers::gate::HandledEvents;
use shared::GuardrailError;

use crate::config::Config;
use crate::enrich::KeyFacts;
use crate::message::KeyContext;

pub const FUNCTION: &str = AlarmNotifier::NAME;

/// The function, as the pipeline sees it.
pub struct AlarmNotifier;

/// What an invocation reports beside the pipeline's `Outcome` (a skip).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum AlarmReport {
    /// An alarm state change announced.
    Alarm {
        alarm: String,
        transition: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        key_id: Option<String>,
        notification: Delivery,
    },
    /// Alarms that can never fire, found by a sweep.
    SilentAlarms {
        alarms_checked: usize,
        silent: Vec<String>,
        /// Regions whose alarms could not be listed, with why.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        regions_not_checked: Vec<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        notification: Option<Delivery>,
    },
}

/// alarm-notifier's own clients: CloudWatch (alarm tags, the lint sweep) and DynamoDB (the
/// de-duplication table, in the function's Region).
pub struct Clients {
    pub cloudwatch: Regional<aws_sdk_cloudwatch::Client>,
    pub dynamodb: Regional<aws_sdk_dynamodb::Client>,
}

impl Clients {
    pub fn new() -> Clients {
        Clients {
            cloudwatch: Regional::new(shared::regional_client!(aws_sdk_cloudwatch)),
            dynamodb: Regional::new(shared::regional_client!(aws_sdk_dynamodb)),
        }
    }

    /// Uses `client` for the de-duplication table in `region`; tests hand in mocks this way.
    pub fn with_dynamodb_client(self, region: &str, client: aws_sdk_dynamodb::Client) -> Clients {
        self.dynamodb.insert(region, client);
        self
    }

    /// Uses `client` for CloudWatch in `region`; tests hand in mocks this way.
    pub fn with_cloudwatch_client(
        self,
        region: &str,
        client: aws_sdk_cloudwatch::Client,
    ) -> Clients {
        self.cloudwatch.insert(region, client);
        self
    }
}

impl Default for Clients {
    fn default() -> Clients {
        Clients::new()
    }
}

pub type Deps = shared::pipeline::Deps<Config, Clients>;

/// The de-duplication table's client: the table lives in the function's Region.
pub(crate) fn dynamodb(deps: &Deps) -> aws_sdk_dynamodb::Client {
    deps.clients
        .regional(&deps.own.dynamodb, &deps.config.common.region)
}

pub(crate) fn cloudwatch(deps: &Deps, region: &str) -> aws_sdk_cloudwatch::Client {
    deps.clients.regional(&deps.own.cloudwatch, region)
}

/// CloudWatch in `account`: this account's client, or one on a member account's member role.
pub(crate) fn cloudwatch_in(
    deps: &Deps,
    account: &str,
    region: &str,
) -> aws_sdk_cloudwatch::Client {
    deps.clients
        .regional_in(&deps.own.cloudwatch, account, region)
}

/// The Lambda entry: the one door, with alarm-notifier's routes.
pub async fn function_handler(
    event: LambdaEvent<Value>,
    deps: &Deps,
) -> Result<Response<AlarmReport>, GuardrailError> {
    shared::pipeline::handle::<AlarmNotifier>(event, deps).await
}

impl Guardrail for AlarmNotifier {
    const NAME: &'static str = "alarm-notifier";
    /// No CloudTrail call: `route` answers CloudTrail events before the gate would.
    const HANDLED: &'static [HandledEvents] = &[];
    /// Alarm changes and the lint sweep are its own routes; it audits no key by itself.
    const KEY_PATH: bool = false;

    /// Every trigger is routed here: alarm state changes, the lint sweep, and a polite skip
    /// for CloudTrail events.
    async fn route(
        deps: &Deps,
        trigger: &Trigger,
        _: Invocation<'_>,
    ) -> Option<Result<Response<AlarmReport>, GuardrailError>> {
        Some(match trigger {
            Trigger::Alarm(change) => crate::alarm::on_alarm(deps, change).await,
            Trigger::Scheduled { .. } => crate::sweep::lint_sweep(deps).await,
            Trigger::CloudTrail(event) => Ok(Response::Outcome(Outcome::skipped(
                event.detail.event_id(),
                &event.detail.event_name,
                format!("{FUNCTION} acts on CloudWatch alarm state changes, not CloudTrail events"),
            ))),
            // Not this function's: the pipeline says so in an InvalidEvent error.
            Trigger::Command(_) | Trigger::SweepWork(_) => return None,
        })
    }

    type Report = AlarmReport;

    fn measure(report: &AlarmReport) -> Measures {
        match report {
            AlarmReport::Alarm { .. } => Measures::default(),
            AlarmReport::SilentAlarms {
                silent,
                regions_not_checked,
                ..
            } => Measures {
                findings: silent.len() as u64,
                regions_not_swept: regions_not_checked.len() as u64,
                ..Measures::default()
            },
        }
    }
    type Config = Config;
    type Clients = Clients;
    type Facts = KeyFacts;

    /// The key part of an alarm message: its aliases, tags and whether it is managed.
    async fn read(deps: &Deps, key: &KeyInfo, _: Cause<'_>) -> Result<KeyFacts, GuardrailError> {
        crate::enrich::read(deps, key).await
    }

    type Plan = KeyContext;

    /// What the message says about the key: pure.
    fn decide(_: &Config, key: &KeyInfo, facts: KeyFacts) -> KeyContext {
        crate::enrich::context(key, facts)
    }

    type Detail = ();

    /// alarm-notifier changes no key, and a key's context is announced only inside an alarm's
    /// message (`alarm.rs`), so on its own it writes nothing and announces nothing.
    async fn apply(_: &Deps, key: &KeyInfo, _: KeyContext) -> (Audit, ()) {
        let reason = format!(
            "{FUNCTION} changes no key: what it reads of a key is part of an alarm's message"
        );
        (Audit::skipped(key, reason), ())
    }
}

#[cfg(test)]
#[path = "handler_tests.rs"]
mod tests;
