//! The operator's log, on stderr: one line per event, with a UTC timestamp.
//!
//! Events are connections accepted and refused, logins, disconnections and
//! timeouts. Message text is private: it is logged only with `--verbose`,
//! which logs every line in (`>`) and out (`<`) to watch the protocol live.
//! `minichat diagram` draws such a log (see `crate::diagram`, which reads
//! these lines back: change their wording there too).
//!
//! **The live view** (`--watch`, see `watch`) is fed from here: every event
//! line, and every wire line while someone watches. Without a viewer, a
//! wire line costs it one atomic load.
//!
//! **The log can neither kill nor stall the server.** Writing to stderr can
//! fail (it was closed: `minichat 2>&1 | head -1`) or block for ever (a
//! terminal paused with Ctrl-S, a pipe nobody reads). So no session ever
//! writes to stderr itself: it hands the line to one logging thread through
//! a bounded queue, and never waits for room. When the queue is full, the
//! line is dropped and counted; when a write fails, likewise. Once the
//! logging thread can write again, it first says `N log lines dropped`.
//!
//! **The first line is the announce** (`minichat: listening on ...`), which
//! scripts and `minichat check` read. An event queued before it (the
//! console can end before the server has announced itself) waits in the
//! logging thread, and is written right after it.

use std::fmt;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread;
use std::time::{SystemTime, UNIX_EPOCH};

use super::watch::Watch;

/// Lines waiting for the logging thread, at most. About 100 KB of text:
/// enough to ride out a burst, small enough that a paused terminal costs
/// little memory. Past it, lines are dropped and counted.
pub(crate) const LOG_QUEUE_LINES: usize = 1024;

/// The longest wire line the verbose log shows, in characters.
const MAX_LOGGED_CHARS: usize = 200;

/// Where the server reports what happens. Cloning it is cheap: every clone
/// feeds the same logging thread.
#[derive(Debug, Clone)]
pub(crate) struct Log {
    /// Also log every line in and out (`--verbose`).
    pub(crate) verbose: bool,
    queue: Sender<Entry>,
    counts: Arc<Counts>,
    /// The live view (`--watch`), and the address it serves on.
    watch: Option<(Arc<Watch>, SocketAddr)>,
}

/// A line for the logging thread.
enum Entry {
    /// The first line of the log.
    Announce(String),
    /// Any other line; it is written only after the announce.
    Event(String),
}

/// What the sessions and the logging thread count together.
#[derive(Debug, Default)]
struct Counts {
    /// Lines not written yet, at most [`LOG_QUEUE_LINES`]: those in the
    /// queue, and those the logging thread holds until the announce. (The
    /// channel itself is unbounded, so that it takes memory only for the
    /// lines it holds; this count is its bound.)
    queued: AtomicUsize,
    /// Lines lost since the last `N log lines dropped`: the queue was full
    /// or the write failed.
    dropped: AtomicU64,
}

impl Log {
    /// Starts the logging thread, writing to `out` (stderr, for the binary).
    pub(crate) fn start(out: impl Write + Send + 'static, verbose: bool) -> io::Result<Log> {
        let (queue, lines) = mpsc::channel();
        let counts = Arc::new(Counts::default());
        let counted = Arc::clone(&counts);
        thread::Builder::new()
            .name("log".into())
            .stack_size(64 * 1024)
            .spawn(move || write_lines(lines, out, &counted))?;
        Ok(Log {
            verbose,
            queue,
            counts,
            watch: None,
        })
    }

    /// Feeds the live view `watch`, serving on `addr`, too, starting with
    /// the server's first line, `announce` (so that a viewer who comes
    /// before the server runs sees its slots).
    pub(crate) fn watched_by(self, watch: Arc<Watch>, addr: SocketAddr, announce: &str) -> Log {
        watch.event(announce);
        Log {
            watch: Some((watch, addr)),
            ..self
        }
    }

    /// Logs `line` as it is, without a timestamp, as the first line of the
    /// log (`minichat: listening on ...`, which scripts read), and then
    /// where the live view is, if there is one.
    pub(crate) fn announce(&self, line: String) {
        let Some((_, addr)) = &self.watch else {
            return self.push(Entry::Announce(line));
        };
        self.push(Entry::Announce(line));
        self.push(Entry::Event(format!(
            "minichat: live view on http://{addr}/ (it shows message texts to whoever can reach it)"
        )));
    }

    /// Logs one event line (after the announce, whenever it is queued).
    pub(crate) fn event(&self, what: fmt::Arguments<'_>) {
        let line = format!("{} {what}", Timestamp::now());
        if let Some((watch, _)) = &self.watch {
            watch.event(&line);
        }
        self.push(Entry::Event(line));
    }

