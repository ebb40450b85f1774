//! The messages a person reads when a KMS alarm changes state: one SNS publish with
//! `MessageStructure=json` and a variant per protocol.
//!
//! - `default`: the full plain-text message (SQS, Lambda, HTTP and other subscribers);
//! - `email`: the same text: state and previous state, reason, threshold and the recent
//!   datapoints from `reasonData`, the metric or metric math or composite rule, the key, console
//!   links and runbook steps for the kind of alarm;
//! - `sms`: one line, at most [`MAX_SMS_CHARS`] characters;
//! - `https`: the custom notification JSON of Amazon Q Developer in chat applications (formerly
//!   AWS Chatbot), which subscribes to the topic with protocol `https`
//!   (endpoint `https://global.sns-api.chatbot.amazonaws.com`), so it receives this key.
//!   Format: <https://docs.aws.amazon.com/chatbot/latest/adminguide/custom-notifs.html>
//!   (`version` "1.0", `source` "custom", `content.textType` "client-markdown",
//!   `content.description`, `metadata.threadId` to thread ALARM and OK together).
//!
//! Pure: no AWS calls. Every value taken from the alarm or the key (names, reasons,
//! descriptions, tags) goes through `shared::base::text`, so it stays on one line and bounded and
//! cannot forge lines of the message; the subject is what SNS accepts whatever the alarm name.

use std::fmt::Write as _;

use serde_json::{json, Map, Value};
use shared::base::region::is_region;
use shared::base::text;
pub use shared::notify::outcome::Severity;
use shared::notify::subject_line;
use shared::triggers::alarm::{AlarmChange, AlarmKind, AlarmState, MetricRef};

/// SMS variant: one line, at most this many characters.
pub const MAX_SMS_CHARS: usize = 140;
/// SNS subjects: ASCII, one line, at most 100 characters (`shared::notify::MAX_SUBJECT_CHARS`).
pub const MAX_SUBJECT_CHARS: usize = shared::notify::MAX_SUBJECT_CHARS;
/// Longest alarm-name message attribute (CloudWatch allows 255-character names).
pub const MAX_ATTRIBUTE_CHARS: usize = 256;
/// The function name, in the `function` attribute.
pub const FUNCTION: &str = crate::handler::FUNCTION;

/// Longest reason shown (composite reasons list alarm ARNs).
const MAX_REASON_CHARS: usize = 1024;
/// Longest enrichment problem shown.
const MAX_PROBLEM_CHARS: usize = 512;
/// Lists (triggering alarms, tags, datapoints, metrics) are cut after this many entries.
const MAX_LIST: usize = 25;
/// Longest environment label shown in subjects and attributes.
const MAX_ENVIRONMENT_CHARS: usize = 32;

/// What the key behind the alarm is, when enrichment found it (`None`: the message says
/// "key unknown").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyContext {
    pub key_id: String,
    pub arn: String,
    pub alias: Option<String>,
    pub description: String,
    pub tags: Vec<(String, String)>,
    /// `Enabled`, `Disabled`, `PendingDeletion`...
    pub state: String,
    /// Whether kms-guardrails manages the key.
    pub managed: bool,
}

/// What the state change means to a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transition {
    /// ALARM.
    Firing,
    /// OK after ALARM.
    Resolved,
    /// INSUFFICIENT_DATA.
    InsufficientData,
    /// OK without a previous ALARM (first evaluation, or after INSUFFICIENT_DATA).
    Ok,
}

impl Transition {
    /// The word in subjects and the sms variant.
    pub const fn label(self) -> &'static str {
        match self {
            Transition::Firing => "FIRING",
            Transition::Resolved => "RESOLVED",
            Transition::InsufficientData => "INSUFFICIENT DATA",
            Transition::Ok => "OK",
        }
    }

    /// Stable machine name: `firing`, `resolved`, `insufficient_data`, `ok`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Transition::Firing => "firing",
            Transition::Resolved => "resolved",
            Transition::InsufficientData => "insufficient_data",
            Transition::Ok => "ok",
        }
    }
}

/// ALARM -> Firing; OK after ALARM -> Resolved; INSUFFICIENT_DATA -> InsufficientData;
/// OK otherwise -> Ok.
pub fn transition(change: &AlarmChange) -> Transition {
    match (change.state, change.previous_state) {
        (AlarmState::Alarm, _) => Transition::Firing,
        (AlarmState::Ok, Some(AlarmState::Alarm)) => Transition::Resolved,
        (AlarmState::Ok, _) => Transition::Ok,
        (AlarmState::InsufficientData, _) => Transition::InsufficientData,
    }
}

/// What the alarm watches, decided from its metric names and namespaces (then, for composite
/// alarms and alarms without metrics, from the names of the triggering alarms and its own
/// name); it picks the runbook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlarmTopic {
    /// Decrypt (or KMS call) volume on a key, from a CloudTrail metric filter.
    DecryptVolume,
    /// KMS AccessDenied errors in CloudTrail.
    AccessDenied,
    /// DisableKey or ScheduleKeyDeletion (the CIS AWS Foundations benchmark pattern).
    KeyDisabledOrDeletion,
    /// PutKeyPolicy.
    KeyPolicyChange,
    /// An `AWS/KMS` metric AWS does not publish (`DecryptCount`...): it never fires.
    UnpublishedMetric,
    Unknown,
}

