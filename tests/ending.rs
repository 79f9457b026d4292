//! The end of a connection, over real sockets. After `QUIT` or
//! `ERR TIMEOUT`, every line owed to the client reaches it before a clean end
//! of stream, whatever it sends afterwards and whenever it sends it; its name
//! and its slot are free as soon as it has read the last line; and the
//! connection ends within the write timeout even if the client keeps
//! sending.

mod common;

use std::io::Write;
use std::thread;
use std::time::{Duration, Instant};

use common::{Client, config, connect_when_free, start};
use minichat::Config;

/// Pipelined `PING`s then `QUIT`, from a client that reads late (a small
/// receive window), then one more line 50, 200 or 500 ms later, while the
/// replies still wait in the server's send queue: every `OK PING`, then
/// `OK QUIT`, then a clean end of stream, never a reset. And the name can be
/// taken again at once.
#[cfg(target_os = "linux")]
fn a_late_line_after_quit_loses_no_reply_and_causes_no_reset() {
    const PINGS: usize = 5000;
    let server = start(config());
    let mut client = Client::login(server, "late");
    for delay in [50, 200, 500] {
        common::shrink_receive_buffer(&client.writer, 8192);
        let mut batch = "PING\n".repeat(PINGS);
        batch.push_str("QUIT\n");
        client.send_raw(batch.as_bytes());
        // The attack's timing, not a synchronisation: the late line comes
        // while the replies are still queued.
        thread::sleep(Duration::from_millis(delay));
        client.send("PING");
        for i in 0..PINGS {
            let line = client.line();
            assert_eq!(line, "OK PING", "reply {i}, late line after {delay} ms");
        }
        client.expect("OK QUIT");
        // The name is free once OK QUIT is read, before the end of stream.
        let next = Client::login(server, "late");
        client.expect_clean_end();
        client = next;
    }
}

/// The same after `ERR TIMEOUT`: a `RECEIVE` already acknowledged to its
/// sender and the replies to pipelined lines come first, then
/// `ERR TIMEOUT`, then a clean end of stream, though the client sends more
/// lines after the timeout.
#[cfg(target_os = "linux")]
fn late_lines_after_err_timeout_lose_no_reply() {
    const PINGS: usize = 500;
    let idle = Duration::from_secs(1);
    let server = start(Config {
        idle_timeout: Some(idle),
        ..config()
    });
    let mut sleepy = Client::login(server, "sleepy");
    common::shrink_receive_buffer(&sleepy.writer, 8192);
    let mut teller = Client::login(server, "teller");
    teller.ask("SEND sleepy wake up", "OK SEND sleepy");
    sleepy.send_raw("PING\n".repeat(PINGS).as_bytes());
    let last_line = Instant::now();
    // Late lines, after the idle timeout has fired (the attack's timing).
    for after in [1200, 1500] {
        let at = last_line + Duration::from_millis(after);
        thread::sleep(at.saturating_duration_since(Instant::now()));
        sleepy.send("PING");
    }
    sleepy.expect("RECEIVE teller wake up");
    for _ in 0..PINGS {
        sleepy.expect("OK PING");
    }
    sleepy.expect_prefix("ERR TIMEOUT ");
    Client::login(server, "sleepy"); // free at once
    sleepy.expect_clean_end();
}

/// `QUIT`, then junk that never stops: the slot and the name are free as
/// soon as `OK QUIT` is read, and the server ends the connection within the
/// write timeout (its writes then fail), however long the client goes on.
#[test]
fn junk_after_quit_holds_nothing_and_ends_within_the_write_timeout() {
    let write_timeout = Duration::from_secs(1);
    let server = start(Config {
        max_connections: 1,
        write_timeout,
        ..config()
    });
    let mut client = Client::login(server, "junk");
    let mut writer = client.writer.try_clone().unwrap();
    let quit = Instant::now();
    let junk = thread::spawn(move || {
        let junk = "PING\nSEND junk x\nQUIT\n".repeat(50);
        writer.write_all(b"QUIT\n").unwrap();
        while writer.write_all(junk.as_bytes()).is_ok() {
            assert!(quit.elapsed() < Duration::from_secs(30), "never ended");
        }
        quit.elapsed()
    });
    client.expect("OK QUIT");
    // A slot is free at once: the limit is 1, and no retry.
    let mut next = Client::connect(server);
    next.ask("CONNECT junk", "OK CONNECT junk");
    client.expect_closed(); // the end of stream came right after OK QUIT
    let ended = junk.join().unwrap();
    assert!(
        ended < write_timeout + Duration::from_secs(1),
        "the connection ended {ended:?} after QUIT"
    );
}