    /// Whether [`wire`](Self::wire) would do anything with a line: with
    /// `--verbose`, or while someone watches the live view. Callers that
    /// must split their bytes into lines first ask this first.
    pub(crate) fn wants_wire(&self) -> bool {
        self.verbose || self.watch.as_ref().is_some_and(|(w, _)| w.takes_line())
    }

    /// With `--verbose`, logs one wire line received from (`>`) or sent to
    /// (`<`) the client called `who`, with control characters escaped; and
    /// shows it to the live view's viewers, if any.
    pub(crate) fn wire(&self, who: &str, direction: char, line: &[u8]) {
        let watch = self.watch.as_ref().filter(|(w, _)| w.takes_line());
        if !self.verbose && watch.is_none() {
            return;
        }
        let line = format!("{} {who} {direction} {}", Timestamp::now(), escaped(line));
        if let Some((watch, _)) = watch {
            watch.line(&line);
        }
        if self.verbose {
            self.push(Entry::Event(line));
        }
    }

    /// The line a refused connection got (`ERR FULL`), as a wire line.
    pub(crate) fn refusal(&self, addr: SocketAddr, line: &[u8]) {
        if self.wants_wire() {
            let line = line.strip_suffix(b"\r\n").unwrap_or(line);
            self.wire(&addr.to_string(), '<', line);
        }
    }

    /// Queues a line without ever waiting: a full queue drops it.
    fn push(&self, entry: Entry) {
        let counts = &self.counts;
        let room = counts
            .queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < LOG_QUEUE_LINES).then_some(n + 1)
            });
        if room.is_err() || self.queue.send(entry).is_err() {
            counts.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The logging thread: writes each queued line, the announce first. Ends
/// when every [`Log`] is gone.
fn write_lines(entries: Receiver<Entry>, mut out: impl Write, counts: &Counts) {
    // Events queued before the announce, still counted in `queued`.
    let mut early = Vec::new();
    let mut announced = false;
    for entry in entries {
        match entry {
            Entry::Event(line) if !announced => early.push(line),
            Entry::Event(line) => write_line(&mut out, &line, counts),
            Entry::Announce(line) => {
                announced = true;
                write_line(&mut out, &line, counts);
                for line in early.drain(..) {
                    write_line(&mut out, &line, counts);
                }
            }
        }
    }
}

/// Writes one line, first saying how many were dropped since the last line
/// that could be written.
fn write_line(out: &mut impl Write, line: &str, counts: &Counts) {
    let dropped = &counts.dropped;
    counts.queued.fetch_sub(1, Ordering::AcqRel);
    let lost = dropped.swap(0, Ordering::Relaxed);
    if lost > 0 {
        let lines = if lost == 1 { "line" } else { "lines" };
        let notice = format!("{} {lost} log {lines} dropped\n", Timestamp::now());
        if out.write_all(notice.as_bytes()).is_err() {
            dropped.fetch_add(lost + 1, Ordering::Relaxed);
            return;
        }
    }
    // One write a line, its LF included: one system call on an
    // unbuffered stderr, and a line no other writer can split.
    let mut whole = String::with_capacity(line.len() + 1);
    whole.push_str(line);
    whole.push('\n');
    let written = out.write_all(whole.as_bytes()).and_then(|()| out.flush());
    if written.is_err() {
        dropped.fetch_add(1, Ordering::Relaxed);
    }
}

/// A wire line as the log shows it: at most [`MAX_LOGGED_CHARS`]
/// characters, control characters escaped (`\r`, `\u{1b}`) and bytes that
/// are not UTF-8 shown as `\xff`, so a teacher sees exactly what a client
/// sent (telnet's control bytes, say) without it garbling the log.
fn escaped(line: &[u8]) -> String {
    let mut out = String::new();
    let mut count = 0;
    for chunk in line.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_control() || crate::protocol::is_forbidden_in_text(c) {
                out.extend(c.escape_debug());
            } else {
                out.push(c);
            }
            count += 1;
        }
        for byte in chunk.invalid() {
            out.push_str(&format!("\\x{byte:02x}"));
            count += 1;
        }
        if count > MAX_LOGGED_CHARS {
            out.push('…');
            break;
        }
    }
    out
}

/// A UTC time to the second, shown as `2026-11-24T16:20:05Z`.
pub(crate) struct Timestamp(u64);

