//! One test per scenario of the contract, over real sockets, against a
//! server on an ephemeral port.

mod common;

use std::io::Write;
use std::thread;
use std::time::{Duration, Instant};

use common::{Client, config, connect_when_free, start, start_default};
use minichat::Config;

#[test]
fn two_users_talk() {
    let server = start_default();
    let mut alice = Client::login(server, "alice");
    let mut bob = Client::login(server, "bob");
    alice.send("SEND bob Salut bob !");
    bob.expect("RECEIVE alice Salut bob !");
    alice.expect("OK SEND bob");
    bob.send("send ALICE  salut   alice  ");
    alice.expect("RECEIVE bob salut   alice  ");
    bob.expect("OK SEND alice");
}

#[test]
fn every_command_gets_exactly_one_reply() {
    let server = start_default();
    let mut client = Client::connect(server);
    client.ask(
        "HELP",
        "OK HELP CONNECT <name> | SEND <name> <text> | LIST | PING | HELP | QUIT",
    );
    client.ask("LIST", "OK LIST");
    client.ask("PING", "OK PING");
    client.ask("SEND bob hi", "ERR NOT_CONNECTED ");
    client.ask("CONNECT zoe", "OK CONNECT zoe");
    client.ask("CONNECT zoe", "ERR ALREADY_CONNECTED ");
    client.ask("SEND nobody hi", "ERR NO_SUCH_USER ");
    client.ask("FROB", "ERR UNKNOWN_COMMAND ");
    client.ask("LIST x", "ERR SYNTAX ");
    client.send("QUIT");
    client.expect("OK QUIT");
    client.expect_closed();
}

#[test]
fn list_shows_only_logged_in_users_as_registered() {
    let server = start_default();
    let mut watcher = Client::connect(server);
    watcher.ask("LIST", "OK LIST");
    let _zoe = Client::login(server, "Zoé");
    let _anonymous = Client::connect(server);
    let _bob = Client::login(server, "bob");
    let line = watcher.ask("LIST", "OK LIST ");
    let mut names: Vec<&str> = line["OK LIST ".len()..].split(' ').collect();
    names.sort();
    assert_eq!(names, ["Zoé", "bob"]);
}

#[test]
fn lf_and_crlf_are_accepted_and_blank_lines_ignored() {
    let server = start_default();
    let mut client = Client::connect(server);
    client.send_raw(b"PING\r\n\n\r\n      \r\n   \nping\n");
    client.expect("OK PING");
    client.expect("OK PING");
    client.send("LIST"); // the blank lines produced nothing in between
    client.expect("OK LIST");
}

#[test]
fn sixth_client_is_refused_and_closed() {
    let server = start_default();
    let clients: Vec<Client> = (0..5).map(|_| Client::connect(server)).collect();
    let mut sixth = Client::connect_raw(server);
    sixth.expect_prefix("ERR FULL ");
    sixth.expect_closed();
    drop(clients);
}

#[test]
fn a_one_slot_server_says_so_in_the_singular() {
    let server = start(Config {
        max_connections: 1,
        ..config()
    });
    let _only = Client::connect(server);
    let mut refused = Client::connect_raw(server);
    refused.expect("ERR FULL server full (1 connection), try again later");
    refused.expect_closed();
}

#[test]
fn a_slot_is_reused_after_quit() {
    let server = start(Config {
        max_connections: 2,
        ..config()
    });
    let mut first = Client::login(server, "first");
    let _second = Client::connect(server);
    Client::connect_raw(server).expect_prefix("ERR FULL ");
    first.send("QUIT");
    first.expect("OK QUIT");
    first.expect_closed(); // once closed, the slot and the name are free
    let mut third = Client::connect(server);
    third.ask("CONNECT first", "OK CONNECT first");
}

#[test]
fn after_ok_quit_the_name_and_the_slot_are_free_at_once() {
    let server = start(Config {
        max_connections: 2,
        ..config()
    });
    let _other = Client::connect(server);
    let mut leaving = Client::login(server, "again");
    for _ in 0..200 {
        leaving.send("QUIT");
        leaving.expect("OK QUIT");
        // Without waiting for the close: reading OK QUIT is enough.
        let mut next = Client::connect(server);
        next.ask("CONNECT again", "OK CONNECT again");
        leaving = next;
    }
}

#[test]
fn a_huge_write_timeout_is_as_good_as_none() {
    let server = start(Config {
        write_timeout: Duration::MAX,
        ..config()
    });
    let mut alice = Client::login(server, "alice");
    alice.send("SEND alice hi");
    alice.expect("RECEIVE alice hi");
    alice.expect("OK SEND alice");
}

