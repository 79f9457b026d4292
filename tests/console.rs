//! The operator's console, on the real binary: commands on the server's
//! standard input, answers on its standard output, the log on stderr.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, ChildStdout, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread;

use common::{Client, Pair, READ_TIMEOUT};

/// A server run with its console on a pipe.
struct Operated {
    addr: SocketAddr,
    child: Child,
    console: Option<ChildStdin>,
    answers: Receiver<String>,
    log: Receiver<String>,
}

/// Reads `reader`'s lines into a channel, on a thread of its own.
fn lines_of(reader: impl BufRead + Send + 'static) -> Receiver<String> {
    let (lines, received) = mpsc::channel();
    thread::spawn(move || {
        for line in reader.lines() {
            let Ok(line) = line else { return };
            if lines.send(line).is_err() {
                return;
            }
        }
    });
    received
}

impl Operated {
    fn start(args: &[&str]) -> Operated {
        Operated::start_with_console(args, Stdio::piped())
    }

    /// Starts the server with `console` as its standard input.
    fn start_with_console(args: &[&str], console: Stdio) -> Operated {
        let (mut child, addr, stderr) = common::start_binary(args, console, Stdio::piped());
        let stdout: ChildStdout = child.stdout.take().unwrap();
        Operated {
            addr,
            console: child.stdin.take(),
            answers: lines_of(BufReader::new(stdout)),
            log: lines_of(stderr),
            child,
        }
    }

    /// Types `command` on the console.
    fn type_line(&mut self, command: &str) {
        let console = self.console.as_mut().unwrap();
        console
            .write_all(format!("{command}\n").as_bytes())
            .unwrap();
        console.flush().unwrap();
    }

    /// The next line the console prints.
    fn answer(&self) -> String {
        self.answers
            .recv_timeout(READ_TIMEOUT)
            .expect("an answer from the console")
    }

    /// Types `command` and returns the console's answer, up to and
    /// including the line that satisfies `last`.
    fn ask(&mut self, command: &str, last: impl Fn(&str) -> bool) -> Vec<String> {
        self.type_line(command);
        let mut lines = Vec::new();
        loop {
            let line = self.answer();
            let done = last(&line);
            lines.push(line);
            if done {
                return lines;
            }
        }
    }

    /// The next line of the log.
    fn next_log_line(&self) -> String {
        self.log.recv_timeout(READ_TIMEOUT).expect("a log line")
    }

    /// Waits for a log line containing `text`.
    fn logged(&self, text: &str) -> String {
        loop {
            let line = self
                .log
                .recv_timeout(READ_TIMEOUT)
                .unwrap_or_else(|_| panic!("no log line with {text:?}"));
            if line.contains(text) {
                return line;
            }
        }
    }
}

impl Drop for Operated {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The address the server sees for `client`.
fn address_of(client: &Client) -> String {
    client.writer.local_addr().unwrap().to_string()
}

#[test]
fn list_shows_every_open_connection() {
    let mut server = Operated::start(&[]);
    let alice = Client::login(server.addr, "alice");
    let anonymous = Client::connect(server.addr);
    let lines = server.ask("list", |line| line.contains("open (max 5)"));
    assert_eq!(lines.len(), 3, "{lines:#?}");
    assert_eq!(lines[2], "2 connections open (max 5)");
    let row = |client: &Client| {
        let address = address_of(client);
        lines
            .iter()
            .find(|line| line.starts_with(&address))
            .unwrap_or_else(|| panic!("{address} not in {lines:#?}"))
            .split_whitespace()
            .map(str::to_owned)
            .collect::<Vec<String>>()
    };
    // ADDRESS NAME idle N s connected N s
    let alice_row = row(&alice);
    assert_eq!(alice_row[1], "alice");
    assert_eq!(alice_row[2..4], ["idle".to_owned(), "0".to_owned()]);
    assert_eq!(alice_row[5..7], ["connected".to_owned(), "0".to_owned()]);
    assert_eq!(row(&anonymous)[1], "-");
    drop((alice, anonymous));
}

/// A kicked client sees its connection close; when the console answers,
/// its slot and its name are free, and the log says who kicked whom.
#[test]
fn kick_by_name_frees_the_slot_and_the_name_at_once() {
    let mut server = Operated::start(&["--max-connections", "2"]);
    let mut alice = Client::login(server.addr, "Alice");
    let mut bob = Client::login(server.addr, "bob");
    let address = address_of(&alice);
    let answer = server.ask("kick ALICE", |_| true);
    assert_eq!(answer, [format!("kicked Alice ({address})")]);
    alice.expect_closed();
    // Free at once: no retry, though the limit is 2.
    let mut again = Client::login(server.addr, "alice");
    server.logged(&format!("Alice ({address}) kicked by the console"));
    bob.ask("SEND alice back?", "OK SEND alice");
    again.expect("RECEIVE bob back?");
}

#[test]
fn kick_by_address_closes_a_connection_that_has_no_name() {
    let mut server = Operated::start(&["--max-connections", "1"]);
    let mut squatter = Client::connect(server.addr);
    let address = address_of(&squatter);
    Client::connect_raw(server.addr).expect_prefix("ERR FULL ");
    let answer = server.ask(&format!("kick {address}"), |_| true);
    assert_eq!(answer, [format!("kicked {address}")]);
    squatter.expect_closed();
    Client::login(server.addr, "newcomer");
}

#[test]
fn help_unknown_commands_and_unknown_names_get_an_answer() {
    let mut server = Operated::start(&[]);
    let help = server.ask("help", |_| true);
    assert!(help[0].starts_with("commands: list"), "{help:?}");
    let unknown = server.ask("frob", |_| true);
    assert!(
        unknown[0].starts_with("unknown command \"frob\""),
        "{unknown:?}"
    );
    let usage = server.ask("kick", |_| true);
    assert_eq!(
        usage,
        ["usage: kick NAME or kick ADDRESS (list shows both), to close that connection"]
    );
    let usage = server.ask("list all", |_| true);
    assert_eq!(usage, ["usage: list (it takes no argument)"]);
    let nobody = server.ask("kick nobody", |_| true);
    assert!(
        nobody[0].starts_with("no open connection named \"nobody\""),
        "{nobody:?}"
    );
    let empty = server.ask("LIST", |line| line.contains("open (max 5)"));
    assert_eq!(empty, ["no connection open (max 5)"]);
}

/// The end of the console's input (a server started in the background, or
/// with `< /dev/null`) ends the console, and nothing else.
#[test]
fn the_end_of_the_console_input_ends_nothing_else() {
    let mut server = Operated::start(&[]);
    drop(server.console.take());
    let mut pair = Pair::login(server.addr, "eo");
    pair.still_talking();
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "the server exited"
    );
}

