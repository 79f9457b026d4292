//! `minichat check`: it passes against our server, and fails, naming the
//! right check, against servers that break one rule on purpose. The faulty
//! servers are our real server behind a small line-rewriting proxy.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::{config, start};
use minichat::Config;
use minichat::tools::check::{self, CheckOptions, Report};
use minichat::tools::remote::Target;

/// Runs the suite in-process against `address`; returns the report and
/// what it printed.
fn check_server(address: SocketAddr, tune: impl FnOnce(&mut CheckOptions)) -> (Report, String) {
    let mut options = CheckOptions {
        target: Target::parse(&address.to_string()).unwrap(),
        wait: Duration::from_secs(1),
        ..CheckOptions::default()
    };
    tune(&mut options);
    let mut out = Vec::new();
    let report = check::run(&options, &mut out).unwrap();
    (report, String::from_utf8(out).unwrap())
}

/// Asserts that the check `name` failed, and printed so.
fn assert_fails(report: &Report, printed: &str, name: &str) {
    assert!(
        report.failure(name).is_some(),
        "{name} did not fail:\n{printed}"
    );
    assert!(
        printed
            .lines()
            .any(|line| line.starts_with(&format!("FAIL {name}: "))),
        "{printed}"
    );
    assert!(!report.all_passed());
}

fn assert_passes(report: &Report, printed: &str, name: &str) {
    assert!(
        printed.lines().any(|line| line == format!("PASS {name}")),
        "{name} did not pass:\n{printed}"
    );
    assert!(report.failure(name).is_none());
}

#[test]
fn our_server_passes_every_check() {
    let (report, printed) = check_server(start(config()), |_| {});
    assert!(report.all_passed(), "{printed}");
    assert!(report.passed() >= 30, "{printed}");
    let last = printed.lines().last().unwrap();
    assert_eq!(last, format!("{} passed, 0 failed", report.passed()));
    assert!(printed.contains("SKIP login-timeout"), "{printed}");
}

#[test]
fn our_server_passes_the_timeout_checks_too() {
    let server = start(Config {
        login_timeout: Some(Duration::from_secs(1)),
        idle_timeout: Some(Duration::from_secs(1)),
        ..config()
    });
    let (report, printed) = check_server(server, |options| {
        options.login_timeout = Some(Duration::from_secs(1));
        options.idle_timeout = Some(Duration::from_secs(1));
    });
    assert!(report.all_passed(), "{printed}");
    assert_passes(&report, &printed, "login-timeout");
    assert_passes(&report, &printed, "idle-timeout");
}

#[test]
fn the_binary_prints_the_summary_and_exits_0_when_all_pass() {
    let server = start(config());
    let output = assert_cmd::Command::cargo_bin("minichat")
        .unwrap()
        .args(["check", &server.to_string()])
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    let last = stdout.lines().last().unwrap();
    let (passed, failed) = last.split_once(" passed, ").unwrap();
    assert!(passed.parse::<usize>().unwrap() >= 30, "{last}");
    assert_eq!(failed, "0 failed");
}

#[test]
fn the_binary_exits_1_when_a_check_fails() {
    let server = start(Config {
        max_connections: 50,
        ..config()
    });
    let output = assert_cmd::Command::cargo_bin("minichat")
        .unwrap()
        .args(["check", &server.to_string(), "--wait", "1"])
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("\nFAIL connection-limit: "), "{stdout}");
    assert!(stdout.ends_with(" passed, 1 failed\n"), "{stdout}");
}

#[test]
fn a_server_that_never_refuses_a_sixth_client_fails_connection_limit() {
    let server = start(Config {
        max_connections: 50,
        ..config()
    });
    let (report, printed) = check_server(server, |_| {});
    assert_fails(&report, &printed, "connection-limit");
    let failure = &report.failure("connection-limit").unwrap().0;
    assert!(
        failure.contains("expected connection 6 to get ERR FULL"),
        "{failure}"
    );
    assert_eq!(report.failed(), 1, "{printed}");
}

#[test]
fn a_server_that_counts_bytes_fails_the_text_length_check() {
    let proxy = faulty(start(config()), Fault::CountsBytes);
    let (report, printed) = check_server(proxy, |_| {});
    assert_fails(&report, &printed, "text-length-counts-characters");
    assert_passes(&report, &printed, "greeting");
    assert_passes(&report, &printed, "send-and-receive");
}

