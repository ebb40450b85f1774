//! CloudWatch alarm state changes, normalised from the three shapes a Lambda function can
//! receive them in:
//!
//! - EventBridge `CloudWatch Alarm State Change` events: metric, metric-math and composite
//!   alarms (<https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch-and-eventbridge.html>);
//! - the classic notification an alarm's SNS action publishes, as a function subscribed to the
//!   topic receives it: `Records[0].Sns.Message` is the alarm as a JSON string, its `Region` a
//!   display name ("EU (Ireland)") and the Region code only in `AlarmArn`;
//! - the direct Lambda alarm action, `alarmData`
//!   (<https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/alarms-and-actions-Lambda.html>).
//!
//! Lenient about what AWS may leave out (every optional field may be missing or null, and
//! `reasonData` may be absent, empty or not JSON), strict about what a notification cannot do
//! without: the alarm name and its new state. No input makes it panic. Text (alarm names,
//! reasons, descriptions) is kept exactly as received; escaping it for a channel is the
//! notifier's job.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::base::error::GuardrailError;
use crate::base::region::{is_region, Region};

/// The EventBridge `detail-type` of an alarm state change.
pub const ALARM_STATE_CHANGE_DETAIL_TYPE: &str = "CloudWatch Alarm State Change";
/// CloudWatch sends these for the same alarms; they are not state changes.
const ALARM_CONFIGURATION_CHANGE_DETAIL_TYPE: &str = "CloudWatch Alarm Configuration Change";

type Object = Map<String, Value>;

/// The state of a CloudWatch alarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AlarmState {
    Ok,
    Alarm,
    InsufficientData,
}

impl AlarmState {
    /// The name CloudWatch uses: `OK`, `ALARM` or `INSUFFICIENT_DATA`.
    pub const fn as_str(self) -> &'static str {
        match self {
            AlarmState::Ok => "OK",
            AlarmState::Alarm => "ALARM",
            AlarmState::InsufficientData => "INSUFFICIENT_DATA",
        }
    }
}

impl fmt::Display for AlarmState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AlarmState {
    type Err = GuardrailError;

    /// Exactly CloudWatch's spelling; anything else is an `InvalidEvent`.
    fn from_str(s: &str) -> Result<AlarmState, GuardrailError> {
        parse_state(s).map_err(invalid)
    }
}

fn parse_state(s: &str) -> Result<AlarmState, String> {
    match s {
        "OK" => Ok(AlarmState::Ok),
        "ALARM" => Ok(AlarmState::Alarm),
        "INSUFFICIENT_DATA" => Ok(AlarmState::InsufficientData),
        other => Err(format!(
            "unknown alarm state {}; expected OK, ALARM or INSUFFICIENT_DATA",
            short(&Value::String(other.to_string()))
        )),
    }
}

/// What the alarm watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlarmKind {
    /// One metric (an anomaly-detection band on one metric counts as this too).
    Metric,
    /// A metric math expression over several metrics.
    MetricMath,
    /// A rule over other alarms.
    Composite,
}

impl AlarmKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            AlarmKind::Metric => "metric",
            AlarmKind::MetricMath => "metric math",
            AlarmKind::Composite => "composite",
        }
    }
}

/// How the state change reached the function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlarmDelivery {
    /// An EventBridge rule on `CloudWatch Alarm State Change`.
    EventBridge,
    /// The alarm's SNS action, the function subscribed to the topic.
    Sns,
    /// The alarm's Lambda action: CloudWatch invoked the function directly.
    LambdaAction,
}

impl AlarmDelivery {
    pub const fn as_str(self) -> &'static str {
        match self {
            AlarmDelivery::EventBridge => "EventBridge",
            AlarmDelivery::Sns => "SNS",
            AlarmDelivery::LambdaAction => "Lambda alarm action",
        }
    }

    /// How error messages name the payload.
    const fn payload_name(self) -> &'static str {
        match self {
            AlarmDelivery::EventBridge => "EventBridge alarm event",
            AlarmDelivery::Sns => "SNS alarm notification",
            AlarmDelivery::LambdaAction => "Lambda alarm action",
        }
    }
}

/// One entry of the alarm's metrics: a metric (namespace, name, dimensions, stat, period) or a
/// metric math expression (id, expression), as the alarm's configuration lists it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MetricRef {
    pub namespace: Option<String>,
    pub name: Option<String>,
    /// `(name, value)`. From an EventBridge or Lambda-action payload (a JSON object) they are
    /// in name order; from an SNS notification (a list) in the order given.
    pub dimensions: Vec<(String, String)>,
    /// `Sum`, `Average`, `p99`... SNS's upper-case names (`SUM`) are given CloudWatch's
    /// spelling (`Sum`).
    pub stat: Option<String>,
    /// Seconds.
    pub period: Option<i64>,
    pub expression: Option<String>,
    /// The query id (`m1`, `e1`); EventBridge also gives single metrics a generated id.
    pub id: Option<String>,
    /// The label a person gave the entry, if any.
    pub label: Option<String>,
    /// Whether the entry is the value the alarm evaluates (`returnData`).
    pub return_data: Option<bool>,
}

/// A CloudWatch alarm state change, whichever way it was delivered.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlarmChange {
    pub delivery: AlarmDelivery,
    /// Exactly as received: it may hold any character, newlines included.
    pub alarm_name: String,
    pub alarm_arn: Option<String>,
    /// A Region code (`eu-west-1`): from the alarm ARN, else from the payload's `region` when it
    /// is a code. Never from SNS's display name ("EU (Ireland)").
    pub region: Option<Region>,
    /// From the alarm ARN, else from the payload's account field.
    pub account: Option<String>,
    pub kind: AlarmKind,
    pub state: AlarmState,
    pub previous_state: Option<AlarmState>,
    /// Empty when the payload gives none.
    pub reason: String,
    /// The new state's `reasonData`, parsed; `None` when absent, empty or not JSON.
    pub reason_data: Option<Value>,
    /// The new state's `reasonData` as received (also when it is not JSON).
    pub reason_data_raw: Option<String>,
    /// When the alarm entered the new state, as CloudWatch wrote it
    /// (`2026-11-20T09:26:07.415+0000`); the delivery time when the payload has no state time.
    pub timestamp: Option<String>,
    pub description: Option<String>,
    pub metrics: Vec<MetricRef>,
    /// SNS `Trigger.Threshold`, else `reasonData.threshold`.
    pub threshold: Option<f64>,
    /// `GreaterThanThreshold`... Only SNS notifications carry it.
    pub comparison: Option<String>,
    /// Only SNS notifications carry it.
    pub evaluation_periods: Option<i64>,
    /// A composite alarm's rule.
    pub alarm_rule: Option<String>,
    /// Composite alarms: the ARNs of the alarms behind the change, from
    /// `reasonData.triggeringAlarms` (SNS: `TriggeringChildren`).
    pub triggering_alarms: Vec<String>,
    /// `reasonData.recentDatapoints`, oldest first as CloudWatch lists them. SNS notifications
    /// have no reasonData, so this is empty for them (the values are only in `reason`).
    pub recent_datapoints: Vec<f64>,
    /// EventBridge event id or SNS `MessageId`; the Lambda alarm action has none.
    pub event_id: Option<String>,
}

impl AlarmChange {
    /// The KMS key from a `KeyId` dimension of any metric, as recorded: a key id for `AWS/KMS`
    /// metrics; for a metric filter's metric, whatever the filter extracted (it may be a key
    /// ARN), so resolve it with `events::KeyLocator::parse`.
    pub fn key_id_dimension(&self) -> Option<&str> {
        self.metrics
            .iter()
            .flat_map(|m| m.dimensions.iter())
            .find(|(name, value)| name == "KeyId" && !value.trim().is_empty())
            .map(|(_, value)| value.as_str())
    }