impl AlarmTopic {
    /// How subjects name it.
    pub const fn title(self) -> &'static str {
        match self {
            AlarmTopic::DecryptVolume => "KMS decrypt volume",
            AlarmTopic::AccessDenied => "KMS AccessDenied errors",
            AlarmTopic::KeyDisabledOrDeletion => "KMS key disabled or scheduled for deletion",
            AlarmTopic::KeyPolicyChange => "KMS key policy changed",
            AlarmTopic::UnpublishedMetric => "alarm on a metric AWS KMS does not publish",
            AlarmTopic::Unknown => "KMS alarm",
        }
    }

    /// Stable machine name.
    pub const fn as_str(self) -> &'static str {
        match self {
            AlarmTopic::DecryptVolume => "decrypt_volume",
            AlarmTopic::AccessDenied => "access_denied",
            AlarmTopic::KeyDisabledOrDeletion => "key_disabled_or_deletion",
            AlarmTopic::KeyPolicyChange => "key_policy_change",
            AlarmTopic::UnpublishedMetric => "unpublished_metric",
            AlarmTopic::Unknown => "unknown",
        }
    }

    /// When several match (a composite over two alarms), the most urgent wins.
    const fn rank(self) -> u8 {
        match self {
            AlarmTopic::KeyDisabledOrDeletion => 6,
            AlarmTopic::AccessDenied => 5,
            AlarmTopic::KeyPolicyChange => 4,
            AlarmTopic::DecryptVolume => 3,
            AlarmTopic::UnpublishedMetric => 2,
            AlarmTopic::Unknown => 1,
        }
    }
}

/// The alarm's topic: see [`AlarmTopic`].
pub fn topic(change: &AlarmChange) -> AlarmTopic {
    if unpublished_metric(change).is_some() {
        return AlarmTopic::UnpublishedMetric;
    }
    let from_metrics = change
        .metrics
        .iter()
        .filter_map(|m| m.name.as_deref())
        .map(topic_of_name)
        .max_by_key(|t| t.rank())
        .unwrap_or(AlarmTopic::Unknown);
    if from_metrics != AlarmTopic::Unknown {
        return from_metrics;
    }
    let from_children = change
        .triggering_alarms
        .iter()
        .map(|arn| topic_of_name(arn.rsplit_once(":alarm:").map_or(arn.as_str(), |(_, n)| n)))
        .max_by_key(|t| t.rank())
        .unwrap_or(AlarmTopic::Unknown);
    if from_children != AlarmTopic::Unknown {
        return from_children;
    }
    topic_of_name(&change.alarm_name)
}

/// The first `AWS/KMS` metric of the alarm that AWS does not publish.
pub fn unpublished_metric(change: &AlarmChange) -> Option<&MetricRef> {
    change.metrics.iter().find(|m| {
        m.namespace.as_deref() == Some("AWS/KMS")
            && m.name
                .as_deref()
                .is_some_and(|n| !crate::lint::is_published_metric(n))
    })
}

fn topic_of_name(name: &str) -> AlarmTopic {
    let n: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_lowercase();
    if n.contains("disable") || n.contains("deletion") || n.contains("deletecmk") {
        AlarmTopic::KeyDisabledOrDeletion
    } else if n.contains("denied") || n.contains("unauthorized") {
        AlarmTopic::AccessDenied
    } else if n.contains("policy") {
        AlarmTopic::KeyPolicyChange
    } else if n.contains("decrypt") || n.contains("kmscalls") {
        AlarmTopic::DecryptVolume
    } else {
        AlarmTopic::Unknown
    }
}

/// critical: AccessDenied or a key disabled / scheduled for deletion, firing; high: anything
/// else firing; info: resolved, OK and insufficient data.
pub fn severity(transition: Transition, topic: AlarmTopic) -> Severity {
    match (transition, topic) {
        (Transition::Firing, AlarmTopic::AccessDenied | AlarmTopic::KeyDisabledOrDeletion) => {
            Severity::Critical
        }
        (Transition::Firing, _) => Severity::High,
        _ => Severity::Info,
    }
}

/// One publish: subject, the variants and the message attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// ASCII, one line, at most 100 characters.
    pub subject: String,
    pub default: String,
    pub email: String,
    /// One line, at most [`MAX_SMS_CHARS`] characters.
    pub sms: String,
    /// The custom notification JSON (text) of Amazon Q Developer in chat applications.
    pub chat: String,
    /// SNS message attributes, all of type `String`, values non-empty.
    pub attributes: Vec<(String, String)>,
}

impl Rendered {
    /// The SNS `Message` for `MessageStructure=json`: `default`, `email`, `sms`, and `https`
    /// (the chat variant: the chat integration subscribes with protocol `https`). Other
    /// protocols (sqs, lambda, http, email-json) receive `default`.
    pub fn sns_message(&self) -> String {
        json!({
            "default": self.default,
            "email": self.email,
            "sms": self.sms,
            "https": self.chat,
        })
        .to_string()
    }

