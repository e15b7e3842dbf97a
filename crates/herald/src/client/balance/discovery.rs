//! Keeping a balancer's endpoint set: starting discovery on first use, diffing its updates
//! into the set, and telling the observer when the endpoints change.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use futures_util::StreamExt;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::client::balance::Shared;
use crate::client::discover::{DiscoveryError, Updates};
use crate::client::endpoint::Endpoint;
use crate::client::observe::EndpointsEvent;

// === impl Shared ===

impl Shared {
    pub(super) fn ensure_started(self: &Arc<Self>) {
        if self.started.load(Ordering::Acquire) {
            return;
        }
        let Ok(mut pending) = self.pending.lock() else {
            return;
        };
        if let Some(discovery) = pending.take() {
            let updates = discovery.into_updates();
            let discovering =
                run_discovery(Arc::downgrade(self), updates, self.changes.0.subscribe());
            // Endpoints' connection tasks are spawned from the discovery task: on its runtime.
            let task = match &self.settings.runtime {
                Some(runtime) => runtime.spawn(discovering),
                None => tokio::spawn(discovering),
            };
            if let Ok(mut slot) = self.task.lock() {
                *slot = Some(task.abort_handle());
            }
            self.started.store(true, Ordering::Release);
        }
    }

    /// Diffs a new set into the current one: endpoints still listed keep their
    /// connections; new ones connect; the others leave the set and drain.
    fn update(&self, addrs: Vec<SocketAddr>) {
        let current = self.endpoints.load();
        let mut seen = HashSet::new();
        let next: Vec<_> = addrs
            .into_iter()
            .filter(|addr| seen.insert(*addr))
            .map(|addr| {
                current
                    .iter()
                    .find(|e| e.addr() == addr)
                    .cloned()
                    .unwrap_or_else(|| {
                        Endpoint::spawn(
                            addr,
                            &self.settings.connector,
                            self.settings.connections,
                            &self.changes,
                        )
                    })
            })
            .collect();
        tracing::debug!(service = %self.authority, endpoints = ?seen, "endpoint set updated");
        self.endpoints.store(Arc::new(next));
        self.discovered.store(true, Ordering::Release);
        if let Ok(mut error) = self.discovery_error.lock() {
            *error = None;
        }
        self.changes.notify();
    }

    fn discovery_failed(&self, error: DiscoveryError) {
        tracing::warn!(service = %self.authority, %error, "discovery failed; keeping the last endpoint set");
        if let Ok(mut last) = self.discovery_error.lock() {
            *last = Some(error);
        }
        self.changes.notify();
    }

    fn counts(&self) -> EndpointsEvent<'_> {
        let now = Instant::now();
        let endpoints = self.endpoints.load();
        EndpointsEvent {
            service: self.authority.as_str(),
            total: endpoints.len(),
            ready: endpoints.iter().filter(|e| e.is_ready()).count(),
            ejected: endpoints
                .iter()
                .filter(|e| e.health().is_ejected(now))
                .count(),
        }
    }
}

/// Applies discovery updates, and tells the observer about endpoint changes, until the
/// balancer is gone.
async fn run_discovery(
    weak: Weak<Shared>,
    mut updates: Updates,
    mut changes: watch::Receiver<u64>,
) {
    let mut last = None;
    loop {
        tokio::select! {
            update = updates.next() => {
                let Some(shared) = weak.upgrade() else { return };
                match update {
                    Some(Ok(addrs)) => shared.update(addrs),
                    Some(Err(error)) => shared.discovery_failed(error),
                    None => {
                        shared.discovery_failed(DiscoveryError::new("the discovery source ended"));
                        return;
                    }
                }
            }
            changed = changes.changed() => {
                if changed.is_err() {
                    return;
                }
                let Some(shared) = weak.upgrade() else { return };
                let counts = shared.counts();
                let now = (counts.total, counts.ready, counts.ejected);
                if last != Some(now) {
                    last = Some(now);
                    shared.settings.observer.endpoints(&counts);
                }
            }
        }
    }
}
