//! What a sweep announces beside its keys: a Region it could not sweep, a `MANAGED_KEYS` entry
//! that names no key any more, and whether a key's finding is news or a repeat.

use std::collections::HashMap;

use crate::base::text;
use crate::config::CommonConfig;
use crate::notify::outcome::{RegionReport, SweepReport, UnresolvedEntry};
use crate::notify::{subject_line, Notification, Speaker};
use crate::pipeline::audit::Audit;
use crate::pipeline::journal::{self, fingerprint, fnv1a, repeat, Announced, Journal, Repeat};

/// One sweep-level announcement: its subject in the state table, the digest that tells a
/// repeat from news, and the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub subject: String,
    pub fingerprint: String,
    pub notification: Notification,
}

/// The state-table subject of a part not swept: the Region alone for the hub's own account
/// (as before organizations), the account and Region for a member account.
pub fn region_subject(home: &str, account: &str, region: &str) -> String {
    if account == home {
        format!("region#{region}")
    } else {
        format!("region#{account}/{region}")
    }
}

pub fn entry_subject(entry: &UnresolvedEntry) -> String {
    format!("entry#{}#{}", entry.region, entry.entry)
}

/// The notices of a finished sweep: pure.
pub fn sweep_notices(
    speaker: &Speaker<'_>,
    common: &CommonConfig,
    report: &SweepReport,
) -> Vec<Notice> {
    let mut notices: Vec<Notice> = report
        .regions
        .iter()
        .filter_map(|r| region_notice(speaker, common, r))
        .collect();
    notices.extend(
        report
            .unresolved_entries
            .iter()
            .map(|e| entry_notice(speaker, e)),
    );
    notices
}

fn frame(speaker: &Speaker<'_>) -> String {
    format!(
        "kms-guardrails {}, mode {}\n\n",
        speaker.function, speaker.mode
    )
}

fn region_notice(
    speaker: &Speaker<'_>,
    common: &CommonConfig,
    region: &RegionReport,
) -> Option<Notice> {
    let failure = region.error.as_ref()?;
    let code = region.region.as_str();
    let account = region.account.as_str();
    let member = account != common.account_id;
    let role = common.self_principal(account);
    let (subject, place) = if member {
        (
            format!(
                "{}KMS guardrail could not sweep account {account} in Region {code}",
                speaker.subject_label()
            ),
            format!("account {account}, Region {code}"),
        )
    } else {
        (
            format!(
                "{}KMS guardrail could not sweep Region {code}",
                speaker.subject_label()
            ),
            code.to_string(),
        )
    };
    let subject = subject_line(&subject);
    let fix = if member && failure.error_type == "AccessDenied" {
        format!(
            "AWS denied the hub in account {account}: its member role {} is missing there, does not trust this function's role, expects another external id, lacks a permission spoke.yaml grants, or a service control policy denies the call. Deploy or update spoke.yaml in that account (the StackSet's organizational units) with the ExternalId set in MEMBER_EXTERNAL_ID; if the account is not to be guarded, remove it from SWEEP_ACCOUNTS.",
            text::value(&role)
        )
    } else if failure.error_type == "AccessDenied" {
        format!(
            "AWS denied the calls. A service control policy that denies this Region (aws:RequestedRegion), the function role's IAM policy or its permissions boundary refuses them. If the Region is closed on purpose, remove it from SWEEP_REGIONS; otherwise allow the function's role {} there.",
            text::value(&role)
        )
    } else {
        "If this repeats at the next sweep, look at the function's log for the failing call."
            .to_string()
    };
    let body = format!(
        "{}The scheduled sweep could not list the managed keys in {place} ({}): {}\n\nKeys there are not audited by sweeps until this is fixed: a change whose event was missed stays unnoticed there. {fix}\n\nThis is announced once while it lasts (again as a reminder, see REMINDER_HOURS); the function's log has the line \"Region not fully swept\" at every sweep.\n",
        frame(speaker),
        text::value(&failure.error_type),
        text::one_line(&failure.error, 1000),
    );
    Some(Notice {
        subject: region_subject(&common.account_id, account, code),
        fingerprint: fnv1a(&failure.error_type),
        notification: Notification::new(&subject, body)
            .attribute("function", speaker.function)
            .attribute("severity", "high")
            .attribute("status", "failed")
            .attribute("account", account.to_string())
            .attribute("region", code.to_string())
            .attribute("environment", speaker.environment.unwrap_or_default()),
    })
}

