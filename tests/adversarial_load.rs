//! Adversarial tests, part 3: load (a recipient that never reads, many
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

use common::{Client, Pair, config, start};
use minichat::{Config, Server};

/// A 100-character text, so each RECEIVE fills the sleeper's buffers fast.
fn long_text() -> String {
    "z".repeat(100)
}

/// Floods `target` with pipelined `SEND`s from `flooder` until the server
/// answers `ERR NO_SUCH_USER` (the target was dropped for a write timeout).
/// Returns how many were acknowledged with `OK SEND`. Never more than
/// `WINDOW` unanswered lines, so the flooder's own socket never fills.
fn flood_until_dropped(mut flooder: Client, target: &'static str, limit: Duration) -> usize {
    const CHUNK: usize = 50;
    const WINDOW: usize = 2000;
    let dropped = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicUsize::new(0));
    let mut writer = flooder.writer.try_clone().unwrap();
    let (stop, acked) = (Arc::clone(&dropped), Arc::clone(&answered));
    let sender = thread::spawn(move || {
        let line = format!("SEND {target} {}\n", long_text()).repeat(CHUNK);
        let started = Instant::now();
        let mut sent = 0;
        while !stop.load(Ordering::Acquire) {
            assert!(started.elapsed() < limit, "{target} was never dropped");
            if sent - acked.load(Ordering::Acquire) < WINDOW {
                writer.write_all(line.as_bytes()).unwrap();
                sent += CHUNK;
            } else {
                thread::yield_now();
            }
        }
        sent
    });
    let mut ok = 0;
    loop {
        let reply = flooder.line();
        answered.fetch_add(1, Ordering::Release);
        if reply.starts_with("ERR NO_SUCH_USER ") {
            dropped.store(true, Ordering::Release);
            break;
        }
        assert_eq!(reply, format!("OK SEND {target}"));
        ok += 1;
    }
    let sent = sender.join().unwrap();
    // Every line still unanswered is refused: the target is gone.
    for _ in answered.load(Ordering::Acquire)..sent {
        flooder.expect_prefix("ERR NO_SUCH_USER ");
    }
    flooder.sync();
    ok
}

/// A recipient that never reads, flooded by another client: the others keep
/// talking, stalled for no longer than the write timeout; the stuck client
/// is dropped and its name released; the flooder gets `ERR NO_SUCH_USER`.
#[test]
fn a_never_reading_recipient_stalls_the_others_at_most_the_write_timeout() {
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
        thread::spawn(move || flood_until_dropped(flooder, "sleeper", Duration::from_secs(60)));
    let acknowledged = pair.talk_while(attack, Duration::from_secs(60));
    let flood_time = started.elapsed();
    println!(
        "never-reading recipient: dropped after {acknowledged} messages in {flood_time:?}; \
         {} round trips meanwhile, worst {:?} (write timeout {write_timeout:?})",
        pair.exchanges, pair.worst
    );
    let margin = Duration::from_millis(500);
    assert!(
        pair.worst < write_timeout + margin,
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
/// it; the others are stalled no longer than that.
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
    assert!(pair.worst < write_timeout + Duration::from_millis(500));
    let mut watcher = Client::connect(server);
    let list = watcher.ask("LIST", "OK LIST");
    assert!(!list.contains("deaf"), "{list}");
    drop(deaf);
    pair.still_talking();
}

/// A client dropped for a write timeout does not keep speaking under the
/// name it lost. Its session may still hold a line it read just before the
/// drop (it was waiting for the registry lock, held by the writer that is
/// dropping it); that line must not be carried out, since by then the name
/// is released and may already belong to someone else.
///
/// The race is set up on purpose: the victim's receive buffer is shrunk so
/// its window stays shut; the flooder fills it until the server blocks in a
/// write to the victim (a reply is slow); then the victim sends a line and a
/// newcomer asks for its name. When the flooder then gets `ERR
/// NO_SUCH_USER`, the victim was dropped with its line in hand: that attempt
/// is conclusive. When the write went through after all (the victim's
/// segment reopened its window), the line was rightly relayed: try again.
#[cfg(target_os = "linux")]
#[test]
fn a_dropped_client_cannot_speak_under_its_released_name() {
    const ATTEMPTS: usize = 8;
    let server = start(Config {
        write_timeout: Duration::from_secs(1),
        max_connections: 8,
        ..config()
    });
    let mut pair = Pair::login(server, "dr");
    let mut flooder = Client::login(server, "flooder");
    let text = long_text();
    let mut conclusive = 0;
    for attempt in 0..ATTEMPTS {
        let name = format!("bob{attempt}");
        let mut victim = Client::login(server, &name); // never reads
        common::shrink_receive_buffer(&victim.writer, 2048);
        set_read_timeout(&flooder, Duration::from_millis(300));
        let started = Instant::now();
        loop {
            assert!(started.elapsed() < Duration::from_secs(30), "never filled");
            flooder.send(&format!("SEND {name} {text}"));
            let mut line = String::new();
            match std::io::BufRead::read_line(&mut flooder.reader, &mut line) {
                Ok(_) if line == format!("OK SEND {name}\r\n") => continue,
                Ok(_) => panic!("unexpected {line:?}"),
                Err(_) => break, // slow: the write to the victim is under way
            }
        }
        set_read_timeout(&flooder, common::READ_TIMEOUT);
        victim.send(&format!("SEND dra I am {name}, trust me"));
        let mut newcomer = Client::connect(server);
        newcomer.send(&format!("CONNECT {name}"));
        let reply = flooder.line();
        if reply == format!("OK SEND {name}") {
            println!("attempt {attempt}: the write to {name} went through");
            pair.expect_on_a(&format!("RECEIVE {name} I am {name}, trust me"));
            let _ = newcomer.line(); // NAME_TAKEN or OK CONNECT, by timing
            continue;
        }
        assert!(reply.starts_with("ERR NO_SUCH_USER "), "{reply}");
        newcomer.expect(&format!("OK CONNECT {name}"));
        // dra never sees the dropped victim's line: its next lines are the
        // pair's own.
        pair.still_talking();
        println!("attempt {attempt}: conclusive");
        conclusive += 1;
        if conclusive == 1 {
            break;
        }
    }
    assert!(conclusive > 0, "no conclusive attempt in {ATTEMPTS}");
    flooder.sync();
}

fn set_read_timeout(client: &Client, timeout: Duration) {
    client
        .reader
        .get_ref()
        .set_read_timeout(Some(timeout))
        .unwrap();
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
    let server = match Server::bind(Config {
        bind: IpAddr::V6(Ipv6Addr::LOCALHOST),
        ..config()
    }) {
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
