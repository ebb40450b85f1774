use super::*;
use shared::triggers::alarm::parse_alarm_payload;

fn sample(text: &str) -> AlarmChange {
    let payload: Value = serde_json::from_str(text).expect("sample is JSON");
    parse_alarm_payload(&payload)
        .expect("an alarm shape")
        .expect("a valid alarm")
}

macro_rules! sample {
    ($name:literal) => {
        sample(include_str!(concat!(
            "../../../events/alarm-notifier/",
            $name
        )))
    };
}

const KEY_ID: &str = "1234abcd-12ab-34cd-56ef-1234567890ab";

fn app_data_key() -> KeyContext {
    KeyContext {
        key_id: KEY_ID.to_string(),
        arn: format!("arn:aws:kms:eu-west-1:111122223333:key/{KEY_ID}"),
        alias: Some("alias/app-data".to_string()),
        description: "Application data".to_string(),
        tags: vec![
            ("team".to_string(), "payments".to_string()),
            ("kms-guardrails:managed".to_string(), "true".to_string()),
        ],
        state: "Enabled".to_string(),
        managed: true,
    }
}

/// What every rendering must satisfy, whatever the input.
fn check_invariants(r: &Rendered, change: &AlarmChange) {
    assert!(r.subject.is_ascii(), "{:?}", r.subject);
    assert!(!r.subject.contains(['\n', '\r']), "{:?}", r.subject);
    assert!(
        r.subject.chars().count() <= MAX_SUBJECT_CHARS,
        "{}",
        r.subject
    );
    assert!(!r.subject.trim().is_empty());
    assert!(r.sms.chars().count() <= MAX_SMS_CHARS, "{}", r.sms);
    assert!(!r.sms.contains(['\n', '\r']));
    assert_eq!(r.default, r.email);

    let chat: Value = serde_json::from_str(&r.chat).expect("chat is JSON");
    assert_eq!(chat["version"], "1.0");
    assert_eq!(chat["source"], "custom");
    assert_eq!(chat["content"]["textType"], "client-markdown");
    assert!(chat["content"]["title"]
        .as_str()
        .is_some_and(|t| !t.is_empty()));
    assert!(chat["content"]["description"]
        .as_str()
        .is_some_and(|t| !t.is_empty()));
    assert!(chat["content"]["nextSteps"]
        .as_array()
        .is_some_and(|s| !s.is_empty()));
    assert!(chat["content"]["nextSteps"]
        .as_array()
        .unwrap()
        .iter()
        .all(Value::is_string));
    assert_eq!(
        chat["metadata"]["threadId"].as_str(),
        Some(thread_id(change).as_str())
    );
    assert_eq!(
        chat["metadata"]["summary"].as_str(),
        Some(r.subject.as_str())
    );

    let message: Value = serde_json::from_str(&r.sns_message()).expect("SNS message JSON");
    let object = message.as_object().unwrap();
    for key in ["default", "email", "sms", "https"] {
        assert!(object[key].is_string(), "{key}");
    }
    assert_eq!(object["https"].as_str(), Some(r.chat.as_str()));
    assert!(r.sns_message().len() < 256 * 1024);

    for (name, value) in &r.attributes {
        assert!(!value.is_empty(), "{name}");
        // SNS attribute values take Unicode, but not control characters or U+FFFE/U+FFFF.
        assert!(
            !value
                .chars()
                .any(|c| c.is_control() || c == '\u{fffe}' || c == '\u{ffff}'),
            "{name}: {value:?}"
        );
        assert!(value.chars().count() <= MAX_ATTRIBUTE_CHARS, "{name}");
    }
    assert_eq!(r.attribute("function"), Some(FUNCTION));
    assert_eq!(r.attribute("state"), Some(change.state.as_str()));
    assert!(r.attribute("severity").is_some());
    assert!(r.attribute("alarm_name").is_some());
}

fn render_checked(
    change: &AlarmChange,
    key: Option<&KeyContext>,
    env: Option<&str>,
    problem: Option<&str>,
) -> Rendered {
    let r = render(change, key, env, problem);
    check_invariants(&r, change);
    r
}

fn chat_of(r: &Rendered) -> Value {
    serde_json::from_str(&r.chat).unwrap()
}

