//! What one batch of a client's lines produces, and delivering it.
//!
//! A session handles every complete line that one `read` brought in as one
//! batch, and collects here what they produce: `RECEIVE` lines for each
//! recipient, and the sender's own replies. Then [`Outbox::deliver`] writes
//! each recipient's lines with one write, holding only that recipient's
//! write lock, and the session writes its replies after them. That order
//! keeps the two promises of `SEND`: the `RECEIVE` line reaches the
//! recipient's socket before `OK SEND` is written back, and a delivery that
//! failed turns its `OK SEND` into `ERR NO_SUCH_USER`. And since one sender's
//! batches go out one after the other, its messages to one recipient keep
//! their order.

use std::ops::Range;
use std::sync::Arc;

use super::Shared;
use super::peer::{Peer, Undelivered};
use super::registry::User;
use crate::protocol::{Error, ErrorCode, LINE_END, Reply};

/// The lines of one batch, not yet written.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    /// `RECEIVE` lines, one entry per recipient, in the order they were
    /// first addressed.
    deliveries: Vec<Delivery>,
    /// The sender's replies, already encoded, CRLF included.
    replies: Vec<u8>,
    /// Where each `OK SEND` line stands in `replies`, and which delivery it
    /// depends on.
    sent: Vec<(Range<usize>, usize)>,
}

/// The `RECEIVE` lines of one batch for one recipient.
#[derive(Debug)]
struct Delivery {
    /// The recipient's registry key ([`crate::protocol::name_key`]).
    key: String,
    /// The recipient's name as it was registered.
    name: String,
    /// The recipient's connection, looked up when the batch was handled.
    peer: Arc<Peer>,
    lines: Vec<u8>,
    failed: bool,
}

impl Outbox {
    /// Queues a reply to the sender.
    pub(crate) fn reply(&mut self, reply: &Reply<'_>) {
        reply.encode(&mut self.replies);
    }

    /// Queues `RECEIVE <from> <text>` for `to` (registered under `key`),
    /// and the `OK SEND <to>` that will tell the sender it was written.
    pub(crate) fn send(&mut self, key: &str, to: &User, from: &str, text: &str) {
        let index = match self.deliveries.iter().position(|d| d.peer.id == to.peer.id) {
            Some(index) => index,
            None => {
                self.deliveries.push(Delivery {
                    key: key.to_owned(),
                    name: to.name.clone(),
                    peer: Arc::clone(&to.peer),
                    lines: Vec::new(),
                    failed: false,
                });
                self.deliveries.len() - 1
            }
        };
        Reply::Receive { from, text }.encode(&mut self.deliveries[index].lines);
        let start = self.replies.len();
        Reply::Sent(&to.name).encode(&mut self.replies);
        self.sent.push((start..self.replies.len(), index));
    }

    /// Writes each recipient's lines, as the user of connection `sender`.
    /// The caller holds no lock: each write takes only its recipient's
    /// write lock, so a recipient that does not read delays this sender
    /// alone, for at most the write timeout.
    ///
    /// A recipient whose socket does not take its lines in time is dropped
    /// (by [`Peer::deliver`]) and its name released here, before the
    /// sender's `ERR NO_SUCH_USER` is written: whoever reads that error can
    /// take the name at once.
    pub(crate) fn deliver(&mut self, sender: &Peer, shared: &Shared) {
        let log = &shared.log;
        for delivery in &mut self.deliveries {
            log_lines(log, &delivery.name, &delivery.lines);
            match delivery.peer.deliver(&delivery.lines, sender) {
                Ok(()) => {}
                Err(Undelivered::Dropped(error)) => {
                    log.event(format_args!(
                        "{} dropped: cannot write to it ({error})",
                        delivery.name
                    ));
                    shared.registry.remove(&delivery.key, delivery.peer.id);
                    delivery.failed = true;
                }
                Err(Undelivered::Gone) => delivery.failed = true,
            }
        }
        if self.deliveries.iter().any(|d| d.failed) {
            self.retract_failed_sends();
        }
        self.deliveries.clear();
        self.sent.clear();
    }

    /// The sender's replies, once [`deliver`](Self::deliver) has run.
    pub(crate) fn replies(&self) -> &[u8] {
        &self.replies
    }

    /// Forgets the replies, once written.
    pub(crate) fn clear(&mut self) {
        self.replies.clear();
    }

    /// Replaces each `OK SEND` whose delivery failed by `ERR NO_SUCH_USER`.
    fn retract_failed_sends(&mut self) {
        let mut replies = Vec::with_capacity(self.replies.len());
        let mut copied = 0;
        for (range, index) in &self.sent {
            let delivery = &self.deliveries[*index];
            if delivery.failed {
                replies.extend_from_slice(&self.replies[copied..range.start]);
                let gone = Error::new(
                    ErrorCode::NoSuchUser,
                    format!(
                        "{} was disconnected before the message reached it",
                        delivery.name
                    ),
                );
                Reply::Error(&gone).encode(&mut replies);
                copied = range.end;
            }
        }
        replies.extend_from_slice(&self.replies[copied..]);
        self.replies = replies;
    }
}

/// With `--verbose`, logs each line of `bytes` as sent to `who`.
pub(crate) fn log_lines(log: &super::log::Log, who: &str, bytes: &[u8]) {
    if log.verbose {
        for line in bytes.split_inclusive(|&b| b == b'\n') {
            log.wire(who, '<', line.strip_suffix(LINE_END).unwrap_or(line));
        }
    }
}
