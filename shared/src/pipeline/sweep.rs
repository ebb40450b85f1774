//! The sweep runner, generic over a function's per-key audit: finds managed keys with the
//! fewest calls AWS offers, streams them through a bounded number of concurrent audits,
//! isolates each Region, and stops starting keys before the invocation deadline.

use std::collections::HashSet;
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::stream::{self, Stream, StreamExt};

use crate::aws::kms;
use crate::aws::tagging;
use crate::aws::AwsClients;
use crate::base::error::{Disposition, GuardrailError};
use crate::base::pace::Paced;
use crate::base::region::Region;
use crate::config::{CommonConfig, ManagedSelector};
use crate::notify::outcome::{
    FindingKind, KeyFailure, KeyOutcome, RegionReport, Status, SweepReport, UnresolvedEntry,
};
use crate::pipeline::audit::RegionAliases;
use crate::pipeline::managed::Management;
use crate::pipeline::resolve::{classify, Resolution};
use crate::triggers::events::KeyLocator;

/// Time kept free before the deadline: a started key's reads, writes and message fit in it.
pub const DEADLINE_MARGIN: Duration = Duration::from_secs(10);
/// Listing goes on past the margin, to count the keys left, until this close to the deadline.
pub const LISTING_MARGIN: Duration = Duration::from_secs(3);

/// When the sweep must stop starting keys, from the Lambda `Context` deadline (milliseconds
/// since the epoch; 0 when unknown, as in tests and local runs).
#[derive(Debug, Clone, Copy)]
pub struct Deadline(Option<SystemTime>);

impl Deadline {
    pub fn from_context_millis(deadline_ms: u64) -> Deadline {
        Deadline((deadline_ms > 0).then(|| UNIX_EPOCH + Duration::from_millis(deadline_ms)))
    }

    pub fn none() -> Deadline {
        Deadline(None)
    }

    fn within(&self, margin: Duration) -> bool {
        self.0.is_some_and(|d| SystemTime::now() + margin >= d)
    }

    /// Whether nothing new should start: less than [`DEADLINE_MARGIN`] is left.
    pub fn too_close(&self) -> bool {
        self.within(DEADLINE_MARGIN)
    }
}

/// One account and Region of a sweep: a fanned-out sweep's work item, or one step of a sweep
/// run in place.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Scope {
    pub account: String,
    pub region: Region,
}

/// Every (account, Region) a sweep covers: `SWEEP_ACCOUNTS` x `SWEEP_REGIONS`, account by
/// account.
pub fn scopes(common: &CommonConfig) -> Vec<Scope> {
    common
        .sweep_accounts
        .iter()
        .flat_map(|account| {
            common.sweep_regions.iter().map(|region| Scope {
                account: account.clone(),
                region: region.clone(),
            })
        })
        .collect()
}

/// A managed key handed to the function's audit, with its Region's alias listing.
pub struct SweptKey {
    pub key: kms::KeyInfo,
    pub aliases: Arc<RegionAliases>,
}

/// What the sweep hands the function for each managed key it found.
pub enum Swept {
    Key(SweptKey),
    /// A managed key the function may not describe: the guardrail was shut out of it.
    ShutOut {
        key: kms::KeyInfo,
        error: GuardrailError,
    },
}

/// One key found by the listing, with what the listing already proved.
struct Candidate {
    identifier: String,
    managed: Management,
}

enum Run {
    NotStarted,
    NotOurs,
    /// A `MANAGED_KEYS` entry KMS says does not exist.
    Unresolved(String),
    Done(String, Box<Result<KeyOutcome, GuardrailError>>),
}

