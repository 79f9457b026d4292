//! `minichat connect`: an interactive line client, a friendlier `nc`.
//!
//! Each thread waits on one thing, so that what the server sends shows up
//! while the user types, and the end of the connection ends the client at
//! once, even while standard input stays open:
//!
//! | thread | waits on | tells the main thread |
//! | --- | --- | --- |
//! | reader | the socket: prints each line as it arrives | a reply came; the connection ended |
//! | input | standard input, one line at a time, when asked | a line; the input ended |
//! | main | the other two (`Event`): sends each line, decides the end | |
//! | keepalive | a clock | |
//!
//! By default lines are rendered for people (`RECEIVE alice Salut` shows as
//! `[alice] Salut`); `--raw` shows the wire lines as they are, to learn the
//! protocol.
//!
//! When standard input is not a terminal (`printf 'CONNECT bob\nLIST\n' |
//! minichat connect`), the client waits for the reply to each command line
//! before sending the next, for at most `--wait`, so a script's output comes
//! out in a fixed order. Otherwise both modes are one: the same ends, the
//! same messages, the same exit codes.
//!
//! The keepalive thread keeps a listening user connected: after
//! `--keepalive` seconds without a line from the user, it sends `PING`, and
//! the reader hides the `OK PING` that answers it. (The server's idle
//! timeout counts the lines a client sends, not the messages it receives.)

use std::fmt;
use std::fmt::Display;
use std::io::{self, BufRead, IsTerminal, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use crate::protocol::is_forbidden_in_text;
use crate::tools::remote::{self, ServerLine, ServerLines, Target, is_timeout, skip_rest_of_line};

/// How long to wait for the greeting, and with piped input for each reply,
/// by default (`--wait`).
pub const DEFAULT_REPLY_WAIT: Duration = Duration::from_secs(5);

/// How long the user may stay silent before the client sends `PING` on its
/// own, by default (`--keepalive`): well under the server's default idle
/// timeout of 600 s.
pub const DEFAULT_KEEPALIVE: Duration = Duration::from_secs(120);

/// The longest line read from standard input. Far above the protocol's 512
/// bytes, so over-long lines still reach the server and get their
/// `ERR TOO_LONG`; the bound only stops a runaway pipe from filling memory.
pub const MAX_INPUT_LINE_BYTES: usize = 64 * 1024;

/// Events queued for the main thread, at most. The reader blocks when the
/// queue is full, which only slows down a server flooding replies faster
/// than the main thread takes note of them.
const EVENT_QUEUE: usize = 1024;

/// What `minichat connect` is asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectOptions {
    pub target: Target,
    /// Show the wire lines as they are (`--raw`).
    pub raw: bool,
    /// How long to wait for the greeting and, with piped input, for each
    /// reply (`--wait`).
    pub wait: Duration,
    /// Send `PING` after this long without a line from the user
    /// (`--keepalive`); `None` (`--keepalive 0`) never does.
    pub keepalive: Option<Duration>,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            target: Target::default(),
            raw: false,
            wait: DEFAULT_REPLY_WAIT,
            keepalive: Some(DEFAULT_KEEPALIVE),
        }
    }
}

/// How a session ended normally (exit code 0).
#[derive(Debug)]
pub enum End {
    /// Standard input ended (Ctrl-D, or the end of a pipe).
    InputEnded,
    /// The server answered `OK QUIT` and closed the connection.
    Quit,
    /// The server closed the connection after `ERR TIMEOUT`.
    TimedOut,
    /// The server closed the connection, for no reason it gave.
    ServerClosed,
}

impl fmt::Display for End {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            End::InputEnded => "end of input, connection closed",
            End::Quit => "left (OK QUIT), connection closed",
            End::TimedOut => "the server closed the connection after ERR TIMEOUT",
            End::ServerClosed => "the server closed the connection",
        })
    }
}

