//! Typed configuration read once from the environment at cold start.
//!
//! Every variable is checked before the function serves an event, and all problems are
//! reported together so one deploy fixes them all.

use std::fmt;

use crate::base::arn::{is_account_id, Arn};
pub use crate::base::error::ConfigError;
use crate::base::region::Region;
use crate::policy::baseline::{BaselineParts, BaselineSource};

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Correct what drifted.
    Enforce,
    /// Dry run: find and notify, write nothing to any key.
    Report,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Enforce => "enforce",
            Mode::Report => "report",
        })
    }
}

/// How managed keys are chosen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ManagedSelector {
    /// Keys carrying this tag with this value.
    Tag { key: String, value: String },
    /// Exactly these keys: key ARNs, key ids, alias names or alias ARNs.
    Keys(Vec<String>),
}

/// What every function reads: the account, the mode, which keys are managed, where
/// notifications go, its own role and how sweeps run. Each function adds its own part.
#[derive(Clone, Debug)]
pub struct CommonConfig {
    pub mode: Mode,
    pub account_id: String,
    /// The Region the function runs in; events without a Region-bearing ARN resolve here.
    pub region: Region,
    pub managed: ManagedSelector,
    pub notify_topic_arn: Arn,
    /// The function's own execution role: events it caused are skipped (loop prevention).
    pub self_role_arn: Arn,
    pub sweep_regions: Vec<Region>,
    pub sweep_concurrency: usize,
    /// A label such as `prod`, shown in notification subjects.
    pub environment: Option<String>,
    /// Where a notification goes when SNS cannot take it (the stack's dead-letter queue).
    pub fallback_queue_url: Option<String>,
    /// The DynamoDB table that remembers corrections not yet announced and findings announced.
    pub state: Option<StateStore>,
    /// The role other accounts' keys are reached through; `None`: this account only.
    pub members: Option<MemberRole>,
    /// The accounts a sweep covers, this one first (`SWEEP_ACCOUNTS`).
    pub sweep_accounts: Vec<String>,
    /// Sweeps fanned out on SQS, one work item per (account, Region); `None`: swept in place.
    pub fan_out: Option<FanOut>,
    /// The share of each KMS quota taken per account and Region (`KMS_QUOTA_SHARE`, percent).
    pub rates: crate::base::pace::Rates,
}

/// The work queue of fanned-out sweeps (`SWEEP_QUEUE_URL`, `SWEEP_MAX_RECEIVES`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FanOut {
    pub queue_url: String,
    /// The queue's `maxReceiveCount`: a work item's last delivery is finished whatever
    /// happens, as a part not swept, so the sweep's summary still comes.
    pub max_receives: u32,
}

/// The queue's redrive `maxReceiveCount` unless `SWEEP_MAX_RECEIVES` says otherwise
/// (template.yaml's SweepQueue).
pub const DEFAULT_SWEEP_MAX_RECEIVES: u32 = 3;

/// The member role every member account has, deployed by `spoke.yaml` (`MEMBER_ROLE_NAME`,
/// `MEMBER_EXTERNAL_ID`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRole {
    pub name: String,
    pub external_id: String,
}

impl CommonConfig {
    /// The principal this function acts as on keys of `account`: its own role at home, the
    /// member role elsewhere. It is the one the lockout check must keep in control.
    pub fn self_principal(&self, account: &str) -> String {
        match &self.members {
            Some(role) if account != self.account_id => format!(
                "arn:{}:iam::{account}:role/{}",
                self.self_role_arn.partition(),
                role.name
            ),
            _ => self.self_role_arn.to_string(),
        }
    }
}

