//! A small server for the checker's own tests: correct by default, and
//! wrong on purpose in exactly one way when given a [`Fault`], so that each
//! check can be shown to fail on the rule it covers.
//!
//! It runs in the test's process and emulates a program: its flags, its
//! usage errors and exit codes, its first line on stderr and its log (a
//! bounded channel standing for the pipe), so the checker drives it
//! through the same [`Launcher`] as a real process. It parses lines with
//! `minichat::protocol` (the wire format is not what is under test here);
//! sessions, timeouts, writes, slots and the end of a connection are its
//! own, one thread per connection.
#![allow(dead_code)] // not every test uses every fault

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::thread;
use std::time::{Duration, Instant};

use minichat::protocol::{self, Command, Error, ErrorCode, Reply};
use minichat::tools::check::launch::{Launcher, Process};
use minichat::tools::check::settings::Stderr;

/// The one rule a faulty server breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// No fault: the server follows the contract.
    Correct,
    // The command line.
    HelpExits1,
    /// Takes `--version` for an unknown flag.
    NoVersionFlag,
    UsageErrorExits1,
    UsageErrorTwoLines,
    AcceptsWriteTimeout0,
    AcceptsMaxConnections0,
    /// Refuses `--verbose` (so the log checks cannot start it).
    NoVerboseFlag,
    /// First line `faulty listening on 127.0.0.1:PORT`.
    FirstLineWording,
    // The log.
    /// Blocks when stderr is full.
    LogBlocks,
    /// A session dies when stderr is closed.
    LogDiesWhenClosed,
    // Lines.
    /// Replies end with LF alone.
    LfOnly,
    /// Strips every CR before the LF.
    StripsAllCrs,
    /// `ERR TOO_LONG` as soon as the 513th byte arrives, not at the LF.
    TooLongEarly,
    /// Takes the verb after any Unicode whitespace, up to any (Python's
    /// `str.split()`).
    SplitsVerbOnUnicodeSpaces,
    /// Matches verbs through `to_uppercase()`.
    UnicodeVerbs,
    // Texts.
    CountsBytes,
    CountsUtf16,
    /// Combining accents (U+0300–U+036F) do not count.
    CountsGraphemes,
    /// Forbids U+2029 too (the bidi range starts one too early).
    BidiRangeFrom2029,
    /// Forbids what Python's `str.isprintable()` refuses.
    ForbidsUnprintable,
    // Names.
    /// Java's `Character.isLetterOrDigit`: no letter numbers, other
    /// numbers, alphabetic marks or circled letters.
    JavaNameCharacters,
    /// Java's `isJavaIdentifierPart`: also `$`, `€`, `·`, `‿`, marks, ZWJ...
    IdentifierNameCharacters,
    /// Counts name length in UTF-16 units.
    NameLengthUtf16,
    NamesComparedByUppercase,
    /// Python's `casefold()` for our traps: ß = ss, ς = σ.
    NamesCaseFolded,
    /// `to_lowercase` character by character: a final Σ becomes σ.
    NamesLowercasedCharByChar,
    KeepsNameAfterQuit,
    // Error precedence.
    NoSuchUserBeforeTooLong,
    NotConnectedBeforeSyntax,
    // Connections.
    IgnoresMaxConnections,
    /// A session that ends with a reset forgets to free its slot.
    SlotLeakOnReset,
    /// After QUIT, the slot is freed only when the client closes.
    SlotFreedWhenClientCloses,
    /// After QUIT or ERR TIMEOUT, closes at once (a reset if input is unread).
    ClosesWithoutLingering,
    /// After QUIT or ERR TIMEOUT, reads until the client closes, unbounded.
    LingersForever,
    // Writes.
    NoWriteTimeout,
    WriteTimeoutTripled,
    /// Drops a recipient as soon as its socket is full.
    DropsAtOnce,
    /// One lock for every write to every socket.
    GlobalWriteLock,
    // Timeouts.
    NoLoginTimeout,
    LoginClockRestartsOnLines,
    LoginClockStopsAtAnyConnect,
    LoginTimeoutKeepsRunningAfterLogin,
    LoginTimeout0AtOnce,
    IdleTimeoutForLoggedInOnly,
    IdleTimeoutUsesLoginValue,
    IdleClockRestartsOnBytes,
    IdleClockIgnoresBlankLines,
    IdleTimeout0AtOnce,
    // Angles added by issue 14 (see ANGLES.md).
    /// Computes deadlines as `now + timeout`, which panics for a huge one.
    HugeTimeoutOverflows,
    /// Makes a name visible, then writes its `OK CONNECT` 5 ms later.
    VisibleBeforeOkConnect,
    /// Frees the name and the slot 5 ms after writing `OK QUIT`.
    ReleasesAfterOkQuit,
    /// Closes a connection refused with `ERR FULL` 2 s later.
    FullClosedLate,
    /// LIST shows the connections that have not logged in, as `guestN`.
    ListsAnonymous,
    /// Looks the name up before checking it: NAME_TAKEN before BAD_NAME.
    NameTakenBeforeBadName,
    /// Drops the replies to a client's last lines when it half-closes.
    RepliesLostAtHalfClose,
    /// A connection dropped for its write timeout keeps its slot.
    SlotLeakOnDrop,
    /// Writes LIST's reply while holding the lock on the users.
    RegistryLockedWhileWriting,
    /// Restarts the idle clock when it writes to the client, too.
    IdleClockRestartsOnWrites,
    /// Refuses only C0 controls in a text (`ord(c) < 32`).
    C0ControlsOnly,
    /// Ends a line at a lone CR too (universal newlines, `readLine`).
    LoneCrEndsLine,
    // Angles found by a student's first server (see ANGLES.md).
    /// A line of blanks that are not all spaces (a tab) ends the
    /// connection's thread, as Python's `line.split()[0]` does (an
    /// `IndexError`): the connection closes without a reply.
    CrashesOnBlankLine,
}

