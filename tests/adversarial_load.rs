//! Adversarial tests, part 3: load (recipients that never read, many
//! pipelined senders), and the identity of a client dropped for a write
//! timeout. In each, two well-behaved clients keep exchanging messages
//! during and after the attack.

mod common;

use std::io::Write;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::{Client, Pair, config, connect_when_free, start};
use minichat::{Config, Server};

/// A 100-character text, so each RECEIVE fills the sleeper's buffers fast.
fn long_text() -> String {
    "z".repeat(100)
}

/// Floods each of `targets` with pipelined `SEND`s from `flooder`, in
/// turn, until the server has answered `ERR NO_SUCH_USER` for each (they
/// were dropped for a write timeout). Returns how many messages each had
/// acknowledged with `OK SEND`. Never more than `WINDOW` unanswered lines,
/// so the flooder's own socket never fills.
fn flood_until_dropped(
    mut flooder: Client,
    targets: &'static [&'static str],
    limit: Duration,
) -> Vec<usize> {
    const CHUNK: usize = 48;
    const WINDOW: usize = 2000;
    let all_dropped = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicUsize::new(0));
    let mut writer = flooder.writer.try_clone().unwrap();
    let (stop, acked) = (Arc::clone(&all_dropped), Arc::clone(&answered));
    let sender = thread::spawn(move || {
        let chunk: String = (0..CHUNK)
            .map(|i| format!("SEND {} {}\n", targets[i % targets.len()], long_text()))
            .collect();
        let started = Instant::now();
        let mut sent = 0;
        while !stop.load(Ordering::Acquire) {
            assert!(
                started.elapsed() < limit,
                "{targets:?} were never all dropped"
            );
            if sent - acked.load(Ordering::Acquire) < WINDOW {
                writer.write_all(chunk.as_bytes()).unwrap();
                sent += CHUNK;
            } else {
                thread::yield_now();
            }
        }
        sent
    });
    let mut ok = vec![0; targets.len()];
    let mut dropped = vec![false; targets.len()];
    while !dropped.iter().all(|&d| d) {
        let reply = flooder.line();
        answered.fetch_add(1, Ordering::Release);
        let about = |target: &str| {
            reply == format!("OK SEND {target}")
                || reply.starts_with(&format!("ERR NO_SUCH_USER {target} "))
                || reply == format!("ERR NO_SUCH_USER no connected user named {target}")
        };
        let target = targets
            .iter()
            .position(|t| about(t))
            .unwrap_or_else(|| panic!("unexpected reply {reply:?}"));
        if reply.starts_with("OK SEND ") {
            ok[target] += 1;
        } else {
            dropped[target] = true;
        }
    }
    all_dropped.store(true, Ordering::Release);
    let sent = sender.join().unwrap();
    // Every line still unanswered is refused: the targets are gone.
    for _ in answered.load(Ordering::Acquire)..sent {
        flooder.expect_prefix("ERR NO_SUCH_USER ");
    }
    flooder.sync();
    ok
}

/// Three recipients that never read, and one client that pipelines
/// messages to all three: the flooder waits on each in turn, for the write
/// timeout (1 s), and nobody else waits at all. During the whole episode an
/// unrelated pair keeps exchanging with no round trip over 1 s, and a
/// newcomer is greeted within 1 s. Then all three are dropped, and the
/// flooder has `ERR NO_SUCH_USER` for each.
#[cfg(target_os = "linux")]
#[test]
fn three_stuck_recipients_delay_only_the_client_that_writes_to_them() {
    const STUCK: &[&str] = &["st0", "st1", "st2"];
    let write_timeout = Duration::from_secs(1);
    let server = start(Config {
        max_connections: 10,
        write_timeout,
        ..config()
    });
    let mut pair = Pair::login(server, "tr");
    let stuck: Vec<Client> = STUCK
        .iter()
        .map(|name| {
            let client = Client::login(server, name); // never reads
            common::shrink_receive_buffer(&client.writer, 2048);
            client
        })
        .collect();
    let flooder = Client::login(server, "flooder");
    let started = Instant::now();
    let attack =
        thread::spawn(move || flood_until_dropped(flooder, STUCK, Duration::from_secs(60)));
    let mut slowest_greeting = Duration::ZERO;
    let mut greetings = 0;
    while !attack.is_finished() {
        assert!(started.elapsed() < Duration::from_secs(60), "never dropped");
        pair.exchange();
        let asked = Instant::now();
        let mut newcomer = Client::connect(server);
        slowest_greeting = slowest_greeting.max(asked.elapsed());
        greetings += 1;
        newcomer.ask("QUIT", "OK QUIT");
    }
    let acknowledged = attack.join().unwrap();
    println!(
        "three stuck recipients: dropped after {:?} ({acknowledged:?} messages each); \
         {} round trips, worst {:?}; {greetings} greetings, slowest {slowest_greeting:?}",
        started.elapsed(),
        pair.exchanges,
        pair.worst
    );
    assert!(
        pair.worst < write_timeout / 2,
        "a round trip took {:?}",
        pair.worst
    );
    assert!(
        slowest_greeting < write_timeout / 2,
        "a greeting took {slowest_greeting:?}"
    );
    let mut watcher = Client::connect(server);
    let list = watcher.ask("LIST", "OK LIST");
    assert_eq!(list, "OK LIST tra trb", "the stuck clients are gone");
    drop(stuck);
    pair.still_talking();
}