impl MemberRole {
    fn read(r: &mut Env) -> Option<MemberRole> {
        let name = r.optional("MEMBER_ROLE_NAME")?;
        // IAM role names: 1-64 of letters, digits and +=,.@_-.
        let name_ok = (1..=64).contains(&name.len())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c));
        if !name_ok {
            r.problem(format!(
                "MEMBER_ROLE_NAME is not an IAM role name (1-64 of letters, digits and +=,.@_-): {}",
                crate::base::text::quoted(&name, 80)
            ));
        }
        let external_id = r.required(
            "MEMBER_EXTERNAL_ID",
            "the external id the member role's trust policy requires (spoke.yaml's ExternalId parameter)",
        );
        // STS: 2-1224 of letters, digits and +=,.@:/-.
        let id_ok = (2..=1224).contains(&external_id.len())
            && external_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+=,.@:/-_".contains(c));
        if !external_id.is_empty() && !id_ok {
            r.problem(
                "MEMBER_EXTERNAL_ID must be 2 to 1224 of letters, digits and +=,.@:/-_".to_string(),
            );
        }
        Some(MemberRole { name, external_id })
    }
}

/// The state table and how the functions use it (`STATE_TABLE`, `REMINDER_HOURS`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateStore {
    pub table: String,
    /// The table's Region: the one in its ARN, else the function's.
    pub region: Region,
    /// A correction recorded this long ago whose invocation did not announce it is taken over
    /// by another invocation: longer than one invocation may run (template.yaml's `Timeout`).
    pub lease: std::time::Duration,
    /// An unchanged finding is announced again after this long; `None`: never.
    pub reminder: Option<std::time::Duration>,
}

/// How long a pending correction belongs to the invocation that recorded it.
pub const PENDING_LEASE: std::time::Duration = std::time::Duration::from_secs(150);
/// An unchanged finding's reminder cadence unless `REMINDER_HOURS` says otherwise: weekly.
pub const DEFAULT_REMINDER_HOURS: u64 = 168;

impl StateStore {
    fn read(r: &mut Env, function_region: &Region, mode: Mode) -> Option<StateStore> {
        let Some(raw) = r.optional("STATE_TABLE") else {
            if mode == Mode::Enforce {
                r.problem("STATE_TABLE is not set: MODE=enforce writes to keys, and each correction is recorded in this DynamoDB table before it is made, so its announcement survives a failed publish or a crash (template.yaml creates the table; scripts/demo.sh creates one on the emulator)".to_string());
            }
            return None;
        };
        let (table, region) = match Arn::parse(&raw) {
            Ok(arn) if arn.service() == "dynamodb" => {
                let name = arn.resource().strip_prefix("table/").unwrap_or_default();
                match Region::parse(arn.region()) {
                    Ok(region) if !name.is_empty() && !name.contains('/') => {
                        (name.to_string(), region)
                    }
                    _ => {
                        r.problem(format!(
                            "STATE_TABLE is not a DynamoDB table ARN: {}",
                            crate::base::text::quoted(&raw, 120)
                        ));
                        return None;
                    }
                }
            }
            _ if is_table_name(&raw) => (raw, function_region.clone()),
            _ => {
                r.problem(format!(
                    "STATE_TABLE must be a DynamoDB table name (3-255 of A-Z a-z 0-9 _ - .) or table ARN, got {}",
                    crate::base::text::quoted(&raw, 120)
                ));
                return None;
            }
        };
        let hours = r.number("REMINDER_HOURS", DEFAULT_REMINDER_HOURS, 0..=8760);
        Some(StateStore {
            table,
            region,
            lease: PENDING_LEASE,
            reminder: (hours > 0).then(|| std::time::Duration::from_secs(hours * 3600)),
        })
    }
}

fn is_table_name(name: &str) -> bool {
    (3..=255).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// A function's configuration: the settings every function shares, and its own, read from
/// the environment once with every problem in one error.
pub trait FunctionConfig: Sized {
    /// Reads every variable, collecting problems in `env` rather than stopping at the first.
    fn read(env: &mut Env<'_>) -> Self;

    /// Problems only the whole configuration shows (run when every variable read cleanly).
    fn problems(&self) -> Vec<String> {
        Vec::new()
    }

    fn common(&self) -> &CommonConfig;

    /// Reads the variables through `lookup` (tests pass a map).
    fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        load(lookup, Self::read, Self::problems)
    }

    fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(&|name| std::env::var(name).ok())
    }
}

pub const DEFAULT_MANAGED_TAG: &str = "guardrails:managed=true";
const DEFAULT_SWEEP_CONCURRENCY: usize = 8;

/// Reads variables through `lookup`, collecting problems instead of stopping at the first.
pub struct Env<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
    problems: Vec<String>,
}