use Fault::*;

/// How long the racy faults leave their window open: a few milliseconds.
const RACE_WINDOW: Duration = Duration::from_millis(5);

/// Lines the emulated stderr pipe holds before it is full.
const PIPE_LINES: usize = 16;

/// Starts faulty servers (one [`Fault`] each).
pub struct FaultyServer(pub Fault);

impl Launcher for FaultyServer {
    fn describe(&self) -> String {
        format!("faulty-server --fault {:?}", self.0)
    }

    fn launch(&self, args: &[String], stderr: Stderr) -> io::Result<Box<dyn Process>> {
        let fault = self.0;
        let (log, lines, stop_tap) = Log::new(fault, stderr);
        let config = match parse_args(args, fault) {
            Ok(Some(config)) => config,
            Ok(None) => {
                let help = args.iter().any(|arg| arg == "--help");
                let code = if help && fault == HelpExits1 { 1 } else { 0 };
                return Ok(Box::new(Exited { lines, code }));
            }
            Err(message) => {
                log.write(format!("faulty-server: {message}"));
                if fault == UsageErrorTwoLines {
                    log.write("see --help".to_owned());
                }
                let code = if fault == UsageErrorExits1 { 1 } else { 2 };
                return Ok(Box::new(Exited { lines, code }));
            }
        };
        let listener = TcpListener::bind(SocketAddr::new(config.bind, config.port))?;
        let addr = listener.local_addr()?;
        log.write(match fault {
            FirstLineWording => format!("faulty listening on {addr}"),
            _ => format!(
                "minichat: listening on {addr} (max {} connections)",
                config.max_connections
            ),
        });
        let shared = Arc::new(Shared {
            config,
            fault,
            log,
            users: Mutex::new(HashMap::new()),
            open: AtomicUsize::new(0),
            everyone: Mutex::new(Vec::new()),
            global_write: Mutex::new(()),
            stopped: AtomicBool::new(false),
            next_id: AtomicU64::new(1),
        });
        let serving = Arc::clone(&shared);
        thread::spawn(move || accept(listener, serving));
        Ok(Box::new(Running {
            lines,
            shared,
            addr,
            _stop_tap: stop_tap,
        }))
    }
}

/// A faulty server's settings, from its emulated command line.
#[derive(Debug, Clone)]
struct Config {
    bind: IpAddr,
    port: u16,
    max_connections: usize,
    login_timeout: Option<Duration>,
    idle_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
    verbose: bool,
}

/// `Ok(None)` for `--help` and `--version`.
fn parse_args(args: &[String], fault: Fault) -> Result<Option<Config>, String> {
    let mut config = Config {
        bind: [0, 0, 0, 0].into(),
        port: 1234,
        max_connections: 5,
        login_timeout: Some(Duration::from_secs(60)),
        idle_timeout: Some(Duration::from_secs(600)),
        write_timeout: Some(Duration::from_secs(2)),
        verbose: false,
    };
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        if flag == "--help" || (flag == "--version" && fault != NoVersionFlag) {
            return Ok(None);
        }
        if flag == "--verbose" && fault != NoVerboseFlag {
            config.verbose = true;
            continue;
        }
        let known = [
            "--bind",
            "--port",
            "--max-connections",
            "--login-timeout",
            "--idle-timeout",
            "--write-timeout",
        ];
        if !known.contains(&flag.as_str()) {
            return Err(format!("unknown option {flag}"));
        }
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        let bad = || format!("{flag}: invalid value {value:?}");
        let number = || value.parse::<u64>().map_err(|_| bad());
        let seconds = |n: u64| (n > 0).then(|| Duration::from_secs(n));
        match flag.as_str() {
            "--bind" => config.bind = value.parse().map_err(|_| bad())?,
            "--port" => config.port = value.parse().map_err(|_| bad())?,
            "--max-connections" => match number()? {
                0 if fault != AcceptsMaxConnections0 => return Err(bad()),
                n => config.max_connections = n as usize,
            },
            "--login-timeout" => config.login_timeout = seconds(number()?),
            "--idle-timeout" => config.idle_timeout = seconds(number()?),
            _ => match number()? {
                0 if fault != AcceptsWriteTimeout0 => return Err(bad()),
                n => config.write_timeout = seconds(n),
            },
        }
        // `0 = at once` faults keep a zero timeout as one.
        if value == "0" && flag == "--login-timeout" && fault == LoginTimeout0AtOnce {
            config.login_timeout = Some(Duration::ZERO);
        }
        if value == "0" && flag == "--idle-timeout" && fault == IdleTimeout0AtOnce {
            config.idle_timeout = Some(Duration::ZERO);
        }
    }
    if fault == IgnoresMaxConnections {
        config.max_connections = 5;
    }
    if fault == IdleTimeoutUsesLoginValue {
        config.idle_timeout = config.login_timeout;
    }
    config.write_timeout = match fault {
        NoWriteTimeout => None,
        WriteTimeoutTripled => config.write_timeout.map(|t| t * 3),
        DropsAtOnce => Some(Duration::from_millis(10)),
        _ => config.write_timeout,
    };
    Ok(Some(config))
}

