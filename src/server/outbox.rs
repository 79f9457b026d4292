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

    /// Writes each recipient's lines, as the user of connection `sender`,
    /// and returns how many `RECEIVE` lines were written.
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
        let failed = self.deliveries.iter().any(|d| d.failed);
        if failed {
            self.retract_failed_sends();
        }
        let delivered = self
            .sent
            .iter()
            .filter(|(_, index)| !self.deliveries[*index].failed)
            .count();
        self.deliveries.clear();
        self.sent.clear();
        delivered
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
        let key = shared.registry.lock().register(name, peer).unwrap();
        shared.registry.show(&key, peer.id);
        key
    }

    /// Queues `count` messages of 100 characters from `from` to `to`:
    /// enough to fill any socket's buffers when `count` is large.
    fn queue(shared: &Shared, outbox: &mut Outbox, from: &Peer, to: &str, count: usize) {
        let text = "z".repeat(100);
        let users = shared.registry.lock();
        let (key, user) = users.find(to, from.id).unwrap();
        for _ in 0..count {
            outbox.send(key, user, "alice", &text);
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

    #[test]
    fn a_recipient_that_does_not_read_is_dropped_and_its_ok_send_retracted() {
        let write_timeout = Duration::from_millis(300);
        let shared = shared(write_timeout);
        let (alice, _alice_client) = connected(1, write_timeout);
        let (bob, _never_read) = connected(2, write_timeout);
        login(&shared, "alice", &alice);
        let key = login(&shared, "bob", &bob);
        let mut outbox = Outbox::default();
        outbox.reply(&Reply::Pong);
        // About 10 MB: more than the system buffers of a socket hold.
        queue(&shared, &mut outbox, &alice, "bob", 80_000);
        let started = Instant::now();
        outbox.deliver(&alice, &shared);
        let took = started.elapsed();
        assert!(took >= write_timeout, "{took:?}");
        assert!(took < write_timeout * 3, "{took:?}");
        assert!(bob.is_dropped());
        assert!(!shared.registry.remove(&key, bob.id), "the name was kept");
        let replies = String::from_utf8(outbox.replies().to_vec()).unwrap();
        let lines: Vec<&str> = replies.lines().collect();
        assert_eq!(lines.len(), 80_001);
        assert_eq!(lines[0], "OK PING");
        assert!(
            lines[1..].iter().all(
                |l| *l == "ERR NO_SUCH_USER bob was disconnected before the message reached it"
            ),
            "{:?}",
            &lines[..3]
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
        alice.drop_client(); // between the look-up and the write
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
            let users = shared.registry.lock();
            let (_, user) = users.find("dave", alice.id).unwrap();
            let dave = Arc::clone(&user.peer);
            drop(users);
            dave.deliver(line, &alice).unwrap();
            assert_eq!(received(&mut dave_client, line.len()).as_bytes(), line);
            let took = round.elapsed();
            fastest_round = fastest_round.min(took);
            assert!(took < Duration::from_millis(200), "dave waited {took:?}");
        }
        assert!(bob.is_dropped() && carol.is_dropped());
        assert!(fastest_round < Duration::from_millis(200));
    }
}