impl Env<'_> {
    pub fn optional(&self, name: &str) -> Option<String> {
        (self.lookup)(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    pub fn required(&mut self, name: &str, hint: &str) -> String {
        self.optional(name).unwrap_or_else(|| {
            self.problems.push(format!("{name} is not set ({hint})"));
            String::new()
        })
    }

    pub fn list(&self, name: &str) -> Vec<String> {
        self.optional(name)
            .map(|v| {
                v.split([',', '\n'])
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn bool(&mut self, name: &str, default: bool) -> bool {
        match self.optional(name).map(|v| v.to_ascii_lowercase()) {
            None => default,
            Some(v) if v == "true" => true,
            Some(v) if v == "false" => false,
            Some(v) => {
                self.problems
                    .push(format!("{name} must be true or false, got {v:?}"));
                default
            }
        }
    }

    pub fn number<T>(&mut self, name: &str, default: T, range: std::ops::RangeInclusive<T>) -> T
    where
        T: std::str::FromStr + PartialOrd + fmt::Display + Copy,
    {
        let Some(raw) = self.optional(name) else {
            return default;
        };
        match raw.parse::<T>() {
            Ok(v) if range.contains(&v) => v,
            _ => {
                self.problems.push(format!(
                    "{name} must be a whole number from {} to {}, got {raw:?}",
                    range.start(),
                    range.end()
                ));
                default
            }
        }
    }

    pub fn problem(&mut self, problem: String) {
        self.problems.push(problem);
    }

    /// An ARN of `service`, required.
    /// A required Region code.
    pub fn region(&mut self, name: &str, hint: &str) -> Region {
        let raw = self.required(name, hint);
        match Region::parse(&raw) {
            Ok(region) => region,
            Err(problem) => {
                if !raw.is_empty() {
                    self.problems.push(format!("{name}: {problem}"));
                }
                Region::unset()
            }
        }
    }

    /// A comma-separated list of Region codes; each bad entry is a problem.
    pub fn regions(&mut self, name: &str) -> Vec<Region> {
        let mut regions = Vec::new();
        for entry in self.list(name) {
            match Region::parse(&entry) {
                Ok(region) => regions.push(region),
                Err(problem) => self.problems.push(format!("{name} entry {problem}")),
            }
        }
        regions
    }

    pub fn arn(&mut self, name: &str, service: &str, hint: &str) -> Arn {
        let raw = self.required(name, hint);
        match Arn::parse(&raw) {
            Ok(arn) if arn.service() == service => arn,
            _ => {
                if !raw.is_empty() {
                    self.problems.push(format!(
                        "{name} is not an {} ARN: {}",
                        service.to_ascii_uppercase(),
                        crate::base::text::quoted(&raw, 120)
                    ));
                }
                Arn::parse("arn:aws:invalid:::unset").unwrap_or_else(|_| unreachable!())
            }
        }
    }
}

/// Reads a whole configuration with `read`, then runs `check` on it when every variable was
/// valid; every problem from both comes back in one error.
pub fn load<T>(
    lookup: &dyn Fn(&str) -> Option<String>,
    read: impl FnOnce(&mut Env) -> T,
    check: impl FnOnce(&T) -> Vec<String>,
) -> Result<T, ConfigError> {
    let mut env = Env {
        lookup,
        problems: Vec::new(),
    };
    let config = read(&mut env);
    if env.problems.is_empty() {
        env.problems.extend(check(&config));
    }
    if env.problems.is_empty() {
        Ok(config)
    } else {
        Err(ConfigError {
            problems: env.problems,
        })
    }
}

pub fn is_arn_of(s: &str, service: &str) -> bool {
    let parts: Vec<&str> = s.splitn(6, ':').collect();
    parts.len() == 6
        && parts[0] == "arn"
        && !parts[1].is_empty()
        && parts[2] == service
        && !parts[5].is_empty()
}

impl CommonConfig {
    pub fn from_env() -> Result<CommonConfig, ConfigError> {
        load(&|name| std::env::var(name).ok(), CommonConfig::read, |_| {
            Vec::new()
        })
    }

    pub fn read(r: &mut Env) -> CommonConfig {
        let mode = match r
            .optional("MODE")
            .map(|v| v.to_ascii_lowercase())
            .as_deref()
        {
            None | Some("report") => Mode::Report,
            Some("enforce") => Mode::Enforce,
            Some(other) => {
                r.problem(format!(
                    "MODE must be enforce or report, got {}",
                    crate::base::text::quoted(other, 40)
                ));
                Mode::Report
            }
        };

        let account_id = r.required(
            "ACCOUNT_ID",
            "the 12-digit id of the account whose keys are guarded",
        );
        if !account_id.is_empty() && !is_account_id(&account_id) {
            r.problem(format!("ACCOUNT_ID must be 12 digits, got {account_id:?}"));
        }
        let region = r.region(
            "AWS_REGION",
            "set by Lambda; set it yourself for local runs",
        );

        let notify_topic_arn = r.arn(
            "NOTIFY_TOPIC_ARN",
            "sns",
            "the SNS topic that receives findings",
        );
        let self_role_arn = r.arn(
            "SELF_ROLE_ARN",
            "iam",
            "the function's own execution role ARN, for loop prevention",
        );

        let managed_keys = r.list("MANAGED_KEYS");
        let managed = if managed_keys.is_empty() {
            let tag = r
                .optional("MANAGED_TAG")
                .unwrap_or_else(|| DEFAULT_MANAGED_TAG.to_string());
            match tag.split_once('=') {
                Some((key, value)) if !key.trim().is_empty() => ManagedSelector::Tag {
                    key: key.trim().to_string(),
                    value: value.trim().to_string(),
                },
                _ => {
                    r.problem(format!("MANAGED_TAG must look like key=value, got {tag:?}"));
                    ManagedSelector::Tag {
                        key: String::new(),
                        value: String::new(),
                    }
                }
            }
        } else {
            for entry in &managed_keys {
                if crate::triggers::events::KeyLocator::parse(entry, &region).is_err() {
                    r.problem(format!(
                        "MANAGED_KEYS entry {} is not a key ARN, key id, alias name or alias ARN",
                        crate::base::text::quoted(entry, 120)
                    ));
                }
            }
            ManagedSelector::Keys(managed_keys)
        };

        let mut sweep_regions = r.regions("SWEEP_REGIONS");
        if sweep_regions.is_empty() && !region.is_empty() {
            sweep_regions.push(region.clone());
        }
        let sweep_concurrency = r.number("SWEEP_CONCURRENCY", DEFAULT_SWEEP_CONCURRENCY, 1..=64);
        let environment = r.optional("ENVIRONMENT");
        let fallback_queue_url = r.optional("FALLBACK_QUEUE_URL");
        if let Some(url) = &fallback_queue_url {
            if !url.starts_with("https://") && !url.starts_with("http://") {
                r.problem(format!(
                    "FALLBACK_QUEUE_URL is not an SQS queue URL: {}",
                    crate::base::text::quoted(url, 120)
                ));
            }
        }

        let state = StateStore::read(r, &region, mode);
        let members = MemberRole::read(r);
        let sweep_accounts = read_sweep_accounts(r, &account_id, members.is_some());
        let fan_out = r.optional("SWEEP_QUEUE_URL").map(|queue_url| {
            if !queue_url.starts_with("https://") && !queue_url.starts_with("http://") {
                r.problem(format!(
                    "SWEEP_QUEUE_URL is not an SQS queue URL: {}",
                    crate::base::text::quoted(&queue_url, 120)
                ));
            }
            if state.is_none() {
                r.problem("SWEEP_QUEUE_URL needs STATE_TABLE: a fanned-out sweep keeps its progress there, to send one summary when its last part is done".to_string());
            }
            let max_receives = r.number("SWEEP_MAX_RECEIVES", DEFAULT_SWEEP_MAX_RECEIVES, 1..=1000);
            FanOut {
                queue_url,
                max_receives,
            }
        });
        let rates = crate::base::pace::Rates {
            quota_share_percent: r.number(
                "KMS_QUOTA_SHARE",
                crate::base::pace::DEFAULT_QUOTA_SHARE_PERCENT,
                1..=100,
            ),
        };

        CommonConfig {
            mode,
            account_id,
            region,
            managed,
            notify_topic_arn,
            self_role_arn,
            sweep_regions,
            sweep_concurrency,
            environment,
            fallback_queue_url,
            state,
            members,
            sweep_accounts,
            fan_out,
            rates,
        }
    }
}

/// `SWEEP_ACCOUNTS`: this account first, then the others listed, each once. Another account
/// is reachable only through its member role.
fn read_sweep_accounts(r: &mut Env<'_>, home: &str, members: bool) -> Vec<String> {
    let mut accounts = vec![home.to_string()];
    let mut others = Vec::new();
    for entry in r.list("SWEEP_ACCOUNTS") {
        if !crate::base::arn::is_account_id(&entry) {
            r.problem(format!(
                "SWEEP_ACCOUNTS entry {} is not a 12-digit account id",
                crate::base::text::quoted(&entry, 40)
            ));
        } else if !accounts.contains(&entry) {
            if entry != home {
                others.push(entry.clone());
            }
            accounts.push(entry);
        }
    }
    if !others.is_empty() && !members {
        r.problem(format!(
            "SWEEP_ACCOUNTS names other accounts ({}) but MEMBER_ROLE_NAME is not set: the hub reaches another account's keys only through its member role (spoke.yaml)",
            others.join(", ")
        ));
    }
    accounts
}

/// The desired key policy, shared by every function that reads it (policy-drift restores it,
/// root-access-revoker reads the same root-access setting): the Terraform-style parts, or a
/// complete document.
pub fn read_baseline(r: &mut Env<'_>) -> BaselineSource {
    let parts = BaselineParts {
        root_access: r.bool("ROOT_ACCESS", true),
        admin_role_arns: r.list("KMS_ADMIN_ROLE_ARNS"),
        key_user_arns: r.list("KEY_USER_ARNS"),
        service_principals: r.list("SERVICE_PRINCIPALS"),
        additional_principals: r.list("ADDITIONAL_PRINCIPALS"),
    };
    for (name, values) in [
        ("KMS_ADMIN_ROLE_ARNS", &parts.admin_role_arns),
        ("KEY_USER_ARNS", &parts.key_user_arns),
    ] {
        for bad in values.iter().filter(|v| !is_arn_of(v, "iam")) {
            r.problems.push(format!(
                "{name} entry {} is not an IAM ARN",
                crate::base::text::quoted(bad, 120)
            ));
        }
    }
    for bad in parts
        .additional_principals
        .iter()
        .filter(|v| !is_arn_of(v, "iam") && !is_account_id(v))
    {
        r.problems.push(format!(
            "ADDITIONAL_PRINCIPALS entry {} is not an IAM ARN or account id",
            crate::base::text::quoted(bad, 120)
        ));
    }
    for bad in parts
        .service_principals
        .iter()
        .filter(|v| !v.ends_with(".amazonaws.com"))
    {
        r.problems.push(format!(
            "SERVICE_PRINCIPALS entry {} is not a service principal such as s3.amazonaws.com",
            crate::base::text::quoted(bad, 120)
        ));
    }

    match r.optional("BASELINE_POLICY") {
        None => BaselineSource::Parts(parts),
        Some(document) => {
            let set: Vec<&str> = [
                ("KMS_ADMIN_ROLE_ARNS", !parts.admin_role_arns.is_empty()),
                ("KEY_USER_ARNS", !parts.key_user_arns.is_empty()),
                ("SERVICE_PRINCIPALS", !parts.service_principals.is_empty()),
                (
                    "ADDITIONAL_PRINCIPALS",
                    !parts.additional_principals.is_empty(),
                ),
                ("ROOT_ACCESS", r.optional("ROOT_ACCESS").is_some()),
            ]
            .into_iter()
            .filter_map(|(name, present)| present.then_some(name))
            .collect();
            if !set.is_empty() {
                r.problems.push(format!(
                    "BASELINE_POLICY is a complete policy, so {} must not be set as well",
                    set.join(", ")
                ));
            }
            BaselineSource::Document(document)
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::collections::HashMap;

    pub(crate) fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        let mut map: HashMap<String, String> = [
            ("ACCOUNT_ID", "111122223333"),
            ("AWS_REGION", "eu-west-1"),
            (
                "NOTIFY_TOPIC_ARN",
                "arn:aws:sns:eu-west-1:111122223333:kms-guardrails",
            ),
            (
                "SELF_ROLE_ARN",
                "arn:aws:iam::111122223333:role/policy-drift",
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (k, v) in pairs {
            map.insert(k.to_string(), v.to_string());
        }
        map
    }

    fn load_common(pairs: &[(&str, &str)]) -> Result<CommonConfig, ConfigError> {
        let map = env(pairs);
        load(&|k| map.get(k).cloned(), CommonConfig::read, |_| Vec::new())
    }

    #[test]
    fn minimal_configuration_has_safe_defaults() {
        let c = load_common(&[]).unwrap();
        assert_eq!(c.mode, Mode::Report);
        assert_eq!(
            c.managed,
            ManagedSelector::Tag {
                key: "guardrails:managed".into(),
                value: "true".into()
            }
        );
        assert_eq!(c.sweep_regions, vec!["eu-west-1"]);
        assert_eq!(c.self_role_arn.iam_role_name(), Some("policy-drift"));
        assert_eq!(c.fallback_queue_url, None);
    }

    #[test]
    fn every_bad_variable_is_named_in_one_error() {
        let map: HashMap<String, String> = [
            ("MODE", "fix-it"),
            ("ACCOUNT_ID", "12345"),
            ("SWEEP_CONCURRENCY", "0"),
            ("MANAGED_TAG", "novalue"),
            ("SWEEP_REGIONS", "eu-west-1,Mars"),
            ("FALLBACK_QUEUE_URL", "my-queue"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let err = load(&|k| map.get(k).cloned(), CommonConfig::read, |_| Vec::new()).unwrap_err();
        let text = err.to_string();
        for name in [
            "MODE",
            "ACCOUNT_ID must be 12 digits",
            "AWS_REGION is not set",
            "NOTIFY_TOPIC_ARN is not set",
            "SELF_ROLE_ARN is not set",
            "SWEEP_CONCURRENCY",
            "MANAGED_TAG",
            "SWEEP_REGIONS entry \"Mars\"",
            "FALLBACK_QUEUE_URL",
        ] {
            assert!(text.contains(name), "{name} missing from: {text}");
        }
        assert_eq!(err.problems.len(), 9, "{text}");
    }

    #[test]
    fn arns_of_the_wrong_service_are_refused() {
        let err = load_common(&[
            ("NOTIFY_TOPIC_ARN", "arn:aws:sqs:eu-west-1:111122223333:q"),
            ("SELF_ROLE_ARN", "policy-drift"),
        ])
        .unwrap_err();
        assert_eq!(err.problems.len(), 2, "{err}");
        assert!(
            err.problems[0].starts_with("NOTIFY_TOPIC_ARN is not an SNS ARN"),
            "{err}"
        );
        assert!(
            err.problems[1].starts_with("SELF_ROLE_ARN is not an IAM ARN"),
            "{err}"
        );
    }

    #[test]
    fn explicit_key_list_is_validated() {
        let c = load_common(&[("MANAGED_KEYS", "alias/app-data, arn:aws:kms:us-east-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab")]).unwrap();
        assert!(matches!(c.managed, ManagedSelector::Keys(ref k) if k.len() == 2));
        let err = load_common(&[("MANAGED_KEYS", "my-key")]).unwrap_err();
        assert!(
            err.to_string().contains("MANAGED_KEYS entry \"my-key\""),
            "{err}"
        );
    }

    #[test]
    fn a_check_runs_only_on_a_configuration_whose_variables_are_valid() {
        let map = env(&[("MODE", "bad")]);
        let err = load(&|k| map.get(k).cloned(), CommonConfig::read, |_| {
            vec!["checked".to_string()]
        })
        .unwrap_err();
        assert_eq!(err.problems.len(), 1, "{err}");
        let map = env(&[]);
        let err = load(&|k| map.get(k).cloned(), CommonConfig::read, |_| {
            vec!["checked".to_string()]
        })
        .unwrap_err();
        assert_eq!(err.problems, vec!["checked"]);
    }
}
