//! A connection the conformance checks drive: every read bounded by the
//! `--wait` time, every expectation turned into a [`Failure`] that says what
//! was sent, what was expected and what came back.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::tools::remote::{self, ServerLine, ServerLines, is_timeout};

/// Why a check failed: one line for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure(pub String);

impl Failure {
    pub fn new(message: impl Into<String>) -> Failure {
        Failure(message.into())
    }

    /// The same failure, naming the rule of the contract it shows broken.
    pub fn because(self, rule: &str) -> Failure {
        Failure(format!("{}; rule: {rule}", self.0))
    }
}

/// The last line any connection of a check sent, shown in failures: the
/// failing expectation is often on another connection (the recipient).
pub type LastSent = Arc<Mutex<String>>;

/// What a probe read instead of the expected line.
enum Got {
    Line(String),
    NoCrlf(String),
    TooLong,
    Closed,
    Reset,
    NoReply,
    Error(io::Error),
}

/// One client connection to the server under test.
pub struct Probe {
    /// Who this connection is in messages: a user name or `connection 3`.
    pub label: String,
    lines: ServerLines,
    writer: TcpStream,
    wait: Duration,
    last_sent: LastSent,
}

impl Probe {
    /// Connects (without reading the greeting). `keep` gets a handle on the
    /// socket so the runner can close it after the check whatever happens.
    pub fn connect(
        addrs: &[SocketAddr],
        wait: Duration,
        label: String,
        last_sent: LastSent,
        keep: &mut Vec<TcpStream>,
    ) -> Result<Probe, Failure> {
        let stream = remote::connect(addrs, wait)
            .map_err(|e| Failure::new(format!("{label}: cannot connect: {e}")))?;
        let setup = || -> io::Result<(TcpStream, TcpStream)> {
            stream.set_write_timeout(Some(wait))?;
            Ok((stream.try_clone()?, stream.try_clone()?))
        };
        let (writer, kept) =
            setup().map_err(|e| Failure::new(format!("{label}: cannot set up the socket: {e}")))?;
        keep.push(kept);
        *last_sent.lock().unwrap_or_else(PoisonError::into_inner) = format!("{label} connected");
        Ok(Probe {
            label,
            lines: ServerLines::new(stream),
            writer,
            wait,
            last_sent,
        })
    }

    /// Sends `line` with an LF.
    pub fn send(&mut self, line: &str) -> Result<(), Failure> {
        self.send_bytes(format!("{line}\n").as_bytes())
    }

    /// Sends bytes as they are (several lines, a line without its LF, ...).
    pub fn send_bytes(&mut self, bytes: &[u8]) -> Result<(), Failure> {
        let shown = shown_bytes(bytes.strip_suffix(b"\n").unwrap_or(bytes));
        *self
            .last_sent
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = format!("{} sent {shown}", self.label);
        self.writer.write_all(bytes).map_err(|e| {
            Failure::new(format!(
                "{} sent {shown}: the server did not take it ({e})",
                self.label
            ))
        })
    }

    /// Reads the next line within the wait; `Err` tells what came instead.
    fn read(&mut self) -> Result<(String, bool), Got> {
        let deadline = Instant::now() + self.wait;
        match self.lines.next_line(Some(deadline)) {
            Ok(Some(ServerLine::Line { bytes, crlf })) => {
                Ok((String::from_utf8_lossy(&bytes).into_owned(), crlf))
            }
            Ok(Some(ServerLine::TooLong)) => Err(Got::TooLong),
            Ok(None) => Err(Got::Closed),
            Err(e) if is_timeout(&e) => Err(Got::NoReply),
            Err(e) => Err(Got::Error(e)),
        }
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
        let expected = format!("ERR {code} <reason>");
        let line = self.line(&expected)?;
        if is_error(&line, code) {
            Ok(line)
        } else {
            Err(self.failure(&expected, Got::Line(line)))
        }
    }

    /// Reads one line and requires it to start with `prefix`.
    pub fn expect_prefix(&mut self, prefix: &str) -> Result<String, Failure> {
        let expected = format!("{}...", shown_str(prefix));
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
        match self.read() {
            Err(Got::Closed) => Ok(()),
            Err(Got::Error(e)) if is_reset(&e) => Ok(()),
            Ok((line, _)) => Err(self.failure("the connection closed", Got::Line(line))),
            Err(got) => Err(self.failure("the connection closed", got)),
        }
    }

    /// `QUIT`, `OK QUIT`, then the close: once this returns, the server has
    /// seen the connection end.
    pub fn quit(mut self) -> Result<(), Failure> {
        self.ask("QUIT", "OK QUIT")?;
        self.expect_closed()
    }

    /// Shuts down both directions at once, without QUIT: an abrupt leave.
    pub fn hang_up(self) {
        let _ = self.writer.shutdown(Shutdown::Both); // it may be closed already
    }

    /// Waits at most `within` for a line: `Ok(None)` when none came (not a
    /// failure here; the timeout checks use it to pace themselves).
    pub fn poll_line(&mut self, within: Duration) -> Result<Option<String>, Failure> {
        self.within(within, |probe| match probe.read() {
            Ok((line, _)) => Ok(Some(line)),
            Err(Got::NoReply) => Ok(None),
            Err(got) => Err(probe.failure("a line", got)),
        })
    }

