//! Kill points: where a test stops an invocation as a crash or a timeout would, to prove that
//! what was written is still announced. Without the `test-support` feature (every deployed
//! binary) a kill point does nothing.

/// A place in a key's handling where the process may die.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KillPoint {
    /// The correction is recorded in the state table; nothing is written yet.
    BeforeWrite,
    /// The key was written; its message is not yet published.
    AfterWrite,
}

/// Passes, unless a test armed `point` for `key_arn`: then it signals the test and never
/// returns, so the test drops the invocation there, as if the process had died.
pub async fn kill_point(point: KillPoint, key_arn: &str) {
    #[cfg(feature = "test-support")]
    if let Some(reached) = armed::take(point, key_arn) {
        reached.notify_one();
        std::future::pending::<()>().await;
    }
    let _ = (point, key_arn);
}

#[cfg(feature = "test-support")]
pub use armed::arm;

#[cfg(feature = "test-support")]
mod armed {
    use std::sync::{Arc, Mutex};

    use tokio::sync::Notify;

    use crate::pipeline::faults::KillPoint;

    type Armed = Vec<(KillPoint, String, Arc<Notify>)>;

    static ARMED: Mutex<Armed> = Mutex::new(Vec::new());

    fn armed() -> std::sync::MutexGuard<'static, Armed> {
        ARMED.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Arms `point` for the next invocation that reaches it for `key_arn` (once). The returned
    /// signal fires when it is reached: the test then drops that invocation's future.
    pub fn arm(point: KillPoint, key_arn: &str) -> Arc<Notify> {
        let reached = Arc::new(Notify::new());
        armed().push((point, key_arn.to_string(), reached.clone()));
        reached
    }

    pub(super) fn take(point: KillPoint, key_arn: &str) -> Option<Arc<Notify>> {
        let mut armed = armed();
        let index = armed
            .iter()
            .position(|(p, k, _)| *p == point && k == key_arn)?;
        Some(armed.remove(index).2)
    }
}
