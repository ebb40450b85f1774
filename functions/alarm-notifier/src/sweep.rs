//! The scheduled lint sweep: every alarm in the sweep Regions on an `AWS/KMS` metric AWS does
//! not publish can never fire. Read (list the alarms) -> decide (`lint::silent_alarms`, and
//! [`digest`], both pure) -> apply (one message listing them with the alarm that would work).

use aws_sdk_cloudwatch::types::{Dimension, MetricAlarm};
use shared::base::text;
use shared::config::CommonConfig;
use shared::notify::outcome::Severity;
use shared::notify::{deliver, Notification};
use shared::pipeline::{retry_or_report, Response};
use shared::GuardrailError;

use crate::handler::{AlarmReport, Deps, FUNCTION};
use crate::lint::{silent_alarms, AlarmOnMetric, Silent, KMS_NAMESPACE};

pub async fn lint_sweep(deps: &Deps) -> Result<Response<AlarmReport>, GuardrailError> {
    let common = &deps.config.common;
    let (mut alarms, mut unchecked) = (Vec::new(), Vec::new());
    for region in &common.sweep_regions {
        if let Err(e) = list_alarms(deps, region, &mut alarms).await {
            // A Region whose calls are denied (a Region-deny SCP) does not stop the others.
            let e = retry_or_report(e)?;
            tracing::error!(region = %region, error = %e, "alarms of this Region not checked");
            unchecked.push(format!("{region}: {e}"));
        }
    }
    let silent = silent_alarms(&alarms);
    let notification = match digest(&silent, common) {
        Some(notification) => Some(deliver(&deps.clients, common, &notification).await?),
        None => None,
    };
    Ok(Response::Report(AlarmReport::SilentAlarms {
        alarms_checked: alarms
            .iter()
            .map(|a| (&a.alarm_arn, &a.alarm_name))
            .collect::<std::collections::HashSet<_>>()
            .len(),
        silent: silent.into_iter().map(|s| s.alarm_name).collect(),
        regions_not_checked: unchecked,
        notification,
    }))
}

/// Adds the Region's alarms on `AWS/KMS` metrics to `alarms`, page by page (pages listed
/// before a failure are kept).
async fn list_alarms(
    deps: &Deps,
    region: &str,
    alarms: &mut Vec<AlarmOnMetric>,
) -> Result<(), GuardrailError> {
    let mut pages = crate::handler::cloudwatch(deps, region)
        .describe_alarms()
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| {
            GuardrailError::aws("DescribeAlarms", &format!("alarms in {region}"), e)
        })?;
        alarms.extend(page.metric_alarms().iter().flat_map(kms_metrics));
    }
    Ok(())
}

/// Every `AWS/KMS` metric an alarm watches: its own metric, or each `MetricStat` of a
/// metric-math alarm (`Metrics[]`), which fires only on what those metrics publish. Pure.
pub fn kms_metrics(alarm: &MetricAlarm) -> Vec<AlarmOnMetric> {
    let on =
        |namespace: Option<&str>, name: Option<&str>, dimensions: &[Dimension]| AlarmOnMetric {
            alarm_name: alarm.alarm_name().unwrap_or_default().to_string(),
            alarm_arn: alarm.alarm_arn().unwrap_or_default().to_string(),
            namespace: namespace.unwrap_or_default().to_string(),
            metric_name: name.unwrap_or_default().to_string(),
            dimensions: dimensions
                .iter()
                .map(|d| {
                    (
                        d.name().unwrap_or_default().to_string(),
                        d.value().unwrap_or_default().to_string(),
                    )
                })
                .collect(),
        };
    let mut metrics = vec![on(
        alarm.namespace(),
        alarm.metric_name(),
        alarm.dimensions(),
    )];
    metrics.extend(
        alarm
            .metrics()
            .iter()
            .filter_map(|query| query.metric_stat()?.metric())
            .map(|m| on(m.namespace(), m.metric_name(), m.dimensions())),
    );
    metrics.retain(|m| m.namespace == KMS_NAMESPACE);
    metrics
}