/// Lingering threads are bounded: at most 32 connections (or
/// `--max-connections`, if more) linger without a slot. Past that, a
/// lingering connection keeps its slot (it is still open), for at most the
/// write timeout.
#[test]
fn past_the_lingering_bound_a_lingering_connection_keeps_its_slot() {
    const LINGER_PLACES: usize = 32;
    let write_timeout = Duration::from_secs(1);
    let server = start(Config {
        max_connections: 1,
        write_timeout,
        ..config()
    });
    // Leavers that keep their connections open: each lingers. With one
    // slot, each can come in only because the one before freed it.
    let leavers: Vec<Client> = (0..LINGER_PLACES)
        .map(|_| {
            let mut leaver = Client::connect(server);
            leaver.ask("QUIT", "OK QUIT");
            leaver
        })
        .collect();
    // No lingering place left: this one lingers in its slot.
    let mut last = Client::connect(server);
    last.ask("QUIT", "OK QUIT");
    let quit = Instant::now();
    Client::connect_raw(server).expect_prefix("ERR FULL ");
    // Once a lingering connection ends (within the write timeout), there
    // is room again.
    let mut next = connect_when_free(server);
    let waited = quit.elapsed();
    assert!(
        waited < write_timeout + Duration::from_secs(1),
        "{waited:?}"
    );
    next.ask("CONNECT next", "OK CONNECT next");
    drop((leavers, last));
}

/// A client shuts down its write side (as `nc -N` does once its input
/// ends) while another user's messages to it are blocked half-way through
/// a line, its buffers full. Its end of stream must close the connection
/// without cutting that line: once it reads again, it gets only whole
/// lines, then the end of stream; and the sender gets `OK SEND` for
/// exactly the messages the client read, and `ERR NO_SUCH_USER` for the
/// others. Six rounds, each with a write blocked at some other byte.
/// (Closing without the write lock fails a round in about one run of four:
/// a `RECEIVE` cut in the middle, then the end of stream.)
#[cfg(target_os = "linux")]
fn a_half_closing_client_gets_whole_lines_and_its_sender_exact_replies() {
    let server = start(config());
    for round in 0..6 {
        let target = format!("half{round}");
        let mut client = Client::login(server, &target);
        let mut sender = Client::login(server, &format!("sender{round}"));
        let (acknowledged, owed) = sender.fill_until_blocked(&target);
        client.writer.shutdown(std::net::Shutdown::Write).unwrap();
        // The attack's timing, not a synchronisation: the server sees the
        // end of stream while its write to the client is blocked.
        thread::sleep(Duration::from_millis(50));
        let mut read = Vec::new();
        std::io::Read::read_to_end(&mut client.reader, &mut read).expect("a clean end");
        let read = String::from_utf8(read).expect("UTF-8");
        let tail = &read[read.len().saturating_sub(60)..];
        assert!(
            read.ends_with("\r\n"),
            "round {round}: a cut line: {tail:?}"
        );
        let line = format!("RECEIVE sender{round} {}", "z".repeat(100));
        let received = read
            .split_terminator("\r\n")
            .inspect(|l| assert_eq!(*l, line))
            .count();
        let written = sender.read_owed_replies(&target, owed);
        assert_eq!(
            acknowledged + written,
            received,
            "round {round}: {} OK SEND for {received} lines read",
            acknowledged + written
        );
    }
}