fn entry_notice(speaker: &Speaker<'_>, entry: &UnresolvedEntry) -> Notice {
    let subject = subject_line(&format!(
        "{}KMS guardrail: MANAGED_KEYS entry names no key ({})",
        speaker.subject_label(),
        entry.region
    ));
    let body = format!(
        "{}The MANAGED_KEYS entry {} names no key in {}: KMS says it does not exist. The key was deleted, or the alias was deleted or now points nowhere.\n\nNothing is guarded under this entry. Remove it from MANAGED_KEYS, or change it to the key that replaced it (a key ARN does not follow a renamed alias).\n",
        frame(speaker),
        text::quoted(&entry.entry, 300),
        entry.region
    );
    Notice {
        subject: entry_subject(entry),
        fingerprint: fnv1a("not found"),
        notification: Notification::new(&subject, body)
            .attribute("function", speaker.function)
            .attribute("severity", "high")
            .attribute("status", "failed")
            .attribute("region", entry.region.to_string())
            .attribute("environment", speaker.environment.unwrap_or_default()),
    }
}

/// What a sweep does with the state table after a key's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Remembered {
    Nothing,
    /// The finding was sent: remember its digest once delivered.
    Remember(String),
    /// The finding is gone (or was corrected): its return is news.
    Forget,
}

/// What this function's sweeps announced before, read once per sweep.
pub struct SweepMemory<'a> {
    journal: Option<Journal<'a>>,
    announced: HashMap<String, Announced>,
    now: u64,
}