#[test]
fn decrypt_volume_alarm_reads_as_a_firing_message() {
    let change = sample!("eventbridge-decrypt-volume-alarm.json");
    let key = app_data_key();
    let r = render_checked(&change, Some(&key), Some("prod"), None);

    assert_eq!(
        r.subject,
        "[prod] FIRING: KMS decrypt volume on alias/app-data (eu-west-1)"
    );
    assert_eq!(transition(&change), Transition::Firing);
    assert_eq!(topic(&change), AlarmTopic::DecryptVolume);

    let e = &r.email;
    assert!(e.contains("State: ALARM (previous state: OK)"), "{e}");
    assert!(e.contains("Threshold: 1000\n"), "{e}");
    assert!(
        e.contains("Recent datapoints (oldest first): 412, 1532, 1874"),
        "{e}"
    );
    assert!(e.contains("Reason: Threshold Crossed: 2 out of the last 3 datapoints"));
    assert!(e.contains(&format!(
        "Metric: KMSGuardrails/DecryptCalls KeyId={KEY_ID} Sum over 300 s"
    )));
    assert!(e.contains("Alias: alias/app-data"));
    assert!(e.contains("Description: Application data"));
    assert!(e.contains("State: Enabled"));
    assert!(e.contains("Managed by kms-guardrails: yes"));
    assert!(e.contains("team = payments"));
    assert!(e.contains(
        "https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1#alarmsV2:alarm/kms-app-data-decrypt-volume"
    ));
    assert!(e.contains(&format!(
        "https://eu-west-1.console.aws.amazon.com/kms/home?region=eu-west-1#/kms/keys/{KEY_ID}"
    )));
    assert!(e.contains("What to do\n  1. "), "{e}");
    assert!(e.contains("eventName = Decrypt"));

    assert_eq!(
        r.sms,
        "[prod] FIRING: KMS decrypt volume on alias/app-data (eu-west-1) last 1874 threshold 1000"
    );

    let chat = chat_of(&r);
    assert_eq!(
        chat["metadata"]["threadId"],
        "arn:aws:cloudwatch:eu-west-1:111122223333:alarm:kms-app-data-decrypt-volume"
    );
    let d = chat["content"]["description"].as_str().unwrap();
    assert!(d.contains("1000") && d.contains("412, 1532, 1874"), "{d}");
    assert!(
        d.starts_with("*Alarm:* kms-app-data-decrypt-volume\n"),
        "{d}"
    );
    assert!(
        d.contains("*Key:* 1234abcd-12ab-34cd-56ef-1234567890ab (alias/app-data)"),
        "{d}"
    );
    assert_eq!(
        chat["content"]["title"],
        ":rotating_light: FIRING: KMS decrypt volume on alias/app-data"
    );
    assert_eq!(chat["content"]["textType"], "client-markdown");
    assert_eq!(chat["metadata"]["eventType"], "KmsAlarmFiring");

    assert_eq!(
        r.attributes,
        vec![
            ("severity".to_string(), "high".to_string()),
            ("state".to_string(), "ALARM".to_string()),
            (
                "alarm_name".to_string(),
                "kms-app-data-decrypt-volume".to_string()
            ),
            ("key_id".to_string(), KEY_ID.to_string()),
            ("environment".to_string(), "prod".to_string()),
            ("function".to_string(), "alarm-notifier".to_string()),
        ]
    );
}

#[test]
fn the_ok_after_alarm_is_resolved_in_the_same_thread() {
    let firing = sample!("eventbridge-decrypt-volume-alarm.json");
    let ok = sample!("eventbridge-decrypt-volume-ok.json");
    let key = app_data_key();
    let r = render_checked(&ok, Some(&key), None, None);
    assert_eq!(transition(&ok), Transition::Resolved);
    assert_eq!(
        r.subject,
        "RESOLVED: KMS decrypt volume on alias/app-data (eu-west-1)"
    );
    assert_eq!(r.attribute("severity"), Some("info"));
    assert_eq!(r.attribute("state"), Some("OK"));
    assert_eq!(r.attribute("environment"), None);
    assert!(r.email.contains("State: OK (previous state: ALARM)"));
    assert!(r
        .email
        .contains("Recent datapoints (oldest first): 1190, 318, 655"));
    assert!(r.email.contains("no action is needed"));
    let a = chat_of(&render(&firing, Some(&key), None, None));
    let b = chat_of(&r);
    assert_eq!(a["metadata"]["threadId"], b["metadata"]["threadId"]);
    assert_ne!(a["id"], b["id"]);
}

