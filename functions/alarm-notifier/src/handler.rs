//! alarm-notifier: turns KMS alarm state changes into one message a person can act on, and
//! finds alarms that can never fire. Its decisions: which transitions to announce, which key an
//! alarm is about, and what the message says (`message.rs`); the pipeline is `shared`'s.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use lambda_runtime::LambdaEvent;
use serde_json::Value;
use shared::aws::AwsClients;
use shared::notify::outcome::Outcome;
use shared::notify::{deliver, Notification};
use shared::triggers::alarm::AlarmChange;
use shared::triggers::events::{parse_trigger, Trigger};
use shared::GuardrailError;

use crate::config::Config;
use crate::dedup::{first_time, FirstTime};
use crate::lint::{silent_alarms, AlarmOnMetric};
use crate::message::{render, transition, Transition};

pub const FUNCTION: &str = "alarm-notifier";

pub struct Deps {
    pub config: Config,
    pub clients: AwsClients,
    sdk: aws_config::SdkConfig,
    dynamodb: OnceLock<aws_sdk_dynamodb::Client>,
    cloudwatch: Mutex<HashMap<String, aws_sdk_cloudwatch::Client>>,
}

impl Deps {
    pub fn new(config: Config, clients: AwsClients, sdk: &aws_config::SdkConfig) -> Deps {
        Deps {
            config,
            clients,
            sdk: sdk.clone(),
            dynamodb: OnceLock::new(),
            cloudwatch: Mutex::default(),
        }
    }

    pub fn with_dynamodb_client(self, client: aws_sdk_dynamodb::Client) -> Deps {
        let _ = self.dynamodb.set(client);
        self
    }

    pub fn with_cloudwatch_client(self, region: &str, client: aws_sdk_cloudwatch::Client) -> Deps {
        self.cloudwatch
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(region.to_string(), client);
        self
    }

    fn dynamodb(&self) -> &aws_sdk_dynamodb::Client {
        self.dynamodb
            .get_or_init(|| aws_sdk_dynamodb::Client::new(&self.sdk))
    }

    fn cloudwatch(&self, region: &str) -> aws_sdk_cloudwatch::Client {
        self.cloudwatch
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(region.to_string())
            .or_insert_with(|| {
                let config = aws_sdk_cloudwatch::config::Builder::from(&self.sdk)
                    .region(aws_sdk_cloudwatch::config::Region::new(region.to_string()))
                    .build();
                aws_sdk_cloudwatch::Client::from_conf(config)
            })
            .clone()
    }
}

pub async fn function_handler(
    event: LambdaEvent<Value>,
    deps: &Deps,
) -> Result<Outcome, GuardrailError> {
    let outcome = match parse_trigger(&event.payload) {
        Ok(Trigger::Alarm(change)) => on_alarm(*change, deps).await,
        Ok(Trigger::Scheduled { .. }) => lint_sweep(deps).await,
        Ok(Trigger::CloudTrail(ev)) => Ok(Outcome::skipped(
            ev.detail.event_id(),
            &ev.detail.event_name,
            format!("{FUNCTION} acts on CloudWatch alarm state changes, not CloudTrail events"),
        )),
        Err(e) => Err(e),
    };
    if let Err(e) = &outcome {
        tracing::error!(error_type = e.error_type(), error = %e, "invocation failed");
    }
    outcome
}