/// Why the client could not start, or stopped abnormally (exit code 1).
#[derive(Debug)]
pub enum ClientError {
    /// No connection (refused, unreachable, unknown host, ...).
    Connect(Target, io::Error),
    /// The server greeted with `ERR FULL`: the line it sent.
    Full(Target, String),
    /// The server's first line was not `OK WELCOME`, or did not come.
    Greeting(Target, String),
    /// The connection broke (reset, ...) or a terminal error.
    Io(io::Error),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Connect(target, e) => write!(f, "cannot connect to {target}: {e}"),
            ClientError::Full(target, line) => {
                write!(f, "cannot connect to {target}: the server is full ({line})")
            }
            ClientError::Greeting(target, what) => {
                write!(f, "cannot talk to {target}: {what}")
            }
            ClientError::Io(e) => write!(f, "connection lost: {e}"),
        }
    }
}

impl std::error::Error for ClientError {}

/// What the reader and input threads tell the main thread.
enum Event {
    /// Reader: a reply (`OK ...` or `ERR ...`) was printed.
    Reply,
    /// Reader: the connection ended; no more lines will come.
    Closed(Result<End, io::Error>),
    /// Input: a line to send, ending with LF.
    Line(Vec<u8>),
    /// Input: standard input ended (`Ok`: Ctrl-D, the end of a pipe) or
    /// could not be read.
    InputEnded(io::Result<()>),
}

/// What the main thread waits for, besides the end of the connection,
/// which it always takes.
#[derive(Clone, Copy)]
enum Waiting {
    /// The next line of input, for as long as it takes.
    Line,
    /// With piped input: the reply to the line just sent, until then.
    Reply(Instant),
    /// The server's close, until then: after the end of input, or after a
    /// line could not be sent.
    Close(Instant),
}

/// What the threads of one session share.
struct Link {
    /// The sending side of the socket, one whole line at a time, so that a
    /// keepalive `PING` never lands in the middle of the user's line.
    out: Mutex<Outgoing>,
    /// Keepalive `PING`s whose `OK PING` has not come back yet: the reader
    /// hides that many.
    pings_owed: AtomicUsize,
    /// Set once standard input has ended (Ctrl-D, the end of a pipe): the
    /// keepalive stops, and the server's close is the answer to it.
    input_ended: AtomicBool,
}

/// The sending side of the socket.
struct Outgoing {
    stream: TcpStream,
    /// When the last line was sent, by the user or the keepalive.
    last_line: Instant,
}

impl Link {
    fn out(&self) -> MutexGuard<'_, Outgoing> {
        self.out.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sends one line (with its LF) for the user.
    fn send(&self, line: &[u8]) -> io::Result<()> {
        let mut out = self.out();
        out.last_line = Instant::now();
        (&out.stream).write_all(line)
    }

    /// Sends `PING` if the user has sent nothing for `every`; returns when
    /// to look again, or `None` once the session is over.
    fn keep_alive(&self, every: Duration) -> Option<Instant> {
        if self.input_ended.load(Ordering::Acquire) {
            return None;
        }
        let mut out = self.out();
        let due = out.last_line + every;
        if Instant::now() < due {
            return Some(due);
        }
        // Counted first: the reply may come before the write returns.
        self.pings_owed.fetch_add(1, Ordering::AcqRel);
        if (&out.stream).write_all(b"PING\n").is_err() {
            return None; // the connection is gone; the reader says how
        }
        out.last_line = Instant::now();
        Some(out.last_line + every)
    }

    /// True (once per keepalive) for an `OK PING` the user did not ask for.
    fn hides(&self, line: &str) -> bool {
        line == "OK PING"
            && self
                .pings_owed
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
                .is_ok()
    }
}