/// A recipient that never reads, flooded by another client: it is dropped
/// after the write timeout and its name released, the flooder gets
/// `ERR NO_SUCH_USER`, and the others keep talking without waiting: no round
/// trip of the pair comes near the write timeout.
#[test]
fn a_never_reading_recipient_is_dropped_and_delays_no_one_else() {
    let write_timeout = Duration::from_secs(1);
    let server = start(Config {
        write_timeout,
        ..config()
    });
    let mut pair = Pair::login(server, "nr");
    let mut sleeper = Client::login(server, "sleeper"); // never reads, until the end
    let flooder = Client::login(server, "flooder");
    let started = Instant::now();
    let attack =
        thread::spawn(move || flood_until_dropped(flooder, &["sleeper"], Duration::from_secs(60)));
    let acknowledged = pair.talk_while(attack, Duration::from_secs(60))[0];
    let flood_time = started.elapsed();
    println!(
        "never-reading recipient: dropped after {acknowledged} messages in {flood_time:?}; \
         {} round trips meanwhile, worst {:?} (write timeout {write_timeout:?})",
        pair.exchanges, pair.worst
    );
    assert!(flood_time >= write_timeout, "dropped after {flood_time:?}");
    assert!(
        pair.worst < write_timeout / 2,
        "a round trip took {:?}",
        pair.worst
    );
    pair.still_talking();
    let mut watcher = Client::connect(server);
    let list = watcher.ask("LIST", "OK LIST");
    assert!(!list.contains("sleeper"), "{list}");
    watcher.ask("CONNECT sleeper", "OK CONNECT sleeper");
    // What the sleeper got: whole RECEIVE lines (but perhaps the last one,
    // cut by the timeout), then the end of the connection.
    let mut bytes = Vec::new();
    let _ = std::io::Read::read_to_end(&mut sleeper.reader, &mut bytes);
    let whole = bytes
        .split(|&b| b == b'\n')
        .filter(|l| l.ends_with(b"\r"))
        .count();
    assert!(
        whole >= acknowledged,
        "{whole} lines < {acknowledged} acknowledged"
    );
}

/// A client that pipelines requests but never reads its own replies: its
/// session blocks on its own socket at most the write timeout, then drops
/// it; the others do not wait at all.
#[cfg(target_os = "linux")]
#[test]
fn a_client_that_never_reads_its_replies_is_dropped() {
    let write_timeout = Duration::from_secs(1);
    let server = start(Config {
        write_timeout,
        ..config()
    });
    let mut pair = Pair::login(server, "nw");
    let deaf = Client::login(server, "deaf");
    common::shrink_receive_buffer(&deaf.writer, 2048);
    let mut writer = deaf.writer.try_clone().unwrap();
    let attack = thread::spawn(move || {
        let batch = "PING\nLIST\nHELP\n".repeat(100);
        let started = Instant::now();
        // Writes until the server closes the connection (the write fails).
        while writer.write_all(batch.as_bytes()).is_ok() {
            assert!(started.elapsed() < Duration::from_secs(30), "never dropped");
        }
        started.elapsed()
    });
    let dropped_after = pair.talk_while(attack, Duration::from_secs(40));
    println!(
        "deaf client: dropped after {dropped_after:?}; {} round trips meanwhile, worst {:?}",
        pair.exchanges, pair.worst
    );
    assert!(
        dropped_after >= write_timeout,
        "dropped after {dropped_after:?}"
    );
    assert!(
        pair.worst < write_timeout / 2,
        "a round trip took {:?}",
        pair.worst
    );
    let mut watcher = Client::connect(server);
    let list = watcher.ask("LIST", "OK LIST");
    assert!(!list.contains("deaf"), "{list}");
    drop(deaf);
    pair.still_talking();
}