#[test]
fn a_server_that_keeps_names_after_their_users_left_fails_the_release_checks() {
    let upstream = start(Config {
        max_connections: 100,
        ..config()
    });
    let proxy = faulty(upstream, Fault::KeepsNames);
    let (report, printed) = check_server(proxy, |_| {});
    assert_fails(&report, &printed, "name-released-after-quit");
    assert_fails(&report, &printed, "name-released-after-close");
    let failure = &report.failure("name-released-after-quit").unwrap().0;
    assert!(failure.contains("got \"ERR NAME_TAKEN"), "{failure}");
    assert_passes(&report, &printed, "names-case-insensitive");
}

#[test]
fn a_server_that_is_gone_fails_every_check_quickly() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let started = Instant::now();
    let (report, printed) = check_server(address, |_| {});
    assert_eq!(report.passed(), 0, "{printed}");
    assert!(report.failed() >= 30, "{printed}");
    assert!(printed.contains("cannot connect"), "{printed}");
    assert!(started.elapsed() < Duration::from_secs(5), "{printed}");
}

#[test]
fn a_server_that_stops_answering_ends_the_run_quickly() {
    // Accepts connections (the system does, into the backlog) but never
    // says a word.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let started = Instant::now();
    let (report, printed) = check_server(address, |options| {
        options.wait = Duration::from_millis(300);
    });
    assert_eq!(report.passed(), 0, "{printed}");
    assert!(printed.contains("no reply within 0.3 s"), "{printed}");
    assert!(printed.contains("not run: cannot connect"), "{printed}");
    assert!(started.elapsed() < Duration::from_secs(5), "{printed}");
    drop(listener);
}

/// The rule a faulty server breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// Refuses SEND texts over 100 *bytes* (not characters) with TOO_LONG.
    CountsBytes,
    /// Keeps a user's name registered after QUIT or a close: the proxy
    /// answers QUIT itself and never closes its own connection upstream.
    KeepsNames,
}

/// Starts a proxy in front of `upstream` that breaks `fault`; returns its
/// address.
fn faulty(upstream: SocketAddr, fault: Fault) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    thread::spawn(move || {
        for client in listener.incoming().flatten() {
            thread::spawn(move || relay(client, upstream, fault));
        }
    });
    address
}

/// One proxied connection: server lines go to the client as they are;
/// client lines go to the server, unless the fault answers them itself.
fn relay(client: TcpStream, upstream: SocketAddr, fault: Fault) {
    let Ok(server) = TcpStream::connect(upstream) else {
        return;
    };
    let to_client = Arc::new(Mutex::new(client.try_clone().unwrap()));
    let from_server = BufReader::new(server.try_clone().unwrap());
    let writer = Arc::clone(&to_client);
    thread::spawn(move || {
        for line in from_server.split(b'\n') {
            let Ok(mut line) = line else { break };
            line.push(b'\n');
            if writer.lock().unwrap().write_all(&line).is_err() {
                break;
            }
        }
        let _ = writer.lock().unwrap().shutdown(Shutdown::Both);
    });
    let mut to_server = server;
    let answer = |text: &str| {
        let _ = to_client
            .lock()
            .unwrap()
            .write_all(format!("{text}\r\n").as_bytes());
    };
    for line in BufReader::new(client).split(b'\n') {
        let Ok(mut line) = line else { break };
        let text = String::from_utf8_lossy(&line);
        let text = text.strip_suffix('\r').unwrap_or(&text);
        let (verb, rest) = text
            .trim_start_matches(' ')
            .split_once(' ')
            .unwrap_or((text.trim(), ""));
        match fault {
            Fault::CountsBytes if verb.eq_ignore_ascii_case("SEND") => {
                let text = rest
                    .trim_start_matches(' ')
                    .split_once(' ')
                    .map_or("", |(_, t)| t);
                if text.trim_start_matches(' ').len() > 100 {
                    answer("ERR TOO_LONG the text is over 100 bytes");
                    continue;
                }
            }
            Fault::KeepsNames if verb.eq_ignore_ascii_case("QUIT") && rest.trim().is_empty() => {
                answer("OK QUIT");
                break;
            }
            _ => {}
        }
        line.push(b'\n');
        if to_server.write_all(&line).is_err() {
            break;
        }
    }
    let _ = to_client.lock().unwrap().shutdown(Shutdown::Both);
    match fault {
        // Never closed: the name stays registered upstream.
        Fault::KeepsNames => std::mem::forget(to_server),
        Fault::CountsBytes => {
            let _ = to_server.shutdown(Shutdown::Both);
        }
    }
}
