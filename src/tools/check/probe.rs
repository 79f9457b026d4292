//! A connection the conformance checks drive: every read bounded by the
//! `--wait` time, every line sent and got noted in the check's
//! `Journal`, every expectation turned into a [`Failure`] that says
//! what was expected and what came instead.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use super::failure::Failure;
use super::journal::Journal;
pub use super::shown::{seconds, shown_bytes, shown_str};
use super::socket;
use crate::lang::{Lang, tr};
use crate::tools::remote::{self, MAX_SERVER_LINE_BYTES, ServerLine, ServerLines, is_timeout};

/// How long a failed check's other connections are given to show what is
/// waiting for them (a sender's own reply, when its recipient got nothing).
const DRAIN_WAIT: Duration = Duration::from_millis(100);

/// What a probe read instead of the expected line.
enum Got {
    Line(String),
    NoCrlf(String),
    TooLong,
    Closed,
    Reset,
    NoReply,
    Error(io::ErrorKind),
}

/// The receive buffer of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Buffer {
    /// The system's, which grows to several MB.
    Usual,
    /// A few KB, for a client that never reads (`socket`).
    Small,
}

/// One client connection to the server under test.
pub struct Probe {
    /// Who this connection is in messages: a user name or `connection 3`.
    pub label: String,
    pub lang: Lang,
    lines: ServerLines,
    writer: TcpStream,
    wait: Duration,
    journal: Arc<Journal>,
    /// While polling: a read that times out is not noted.
    quiet: bool,
    /// While a check looks aside (see [`Probe::aside`]): nothing is noted.
    muted: bool,
    /// The last line sent since a line was last read (as shown): if the
    /// server closes the connection instead of answering it, a failure
    /// names it.
    unanswered: Option<String>,
}

impl Probe {
    /// Connects (without reading the greeting). `keep` gets a handle on the
    /// socket so the runner can close it after the check whatever happens.
    pub fn connect(
        addrs: &[SocketAddr],
        wait: Duration,
        label: String,
        lang: Lang,
        journal: Arc<Journal>,
        keep: &mut Vec<TcpStream>,
        buffer: Buffer,
    ) -> Result<Probe, Failure> {
        let connected = match (buffer, addrs.first()) {
            (Buffer::Small, Some(&addr)) => socket::connect_small(addr, wait),
            _ => remote::connect(addrs, wait),
        };
        let stream = connected.map_err(|e| {
            let why = error_words(lang, e.kind());
            Failure::new(tr!(
                lang,
                "{label} could not connect: {why}",
                "{label} n'a pas pu se connecter : {why}"
            ))
        })?;
        let setup = || -> io::Result<(TcpStream, TcpStream)> {
            stream.set_write_timeout(Some(wait))?;
            Ok((stream.try_clone()?, stream.try_clone()?))
        };
        let (writer, kept) = setup().map_err(|e| {
            let why = error_words(lang, e.kind());
            Failure::new(tr!(
                lang,
                "{label}: the socket cannot be set up: {why}",
                "{label} : la socket ne peut pas être préparée : {why}"
            ))
        })?;
        keep.push(kept);
        journal.open(&label);
        Ok(Probe {
            label,
            lang,
            lines: ServerLines::new(stream),
            writer,
            wait,
            journal,
            quiet: false,
            muted: false,
            unanswered: None,
        })
    }

    /// Sends `line` with an LF.
    pub fn send(&mut self, line: &str) -> Result<(), Failure> {
        self.send_bytes(format!("{line}\n").as_bytes())
    }

    /// Sends bytes as they are (several lines, a line without its LF, ...).
    pub fn send_bytes(&mut self, bytes: &[u8]) -> Result<(), Failure> {
        let shown = shown_bytes(bytes.strip_suffix(b"\n").unwrap_or(bytes));
        let lang = self.lang;
        self.note(tr!(lang, "sent {shown}", "a envoyé {shown}"));
        if let Some(lines) = bytes.strip_suffix(b"\n") {
            let last = lines.rsplit(|&b| b == b'\n').next().unwrap_or(lines);
            self.unanswered = Some(shown_bytes(last));
        }
        self.writer.write_all(bytes).map_err(|e| {
            let why = error_words(lang, e.kind());
            self.journal.set_failed();
            Failure::new(tr!(
                lang,
                "{} sent {shown}: the server did not take it ({why})",
                "{} a envoyé {shown} : le serveur ne l'a pas pris ({why})",
                self.label
            ))
        })
    }

    fn note(&self, event: String) {
        if !self.muted {
            self.journal.note(&self.label, event);
        }
    }

