//! What each connection of a check sent and got, kept so that a failure
//! can show every connection involved: the recipient that got nothing,
//! and the sender's own reply that says why. Only the last few events of
//! each connection are kept, so a flood costs no memory.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

use crate::lang::Lang;

/// How many events of each connection a failure shows.
const KEPT_EVENTS: usize = 4;

/// The exchanges of one check's connections.
#[derive(Debug, Default)]
pub struct Journal {
    connections: Mutex<Vec<Connection>>,
    /// Set by the first expectation that fails: the connections still
    /// open then read what is waiting for them (see `Probe`'s `Drop`).
    failed: AtomicBool,
}

#[derive(Debug)]
struct Connection {
    label: String,
    events: VecDeque<String>,
    /// Events were left out before the first one kept.
    cut: bool,
}

impl Journal {
    /// Notes `event` (already worded) for the connection `label`.
    pub fn note(&self, label: &str, event: String) {
        let mut connections = self
            .connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let at = match connections.iter().position(|c| c.label == label) {
            Some(at) => at,
            None => {
                connections.push(Connection {
                    label: label.to_owned(),
                    events: VecDeque::new(),
                    cut: false,
                });
                connections.len() - 1
            }
        };
        let connection = &mut connections[at];
        if connection.events.len() == KEPT_EVENTS {
            connection.events.pop_front();
            connection.cut = true;
        }
        connection.events.push_back(event);
    }

    /// A new connection called `label`: what an earlier one of that name
    /// did is forgotten.
    pub fn open(&self, label: &str) {
        self.forget(label);
    }

    /// Forgets what the connection `label` did (it ended cleanly).
    pub fn forget(&self, label: &str) {
        self.connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|c| c.label != label);
    }

    pub fn set_failed(&self) {
        self.failed.store(true, Ordering::Release);
    }

    pub fn failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }

    /// One line per connection: `alice07: sent "…", got "…"`.
    pub fn exchanges(&self, lang: Lang) -> Vec<String> {
        let connections = self
            .connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        connections
            .iter()
            .map(|c| {
                let events: Vec<&str> = c.events.iter().map(String::as_str).collect();
                format!(
                    "{}{} {}{}",
                    c.label,
                    lang.pick(":", " :"),
                    if c.cut { "…, " } else { "" },
                    events.join(", ")
                )
            })
            .collect()
    }
}