/// Connects, then relays lines both ways until the session ends.
pub fn run(options: &ConnectOptions) -> Result<End, ClientError> {
    let target = &options.target;
    let addrs = target
        .resolve()
        .map_err(|e| ClientError::Connect(target.clone(), e))?;
    let stream = remote::connect(&addrs, options.wait)
        .map_err(|e| ClientError::Connect(target.clone(), e))?;
    let writer = stream.try_clone().map_err(ClientError::Io)?;
    let mut lines = ServerLines::new(stream);
    let greeting = greet(&mut lines, options)?;
    let interactive = io::stdin().is_terminal();
    if interactive {
        note(format_args!(
            "connected to {target}; type HELP for the commands, Ctrl-D to leave"
        ));
    }
    print_line(&show(&greeting, options.raw));
    // The reader blocks on the socket for as long as the session lasts.
    lines
        .stream()
        .set_read_timeout(None)
        .map_err(ClientError::Io)?;
    let link = Arc::new(Link {
        out: Mutex::new(Outgoing {
            stream: writer,
            last_line: Instant::now(),
        }),
        pings_owed: AtomicUsize::new(0),
        input_ended: AtomicBool::new(false),
    });
    let (events, received) = mpsc::sync_channel(EVENT_QUEUE);
    let raw = options.raw;
    let reader_link = Arc::clone(&link);
    let reader_events = events.clone();
    thread::spawn(move || read_server(lines, raw, &reader_link, reader_events));
    let (ask_line, asked) = mpsc::channel();
    thread::spawn(move || read_input(&asked, &events));
    if let Some(every) = options.keepalive {
        let keeper = Arc::clone(&link);
        thread::spawn(move || {
            while let Some(next) = keeper.keep_alive(every) {
                // Pacing, not synchronisation: wake up when a PING is due.
                thread::sleep(next.saturating_duration_since(Instant::now()));
            }
        });
    }
    converse(&link, &received, &ask_line, interactive, options.wait)
}

/// Reads the greeting within the wait.
fn greet(lines: &mut ServerLines, options: &ConnectOptions) -> Result<String, ClientError> {
    let target = &options.target;
    let deadline = Instant::now() + options.wait;
    let greeting = match lines.next_line(Some(deadline)) {
        Ok(Some(line)) => line.text(),
        Ok(None) => {
            let what = "the server closed the connection without a greeting";
            return Err(ClientError::Greeting(target.clone(), what.into()));
        }
        Err(e) if is_timeout(&e) => {
            let what = format!("no greeting within {} s", options.wait.as_secs_f64());
            return Err(ClientError::Greeting(target.clone(), what));
        }
        Err(e) => return Err(ClientError::Connect(target.clone(), e)),
    };
    if greeting.starts_with("ERR FULL") {
        return Err(ClientError::Full(target.clone(), escaped(&greeting)));
    }
    if !greeting.starts_with("OK WELCOME") {
        let what = format!("unexpected greeting {:?}", greeting);
        return Err(ClientError::Greeting(target.clone(), what));
    }
    Ok(greeting)
}

/// The reader thread: prints every line until the connection ends.
fn read_server(mut lines: ServerLines, raw: bool, link: &Link, events: SyncSender<Event>) {
    let mut last = String::new();
    let end = loop {
        match lines.next_line(None) {
            Ok(Some(ServerLine::Line { bytes, .. })) => {
                let line = String::from_utf8_lossy(&bytes).into_owned();
                if link.hides(&line) {
                    continue;
                }
                print_line(&show(&line, raw));
                if is_reply(&line) {
                    let _ = events.send(Event::Reply);
                }
                last = line;
            }
            Ok(Some(ServerLine::TooLong)) => {
                note(format_args!(
                    "skipped a line over {} bytes from the server",
                    remote::MAX_SERVER_LINE_BYTES
                ));
            }
            Ok(None) => break Ok(closing(&last)),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => break Ok(closing(&last)),
            Err(e) => break Err(e),
        }
    };
    let _ = events.send(Event::Closed(end));
}

/// How the server's close reads, given the last line it sent.
fn closing(last: &str) -> End {
    if last == "OK QUIT" {
        End::Quit
    } else if last.starts_with("ERR TIMEOUT") {
        End::TimedOut
    } else {
        End::ServerClosed
    }
}

