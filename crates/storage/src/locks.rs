//! In-process per-key locks (a key is a digest's hex): at most one holder per key at a time.

use std::collections::HashSet;
use std::sync::{Arc, Condvar, Mutex, PoisonError};

/// A set of held keys; [`KeyLocks::lock`] waits until a key is free and takes it.
#[derive(Debug, Default)]
pub(crate) struct KeyLocks {
    held: Mutex<HashSet<String>>,
    freed: Condvar,
}

/// A held key; releases it on drop.
#[derive(Debug)]
pub(crate) struct KeyGuard {
    locks: Arc<KeyLocks>,
    key: String,
}

impl KeyLocks {
    /// Waits until `key` is not held, then holds it until the guard drops.
    pub(crate) fn lock(self: &Arc<Self>, key: &str) -> KeyGuard {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        while held.contains(key) {
            held = self
                .freed
                .wait(held)
                .unwrap_or_else(PoisonError::into_inner);
        }
        held.insert(key.to_string());
        KeyGuard {
            locks: Arc::clone(self),
            key: key.to_string(),
        }
    }
}

impl Drop for KeyGuard {
    fn drop(&mut self) {
        let mut held = self
            .locks
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        held.remove(&self.key);
        drop(held);
        self.locks.freed.notify_all();
    }
}

/// A random name component: 32 hex characters.
pub(crate) fn random_hex() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}
