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

use std::fmt;
use std::io::{self, BufRead, IsTerminal, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::thread;
use std::time::{Duration, Instant};

use crate::protocol::is_forbidden_in_text;
use crate::tools::remote::{self, ServerLine, ServerLines, Target, is_timeout};

/// How long to wait for the greeting, and with piped input for each reply,
/// by default (`--wait`).
pub const DEFAULT_REPLY_WAIT: Duration = Duration::from_secs(5);

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
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            target: Target::default(),
            raw: false,
            wait: DEFAULT_REPLY_WAIT,
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
        eprintln!("minichat: connected to {target}; type HELP for the commands, Ctrl-D to leave");
    }
    println!("{}", show(&greeting, options.raw));
    // The reader blocks on the socket for as long as the session lasts.
    lines
        .stream()
        .set_read_timeout(None)
        .map_err(ClientError::Io)?;
    let (events, received) = mpsc::sync_channel(EVENT_QUEUE);
    let raw = options.raw;
    let input_ended = Arc::new(AtomicBool::new(false));
    let reader_knows = Arc::clone(&input_ended);
    thread::spawn(move || read_server(lines, raw, interactive, &reader_knows, events));
    let end = send_input(&writer, &received, interactive, &input_ended, options.wait)?;
    Ok(end)
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
    input_ended: &AtomicBool,
    events: SyncSender<Event>,
) {
    let mut last = String::new();
    let end = loop {
        match lines.next_line(None) {
            Ok(Some(ServerLine::Line { bytes, .. })) => {
                let line = String::from_utf8_lossy(&bytes).into_owned();
                let mut out = io::stdout().lock();
                // A closed stdout (`| head`) is no reason to drop the session.
                let _ = writeln!(out, "{}", show(&line, raw)).and_then(|()| out.flush());
                drop(out);
                if !interactive && is_reply(&line) {
                    let _ = events.send(Event::Reply);
                }
                last = line;
            }
            Ok(Some(ServerLine::TooLong)) => {
                eprintln!(
                    "minichat: skipped a line over {} bytes from the server",
                    remote::MAX_SERVER_LINE_BYTES
                );
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
            Ok(End::ServerClosed) if input_ended.load(Ordering::Acquire) => {
                eprintln!("minichat: {}", End::InputEnded);
                std::process::exit(0);
            }
            Ok(end) => {
                eprintln!("minichat: {end}");
                std::process::exit(0);
            }
            Err(e) => {
                eprintln!("minichat: {}", ClientError::Io(e));
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
    writer: &TcpStream,
    events: &Receiver<Event>,
    interactive: bool,
    input_ended: &AtomicBool,
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
            eprintln!("minichat: input line over {MAX_INPUT_LINE_BYTES} bytes not sent");
            continue;
        }
        if line.ends_with(b"\n") {
            line.pop();
        }
        if line.ends_with(b"\r") {
            line.pop();
        }
        line.push(b'\n');
        if (&*writer).write_all(&line).is_err() {
            // The server is gone; the reader says how.
            return wait_for_close(events, wait).map_err(ClientError::Io);
        }
        let blank = line.iter().all(|&b| b == b' ' || b == b'\n');
        if !interactive && !blank {
            match events.recv_timeout(wait) {
                Ok(Event::Reply) => {}
                Ok(Event::Closed(end)) => return end.map_err(ClientError::Io),
                Err(RecvTimeoutError::Timeout) => eprintln!(
                    "minichat: no reply within {} s, going on",
                    wait.as_secs_f64()
                ),
                Err(RecvTimeoutError::Disconnected) => return Ok(End::ServerClosed),
            }
        }
    }
    // End of input: say so to the server, and show what it still sends.
    // If the server had closed first (after QUIT, say), that is the end.
    input_ended.store(true, Ordering::Release);
    let _ = writer.shutdown(Shutdown::Write); // it may be closed already
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

/// Throws away the rest of an over-long input line, in bounded reads.
fn skip_rest_of_line(input: &mut impl BufRead) -> io::Result<()> {
    loop {
        let available = input.fill_buf()?;
        if available.is_empty() {
            return Ok(());
        }
        match available.iter().position(|&b| b == b'\n') {
            Some(i) => {
                input.consume(i + 1);
                return Ok(());
            }
            None => {
                let n = available.len();
                input.consume(n);
            }
        }
    }
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