    /// The value of one attribute.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Everything derived once and shared by the variants.
struct Facts<'a> {
    change: &'a AlarmChange,
    key: Option<&'a KeyContext>,
    environment: Option<String>,
    problem: Option<String>,
    transition: Transition,
    topic: AlarmTopic,
    severity: Severity,
    /// Region code, validated, for links.
    region: Option<&'a str>,
    /// What the subject names: the alias, else the key id, else nothing.
    target: Option<String>,
    /// Key id: enrichment's, else the alarm's `KeyId` dimension.
    key_id: Option<String>,
}

/// Renders the notification for one alarm state change.
///
/// `environment`: a label such as `prod` (subject prefix and attribute). `enrichment_problem`:
/// why key details are missing or partial (shown in the message, which is sent anyway).
pub fn render(
    change: &AlarmChange,
    key: Option<&KeyContext>,
    environment: Option<&str>,
    enrichment_problem: Option<&str>,
) -> Rendered {
    let transition = transition(change);
    let topic = topic(change);
    let key_id = key
        .map(|k| k.key_id.trim())
        .filter(|k| !k.is_empty())
        .or_else(|| change.key_id_dimension().map(str::trim))
        .map(str::to_string);
    let target = key
        .and_then(|k| k.alias.as_deref())
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(str::to_string)
        .or_else(|| key_id.clone());
    let facts = Facts {
        change,
        key,
        environment: environment
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(|e| text::one_line(e, MAX_ENVIRONMENT_CHARS)),
        problem: enrichment_problem
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| text::one_line(p, MAX_PROBLEM_CHARS)),
        transition,
        topic,
        severity: severity(transition, topic),
        region: change.region.as_deref().filter(|r| is_region(r)),
        target,
        key_id,
    };
    let subject = subject(&facts);
    let email = email(&facts);
    Rendered {
        sms: sms(&facts, &subject),
        chat: chat(&facts, &subject).to_string(),
        attributes: attributes(&facts),
        default: email.clone(),
        email,
        subject,
    }
}

// Subject.

/// `[prod] FIRING: KMS decrypt volume on alias/app-data (eu-west-1)`; for an unknown kind the
/// alarm name stands in. The middle part is cut so the state and Region always show.
fn subject(f: &Facts<'_>) -> String {
    let head = match &f.environment {
        Some(env) => format!("[{}] {}: ", subject_line(env), f.transition.label()),
        None => format!("{}: ", f.transition.label()),
    };
    let tail = f.region.map(|r| format!(" ({r})")).unwrap_or_default();
    let middle = match (f.topic, &f.target) {
        (AlarmTopic::Unknown, _) | (AlarmTopic::UnpublishedMetric, _) => {
            format!("{}: {}", f.topic.title(), f.change.alarm_name)
        }
        (topic, Some(target)) => format!("{} on {}", topic.title(), target),
        (topic, None) => format!("{} ({})", topic.title(), f.change.alarm_name),
    };
    let budget = MAX_SUBJECT_CHARS.saturating_sub(head.len() + tail.len());
    let middle = ascii_line(&middle, budget.max(8));
    subject_line(&format!("{head}{middle}{tail}"))
}

/// Printable ASCII on one line, at most `max_chars`, cut with `...`: what SNS accepts as a
/// subject or attribute whatever the input (non-ASCII becomes `?`).
/// A message attribute value. Unlike subjects, SNS takes Unicode there, with the message
/// body's restrictions (<https://docs.aws.amazon.com/sns/latest/api/API_MessageAttributeValue.html>),
/// so names keep their letters; line breaks and other control characters become one space,
/// and what SNS refuses (U+FFFE, U+FFFF) and bidirectional overrides are left out. At most
/// `max_chars` characters.
fn attribute_line(s: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let c = match c {
            c if c.is_whitespace() || c.is_control() => ' ',
            '\u{fffe}' | '\u{ffff}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => continue,
            c => c,
        };
        if !(c == ' ' && (out.is_empty() || out.ends_with(' '))) {
            out.push(c);
        }
    }
    let out = out.trim_end();
    if out.chars().count() <= max_chars {
        out.to_string()
    } else {
        let keep: String = out.chars().take(max_chars.saturating_sub(3)).collect();
        format!("{}...", keep.trim_end())
    }
}

fn ascii_line(s: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max_chars));
    for c in s.chars() {
        let c = match c {
            c if c.is_ascii_graphic() => c,
            c if c.is_whitespace() || c.is_control() => ' ',
            '\u{2013}' | '\u{2014}' => '-',
            '\u{2018}' | '\u{2019}' => '\'',
            '\u{201c}' | '\u{201d}' => '"',
            _ => '?',
        };
        if !(c == ' ' && (out.is_empty() || out.ends_with(' '))) {
            out.push(c);
        }
    }
    let out = out.trim_end();
    if out.len() <= max_chars {
        out.to_string()
    } else {
        let keep = max_chars.saturating_sub(3);
        format!("{}...", out[..keep].trim_end())
    }
}

// Email (and default).