/// A client dropped by a writer never speaks again under the name it lost,
/// even when its session was busy elsewhere at the moment of the drop,
/// with lines of its own still waiting to be carried out.
///
/// The race is lost on purpose. `rita` stops reading, and a flooder fills
/// her socket: the flooder's session now holds rita's write lock, for up to
/// the write timeout. Then the victim, `bob`, sends `SEND rita hi` and
/// `SEND dra I am bob` (in one write: one batch; or apart: two batches), and
/// resets his connection. Bob's session is stuck behind the flooder on
/// rita, so it does not notice; but the next writer to bob does: its write
/// fails, bob is dropped, and a newcomer takes his name. When the write to
/// rita times out, bob's session wakes up with `SEND dra I am bob` in hand.
/// dra must never see it.
#[cfg(target_os = "linux")]
#[test]
fn a_dropped_client_cannot_speak_under_its_released_name() {
    const OPEN: usize = 7; // the pair, rita, her flooder, bob, his writer, the newcomer
    let server = start(Config {
        write_timeout: Duration::from_secs(1),
        max_connections: OPEN,
        ..config()
    });
    let mut pair = Pair::login(server, "dr");
    for together in [true, false] {
        let rita = Client::login(server, "rita");
        let mut to_rita = Client::login(server, "frita");
        let (_, to_rita_owed) = to_rita.fill_until_blocked("rita");
        let mut bob = Client::login(server, "bob");
        if together {
            bob.send_raw(b"SEND rita hi\nSEND dra I am bob\n");
        } else {
            bob.send("SEND rita hi");
            // Not a synchronisation: either way the line must not be
            // carried out; apart, it most likely comes in a batch of its own.
            pair.exchange();
            bob.send("SEND dra I am bob");
        }
        pair.exchange(); // likewise: most likely, bob's session is stuck by now
        common::reset_on_drop(&bob.writer);
        drop(bob);
        // The next writer to bob fails at once: bob is dropped, his name free.
        let mut to_bob = Client::login(server, "fbob");
        to_bob.ask("SEND bob are you there?", "ERR NO_SUCH_USER ");
        let mut newcomer = Client::login(server, "bob");
        // Then the write to rita times out, which wakes bob's session up.
        expect_written_then_retracted(&mut to_rita, "rita", to_rita_owed);
        // Once the old bob's and rita's slots are free, their sessions are
        // over: whatever bob's could have written is written.
        drop(rita);
        let watchers = [connect_when_free(server), connect_when_free(server)];
        newcomer.send("SEND dra I am the new bob");
        pair.expect_on_a("RECEIVE bob I am the new bob");
        newcomer.expect("OK SEND dra");
        // dra never saw the old bob's line: its next lines are the pair's.
        pair.still_talking();
        // Leave so that every slot is free before the next round.
        newcomer.ask("QUIT", "OK QUIT");
        for client in [to_bob, to_rita].into_iter().chain(watchers) {
            client.hang_up();
        }
    }
    assert!(
        pair.worst < Duration::from_secs(1),
        "a round trip took {:?}",
        pair.worst
    );
}

/// Reads the `owed` replies to messages for `target`, whose write stopped
/// part-way: the lines written whole got `OK SEND` (in order, first), the
/// others `ERR NO_SUCH_USER`; at least one is retracted.
#[cfg(target_os = "linux")]
fn expect_written_then_retracted(sender: &mut Client, target: &str, owed: usize) {
    let written = sender.read_owed_replies(target, owed);
    assert!(written < owed, "nothing was retracted");
}