#[cfg(target_os = "linux")]
#[test]
fn a_slot_and_a_name_are_freed_after_an_abrupt_reset() {
    let server = start(Config {
        max_connections: 2,
        ..config()
    });
    let mut watcher = Client::login(server, "watcher");
    let victim = Client::login(server, "victim");
    Client::connect_raw(server).expect_prefix("ERR FULL ");
    common::reset_on_drop(&victim.writer);
    drop(victim);
    let mut next = connect_when_free(server);
    next.ask("CONNECT victim", "OK CONNECT victim");
    watcher.send("SEND victim still there?");
    next.expect("RECEIVE watcher still there?");
    watcher.expect("OK SEND victim");
}

#[test]
fn names_are_unique_case_insensitively_and_shown_as_registered() {
    let server = start_default();
    let mut alice = Client::login(server, "Alice");
    let mut elodie = Client::login(server, "Élodie");
    let mut other = Client::connect(server);
    other.ask("CONNECT alice", "ERR NAME_TAKEN ");
    other.ask("CONNECT ÉLODIE", "ERR NAME_TAKEN ");
    other.ask("CONNECT b*b", "ERR BAD_NAME ");
    other.ask("CONNECT abcdefghijklmnopq", "ERR BAD_NAME ");
    other.ask("CONNECT al ice", "ERR SYNTAX ");
    alice.send("SEND éLODIE bonjour");
    elodie.expect("RECEIVE Alice bonjour");
    alice.expect("OK SEND Élodie");
    alice.ask("SEND b*b hi", "ERR NO_SUCH_USER ");
}

#[test]
fn a_name_is_released_when_its_connection_ends() {
    let server = start_default();
    Client::login(server, "alice").hang_up();
    Client::login(server, "ALICE");
}

#[test]
fn texts_count_characters_not_bytes() {
    let server = start_default();
    let mut alice = Client::login(server, "alice");
    let mut bob = Client::login(server, "bob");
    for unit in ["a", "é", "😀", "日"] {
        let text = unit.repeat(100);
        alice.send(&format!("SEND bob {text}"));
        bob.expect(&format!("RECEIVE alice {text}"));
        alice.expect("OK SEND bob");
        let text = unit.repeat(101);
        alice.ask(&format!("SEND bob {text}"), "ERR TOO_LONG ");
    }
    bob.sync(); // nothing else reached bob
}

#[test]
fn control_and_bidi_characters_are_refused_and_nothing_is_relayed() {
    let server = start_default();
    let mut mallory = Client::login(server, "mallory");
    let mut bob = Client::login(server, "bob");
    for text in [
        "hi\rRECEIVE alice hi",
        "\u{1b}[2J",
        "a\u{202e}b",
        "x\u{2066}y",
        "nul\0",
    ] {
        mallory.ask(&format!("SEND bob {text}"), "ERR BAD_TEXT ");
    }
    bob.sync();
    mallory.send("SEND bob RECEIVE alice trust me");
    bob.expect("RECEIVE mallory RECEIVE alice trust me");
    mallory.expect("OK SEND bob");
}

#[test]
fn invalid_utf8_is_bad_text() {
    let server = start_default();
    let mut client = Client::login(server, "alice");
    client.send_raw(b"SEND alice caf\xe9\n");
    client.expect_prefix("ERR BAD_TEXT ");
    client.send_raw(b"\xff\xfe\n");
    client.expect_prefix("ERR BAD_TEXT ");
    client.sync();
}

#[test]
fn lines_over_512_bytes_are_refused_and_the_connection_stays_open() {
    let server = start_default();
    let mut client = Client::login(server, "alice");
    let at_limit = format!("SEND alice {}", "x".repeat(512 - "SEND alice ".len()));
    client.send(&format!("{at_limit}\r")); // the CR does not count
    client.expect_prefix("ERR TOO_LONG the text"); // 501 characters: the text's limit, not the line's
    client.send(&format!("{at_limit}x"));
    client.expect_prefix("ERR TOO_LONG the line");
    // TOO_LONG for the line comes before BAD_TEXT for invalid UTF-8.
    let mut bad = vec![0xff; 600];
    bad.push(b'\n');
    client.send_raw(&bad);
    client.expect_prefix("ERR TOO_LONG the line");
    client.sync();
}

#[test]
fn a_50_mb_line_is_discarded_while_others_keep_talking() {
    let server = start_default();
    let mut flooder = Client::login(server, "flooder");
    let mut alice = Client::login(server, "alice");
    let mut bob = Client::login(server, "bob");
    let mut writer = flooder.writer.try_clone().unwrap();
    let flood = thread::spawn(move || {
        let chunk = vec![b'A'; 1 << 20];
        for _ in 0..50 {
            writer.write_all(&chunk).unwrap();
        }
        writer.write_all(b"\n").unwrap();
    });
    for i in 0..100 {
        alice.send(&format!("SEND bob message {i}"));
        bob.expect(&format!("RECEIVE alice message {i}"));
        alice.expect("OK SEND bob");
    }
    flood.join().unwrap();
    flooder.expect_prefix("ERR TOO_LONG ");
    flooder.send("SEND bob still here");
    bob.expect("RECEIVE flooder still here");
    flooder.expect("OK SEND bob");
}