// ---------------------------------------------------------------------------
// The emulated process and its stderr
// ---------------------------------------------------------------------------

/// The server's stderr: a bounded channel stands for the pipe, and a tap
/// thread plays the checker's side of it as `Stderr` says.
#[derive(Clone)]
struct Log {
    pipe: SyncSender<String>,
    fault: Fault,
}

impl Log {
    /// The log, the lines the checker reads, and what stops a stalled tap.
    fn new(fault: Fault, stderr: Stderr) -> (Log, Receiver<String>, Sender<()>) {
        let (pipe, from_pipe) = mpsc::sync_channel::<String>(PIPE_LINES);
        let (to_checker, lines) = mpsc::sync_channel(64);
        let (stop, stopped) = mpsc::channel::<()>();
        thread::spawn(move || {
            let mut first = true;
            while let Ok(line) = from_pipe.recv() {
                let _ = to_checker.try_send(line);
                if std::mem::take(&mut first) {
                    match stderr {
                        Stderr::Drained => {}
                        Stderr::Stalled => {
                            let _ = stopped.recv();
                            return;
                        }
                        Stderr::Closed => return,
                    }
                }
            }
        });
        (Log { pipe, fault }, lines, stop)
    }

    /// Writes a line: dropped when the pipe is full or closed, except for
    /// the faults that block or die.
    fn write(&self, line: String) {
        match self.fault {
            LogBlocks => {
                let _ = self.pipe.send(line);
            }
            LogDiesWhenClosed => {
                if let Err(mpsc::TrySendError::Disconnected(_)) = self.pipe.try_send(line) {
                    panic!("stderr is closed");
                }
            }
            _ => {
                let _ = self.pipe.try_send(line);
            }
        }
    }
}

/// A program that has ended (`--help`, a usage error).
struct Exited {
    lines: Receiver<String>,
    code: i32,
}

impl Process for Exited {
    fn stderr_line(&mut self, deadline: Instant) -> io::Result<Option<String>> {
        // The log thread ends once the pipe is empty and dropped.
        next_line(&self.lines, deadline)
    }

    fn exit_status(&mut self) -> io::Result<Option<Option<i32>>> {
        Ok(Some(Some(self.code)))
    }
}

/// A faulty server serving; stopped when dropped.
struct Running {
    lines: Receiver<String>,
    shared: Arc<Shared>,
    addr: SocketAddr,
    _stop_tap: Sender<()>,
}

impl Process for Running {
    fn stderr_line(&mut self, deadline: Instant) -> io::Result<Option<String>> {
        next_line(&self.lines, deadline)
    }

    fn exit_status(&mut self) -> io::Result<Option<Option<i32>>> {
        Ok(None)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shared.stopped.store(true, Ordering::Release);
        let _ = TcpStream::connect(self.addr); // wakes the accept loop
        for conn in lock(&self.shared.everyone).iter().filter_map(Weak::upgrade) {
            let _ = conn.stream.shutdown(Shutdown::Both);
        }
    }
}

fn next_line(lines: &Receiver<String>, deadline: Instant) -> io::Result<Option<String>> {
    match lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        Ok(line) => Ok(Some(line)),
        Err(RecvTimeoutError::Timeout) => Err(io::ErrorKind::TimedOut.into()),
        Err(RecvTimeoutError::Disconnected) => Ok(None),
    }
}

// ---------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------

struct Shared {
    config: Config,
    fault: Fault,
    log: Log,
    /// Registered names: key -> (name as registered, connection).
    users: Mutex<HashMap<String, (String, Arc<Conn>)>>,
    /// Open connections (slots taken).
    open: AtomicUsize,
    /// Every connection, to shut them down when the server stops.
    everyone: Mutex<Vec<Weak<Conn>>>,
    /// The lock of [`GlobalWriteLock`].
    global_write: Mutex<()>,
    stopped: AtomicBool,
    next_id: AtomicU64,
}