#[test]
fn access_denied_firing_is_critical() {
    for change in [
        sample!("eventbridge-access-denied-alarm.json"),
        sample!("lambda-alarm-action.json"),
    ] {
        let r = render_checked(&change, None, Some("prod"), None);
        assert_eq!(topic(&change), AlarmTopic::AccessDenied);
        // No KeyId dimension and no key context: the alarm name stands in.
        assert_eq!(
            r.subject,
            "[prod] FIRING: KMS AccessDenied errors (kms-app-data-access-denied) (eu-west-1)"
        );
        assert_eq!(r.attribute("severity"), Some("critical"));
        assert_eq!(r.attribute("key_id"), None);
        assert!(r.email.contains("Threshold: 0\n"), "{}", r.email);
        assert!(r.email.contains("Recent datapoints (oldest first): 3\n"));
        assert!(r.email.contains("key unknown"));
        assert!(r.email.contains("errorCode AccessDenied"));
        // Not only the key policy: every layer that can refuse a KMS call is named.
        for layer in [
            "IAM policies",
            "SCPs",
            "permissions boundary",
            "VPC endpoint policy",
            "RevokeGrant",
            "kms:EncryptionContext",
        ] {
            assert!(r.email.contains(layer), "{layer}");
        }
        assert!(r.email.contains("Key: no console link (key unknown)"));
        assert!(r.sms.contains("last 3 threshold 0"));
    }
}

