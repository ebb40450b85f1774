//! Notifications for people, published to SNS.

use std::collections::BTreeMap;

use aws_sdk_sns::types::MessageAttributeValue;

use crate::aws::{arn_region, AwsClients};
use crate::error::GuardrailError;

/// SNS limits: subjects are ASCII, one line, at most 100 characters; messages at most 256 KiB.
pub const MAX_SUBJECT_CHARS: usize = 100;
const MAX_MESSAGE_BYTES: usize = 240 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub subject: String,
    pub body: String,
    /// SNS message attributes, so subscribers can filter (severity, key id, ...).
    pub attributes: BTreeMap<String, String>,
}

impl Notification {
    pub fn new(subject: &str, body: String) -> Notification {
        Notification {
            subject: subject_line(subject),
            body: truncate_message(body),
            attributes: BTreeMap::new(),
        }
    }

    pub fn attribute(mut self, name: &str, value: impl Into<String>) -> Notification {
        let value = value.into();
        if !value.is_empty() {
            self.attributes.insert(name.to_string(), value);
        }
        self
    }

    /// Publishes to `topic_arn` (in the topic's own Region) and returns the SNS message id.
    pub async fn publish(
        &self,
        clients: &AwsClients,
        topic_arn: &str,
    ) -> Result<String, GuardrailError> {
        let region = arn_region(topic_arn).unwrap_or("us-east-1");
        let mut request = clients
            .sns(region)
            .publish()
            .topic_arn(topic_arn)
            .subject(&self.subject)
            .message(&self.body);
        for (name, value) in &self.attributes {
            let attribute = MessageAttributeValue::builder()
                .data_type("String")
                .string_value(value)
                .build()
                .map_err(|e| {
                    GuardrailError::InvalidEvent(format!("message attribute {name}: {e}"))
                })?;
            request = request.message_attributes(name, attribute);
        }
        let out = request
            .send()
            .await
            .map_err(|e| GuardrailError::aws("Publish", topic_arn, e))?;
        Ok(out.message_id().unwrap_or_default().to_string())
    }
}

/// A subject SNS accepts: printable ASCII on one line, at most 100 characters.
pub fn subject_line(text: &str) -> String {
    let mut cleaned = String::with_capacity(text.len());
    for c in text.chars() {
        let c = match c {
            c if c.is_ascii_graphic() => c,
            c if c.is_whitespace() || c.is_control() => ' ',
            // Typographic dashes and quotes have ASCII twins; anything else is replaced.
            '\u{2013}' | '\u{2014}' => '-',
            '\u{2018}' | '\u{2019}' => '\'',
            '\u{201c}' | '\u{201d}' => '"',
            _ => '?',
        };
        if !(c == ' ' && (cleaned.is_empty() || cleaned.ends_with(' '))) {
            cleaned.push(c);
        }
    }
    let cleaned = cleaned.trim_end().to_string();
    if cleaned.is_empty() {
        return "kms-guardrails notification".to_string();
    }
    if cleaned.len() <= MAX_SUBJECT_CHARS {
        cleaned
    } else {
        format!("{}...", cleaned[..MAX_SUBJECT_CHARS - 3].trim_end())
    }
}

fn truncate_message(body: String) -> String {
    if body.len() <= MAX_MESSAGE_BYTES {
        return body;
    }
    let mut end = MAX_MESSAGE_BYTES;
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    format!(
        "{}\n\n[message truncated at {} KiB: see the function's logs for the rest]",
        &body[..end],
        MAX_MESSAGE_BYTES / 1024
    )
}

/// The "which key" block of a message body.
pub fn key_block(key: &crate::kms::KeyInfo, alias: Option<&str>) -> String {
    let mut out = format!(
        "Key:         {}\nKey id:      {}\nAlias:       {}\nRegion:      {}\nAccount:     {}\n",
        key.arn,
        key.key_id,
        alias.unwrap_or("(none)"),
        key.region,
        key.account
    );
    if !key.description.is_empty() {
        out.push_str(&format!("Description: {}\n", key.description));
    }
    out
}

/// The "who changed it" block: identity, source IP, time and event id of the CloudTrail record,
/// or a note that a scheduled sweep found the change.
pub fn change_block(
    detail: Option<&crate::events::CloudTrailDetail>,
    sweep_time: Option<&str>,
) -> String {
    match detail {
        Some(d) => format!(
            "Changed by:  {}\nSource IP:   {}\nTime:        {}\nEvent:       {} (event id {})\n",
            d.actor(),
            d.source_ip_address.as_deref().unwrap_or("unknown"),
            d.event_time.as_deref().unwrap_or("unknown"),
            d.event_name,
            d.event_id()
        ),
        None => format!(
            "Found by:    scheduled sweep at {}\n             (no CloudTrail event was processed for this change: it may have been\n             missed or delivered late; look it up in CloudTrail for who made it)\n",
            sweep_time.unwrap_or("unknown time")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_one_ascii_line_of_at_most_100_chars() {
        assert_eq!(
            subject_line("Drift on\nalias/app \u{2014} key\t\u{00e9}"),
            "Drift on alias/app - key ?"
        );
        let long = subject_line(&"x".repeat(300));
        assert_eq!(long.len(), 100);
        assert!(long.ends_with("..."));
        assert_eq!(subject_line(" \n "), "kms-guardrails notification");
        for s in [subject_line("Ключ изменён"), subject_line("키 정책 변경")] {
            assert!(s.is_ascii() && !s.contains('\n') && s.len() <= 100, "{s}");
        }
    }

    #[test]
    fn oversized_messages_are_truncated_under_the_sns_limit() {
        let n = Notification::new("s", "é".repeat(200_000));
        assert!(n.body.len() < 256 * 1024);
        assert!(n.body.ends_with("see the function's logs for the rest]"));
    }
}
