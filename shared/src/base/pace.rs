//! Request pacing per (account, Region): KMS quotas are per account and Region and separate
//! per operation, and the guardrail shares them with everything else in the account. A sweep
//! starts keys, and corrections make each write call, at a share of the quota of the call
//! (`KMS_QUOTA_SHARE`), so even a sweep correcting every key never throttles the account's
//! own workloads.
//! <https://docs.aws.amazon.com/kms/latest/developerguide/requests-per-second.html>

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

/// The share of each KMS quota the guardrail takes unless `KMS_QUOTA_SHARE` says otherwise:
/// two thirds, leaving the rest to the account's own deployments and workloads.
pub const DEFAULT_QUOTA_SHARE_PERCENT: u32 = 66;

/// KMS's default request quota per second, per account and Region, for the calls the
/// functions pace (AWS KMS Developer Guide, "Request quotas"; all adjustable, so a raised
/// quota is simply not used in full). A write not listed gets the lowest write quota.
pub fn kms_quota(operation: &str) -> u32 {
    match operation {
        "DescribeKey" => 2_000,
        "GetKeyPolicy" | "GetKeyRotationStatus" => 1_000,
        "ListGrants" | "ListAliases" | "ListResourceTags" => 100,
        "CreateGrant" => 50,
        "RevokeGrant" | "RetireGrant" => 30,
        "PutKeyPolicy" => 15,
        // EnableKey, CancelKeyDeletion, EnableKeyRotation, TagResource, UpdateAlias, ...
        _ => 5,
    }
}

/// The tightest read a swept key may make (ListGrants, in per-key mode): it sets how fast a
/// sweep starts keys.
pub const SWEEP_READ_BOUND: &str = "ListGrants";

/// What is paced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Paced {
    /// A swept key's reads (at most one of each per key).
    KeyAudit,
    /// One write call of a correction, by its KMS operation name.
    Write(&'static str),
}

/// The share of each quota taken, per account and Region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rates {
    pub quota_share_percent: u32,
}

impl Default for Rates {
    fn default() -> Rates {
        Rates {
            quota_share_percent: DEFAULT_QUOTA_SHARE_PERCENT,
        }
    }
}

impl Rates {
    /// Calls per second for `paced`: its quota's share, at least one.
    pub fn per_second(&self, paced: Paced) -> f64 {
        let quota = match paced {
            Paced::KeyAudit => kms_quota(SWEEP_READ_BOUND),
            Paced::Write(operation) => kms_quota(operation),
        };
        (f64::from(quota) * f64::from(self.quota_share_percent) / 100.0).max(1.0)
    }
}

/// Evenly spaced slots: each caller takes the next free one and waits for it. A first burst
/// of one is allowed, so a single event's correction never waits.
#[derive(Debug)]
pub struct Pacer {
    interval: Duration,
    next: Mutex<Option<Instant>>,
}

impl Pacer {
    pub fn per_second(rate: f64) -> Pacer {
        Pacer {
            interval: Duration::from_secs_f64(1.0 / rate.max(0.001)),
            next: Mutex::new(None),
        }
    }

    /// Waits for this caller's slot.
    pub async fn wait(&self) {
        let slot = {
            let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            let slot = next.map_or(now, |n| n.max(now));
            *next = Some(slot + self.interval);
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

/// One pacer per (account, Region, what), kept for the life of the process: the next
/// invocation on a warm container continues the same schedule.
#[derive(Debug, Default)]
pub struct Paces {
    rates: Rates,
    pacers: Mutex<HashMap<(String, String, Paced), Arc<Pacer>>>,
}

impl Paces {
    pub fn new(rates: Rates) -> Paces {
        Paces {
            rates,
            pacers: Mutex::default(),
        }
    }

    pub fn rates(&self) -> Rates {
        self.rates
    }

    /// Waits until `paced` may go on in `account` and `region`.
    pub async fn wait(&self, account: &str, region: &str, paced: Paced) {
        let pacer = self
            .pacers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry((account.to_string(), region.to_string(), paced))
            .or_insert_with(|| Arc::new(Pacer::per_second(self.rates.per_second(paced))))
            .clone();
        pacer.wait().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_write_gets_its_share_of_its_own_quota() {
        let rates = Rates::default();
        assert_eq!(rates.per_second(Paced::Write("PutKeyPolicy")), 9.9);
        assert_eq!(rates.per_second(Paced::Write("EnableKey")), 3.3);
        assert_eq!(rates.per_second(Paced::Write("CancelKeyDeletion")), 3.3);
        assert_eq!(rates.per_second(Paced::Write("RevokeGrant")), 19.8);
        assert_eq!(rates.per_second(Paced::KeyAudit), 66.0);
        let all = Rates {
            quota_share_percent: 100,
        };
        assert_eq!(all.per_second(Paced::Write("PutKeyPolicy")), 15.0);
        let tiny = Rates {
            quota_share_percent: 1,
        };
        assert_eq!(tiny.per_second(Paced::Write("EnableKey")), 1.0);
    }

    #[tokio::test(start_paused = true)]
    async fn writes_in_one_account_and_region_are_spaced_by_their_quota() {
        let paces = Paces::new(Rates {
            quota_share_percent: 100,
        });
        let start = Instant::now();
        for _ in 0..11 {
            paces
                .wait("111122223333", "eu-west-1", Paced::Write("EnableKey"))
                .await;
        }
        // The first goes at once, the other ten a fifth of a second apart: 5 per second.
        assert_eq!(start.elapsed(), Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn accounts_regions_and_operations_have_separate_schedules() {
        let paces = Paces::new(Rates {
            quota_share_percent: 20,
        });
        let put = Paced::Write("PutKeyPolicy");
        let start = Instant::now();
        paces.wait("111122223333", "eu-west-1", put).await;
        paces.wait("444455556666", "eu-west-1", put).await;
        paces.wait("111122223333", "us-east-1", put).await;
        paces
            .wait("111122223333", "eu-west-1", Paced::Write("EnableKey"))
            .await;
        paces
            .wait("111122223333", "eu-west-1", Paced::KeyAudit)
            .await;
        assert_eq!(start.elapsed(), Duration::ZERO);
        // PutKeyPolicy at 20% of 15 per second: 3 per second.
        paces.wait("111122223333", "eu-west-1", put).await;
        // (The paused clock's timer has millisecond resolution.)
        let third = Duration::from_millis(333)..=Duration::from_millis(334);
        assert!(third.contains(&start.elapsed()), "{:?}", start.elapsed());
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_callers_share_one_schedule() {
        let paces = Arc::new(Paces::new(Rates {
            quota_share_percent: 20,
        }));
        let start = Instant::now();
        // Sweep keys at 20% of ListGrants' 100 per second: 20 per second.
        let waits = (0..21).map(|_| {
            let paces = paces.clone();
            async move {
                paces
                    .wait("111122223333", "eu-west-1", Paced::KeyAudit)
                    .await
            }
        });
        futures::future::join_all(waits).await;
        assert_eq!(start.elapsed(), Duration::from_secs(1));
    }
}
