//! What a client's lines produce, and delivering it (PROTOCOL.md,
//! « Les commandes », `SEND`).
//!
//! A session handles the complete lines that one `read` brought in one
//! after the other, and collects here what they produce: `RECEIVE` lines
//! for each recipient, and the sender's own replies. Then
//! [`Outbox::deliver`] writes each recipient's lines with one write,
//! holding only that recipient's write lock, and the session writes its
//! replies after them. That order keeps the two promises of `SEND`: the
//! `RECEIVE` line reaches the recipient's socket before `OK SEND` is
//! written back, and a `RECEIVE` line that was not written whole turns its
//! `OK SEND` into `ERR NO_SUCH_USER`. And since one sender's lines go out
//! in order, its messages to one recipient keep their order.
//!
//! Gathering lines makes one write carry many: that is what throughput
//! needs. It is not a memory policy: once an outbox holds
//! [`FLUSH_BYTES`], the session writes it out before it handles its next
//! line, so that what one connection holds does not grow with how many
//! lines its client pipelines.

use std::ops::Range;
use std::sync::Arc;

use super::Shared;
use super::peer::{Peer, Undelivered};
use super::registry::User;
use crate::protocol::{Error, ErrorCode, LINE_END, Reply};

/// An outbox holding this many bytes is written out before the next line
/// is handled. 64 KiB is several reads' worth of messages, so pipelined
/// `SEND`s still go out in large writes; and a client pipelining `LIST`s
/// to a thousand users (17 KB a reply) makes the server hold about 80 KB
/// for it, not the 5.8 MB of a whole read's worth of replies.
pub(crate) const FLUSH_BYTES: usize = 64 * 1024;

/// Past this capacity, a written reply buffer is given back to the system
/// rather than kept for the next batch: a thousand idle clients should not
/// each keep the buffer of their largest batch.
const KEPT_CAPACITY: usize = 8 * 1024;

/// The lines of one batch, not yet written.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    /// `RECEIVE` lines, one entry per recipient, in the order they were
    /// first addressed.
    deliveries: Vec<Delivery>,
    /// How many bytes of `RECEIVE` lines `deliveries` hold.
    delivery_bytes: usize,
    /// The sender's replies, already encoded, CRLF included.
    replies: Vec<u8>,
    /// Each `OK SEND` line in `replies`, and the `RECEIVE` line it stands for.
    sent: Vec<Sent>,
}

/// An `OK SEND` waiting for its `RECEIVE` line to be written.
#[derive(Debug)]
struct Sent {
    /// Where the `OK SEND` line stands in the replies.
    reply: Range<usize>,
    /// Which delivery carries the `RECEIVE` line...
    delivery: usize,
    /// ...and where that line ends in the delivery's bytes: it was written
    /// whole if the write got at least this far.
    line_end: usize,
}

/// The `RECEIVE` lines of one batch for one recipient.
#[derive(Debug)]
struct Delivery {
    /// The recipient, looked up when the line was handled.
    to: Arc<User>,
    lines: Vec<u8>,
    /// How many bytes of `lines` reached the recipient's socket.
    written: usize,
}

impl Outbox {
    /// Queues a reply to the sender.
    pub(crate) fn reply(&mut self, reply: &Reply<'_>) {
        reply.encode(&mut self.replies);
    }

    /// Queues `RECEIVE <from> <text>` for `to`, and the `OK SEND <to>` that
    /// will tell the sender it was written.
    pub(crate) fn send(&mut self, to: &Arc<User>, from: &str, text: &str) {
        let index = match self
            .deliveries
            .iter()
            .position(|d| d.to.peer.id == to.peer.id)
        {
            Some(index) => index,
            None => {
                self.deliveries.push(Delivery {
                    to: Arc::clone(to),
                    lines: Vec::new(),
                    written: 0,
                });
                self.deliveries.len() - 1
            }
        };
        let lines = &mut self.deliveries[index].lines;
        let before = lines.len();
        Reply::Receive { from, text }.encode(lines);
        self.delivery_bytes += lines.len() - before;
        let start = self.replies.len();
        Reply::Sent(&to.name).encode(&mut self.replies);
        self.sent.push(Sent {
            reply: start..self.replies.len(),
            delivery: index,
            line_end: lines.len(),
        });
    }