/// 4 senders × 5 000 pipelined messages to one recipient: every line
/// arrives whole, in each sender's order, and there are exactly as many
/// `OK SEND` as `RECEIVE` lines.
#[test]
fn four_pipelined_senders_lose_and_garble_nothing() {
    const SENDERS: usize = 4;
    const MESSAGES: usize = 5000;
    const CHUNK: usize = 100;
    let server = start(Config {
        max_connections: 8,
        ..config()
    });
    let mut pair = Pair::login(server, "cc");
    let mut recipient = Client::login(server, "sink");
    let senders: Vec<Client> = (0..SENDERS)
        .map(|k| Client::login(server, &format!("s{k}")))
        .collect();
    let text = |k: usize, i: usize| format!("m{i} from s{k}  é日😀 end ");
    let started = Instant::now();
    let receiver = thread::spawn(move || {
        let mut next = [0; SENDERS];
        for _ in 0..SENDERS * MESSAGES {
            let line = recipient.line();
            let rest = line
                .strip_prefix("RECEIVE s")
                .unwrap_or_else(|| panic!("not a RECEIVE: {line:?}"));
            let k: usize = rest[..1].parse().unwrap();
            assert_eq!(line, format!("RECEIVE s{k} {}", text(k, next[k])));
            next[k] += 1;
        }
        recipient.sync(); // and nothing more
        next
    });
    let attack = thread::spawn(move || {
        let threads: Vec<_> = senders
            .into_iter()
            .enumerate()
            .map(|(k, mut sender)| {
                let mut writer = sender.writer.try_clone().unwrap();
                // Replies are drained while writing, or both sides block.
                let drainer = thread::spawn(move || {
                    for _ in 0..MESSAGES {
                        sender.expect("OK SEND sink");
                    }
                    sender.sync();
                    MESSAGES
                });
                for start in (0..MESSAGES).step_by(CHUNK) {
                    let batch: String = (start..start + CHUNK)
                        .map(|i| format!("SEND sink {}\n", text(k, i)))
                        .collect();
                    writer.write_all(batch.as_bytes()).unwrap();
                }
                drainer
            })
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().unwrap())
            .sum::<usize>()
    });
    let acknowledged = pair.talk_while(attack, Duration::from_secs(60));
    let received = receiver.join().unwrap();
    println!(
        "concurrency: {acknowledged} OK SEND, {:?} RECEIVE per sender, in {:?}; pair worst round trip {:?}",
        received,
        started.elapsed(),
        pair.worst
    );
    assert_eq!(acknowledged, SENDERS * MESSAGES);
    assert_eq!(received, [MESSAGES; SENDERS]);
    pair.still_talking();
}

/// The same server on the IPv6 loopback, when the system has one.
#[test]
fn ipv6_loopback_works_if_available() {
    let config = Config {
        bind: IpAddr::V6(Ipv6Addr::LOCALHOST),
        ..config()
    };
    let server = match Server::bind_with_log(config, std::io::sink()) {
        Ok(server) => server,
        Err(e) => {
            println!("skipped: cannot bind [::1]: {e}");
            return;
        }
    };
    let address = server.local_addr().unwrap();
    thread::spawn(move || server.run());
    let mut pair = Pair::login(address, "v6");
    pair.still_talking();
    let mut other = Client::login(address, "ipv6");
    other.ask("LIST", "OK LIST ipv6 v6a v6b");
}

