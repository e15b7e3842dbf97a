//! One endpoint (address) of a service: a small pool of HTTP/2 connections, each kept up by
//! its own task with gRPC's reconnect backoff, and the endpoint's load and health.
//!
//! Why a pool: h2 guards all streams of a connection with one lock (h2 #531), so one
//! connection caps a busy client; a few per endpoint spread that (tonic #607 saw 30k → 170k
//! req/s going from 1 to 5). The default is one; see
//! [`Builder::connections_per_endpoint`](crate::client::Builder::connections_per_endpoint).
//!
//! The endpoint's tasks end when the endpoint is dropped: the balancer drops it when
//! discovery no longer lists it *and* the last call in flight on it has finished (each one
//! holds the endpoint), which is how a removed endpoint drains.

pub(crate) mod backoff;
mod connection;
pub(crate) mod hpack_names;
mod load;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::task::AbortHandle;

use crate::client::balance::{Changes, Health};
use crate::client::connector::{Connector, LastFailure};

pub(crate) use connection::ReadyConnection;
pub(crate) use connection::describe;
use connection::{Slot, SlotState};
pub(crate) use load::Load;

/// An endpoint of the service, with its connections.
#[derive(Debug)]
pub(crate) struct Endpoint {
    addr: SocketAddr,
    slots: Vec<Arc<Slot>>,
    next_slot: AtomicUsize,
    load: Load,
    health: Health,
    tasks: Vec<AbortHandle>,
    last_failure: LastFailure,
}

/// What the balancer needs to know of an endpoint's connections.
#[derive(Clone, Debug)]
pub(crate) enum State {
    Ready,
    /// Connecting, with no failure since the last connection.
    Connecting,
    /// Every connection failed, the last time for this reason.
    Failed(Arc<str>),
}

// === impl Endpoint ===

impl Endpoint {
    /// Starts `connections` connection tasks to `addr`. Must be called in a tokio runtime.
    pub(crate) fn spawn(
        addr: SocketAddr,
        connector: &Connector,
        connections: usize,
        changes: &Arc<Changes>,
    ) -> Arc<Endpoint> {
        let connector = connector.with_own_failures();
        let last_failure = connector.last_failure();
        let slots: Vec<_> = (0..connections.max(1))
            .map(|_| Arc::new(Slot::default()))
            .collect();
        let tasks = slots
            .iter()
            .map(|slot| {
                let connector = connector.clone();
                let task = connection::maintain(slot.clone(), changes.clone(), move || {
                    connection::connect(&connector, addr)
                });
                tokio::spawn(task).abort_handle()
            })
            .collect();
        Arc::new(Endpoint {
            addr,
            slots,
            next_slot: AtomicUsize::new(0),
            load: Load::new(),
            health: Health::default(),
            tasks,
            last_failure,
        })
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub(crate) fn load(&self) -> &Load {
        &self.load
    }

    pub(crate) fn health(&self) -> &Health {
        &self.health
    }

    /// What the I/O layer last saw fail on this endpoint's connections, if recent.
    pub(crate) fn recent_failure(&self) -> Option<String> {
        self.last_failure.recent()
    }

    pub(crate) fn is_ready(&self) -> bool {
        self.slots.iter().any(|slot| slot.is_ready())
    }

    pub(crate) fn state(&self) -> State {
        let mut failure = None;
        let mut connecting = false;
        for slot in &self.slots {
            match slot.state() {
                SlotState::Ready(sender) if !sender.is_closed() => return State::Ready,
                SlotState::Ready(_) | SlotState::Connecting => connecting = true,
                SlotState::Failed(why) => failure = Some(why),
            }
        }
        match (connecting, failure) {
            (false, Some(why)) => State::Failed(why),
            _ => State::Connecting,
        }
    }

    /// One of the ready connections, taken in turn.
    pub(crate) fn ready_connection(&self) -> Option<ReadyConnection<'_>> {
        let start = self.next_slot.fetch_add(1, Ordering::Relaxed);
        (0..self.slots.len()).find_map(|i| self.slots[(start + i) % self.slots.len()].ready())
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}