impl<'a> SweepMemory<'a> {
    /// Without a state table, or when it cannot be read, nothing is remembered and everything
    /// is announced: a repeat is better than silence.
    pub async fn load(journal: Option<Journal<'a>>) -> SweepMemory<'a> {
        let announced = match &journal {
            Some(journal) => journal.announced().await.unwrap_or_else(|e| {
                tracing::warn!(error = %e, "announced findings unreadable: every finding of this sweep is announced");
                HashMap::new()
            }),
            None => HashMap::new(),
        };
        SweepMemory {
            journal,
            announced,
            now: journal::now(),
        }
    }

    /// Decides whether `audit` (of `subject`) is news: a finding left as it was announced, with
    /// no write and nothing a retry can fix, is made quiet until its reminder is due.
    pub fn check(&self, subject: &str, audit: &mut Audit) -> Remembered {
        let Some(journal) = &self.journal else {
            return Remembered::Nothing;
        };
        let known = self.announced.contains_key(subject);
        let something = !audit.outcome.findings.is_empty() || audit.failure.is_some();
        let retryable = audit
            .failure
            .as_ref()
            .is_some_and(|e| e.disposition() == crate::base::error::Disposition::Retry);
        let standing =
            something && !retryable && audit.outcome.writes() == 0 && audit.records.is_empty();
        if !standing {
            return if known && (!something || audit.outcome.writes() > 0) {
                Remembered::Forget
            } else {
                Remembered::Nothing
            };
        }
        let digest = fingerprint(&audit.outcome, audit.failure.as_ref());
        let reminder = journal.store().reminder;
        match repeat(self.announced.get(subject), &digest, self.now, reminder) {
            Repeat::Unchanged { since } => {
                let next = match reminder {
                    Some(every) => {
                        format!("a reminder follows at {}", utc(since + every.as_secs()))
                    }
                    None => "no reminder is configured (REMINDER_HOURS=0)".to_string(),
                };
                audit.quiet = Some(format!(
                    "unchanged since it was announced at {}; {next}",
                    utc(since)
                ));
                Remembered::Nothing
            }
            Repeat::New | Repeat::Reminder => Remembered::Remember(digest),
        }
    }

    /// Records what [`check`](Self::check) decided, once the outcome is known.
    pub async fn settle(&self, subject: &str, remembered: Remembered, delivered: bool) {
        let Some(journal) = &self.journal else {
            return;
        };
        match remembered {
            Remembered::Remember(digest) if delivered => journal.remember(subject, &digest).await,
            Remembered::Forget => journal.forget(subject).await,
            _ => {}
        }
    }

    /// Whether `notice` is sent now; `false` for one announced unchanged and not yet due.
    pub fn is_news(&self, notice: &Notice) -> bool {
        let reminder = self.journal.as_ref().and_then(|j| j.store().reminder);
        !matches!(
            repeat(
                self.announced.get(&notice.subject),
                &notice.fingerprint,
                self.now,
                reminder
            ),
            Repeat::Unchanged { .. }
        )
    }

    /// Whether a finding about `subject` was announced before and is remembered.
    pub fn knows(&self, subject: &str) -> bool {
        self.announced.contains_key(subject)
    }

    /// Subjects of sweep-level notices remembered before and absent now: resolved.
    pub fn resolved<'n>(&'n self, kinds: &'n [&str], notices: &'n [Notice]) -> Vec<&'n str> {
        self.announced
            .keys()
            .filter(|subject| kinds.iter().any(|k| subject.starts_with(k)))
            .filter(|subject| !notices.iter().any(|n| &n.subject == *subject))
            .map(String::as_str)
            .collect()
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` for seconds since the epoch (the civil-from-days algorithm).
pub fn utc(seconds: u64) -> String {
    let days = (seconds / 86_400) as i64;
    let rest = seconds % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::outcome::KeyFailure;

    use crate::testing::speaker;

    #[test]
    fn times_are_written_in_utc() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        // 2026-12-03T13:22:35Z, as `date -u -d @1796304155` prints it.
        assert_eq!(utc(1_796_304_155), "2026-12-03T13:22:35Z");
        assert_eq!(utc(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn a_denied_region_is_announced_with_its_likely_cause_and_the_fix() {
        let mut report = SweepReport::default();
        report.regions.push(RegionReport {
            account: "111122223333".into(),
            region: crate::base::region::Region::parse("eu-west-3").unwrap(),
            keys_listed: 0,
            error: Some(KeyFailure {
                key: "keys in eu-west-3".into(),
                error_type: "AccessDenied".into(),
                error: "GetResources on eu-west-3 failed: AccessDeniedException: explicit deny in a service control policy".into(),
            }),
        });
        let notices = sweep_notices(&speaker(), &common(&[]), &report);
        assert_eq!(notices.len(), 1);
        let n = &notices[0].notification;
        assert_eq!(
            n.subject,
            "[prod] KMS guardrail could not sweep Region eu-west-3"
        );
        assert!(
            n.body.contains("remove it from SWEEP_REGIONS"),
            "{}",
            n.body
        );
        assert!(n.body.contains("service control policy"), "{}", n.body);
        assert_eq!(notices[0].subject, "region#eu-west-3");
    }

    fn common(extra: &[(&str, &str)]) -> CommonConfig {
        let env = crate::testing::env("arn:aws:iam::111122223333:role/policy-drift", extra);
        crate::config::load(&env, CommonConfig::read, |_| Vec::new()).unwrap()
    }

    #[test]
    fn a_member_account_the_hub_cannot_enter_is_announced_with_its_role_and_the_spoke() {
        let mut report = SweepReport::default();
        report.regions.push(RegionReport {
            account: "444455556666".into(),
            region: crate::base::region::Region::parse("us-east-1").unwrap(),
            keys_listed: 0,
            error: Some(KeyFailure {
                key: "keys of account 444455556666 in us-east-1".into(),
                error_type: "AccessDenied".into(),
                error: "AssumeRole on arn:aws:iam::444455556666:role/kms-guardrails-member failed: AccessDenied".into(),
            }),
        });
        let member = [
            ("MEMBER_ROLE_NAME", "kms-guardrails-member"),
            ("MEMBER_EXTERNAL_ID", "guardrails-7f3a"),
        ];
        let notices = sweep_notices(&speaker(), &common(&member), &report);
        assert_eq!(notices.len(), 1);
        let n = &notices[0].notification;
        assert_eq!(
            n.subject,
            "[prod] KMS guardrail could not sweep account 444455556666 in Region us-east-1"
        );
        assert!(
            n.body
                .contains("arn:aws:iam::444455556666:role/kms-guardrails-member"),
            "{}",
            n.body
        );
        assert!(n.body.contains("Deploy or update spoke.yaml"), "{}", n.body);
        assert!(n.body.contains("SWEEP_ACCOUNTS"), "{}", n.body);
        assert_eq!(n.attributes["account"], "444455556666");
        assert_eq!(notices[0].subject, "region#444455556666/us-east-1");
    }

    #[test]
    fn an_entry_that_names_no_key_is_announced_with_the_entry() {
        let mut report = SweepReport::default();
        report.unresolved_entries.push(UnresolvedEntry {
            entry: "alias/payments".into(),
            region: crate::base::region::Region::parse("eu-west-1").unwrap(),
        });
        let notices = sweep_notices(&speaker(), &common(&[]), &report);
        assert_eq!(notices.len(), 1);
        let n = &notices[0].notification;
        assert!(n.body.contains("\"alias/payments\""), "{}", n.body);
        assert!(n.body.contains("Remove it from MANAGED_KEYS"), "{}", n.body);
    }
}