#[test]
fn sending_to_oneself_delivers_before_the_ok() {
    let server = start_default();
    let mut narcissus = Client::login(server, "Narcisse");
    narcissus.send("SEND narcisse miroir");
    narcissus.expect("RECEIVE Narcisse miroir");
    narcissus.expect("OK SEND Narcisse");
    // Pipelined, the message still comes in its place among the replies.
    narcissus.send_raw(b"PING\nSEND Narcisse encore\nLIST\n");
    narcissus.expect("OK PING");
    narcissus.expect("RECEIVE Narcisse encore");
    narcissus.expect("OK SEND Narcisse");
    narcissus.expect("OK LIST Narcisse");
}

#[test]
fn a_thousand_pipelined_messages_arrive_in_order() {
    let server = start_default();
    let mut alice = Client::login(server, "alice");
    let mut bob = Client::login(server, "bob");
    let batch: String = (0..1000)
        .map(|i| format!("SEND bob message number {i}\n"))
        .collect();
    alice.send_raw(batch.as_bytes());
    for i in 0..1000 {
        bob.expect(&format!("RECEIVE alice message number {i}"));
    }
    for _ in 0..1000 {
        alice.expect("OK SEND bob");
    }
}

fn a_recipient_that_never_reads_is_dropped_and_its_name_freed() {
    let server = start(Config {
        write_timeout: Duration::from_secs(1),
        ..config()
    });
    let _sleeper = Client::login(server, "sleeper"); // never reads
    let mut flooder = Client::login(server, "flooder");
    let mut alice = Client::login(server, "alice");
    let mut bob = Client::login(server, "bob");
    let text = "z".repeat(100);
    let started = Instant::now();
    loop {
        flooder.send(&format!("SEND sleeper {text}"));
        match flooder.line() {
            line if line == "OK SEND sleeper" => {}
            line if line.starts_with("ERR NO_SUCH_USER ") => break,
            line => panic!("unexpected reply {line:?}"),
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the sleeper was never dropped"
        );
    }
    // The others kept talking and still do; the name is free.
    let before = Instant::now();
    alice.send("SEND bob still alive");
    bob.expect("RECEIVE alice still alive");
    alice.expect("OK SEND bob");
    assert!(before.elapsed() < Duration::from_secs(2));
    let line = bob.ask("LIST", "OK LIST");
    assert!(!line.contains("sleeper"), "{line}");
    Client::login(server, "sleeper");
}

fn a_client_that_does_not_log_in_times_out() {
    let server = start(Config {
        login_timeout: Some(Duration::from_secs(1)),
        ..config()
    });
    let mut client = Client::connect(server);
    let started = Instant::now();
    client.send("PING"); // lines do not stop the login clock
    client.expect("OK PING");
    client.expect_prefix("ERR TIMEOUT ");
    client.expect_closed();
    assert!(started.elapsed() >= Duration::from_millis(900));
}

fn a_silent_client_times_out() {
    let server = start(Config {
        idle_timeout: Some(Duration::from_secs(1)),
        ..config()
    });
    let mut client = Client::login(server, "quiet");
    let started = Instant::now();
    client.expect_prefix("ERR TIMEOUT ");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(4),
        "{waited:?}"
    );
    Client::login(server, "quiet"); // the name was free as soon as ERR TIMEOUT came
    client.expect_closed();
}

#[test]
fn quit_says_goodbye_and_closes() {
    let server = start_default();
    let mut client = Client::login(server, "alice");
    client.send("quit");
    client.expect("OK QUIT");
    client.expect_closed();
}

fn ping_restarts_the_idle_clock() {
    let idle = Duration::from_secs(1);
    let server = start(Config {
        idle_timeout: Some(idle),
        ..config()
    });
    let mut client = Client::login(server, "pinger");
    let started = Instant::now();
    // Longer than the idle timeout, a PING every quarter of it.
    while started.elapsed() < idle * 3 / 2 {
        thread::sleep(idle / 4); // pacing the client, not synchronising
        client.sync();
    }
    client.expect_prefix("ERR TIMEOUT ");
}

/// The scenarios that wait for a timeout, side by side: one after another
/// they would add up on 2 cores.
#[test]
fn the_timeouts_side_by_side() {
    common::side_by_side!(
        a_recipient_that_never_reads_is_dropped_and_its_name_freed,
        a_client_that_does_not_log_in_times_out,
        a_silent_client_times_out,
        ping_restarts_the_idle_clock,
    );
}