/// The one message listing the silent alarms, `None` when there are none: pure.
pub fn digest(silent: &[Silent], common: &CommonConfig) -> Option<Notification> {
    if silent.is_empty() {
        return None;
    }
    let mut body = format!("kms-guardrails {FUNCTION}, mode {}\n\nThese CloudWatch alarms watch AWS/KMS metrics AWS does not publish, so they can never fire:\n", common.mode);
    for s in silent {
        body.push_str(&format!(
            "- {} ({}): {}\n  Instead: {}\n",
            text::value(&s.alarm_name),
            text::value(&s.metric_name),
            s.why,
            s.instead
        ));
    }
    let label = shared::notify::Speaker::new(FUNCTION, common).subject_label();
    let subject = format!("{label}{} KMS alarm(s) can never fire", silent.len());
    Some(
        Notification::new(&subject, body)
            .attribute("function", FUNCTION)
            .attribute("severity", Severity::High.to_string())
            .attribute(
                "environment",
                common.environment.clone().unwrap_or_default(),
            ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::AlarmOnMetric;
    use shared::config::FunctionConfig;

    fn metric(namespace: &str, name: &str, key: &str) -> aws_sdk_cloudwatch::types::Metric {
        aws_sdk_cloudwatch::types::Metric::builder()
            .namespace(namespace)
            .metric_name(name)
            .dimensions(Dimension::builder().name("KeyId").value(key).build())
            .build()
    }

    fn stat(
        id: &str,
        metric: aws_sdk_cloudwatch::types::Metric,
    ) -> aws_sdk_cloudwatch::types::MetricDataQuery {
        aws_sdk_cloudwatch::types::MetricDataQuery::builder()
            .id(id)
            .metric_stat(
                aws_sdk_cloudwatch::types::MetricStat::builder()
                    .metric(metric)
                    .period(300)
                    .stat("Sum")
                    .build(),
            )
            .build()
    }

    #[test]
    fn a_metric_math_alarm_on_a_metric_aws_kms_does_not_publish_is_silent() {
        // Metric math: the alarm watches an expression over Metrics[].MetricStat, no metric of
        // its own (DescribeAlarms leaves Namespace and MetricName empty).
        let math = MetricAlarm::builder()
            .alarm_name("kms-decrypt-rate")
            .alarm_arn("arn:aws:cloudwatch:eu-west-1:111122223333:alarm:kms-decrypt-rate")
            .metrics(stat(
                "m1",
                metric(
                    "AWS/KMS",
                    "DecryptCount",
                    "1234abcd-12ab-34cd-56ef-1234567890ab",
                ),
            ))
            .metrics(stat("m2", metric("AWS/Lambda", "Invocations", "x")))
            .metrics(
                aws_sdk_cloudwatch::types::MetricDataQuery::builder()
                    .id("e1")
                    .expression("m1 / m2")
                    .build(),
            )
            .build();
        let metrics = kms_metrics(&math);
        assert_eq!(metrics.len(), 1, "{metrics:?}");
        assert_eq!(metrics[0].metric_name, "DecryptCount");
        assert_eq!(metrics[0].alarm_name, "kms-decrypt-rate");
        let silent = silent_alarms(&metrics);
        assert_eq!(silent.len(), 1);
        assert_eq!(silent[0].alarm_name, "kms-decrypt-rate");

        // Two unpublished metrics in one alarm: reported once.
        let twice = MetricAlarm::builder()
            .alarm_name("kms-both")
            .metrics(stat("a", metric("AWS/KMS", "DecryptCount", "k")))
            .metrics(stat("b", metric("AWS/KMS", "AccessDenied", "k")))
            .build();
        assert_eq!(silent_alarms(&kms_metrics(&twice)).len(), 1);

        // A math alarm only on metrics AWS/KMS publishes is not reported.
        let fine = MetricAlarm::builder()
            .alarm_name("kms-requests")
            .metrics(stat(
                "a",
                aws_sdk_cloudwatch::types::Metric::builder()
                    .namespace("AWS/KMS")
                    .metric_name("SecondsUntilKeyMaterialExpiration")
                    .dimensions(Dimension::builder().name("KeyId").value("k").build())
                    .build(),
            ))
            .build();
        assert!(silent_alarms(&kms_metrics(&fine)).is_empty());
    }

    fn common(environment: Option<&str>) -> CommonConfig {
        let env = |name: &str| {
            match name {
                "ACCOUNT_ID" => Some("111122223333"),
                "AWS_REGION" => Some("eu-west-1"),
                "NOTIFY_TOPIC_ARN" => Some("arn:aws:sns:eu-west-1:111122223333:kms-guardrails"),
                "SELF_ROLE_ARN" => Some("arn:aws:iam::111122223333:role/alarm-notifier"),
                "ENVIRONMENT" => environment,
                _ => None,
            }
            .map(str::to_string)
        };
        crate::Config::from_lookup(&env).unwrap().common
    }

    #[test]
    fn one_message_lists_the_silent_alarms_and_none_is_sent_without_them() {
        assert_eq!(digest(&[], &common(Some("prod"))), None);
        let silent = silent_alarms(&[AlarmOnMetric {
            alarm_name: "kms-decrypt-count-high".into(),
            alarm_arn: "arn:aws:cloudwatch:eu-west-1:111122223333:alarm:kms-decrypt-count-high"
                .into(),
            namespace: KMS_NAMESPACE.into(),
            metric_name: "DecryptCount".into(),
            dimensions: Vec::new(),
        }]);

        let n = digest(&silent, &common(Some("prod"))).unwrap();

        assert_eq!(n.subject, "[prod] 1 KMS alarm(s) can never fire");
        assert!(n.body.contains("kms-decrypt-count-high"), "{}", n.body);
        assert!(
            n.body
                .contains("Instead: the KMSGuardrails/DecryptCalls alarm"),
            "{}",
            n.body
        );
        assert_eq!(n.attributes["function"], "alarm-notifier");
        assert_eq!(n.attributes["severity"], "high");
        assert_eq!(n.attributes["environment"], "prod");
        let n = digest(&silent, &common(None)).unwrap();
        assert_eq!(n.subject, "1 KMS alarm(s) can never fire");
        assert!(!n.attributes.contains_key("environment"));
    }
}