/// The main thread: sends each line of input, and ends with the
/// connection. With piped input, waits for each reply (at most `wait`)
/// before asking for the next line.
fn converse(
    link: &Link,
    events: &Receiver<Event>,
    ask_line: &Sender<()>,
    interactive: bool,
    wait: Duration,
) -> Result<End, ClientError> {
    // The input thread may be gone (its input ended): then no line is owed.
    let next_line = || {
        let _ = ask_line.send(());
        Waiting::Line
    };
    let mut waiting = next_line();
    loop {
        let event = match waiting {
            Waiting::Line => events.recv().map_err(RecvTimeoutError::from),
            Waiting::Reply(until) | Waiting::Close(until) => {
                events.recv_timeout(until.saturating_duration_since(Instant::now()))
            }
        };
        waiting = match (event, waiting) {
            (Ok(Event::Closed(end)), _) => return ended(end, link),
            (Ok(Event::Line(line)), _) => {
                if link.send(&line).is_err() {
                    // The server is gone; the reader says how.
                    Waiting::Close(Instant::now() + wait)
                } else if interactive || line.iter().all(|&b| b == b' ' || b == b'\n') {
                    // A blank line gets no reply: no use waiting for one.
                    next_line()
                } else {
                    Waiting::Reply(Instant::now() + wait)
                }
            }
            (Ok(Event::Reply), Waiting::Reply(_)) => next_line(),
            // Unasked (ERR TIMEOUT, say), or typed at a terminal: shown by
            // the reader, and no answer to any line.
            (Ok(Event::Reply), waiting) => waiting,
            (Ok(Event::InputEnded(Ok(()))), _) => {
                // Say so to the server, and show what it still sends.
                link.input_ended.store(true, Ordering::Release);
                let _ = link.out().stream.shutdown(Shutdown::Write); // may be closed already
                Waiting::Close(Instant::now() + wait)
            }
            (Ok(Event::InputEnded(Err(e))), _) => return Err(ClientError::Io(e)),
            (Err(RecvTimeoutError::Timeout), Waiting::Reply(_)) => {
                note(format_args!(
                    "no reply within {} s, going on",
                    wait.as_secs_f64()
                ));
                next_line()
            }
            (Err(_), _) => return ended(Ok(End::ServerClosed), link),
        };
    }
}

/// How the session ends, given how the connection ended: after the end of
/// input, the server's close is its answer, unless it said why
/// (`OK QUIT`, `ERR TIMEOUT`).
fn ended(end: io::Result<End>, link: &Link) -> Result<End, ClientError> {
    if link.input_ended.load(Ordering::Acquire) {
        return match end {
            Ok(end @ (End::Quit | End::TimedOut)) => Ok(end),
            _ => Ok(End::InputEnded),
        };
    }
    end.map_err(ClientError::Io)
}

/// The input thread: reads standard input one line at a time, each when
/// the main thread asks for it, so that a script's lines wait in the pipe,
/// not in memory. Ends at the end of input, or when the main thread is
/// gone.
fn read_input(asked: &Receiver<()>, events: &SyncSender<Event>) {
    let mut stdin = io::stdin().lock();
    while asked.recv().is_ok() {
        let event = match read_input_line(&mut stdin) {
            Ok(Some(line)) => Event::Line(line),
            Ok(None) => Event::InputEnded(Ok(())),
            Err(e) => Event::InputEnded(Err(e)),
        };
        let last = matches!(event, Event::InputEnded(_));
        if events.send(event).is_err() || last {
            return;
        }
    }
}

/// The next line of `input`, ending with LF (a CR before it dropped), or
/// `None` at the end of input. A line over [`MAX_INPUT_LINE_BYTES`] is
/// skipped, with a note.
fn read_input_line(input: &mut impl BufRead) -> io::Result<Option<Vec<u8>>> {
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = input
            .take(MAX_INPUT_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut line)?;
        if read == 0 {
            return Ok(None);
        }
        if !line.ends_with(b"\n") && line.len() > MAX_INPUT_LINE_BYTES {
            skip_rest_of_line(input)?;
            note(format_args!(
                "input line over {MAX_INPUT_LINE_BYTES} bytes not sent"
            ));
            continue;
        }
        if line.ends_with(b"\n") {
            line.pop();
        }
        if line.ends_with(b"\r") {
            line.pop();
        }
        line.push(b'\n');
        return Ok(Some(line));
    }
}

/// Prints a line on stdout. A closed stdout (`| head`) is no reason to
/// drop the session, nor to panic.
fn print_line(line: &str) {
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}

/// Says something to the user on stderr (`minichat: ...`), ignoring a
/// closed stderr.
fn note(what: impl Display) {
    let _ = writeln!(io::stderr(), "minichat: {what}");
}