    /// True once the outbox holds [`FLUSH_BYTES`] or more: time to write
    /// it out before handling another line.
    pub(crate) fn is_full(&self) -> bool {
        self.replies.len() + self.delivery_bytes >= FLUSH_BYTES
    }

    /// Writes each recipient's lines, as the user of connection `sender`,
    /// and returns how many `RECEIVE` lines were written whole.
    /// The caller holds no lock: each write takes only its recipient's
    /// write lock, so a recipient that does not read delays this sender
    /// alone, for at most the write timeout.
    ///
    /// A recipient whose socket does not take its lines in time is dropped
    /// (by [`Peer::deliver`]) and its name released here, before the
    /// sender's `ERR NO_SUCH_USER` is written: whoever reads that error can
    /// take the name at once.
    pub(crate) fn deliver(&mut self, sender: &Peer, shared: &Shared) -> usize {
        let log = &shared.log;
        for delivery in &mut self.deliveries {
            let to = &delivery.to;
            log_lines(log, &to.name, &delivery.lines);
            delivery.written = match to.peer.deliver(&delivery.lines, sender) {
                Ok(()) => delivery.lines.len(),
                Err(why) => {
                    if let Undelivered::Dropped { error, .. } = &why {
                        log.event(format_args!(
                            "{} dropped: cannot write to it ({error})",
                            to.name
                        ));
                        shared.registry.remove(&to.key, to.peer.id);
                    }
                    why.written()
                }
            };
        }
        let delivered = self
            .sent
            .iter()
            .filter(|sent| self.was_written(sent))
            .count();
        if delivered < self.sent.len() {
            self.retract_unwritten_sends();
        }
        self.deliveries.clear();
        self.delivery_bytes = 0;
        self.sent.clear();
        delivered
    }

    /// The sender's replies, once [`deliver`](Self::deliver) has run.
    pub(crate) fn replies(&self) -> &[u8] {
        &self.replies
    }

    /// Forgets the replies, once written.
    pub(crate) fn clear(&mut self) {
        if self.replies.capacity() > KEPT_CAPACITY {
            self.replies = Vec::new();
        } else {
            self.replies.clear();
        }
    }

    /// Whether the `RECEIVE` line behind `sent` was written whole.
    fn was_written(&self, sent: &Sent) -> bool {
        sent.line_end <= self.deliveries[sent.delivery].written
    }

    /// Replaces each `OK SEND` whose `RECEIVE` line was not written whole
    /// by `ERR NO_SUCH_USER`.
    fn retract_unwritten_sends(&mut self) {
        let mut replies = Vec::with_capacity(self.replies.len());
        let mut copied = 0;
        for sent in self.sent.iter().filter(|sent| !self.was_written(sent)) {
            let to = &self.deliveries[sent.delivery].to;
            replies.extend_from_slice(&self.replies[copied..sent.reply.start]);
            let gone = Error::new(
                ErrorCode::NoSuchUser,
                format!("{} was disconnected before the message reached it", to.name),
            );
            Reply::Error(&gone).encode(&mut replies);
            copied = sent.reply.end;
        }
        replies.extend_from_slice(&self.replies[copied..]);
        self.replies = replies;
    }
}