/// Runs `audit` on every managed key of every scope (account and Region). `audit` turns failures only a
/// person can fix into `Failed` outcomes (announced once); its `Err` is a transient failure,
/// counted as `retry_later`: the next sweep audits the key again. A sweep never fails as a
/// whole for one key or one Region.
///
/// `seed` (the sweep event's id) decides which half of the keys goes first, so keys a
/// deadline left out of one sweep are among the first of a later one.
pub async fn run<F, Fut>(
    clients: &AwsClients,
    common: &CommonConfig,
    deadline: Deadline,
    seed: &str,
    scopes: &[Scope],
    audit: F,
) -> SweepReport
where
    F: Fn(Swept) -> Fut + Copy,
    Fut: Future<Output = Result<KeyOutcome, GuardrailError>>,
{
    let mut report = SweepReport::default();
    let first_half = half_of(seed);
    for scope in scopes {
        let region_report = sweep_region(
            clients,
            common,
            deadline,
            first_half,
            scope,
            audit,
            &mut report,
        )
        .await;
        report.keys_listed += region_report.keys_listed;
        report.regions.push(region_report);
    }
    tracing::info!(
        keys_listed = report.keys_listed,
        managed = report.managed,
        compliant = report.compliant,
        corrected = report.corrected,
        reported = report.reported,
        blocked = report.blocked,
        failed = report.failed,
        retry_later = report.retry_later,
        not_started = report.not_started,
        listing_cut_short = report.listing_cut_short,
        "sweep finished"
    );
    report
}

fn stable_hash(text: &str) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut hasher);
    hasher.finish()
}

fn half_of(text: &str) -> bool {
    stable_hash(text) & 1 == 1
}

/// The keys of one account and Region the selector names, page by page. A `MANAGED_KEYS`
/// entry without an account (an alias, a key id) names a key of this account.
fn candidates<'a>(
    common: &'a CommonConfig,
    account: &'a str,
    region: &'a str,
    tagging_client: &'a aws_sdk_resourcegroupstagging::Client,
    keep_listing: impl Fn() -> bool + 'a,
) -> impl Stream<Item = Result<Vec<Candidate>, GuardrailError>> + 'a {
    match &common.managed {
        ManagedSelector::Tag { key, value } => {
            tagging::tagged_key_pages(tagging_client, region, key, value, keep_listing)
                .map(|page| {
                    page.map(|arns| {
                        arns.into_iter()
                            .map(|arn| Candidate {
                                identifier: arn.to_string(),
                                managed: Management::Managed,
                            })
                            .collect()
                    })
                })
                .left_stream()
        }
        ManagedSelector::Keys(entries) => {
            // DescribeKey accepts alias names and ARNs, so a listed alias costs no extra call.
            let listed: Vec<Candidate> = entries
                .iter()
                .filter_map(|e| KeyLocator::parse(e, &common.region).ok())
                .filter(|l| l.region == region)
                .filter(|l| l.account().unwrap_or(&common.account_id) == account)
                .map(|l| Candidate {
                    identifier: l.identifier,
                    managed: Management::Managed,
                })
                .collect();
            stream::iter((!listed.is_empty()).then_some(Ok(listed))).right_stream()
        }
    }
}