/// A thousand users, twenty of whom each pipeline 341 `LIST`s (a 2 KiB
/// packet) and stop reading. Each `LIST` copies a thousand users out of
/// the registry; none holds the registry lock for more than that, nor for
/// its batch of lines. So an unrelated pair keeps talking and a newcomer
/// logs in without waiting for the flooders. (Holding the lock for a whole
/// batch, or sorting under it, kept them waiting for seconds.)
#[cfg(target_os = "linux")]
#[test]
fn a_list_flood_at_a_thousand_users_holds_no_one_else() {
    const USERS: usize = 1000;
    const FLOODERS: usize = 20;
    let server = start(Config {
        max_connections: USERS + 10,
        ..config()
    });
    let mut users = common::log_in_many(server, "user", USERS);
    let mut pair = Pair::login(server, "lf");
    let flood = "LIST\n".repeat(341);
    let started = Instant::now();
    for flooder in &mut users[..FLOODERS] {
        // Small buffers, so that the flooders' sessions soon block on their
        // writes: the test is about the lock, not about the CPU that
        // formatting thousands of replies takes.
        common::shrink_receive_buffer(&flooder.writer, 4096);
        flooder.send_raw(flood.as_bytes()); // and never reads
    }
    let mut slowest_login = Duration::ZERO;
    let mut logins = 0;
    // Until the flooders are stuck on their full sockets, and a while after.
    while started.elapsed() < Duration::from_secs(1) {
        pair.exchange();
        let asked = Instant::now();
        let mut newcomer = Client::connect(server);
        newcomer.ask(&format!("CONNECT new{logins}"), "OK CONNECT ");
        slowest_login = slowest_login.max(asked.elapsed());
        logins += 1;
        newcomer.ask("QUIT", "OK QUIT");
    }
    println!(
        "LIST flood: {} round trips, worst {:?}; {logins} logins, slowest {slowest_login:?}",
        pair.exchanges, pair.worst
    );
    // Generous bounds for a debug build on a loaded machine; the release
    // figures (a few milliseconds) are the benchmark's.
    assert!(
        pair.worst < Duration::from_millis(500),
        "a round trip took {:?}",
        pair.worst
    );
    assert!(
        slowest_login < Duration::from_millis(500),
        "a login took {slowest_login:?}"
    );
}

/// Twenty of a thousand users each send one 2 KiB packet of `LIST`s and
/// stop reading. The server writes replies out as they pass 64 KiB, so
/// what it holds for each does not grow with how many lines it pipelined:
/// its memory grows by a few megabytes, not by the 7 MB of 409 replies of
/// 17 KB each, per connection (140 MB in all).
#[cfg(target_os = "linux")]
#[test]
fn pipelined_lists_do_not_grow_the_servers_memory() {
    const USERS: usize = 1000;
    const FLOODERS: usize = 20;
    let server = common::spawn_binary(&["--max-connections", "1010", "--write-timeout", "1"]);
    let mut users = common::log_in_many(server.addr, "user", USERS);
    let before = server.status("VmRSS");
    let threads = server.status("Threads");
    let flood = "LIST\n".repeat(409); // 2 045 bytes
    for flooder in &mut users[..FLOODERS] {
        // Small buffers: the flooders' sessions soon block on their writes,
        // which is when a server that keeps a whole read's replies holds
        // the most (and this debug build formats fewer replies).
        common::shrink_receive_buffer(&flooder.writer, 4096);
        flooder.send_raw(flood.as_bytes()); // and never reads
    }
    // Each flooder is dropped once its write has waited the write timeout.
    let dropped = common::poll_until(Duration::from_secs(20), || {
        server.status("Threads") <= threads - FLOODERS as u64
    });
    let peak = server.status("VmHWM");
    let grown_mib = peak.saturating_sub(before) / 1024;
    println!("pipelined LISTs: RSS {before} KiB before, peak {peak} KiB");
    assert!(grown_mib < 32, "the server grew by {grown_mib} MiB");
    assert!(dropped, "the flooders were not dropped");
}

/// A sender held by a recipient that does not read keeps sending `PING`s
/// while its session waits on the recipient's socket, for longer than the
/// idle timeout (a write timeout longer than the idle timeout is allowed).
/// Those lines arrived in time: the sender is not closed as idle, and
/// gets every reply once the recipient is dropped.
#[cfg(target_os = "linux")]
#[test]
fn a_sender_held_by_a_stuck_recipient_is_not_idle() {
    let idle = Duration::from_secs(1);
    let server = start(Config {
        idle_timeout: Some(idle),
        write_timeout: idle * 2,
        ..config()
    });
    let stuck = Client::login(server, "stuck"); // never reads
    common::shrink_receive_buffer(&stuck.writer, 4096);
    let mut sender = Client::login(server, "held");
    let (_, owed) = sender.fill_until_blocked("stuck");
    // Its session is blocked on stuck's socket: these wait in its own.
    let mut pings = 0;
    let started = Instant::now();
    while started.elapsed() < idle * 3 / 2 {
        thread::sleep(idle / 4); // the client's pace, not a synchronisation
        sender.send("PING");
        pings += 1;
    }
    sender.read_owed_replies("stuck", owed);
    for _ in 0..pings {
        sender.expect("OK PING"); // not ERR TIMEOUT
    }
    sender.sync();
    drop(stuck);
}