#[test]
fn composite_alarm_lists_its_triggering_alarms() {
    let change = sample!("eventbridge-composite-alarm.json");
    let r = render_checked(&change, Some(&app_data_key()), None, None);
    assert_eq!(topic(&change), AlarmTopic::AccessDenied);
    assert!(r.email.contains("Alarm type: composite"));
    assert!(r.email.contains(
        "Alarm rule: ALARM(\"kms-app-data-decrypt-volume\") AND ALARM(\"kms-app-data-access-denied\")"
    ));
    assert!(r.email.contains(
        "    - arn:aws:cloudwatch:eu-west-1:111122223333:alarm:kms-app-data-access-denied\n"
    ));
    assert!(r.email.contains(
        "    - arn:aws:cloudwatch:eu-west-1:111122223333:alarm:kms-app-data-decrypt-volume\n"
    ));
    assert!(r.email.contains("Threshold: none (composite alarm)"));
    let d = chat_of(&r)["content"]["description"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(d.contains("Triggering alarms:"), "{d}");
    assert!(
        d.contains("*Triggering alarms:* kms-app-data-access-denied, kms-app-data-decrypt-volume"),
        "{d}"
    );
}

#[test]
fn metric_math_shows_the_expression() {
    let change = sample!("eventbridge-metric-math-alarm.json");
    let r = render_checked(&change, None, None, None);
    assert_eq!(topic(&change), AlarmTopic::AccessDenied);
    assert!(
        r.email.contains(
            "Metric math: e1 = 100 * e0 / m2 \"Denied share of calls (%)\" (the value the alarm evaluates)"
        ),
        "{}",
        r.email
    );
    assert!(r.email.contains("Metric math: e0 = FILL(m1, 0)"));
    assert!(r
        .email
        .contains("Metric: m1 = KMSGuardrails/KMSAccessDenied"));
    assert!(r.email.contains("Threshold: 5\n"));
    assert!(r.email.contains("Recent datapoints (oldest first): 12.5\n"));
    // The KeyId dimension names the key even without enrichment.
    assert_eq!(r.attribute("key_id"), Some(KEY_ID));
    assert!(r
        .email
        .contains(&format!("key unknown (the alarm names key {KEY_ID})")));
    assert!(r.email.contains(&format!("#/kms/keys/{KEY_ID}")));
    let d = chat_of(&r)["content"]["description"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(d.contains("*Metric math:* 100 \\* e0 / m2"), "{d}");
}

#[test]
fn an_alarm_on_an_unpublished_aws_kms_metric_says_why_it_never_fires() {
    let change = sample!("eventbridge-aws-kms-namespace-alarm.json");
    let r = render_checked(&change, None, None, None);
    assert_eq!(topic(&change), AlarmTopic::UnpublishedMetric);
    assert_eq!(transition(&change), Transition::Ok);
    assert_eq!(
        r.subject,
        "OK: alarm on a metric AWS KMS does not publish: kms-app-data-decrypt-count (eu-west-1)"
    );
    assert!(r.email.contains("This alarm can never fire"));
    assert!(r.email.contains("AWS/KMS/DecryptCount"));
    assert!(r.email.contains("AWS KMS publishes no such metric"));
    assert!(r
        .email
        .contains("metric filter on the CloudTrail log group"));
    assert!(r.email.contains("Threshold: 1000"));
    assert!(r
        .email
        .contains("Recent datapoints (oldest first): none in the alarm data"));
    assert_eq!(r.attribute("severity"), Some("info"));
}

#[test]
fn insufficient_data_and_sns_classic() {
    let change = sample!("eventbridge-insufficient-data.json");
    let r = render_checked(&change, Some(&app_data_key()), None, None);
    assert_eq!(transition(&change), Transition::InsufficientData);
    assert!(r
        .subject
        .starts_with("INSUFFICIENT DATA: KMS decrypt volume"));
    assert_eq!(r.attribute("severity"), Some("info"));
    assert!(r.email.contains("The alarm has no data to evaluate"));

    let change = sample!("sns-classic-alarm.json");
    let r = render_checked(&change, None, Some("prod"), None);
    assert_eq!(
        r.subject,
        format!("[prod] FIRING: KMS decrypt volume on {KEY_ID} (eu-west-1)")
    );
    assert!(r.email.contains("Threshold: 1000\n"));
    assert!(r.email.contains("Comparison: GreaterThanThreshold"));
    assert!(r.email.contains("Evaluation periods: 3"));
    // SNS notifications carry no reasonData: the values are only in the reason.
    assert!(r
        .email
        .contains("Recent datapoints (oldest first): none in the alarm data"));
    assert!(r.email.contains("[1874.0 (20/11/26 09:20:00)"));
    assert!(r
        .email
        .contains("alarmsV2:alarm/kms-app-data-decrypt-volume"));
}

#[test]
fn a_hostile_255_character_alarm_name_gives_a_valid_subject() {
    let mut change = sample!("eventbridge-decrypt-volume-alarm.json");
    let unit = "Ключ\nrésumé ✓ ";
    let name: String = unit.chars().cycle().take(255).collect();
    assert_eq!(name.chars().count(), 255);
    change.alarm_name = name.clone();
    change.alarm_arn = Some(format!(
        "arn:aws:cloudwatch:eu-west-1:111122223333:alarm:{name}"
    ));
    change.metrics.clear();
    change.reason = "line one\nForged: line".to_string();
    change.description = Some("desc\nKey ID: forged".to_string());
    let r = render_checked(&change, None, Some("prod\nX"), None);
    assert!(
        r.subject.starts_with("[prod\\nX] FIRING: KMS alarm: "),
        "{}",
        r.subject
    );
    assert!(r.subject.ends_with("... (eu-west-1)"), "{}", r.subject);
    assert!(r.email.contains("Reason: line one\\nForged: line"));
    assert!(r.email.contains("Alarm description: desc\\nKey ID: forged"));
    assert!(!r.email.lines().any(|l| l.starts_with("Forged")));
    assert!(!r.email.lines().any(|l| l.starts_with("Key ID: forged")));
    let attr = r.attribute("alarm_name").unwrap();
    // SNS takes Unicode in attribute values: the name keeps its letters, on one line.
    assert!(attr.chars().count() <= MAX_ATTRIBUTE_CHARS, "{attr}");
    assert!(attr.starts_with("Ключ résumé"), "{attr}");
    // The console link encodes the name.
    assert!(r
        .email
        .contains("#alarmsV2:alarm/%D0%9A%D0%BB%D1%8E%D1%87%0Ar%C3%A9sum%C3%A9"));
    // Thread id stays the same whatever the state.
    let mut ok = change.clone();
    ok.state = AlarmState::Ok;
    ok.previous_state = Some(AlarmState::Alarm);
    let r_ok = render_checked(&ok, None, None, None);
    assert_eq!(
        chat_of(&r)["metadata"]["threadId"],
        chat_of(&r_ok)["metadata"]["threadId"]
    );
}

#[test]
fn no_key_context_and_an_enrichment_problem_are_in_the_message() {
    let change = sample!("eventbridge-decrypt-volume-alarm.json");
    let problem = "DescribeKey failed: AccessDeniedException\nfake line";
    let r = render_checked(&change, None, None, Some(problem));
    assert!(r.email.contains("key unknown"));
    assert!(r
        .email
        .contains("Enrichment problem: DescribeKey failed: AccessDeniedException\\nfake line"));
    let d = chat_of(&r)["content"]["description"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        d.contains("key unknown") && d.contains("Enrichment problem"),
        "{d}"
    );
    // The dimension still gives the key id for the subject, attribute and link.
    assert_eq!(r.attribute("key_id"), Some(KEY_ID));

    let mut bare = change.clone();
    bare.metrics.clear();
    bare.region = None;
    let r = render_checked(&bare, None, None, None);
    assert!(r.email.contains("Alarm: no console link (Region unknown)"));
    assert!(r.email.contains("Key: no console link (key unknown)"));
}

#[test]
fn key_descriptions_and_tags_cannot_forge_lines_or_markdown() {
    let change = sample!("eventbridge-decrypt-volume-alarm.json");
    let mut key = app_data_key();
    key.description = "ok\nManaged by kms-guardrails: no".to_string();
    key.alias = Some("alias/*bold*_[x](http://evil)".to_string());
    key.tags = vec![("owner\nState".to_string(), "Disabled\n".to_string())];
    let r = render_checked(&change, Some(&key), None, None);
    assert!(r
        .email
        .contains("Description: ok\\nManaged by kms-guardrails: no"));
    assert_eq!(r.email.matches("\n  Managed by kms-guardrails:").count(), 1);
    assert!(r.email.contains("owner\\nState = Disabled\\n"));
    let chat = chat_of(&r);
    let title = chat["content"]["title"].as_str().unwrap();
    assert!(
        title.contains("alias/\\*bold\\*\\_\\[x\\](http://evil)"),
        "{title}"
    );
    assert_eq!(
        escape_markdown("<!here> & `x`"),
        "&lt;!here&gt; &amp; \\`x\\`"
    );
}

#[test]
fn transitions_and_severities() {
    let mut c = sample!("eventbridge-decrypt-volume-alarm.json");
    for (state, previous, expected) in [
        (AlarmState::Alarm, None, Transition::Firing),
        (
            AlarmState::Alarm,
            Some(AlarmState::Alarm),
            Transition::Firing,
        ),
        (
            AlarmState::Ok,
            Some(AlarmState::Alarm),
            Transition::Resolved,
        ),
        (
            AlarmState::Ok,
            Some(AlarmState::InsufficientData),
            Transition::Ok,
        ),
        (AlarmState::Ok, None, Transition::Ok),
        (
            AlarmState::InsufficientData,
            Some(AlarmState::Alarm),
            Transition::InsufficientData,
        ),
    ] {
        c.state = state;
        c.previous_state = previous;
        assert_eq!(transition(&c), expected, "{state:?} after {previous:?}");
    }
    assert_eq!(
        severity(Transition::Firing, AlarmTopic::KeyDisabledOrDeletion),
        Severity::Critical
    );
    assert_eq!(
        severity(Transition::Firing, AlarmTopic::KeyPolicyChange),
        Severity::High
    );
    assert_eq!(
        severity(Transition::Resolved, AlarmTopic::AccessDenied),
        Severity::Info
    );
    assert_eq!(
        topic_of_name("DisableOrDeleteCMKCount"),
        AlarmTopic::KeyDisabledOrDeletion
    );
    assert_eq!(
        topic_of_name("KMSKeyPolicyChanges"),
        AlarmTopic::KeyPolicyChange
    );
    assert_eq!(topic_of_name("whatever"), AlarmTopic::Unknown);
}

#[test]
fn deletion_alarm_runbook_cancels_the_deletion() {
    let mut c = sample!("eventbridge-decrypt-volume-alarm.json");
    c.metrics[0].name = Some("KMSKeyDisabledOrScheduledForDeletion".to_string());
    let r = render_checked(&c, Some(&app_data_key()), None, None);
    assert_eq!(r.attribute("severity"), Some("critical"));
    assert!(r
        .subject
        .starts_with("FIRING: KMS key disabled or scheduled for deletion on alias/app-data"));
    assert!(r
        .email
        .contains(&format!("aws kms cancel-key-deletion --key-id {KEY_ID}")));
}