async fn sweep_region<F, Fut>(
    clients: &AwsClients,
    common: &CommonConfig,
    deadline: Deadline,
    first_half: bool,
    scope: &Scope,
    audit: F,
    report: &mut SweepReport,
) -> RegionReport
where
    F: Fn(Swept) -> Fut + Copy,
    Fut: Future<Output = Result<KeyOutcome, GuardrailError>>,
{
    let (account, region) = (scope.account.as_str(), &scope.region);
    let mut region_report = RegionReport {
        account: account.to_string(),
        region: region.clone(),
        keys_listed: 0,
        error: None,
    };
    // A member account whose role is missing or denied is reported once, as a part not swept;
    // the other accounts are still swept.
    if let Err(e) = clients.reach(account).await {
        tracing::error!(account = %account, region = %region, error_type = e.error_type(), error = %e, "account not swept");
        region_report.error = Some(KeyFailure {
            key: format!("keys of account {account} in {region}"),
            error_type: e.error_type().to_string(),
            error: e.to_string(),
        });
        return region_report;
    }
    let aliases = Arc::new(RegionAliases::new(region));
    let tagging_client = clients.tagging_in(account, region);
    let kms_client = clients.kms_in(account, region);
    let seen = Mutex::new(HashSet::new());
    let deferred = Mutex::new(Vec::new());
    let listing_error = Mutex::new(None);
    let listed = Mutex::new(0usize);
    let listing_cut_short = Mutex::new(false);

    let start = |candidate: Candidate| {
        let aliases = aliases.clone();
        let kms_client = &kms_client;
        let seen = &seen;
        async move {
            if deadline.too_close() {
                tracing::warn!(key = %candidate.identifier, "not audited: the invocation deadline is near; the next sweep covers it");
                return Run::NotStarted;
            }
            clients.pace(account, region, Paced::KeyAudit).await;
            let key = match kms::describe_key(kms_client, &candidate.identifier).await {
                Ok(key) => key,
                // A listed entry that names nothing is news; a tagged key deleted between the
                // listing and now leaves nothing to guard.
                Err(e) if e.is_not_found() => {
                    return match common.managed {
                        ManagedSelector::Keys(_) => Run::Unresolved(candidate.identifier),
                        ManagedSelector::Tag { .. } => Run::NotOurs,
                    };
                }
                // The listing proved the key managed; the key policy now shuts us out.
                Err(error) if error.is_access_denied() => {
                    let key = kms::KeyInfo::unreadable(&candidate.identifier, region, account);
                    let result = audit(Swept::ShutOut { key, error }).await;
                    return Run::Done(candidate.identifier, Box::new(result));
                }
                Err(e) => return Run::Done(candidate.identifier, Box::new(Err(e))),
            };
            if !seen
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(key.arn.to_string())
            {
                return Run::NotOurs;
            }
            match classify(clients, common, key, Some(candidate.managed)).await {
                Ok(Resolution::Managed(key)) => {
                    let arn = key.arn.to_string();
                    let result = audit(Swept::Key(SweptKey { key, aliases })).await;
                    Run::Done(arn, Box::new(result))
                }
                Ok(Resolution::ShutOut { key, error }) => {
                    let key = kms::KeyInfo::unreadable(&key, region, account);
                    let result = audit(Swept::ShutOut { key, error }).await;
                    Run::Done(candidate.identifier, Box::new(result))
                }
                Ok(Resolution::NotOurs(reason) | Resolution::Unmanaged { reason, .. }) => {
                    tracing::info!(key = %candidate.identifier, reason = %reason, "not audited");
                    Run::NotOurs
                }
                Err(e) => Run::Done(candidate.identifier, Box::new(Err(e))),
            }
        }
    };

    // Half the keys go as they are listed; the other half wait for the end of the listing.
    let keep_listing = || {
        let stop = deadline.within(LISTING_MARGIN);
        if stop {
            *listing_cut_short.lock().unwrap_or_else(|p| p.into_inner()) = true;
        }
        !stop
    };
    let now = candidates(common, account, region, &tagging_client, keep_listing)
        .take_while(|page| {
            let ok = page.is_ok();
            if let Err(e) = page {
                *listing_error.lock().unwrap_or_else(|p| p.into_inner()) =
                    Some((e.error_type().to_string(), e.to_string()));
            }
            std::future::ready(ok)
        })
        .flat_map(|page| {
            let page = page.unwrap_or_default();
            *listed.lock().unwrap_or_else(|p| p.into_inner()) += page.len();
            stream::iter(page)
        })
        .filter(|c| {
            let go_now = half_of(&c.identifier) == first_half;
            if !go_now {
                // Only the identifier is kept, so memory stays small for thousands of keys.
                deferred
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(Candidate {
                        identifier: c.identifier.clone(),
                        managed: c.managed.clone(),
                    });
            }
            std::future::ready(go_now)
        });
    collect_runs(now.map(start), common.sweep_concurrency, region, report).await;
    let later = std::mem::take(&mut *deferred.lock().unwrap_or_else(|p| p.into_inner()));
    collect_runs(
        stream::iter(later).map(start),
        common.sweep_concurrency,
        region,
        report,
    )
    .await;

    region_report.keys_listed = *listed.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((error_type, error)) = listing_error
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take()
    {
        tracing::error!(account = %account, region = %region, error_type = %error_type, error = %error, "Region not fully swept");
        region_report.error = Some(KeyFailure {
            key: format!("keys of account {account} in {region}"),
            error_type,
            error,
        });
    }
    if *listing_cut_short.lock().unwrap_or_else(|p| p.into_inner()) {
        tracing::warn!(
            region = %region,
            "the deadline stopped the listing: keys not listed are not counted"
        );
        report.listing_cut_short = true;
    }
    region_report
}