fn email(f: &Facts<'_>) -> String {
    let c = f.change;
    let mut out = String::new();
    let headline = match &f.target {
        Some(t) => format!("{} on {}", f.topic.title(), text::value(t)),
        None => f.topic.title().to_string(),
    };
    let _ = writeln!(out, "{}: {headline}", f.transition.label());
    let _ = writeln!(out, "Severity: {}", f.severity);
    let _ = writeln!(out);
    let _ = writeln!(out, "Alarm: {}", text::value(&c.alarm_name));
    if let Some(arn) = &c.alarm_arn {
        let _ = writeln!(out, "Alarm ARN: {}", text::one_line(arn, 400));
    }
    let previous = c.previous_state.map_or("unknown", AlarmState::as_str);
    let _ = writeln!(out, "State: {} (previous state: {previous})", c.state);
    if let Some(at) = &c.timestamp {
        let _ = writeln!(out, "Changed at: {}", text::value(at));
    }
    if let Some(env) = &f.environment {
        let _ = writeln!(out, "Environment: {env}");
    }
    match (&c.account, f.region) {
        (Some(a), Some(r)) => {
            let _ = writeln!(out, "Account: {} Region: {r}", text::value(a));
        }
        (Some(a), None) => {
            let _ = writeln!(out, "Account: {}", text::value(a));
        }
        (None, Some(r)) => {
            let _ = writeln!(out, "Region: {r}");
        }
        (None, None) => {}
    }
    let _ = writeln!(out, "Alarm type: {}", c.kind.as_str());
    if let Some(d) = c.description.as_deref().filter(|d| !d.trim().is_empty()) {
        let _ = writeln!(out, "Alarm description: {}", text::value(d));
    }
    let reason = if c.reason.trim().is_empty() {
        "(none given)".to_string()
    } else {
        text::one_line(&c.reason, MAX_REASON_CHARS)
    };
    let _ = writeln!(out, "Reason: {reason}");

    let _ = writeln!(out);
    let _ = writeln!(out, "What was measured");
    let _ = writeln!(out, "  Threshold: {}", threshold_text(c));
    let _ = writeln!(
        out,
        "  Recent datapoints (oldest first): {}",
        datapoints_text(c)
    );
    if let Some(op) = &c.comparison {
        let _ = writeln!(out, "  Comparison: {}", text::value(op));
    }
    if let Some(n) = c.evaluation_periods {
        let _ = writeln!(out, "  Evaluation periods: {n}");
    }
    for line in metric_lines(c) {
        let _ = writeln!(out, "  {line}");
    }
    if c.kind == AlarmKind::Composite {
        if let Some(rule) = &c.alarm_rule {
            let _ = writeln!(
                out,
                "  Alarm rule: {}",
                text::one_line(rule, MAX_REASON_CHARS)
            );
        }
        if c.triggering_alarms.is_empty() {
            let _ = writeln!(out, "  Triggering alarms: none listed");
        } else {
            let _ = writeln!(out, "  Triggering alarms:");
            for arn in c.triggering_alarms.iter().take(MAX_LIST) {
                let _ = writeln!(out, "    - {}", text::one_line(arn, 400));
            }
            if c.triggering_alarms.len() > MAX_LIST {
                let _ = writeln!(
                    out,
                    "    ... and {} more",
                    c.triggering_alarms.len() - MAX_LIST
                );
            }
        }
    }

    let _ = writeln!(out);
    let _ = writeln!(out, "Key");
    for line in key_lines(f) {
        let _ = writeln!(out, "  {line}");
    }

    let _ = writeln!(out);
    let _ = writeln!(out, "Links");
    match alarm_console_url(f.region, &c.alarm_name) {
        Some(url) => {
            let _ = writeln!(out, "  Alarm: {url}");
        }
        None => {
            let _ = writeln!(out, "  Alarm: no console link (Region unknown)");
        }
    }
    match key_console_url(f) {
        Some(url) => {
            let _ = writeln!(out, "  Key: {url}");
        }
        None => {
            let _ = writeln!(out, "  Key: no console link (key unknown)");
        }
    }

    let _ = writeln!(out);
    let _ = writeln!(out, "What to do");
    for (i, step) in runbook(f, false).iter().enumerate() {
        let _ = writeln!(out, "  {}. {step}", i + 1);
    }
    let _ = writeln!(out);
    let _ = write!(out, "-- kms-guardrails {FUNCTION}");
    out
}

fn number(x: f64) -> String {
    if x.is_finite() {
        format!("{x}")
    } else {
        "not a number".to_string()
    }
}

fn threshold_text(c: &AlarmChange) -> String {
    match c.threshold {
        Some(t) => number(t),
        None if c.kind == AlarmKind::Composite => "none (composite alarm)".to_string(),
        None => "not given in the alarm data".to_string(),
    }
}

fn datapoints_text(c: &AlarmChange) -> String {
    if c.recent_datapoints.is_empty() {
        return "none in the alarm data".to_string();
    }
    let mut shown: Vec<String> = c
        .recent_datapoints
        .iter()
        .rev()
        .take(MAX_LIST)
        .rev()
        .map(|x| number(*x))
        .collect();
    if c.recent_datapoints.len() > MAX_LIST {
        shown.insert(0, "...".to_string());
    }
    shown.join(", ")
}