/// True for a reply line: `OK ...` or `ERR ...` (not RECEIVE).
fn is_reply(line: &str) -> bool {
    ["OK", "ERR"].iter().any(|word| {
        line.strip_prefix(word)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(' '))
    })
}

/// A line as the client prints it: raw, or rendered.
fn show(line: &str, raw: bool) -> String {
    if raw { escaped(line) } else { render(line) }
}

/// Renders a server line for people:
///
/// | wire | shown |
/// | --- | --- |
/// | `RECEIVE alice Salut` | `[alice] Salut` |
/// | `ERR NAME_TAKEN alice is already connected` | `error NAME_TAKEN: alice is already connected` |
/// | `OK CONNECT bob` | `* logged in as bob` |
/// | `OK LIST alice bob` | `* connected: alice, bob` |
///
/// Anything else is shown as it came. Control and bidirectional characters
/// are escaped, so a server cannot garble the terminal.
pub fn render(line: &str) -> String {
    let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
    let rendered = match word {
        "RECEIVE" => match rest.split_once(' ') {
            Some((from, text)) => format!("[{from}] {text}"),
            None => line.to_owned(),
        },
        "ERR" => match rest.split_once(' ') {
            Some((code, reason)) => format!("error {code}: {reason}"),
            None => format!("error {rest}"),
        },
        "OK" => {
            let (verb, args) = rest.split_once(' ').unwrap_or((rest, ""));
            match verb {
                "WELCOME" => format!("* welcome: {args}"),
                "CONNECT" => format!("* logged in as {args}"),
                "SEND" => format!("* sent to {args}"),
                "LIST" if args.is_empty() => "* nobody is connected".to_owned(),
                "LIST" => format!(
                    "* connected: {}",
                    args.split(' ').collect::<Vec<_>>().join(", ")
                ),
                "PING" => "* pong".to_owned(),
                "HELP" => format!("* commands: {args}"),
                "QUIT" => "* bye".to_owned(),
                _ => format!("* {rest}"),
            }
        }
        _ => line.to_owned(),
    };
    escaped(&rendered)
}

/// `line` with control and bidirectional characters written as escapes.
pub fn escaped(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    for c in line.chars() {
        if is_forbidden_in_text(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_rendered_for_people() {
        assert_eq!(render("RECEIVE alice Salut  toi "), "[alice] Salut  toi ");
        assert_eq!(
            render("ERR NAME_TAKEN alice is already connected"),
            "error NAME_TAKEN: alice is already connected"
        );
        assert_eq!(render("ERR FULL"), "error FULL");
        assert_eq!(render("OK WELCOME hi there"), "* welcome: hi there");
        assert_eq!(render("OK CONNECT bob"), "* logged in as bob");
        assert_eq!(render("OK SEND bob"), "* sent to bob");
        assert_eq!(render("OK LIST"), "* nobody is connected");
        assert_eq!(render("OK LIST alice bob"), "* connected: alice, bob");
        assert_eq!(render("OK PING"), "* pong");
        assert_eq!(render("OK HELP LIST | PING"), "* commands: LIST | PING");
        assert_eq!(render("OK QUIT"), "* bye");
        assert_eq!(render("OK FUTURE x"), "* FUTURE x");
        assert_eq!(render("something else"), "something else");
    }

    #[test]
    fn a_server_cannot_send_terminal_escapes() {
        assert_eq!(render("RECEIVE eve \u{1b}[2J"), "[eve] \\u{1b}[2J");
        assert_eq!(escaped("a\u{202e}b"), "a\\u{202e}b");
    }

    #[test]
    fn replies_are_ok_and_err_lines() {
        assert!(is_reply("OK PING"));
        assert!(is_reply("ERR SYNTAX usage"));
        assert!(is_reply("OK"));
        assert!(!is_reply("OKAY"));
        assert!(!is_reply("RECEIVE bob OK"));
    }

    #[test]
    fn closing_says_why() {
        assert!(matches!(closing("OK QUIT"), End::Quit));
        assert!(matches!(closing("ERR TIMEOUT idle"), End::TimedOut));
        assert!(matches!(closing("OK PING"), End::ServerClosed));
    }
}