    /// Runs `look` without noting what it sends and gets: a check that
    /// has failed sends a line more to tell two likely causes apart, and
    /// the failure shows the exchanges as they were when it failed.
    pub fn aside<T>(&mut self, look: impl FnOnce(&mut Probe) -> T) -> T {
        self.muted = true;
        let looked = look(self);
        self.muted = false;
        looked
    }

    /// Reads the next line within the wait, noting it; `Err` tells what
    /// came instead.
    fn read(&mut self) -> Result<(String, bool), Got> {
        let deadline = Instant::now() + self.wait;
        let got = match self.lines.next_line(Some(deadline)) {
            Ok(Some(ServerLine::Line { bytes, crlf })) => {
                Ok((String::from_utf8_lossy(&bytes).into_owned(), crlf))
            }
            Ok(Some(ServerLine::TooLong)) => Err(Got::TooLong),
            Ok(None) => Err(Got::Closed),
            Err(e) if is_timeout(&e) => Err(Got::NoReply),
            Err(e) if is_reset(&e) => Err(Got::Reset),
            Err(e) => Err(Got::Error(e.kind())),
        };
        if got.is_ok() {
            self.unanswered = None;
        }
        let event = match &got {
            Ok((line, _)) => {
                let shown = shown_str(line);
                tr!(self.lang, "got {shown}", "a reçu {shown}")
            }
            Err(Got::NoReply) if self.quiet => return got,
            Err(got) => self.got_words(got),
        };
        self.note(event);
        got
    }

    /// Reads one line; whether it ended with CRLF is checked by the check
    /// about line endings only, so a server that sends bare LF fails that
    /// one check instead of all of them.
    pub fn line(&mut self, expected: &str) -> Result<String, Failure> {
        self.read()
            .map(|(line, _)| line)
            .map_err(|got| self.failure(expected, got))
    }

    /// Reads one line and requires it to end with CRLF.
    pub fn line_crlf(&mut self, expected: &str) -> Result<String, Failure> {
        match self.read() {
            Ok((line, true)) => Ok(line),
            Ok((line, false)) => Err(self.failure(expected, Got::NoCrlf(line))),
            Err(got) => Err(self.failure(expected, got)),
        }
    }

    /// Reads one line and requires it to be exactly `expected`.
    pub fn expect(&mut self, expected: &str) -> Result<(), Failure> {
        let shown = shown_str(expected);
        let line = self.line(&shown)?;
        if line == expected {
            Ok(())
        } else {
            Err(self.failure(&shown, Got::Line(line)))
        }
    }

    /// Reads one line and requires it to be `ERR <code>` (with any reason).
    pub fn expect_error(&mut self, code: &str) -> Result<String, Failure> {
        let expected = format!("\"ERR {code} <{}>\"", self.lang.pick("reason", "raison"));
        let line = self.line(&expected)?;
        if is_error(&line, code) {
            Ok(line)
        } else {
            Err(self.failure(&expected, Got::Line(line)))
        }
    }

    /// Reads one line and requires it to start with `prefix`.
    pub fn expect_prefix(&mut self, prefix: &str) -> Result<String, Failure> {
        let expected = format!("{}…", shown_str(prefix));
        let line = self.line(&expected)?;
        if line.starts_with(prefix) {
            Ok(line)
        } else {
            Err(self.failure(&expected, Got::Line(line)))
        }
    }

    /// Sends `line` and requires the reply `expected`.
    pub fn ask(&mut self, line: &str, expected: &str) -> Result<(), Failure> {
        self.send(line)?;
        self.expect(expected)
    }

    /// Sends `line` and requires the error `code`.
    pub fn ask_error(&mut self, line: &str, code: &str) -> Result<(), Failure> {
        self.send(line)?;
        self.expect_error(code).map(drop)
    }

    /// Sends raw bytes and requires the error `code`.
    pub fn ask_error_bytes(&mut self, bytes: &[u8], code: &str) -> Result<(), Failure> {
        self.send_bytes(bytes)?;
        self.expect_error(code).map(drop)
    }

    /// `PING`, then `OK PING`: every line sent before was handled, and
    /// nothing else was written to this connection in between.
    pub fn sync(&mut self) -> Result<(), Failure> {
        self.ask("PING", "OK PING")
    }

    /// Requires the server to close the connection, with no more lines.
    pub fn expect_closed(&mut self) -> Result<(), Failure> {
        let expected = self.lang.pick("the end of the stream", "la fin du flux");
        match self.read() {
            Err(Got::Closed | Got::Reset) => Ok(()),
            Ok((line, _)) => Err(self.failure(expected, Got::Line(line))),
            Err(got) => Err(self.failure(expected, got)),
        }
    }

    /// `QUIT`, `OK QUIT`, then the close: once this returns, the server has
    /// seen the connection end. The client then closes its side too, as
    /// clients do, which ends the server's lingering (the runner's own
    /// handle on the socket would keep it open until the check ends, and
    /// a server lingers only for so many connections at once).
    pub fn quit(mut self) -> Result<(), Failure> {
        self.ask("QUIT", "OK QUIT")?;
        self.expect_closed()?;
        self.hang_up();
        Ok(())
    }