    /// One id per transition, for de-duplication: `{alarm ARN or name}|{state}|{timestamp}`
    /// (the event id stands in for a missing timestamp, `no-timestamp` for both). Built only from
    /// what stays the same when a delivery is repeated; the same transition delivered by
    /// EventBridge, SNS and the Lambda action gives the same id when the payloads carry the
    /// alarm ARN and the state timestamp, as AWS's do.
    pub fn transition_id(&self) -> String {
        let alarm = self.alarm_arn.as_deref().unwrap_or(&self.alarm_name);
        let at = self
            .timestamp
            .as_deref()
            .or(self.event_id.as_deref())
            .unwrap_or("no-timestamp");
        format!("{alarm}|{}|{at}", self.state.as_str())
    }
}

/// Reads an alarm state change from what Lambda handed the function.
///
/// - `None`: not an alarm shape at all (a CloudTrail event, a schedule, `"hello"`, `{}`), so the
///   caller can try other shapes.
/// - `Some(Err(InvalidEvent))`: an alarm shape that is malformed; the message names the field.
/// - `Some(Ok(change))` otherwise.
///
/// Recognised by: `detail-type` `CloudWatch Alarm State Change` (the `source` is not checked, so
/// test events put on a bus by hand work); `Records[0].EventSource == "aws:sns"` or a
/// `Records[0].Sns` (then the message must be a CloudWatch alarm, one with `AlarmName` and
/// `NewStateValue`); an `alarmData` member. SNS invokes a function with exactly one record, so
/// an event with several records is refused rather than read in part.
pub fn parse_alarm_payload(payload: &Value) -> Option<Result<AlarmChange, GuardrailError>> {
    let event = payload.as_object()?;
    if let Some(detail_type) = event.get("detail-type") {
        return match detail_type.as_str()? {
            ALARM_STATE_CHANGE_DETAIL_TYPE => Some(parse_eventbridge(event)),
            ALARM_CONFIGURATION_CHANGE_DETAIL_TYPE => Some(Err(invalid(format!(
                "{ALARM_CONFIGURATION_CHANGE_DETAIL_TYPE:?} events describe alarm edits, not state changes; \
                 the EventBridge rule should match only {ALARM_STATE_CHANGE_DETAIL_TYPE:?}"
            )))),
            _ => None,
        };
    }
    if let Some(records) = event.get("Records") {
        let first = records.as_array()?.first()?.as_object()?;
        let from_sns = first.get("EventSource").and_then(Value::as_str) == Some("aws:sns")
            || first.contains_key("Sns");
        return from_sns.then(|| parse_sns(records));
    }
    if event.contains_key("alarmData") {
        return Some(parse_lambda_action(event));
    }
    None
}

fn parse_eventbridge(event: &Object) -> Result<AlarmChange, GuardrailError> {
    let delivery = AlarmDelivery::EventBridge;
    let detail = object_member(event, "detail", "detail", delivery)?;
    let mut change = parse_alarm_data(delivery, detail, "detail")?;
    change.alarm_arn = event
        .get("resources")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .find(|r| AlarmArn::parse(r).is_some())
        .map(str::to_string);
    change.event_id = text(event, "id");
    if change.timestamp.is_none() {
        change.timestamp = text(event, "time");
    }
    Ok(finish(
        change,
        event.get("region").and_then(Value::as_str),
        text(event, "account"),
    ))
}

fn parse_lambda_action(event: &Object) -> Result<AlarmChange, GuardrailError> {
    let delivery = AlarmDelivery::LambdaAction;
    let data = object_member(event, "alarmData", "alarmData", delivery)?;
    let mut change = parse_alarm_data(delivery, data, "alarmData")?;
    change.alarm_arn = text(event, "alarmArn");
    if change.timestamp.is_none() {
        change.timestamp = text(event, "time");
    }
    Ok(finish(
        change,
        event.get("region").and_then(Value::as_str),
        text(event, "accountId"),
    ))
}

/// EventBridge's `detail` and the Lambda action's `alarmData` share one layout.
fn parse_alarm_data(
    delivery: AlarmDelivery,
    data: &Object,
    at: &str,
) -> Result<AlarmChange, GuardrailError> {
    let alarm_name = required_name(data, "alarmName", &format!("{at}.alarmName"), delivery)?;
    let state_path = format!("{at}.state");
    let state_block = object_member(data, "state", &state_path, delivery)?;
    let state = required_state(
        state_block,
        "value",
        &format!("{state_path}.value"),
        delivery,
    )?;
    let previous_path = format!("{at}.previousState");
    let previous_state = match data.get("previousState") {
        None | Some(Value::Null) => None,
        Some(Value::Object(previous)) => optional_state(
            previous,
            "value",
            &format!("{previous_path}.value"),
            delivery,
        )?,
        Some(other) => {
            return Err(field_error(
                delivery,
                &previous_path,
                format!("must be an object, got {}", short(other)),
            ))
        }
    };
    let (reason_data, reason_data_raw) = reason_data(state_block.get("reasonData"));
    let config = data.get("configuration").and_then(Value::as_object);
    let metrics = config
        .and_then(|c| c.get("metrics"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(camel_metric)
        .collect();
    Ok(AlarmChange {
        delivery,
        alarm_name,
        alarm_arn: None,
        region: None,
        account: None,
        kind: AlarmKind::Metric,
        state,
        previous_state,
        reason: raw_text(state_block, "reason").unwrap_or_default(),
        reason_data,
        reason_data_raw,
        timestamp: text(state_block, "timestamp"),
        description: config.and_then(|c| text(c, "description")),
        metrics,
        // Not in AWS's state-change examples; read when a payload has them.
        threshold: config.and_then(|c| c.get("threshold")).and_then(number),
        comparison: config.and_then(|c| text(c, "comparisonOperator")),
        evaluation_periods: config
            .and_then(|c| c.get("evaluationPeriods"))
            .and_then(integer),
        alarm_rule: config.and_then(|c| text(c, "alarmRule")),
        triggering_alarms: Vec::new(),
        recent_datapoints: Vec::new(),
        event_id: None,
    })
}

fn parse_sns(records: &Value) -> Result<AlarmChange, GuardrailError> {
    let delivery = AlarmDelivery::Sns;
    let records = records.as_array().map(Vec::as_slice).unwrap_or_default();
    if records.len() != 1 {
        return Err(invalid(format!(
            "SNS event has {} records; SNS invokes a function with one message at a time, so each alarm notification must be sent on its own",
            records.len()
        )));
    }
    let record = records[0]
        .as_object()
        .ok_or_else(|| invalid("SNS event: Records[0] must be an object".to_string()))?;
    let sns = object_member(record, "Sns", "Records[0].Sns", delivery)?;
    let message = match sns.get("Message") {
        None | Some(Value::Null) => {
            return Err(field_error(
                delivery,
                "Records[0].Sns.Message",
                "is missing",
            ))
        }
        Some(Value::String(text)) => serde_json::from_str::<Value>(text).map_err(|e| {
            not_an_alarm(format!(
                "Records[0].Sns.Message is not JSON ({e}): {}",
                short(&Value::String(text.clone()))
            ))
        })?,
        // Hand-written test events sometimes inline the message.
        Some(inline @ Value::Object(_)) => inline.clone(),
        Some(other) => {
            return Err(field_error(
                delivery,
                "Records[0].Sns.Message",
                format!("must be a string, got {}", short(other)),
            ))
        }
    };
    let message = match message.as_object() {
        Some(m) if m.contains_key("AlarmName") && m.contains_key("NewStateValue") => m,
        _ => {
            return Err(not_an_alarm(format!(
                "Records[0].Sns.Message has no AlarmName and NewStateValue (Subject {}): {}",
                sns.get("Subject").map_or_else(|| "none".to_string(), short),
                short(&message)
            )))
        }
    };

    let at = "Records[0].Sns.Message";
    let alarm_name = required_name(message, "AlarmName", &format!("{at}.AlarmName"), delivery)?;
    let state = required_state(
        message,
        "NewStateValue",
        &format!("{at}.NewStateValue"),
        delivery,
    )?;
    let previous_state = optional_state(
        message,
        "OldStateValue",
        &format!("{at}.OldStateValue"),
        delivery,
    )?;
    let trigger = message.get("Trigger").and_then(Value::as_object);
    let change = AlarmChange {
        delivery,
        alarm_name,
        alarm_arn: text(message, "AlarmArn"),
        region: None,
        account: None,
        kind: AlarmKind::Metric,
        state,
        previous_state,
        reason: raw_text(message, "NewStateReason").unwrap_or_default(),
        reason_data: None,
        reason_data_raw: None,
        timestamp: text(message, "StateChangeTime").or_else(|| text(sns, "Timestamp")),
        description: text(message, "AlarmDescription"),
        metrics: trigger.map(sns_metrics).unwrap_or_default(),
        threshold: trigger.and_then(|t| t.get("Threshold")).and_then(number),
        comparison: trigger.and_then(|t| text(t, "ComparisonOperator")),
        evaluation_periods: trigger
            .and_then(|t| t.get("EvaluationPeriods"))
            .and_then(integer),
        alarm_rule: text(message, "AlarmRule"),
        triggering_alarms: message
            .get("TriggeringChildren")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|child| child.get("Arn").and_then(Value::as_str))
            .filter(|arn| !arn.trim().is_empty())
            .map(str::to_string)
            .collect(),
        recent_datapoints: Vec::new(),
        event_id: text(sns, "MessageId"),
    };
    Ok(finish(
        change,
        message.get("Region").and_then(Value::as_str),
        text(message, "AWSAccountId"),
    ))
}

/// What every shape shares: Region and account from the ARN, what reasonData adds, the kind.
fn finish(
    mut change: AlarmChange,
    region_field: Option<&str>,
    account_field: Option<String>,
) -> AlarmChange {
    let arn = change.alarm_arn.as_deref().and_then(AlarmArn::parse);
    change.region = arn
        .and_then(|a| a.region)
        .or(region_field.map(str::trim))
        .and_then(|r| Region::parse(r).ok());
    change.account = arn
        .and_then(|a| a.account)
        .map(str::to_string)
        .or(account_field);
    if let Some(data) = change.reason_data.as_ref().and_then(Value::as_object) {
        if change.threshold.is_none() {
            change.threshold = data.get("threshold").and_then(number);
        }
        if let Some(points) = data.get("recentDatapoints").and_then(Value::as_array) {
            change.recent_datapoints = points.iter().filter_map(number).collect();
        }
        if change.triggering_alarms.is_empty() {
            change.triggering_alarms = data
                .get("triggeringAlarms")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|alarm| alarm.get("arn").and_then(Value::as_str))
                .filter(|arn| !arn.trim().is_empty())
                .map(str::to_string)
                .collect();
        }
    }
    change.kind = if change.alarm_rule.is_some() || !change.triggering_alarms.is_empty() {
        AlarmKind::Composite
    } else if change
        .metrics
        .iter()
        .any(|m| m.expression.as_deref().is_some_and(|e| !is_anomaly_band(e)))
    {
        AlarmKind::MetricMath
    } else {
        AlarmKind::Metric
    };
    change
}