/// A connection; written only under `writing`.
struct Conn {
    id: u64,
    stream: TcpStream,
    writing: Mutex<()>,
    /// Dropped for a failed write: every later write fails at once.
    dropped: AtomicBool,
    /// When a line was last written to it ([`IdleClockRestartsOnWrites`]).
    written_at: Mutex<Instant>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn accept(listener: TcpListener, shared: Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stopped.load(Ordering::Acquire) {
            return;
        }
        let Ok(stream) = stream else { continue };
        let shared = Arc::clone(&shared);
        thread::spawn(move || Session::run(stream, shared));
    }
}

impl Shared {
    /// The name's key under which it is unique.
    fn key(&self, name: &str) -> String {
        match self.fault {
            NamesComparedByUppercase => name.to_uppercase(),
            NamesCaseFolded => name.to_lowercase().replace('ß', "ss").replace('ς', "σ"),
            NamesLowercasedCharByChar => name.chars().flat_map(char::to_lowercase).collect(),
            _ => protocol::name_key(name),
        }
    }

    /// Writes `bytes` to `conn` under its write lock (and the global one
    /// for [`GlobalWriteLock`]); a failed or timed-out write drops it.
    fn write(&self, conn: &Conn, bytes: &[u8]) -> io::Result<()> {
        self.write_then(conn, bytes, false)
    }

    /// Writes the last lines of `conn`, then closes it to every writer and
    /// sends the end of stream, under its write lock: nothing can follow.
    fn write_last(&self, conn: &Conn, bytes: &[u8]) -> io::Result<()> {
        self.write_then(conn, bytes, true)
    }

    fn write_then(&self, conn: &Conn, bytes: &[u8], last: bool) -> io::Result<()> {
        let _global = (self.fault == GlobalWriteLock).then(|| lock(&self.global_write));
        let _own = lock(&conn.writing);
        self.write_held(conn, bytes, last)
    }

    /// [`Shared::write_then`] for a caller that holds `conn`'s write lock.
    fn write_held(&self, conn: &Conn, bytes: &[u8], last: bool) -> io::Result<()> {
        *lock(&conn.written_at) = Instant::now();
        if conn.dropped.load(Ordering::Acquire) {
            return Err(io::ErrorKind::NotConnected.into());
        }
        let written = write_within(&conn.stream, bytes, self.config.write_timeout);
        if last {
            conn.dropped.store(true, Ordering::Release);
            if self.fault != ClosesWithoutLingering {
                let _ = conn.stream.shutdown(Shutdown::Write);
            }
        }
        if written.is_err() {
            conn.dropped.store(true, Ordering::Release);
            let _ = conn.stream.shutdown(Shutdown::Both);
            lock(&self.users).retain(|_, (_, user)| user.id != conn.id);
        }
        written
    }

    /// Appends the reply's line to `out` (and logs it with `--verbose`).
    fn encode(&self, reply: &Reply<'_>, out: &mut Vec<u8>) {
        let mut line = Vec::new();
        reply.encode(&mut line);
        if self.fault == LfOnly {
            line.remove(line.len() - 2);
        }
        if self.config.verbose {
            self.log
                .write(format!("out: {}", String::from_utf8_lossy(&line)));
        }
        out.extend_from_slice(&line);
    }
}

/// `now + timeout`, saturated at a century (a huge flag value is honoured
/// as "a very long time", never overflows).
fn after(timeout: Duration) -> Instant {
    const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
    let now = Instant::now();
    now.checked_add(timeout)
        .unwrap_or_else(|| now + CENTURY.min(timeout))
}

/// Writes all of `bytes` within `timeout` (for ever without one): the
/// socket's own timeout bounds each system call only, and a slow reader
/// taking a few bytes now and then would stretch a plain `write_all`.
fn write_within(stream: &TcpStream, mut bytes: &[u8], timeout: Option<Duration>) -> io::Result<()> {
    let deadline = timeout.map(after);
    while !bytes.is_empty() {
        if let Some(deadline) = deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::ErrorKind::TimedOut.into());
            }
            stream.set_write_timeout(Some(left))?;
        }
        match (&*stream).write(bytes) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The text of a SEND line.
fn send_text(line: &str) -> &str {
    line.trim_start_matches(' ')
        .split_once(' ')
        .map(|(_, rest)| rest.trim_start_matches(' '))
        .and_then(|rest| rest.split_once(' '))
        .map_or("", |(_, text)| text.trim_start_matches(' '))
}

/// What ends a session.
enum End {
    /// QUIT or a timeout: the last line, then a lingering close.
    Last(Vec<u8>),
    /// The client closed, reset, or was dropped.
    Gone { reset: bool },
}

/// One line of input.
enum Line {
    Complete(Vec<u8>),
    TooLong,
}

struct Session {
    shared: Arc<Shared>,
    conn: Arc<Conn>,
    /// The registered name's key.
    login: Option<String>,
    accepted: Instant,
    last_line: Instant,
    /// A CONNECT was tried ([`LoginClockStopsAtAnyConnect`]).
    tried_connect: bool,
    /// The line being read, and whether it is being discarded.
    partial: Vec<u8>,
    discarding: bool,
    slot_held: bool,
}