/// `Metric: KMSGuardrails/DecryptCalls KeyId=... Sum over 300 s`; metric math entries show
/// their expression.
fn metric_lines(c: &AlarmChange) -> Vec<String> {
    let mut lines = Vec::new();
    for m in c.metrics.iter().take(MAX_LIST) {
        let label = m
            .label
            .as_deref()
            .filter(|l| !l.trim().is_empty())
            .map(|l| format!(" \"{}\"", text::value(l)))
            .unwrap_or_default();
        let id =
            m.id.as_deref()
                .filter(|_| c.kind == AlarmKind::MetricMath)
                .map(|i| format!("{} = ", text::one_line(i, 64)))
                .unwrap_or_default();
        let evaluated = if c.kind == AlarmKind::MetricMath && m.return_data == Some(true) {
            " (the value the alarm evaluates)"
        } else {
            ""
        };
        if let Some(expr) = &m.expression {
            lines.push(format!(
                "Metric math: {id}{}{label}{evaluated}",
                text::one_line(expr, 512)
            ));
        } else {
            lines.push(format!("Metric: {id}{}{label}{evaluated}", metric_text(m)));
        }
    }
    if c.metrics.len() > MAX_LIST {
        lines.push(format!(
            "... and {} more metrics",
            c.metrics.len() - MAX_LIST
        ));
    }
    if lines.is_empty() && c.kind != AlarmKind::Composite {
        lines.push("Metric: not given in the alarm data".to_string());
    }
    lines
}

fn metric_text(m: &MetricRef) -> String {
    let mut s = format!(
        "{}/{}",
        text::value(m.namespace.as_deref().unwrap_or("?")),
        text::value(m.name.as_deref().unwrap_or("?"))
    );
    for (name, value) in m.dimensions.iter().take(MAX_LIST) {
        let _ = write!(s, " {}={}", text::value(name), text::value(value));
    }
    if let Some(stat) = &m.stat {
        let _ = write!(s, " {}", text::one_line(stat, 32));
    }
    if let Some(p) = m.period {
        let _ = write!(s, " over {p} s");
    }
    s
}

fn key_lines(f: &Facts<'_>) -> Vec<String> {
    let mut lines = Vec::new();
    match f.key {
        Some(k) => {
            lines.push(format!("Key ID: {}", text::value(&k.key_id)));
            if !k.arn.is_empty() {
                lines.push(format!("Key ARN: {}", text::value(&k.arn)));
            }
            lines.push(format!(
                "Alias: {}",
                k.alias.as_deref().map_or("(none)".to_string(), text::value)
            ));
            let description = if k.description.trim().is_empty() {
                "(none)".to_string()
            } else {
                text::value(&k.description)
            };
            lines.push(format!("Description: {description}"));
            lines.push(format!(
                "State: {}",
                if k.state.is_empty() {
                    "unknown".to_string()
                } else {
                    text::value(&k.state)
                }
            ));
            lines.push(format!(
                "Managed by kms-guardrails: {}",
                if k.managed { "yes" } else { "no" }
            ));
            if k.tags.is_empty() {
                lines.push("Tags: (none)".to_string());
            } else {
                lines.push("Tags:".to_string());
                for (name, value) in k.tags.iter().take(MAX_LIST) {
                    lines.push(format!("  {} = {}", text::value(name), text::value(value)));
                }
                if k.tags.len() > MAX_LIST {
                    lines.push(format!("  ... and {} more", k.tags.len() - MAX_LIST));
                }
            }
        }
        None => {
            let hint = f
                .key_id
                .as_deref()
                .map(|id| format!(" (the alarm names key {})", text::value(id)))
                .unwrap_or_default();
            lines.push(format!("key unknown{hint}"));
        }
    }
    if let Some(problem) = &f.problem {
        lines.push(format!("Enrichment problem: {problem}"));
    }
    lines
}

// Links.

fn console_host(region: &str) -> String {
    if region.starts_with("cn-") {
        format!("https://{region}.console.amazonaws.cn")
    } else if region.starts_with("us-gov-") {
        format!("https://{region}.console.amazonaws-us-gov.com")
    } else {
        format!("https://{region}.console.aws.amazon.com")
    }
}

/// `https://REGION.console.aws.amazon.com/cloudwatch/home?region=REGION#alarmsV2:alarm/NAME`.
pub fn alarm_console_url(region: Option<&str>, alarm_name: &str) -> Option<String> {
    let region = region.filter(|r| is_region(r))?;
    Some(format!(
        "{}/cloudwatch/home?region={region}#alarmsV2:alarm/{}",
        console_host(region),
        percent_encode(alarm_name)
    ))
}

/// `https://REGION.console.aws.amazon.com/kms/home?region=REGION#/kms/keys/KEY_ID`, in the
/// key's Region (from its ARN) when known.
fn key_console_url(f: &Facts<'_>) -> Option<String> {
    let key_id = f.key_id.as_deref()?;
    // A KeyId dimension may hold a key ARN: link its id, in its Region.
    let (arn_region, id) = match key_arn_parts(key_id) {
        Some((r, id)) => (Some(r), id),
        None => (None, key_id),
    };
    let region = f
        .key
        .and_then(|k| key_arn_parts(&k.arn).map(|(r, _)| r))
        .or(arn_region)
        .or(f.region)
        .filter(|r| is_region(r))?;
    Some(format!(
        "{}/kms/home?region={region}#/kms/keys/{}",
        console_host(region),
        percent_encode(id)
    ))
}

