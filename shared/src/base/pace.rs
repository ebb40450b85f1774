//! Request pacing per (account, Region): KMS quotas are per account and Region and separate
//! per operation, and the guardrail shares them with everything else in the account. A sweep
//! starts keys at most `keys_per_second`, and corrections are written at most
//! `writes_per_second`, so a large sweep never throttles the account's own workloads.
//! <https://docs.aws.amazon.com/kms/latest/developerguide/requests-per-second.html>

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

/// The lowest write quota the functions call (EnableKey and CancelKeyDeletion, 5 per second);
/// PutKeyPolicy allows 15.
pub const LOWEST_WRITE_QUOTA: u32 = 5;
/// Corrections per second unless `WRITES_PER_SECOND` says otherwise: below the lowest write
/// quota, leaving room for the account's own deployments.
pub const DEFAULT_WRITES_PER_SECOND: u32 = 3;
/// Keys a sweep starts per second unless `SWEEP_KEYS_PER_SECOND` says otherwise. A swept key
/// costs one DescribeKey (quota 2,000/s), one GetKeyPolicy (1,000/s), one
/// GetKeyRotationStatus (1,000/s) and, in per-key mode, one ListGrants (100/s): 50 keys a
/// second keeps ListGrants at half its quota.
pub const DEFAULT_KEYS_PER_SECOND: u32 = 50;

/// What is paced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Paced {
    /// A swept key's reads.
    KeyAudit,
    /// A correction's writes.
    Correction,
}

/// The rates, per account and Region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rates {
    pub keys_per_second: u32,
    pub writes_per_second: u32,
}

impl Default for Rates {
    fn default() -> Rates {
        Rates {
            keys_per_second: DEFAULT_KEYS_PER_SECOND,
            writes_per_second: DEFAULT_WRITES_PER_SECOND,
        }
    }
}

impl Rates {
    fn per_second(&self, paced: Paced) -> u32 {
        match paced {
            Paced::KeyAudit => self.keys_per_second,
            Paced::Correction => self.writes_per_second,
        }
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
    pub fn per_second(rate: u32) -> Pacer {
        Pacer {
            interval: Duration::from_secs(1) / rate.max(1),
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

    #[tokio::test(start_paused = true)]
    async fn corrections_in_one_account_and_region_are_spaced_by_the_rate() {
        let paces = Paces::new(Rates {
            keys_per_second: 50,
            writes_per_second: 4,
        });
        let start = Instant::now();
        for _ in 0..9 {
            paces.wait("111122223333", "eu-west-1", Paced::Correction).await;
        }
        // The first goes at once, the other eight a quarter second apart.
        assert_eq!(start.elapsed(), Duration::from_millis(2000));
    }

    #[tokio::test(start_paused = true)]
    async fn accounts_regions_and_kinds_have_separate_schedules() {
        let paces = Paces::new(Rates {
            keys_per_second: 10,
            writes_per_second: 1,
        });
        let start = Instant::now();
        paces.wait("111122223333", "eu-west-1", Paced::Correction).await;
        paces.wait("444455556666", "eu-west-1", Paced::Correction).await;
        paces.wait("111122223333", "us-east-1", Paced::Correction).await;
        paces.wait("111122223333", "eu-west-1", Paced::KeyAudit).await;
        assert_eq!(start.elapsed(), Duration::ZERO);
        paces.wait("111122223333", "eu-west-1", Paced::Correction).await;
        assert_eq!(start.elapsed(), Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_callers_share_one_schedule() {
        let paces = Arc::new(Paces::new(Rates {
            keys_per_second: 20,
            writes_per_second: 1,
        }));
        let start = Instant::now();
        let waits = (0..21).map(|_| {
            let paces = paces.clone();
            async move { paces.wait("111122223333", "eu-west-1", Paced::KeyAudit).await }
        });
        futures::future::join_all(waits).await;
        assert_eq!(start.elapsed(), Duration::from_secs(1));
    }
}