    /// Shuts down both directions at once, without QUIT: an abrupt leave.
    pub fn hang_up(self) {
        let _ = self.writer.shutdown(Shutdown::Both); // it may be closed already
    }

    /// Shuts down the sending side only (a half-close): the server sees
    /// the end of the stream, and can still write.
    pub fn half_close(&mut self) {
        self.note(
            self.lang
                .pick(
                    "closed its side (half-close)",
                    "a fermé son côté (demi-fermeture)",
                )
                .to_owned(),
        );
        let _ = self.writer.shutdown(Shutdown::Write); // it may be closed already
    }

    /// Waits at most `within` for a line: `Ok(None)` when none came (not a
    /// failure here, nor noted: the timeout checks use it to pace
    /// themselves).
    pub fn poll_line(&mut self, within: Duration) -> Result<Option<String>, Failure> {
        let expected = self.lang.pick("a line", "une ligne");
        self.quiet = true;
        let polled = self.within(within, |probe| match probe.read() {
            Ok((line, _)) => Ok(Some(line)),
            Err(Got::NoReply) => Ok(None),
            Err(got) => Err(probe.failure(expected, got)),
        });
        self.quiet = false;
        polled
    }

    /// Requires the end of the stream within `within`, and a clean one: no
    /// more line, and no reset (a reset can destroy the lines still on
    /// their way, which the end-of-connection guarantee forbids).
    pub fn expect_clean_end(&mut self, within: Duration) -> Result<(), Failure> {
        self.within(within, |probe| {
            let within = probe.lang.seconds(within);
            let expected = tr!(
                probe.lang,
                "the end of the stream (and no reset) within {within}",
                "la fin du flux (sans reset) en {within}"
            );
            match probe.read() {
                Err(Got::Closed) => Ok(()),
                Ok((line, _)) => Err(probe.failure(&expected, Got::Line(line))),
                Err(got) => Err(probe.failure(&expected, got)),
            }
        })
    }

    /// Runs `read` with `within` as the wait for each line.
    fn within<T>(&mut self, within: Duration, read: impl FnOnce(&mut Probe) -> T) -> T {
        let wait = std::mem::replace(&mut self.wait, within);
        let result = read(self);
        self.wait = wait;
        result
    }

    /// The local address of the connection.
    pub fn local_addr(&self) -> Result<SocketAddr, Failure> {
        self.writer.local_addr().map_err(|e| {
            let why = error_words(self.lang, e.kind());
            Failure::new(format!("{}: {why}", self.label))
        })
    }

    /// Waits (at most the wait) until bytes from the server have arrived,
    /// without reading them.
    pub fn wait_for_bytes(&mut self) -> Result<(), Failure> {
        let expected = self.lang.pick("a reply", "une réponse");
        let peeked = self
            .writer
            .set_read_timeout(Some(self.wait))
            .and_then(|()| self.writer.peek(&mut [0; 1]));
        match peeked {
            Ok(n) if n > 0 => Ok(()),
            Ok(_) => Err(self.failure(expected, Got::Closed)),
            Err(e) if is_timeout(&e) => Err(self.failure(expected, Got::NoReply)),
            Err(e) => Err(self.failure(expected, Got::Error(e.kind()))),
        }
    }

    /// A second handle on the socket, for a thread that writes while
    /// another reads.
    pub fn writer(&self) -> Result<TcpStream, Failure> {
        self.writer.try_clone().map_err(|e| {
            let why = error_words(self.lang, e.kind());
            Failure::new(format!("{}: {why}", self.label))
        })
    }

    /// A failure for a line that came but is not what `expected` says.
    pub fn mismatch(&self, expected: &str, line: &str) -> Failure {
        self.failure(expected, Got::Line(line.to_owned()))
    }

    /// What came, in words: `got "OK PING"`, `got no reply within 3 s`.
    fn got_words(&self, got: &Got) -> String {
        let lang = self.lang;
        match got {
            Got::Line(line) => {
                let shown = shown_str(line);
                tr!(lang, "got {shown}", "a reçu {shown}")
            }
            Got::NoCrlf(line) => {
                let shown = shown_str(line);
                tr!(
                    lang,
                    "got {shown} ended by LF alone, not CRLF",
                    "a reçu {shown}, terminée par LF seul et non par CRLF"
                )
            }
            Got::TooLong => tr!(
                lang,
                "got a line over {MAX_SERVER_LINE_BYTES} bytes",
                "a reçu une ligne de plus de {MAX_SERVER_LINE_BYTES} octets"
            ),
            Got::Closed => tr!(
                lang,
                "got the end of the stream (the server closed the connection)",
                "a vu la fin du flux (le serveur a fermé la connexion)"
            ),
            Got::Reset => tr!(
                lang,
                "got a reset (RST) of the connection, which destroys the lines on their way",
                "a vu la connexion réinitialisée (reset), ce qui détruit les lignes en route"
            ),
            Got::NoReply => {
                let wait = lang.seconds(self.wait);
                tr!(
                    lang,
                    "got no reply within {wait}",
                    "n'a rien reçu en {wait}"
                )
            }
            Got::Error(kind) => {
                let why = error_words(lang, *kind);
                tr!(
                    lang,
                    "got a read error: {why}",
                    "a eu une erreur de lecture : {why}"
                )
            }
        }
    }