/// On a terminal, the end of the console's input (Ctrl-D) is one log line,
/// and nothing else ends. Ctrl-D is typed before the server starts, so that
/// the console ends as early as it can: its line still comes after the
/// first one, which scripts read (`start_with_console` checks that one).
#[cfg(target_os = "linux")]
#[test]
fn on_a_terminal_the_end_of_the_console_is_logged_after_the_first_line() {
    use common::terminal::{CTRL_D, Terminal};
    let (mut terminal, console) = Terminal::open();
    terminal.type_keys(CTRL_D);
    let mut server = Operated::start_with_console(&[], console);
    let closed = server.next_log_line();
    assert!(
        closed.ends_with(" console closed (end of input); the server goes on, Ctrl-C stops it"),
        "{closed:?}"
    );
    let mut pair = Pair::login(server.addr, "tty");
    pair.still_talking();
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "the server exited"
    );
}

/// `minichat connect` ends as soon as the server closes its connection,
/// though its input (a pipe that a script keeps open) has not ended.
#[test]
fn a_kicked_minichat_connect_ends_though_its_input_stays_open() {
    let mut server = Operated::start(&[]);
    let mut client = common::spawn_connect(server.addr, &[], Stdio::piped());
    let mut input = client.stdin.take().unwrap();
    input.write_all(b"CONNECT ear\n").unwrap();
    // Logged in once the client shows it (the server's log says so a
    // little before it writes OK CONNECT).
    let shown = lines_of(BufReader::new(client.stdout.take().unwrap()));
    while shown.recv_timeout(READ_TIMEOUT).unwrap() != "* logged in as ear" {}
    server.ask("kick ear", |_| true);
    let (code, _, stderr) = common::finish_within(client, READ_TIMEOUT);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stderr, "minichat: the server closed the connection\n");
    drop(input); // open until the client had ended
}

/// A kick in the middle of a flood, of a client that reads its messages
/// and keeps sending: the connection is closed after the line being
/// written, and the kicked client still reads every `RECEIVE` line its
/// sender got `OK SEND` for, whole, then the end of its stream. (Closing
/// with its input unread reset the connection, which threw away the lines
/// still on their way and could cut one.)
#[cfg(target_os = "linux")]
#[test]
fn a_kicked_reader_gets_every_line_confirmed_to_its_sender_and_no_cut_one() {
    let mut server = Operated::start(&["--write-timeout", "1"]);
    let mut bob = Client::login(server.addr, "bob");
    let mut alice = Client::login(server.addr, "alice");
    let mut bob_writer = bob.writer.try_clone().unwrap();
    let reader = thread::spawn(move || {
        let mut read = Vec::new();
        let mut chunk = [0; 512];
        loop {
            // bob keeps sending while he reads: his input is never empty
            if bob_writer.write_all(b"PING\n").is_err() {
                // the server closed; what is left is still to be read
            }
            match std::io::Read::read(&mut bob.reader, &mut chunk) {
                Ok(0) => return (read, true),
                Ok(n) => read.extend_from_slice(&chunk[..n]),
                Err(_) => return (read, false),
            }
            thread::sleep(std::time::Duration::from_millis(2)); // his pace
        }
    });
    let flood = "SEND bob a message for bob, who reads and sends at once\n".repeat(50);
    let mut confirmed = 0;
    let started = std::time::Instant::now();
    let mut kicked = false;
    'flooding: loop {
        alice.send_raw(flood.as_bytes());
        for _ in 0..50 {
            let reply = alice.line();
            if reply == "OK SEND bob" {
                confirmed += 1;
            } else {
                assert!(reply.starts_with("ERR NO_SUCH_USER "), "{reply}");
                if kicked {
                    break 'flooding;
                }
            }
        }
        if !kicked && started.elapsed() > std::time::Duration::from_millis(300) {
            server.ask("kick bob", |_| true);
            kicked = true;
        }
    }
    let (read, clean) = reader.join().unwrap();
    let read = String::from_utf8(read).unwrap();
    let tail = &read[read.len().saturating_sub(40)..];
    assert!(read.ends_with("\r\n"), "a cut line: {tail:?}");
    let received = read
        .lines()
        .filter(|l| l.starts_with("RECEIVE alice "))
        .count();
    assert_eq!(
        received, confirmed,
        "lines read, for OK SEND; clean end: {clean}"
    );
}
