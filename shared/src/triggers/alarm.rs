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
mod tests;