fn is_anomaly_band(expression: &str) -> bool {
    expression
        .trim_start()
        .get(..22)
        .is_some_and(|f| f.eq_ignore_ascii_case("ANOMALY_DETECTION_BAND"))
}

/// `configuration.metrics[]` of EventBridge and Lambda-action payloads (camelCase, dimensions
/// as an object).
fn camel_metric(entry: &Value) -> Option<MetricRef> {
    let entry = entry.as_object()?;
    let stat = entry.get("metricStat").and_then(Value::as_object);
    let metric = stat
        .and_then(|s| s.get("metric"))
        .and_then(Value::as_object);
    Some(MetricRef {
        namespace: metric.and_then(|m| text(m, "namespace")),
        name: metric.and_then(|m| text(m, "name")),
        dimensions: metric
            .and_then(|m| m.get("dimensions"))
            .map(dimensions)
            .unwrap_or_default(),
        stat: stat.and_then(|s| text(s, "stat")),
        period: stat
            .and_then(|s| s.get("period"))
            .or_else(|| entry.get("period"))
            .and_then(integer),
        expression: text(entry, "expression"),
        id: text(entry, "id"),
        label: text(entry, "label"),
        return_data: entry.get("returnData").and_then(Value::as_bool),
    })
}

/// SNS `Trigger`: a single metric in the trigger itself, or `Metrics[]` (PascalCase, dimensions
/// as `[{"value", "name"}]`) for metric math.
fn sns_metrics(trigger: &Object) -> Vec<MetricRef> {
    if let Some(entries) = trigger.get("Metrics").and_then(Value::as_array) {
        return entries
            .iter()
            .filter_map(Value::as_object)
            .map(|entry| {
                let stat = entry.get("MetricStat").and_then(Value::as_object);
                let metric = stat
                    .and_then(|s| s.get("Metric"))
                    .and_then(Value::as_object);
                MetricRef {
                    namespace: metric.and_then(|m| text(m, "Namespace")),
                    name: metric.and_then(|m| text(m, "MetricName")),
                    dimensions: metric
                        .and_then(|m| m.get("Dimensions"))
                        .map(dimensions)
                        .unwrap_or_default(),
                    stat: stat.and_then(|s| text(s, "Stat")).map(cloudwatch_statistic),
                    period: stat
                        .and_then(|s| s.get("Period"))
                        .or_else(|| entry.get("Period"))
                        .and_then(integer),
                    expression: text(entry, "Expression"),
                    id: text(entry, "Id"),
                    label: text(entry, "Label"),
                    return_data: entry.get("ReturnData").and_then(Value::as_bool),
                }
            })
            .collect();
    }
    let namespace = text(trigger, "Namespace");
    let name = text(trigger, "MetricName");
    if namespace.is_none() && name.is_none() {
        return Vec::new();
    }
    let statistic = text(trigger, "Statistic").map(cloudwatch_statistic);
    let extended = text(trigger, "ExtendedStatistic");
    let stat = if text(trigger, "StatisticType").as_deref() == Some("ExtendedStatistic") {
        extended.or(statistic)
    } else {
        statistic.or(extended)
    };
    vec![MetricRef {
        namespace,
        name,
        dimensions: trigger
            .get("Dimensions")
            .map(dimensions)
            .unwrap_or_default(),
        stat,
        period: trigger.get("Period").and_then(integer),
        ..MetricRef::default()
    }]
}

/// SNS writes statistics in upper case (`SUM`); CloudWatch's own spelling is `Sum`.
fn cloudwatch_statistic(stat: String) -> String {
    match stat.as_str() {
        "SUM" => "Sum".to_string(),
        "AVERAGE" => "Average".to_string(),
        "MINIMUM" => "Minimum".to_string(),
        "MAXIMUM" => "Maximum".to_string(),
        "SAMPLE_COUNT" => "SampleCount".to_string(),
        _ => stat,
    }
}