async fn on_alarm(change: AlarmChange, deps: &Deps) -> Result<Outcome, GuardrailError> {
    let config = &deps.config;
    let id = change
        .event_id
        .clone()
        .unwrap_or_else(|| "unknown".to_string());
    let what = match transition(&change) {
        Transition::InsufficientData if !config.announce_insufficient_data => {
            return Ok(Outcome::skipped(
                &id,
                &change.alarm_name,
                "INSUFFICIENT_DATA is not announced (ANNOUNCE_INSUFFICIENT_DATA=false)".into(),
            ));
        }
        Transition::Ok => {
            return Ok(Outcome::skipped(
                &id,
                &change.alarm_name,
                "OK without a previous ALARM: nothing was wrong".into(),
            ));
        }
        other => other,
    };
    let transition_id = change.transition_id();
    if let Some(table) = &config.dedup_table {
        match first_time(deps.dynamodb(), table, &transition_id).await {
            FirstTime::Yes => {}
            FirstTime::AlreadyAnnounced => {
                return Ok(Outcome::skipped(
                    &id,
                    &change.alarm_name,
                    format!(
                        "transition {} was announced already (a redelivery)",
                        shared::base::text::value(&transition_id)
                    ),
                ));
            }
            FirstTime::Unknown(problem) => {
                tracing::warn!(problem = %problem, "the de-duplication table could not be used; announcing anyway");
            }
        }
    }
    let region = change
        .region
        .clone()
        .unwrap_or_else(|| config.common.region.clone());
    // The KeyId dimension, else the alarm's own tags, else the configured key.
    let mut key_ref = change.key_id_dimension().map(str::to_string);
    if let (None, Some(arn)) = (&key_ref, &change.alarm_arn) {
        key_ref = crate::enrich::key_from_alarm_tags(&deps.cloudwatch(&region), arn).await;
    }
    let key_ref = key_ref.or_else(|| config.alarm_key.clone());
    let (key, problem) = match &key_ref {
        Some(identifier) => match crate::enrich::key_context(deps, identifier, &region).await {
            Ok(key) => (Some(key), None),
            Err(problem) => (
                None,
                Some(format!(
                    "the key {} could not be read: {problem}",
                    shared::base::text::value(identifier)
                )),
            ),
        },
        None => (
            None,
            Some("the alarm names no key (no KeyId dimension, no ALARM_KEY_ID)".to_string()),
        ),
    };
    let rendered = render(
        &change,
        key.as_ref(),
        config.common.environment.as_deref(),
        problem.as_deref(),
    );
    let mut notification = Notification::structured(&rendered.subject, rendered.sns_message());
    for (name, value) in &rendered.attributes {
        notification = notification.attribute(name, value.clone());
    }
    let delivery = deliver(&deps.clients, &config.common, &notification).await?;
    tracing::info!(alarm = %change.alarm_name, transition = ?what, "alarm announced");
    Ok(Outcome::Alarm {
        alarm: change.alarm_name.clone(),
        transition: format!("{what:?}").to_lowercase(),
        key_id: key.map(|k| k.key_id),
        notification: delivery,
    })
}

/// Every alarm in the sweep Regions on an `AWS/KMS` metric AWS does not publish: it can never
/// fire. One message lists them with the alarm that would work instead.
async fn lint_sweep(deps: &Deps) -> Result<Outcome, GuardrailError> {
    let common = &deps.config.common;
    let (mut alarms, mut unchecked) = (Vec::new(), Vec::new());
    for region in &common.sweep_regions {
        let mut pages = deps
            .cloudwatch(region)
            .describe_alarms()
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            // A Region whose calls are denied (a Region-deny SCP) does not stop the others.
            let page = match page {
                Ok(page) => page,
                Err(e) => {
                    let e =
                        GuardrailError::aws("DescribeAlarms", &format!("alarms in {region}"), e);
                    if e.is_retryable() {
                        return Err(e);
                    }
                    tracing::error!(region, error = %e, "alarms of this Region not checked");
                    unchecked.push(format!("{region}: {e}"));
                    break;
                }
            };
            alarms.extend(
                page.metric_alarms()
                    .iter()
                    .filter(|a| a.namespace() == Some("AWS/KMS"))
                    .map(|a| AlarmOnMetric {
                        alarm_name: a.alarm_name().unwrap_or_default().to_string(),
                        alarm_arn: a.alarm_arn().unwrap_or_default().to_string(),
                        namespace: a.namespace().unwrap_or_default().to_string(),
                        metric_name: a.metric_name().unwrap_or_default().to_string(),
                        dimensions: a
                            .dimensions()
                            .iter()
                            .map(|d| {
                                (
                                    d.name().unwrap_or_default().to_string(),
                                    d.value().unwrap_or_default().to_string(),
                                )
                            })
                            .collect(),
                    }),
            );
        }
    }
    let silent = silent_alarms(&alarms);
    let names: Vec<String> = silent.iter().map(|s| s.alarm_name.clone()).collect();
    let notification = if silent.is_empty() {
        None
    } else {
        let mut body = format!("kms-guardrails {FUNCTION}, mode {}\n\nThese CloudWatch alarms watch AWS/KMS metrics AWS does not publish, so they can never fire:\n", common.mode);
        for s in &silent {
            body.push_str(&format!(
                "- {} ({}): {}\n  Instead: {}\n",
                shared::base::text::value(&s.alarm_name),
                shared::base::text::value(&s.metric_name),
                s.why,
                s.instead
            ));
        }
        let label = common
            .environment
            .as_deref()
            .filter(|e| !e.is_empty())
            .map(|e| format!("[{e}] "))
            .unwrap_or_default();
        let notification = Notification::new(
            &format!("{label}{} KMS alarm(s) can never fire", silent.len()),
            body,
        )
        .attribute("function", FUNCTION)
        .attribute("severity", "high")
        .attribute(
            "environment",
            common.environment.clone().unwrap_or_default(),
        );
        Some(deliver(&deps.clients, common, &notification).await?)
    };
    Ok(Outcome::SilentAlarms {
        alarms_checked: alarms.len(),
        silent: names,
        regions_not_checked: unchecked,
        notification,
    })
}