    fn failure(&self, expected: &str, got: Got) -> Failure {
        self.journal.set_failed();
        let label = &self.label;
        let words = self.got_words(&got);
        let what = tr!(
            self.lang,
            "expected {label} to get {expected}; {label} {words}",
            "{label} devait recevoir {expected} ; {label} {words}"
        );
        let reset = matches!(got, Got::Reset);
        let closed_after = match got {
            Got::Closed | Got::Reset => self.unanswered.clone(),
            _ => None,
        };
        let (line, silent) = match got {
            Got::Line(line) | Got::NoCrlf(line) => (Some(line), false),
            Got::NoReply => (None, true),
            _ => (None, false),
        };
        Failure {
            got: line,
            silent,
            reset,
            closed_after,
            with_exchanges: true,
            ..Failure::new(what)
        }
    }
}

impl Drop for Probe {
    /// Once an expectation of the check has failed, reads what is already
    /// waiting on this connection (briefly), so the failure shows it: the
    /// sender's own `ERR` when its recipient got nothing.
    fn drop(&mut self) {
        if !self.journal.failed() {
            return;
        }
        let deadline = Instant::now() + DRAIN_WAIT;
        for _ in 0..2 {
            match self.lines.next_line(Some(deadline)) {
                Ok(Some(ServerLine::Line { bytes, .. })) => {
                    let shown = shown_str(&String::from_utf8_lossy(&bytes));
                    self.note(tr!(self.lang, "got {shown}", "a reçu {shown}"));
                }
                _ => return,
            }
        }
    }
}

/// An error of the system in words that do not change from run to run.
pub fn error_words(lang: Lang, kind: io::ErrorKind) -> String {
    use io::ErrorKind as K;
    let words = match kind {
        K::ConnectionRefused => lang.pick("connection refused", "connexion refusée"),
        K::ConnectionReset | K::ConnectionAborted => lang.pick(
            "the connection was reset (RST)",
            "la connexion a été réinitialisée (reset)",
        ),
        K::BrokenPipe => lang.pick(
            "the connection was closed (broken pipe)",
            "la connexion était fermée (tube cassé)",
        ),
        K::TimedOut | K::WouldBlock => lang.pick("it timed out", "délai dépassé"),
        K::NotConnected => lang.pick("not connected", "pas connecté"),
        K::AddrNotAvailable => lang.pick("address not available", "adresse indisponible"),
        _ => return format!("{kind:?}"),
    };
    words.to_owned()
}

/// Closes connections left open by a check, and waits (until `deadline`)
/// for the server to close them too, so that it has freed their slots
/// before the next check connects. The wait is shared by all of them: a
/// server that never closes costs one wait, not one per connection.
pub fn close_all(streams: Vec<TcpStream>, deadline: Instant) {
    for stream in &streams {
        let _ = stream.shutdown(Shutdown::Write); // it may be closed already
    }
    for mut stream in streams {
        // Drain at most this much: a server streaming without end is given up.
        let mut budget: usize = 1 << 20;
        let mut sink = [0; 4096];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || budget == 0 || stream.set_read_timeout(Some(left)).is_err() {
                break;
            }
            match stream.read(&mut sink) {
                Ok(0) => break,
                Ok(n) => budget = budget.saturating_sub(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
    }
}

/// True for the errors a read or write gets once the other side reset
/// the connection.
pub fn is_reset(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted
    )
}

/// True when `line` is `ERR <code>`, alone or followed by a reason.
pub fn is_error(line: &str, code: &str) -> bool {
    line.strip_prefix("ERR ")
        .and_then(|rest| rest.strip_prefix(code))
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(' '))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_matched_by_code_only() {
        assert!(is_error("ERR SYNTAX usage: LIST", "SYNTAX"));
        assert!(is_error("ERR SYNTAX", "SYNTAX"));
        assert!(!is_error("ERR SYNTAXE x", "SYNTAX"));
        assert!(!is_error("OK SYNTAX", "SYNTAX"));
    }
}