/// Dimensions as an object (`{"KeyId": "..."}`, in name order) or a list of
/// `{"name", "value"}` (either case).
fn dimensions(value: &Value) -> Vec<(String, String)> {
    fn scalar(value: &Value) -> Option<String> {
        match value {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }
    match value {
        Value::Object(map) => {
            let mut pairs: Vec<(String, String)> = map
                .iter()
                .filter_map(|(name, value)| Some((name.clone(), scalar(value)?)))
                .collect();
            pairs.sort();
            pairs
        }
        Value::Array(items) => items
            .iter()
            .filter_map(Value::as_object)
            .filter_map(|d| {
                let name = d.get("name").or_else(|| d.get("Name"))?.as_str()?;
                let value = scalar(d.get("value").or_else(|| d.get("Value"))?)?;
                Some((name.to_string(), value))
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// `(parsed, raw)`: the raw text whenever there is any, the parse when it is JSON.
fn reason_data(value: Option<&Value>) -> (Option<Value>, Option<String>) {
    match value {
        Some(Value::String(raw)) if !raw.trim().is_empty() => {
            (serde_json::from_str(raw).ok(), Some(raw.clone()))
        }
        Some(inline @ Value::Object(_)) => (Some(inline.clone()), Some(inline.to_string())),
        _ => (None, None),
    }
}

/// The parts of `arn:PARTITION:cloudwatch:REGION:ACCOUNT:alarm:NAME` this module uses. The
/// name may contain colons.
#[derive(Clone, Copy)]
struct AlarmArn<'a> {
    region: Option<&'a str>,
    account: Option<&'a str>,
}

impl<'a> AlarmArn<'a> {
    fn parse(arn: &'a str) -> Option<AlarmArn<'a>> {
        let parts: Vec<&str> = arn.trim().splitn(6, ':').collect();
        let [prefix, _partition, service, region, account, resource] = parts[..] else {
            return None;
        };
        if prefix != "arn" || service != "cloudwatch" || !resource.starts_with("alarm:") {
            return None;
        }
        let region = region.trim();
        let account = account.trim();
        Some(AlarmArn {
            region: is_region(region).then_some(region),
            account: (account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit()))
                .then_some(account),
        })
    }
}

/// A string member, `None` when missing, null, not a string or blank.
fn text(object: &Object, key: &str) -> Option<String> {
    raw_text(object, key).filter(|s| !s.trim().is_empty())
}

/// A string member as is (possibly empty).
fn raw_text(object: &Object, key: &str) -> Option<String> {
    object.get(key).and_then(Value::as_str).map(str::to_string)
}

fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
    .filter(|f| f.is_finite())
}

fn integer(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                .map(|f| f as i64)
        }),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn invalid(msg: String) -> GuardrailError {
    GuardrailError::InvalidEvent(msg)
}

fn field_error(delivery: AlarmDelivery, path: &str, problem: impl fmt::Display) -> GuardrailError {
    invalid(format!("{}: {path} {problem}", delivery.payload_name()))
}

fn not_an_alarm(why: String) -> GuardrailError {
    invalid(format!(
        "the SNS message is not a CloudWatch alarm notification: {why}"
    ))
}

fn object_member<'a>(
    object: &'a Object,
    key: &str,
    path: &str,
    delivery: AlarmDelivery,
) -> Result<&'a Object, GuardrailError> {
    match object.get(key) {
        None | Some(Value::Null) => Err(field_error(delivery, path, "is missing")),
        Some(Value::Object(member)) => Ok(member),
        Some(other) => Err(field_error(
            delivery,
            path,
            format!("must be an object, got {}", short(other)),
        )),
    }
}

fn required_name(
    object: &Object,
    key: &str,
    path: &str,
    delivery: AlarmDelivery,
) -> Result<String, GuardrailError> {
    match object.get(key) {
        None | Some(Value::Null) => Err(field_error(delivery, path, "is missing")),
        Some(Value::String(name)) if name.is_empty() => {
            Err(field_error(delivery, path, "is empty"))
        }
        Some(Value::String(name)) => Ok(name.clone()),
        Some(other) => Err(field_error(
            delivery,
            path,
            format!("must be a string, got {}", short(other)),
        )),
    }
}

fn required_state(
    object: &Object,
    key: &str,
    path: &str,
    delivery: AlarmDelivery,
) -> Result<AlarmState, GuardrailError> {
    optional_state(object, key, path, delivery)?
        .ok_or_else(|| field_error(delivery, path, "is missing"))
}

/// `None` when missing or null; an error when present but not a known state.
fn optional_state(
    object: &Object,
    key: &str,
    path: &str,
    delivery: AlarmDelivery,
) -> Result<Option<AlarmState>, GuardrailError> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(value)) => parse_state(value)
            .map(Some)
            .map_err(|why| field_error(delivery, path, format!("is an {why}"))),
        Some(other) => Err(field_error(
            delivery,
            path,
            format!("must be a string, got {}", short(other)),
        )),
    }
}

