//! What one batch of a client's lines produces, and writing it out.
//!
//! A session handles every complete line that one `read` brought in as one
//! batch, under the registry lock, and collects here what they produce:
//! `RECEIVE` lines for each recipient, and the sender's own replies. Then
//! [`Outbox::flush`] writes each recipient's lines with one `write`, and
//! after them the sender's replies with one more. That order keeps the two
//! promises of `SEND`: the `RECEIVE` line reaches the recipient's socket
//! before `OK SEND` is written back, and a delivery that failed turns its
//! `OK SEND` into `ERR NO_SUCH_USER`.

use std::io::{self, Write};
use std::net::{Shutdown, TcpStream};
use std::ops::Range;
use std::time::{Duration, Instant};

use crate::log::Log;
use crate::protocol::{Error, ErrorCode, LINE_END, Reply};
use crate::registry::Users;

/// The lines of one batch, not yet written.
#[derive(Debug, Default)]
pub struct Outbox {
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
    lines: Vec<u8>,
    failed: bool,
}

impl Outbox {
    /// Queues a reply to the sender.
    pub fn reply(&mut self, reply: &Reply<'_>) {
        reply.encode(&mut self.replies);
    }

    /// Queues `RECEIVE <from> <text>` for the user registered under `key` as
    /// `to`, and the `OK SEND <to>` that will tell the sender it was written.
    pub fn deliver(&mut self, key: &str, to: &str, from: &str, text: &str) {
        let index = match self.deliveries.iter().position(|d| d.key == key) {
            Some(index) => index,
            None => {
                self.deliveries.push(Delivery {
                    key: key.to_owned(),
                    name: to.to_owned(),
                    lines: Vec::new(),
                    failed: false,
                });
                self.deliveries.len() - 1
            }
        };
        Reply::Receive { from, text }.encode(&mut self.deliveries[index].lines);
        let start = self.replies.len();
        Reply::Sent(to).encode(&mut self.replies);
        self.sent.push((start..self.replies.len(), index));
    }

    /// Writes the batch, recipients first, then the sender's replies to
    /// `own` (labelled `own_label` in the log), each write within
    /// `timeout`. The caller holds the registry lock, so no other thread
    /// writes to these sockets meanwhile.
    ///
    /// A recipient whose socket does not take its lines in time is dropped:
    /// removed from `users` (its name is free again at once) and its socket
    /// shut down, which ends its session. An error is returned only when the
    /// sender's own replies could not be written: then the sender goes too.
    pub fn flush(
        &mut self,
        users: &mut Users,
        own: &TcpStream,
        own_label: &str,
        timeout: Duration,
        log: &Log,
    ) -> io::Result<()> {
        for delivery in &mut self.deliveries {
            let Some(user) = users.get(&delivery.key) else {
                delivery.failed = true; // not registered any more: not delivered
                continue;
            };
            log_lines(log, &user.name, &delivery.lines);
            if let Err(error) = write_within(&user.stream, &delivery.lines, timeout) {
                log.event(format_args!(
                    "{} dropped: cannot write to it ({error})",
                    user.name
                ));
                let id = user.id;
                if let Some(user) = users.remove(&delivery.key, id) {
                    let _ = user.stream.shutdown(Shutdown::Both); // it may be gone already
                }
                delivery.failed = true;
            }
        }
        if self.deliveries.iter().any(|d| d.failed) {
            self.retract_failed_sends();
        }
        log_lines(log, own_label, &self.replies);
        let written = write_within(own, &self.replies, timeout);
        self.deliveries.clear();
        self.replies.clear();
        self.sent.clear();
        written
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

/// Writes all of `bytes` to `stream` within `timeout` in all, however slowly
/// the peer reads: a socket timeout alone would restart at each partial
/// write, and a client reading one byte a second would hold the lock forever.
pub fn write_within(mut stream: &TcpStream, mut bytes: &[u8], timeout: Duration) -> io::Result<()> {
    // A timeout too far away to add to the clock is as good as none: the
    // socket's own timeout still bounds each single write.
    let deadline = Instant::now().checked_add(timeout);
    let mut shortened = false;
    let result = loop {
        if bytes.is_empty() {
            break Ok(());
        }
        match stream.write(bytes) {
            Ok(0) => break Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => break Err(e),
        }
        if let (false, Some(deadline)) = (bytes.is_empty(), deadline) {
            // A partial write: wait no longer than what is left.
            match deadline.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => {
                    shortened = true;
                    if let Err(e) = stream.set_write_timeout(Some(left)) {
                        break Err(e);
                    }
                }
                _ => break Err(io::ErrorKind::TimedOut.into()),
            }
        }
    };
    if shortened {
        stream.set_write_timeout(Some(timeout))?;
    }
    result
}

/// With `--verbose`, logs each line of `bytes` as sent to `who`.
fn log_lines(log: &Log, who: &str, bytes: &[u8]) {
    if log.verbose {
        for line in bytes.split_inclusive(|&b| b == b'\n') {
            log.wire(who, '<', line.strip_suffix(LINE_END).unwrap_or(line));
        }
    }
}