impl Timestamp {
    pub(crate) fn now() -> Timestamp {
        let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH);
        Timestamp(since_epoch.map_or(0, |d| d.as_secs()))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (days, secs) = (self.0 / 86_400, self.0 % 86_400);
        let (year, month, day) = civil_from_days(days);
        let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
        write!(f, "{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}Z")
    }
}

/// The proleptic Gregorian date of a day counted from 1970-01-01 (Howard
/// Hinnant's `civil_from_days`, for days after the epoch).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::sync::mpsc::Sender;
    use std::time::{Duration, Instant};

    #[test]
    fn wire_lines_are_logged_escaped_and_cut() {
        assert_eq!(escaped(b"SEND bob caf\xc3\xa9 \\o/"), "SEND bob café \\o/");
        assert_eq!(
            escaped(b"\xff\xf4\xff\xfd\x06PING\r"),
            "\\xff\\xf4\\xff\\xfd\\u{6}PING\\r"
        );
        assert!(escaped(&[b'x'; 600]).ends_with('…'));
    }

    #[test]
    fn timestamps_are_utc_iso_8601() {
        assert_eq!(Timestamp(0).to_string(), "1970-01-01T00:00:00Z");
        assert_eq!(Timestamp(951_782_400).to_string(), "2000-02-29T00:00:00Z");
        assert_eq!(Timestamp(1_795_537_205).to_string(), "2026-11-24T16:20:05Z");
    }

    /// A stderr that blocks every write until the test lets it through,
    /// and reports what it wrote.
    struct Paused {
        gate: Arc<Mutex<()>>,
        written: Sender<String>,
    }

    impl Write for Paused {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let _open = self.gate.lock().unwrap(); // blocks while paused
            let _ = self.written.send(String::from_utf8_lossy(buf).into_owned());
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_paused_stderr_never_blocks_the_logger_and_drops_are_counted() {
        let gate = Arc::new(Mutex::new(()));
        let (written, seen) = mpsc::channel();
        let paused = gate.lock().unwrap();
        let log = Log::start(
            Paused {
                gate: Arc::clone(&gate),
                written,
            },
            false,
        )
        .unwrap();
        let started = Instant::now();
        let lines = LOG_QUEUE_LINES * 3;
        for i in 0..lines {
            log.announce(format!("line {i}"));
        }
        // 3 000 lines into a stderr that takes none: nothing waited.
        assert!(started.elapsed() < Duration::from_secs(1));
        drop(paused);
        let mut text = String::new();
        // Once line 1 is written, the queue has room again.
        while !text.contains("line 1\n") {
            text.push_str(&seen.recv_timeout(Duration::from_secs(5)).unwrap());
        }
        log.announce("after".into());
        while !text.ends_with("after\n") {
            text.push_str(&seen.recv_timeout(Duration::from_secs(5)).unwrap());
        }
        // One notice, or two if the logging thread took its first line
        // while the queue was already overflowing.
        let dropped: u64 = text
            .lines()
            .filter_map(|line| {
                line.strip_suffix(" log lines dropped")
                    .or_else(|| line.strip_suffix(" log line dropped"))
            })
            .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
            .sum();
        assert!(dropped > 0, "no drop notice in {text:?}");
        let kept = text.lines().filter(|l| l.starts_with("line ")).count() as u64;
        assert_eq!(
            kept + dropped,
            lines as u64,
            "kept {kept}, dropped {dropped}"
        );
    }

    /// The console may end, and log it, before the server has announced
    /// itself: the announce is still the first line.
    #[test]
    fn events_queued_before_the_announce_come_after_it() {
        let (written, seen) = mpsc::channel();
        let log = Log::start(crate::server::testing::Written(written), false).unwrap();
        log.event(format_args!("early"));
        log.announce("minichat: listening on 127.0.0.1:1234 (max 5 connections)".into());
        log.event(format_args!("late"));
        let mut text = String::new();
        while !text.ends_with(" late\n") {
            text.push_str(&seen.recv_timeout(Duration::from_secs(5)).unwrap());
        }
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text:?}");
        assert!(lines[0].starts_with("minichat: listening on "), "{text:?}");
        assert!(lines[1].ends_with(" early"), "{text:?}");
        assert!(lines[2].ends_with(" late"), "{text:?}");
    }

    /// A stderr that is closed: every write fails.
    struct Closed;

    impl Write for Closed {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_closed_stderr_is_no_error_for_the_server() {
        let log = Log::start(Closed, true).unwrap();
        for i in 0..100 {
            log.event(format_args!("event {i}"));
            log.wire("bob", '>', b"PING");
        }
    }
}