/// `arn:PARTITION:kms:REGION:ACCOUNT:key/ID` -> (REGION, ID).
fn key_arn_parts(arn: &str) -> Option<(&str, &str)> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    match parts[..] {
        ["arn", _, "kms", region, _, resource] => Some((region, resource.strip_prefix("key/")?)),
        _ => None,
    }
}

/// RFC 3986 unreserved characters stay, every other byte is `%XX` (as `encodeURIComponent`).
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

// Runbook.

/// Runbook steps for the alarm's topic and transition. The fixed text is safe in plain text
/// and in chat markdown (commands and values in backticks); values from the alarm are made
/// safe for the channel (`chat`: markdown escaped).
fn runbook(f: &Facts<'_>, chat: bool) -> Vec<String> {
    let safe = |s: &str| if chat { md(s) } else { text::value(s) };
    let key = f
        .key_id
        .as_deref()
        .map(safe)
        .unwrap_or_else(|| "KEY_ID".to_string());
    let mut steps: Vec<String> = Vec::new();
    match f.transition {
        Transition::Resolved => steps.push(
            "The alarm is back to OK: no action is needed now. Check that what was done while it fired is recorded, and that the cause is understood."
                .to_string(),
        ),
        Transition::InsufficientData => steps.push(
            "The alarm has no data to evaluate. For an alarm on a CloudTrail metric filter, check that the trail still delivers to the log group (aws cloudtrail get-trail-status) and that the metric filter still exists; with no KMS calls at all, set the alarm to treat missing data as not breaching."
                .to_string(),
        ),
        Transition::Ok | Transition::Firing => {}
    }
    if f.transition == Transition::Resolved {
        return steps;
    }
    if f.transition == Transition::Ok && f.topic != AlarmTopic::UnpublishedMetric {
        steps.push(
            "The alarm is OK and was not firing before (first evaluation, or data came back): nothing to do unless this is unexpected.".to_string(),
        );
        return steps;
    }
    match f.topic {
        AlarmTopic::DecryptVolume => steps.extend([
            "Open the alarm graph and compare the datapoints with the key's usual volume: a steady rise (new workload, batch job) or a sudden spike.".to_string(),
            format!("Find who called Decrypt on the key in the alarm period: CloudTrail Lake or Logs Insights on the trail log group, eventSource = kms.amazonaws.com, eventName = Decrypt, resources ARN of key {key}; group by userIdentity.arn and sourceIPAddress."),
            format!("If a caller is unexpected, remove its access (key policy, IAM policies, aws kms list-grants --key-id {key}) and rotate the credentials it used; look at what else those credentials did."),
            "If the volume is legitimate, raise the threshold, or cut calls with data key caching (AWS Encryption SDK) or S3 Bucket Keys.".to_string(),
        ]),
        AlarmTopic::AccessDenied => steps.extend([
            "Find the denied calls in CloudTrail: eventSource = kms.amazonaws.com and errorCode AccessDenied or AccessDeniedException; note userIdentity.arn, the key, eventName and sourceIPAddress.".to_string(),
            "An unknown principal, another account or an unusual IP: treat it as possible credential misuse. Disable or rotate the credentials and review everything else they called.".to_string(),
            "A known application: find which layer refused it; the CloudTrail errorMessage often names it (no identity-based policy allows, explicit deny in a service control policy, VPC endpoint policy, permissions boundary). KMS allows a call only when all of these do: the key policy (or the key policy delegates to IAM and the caller's IAM policies allow it), the organization's SCPs and RCPs, the caller's permissions boundary and session policy, the VPC endpoint policy of a private kms endpoint, and conditions on the request such as kms:EncryptionContext, kms:ViaService or aws:SourceVpce.".to_string(),
            format!("Then compare with the latest change on each: PutKeyPolicy, CreateGrant, RetireGrant or RevokeGrant on key {key} (a grant the caller relied on, or one whose encryption-context constraint no longer matches), IAM policy and boundary changes on the caller's role, SCP changes in AWS Organizations. Fix the narrow permission; do not widen the key policy to `kms:*`. https://docs.aws.amazon.com/kms/latest/developerguide/determining-access.html"),
        ]),
        AlarmTopic::KeyDisabledOrDeletion => steps.extend([
            format!("Check the key now: aws kms describe-key --key-id {key} (KeyState Disabled or PendingDeletion, DeletionDate)."),
            format!("If it was not intended: aws kms cancel-key-deletion --key-id {key}, then aws kms enable-key --key-id {key} (a cancelled deletion leaves the key disabled). Everything encrypted under the key is unreadable while it is disabled, and lost for good once it is deleted."),
            "Find who called DisableKey or ScheduleKeyDeletion in CloudTrail and confirm with them; an unexpected caller means compromised credentials: rotate them.".to_string(),
            format!("Before letting a deletion go ahead, check that nothing still uses the key: CloudTrail Decrypt and GenerateDataKey calls on {key} during the waiting period."),
        ]),
        AlarmTopic::KeyPolicyChange => steps.extend([
            format!("Find the PutKeyPolicy event in CloudTrail and read the new policy (requestParameters.policy); compare with aws kms get-key-policy --key-id {key} --policy-name default and the expected baseline."),
            "Look for `Principal: \"*\"`, other accounts, dropped conditions, or `kms:*` granted to non-administrators.".to_string(),
            "If the change was not authorized, put back the previous policy (aws kms put-key-policy) and review the caller's credentials; the policy-drift function of kms-guardrails reports the difference too.".to_string(),
        ]),
        AlarmTopic::UnpublishedMetric => {
            let metric = unpublished_metric(f.change)
                .map(|m| {
                    if chat {
                        escape_markdown(&metric_text(m))
                    } else {
                        metric_text(m)
                    }
                })
                .unwrap_or_else(|| "an AWS/KMS metric".to_string());
            steps.extend([
                format!("This alarm can never fire: it watches {metric}, and AWS KMS publishes no such metric. The AWS/KMS namespace has only SecondsUntilKeyMaterialExpiration and the external key store metrics (ExternalKeyStoreThrottle, XksProxy*); there are no per-key request counts or error counts, so CloudWatch receives no data and the alarm stays OK or INSUFFICIENT_DATA (https://docs.aws.amazon.com/kms/latest/developerguide/monitoring-cloudwatch.html)."),
                "Replace it with an alarm on a CloudWatch Logs metric filter on the CloudTrail log group (Decrypt calls per key, KMS AccessDenied errors, DisableKey/ScheduleKeyDeletion, PutKeyPolicy): kms-guardrails' template.yaml creates these when given the CloudTrail log group.".to_string(),
                "Delete this alarm once the replacement is in place, so nobody relies on it.".to_string(),
            ]);
        }
        AlarmTopic::Unknown => steps.extend([
            "Open the alarm and check what it measures and its threshold.".to_string(),
            format!("Look up KMS events around the state change in CloudTrail (eventSource = kms.amazonaws.com, key {key})."),
            "Name the alarm's metric after what it counts (Decrypt, AccessDenied, DisableKey, PutKeyPolicy) so the next message carries the matching runbook.".to_string(),
        ]),
    }
    steps
}