    /// Requires the end of the stream within `within`, and a clean one: no
    /// more line, and no reset (a reset can destroy the lines still on
    /// their way, which the end-of-connection guarantee forbids).
    pub fn expect_clean_end(&mut self, within: Duration) -> Result<(), Failure> {
        self.within(within, |probe| {
            let expected = format!(
                "the end of the stream (and no reset) within {}",
                seconds(within)
            );
            match probe.read() {
                Err(Got::Closed) => Ok(()),
                Ok((line, _)) => Err(probe.failure(&expected, Got::Line(line))),
                Err(Got::Error(e)) if is_reset(&e) => Err(probe.failure(&expected, Got::Reset)),
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
        self.writer
            .local_addr()
            .map_err(|e| Failure::new(format!("{}: no local address: {e}", self.label)))
    }

    /// Waits (at most the wait) until bytes from the server have arrived,
    /// without reading them.
    pub fn wait_for_bytes(&mut self) -> Result<(), Failure> {
        let peeked = self
            .writer
            .set_read_timeout(Some(self.wait))
            .and_then(|()| self.writer.peek(&mut [0; 1]));
        match peeked {
            Ok(n) if n > 0 => Ok(()),
            Ok(_) => Err(self.failure("a reply", Got::Closed)),
            Err(e) if is_timeout(&e) => Err(self.failure("a reply", Got::NoReply)),
            Err(e) => Err(self.failure("a reply", Got::Error(e))),
        }
    }

    /// A second handle on the socket, for a thread that writes while
    /// another reads.
    pub fn writer(&self) -> Result<TcpStream, Failure> {
        self.writer
            .try_clone()
            .map_err(|e| Failure::new(format!("{}: cannot clone the socket: {e}", self.label)))
    }

    /// A failure for a line that came but is not what `expected` says.
    pub fn mismatch(&self, expected: &str, line: &str) -> Failure {
        self.failure(expected, Got::Line(line.to_owned()))
    }

    fn failure(&self, expected: &str, got: Got) -> Failure {
        let got = match got {
            Got::Line(line) => shown_str(&line),
            Got::NoCrlf(line) => format!("{} ended by LF alone, not CRLF", shown_str(&line)),
            Got::TooLong => format!(
                "a line over {} bytes",
                crate::tools::remote::MAX_SERVER_LINE_BYTES
            ),
            Got::Closed => "the connection closed".to_owned(),
            Got::Reset => {
                "a reset (RST) of the connection, which can destroy lines on their way".to_owned()
            }
            Got::NoReply => format!("no reply within {}", seconds(self.wait)),
            Got::Error(e) => format!("a read error ({e})"),
        };
        let sent = self
            .last_sent
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let sent = if sent.is_empty() {
            "nothing sent yet".to_owned()
        } else {
            sent
        };
        Failure::new(format!(
            "{sent}; expected {} to get {expected}; got {got}",
            self.label
        ))
    }
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

/// `3 s`, `0.5 s`, `1.01 s`: to the hundredth.
pub fn seconds(duration: Duration) -> String {
    format!("{} s", (duration.as_secs_f64() * 100.0).round() / 100.0)
}

/// A line as a failure shows it: quoted, control characters escaped,
/// shortened when long.
pub fn shown_str(line: &str) -> String {
    const MAX_SHOWN_CHARS: usize = 100;
    let count = line.chars().count();
    if count <= MAX_SHOWN_CHARS {
        return format!("\"{}\"", line.escape_debug());
    }
    let start: String = line.chars().take(MAX_SHOWN_CHARS).collect();
    format!(
        "\"{}...\" ({count} characters, {} bytes)",
        start.escape_debug(),
        line.len()
    )
}

/// Bytes as a failure shows them (invalid UTF-8 as `\xFF`).
pub fn shown_bytes(bytes: &[u8]) -> String {
    const MAX_SHOWN_BYTES: usize = 80;
    let mut out = String::from("\"");
    for chunk in bytes[..bytes.len().min(MAX_SHOWN_BYTES)].utf8_chunks() {
        out.extend(chunk.valid().chars().flat_map(char::escape_debug));
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02X}"));
        }
    }
    out.push('"');
    if bytes.len() > MAX_SHOWN_BYTES {
        out.push_str(&format!("... ({} bytes)", bytes.len()));
    }
    out
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

    #[test]
    fn lines_are_shown_escaped_and_shortened() {
        assert_eq!(shown_str("a\rb"), "\"a\\rb\"");
        assert!(shown_str(&"é".repeat(101)).ends_with("(101 characters, 202 bytes)"));
        assert_eq!(
            shown_str(&"é".repeat(100)),
            format!("\"{}\"", "é".repeat(100))
        );
        assert_eq!(shown_bytes(b"caf\xe9\n"), "\"caf\\xE9\\n\"");
        assert!(shown_bytes(&[b'x'; 1000]).ends_with("... (1000 bytes)"));
        assert_eq!(seconds(Duration::from_millis(500)), "0.5 s");
        assert_eq!(seconds(Duration::from_secs(3)), "3 s");
        assert_eq!(seconds(Duration::from_nanos(1_006_570_079)), "1.01 s");
    }
}