#[cfg(test)]
mod tests {
    //! Failures moto cannot produce, against the real SDK clients with mocked answers.

    use super::*;
    use aws_sdk_dynamodb::operation::put_item::PutItemError;
    use aws_sdk_kms::operation::describe_key::DescribeKeyError;
    use aws_sdk_sns::operation::publish::PublishOutput;
    use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
    use aws_smithy_types::error::ErrorMetadata;
    use std::collections::HashMap;

    const ALARM: &str =
        include_str!("../../../events/alarm-notifier/eventbridge-decrypt-volume-alarm.json");

    fn deps(kms: &[&Rule], sns: &[&Rule], dynamodb: &[&Rule]) -> Deps {
        let env: HashMap<&str, &str> = HashMap::from([
            ("ACCOUNT_ID", "111122223333"),
            ("AWS_REGION", "eu-west-1"),
            (
                "NOTIFY_TOPIC_ARN",
                "arn:aws:sns:eu-west-1:111122223333:kms-guardrails",
            ),
            (
                "SELF_ROLE_ARN",
                "arn:aws:iam::111122223333:role/alarm-notifier",
            ),
            ("DEDUP_TABLE", "transitions"),
        ]);
        let config = Config::from_lookup(&|k| env.get(k).map(|v| v.to_string())).unwrap();
        let sdk = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        let kms: aws_sdk_kms::Client = mock_client!(aws_sdk_kms, RuleMode::MatchAny, kms);
        let sns: aws_sdk_sns::Client = mock_client!(aws_sdk_sns, RuleMode::MatchAny, sns);
        let dynamodb: aws_sdk_dynamodb::Client =
            mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, dynamodb);
        let clients = AwsClients::new(sdk.clone())
            .with_kms_client("eu-west-1", kms)
            .with_sns_client("eu-west-1", sns);
        Deps::new(config, clients, &sdk).with_dynamodb_client(dynamodb)
    }

    /// `mock_client!` needs `with_test_defaults_v2`, which the pinned CloudWatch crate (1.80,
    /// for the Query protocol) predates: the same client, built by hand.
    fn cloudwatch_client(rule: &Rule) -> aws_sdk_cloudwatch::Client {
        let interceptor = aws_smithy_mocks::MockResponseInterceptor::new()
            .rule_mode(RuleMode::MatchAny)
            .with_rule(rule);
        let config = aws_sdk_cloudwatch::Config::builder()
            .with_test_defaults()
            .region(aws_sdk_cloudwatch::config::Region::new("eu-west-1"))
            .http_client(aws_smithy_mocks::create_mock_http_client())
            .interceptor(interceptor)
            .build();
        aws_sdk_cloudwatch::Client::from_conf(config)
    }

    fn event(text: &str) -> LambdaEvent<Value> {
        LambdaEvent::new(
            serde_json::from_str(text).unwrap(),
            lambda_runtime::Context::default(),
        )
    }

    #[tokio::test]
    async fn an_unusable_table_and_an_unreadable_key_still_announce_the_alarm() {
        let table_gone = mock!(aws_sdk_dynamodb::Client::put_item).then_error(|| {
            PutItemError::generic(
                ErrorMetadata::builder()
                    .code("ResourceNotFoundException")
                    .message("no table")
                    .build(),
            )
        });
        let key_denied = mock!(aws_sdk_kms::Client::describe_key).then_error(|| {
            DescribeKeyError::generic(
                ErrorMetadata::builder()
                    .code("AccessDeniedException")
                    .message("denied")
                    .build(),
            )
        });
        let publish = mock!(aws_sdk_sns::Client::publish)
            .match_requests(|r| {
                r.message_structure() == Some("json")
                    && r.message().is_some_and(|m| {
                        m.contains("could not be read") && m.contains("AccessDenied")
                    })
            })
            .then_output(|| PublishOutput::builder().message_id("m").build());
        let deps = deps(&[&key_denied], &[&publish], &[&table_gone]);

        let outcome = function_handler(event(ALARM), &deps).await.unwrap();

        assert!(
            matches!(outcome, Outcome::Alarm { key_id: None, .. }),
            "{outcome:?}"
        );
        assert_eq!((table_gone.num_calls(), publish.num_calls()), (1, 1));
    }

    #[tokio::test]
    async fn a_region_whose_alarms_cannot_be_listed_does_not_stop_the_others() {
        use aws_sdk_cloudwatch::operation::describe_alarms::{
            DescribeAlarmsError, DescribeAlarmsOutput,
        };
        use aws_sdk_cloudwatch::types::MetricAlarm;
        let home = mock!(aws_sdk_cloudwatch::Client::describe_alarms).then_output(|| {
            DescribeAlarmsOutput::builder()
                .metric_alarms(
                    MetricAlarm::builder()
                        .alarm_name("kms-decrypt-count-high")
                        .namespace("AWS/KMS")
                        .metric_name("DecryptCount")
                        .build(),
                )
                .build()
        });
        let denied = mock!(aws_sdk_cloudwatch::Client::describe_alarms).then_error(|| {
            DescribeAlarmsError::generic(
                ErrorMetadata::builder()
                    .code("AccessDenied")
                    .message("SCP")
                    .build(),
            )
        });
        let publish = mock!(aws_sdk_sns::Client::publish)
            .then_output(|| PublishOutput::builder().message_id("m").build());
        let mut deps = deps(&[], &[&publish], &[]);
        deps.config.common.sweep_regions = vec!["eu-west-1".into(), "ap-southeast-2".into()];
        let (home_client, denied_client) = (cloudwatch_client(&home), cloudwatch_client(&denied));
        let deps = deps
            .with_cloudwatch_client("eu-west-1", home_client)
            .with_cloudwatch_client("ap-southeast-2", denied_client);
        let sweep = include_str!("../../../events/policy-drift/scheduled-sweep.json");

        let outcome = function_handler(event(sweep), &deps).await.unwrap();

        let Outcome::SilentAlarms {
            silent,
            regions_not_checked,
            ..
        } = outcome
        else {
            panic!("{outcome:?}")
        };
        assert_eq!(silent, ["kms-decrypt-count-high"]);
        assert_eq!(regions_not_checked.len(), 1);
        assert!(
            regions_not_checked[0].starts_with("ap-southeast-2: DescribeAlarms"),
            "{regions_not_checked:?}"
        );
    }

    #[tokio::test]
    async fn insufficient_data_and_ok_without_alarm_are_not_announced_and_cloudtrail_is_refused_politely(
    ) {
        let deps = deps(&[], &[], &[]);
        let insufficient =
            include_str!("../../../events/alarm-notifier/eventbridge-insufficient-data.json");
        let outcome = function_handler(event(insufficient), &deps).await.unwrap();
        assert!(
            matches!(outcome, Outcome::Skipped { ref reason, .. } if reason.contains("INSUFFICIENT_DATA")),
            "{outcome:?}"
        );
        let cloudtrail = include_str!("../../../events/policy-drift/put-key-policy.json");
        let outcome = function_handler(event(cloudtrail), &deps).await.unwrap();
        assert!(
            matches!(outcome, Outcome::Skipped { ref reason, .. } if reason.contains("not CloudTrail events")),
            "{outcome:?}"
        );
        let err = function_handler(
            event(r#"{"Records":[{"EventSource":"aws:sns","Sns":{"Message":"not an alarm"}}]}"#),
            &deps,
        )
        .await
        .unwrap_err();
        assert_eq!(err.error_type(), "InvalidEvent");
    }
}