/// A value for an error message: JSON, at most 80 characters.
fn short(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(77) {
        Some((cut, _)) if text.chars().count() > 80 => format!("{}...", &text[..cut]),
        _ => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const KEY_ID: &str = "1234abcd-12ab-34cd-56ef-1234567890ab";
    const ACCOUNT: &str = "111122223333";
    const DECRYPT_VOLUME_ARN: &str =
        "arn:aws:cloudwatch:eu-west-1:111122223333:alarm:kms-app-data-decrypt-volume";
    const ACCESS_DENIED_ARN: &str =
        "arn:aws:cloudwatch:eu-west-1:111122223333:alarm:kms-app-data-access-denied";

    const SAMPLES: [(&str, &str); 9] = [
        (
            "eventbridge-access-denied-alarm.json",
            include_str!("../../../events/alarm-notifier/eventbridge-access-denied-alarm.json"),
        ),
        (
            "eventbridge-aws-kms-namespace-alarm.json",
            include_str!("../../../events/alarm-notifier/eventbridge-aws-kms-namespace-alarm.json"),
        ),
        (
            "eventbridge-composite-alarm.json",
            include_str!("../../../events/alarm-notifier/eventbridge-composite-alarm.json"),
        ),
        (
            "eventbridge-decrypt-volume-alarm.json",
            include_str!("../../../events/alarm-notifier/eventbridge-decrypt-volume-alarm.json"),
        ),
        (
            "eventbridge-decrypt-volume-ok.json",
            include_str!("../../../events/alarm-notifier/eventbridge-decrypt-volume-ok.json"),
        ),
        (
            "eventbridge-insufficient-data.json",
            include_str!("../../../events/alarm-notifier/eventbridge-insufficient-data.json"),
        ),
        (
            "eventbridge-metric-math-alarm.json",
            include_str!("../../../events/alarm-notifier/eventbridge-metric-math-alarm.json"),
        ),
        (
            "lambda-alarm-action.json",
            include_str!("../../../events/alarm-notifier/lambda-alarm-action.json"),
        ),
        (
            "sns-classic-alarm.json",
            include_str!("../../../events/alarm-notifier/sns-classic-alarm.json"),
        ),
    ];

    fn sample_json(name: &str) -> Value {
        let (_, text) = SAMPLES
            .iter()
            .find(|(file, _)| *file == name)
            .unwrap_or_else(|| panic!("no sample {name}"));
        serde_json::from_str(text).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    fn parse(payload: &Value) -> AlarmChange {
        match parse_alarm_payload(payload) {
            Some(Ok(change)) => change,
            other => panic!("expected an alarm change, got {other:?}"),
        }
    }

    fn sample(name: &str) -> AlarmChange {
        parse(&sample_json(name))
    }

    /// The InvalidEvent message for an alarm shape that is malformed.
    fn error_of(payload: &Value) -> String {
        match parse_alarm_payload(payload) {
            Some(Err(err)) => {
                assert!(matches!(err, GuardrailError::InvalidEvent(_)), "{err:?}");
                err.to_string()
            }
            other => panic!("expected an InvalidEvent, got {other:?}"),
        }
    }

    fn eventbridge(detail: Value) -> Value {
        json!({
            "version": "0", "id": "e-1", "detail-type": "CloudWatch Alarm State Change",
            "source": "aws.cloudwatch", "account": ACCOUNT, "time": "2026-11-20T09:26:07Z",
            "region": "eu-west-1", "resources": [DECRYPT_VOLUME_ARN], "detail": detail
        })
    }

    fn sns(message: &Value) -> Value {
        json!({"Records": [{
            "EventSource": "aws:sns", "EventVersion": "1.0",
            "Sns": {"Type": "Notification", "MessageId": "m-1", "Message": message.to_string(),
                    "Timestamp": "2026-11-20T09:26:07.512Z"}
        }]})
    }

    // GIVEN each sample WHEN parsed THEN the fields a person checks are right.

    #[test]
    fn decrypt_volume_alarm_from_eventbridge() {
        let c = sample("eventbridge-decrypt-volume-alarm.json");
        assert_eq!(c.delivery, AlarmDelivery::EventBridge);
        assert_eq!(c.alarm_name, "kms-app-data-decrypt-volume");
        assert_eq!(c.alarm_arn.as_deref(), Some(DECRYPT_VOLUME_ARN));
        assert_eq!(c.region.as_deref(), Some("eu-west-1"));
        assert_eq!(c.account.as_deref(), Some(ACCOUNT));
        assert_eq!(c.kind, AlarmKind::Metric);
        assert_eq!(c.state, AlarmState::Alarm);
        assert_eq!(c.previous_state, Some(AlarmState::Ok));
        assert!(c
            .reason
            .starts_with("Threshold Crossed: 2 out of the last 3 datapoints"));
        assert_eq!(c.threshold, Some(1000.0));
        assert_eq!(c.recent_datapoints, [412.0, 1532.0, 1874.0]);
        assert_eq!(c.key_id_dimension(), Some(KEY_ID));
        assert_eq!(c.timestamp.as_deref(), Some("2026-11-20T09:26:07.415+0000"));
        assert_eq!(
            c.event_id.as_deref(),
            Some("6a7e8feb-b491-4cf7-a9f1-bf3703467718")
        );
        assert!(c.description.as_deref().unwrap().contains(KEY_ID));
        let data = c.reason_data.as_ref().unwrap();
        assert_eq!(data["statistic"], "Sum");
        assert!(c.reason_data_raw.as_deref().unwrap().contains("queryDate"));
        let [m] = &c.metrics[..] else {
            panic!("{:?}", c.metrics)
        };
        assert_eq!(m.namespace.as_deref(), Some("KMSGuardrails"));
        assert_eq!(m.name.as_deref(), Some("DecryptCalls"));
        assert_eq!(m.dimensions, [("KeyId".to_string(), KEY_ID.to_string())]);
        assert_eq!((m.stat.as_deref(), m.period), (Some("Sum"), Some(300)));
        assert_eq!((m.expression.as_deref(), m.return_data), (None, Some(true)));
        assert_eq!(
            (c.comparison.as_deref(), c.evaluation_periods),
            (None, None)
        );
        assert_eq!(c.alarm_rule, None);
        assert!(c.triggering_alarms.is_empty());
        assert_eq!(
            c.transition_id(),
            format!("{DECRYPT_VOLUME_ARN}|ALARM|2026-11-20T09:26:07.415+0000")
        );
    }

    #[test]
    fn access_denied_alarm_has_no_key_dimension() {
        let c = sample("eventbridge-access-denied-alarm.json");
        assert_eq!(c.alarm_arn.as_deref(), Some(ACCESS_DENIED_ARN));
        assert_eq!(
            (c.state, c.previous_state),
            (AlarmState::Alarm, Some(AlarmState::Ok))
        );
        assert_eq!(c.kind, AlarmKind::Metric);
        assert_eq!(c.metrics[0].name.as_deref(), Some("KMSAccessDenied"));
        assert!(c.metrics[0].dimensions.is_empty());
        assert_eq!(c.key_id_dimension(), None);
        assert_eq!(c.threshold, Some(0.0));
        assert_eq!(c.recent_datapoints, [3.0]);
    }

    #[test]
    fn decrypt_volume_back_to_ok_is_a_new_transition() {
        let ok = sample("eventbridge-decrypt-volume-ok.json");
        let alarm = sample("eventbridge-decrypt-volume-alarm.json");
        assert_eq!(
            (ok.state, ok.previous_state),
            (AlarmState::Ok, Some(AlarmState::Alarm))
        );
        assert_eq!(ok.alarm_arn, alarm.alarm_arn);
        assert_eq!(ok.recent_datapoints, [1190.0, 318.0, 655.0]);
        assert_eq!(ok.threshold, Some(1000.0));
        assert_eq!(ok.key_id_dimension(), Some(KEY_ID));
        assert_ne!(ok.transition_id(), alarm.transition_id());
    }

    #[test]
    fn metric_math_alarm_lists_expressions_and_metrics() {
        let c = sample("eventbridge-metric-math-alarm.json");
        assert_eq!(c.kind, AlarmKind::MetricMath);
        assert_eq!(
            (c.state, c.previous_state),
            (AlarmState::Alarm, Some(AlarmState::InsufficientData))
        );
        let ids: Vec<_> = c.metrics.iter().map(|m| m.id.as_deref().unwrap()).collect();
        assert_eq!(ids, ["e1", "e0", "m1", "m2"]);
        let e1 = &c.metrics[0];
        assert_eq!(e1.expression.as_deref(), Some("100 * e0 / m2"));
        assert_eq!(e1.label.as_deref(), Some("Denied share of calls (%)"));
        assert_eq!(e1.return_data, Some(true));
        assert_eq!((e1.namespace.as_deref(), e1.stat.as_deref()), (None, None));
        assert!(e1.dimensions.is_empty());
        assert_eq!(c.metrics[3].name.as_deref(), Some("KMSCalls"));
        assert_eq!(c.metrics[3].return_data, Some(false));
        assert_eq!(c.key_id_dimension(), Some(KEY_ID));
        assert_eq!(c.threshold, Some(5.0));
        assert_eq!(c.recent_datapoints, [12.5]);
    }

    #[test]
    fn composite_alarm_names_the_alarms_behind_it() {
        let c = sample("eventbridge-composite-alarm.json");
        assert_eq!(c.kind, AlarmKind::Composite);
        assert_eq!(
            (c.state, c.previous_state),
            (AlarmState::Alarm, Some(AlarmState::Ok))
        );
        assert_eq!(
            c.alarm_rule.as_deref(),
            Some(r#"ALARM("kms-app-data-decrypt-volume") AND ALARM("kms-app-data-access-denied")"#)
        );
        assert_eq!(c.triggering_alarms, [ACCESS_DENIED_ARN, DECRYPT_VOLUME_ARN]);
        assert!(c.metrics.is_empty());
        assert_eq!(c.key_id_dimension(), None);
        assert_eq!(c.threshold, None);
        assert!(c.recent_datapoints.is_empty());
        assert!(c.description.is_some());
    }

    #[test]
    fn sns_notification_takes_the_region_code_from_the_arn() {
        let c = sample("sns-classic-alarm.json");
        assert_eq!(c.delivery, AlarmDelivery::Sns);
        assert_eq!(c.region.as_deref(), Some("eu-west-1"));
        assert_eq!(c.account.as_deref(), Some(ACCOUNT));
        assert_eq!(c.alarm_arn.as_deref(), Some(DECRYPT_VOLUME_ARN));
        assert_eq!(
            c.event_id.as_deref(),
            Some("b1f7c9a2-5d3e-5f60-8a7b-9c0d1e2f3a4b")
        );
        assert_eq!(
            (c.state, c.previous_state),
            (AlarmState::Alarm, Some(AlarmState::Ok))
        );
        assert_eq!(c.kind, AlarmKind::Metric);
        assert_eq!(c.threshold, Some(1000.0));
        assert_eq!(c.comparison.as_deref(), Some("GreaterThanThreshold"));
        assert_eq!(c.evaluation_periods, Some(3));
        let m = &c.metrics[0];
        assert_eq!(m.namespace.as_deref(), Some("KMSGuardrails"));
        assert_eq!(m.name.as_deref(), Some("DecryptCalls"));
        assert_eq!((m.stat.as_deref(), m.period), (Some("Sum"), Some(300)));
        assert_eq!(c.key_id_dimension(), Some(KEY_ID));
        assert_eq!(c.timestamp.as_deref(), Some("2026-11-20T09:26:07.415+0000"));
        assert_eq!(
            (c.reason_data.as_ref(), c.reason_data_raw.as_ref()),
            (None, None)
        );
        assert!(c.recent_datapoints.is_empty());
        assert!(c.reason.contains("[1874.0 (20/11/26 09:20:00)"));
        // The same transition as the EventBridge sample: one announcement, not two.
        assert_eq!(
            c.transition_id(),
            sample("eventbridge-decrypt-volume-alarm.json").transition_id()
        );
    }

    #[test]
    fn lambda_alarm_action() {
        let c = sample("lambda-alarm-action.json");
        assert_eq!(c.delivery, AlarmDelivery::LambdaAction);
        assert_eq!(c.alarm_arn.as_deref(), Some(ACCESS_DENIED_ARN));
        assert_eq!(c.region.as_deref(), Some("eu-west-1"));
        assert_eq!(c.account.as_deref(), Some(ACCOUNT));
        assert_eq!(c.event_id, None);
        assert_eq!(
            (c.state, c.previous_state),
            (AlarmState::Alarm, Some(AlarmState::Ok))
        );
        assert_eq!(c.threshold, Some(0.0));
        assert_eq!(c.recent_datapoints, [3.0]);
        assert_eq!(
            c.transition_id(),
            sample("eventbridge-access-denied-alarm.json").transition_id()
        );
    }

    #[test]
    fn insufficient_data_has_no_datapoints() {
        let c = sample("eventbridge-insufficient-data.json");
        assert_eq!(
            (c.state, c.previous_state),
            (AlarmState::InsufficientData, Some(AlarmState::Ok))
        );
        assert_eq!(c.reason, "Insufficient Data: 3 datapoints were unknown.");
        assert!(c.recent_datapoints.is_empty());
        assert_eq!(c.threshold, Some(1000.0));
        assert_eq!(c.key_id_dimension(), Some(KEY_ID));
    }

    #[test]
    fn aws_kms_namespace_alarm() {
        let c = sample("eventbridge-aws-kms-namespace-alarm.json");
        assert_eq!(c.kind, AlarmKind::Metric);
        assert_eq!(
            (c.state, c.previous_state),
            (AlarmState::Ok, Some(AlarmState::InsufficientData))
        );
        assert_eq!(c.metrics[0].namespace.as_deref(), Some("AWS/KMS"));
        assert_eq!(c.metrics[0].name.as_deref(), Some("DecryptCount"));
        assert_eq!(c.key_id_dimension(), Some(KEY_ID));
        assert!(c.reason.contains("treated as [NonBreaching]"));
        assert!(c.recent_datapoints.is_empty());
    }

    #[test]
    fn every_sample_is_in_eu_west_1_and_listed_here() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../events/alarm-notifier");
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        on_disk.sort();
        let listed: Vec<&str> = SAMPLES.iter().map(|(name, _)| *name).collect();
        assert_eq!(on_disk, listed, "add new samples to SAMPLES");

        let mut ids = std::collections::HashSet::new();
        for (name, _) in SAMPLES {
            let c = sample(name);
            let expected = match name.split('-').next() {
                Some("eventbridge") => AlarmDelivery::EventBridge,
                Some("sns") => AlarmDelivery::Sns,
                _ => AlarmDelivery::LambdaAction,
            };
            assert_eq!(c.delivery, expected, "{name}");
            assert_eq!(c.region.as_deref(), Some("eu-west-1"), "{name}");
            assert_eq!(c.account.as_deref(), Some(ACCOUNT), "{name}");
            assert!(
                c.alarm_arn
                    .as_deref()
                    .unwrap()
                    .starts_with("arn:aws:cloudwatch:eu-west-1:111122223333:alarm:"),
                "{name}"
            );
            assert!(c.timestamp.is_some() && !c.reason.is_empty(), "{name}");
            ids.insert(c.transition_id());
        }
        // Two samples repeat another's transition (SNS and the Lambda action).
        assert_eq!(ids.len(), SAMPLES.len() - 2);
    }

    // GIVEN optional fields missing or null WHEN parsed THEN they are None or empty.

    #[test]
    fn eventbridge_with_only_the_required_fields() {
        let payload = json!({
            "detail-type": "CloudWatch Alarm State Change",
            "detail": {"alarmName": "a", "state": {"value": "ALARM"}}
        });
        let c = parse(&payload);
        assert_eq!(c.alarm_name, "a");
        assert_eq!(c.state, AlarmState::Alarm);
        assert_eq!(c.kind, AlarmKind::Metric);
        assert_eq!(
            (
                &c.alarm_arn,
                &c.region,
                &c.account,
                &c.event_id,
                &c.timestamp
            ),
            (&None, &None, &None, &None, &None)
        );
        assert_eq!((c.previous_state, c.description.as_deref()), (None, None));
        assert_eq!(c.reason, "");
        assert_eq!((&c.reason_data, &c.reason_data_raw), (&None, &None));
        assert!(c.metrics.is_empty() && c.recent_datapoints.is_empty());
        assert_eq!(c.transition_id(), "a|ALARM|no-timestamp");
    }

    #[test]
    fn eventbridge_with_every_optional_field_null() {
        let payload = json!({
            "id": null, "detail-type": "CloudWatch Alarm State Change", "source": null,
            "account": null, "time": null, "region": null, "resources": null,
            "detail": {
                "alarmName": "a",
                "state": {"value": "OK", "reason": null, "reasonData": null, "timestamp": null},
                "previousState": null,
                "configuration": {"description": null, "metrics": [null, 5, "m1", {}, {"metricStat": null}]}
            }
        });
        let c = parse(&payload);
        assert_eq!((c.state, c.previous_state), (AlarmState::Ok, None));
        assert_eq!(c.reason, "");
        assert_eq!((&c.region, &c.account, &c.event_id), (&None, &None, &None));
        assert_eq!(c.metrics, [MetricRef::default(), MetricRef::default()]);
        assert_eq!(c.key_id_dimension(), None);

        let mut payload = payload;
        payload["detail"]["configuration"] = Value::Null;
        payload["detail"]["previousState"] = json!({"value": null, "reason": null});
        assert_eq!(parse(&payload).previous_state, None);
    }

    #[test]
    fn sns_and_lambda_action_with_only_the_required_fields() {
        let c = parse(&sns(&json!({
            "AlarmName": "a", "NewStateValue": "OK", "OldStateValue": null, "AlarmArn": null,
            "AlarmDescription": null, "Trigger": null, "Region": "EU (Ireland)", "AWSAccountId": null
        })));
        assert_eq!((c.state, c.previous_state), (AlarmState::Ok, None));
        assert_eq!((c.alarm_arn, c.region, c.account), (None, None, None));
        assert_eq!(c.timestamp.as_deref(), Some("2026-11-20T09:26:07.512Z"));
        assert!(c.metrics.is_empty());
        assert_eq!(c.kind, AlarmKind::Metric);

        let c = parse(
            &json!({"alarmData": {"alarmName": "a", "state": {"value": "INSUFFICIENT_DATA"}}}),
        );
        assert_eq!(c.delivery, AlarmDelivery::LambdaAction);
        assert_eq!(c.state, AlarmState::InsufficientData);
        assert_eq!((c.alarm_arn, c.region, c.timestamp), (None, None, None));
    }

    #[test]
    fn reason_data_absent_empty_or_not_json_keeps_what_there_is() {
        let with = |reason_data: Value| {
            parse(&eventbridge(json!({
                "alarmName": "a", "state": {"value": "ALARM", "reasonData": reason_data}
            })))
        };
        for empty in [json!(""), json!("   "), json!(null), json!(7)] {
            let c = with(empty.clone());
            assert_eq!((c.reason_data, c.reason_data_raw), (None, None), "{empty}");
        }
        let c = with(json!("{not json"));
        assert_eq!(c.reason_data, None);
        assert_eq!(c.reason_data_raw.as_deref(), Some("{not json"));
        assert!(c.recent_datapoints.is_empty() && c.threshold.is_none());

        let c = with(json!(
            r#"{"recentDatapoints":[1, "2.5", null, "x", "1e999"], "threshold": "10"}"#
        ));
        assert_eq!(c.recent_datapoints, [1.0, 2.5]);
        assert_eq!(c.threshold, Some(10.0));

        let c = with(json!({"recentDatapoints": [4.0], "threshold": 3.0}));
        assert_eq!((c.recent_datapoints, c.threshold), (vec![4.0], Some(3.0)));
        assert!(c.reason_data_raw.is_some());

        // Nesting past serde_json's recursion limit is "not JSON", not a stack overflow.
        let c = with(Value::String("[".repeat(100_000)));
        assert_eq!(c.reason_data, None);
        assert_eq!(c.reason_data_raw.map(|r| r.len()), Some(100_000));
    }

    // Region and names.

    #[test]
    fn region_comes_from_the_arn_then_a_region_code_never_a_display_name() {
        let mut payload = eventbridge(json!({"alarmName": "a", "state": {"value": "OK"}}));
        payload["region"] = json!("us-east-1");
        assert_eq!(
            parse(&payload).region.as_deref(),
            Some("eu-west-1"),
            "ARN wins"
        );

        payload["resources"] = json!([]);
        assert_eq!(parse(&payload).region.as_deref(), Some("us-east-1"));
        payload["region"] = json!("EU (Ireland)");
        assert_eq!(parse(&payload).region, None);

        payload["resources"] = json!([
            "arn:aws:kms:eu-west-1:111122223333:key/k",
            DECRYPT_VOLUME_ARN
        ]);
        let c = parse(&payload);
        assert_eq!(c.alarm_arn.as_deref(), Some(DECRYPT_VOLUME_ARN));
        assert_eq!(c.region.as_deref(), Some("eu-west-1"));

        let message = json!({"AlarmName": "a", "NewStateValue": "OK", "Region": "eu-central-1"});
        assert_eq!(
            parse(&sns(&message)).region.as_deref(),
            Some("eu-central-1")
        );
        let message = json!({"AlarmName": "a", "NewStateValue": "OK", "Region": "US East (N. Virginia)",
                             "AlarmArn": "arn:aws-us-gov:cloudwatch:us-gov-west-1:111122223333:alarm:a"});
        assert_eq!(
            parse(&sns(&message)).region.as_deref(),
            Some("us-gov-west-1")
        );
    }

    #[test]
    fn alarm_names_are_kept_exactly() {
        let name = "KMS: decrypt\nvolume \u{2713} \u{ab}app-data\u{bb} | \"quoted\" <b>";
        let arn = format!("arn:aws:cloudwatch:eu-west-1:111122223333:alarm:{name}");
        let mut payload = eventbridge(json!({"alarmName": name, "state": {"value": "ALARM"}}));
        payload["resources"] = json!([arn]);
        let c = parse(&payload);
        assert_eq!(c.alarm_name, name);
        assert_eq!(c.alarm_arn.as_deref(), Some(arn.as_str()));
        assert_eq!(c.region.as_deref(), Some("eu-west-1"));

        let c = parse(&sns(
            &json!({"AlarmName": name, "NewStateValue": "ALARM", "AlarmArn": arn}),
        ));
        assert_eq!(c.alarm_name, name);
        assert_eq!(c.account.as_deref(), Some(ACCOUNT));
    }

    // Kinds and the other SNS trigger forms.

    #[test]
    fn an_anomaly_detection_band_is_a_metric_alarm() {
        let c = parse(&eventbridge(json!({
            "alarmName": "a", "state": {"value": "ALARM"},
            "configuration": {"metrics": [
                {"id": "m1", "metricStat": {"metric": {"namespace": "AWS/KMS", "name": "SecondsUntilKeyMaterialExpiration",
                 "dimensions": {"KeyId": KEY_ID}}, "period": 60, "stat": "Minimum"}, "returnData": true},
                {"id": "ad1", "expression": "ANOMALY_DETECTION_BAND(m1, 0.8)", "returnData": true}
            ]}
        })));
        assert_eq!(c.kind, AlarmKind::Metric);
        assert_eq!(c.key_id_dimension(), Some(KEY_ID));
    }

    #[test]
    fn sns_metric_math_composite_and_percentile_triggers() {
        let c = parse(&sns(&json!({
            "AlarmName": "a", "NewStateValue": "ALARM",
            "Trigger": {"Period": 60, "EvaluationPeriods": 1, "ComparisonOperator": "GreaterThanThreshold",
                "Threshold": 0.0, "Metrics": [
                    {"Expression": "m1*1", "Id": "e1", "Label": "Expression1", "ReturnData": true},
                    {"Id": "m1", "MetricStat": {"Metric": {"Dimensions": [{"value": KEY_ID, "name": "KeyId"}],
                     "MetricName": "DecryptCalls", "Namespace": "KMSGuardrails"}, "Period": 60, "Stat": "Sum"},
                     "ReturnData": false}]}
        })));
        assert_eq!(c.kind, AlarmKind::MetricMath);
        assert_eq!(c.metrics.len(), 2);
        assert_eq!(c.metrics[1].name.as_deref(), Some("DecryptCalls"));
        assert_eq!(c.key_id_dimension(), Some(KEY_ID));
        assert_eq!(c.threshold, Some(0.0));

        let child = "arn:aws:cloudwatch:eu-west-1:111122223333:alarm:child";
        let c = parse(&sns(&json!({
            "AlarmName": "parent", "NewStateValue": "ALARM", "OldStateValue": "OK",
            "AlarmRule": "ALARM(child)",
            "TriggeringChildren": [{"Arn": child, "State": {"Value": "ALARM", "Timestamp": "2026-11-20T09:26:07.415+0000"}}]
        })));
        assert_eq!(c.kind, AlarmKind::Composite);
        assert_eq!(c.triggering_alarms, [child]);
        assert_eq!(c.alarm_rule.as_deref(), Some("ALARM(child)"));

        let c = parse(&sns(&json!({
            "AlarmName": "a", "NewStateValue": "ALARM",
            "Trigger": {"MetricName": "DecryptCalls", "Namespace": "KMSGuardrails", "StatisticType": "ExtendedStatistic",
                        "ExtendedStatistic": "p99", "Dimensions": [{"Name": "KeyId", "Value": KEY_ID}], "Period": "300",
                        "Threshold": "12.5", "EvaluationPeriods": 2.0}
        })));
        assert_eq!(c.metrics[0].stat.as_deref(), Some("p99"));
        assert_eq!(c.metrics[0].period, Some(300));
        assert_eq!((c.threshold, c.evaluation_periods), (Some(12.5), Some(2)));
        assert_eq!(c.key_id_dimension(), Some(KEY_ID));
    }

    #[test]
    fn alarm_states_parse_exactly() {
        for state in [
            AlarmState::Ok,
            AlarmState::Alarm,
            AlarmState::InsufficientData,
        ] {
            assert_eq!(state.as_str().parse::<AlarmState>().unwrap(), state);
            assert_eq!(state.to_string(), state.as_str());
        }
        for bad in ["ok", "Alarm", "", "INSUFFICIENT DATA", "PENDING"] {
            let err = bad.parse::<AlarmState>().unwrap_err();
            assert!(err.to_string().contains("unknown alarm state"), "{err}");
        }
    }

    // GIVEN an alarm shape that is malformed THEN an InvalidEvent names the field.

    #[test]
    fn malformed_eventbridge_alarms_name_the_field() {
        let ok_state = json!({"value": "ALARM"});
        for (detail, expected) in [
            (Value::Null, "EventBridge alarm event: detail is missing"),
            (json!("x"), "detail must be an object, got \"x\""),
            (json!({"state": ok_state}), "detail.alarmName is missing"),
            (json!({"alarmName": 5, "state": ok_state}), "detail.alarmName must be a string, got 5"),
            (json!({"alarmName": "", "state": ok_state}), "detail.alarmName is empty"),
            (json!({"alarmName": "a"}), "detail.state is missing"),
            (json!({"alarmName": "a", "state": "ALARM"}), "detail.state must be an object"),
            (json!({"alarmName": "a", "state": {}}), "detail.state.value is missing"),
            (json!({"alarmName": "a", "state": {"value": ["ALARM"]}}), "detail.state.value must be a string"),
            (
                json!({"alarmName": "a", "state": {"value": "PENDING"}}),
                "detail.state.value is an unknown alarm state \"PENDING\"; expected OK, ALARM or INSUFFICIENT_DATA",
            ),
            (
                json!({"alarmName": "a", "state": ok_state, "previousState": {"value": "BROKEN"}}),
                "detail.previousState.value is an unknown alarm state \"BROKEN\"",
            ),
            (
                json!({"alarmName": "a", "state": ok_state, "previousState": "OK"}),
                "detail.previousState must be an object",
            ),
        ] {
            let err = error_of(&eventbridge(detail));
            assert!(err.contains(expected), "{err}\n  expected: {expected}");
        }

        let mut payload = eventbridge(json!({}));
        payload["detail-type"] = json!("CloudWatch Alarm Configuration Change");
        assert!(error_of(&payload).contains("not state changes"));
    }

    #[test]
    fn malformed_sns_notifications_say_what_is_wrong() {
        let record = |sns: Value| json!({"Records": [{"EventSource": "aws:sns", "Sns": sns}]});
        for (payload, expected) in [
            (
                record(json!({"Message": "Hello from a test publish"})),
                "the SNS message is not a CloudWatch alarm notification: Records[0].Sns.Message is not JSON",
            ),
            (
                record(json!({"Message": "{\"AlarmName\": \"a\"}", "Subject": "hi"})),
                "not a CloudWatch alarm notification: Records[0].Sns.Message has no AlarmName and NewStateValue (Subject \"hi\")",
            ),
            (record(json!({"Message": "[1, 2]"})), "not a CloudWatch alarm notification"),
            (record(json!({"Message": 5})), "Records[0].Sns.Message must be a string, got 5"),
            (record(json!({"Subject": "x"})), "Records[0].Sns.Message is missing"),
            (json!({"Records": [{"EventSource": "aws:sns"}]}), "SNS alarm notification: Records[0].Sns is missing"),
            (json!({"Records": [{"Sns": []}]}), "Records[0].Sns must be an object"),
            (
                record(json!({"Message": "{\"AlarmName\": \"a\", \"NewStateValue\": \"alarm\"}"})),
                "Records[0].Sns.Message.NewStateValue is an unknown alarm state \"alarm\"",
            ),
            (
                record(json!({"Message": "{\"AlarmName\": null, \"NewStateValue\": \"OK\"}"})),
                "Records[0].Sns.Message.AlarmName is missing",
            ),
            (
                record(json!({"Message": "{\"AlarmName\": \"a\", \"NewStateValue\": \"OK\", \"OldStateValue\": 1}"})),
                "Records[0].Sns.Message.OldStateValue must be a string, got 1",
            ),
        ] {
            let err = error_of(&payload);
            assert!(err.contains(expected), "{err}\n  expected: {expected}");
        }

        let mut two = sample_json("sns-classic-alarm.json");
        let first = two["Records"][0].clone();
        two["Records"].as_array_mut().unwrap().push(first);
        assert!(error_of(&two).contains("SNS event has 2 records"));

        // A huge nested message is an error, not a stack overflow.
        let deep = record(json!({"Message": "[".repeat(100_000)}));
        assert!(error_of(&deep).contains("is not JSON"));
    }

    #[test]
    fn malformed_lambda_actions_name_the_field() {
        for (payload, expected) in [
            (
                json!({"alarmData": null}),
                "Lambda alarm action: alarmData is missing",
            ),
            (
                json!({"alarmData": []}),
                "alarmData must be an object, got []",
            ),
            (
                json!({"alarmData": {"alarmName": "a"}}),
                "alarmData.state is missing",
            ),
            (
                json!({"alarmData": {"state": {"value": "OK"}}}),
                "alarmData.alarmName is missing",
            ),
        ] {
            let err = error_of(&payload);
            assert!(err.contains(expected), "{err}\n  expected: {expected}");
        }
    }

    // GIVEN something that is not an alarm at all THEN None, so the caller tries other shapes.

    #[test]
    fn non_alarm_payloads_are_none() {
        let cloudtrail: Value = serde_json::from_str(include_str!(
            "../../../events/policy-drift/put-key-policy.json"
        ))
        .unwrap();
        let schedule: Value = serde_json::from_str(include_str!(
            "../../../events/policy-drift/scheduled-sweep.json"
        ))
        .unwrap();
        for payload in [
            cloudtrail,
            schedule,
            json!("hello"),
            json!({}),
            json!(null),
            json!(42),
            json!([]),
            json!({"detail-type": "EC2 Instance State-change Notification", "detail": {"state": "stopped"}}),
            json!({"detail-type": 5, "alarmData": {}}),
            json!({"Records": []}),
            json!({"Records": "x"}),
            json!({"Records": [null]}),
            json!({"Records": [{"eventSource": "aws:sqs", "body": "{}"}]}),
            json!({"Records": [{"eventSource": "aws:s3", "s3": {}}]}),
            json!({"alarmName": "a", "state": {"value": "ALARM"}}),
        ] {
            assert!(parse_alarm_payload(&payload).is_none(), "{payload}");
        }
    }

    // Whatever a field holds, parsing returns; it never panics.

    fn pointers(value: &Value, at: String, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (key, child) in map {
                    let key = key.replace('~', "~0").replace('/', "~1");
                    pointers(child, format!("{at}/{key}"), out);
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    pointers(child, format!("{at}/{i}"), out);
                }
            }
            _ => {}
        }
        out.push(at);
    }

    #[test]
    fn no_field_value_makes_it_panic() {
        let replacements = [
            json!(null),
            json!(true),
            json!(-1),
            json!(1e300),
            json!(""),
            json!("x\n\u{2713}:"),
            json!("{not json"),
            json!([]),
            json!({}),
            json!([null, {}]),
        ];
        let mut parsed = 0;
        for (name, _) in SAMPLES {
            let payload = sample_json(name);
            if name.starts_with("sns") {
                // Also every field of the alarm message inside the SNS envelope.
                let envelope = payload.clone();
                let message: Value = serde_json::from_str(
                    envelope["Records"][0]["Sns"]["Message"].as_str().unwrap(),
                )
                .unwrap();
                let mut paths = Vec::new();
                pointers(&message, String::new(), &mut paths);
                for path in paths {
                    for replacement in &replacements {
                        let mut m = message.clone();
                        *m.pointer_mut(&path).unwrap() = replacement.clone();
                        let mut e = envelope.clone();
                        e["Records"][0]["Sns"]["Message"] = Value::String(m.to_string());
                        let _ = parse_alarm_payload(&e);
                        parsed += 1;
                    }
                }
            }
            let mut paths = Vec::new();
            pointers(&payload, String::new(), &mut paths);
            for path in paths {
                for replacement in &replacements {
                    let mut p = payload.clone();
                    *p.pointer_mut(&path).unwrap() = replacement.clone();
                    if let Some(Ok(change)) = parse_alarm_payload(&p) {
                        let _ = (change.transition_id(), change.key_id_dimension());
                    }
                    parsed += 1;
                }
            }
        }
        assert!(parsed > 2_000, "{parsed}");
    }
}