// SMS.

/// `[prod] FIRING: KMS decrypt volume on alias/app-data (eu-west-1) last 1874 > 1000`, cut to
/// [`MAX_SMS_CHARS`].
fn sms(f: &Facts<'_>, subject: &str) -> String {
    let mut s = subject.to_string();
    if let Some(last) = f.change.recent_datapoints.last() {
        let _ = write!(s, " last {}", number(*last));
        if let Some(t) = f.change.threshold {
            let _ = write!(s, " threshold {}", number(t));
        }
    }
    // The subject is ASCII already; numbers are ASCII.
    ascii_line(&s, MAX_SMS_CHARS)
}

// Chat.

/// Markdown special characters in names and values are escaped, so a name cannot add links,
/// mentions or formatting; `&`, `<` and `>` become entities (Slack's own escaping).
pub fn escape_markdown(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\\' | '*' | '_' | '~' | '`' | '[' | ']' | '|' | '#' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// A value from the alarm or the key, safe for chat: one line, bounded, markdown escaped.
fn md(s: &str) -> String {
    escape_markdown(&text::value(s))
}

fn chat(f: &Facts<'_>, subject: &str) -> Value {
    let c = f.change;
    let icon = match f.transition {
        Transition::Firing => ":rotating_light:",
        Transition::Resolved | Transition::Ok => ":white_check_mark:",
        Transition::InsufficientData => ":grey_question:",
    };
    let headline = match &f.target {
        Some(t) => format!("{} on {}", f.topic.title(), md(t)),
        None => f.topic.title().to_string(),
    };
    let title = format!("{icon} {}: {headline}", f.transition.label());

    let mut d = String::new();
    let _ = writeln!(d, "*Alarm:* {}", md(&c.alarm_name));
    let previous = c.previous_state.map_or("unknown", AlarmState::as_str);
    let _ = writeln!(
        d,
        "*State:* {} (was {}) · *Severity:* {}",
        escape_markdown(c.state.as_str()),
        escape_markdown(previous),
        f.severity
    );
    if let Some(env) = &f.environment {
        let _ = writeln!(d, "*Environment:* {}", escape_markdown(env));
    }
    if let Some(r) = f.region {
        let _ = writeln!(d, "*Region:* {}", escape_markdown(r));
    }
    if !c.reason.trim().is_empty() {
        let _ = writeln!(
            d,
            "*Reason:* {}",
            escape_markdown(&text::one_line(&c.reason, 512))
        );
    }
    if c.kind != AlarmKind::Composite || c.threshold.is_some() {
        let _ = writeln!(
            d,
            "*Threshold:* {} · *Recent datapoints:* {}",
            escape_markdown(&threshold_text(c)),
            escape_markdown(&datapoints_text(c))
        );
    }
    for m in c.metrics.iter().filter(|m| m.expression.is_some()).take(5) {
        let _ = writeln!(
            d,
            "*Metric math:* {}",
            md(m.expression.as_deref().unwrap_or_default())
        );
    }
    if c.kind == AlarmKind::Composite {
        if let Some(rule) = &c.alarm_rule {
            let _ = writeln!(d, "*Rule:* {}", md(rule));
        }
        if !c.triggering_alarms.is_empty() {
            let names: Vec<String> = c
                .triggering_alarms
                .iter()
                .take(10)
                .map(|a| md(a.rsplit_once(":alarm:").map_or(a.as_str(), |(_, n)| n)))
                .collect();
            let _ = writeln!(d, "*Triggering alarms:* {}", names.join(", "));
        }
    }
    match f.key {
        Some(k) => {
            let alias = k.alias.as_deref().map_or("no alias".to_string(), md);
            let _ = writeln!(
                d,
                "*Key:* {} ({alias}) · {} · {}",
                md(&k.key_id),
                md(if k.state.is_empty() {
                    "state unknown"
                } else {
                    &k.state
                }),
                if k.managed { "managed" } else { "not managed" }
            );
            if !k.description.trim().is_empty() {
                let _ = writeln!(d, "*Key description:* {}", md(&k.description));
            }
        }
        None => {
            let _ = writeln!(d, "*Key:* key unknown");
        }
    }
    if let Some(p) = &f.problem {
        let _ = writeln!(d, "*Enrichment problem:* {}", escape_markdown(p));
    }
    let mut links = Vec::new();
    if let Some(url) = alarm_console_url(f.region, &c.alarm_name) {
        links.push(format!("<{url}|Alarm in the console>"));
    }
    if let Some(url) = key_console_url(f) {
        links.push(format!("<{url}|Key in the console>"));
    }
    if !links.is_empty() {
        let _ = writeln!(d, "{}", links.join(" · "));
    }

    let next_steps: Vec<Value> = runbook(f, true).into_iter().map(Value::String).collect();
    let mut keywords = vec![
        Value::String(f.transition.as_str().to_string()),
        Value::String(f.severity.to_string()),
        Value::String(f.topic.as_str().to_string()),
    ];
    if let Some(env) = &f.environment {
        keywords.push(Value::String(ascii_line(env, MAX_ENVIRONMENT_CHARS)));
    }
    let mut related = Vec::new();
    if let Some(arn) = &c.alarm_arn {
        related.push(Value::String(text::one_line(arn, 400)));
    }
    if let Some(k) = f.key.filter(|k| !k.arn.is_empty()) {
        related.push(Value::String(text::value(&k.arn)));
    }
    let mut context = Map::new();
    context.insert(
        "alarmName".into(),
        Value::String(text::value(&c.alarm_name)),
    );
    context.insert("state".into(), Value::String(c.state.as_str().into()));
    context.insert("severity".into(), Value::String(f.severity.to_string()));
    if let Some(id) = &f.key_id {
        context.insert("keyId".into(), Value::String(text::value(id)));
    }
    if let Some(env) = &f.environment {
        context.insert("environment".into(), Value::String(env.clone()));
    }
    let mut notification = json!({
        "version": "1.0",
        "source": "custom",
        "id": text::one_line(&c.transition_id(), 512),
        "content": {
            "textType": "client-markdown",
            "title": title,
            "description": d.trim_end(),
            "nextSteps": next_steps,
            "keywords": keywords,
        },
        "metadata": {
            "threadId": thread_id(c),
            "summary": subject,
            "eventType": format!("KmsAlarm{}", match f.transition {
                Transition::Firing => "Firing",
                Transition::Resolved => "Resolved",
                Transition::InsufficientData => "InsufficientData",
                Transition::Ok => "Ok",
            }),
            "relatedResources": related,
            "additionalContext": context,
        }
    });
    if related_is_empty(&notification) {
        if let Some(meta) = notification["metadata"].as_object_mut() {
            meta.remove("relatedResources");
        }
    }
    notification
}

fn related_is_empty(n: &Value) -> bool {
    n["metadata"]["relatedResources"]
        .as_array()
        .is_some_and(Vec::is_empty)
}

/// The same for every state of one alarm, so ALARM and OK land in one chat thread: the alarm
/// ARN, else its name (both on one line; a name of any length keeps its identity since the
/// ARN is at most about 330 characters).
pub fn thread_id(change: &AlarmChange) -> String {
    let id = change
        .alarm_arn
        .as_deref()
        .filter(|a| !a.trim().is_empty())
        .unwrap_or(&change.alarm_name);
    text::one_line(id, 1024)
}

// Attributes.

fn attributes(f: &Facts<'_>) -> Vec<(String, String)> {
    let mut attrs = vec![
        ("severity".to_string(), f.severity.to_string()),
        ("state".to_string(), f.change.state.as_str().to_string()),
        (
            "alarm_name".to_string(),
            attribute_line(&f.change.alarm_name, MAX_ATTRIBUTE_CHARS),
        ),
    ];
    if let Some(id) = &f.key_id {
        attrs.push((
            "key_id".to_string(),
            attribute_line(id, MAX_ATTRIBUTE_CHARS),
        ));
    }
    if let Some(env) = &f.environment {
        attrs.push((
            "environment".to_string(),
            attribute_line(env, MAX_ENVIRONMENT_CHARS),
        ));
    }
    attrs.push(("function".to_string(), FUNCTION.to_string()));
    attrs.retain(|(_, v)| !v.is_empty());
    attrs
}

#[cfg(test)]
#[path = "message_tests.rs"]
mod tests;