async fn collect_runs<S, Fut>(
    runs: S,
    concurrency: usize,
    region: &Region,
    report: &mut SweepReport,
) where
    S: Stream<Item = Fut>,
    Fut: Future<Output = Run>,
{
    let mut runs = std::pin::pin!(runs.buffer_unordered(concurrency));
    while let Some(run) = runs.next().await {
        let (key, result) = match run {
            Run::NotStarted => {
                report.not_started += 1;
                continue;
            }
            Run::NotOurs => continue,
            Run::Unresolved(entry) => {
                tracing::error!(entry = %entry, region = %region, "MANAGED_KEYS entry names no key");
                report.unresolved_entries.push(UnresolvedEntry {
                    entry,
                    region: region.clone(),
                });
                continue;
            }
            Run::Done(key, result) => (key, *result),
        };
        match result {
            Ok(outcome) => {
                report.managed += 1;
                match outcome.status {
                    Status::Compliant | Status::Skipped => report.compliant += 1,
                    Status::Corrected => report.corrected += 1,
                    Status::Reported => report.reported += 1,
                    Status::Blocked => report.blocked += 1,
                    Status::Failed => {
                        report.failed += 1;
                        if outcome
                            .findings
                            .iter()
                            .any(|f| f.kind == FindingKind::ShutOut)
                        {
                            report.shut_out += 1;
                        }
                        report.add_failure(KeyFailure {
                            key,
                            error_type: "Failed".into(),
                            error: outcome.reason.clone().unwrap_or_default(),
                        });
                    }
                }
                if !outcome.findings.is_empty() {
                    report.add_finding(outcome);
                }
            }
            Err(e) => {
                report.managed += 1;
                if e.disposition() == Disposition::Retry {
                    report.retry_later += 1;
                    tracing::error!(key = %key, error_type = e.error_type(), error = %e, "key not audited; the next sweep retries it");
                } else {
                    report.failed += 1;
                    if e.is_access_denied() {
                        report.shut_out += 1;
                    }
                    tracing::error!(key = %key, error_type = e.error_type(), error = %e, "key not audited");
                }
                report.add_failure(KeyFailure {
                    key,
                    error_type: e.error_type().to_string(),
                    error: e.to_string(),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_context_without_a_deadline_never_stops_the_sweep() {
        assert!(!Deadline::from_context_millis(0).too_close());
        assert!(!Deadline::none().too_close());
        let past = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        assert!(Deadline::from_context_millis(past).too_close());
        assert!(!Deadline::from_context_millis(past + 60_000).too_close());
    }

    #[test]
    fn seeds_split_keys_into_halves_that_change_between_sweeps() {
        let keys: Vec<String> = (0..200)
            .map(|i| format!("arn:aws:kms:eu-west-1:111122223333:key/{i}"))
            .collect();
        let first = keys.iter().filter(|k| half_of(k)).count();
        assert!((60..140).contains(&first), "{first} of 200 in one half");
        // Two different sweep ids choose different halves about half the time.
        let flips = (0..64).filter(|i| half_of(&format!("sweep-{i}"))).count();
        assert!((16..48).contains(&flips), "{flips}");
    }
}
