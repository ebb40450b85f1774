//! Messages kept instead of sent: the command-line audit shows what the functions would
//! announce, and publishes nothing.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// One message as it would have been published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kept {
    pub subject: String,
    pub body: String,
    pub attributes: BTreeMap<String, String>,
}

/// Shared by every clone: the clients hand it to delivery, the caller reads it afterwards.
#[derive(Debug, Clone, Default)]
pub struct Outbox(Arc<Mutex<Vec<Kept>>>);

impl Outbox {
    /// Keeps `message` and returns its place (0 for the first).
    pub fn keep(&self, message: Kept) -> usize {
        let mut kept = self.lock();
        kept.push(message);
        kept.len() - 1
    }

    /// Everything kept so far, emptying the outbox.
    pub fn take(&self) -> Vec<Kept> {
        std::mem::take(&mut *self.lock())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Kept>> {
        // A poisoned lock only means another thread panicked mid-push; the list is usable.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}