/// Every timeout set to the largest number of seconds the command line
/// takes: no deadline overflows. The end of a connection still delivers
/// every reply, then `OK QUIT`, then a clean end of stream, however late
/// a line comes after `QUIT`; nothing times out meanwhile.
#[cfg(target_os = "linux")]
#[test]
fn the_largest_timeouts_keep_every_guarantee() {
    const PINGS: usize = 5000;
    let huge = Duration::from_secs(u64::MAX);
    let server = start(Config {
        login_timeout: Some(huge),
        idle_timeout: Some(huge),
        write_timeout: huge,
        ..config()
    });
    let mut waiting = Client::connect(server); // not logged in, not timed out
    let mut client = Client::login(server, "forever");
    common::shrink_receive_buffer(&client.writer, 8192);
    let mut batch = "PING\n".repeat(PINGS);
    batch.push_str("QUIT\n");
    client.send_raw(batch.as_bytes());
    // The attack's timing, not a synchronisation: the late line comes
    // while the replies are still queued.
    thread::sleep(Duration::from_millis(100));
    client.send("PING");
    for i in 0..PINGS {
        assert_eq!(client.line(), "OK PING", "reply {i}");
    }
    client.expect("OK QUIT");
    client.expect_clean_end();
    waiting.sync();
    waiting.ask("CONNECT forever", "OK CONNECT forever");
}

/// After `QUIT`, a client that keeps sending and reads its replies slowly
/// (100 KB a second): the replies take longer than the write timeout to
/// reach it. The server lingers while they are on their way, so every
/// `OK PING`, then `OK QUIT`, then a clean end of stream arrive; a close at
/// the write timeout, with the client's junk unread, reset the connection
/// and threw the rest away.
#[cfg(target_os = "linux")]
fn a_slow_reader_that_keeps_sending_after_quit_gets_every_reply() {
    const PINGS: usize = 40_000;
    let server = start(Config {
        write_timeout: Duration::from_secs(1),
        ..config()
    });
    let client = Client::login(server, "slow");
    let mut stream = client.writer.try_clone().unwrap();
    let mut batch = "PING\n".repeat(PINGS);
    batch.push_str("QUIT\n");
    stream.write_all(batch.as_bytes()).unwrap();
    let mut writer = client.writer.try_clone().unwrap();
    let junk = thread::spawn(move || {
        // The attack's pace: a line every 10 ms until the server closes.
        while writer.write_all(b"PING\n").is_ok() {
            thread::sleep(Duration::from_millis(10));
        }
    });
    let mut read = Vec::new();
    let mut chunk = [0; 4096];
    loop {
        match std::io::Read::read(&mut stream, &mut chunk) {
            Ok(0) => break,
            Ok(n) => read.extend_from_slice(&chunk[..n]),
            Err(e) => panic!("no clean end after {} bytes: {e}", read.len()),
        }
        thread::sleep(Duration::from_millis(20)); // reading at 200 KB/s
    }
    let expected = format!("{}OK QUIT\r\n", "OK PING\r\n".repeat(PINGS));
    let tail = String::from_utf8_lossy(&read[read.len().saturating_sub(20)..]).into_owned();
    assert!(
        read == expected.as_bytes(),
        "{} bytes of {}, ending {tail:?}",
        read.len(),
        expected.len()
    );
    drop(client);
    junk.join().unwrap();
}

/// The ends that wait (for late lines, for a write to unblock), side by
/// side: one after another they would add up on 2 cores.
#[cfg(target_os = "linux")]
#[test]
fn the_waiting_ends_side_by_side() {
    common::side_by_side!(
        a_late_line_after_quit_loses_no_reply_and_causes_no_reset,
        late_lines_after_err_timeout_lose_no_reply,
        a_half_closing_client_gets_whole_lines_and_its_sender_exact_replies,
        a_slow_reader_that_keeps_sending_after_quit_gets_every_reply,
    );
}