impl Session {
    fn run(stream: TcpStream, shared: Arc<Shared>) {
        let _ = stream.set_nodelay(true);
        let max = shared.config.max_connections;
        let taken = shared
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            });
        if taken.is_err() {
            let mut out = Vec::new();
            shared.encode(
                &Reply::Error(&Error::new(ErrorCode::Full, "full")),
                &mut out,
            );
            let _ = write_within(&stream, &out, shared.config.write_timeout);
            if shared.fault == FullClosedLate {
                thread::sleep(Duration::from_secs(2));
            }
            let _ = stream.shutdown(Shutdown::Write);
            return;
        }
        let conn = Arc::new(Conn {
            id: shared.next_id.fetch_add(1, Ordering::AcqRel),
            stream,
            writing: Mutex::new(()),
            dropped: AtomicBool::new(false),
            written_at: Mutex::new(Instant::now()),
        });
        lock(&shared.everyone).push(Arc::downgrade(&conn));
        let now = Instant::now();
        let mut session = Session {
            shared,
            conn,
            login: None,
            accepted: now,
            last_line: now,
            tried_connect: false,
            partial: Vec::new(),
            discarding: false,
            slot_held: true,
        };
        let end = session.serve();
        session.end(end);
    }

    fn serve(&mut self) -> End {
        let mut out = Vec::new();
        self.shared.encode(&Reply::Welcome, &mut out);
        if self.shared.write(&self.conn, &out).is_err() {
            return End::Gone { reset: false };
        }
        let mut buffer = [0; 4096];
        loop {
            if self.conn.dropped.load(Ordering::Acquire) {
                return End::Gone { reset: false };
            }
            let left = match self.deadline() {
                Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => Some(left),
                    _ => return self.time_out(),
                },
                None => None,
            };
            if self.conn.stream.set_read_timeout(left).is_err() {
                return End::Gone { reset: false };
            }
            let n = match (&self.conn.stream).read(&mut buffer) {
                Ok(0) => return End::Gone { reset: false },
                Ok(n) => n,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return End::Gone {
                        reset: e.kind() == io::ErrorKind::ConnectionReset,
                    };
                }
            };
            if self.shared.fault == IdleClockRestartsOnBytes {
                self.last_line = Instant::now();
            }
            if self.shared.fault == RepliesLostAtHalfClose && self.half_closed() {
                return End::Gone { reset: false };
            }
            let mut out = Vec::new();
            let mut end = None;
            for line in self.frame(&buffer[..n], &mut out) {
                if self.crashes_on(&line) {
                    // The replies so far were written as they came; then the
                    // thread is gone, and its socket with it.
                    let _ = self.shared.write(&self.conn, &out);
                    return End::Gone { reset: false };
                }
                if let Some(last) = self.handle(line, &mut out) {
                    end = Some(last);
                    break; // lines after QUIT are not carried out
                }
            }
            if let Some(last) = end {
                return End::Last([out, last].concat());
            }
            if !out.is_empty() && self.shared.write(&self.conn, &out).is_err() {
                return End::Gone { reset: false };
            }
        }
    }

    /// True when `line` ends the thread ([`CrashesOnBlankLine`]): blanks,
    /// not all of them spaces, so that a split on any whitespace finds no
    /// verb.
    fn crashes_on(&self, line: &Line) -> bool {
        let Line::Complete(bytes) = line else {
            return false;
        };
        let text = std::str::from_utf8(bytes).unwrap_or("x");
        self.shared.fault == CrashesOnBlankLine
            && !text.trim_matches(' ').is_empty()
            && text.split_whitespace().next().is_none()
    }

    /// True when the client has closed its side after what was just read
    /// ([`RepliesLostAtHalfClose`]: "it left, no need to answer").
    fn half_closed(&self) -> bool {
        let stream = &self.conn.stream;
        let ended = || {
            let _ = stream.set_nonblocking(true);
            let peeked = stream.peek(&mut [0; 1]);
            let _ = stream.set_nonblocking(false);
            matches!(peeked, Ok(0))
        };
        // The end of stream may be a moment behind the last bytes.
        ended() || {
            thread::sleep(Duration::from_millis(1));
            ended()
        }
    }

    /// The login or idle deadline, whichever comes first.
    fn deadline(&self) -> Option<Instant> {
        let config = &self.shared.config;
        let fault = self.shared.fault;
        let login_runs = match fault {
            NoLoginTimeout => false,
            LoginTimeoutKeepsRunningAfterLogin => true,
            LoginClockStopsAtAnyConnect => self.login.is_none() && !self.tried_connect,
            _ => self.login.is_none(),
        };
        let login_start = match fault {
            LoginClockRestartsOnLines => self.last_line,
            _ => self.accepted,
        };
        // `since + t`, saturated (or, for the fault, overflowing).
        let add = |since: Instant, t: Duration| match fault {
            HugeTimeoutOverflows => since + t,
            _ => since + (after(t) - Instant::now()),
        };
        let login = config
            .login_timeout
            .filter(|_| login_runs)
            .map(|t| add(login_start, t));
        let idle_runs = fault != IdleTimeoutForLoggedInOnly || self.login.is_some();
        let idle_start = match fault {
            IdleClockRestartsOnWrites => self.last_line.max(*lock(&self.conn.written_at)),
            _ => self.last_line,
        };
        let idle = config
            .idle_timeout
            .filter(|_| idle_runs)
            .map(|t| add(idle_start, t));
        login.into_iter().chain(idle).min()
    }

    fn time_out(&mut self) -> End {
        let mut out = Vec::new();
        let error = Error::new(ErrorCode::Timeout, "too slow");
        self.shared.encode(&Reply::Error(&error), &mut out);
        End::Last(out)
    }

    /// Cuts bytes into lines of at most 512 bytes.
    fn frame(&mut self, bytes: &[u8], out: &mut Vec<u8>) -> Vec<Line> {
        let mut lines = Vec::new();
        for &byte in bytes {
            let ends = byte == b'\n' || (byte == b'\r' && self.shared.fault == LoneCrEndsLine);
            if ends {
                let mut line = std::mem::take(&mut self.partial);
                let discarded = std::mem::take(&mut self.discarding);
                if self.shared.fault == StripsAllCrs {
                    while line.last() == Some(&b'\r') {
                        line.pop();
                    }
                } else if line.last() == Some(&b'\r') {
                    line.pop();
                }
                if discarded || line.len() > protocol::MAX_LINE_BYTES {
                    if discarded && self.shared.fault == TooLongEarly {
                        continue; // answered already
                    }
                    lines.push(Line::TooLong);
                } else {
                    lines.push(Line::Complete(line));
                }
            } else if !self.discarding {
                self.partial.push(byte);
                // One more byte than the limit may be the CR of a CRLF.
                if self.partial.len() > protocol::MAX_LINE_BYTES + 1 {
                    self.partial.clear();
                    self.discarding = true;
                    if self.shared.fault == TooLongEarly {
                        self.shared
                            .encode(&Reply::Error(&protocol::line_too_long()), out);
                    }
                }
            }
        }
        lines
    }

    /// Handles one line; `Some(last line)` ends the session.
    fn handle(&mut self, line: Line, out: &mut Vec<u8>) -> Option<Vec<u8>> {
        let bytes = match line {
            Line::TooLong => {
                self.last_line = Instant::now();
                self.shared
                    .encode(&Reply::Error(&protocol::line_too_long()), out);
                return None;
            }
            Line::Complete(bytes) => bytes,
        };
        if self.shared.config.verbose {
            self.shared
                .log
                .write(format!("in: {}", String::from_utf8_lossy(&bytes)));
        }
        let bytes = self.rewrite(bytes);
        let parsed = self.parse(&bytes);
        if !(self.shared.fault == IdleClockIgnoresBlankLines && matches!(parsed, Ok(None))) {
            self.last_line = Instant::now();
        }
        let command = match parsed {
            Ok(Some(command)) => command,
            Ok(None) => return None,
            Err(error) => {
                self.shared.encode(&Reply::Error(&error), out);
                return None;
            }
        };
        match self.execute(command, out) {
            Ok(last) => last,
            Err(error) => {
                self.shared.encode(&Reply::Error(&error), out);
                None
            }
        }
    }

    /// The faults that change a line before it is parsed.
    fn rewrite(&self, bytes: Vec<u8>) -> Vec<u8> {
        let Ok(text) = std::str::from_utf8(&bytes) else {
            return bytes;
        };
        match self.shared.fault {
            SplitsVerbOnUnicodeSpaces => {
                let text = text.trim_start_matches(char::is_whitespace);
                match text.split_once(char::is_whitespace) {
                    Some((verb, rest)) => format!("{verb} {rest}").into_bytes(),
                    None => text.as_bytes().to_vec(),
                }
            }
            UnicodeVerbs => {
                let (verb, rest) = text.split_once(' ').unwrap_or((text, ""));
                let upper = verb.to_uppercase();
                let verbs = ["CONNECT", "SEND", "LIST", "PING", "HELP", "QUIT"];
                match verbs.contains(&upper.as_str()) {
                    true if rest.is_empty() => upper.into_bytes(),
                    true => format!("{upper} {rest}").into_bytes(),
                    false => bytes,
                }
            }
            _ => bytes,
        }
    }

    /// `protocol::parse`, with the faults of the parsing rules.
    fn parse<'a>(&self, bytes: &'a [u8]) -> Result<Option<Command<'a>>, Error> {
        let fault = self.shared.fault;
        let logged_in = self.login.is_some();
        let words = std::str::from_utf8(bytes).map(|line| {
            let mut words = line.split(' ').filter(|w| !w.is_empty());
            let verb = words.next().unwrap_or("").to_ascii_uppercase();
            (verb, words.next().unwrap_or(""), line)
        });
        let (verb, second, line) = match &words {
            Ok((verb, second, line)) => (verb.as_str(), *second, *line),
            Err(_) => ("", "", ""),
        };
        if fault == NotConnectedBeforeSyntax && verb == "SEND" && !logged_in {
            return Err(Error::new(ErrorCode::NotConnected, "log in first"));
        }
        let parsed = protocol::parse(bytes, logged_in);
        let code = parsed.as_ref().err().map(|error| error.code);
        match (fault, code) {
            (NameTakenBeforeBadName, Some(ErrorCode::BadName))
                if verb == "CONNECT"
                    && lock(&self.shared.users).contains_key(&self.shared.key(second)) =>
            {
                return Err(Error::new(ErrorCode::NameTaken, "taken"));
            }
            (NoSuchUserBeforeTooLong, Some(ErrorCode::TooLong))
                if !lock(&self.shared.users).contains_key(&self.shared.key(second)) =>
            {
                return Err(Error::new(ErrorCode::NoSuchUser, "nobody"));
            }
            (IdentifierNameCharacters, Some(ErrorCode::BadName)) => {
                let identifier = |c: char| {
                    c.is_alphanumeric()
                        || "_-$\u{20ac}\u{b7}\u{203f}\u{ff3f}\u{301}\u{200d}\u{ad}\u{fe0f}"
                            .contains(c)
                };
                if second.chars().all(identifier) && second.chars().count() <= 16 {
                    return Ok(Some(Command::Connect(second)));
                }
            }
            (C0ControlsOnly, Some(ErrorCode::BadText)) if verb == "SEND" => {
                let text = send_text(line);
                let bidi = |c: char| {
                    ('\u{202a}'..='\u{202e}').contains(&c) || ('\u{2066}'..='\u{2069}').contains(&c)
                };
                if !text.chars().any(|c| c < ' ' || bidi(c)) {
                    return Ok(Some(Command::Send { to: second, text }));
                }
            }
            (CountsGraphemes, Some(ErrorCode::TooLong)) if verb == "SEND" => {
                let text = send_text(line);
                let graphemes = text
                    .chars()
                    .filter(|c| !('\u{300}'..='\u{36f}').contains(c))
                    .count();
                if graphemes <= protocol::MAX_TEXT_CHARS {
                    return Ok(Some(Command::Send { to: second, text }));
                }
            }
            _ => {}
        }
        match parsed? {
            Some(Command::Connect(name)) if !self.name_allowed(name) => {
                Err(Error::new(ErrorCode::BadName, "bad name"))
            }
            Some(Command::Send { text, .. }) if !self.text_allowed(text) => {
                let code = match fault {
                    BidiRangeFrom2029 | ForbidsUnprintable => ErrorCode::BadText,
                    _ => ErrorCode::TooLong,
                };
                Err(Error::new(code, "bad text"))
            }
            other => Ok(other),
        }
    }

    fn name_allowed(&self, name: &str) -> bool {
        match self.shared.fault {
            JavaNameCharacters => !name.chars().any(|c| {
                matches!(c,
                    '\u{b2}' | '\u{b3}' | '\u{b9}' | '\u{bc}'..='\u{be}'
                    | '\u{900}'..='\u{903}' | '\u{93a}'..='\u{94f}'
                    | '\u{2160}'..='\u{2188}' | '\u{2460}'..='\u{24ff}' | '\u{3007}')
            }),
            NameLengthUtf16 => name.encode_utf16().count() <= protocol::MAX_NAME_CHARS,
            _ => true,
        }
    }

    fn text_allowed(&self, text: &str) -> bool {
        let limit = protocol::MAX_TEXT_CHARS;
        match self.shared.fault {
            CountsBytes => text.len() <= limit,
            CountsUtf16 => text.encode_utf16().count() <= limit,
            BidiRangeFrom2029 => !text.contains('\u{2029}'),
            ForbidsUnprintable => !text.chars().any(|c| {
                c != ' '
                    && (c.is_whitespace()
                        || matches!(c, '\u{ad}' | '\u{61c}' | '\u{200b}'..='\u{200f}'
                            | '\u{2060}'..='\u{206f}' | '\u{feff}'))
            }),
            _ => true,
        }
    }

    /// Carries out a command; `Ok(Some(last line))` ends the session.
    fn execute(
        &mut self,
        command: Command<'_>,
        out: &mut Vec<u8>,
    ) -> Result<Option<Vec<u8>>, Error> {
        let shared = Arc::clone(&self.shared);
        match command {
            Command::Connect(name) => {
                self.tried_connect = true;
                let key = shared.key(name);
                // The name becomes visible as its OK CONNECT is written:
                // under this connection's write lock, with the replies
                // before it, so no RECEIVE can come first.
                let visible_late = shared.fault == VisibleBeforeOkConnect;
                let own = (!visible_late).then(|| lock(&self.conn.writing));
                let mut users = lock(&shared.users);
                if users.contains_key(&key) {
                    return Err(Error::new(ErrorCode::NameTaken, "taken"));
                }
                users.insert(key.clone(), (name.to_owned(), Arc::clone(&self.conn)));
                drop(users);
                self.login = Some(key);
                shared.encode(&Reply::Connected(name), out);
                let written = match own {
                    Some(_held) => shared.write_held(&self.conn, out, false),
                    None => {
                        thread::sleep(RACE_WINDOW);
                        shared.write(&self.conn, out)
                    }
                };
                out.clear();
                if written.is_err() {
                    return Err(Error::new(ErrorCode::NameTaken, "gone"));
                }
            }
            Command::Send { to, text } => {
                let found = lock(&shared.users).get(&shared.key(to)).cloned();
                let Some((name, recipient)) = found else {
                    return Err(Error::new(ErrorCode::NoSuchUser, "nobody"));
                };
                let from = self.name();
                if recipient.id == self.conn.id {
                    shared.encode(&Reply::Receive { from: &from, text }, out);
                } else {
                    let mut line = Vec::new();
                    shared.encode(&Reply::Receive { from: &from, text }, &mut line);
                    if shared.write(&recipient, &line).is_err() {
                        return Err(Error::new(ErrorCode::NoSuchUser, "disconnected"));
                    }
                }
                shared.encode(&Reply::Sent(&name), out);
            }
            Command::List => {
                let users = lock(&shared.users);
                let mut names: Vec<String> = users.values().map(|(name, _)| name.clone()).collect();
                if shared.fault == ListsAnonymous {
                    let everyone = lock(&shared.everyone);
                    let anonymous = everyone
                        .iter()
                        .filter_map(Weak::upgrade)
                        .filter(|conn| !conn.dropped.load(Ordering::Acquire))
                        .filter(|conn| users.values().all(|(_, user)| user.id != conn.id));
                    names.extend(anonymous.map(|conn| format!("guest{}", conn.id)));
                }
                let names: Vec<&str> = names.iter().map(String::as_str).collect();
                shared.encode(&Reply::List(&names), out);
                if shared.fault == RegistryLockedWhileWriting {
                    // The reply goes out now, the users still locked.
                    let _own = lock(&self.conn.writing);
                    if write_within(&self.conn.stream, out, shared.config.write_timeout).is_err() {
                        self.conn.dropped.store(true, Ordering::Release);
                        let _ = self.conn.stream.shutdown(Shutdown::Both);
                    }
                    out.clear();
                }
            }
            Command::Ping => shared.encode(&Reply::Pong, out),
            Command::Help => shared.encode(&Reply::Help, out),
            Command::Quit => {
                let mut last = Vec::new();
                shared.encode(&Reply::Bye, &mut last);
                return Ok(Some(last));
            }
        }
        Ok(None)
    }

    /// The name as registered.
    fn name(&self) -> String {
        let users = lock(&self.shared.users);
        self.login
            .as_ref()
            .and_then(|key| users.get(key))
            .map_or(String::new(), |(name, _)| name.clone())
    }

    fn release_name(&mut self) {
        if let Some(key) = self.login.take() {
            let mut users = lock(&self.shared.users);
            if users
                .get(&key)
                .is_some_and(|(_, user)| user.id == self.conn.id)
            {
                users.remove(&key);
            }
        }
    }

    fn release_slot(&mut self) {
        if std::mem::take(&mut self.slot_held) {
            self.shared.open.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// Ends the connection: the name and slot first, then the last lines,
    /// then a lingering close.
    fn end(mut self, end: End) {
        let fault = self.shared.fault;
        let last = match end {
            End::Gone { reset } => {
                self.release_name();
                let dropped = self.conn.dropped.load(Ordering::Acquire);
                let leaks =
                    (reset && fault == SlotLeakOnReset) || (dropped && fault == SlotLeakOnDrop);
                if !leaks {
                    self.release_slot();
                }
                return;
            }
            End::Last(last) => last,
        };
        if fault == ReleasesAfterOkQuit {
            let _ = self.shared.write_last(&self.conn, &last);
            thread::sleep(RACE_WINDOW);
        }
        if fault != KeepsNameAfterQuit {
            self.release_name();
        }
        if fault != SlotFreedWhenClientCloses {
            self.release_slot();
        }
        let _ = self.shared.write_last(&self.conn, &last); // nothing after the last line
        if fault == ClosesWithoutLingering {
            self.release_slot();
            return; // dropping the socket with input unread: a reset
        }
        let bound = match fault {
            LingersForever => None,
            _ => Some(after(self.shared.config.write_timeout.unwrap_or_default())),
        };
        let mut sink = [0; 1024];
        loop {
            let left = bound.map(|bound| bound.saturating_duration_since(Instant::now()));
            if left.is_some_and(|left| left.is_zero())
                || self.conn.stream.set_read_timeout(left).is_err()
            {
                break;
            }
            match (&self.conn.stream).read(&mut sink) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        self.release_slot();
        let _ = self.conn.stream.shutdown(Shutdown::Both);
    }
}