/// With `--verbose`, logs each line of `bytes` as sent to `who`.
pub(crate) fn log_lines(log: &super::log::Log, who: &str, bytes: &[u8]) {
    if log.wants_wire() {
        for line in bytes.split_inclusive(|&b| b == b'\n') {
            log.wire(who, '<', line.strip_suffix(LINE_END).unwrap_or(line));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::peer::testing::connected;
    use crate::server::testing::shared;
    use std::io::Read;
    use std::net::TcpStream;
    use std::thread;
    use std::time::{Duration, Instant};

    /// Registers (and shows) `name` for `peer`; returns its key.
    fn login(shared: &Shared, name: &str, peer: &Arc<Peer>) -> String {
        let (user, _) = shared.registry.register(name, peer).unwrap();
        shared.registry.show(&user.key, peer.id);
        user.key.clone()
    }

    /// Queues `count` messages of 100 characters from `from` to `to`:
    /// enough to fill any socket's buffers when `count` is large.
    fn queue(shared: &Shared, outbox: &mut Outbox, from: &Peer, to: &str, count: usize) {
        let text = "z".repeat(100);
        let user = shared.registry.find(to, from.id).unwrap();
        for _ in 0..count {
            outbox.send(&user, "alice", &text);
        }
    }

    /// Reads what `client` got, until `expected` bytes or a pause.
    fn received(client: &mut TcpStream, expected: usize) -> String {
        client
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let mut bytes = vec![0; expected];
        client.read_exact(&mut bytes).unwrap();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn a_delivery_is_written_before_its_ok_send() {
        let shared = shared(Duration::from_secs(1));
        let (alice, _alice_client) = connected(1, Duration::from_secs(1));
        let (bob, mut bob_client) = connected(2, Duration::from_secs(1));
        login(&shared, "alice", &alice);
        login(&shared, "Bob", &bob);
        let mut outbox = Outbox::default();
        outbox.reply(&Reply::Pong);
        queue(&shared, &mut outbox, &alice, "bob", 2);
        outbox.deliver(&alice, &shared);
        let line = format!("RECEIVE alice {}\r\n", "z".repeat(100));
        assert_eq!(received(&mut bob_client, 2 * line.len()), line.repeat(2));
        assert_eq!(
            outbox.replies(),
            b"OK PING\r\nOK SEND Bob\r\nOK SEND Bob\r\n"
        );
    }

    /// The recipient stops reading in the middle of a batch: the lines its
    /// socket took whole earn their `OK SEND`, and only the others are
    /// retracted, whatever byte the write stopped at.
    #[test]
    fn a_recipient_that_stops_reading_is_dropped_and_only_unwritten_lines_retracted() {
        let write_timeout = Duration::from_millis(300);
        let shared = shared(write_timeout);
        let (alice, _alice_client) = connected(1, write_timeout);
        let (bob, mut bob_client) = connected(2, write_timeout);
        login(&shared, "alice", &alice);
        let key = login(&shared, "bob", &bob);
        let mut outbox = Outbox::default();
        outbox.reply(&Reply::Pong);
        // About 10 MB: more than the system buffers of a socket hold.
        let count = 80_000;
        queue(&shared, &mut outbox, &alice, "bob", count);
        let started = Instant::now();
        let delivered = outbox.deliver(&alice, &shared);
        let took = started.elapsed();
        assert!(took >= write_timeout, "{took:?}");
        assert!(took < write_timeout * 3, "{took:?}");
        assert!(bob.is_dropped());
        assert!(!shared.registry.remove(&key, bob.id), "the name was kept");
        // Bob, reading at last, finds exactly `delivered` whole lines.
        let mut got = Vec::new();
        bob_client
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        bob_client.read_to_end(&mut got).unwrap();
        let line = format!("RECEIVE alice {}\r\n", "z".repeat(100));
        assert_eq!(got.len() / line.len(), delivered, "whole lines read");
        assert!(delivered > 0 && delivered < count, "{delivered}");
        let replies = String::from_utf8(outbox.replies().to_vec()).unwrap();
        let lines: Vec<&str> = replies.lines().collect();
        assert_eq!(lines.len(), count + 1);
        assert_eq!(lines[0], "OK PING");
        let ok = lines.iter().filter(|l| **l == "OK SEND bob").count();
        assert_eq!(ok, delivered);
        // The written ones first, in order, then the retracted ones.
        assert!(lines[1..=delivered].iter().all(|l| *l == "OK SEND bob"));
        assert!(
            lines[delivered + 1..].iter().all(
                |l| *l == "ERR NO_SUCH_USER bob was disconnected before the message reached it"
            ),
            "{:?}",
            &lines[delivered..delivered + 2]
        );
        // Later writers fail at once, without waiting.
        let started = Instant::now();
        assert!(matches!(
            bob.deliver(b"x\r\n", &alice),
            Err(Undelivered::Gone)
        ));
        assert!(started.elapsed() < Duration::from_millis(50));
    }

    #[test]
    fn a_sender_dropped_meanwhile_delivers_nothing() {
        let shared = shared(Duration::from_secs(1));
        let (alice, _alice_client) = connected(1, Duration::from_secs(1));
        let (bob, mut bob_client) = connected(2, Duration::from_secs(1));
        login(&shared, "alice", &alice);
        login(&shared, "bob", &bob);
        let mut outbox = Outbox::default();
        queue(&shared, &mut outbox, &alice, "bob", 1);
        alice.kick(); // between the look-up and the write
        outbox.deliver(&alice, &shared);
        assert!(outbox.replies().starts_with(b"ERR NO_SUCH_USER "));
        // Bob got nothing, and is still connected.
        assert!(!bob.is_dropped());
        bob.deliver(b"OK PING\r\n", &bob).unwrap();
        assert_eq!(received(&mut bob_client, 9), "OK PING\r\n");
    }

    /// The lock order at work: while one thread is stuck writing to a
    /// client that does not read, the registry stays free, and the other
    /// clients are written to at once; two clients stuck writing to each
    /// other do not deadlock.
    #[test]
    fn a_stuck_write_holds_no_lock_but_its_recipients() {
        let write_timeout = Duration::from_secs(1);
        let shared = shared(write_timeout);
        let (alice, _a) = connected(1, write_timeout);
        let (bob, _b_never_reads) = connected(2, write_timeout);
        let (carol, _c_never_reads) = connected(3, write_timeout);
        let (dave, mut dave_client) = connected(4, write_timeout);
        for (name, peer) in [
            ("alice", &alice),
            ("bob", &bob),
            ("carol", &carol),
            ("dave", &dave),
        ] {
            login(&shared, name, peer);
        }
        let stuck = |from: Arc<Peer>, to: &'static str| {
            let shared = Arc::clone(&shared);
            thread::spawn(move || {
                let mut outbox = Outbox::default();
                queue(&shared, &mut outbox, &from, to, 80_000);
                outbox.deliver(&from, &shared);
            })
        };
        // bob and carol stop reading and write to each other: each is
        // stuck on the other's socket. alice is stuck on bob's too.
        let writers = [
            stuck(Arc::clone(&bob), "carol"),
            stuck(Arc::clone(&carol), "bob"),
            stuck(Arc::clone(&alice), "bob"),
        ];
        let started = Instant::now();
        let mut fastest_round = Duration::MAX;
        let line = b"OK PING\r\n";
        while writers.iter().any(|w| !w.is_finished()) {
            assert!(started.elapsed() < write_timeout * 3, "a deadlock");
            let round = Instant::now();
            let dave = shared.registry.find("dave", alice.id).unwrap();
            dave.peer.deliver(line, &alice).unwrap();
            assert_eq!(received(&mut dave_client, line.len()).as_bytes(), line);
            let took = round.elapsed();
            fastest_round = fastest_round.min(took);
            assert!(took < Duration::from_millis(200), "dave waited {took:?}");
        }
        assert!(bob.is_dropped() && carol.is_dropped());
        assert!(fastest_round < Duration::from_millis(200));
    }
}
