//! `minichat connect`: an interactive line client, a friendlier `nc`.
//!
//! Two threads, so that what the server sends shows up while the user
//! types: a reader thread reads the socket and prints each line as it
//! arrives, and the main thread reads standard input and sends each line.
//! By default lines are rendered for people (`RECEIVE alice Salut` shows as
//! `[alice] Salut`); `--raw` shows the wire lines as they are, to learn the
//! protocol.
//!
//! When standard input is not a terminal (`printf 'CONNECT bob\nLIST\n' |
//! minichat connect`), the client waits for the reply to each command line
//! before sending the next, for at most `--wait`, so a script's output comes
//! out in a fixed order.
//!
//! A third thread keeps a listening user connected: after `--keepalive`
//! seconds without a line from the user, it sends `PING`, and the reader
//! hides the `OK PING` that answers it. (The server's idle timeout counts
//! the lines a client sends, not the messages it receives.)

use std::fmt;
use std::fmt::Display;
use std::io::{self, BufRead, IsTerminal, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
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

/// Events queued for the main thread with piped input, at most. The reader
/// blocks when the queue is full, which only slows down a server flooding
/// replies nobody asked for.
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

/// What the reader thread tells the main thread.
enum Event {
    /// A reply (`OK ...` or `ERR ...`) was printed.
    Reply,
    /// The connection ended; no more lines will come.
    Closed(Result<End, io::Error>),
}

/// What the threads of one session share.
struct Link {
    /// The sending side of the socket, one whole line at a time, so that a
    /// keepalive `PING` never lands in the middle of the user's line.
    out: Mutex<Outgoing>,
    /// Keepalive `PING`s whose `OK PING` has not come back yet: the reader
    /// hides that many.
    pings_owed: AtomicUsize,
    /// Set once standard input has ended (Ctrl-D, the end of a pipe).
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
    thread::spawn(move || read_server(lines, raw, interactive, &reader_link, events));
    if let Some(every) = options.keepalive {
        let keeper = Arc::clone(&link);
        thread::spawn(move || {
            while let Some(next) = keeper.keep_alive(every) {
                // Pacing, not synchronisation: wake up when a PING is due.
                thread::sleep(next.saturating_duration_since(Instant::now()));
            }
        });
    }
    send_input(&link, &received, interactive, options.wait)
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
fn read_server(
    mut lines: ServerLines,
    raw: bool,
    interactive: bool,
    link: &Link,
    events: SyncSender<Event>,
) {
    let mut last = String::new();
    let end = loop {
        match lines.next_line(None) {
            Ok(Some(ServerLine::Line { bytes, .. })) => {
                let line = String::from_utf8_lossy(&bytes).into_owned();
                if link.hides(&line) {
                    continue;
                }
                print_line(&show(&line, raw));
                if !interactive && is_reply(&line) {
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
    if interactive {
        // The main thread is blocked reading the terminal, and std has no
        // way to interrupt that read: end the process from here.
        match end {
            // The close answers our own end of input (Ctrl-D): say that.
            Ok(End::ServerClosed) if link.input_ended.load(Ordering::Acquire) => {
                note(End::InputEnded);
                std::process::exit(0);
            }
            Ok(end) => {
                note(end);
                std::process::exit(0);
            }
            Err(e) => {
                note(ClientError::Io(e));
                std::process::exit(1);
            }
        }
    }
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

/// The main thread: sends each line of standard input. With piped input,
/// waits for each reply (bounded by `wait`) before the next line.
fn send_input(
    link: &Link,
    events: &Receiver<Event>,
    interactive: bool,
    wait: Duration,
) -> Result<End, ClientError> {
    let mut stdin = io::stdin().lock();
    let mut line = Vec::new();
    loop {
        // Replies that came unasked (ERR TIMEOUT, say) must not be taken
        // for the reply to the next line.
        while let Ok(event) = events.try_recv() {
            if let Event::Closed(end) = event {
                return end.map_err(ClientError::Io);
            }
        }
        line.clear();
        let read = (&mut stdin)
            .take(MAX_INPUT_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut line)
            .map_err(ClientError::Io)?;
        if read == 0 {
            break;
        }
        if !line.ends_with(b"\n") && line.len() > MAX_INPUT_LINE_BYTES {
            skip_rest_of_line(&mut stdin).map_err(ClientError::Io)?;
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
        if link.send(&line).is_err() {
            // The server is gone; the reader says how.
            return wait_for_close(events, wait).map_err(ClientError::Io);
        }
        let blank = line.iter().all(|&b| b == b' ' || b == b'\n');
        if !interactive && !blank {
            match events.recv_timeout(wait) {
                Ok(Event::Reply) => {}
                Ok(Event::Closed(end)) => return end.map_err(ClientError::Io),
                Err(RecvTimeoutError::Timeout) => note(format_args!(
                    "no reply within {} s, going on",
                    wait.as_secs_f64()
                )),
                Err(RecvTimeoutError::Disconnected) => return Ok(End::ServerClosed),
            }
        }
    }
    // End of input: say so to the server, and show what it still sends.
    // If the server had closed first (after QUIT, say), that is the end.
    link.input_ended.store(true, Ordering::Release);
    let _ = link.out().stream.shutdown(Shutdown::Write); // it may be closed already
    match wait_for_close(events, wait) {
        Ok(end @ (End::Quit | End::TimedOut)) => Ok(end),
        _ => Ok(End::InputEnded),
    }
}

/// Waits (at most `wait`) for the reader to see the connection end.
fn wait_for_close(events: &Receiver<Event>, wait: Duration) -> io::Result<End> {
    let deadline = Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match events.recv_timeout(left) {
            Ok(Event::Reply) => {}
            Ok(Event::Closed(end)) => return end,
            Err(_) => return Ok(End::ServerClosed),
        }
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
