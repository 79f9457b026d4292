//! The operator's log never stops or slows the server, on the real binary:
//! with its stderr closed, or full because nobody reads it, the server
//! keeps serving every client, drops the log lines it cannot write, and says
//! how many once it can write again.

mod common;

use std::io::Read;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use common::{Client, Pair, spawn_binary_with_stderr};

/// Stderr closed after the first line (`minichat 2>&1 | head -1`, a log
/// reader that went away): every later log line fails to be written, and
/// the server does not care: hundreds of logins and exchanges later, it
/// still serves, and has not exited.
#[test]
fn a_closed_stderr_does_not_stop_the_server() {
    let (mut server, stderr) = spawn_binary_with_stderr(&["--verbose"]);
    drop(stderr);
    let mut pair = Pair::login(server.addr, "cl");
    for i in 0..300 {
        pair.exchange();
        let mut visitor = Client::login(server.addr, &format!("visitor{i}"));
        visitor.ask("QUIT", "OK QUIT");
    }
    server.assert_alive();
    pair.still_talking();
}

/// A stderr pipe nobody reads (a paused terminal, a pager left alone): with
/// `--verbose`, thousands of exchanges log far more than a 64 KiB pipe
/// holds, and no round trip waits on the log. Once the pipe is read again,
/// the log says how many lines it dropped.
#[test]
fn an_unread_stderr_slows_nobody_and_the_drops_are_reported() {
    let (mut server, mut stderr) = spawn_binary_with_stderr(&["--verbose"]);
    let mut pair = Pair::login(server.addr, "pa");
    // Each exchange logs six lines of about 80 bytes: 3 000 of them are
    // over 1 MB of log.
    for _ in 0..3000 {
        pair.exchange();
    }
    assert!(
        pair.worst < Duration::from_secs(1),
        "a round trip took {:?}",
        pair.worst
    );
    server.assert_alive();
    // Read the log again, until the notice of dropped lines.
    let (notice, found) = mpsc::channel();
    thread::spawn(move || {
        let mut log = Vec::new();
        let mut chunk = [0; 64 * 1024];
        while let Ok(n @ 1..) = stderr.read(&mut chunk) {
            log.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&log);
            let notice_line =
                |l: &&str| l.ends_with(" log lines dropped") || l.ends_with(" log line dropped");
            if let Some(line) = text.lines().find(notice_line) {
                let _ = notice.send(line.to_owned());
                return;
            }
        }
    });
    let line = found
        .recv_timeout(common::READ_TIMEOUT)
        .expect("no \"N log lines dropped\" in the log");
    let dropped: u64 = line
        .split(' ')
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{line:?}"));
    assert!(dropped > 0, "{line}");
    pair.still_talking();
}
