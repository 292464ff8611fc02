use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

/// The agent is ready once every component registered here has completed its first cycle.
#[derive(Clone, Default)]
pub struct Readiness {
    pending: Arc<Mutex<BTreeSet<String>>>,
}

impl Readiness {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a component that must report before the agent is ready.
    pub fn expect(&self, component: &str) {
        self.lock().insert(component.to_string());
    }

    pub fn mark_ready(&self, component: &str) {
        self.lock().remove(component);
    }

    /// Components still pending; empty means ready.
    pub fn pending(&self) -> Vec<String> {
        self.lock().iter().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeSet<String>> {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
