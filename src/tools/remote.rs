//! The client's side of a connection: where the server is, how to reach it
//! within a time limit, and reading its lines in bounded memory.
//!
//! Used by the two client tools, `minichat connect` ([`crate::tools::connect`]) and
//! `minichat check` ([`crate::tools::check`]). Both talk to servers we did not
//! write, so nothing the server sends is trusted: a line longer than
//! [`MAX_SERVER_LINE_BYTES`] is thrown away as it arrives, and every read
//! can be given a deadline.

use std::fmt;
use std::io::{self, BufRead, BufReader};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use crate::protocol::DEFAULT_PORT;

/// The longest line accepted from a server, in bytes. A RECEIVE line is at
/// most about 480 bytes, but `OK LIST` grows with the number of users (a
/// thousand 16-character names is 17 KB in ASCII, up to 65 KB in 4-byte
/// characters); past this bound a line is a misbehaving server, and keeping
/// it would let that server make the client allocate without limit.
pub const MAX_SERVER_LINE_BYTES: usize = 64 * 1024;

/// `HOST[:PORT]`: the server a client tool talks to. Resolved only when
/// connecting, so parsing it is pure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// A name (`localhost`) or an address (`127.0.0.1`, `::1`), without
    /// brackets.
    pub host: String,
    pub port: u16,
}

impl Default for Target {
    /// `127.0.0.1:1234`, where `minichat` listens by default.
    fn default() -> Self {
        Target {
            host: "127.0.0.1".to_owned(),
            port: DEFAULT_PORT,
        }
    }
}

impl Target {
    /// Reads `HOST`, `HOST:PORT`, `[IPV6]`, `[IPV6]:PORT` or a bare IPv6
    /// address (`::1`, which has colons but no port). A missing port is
    /// the protocol's port, 1234.
    pub fn parse(text: &str) -> Result<Target, String> {
        let bad_port = |port: &str| format!("invalid port {port:?} in {text:?}");
        let (host, port) = if let Some(rest) = text.strip_prefix('[') {
            let (host, after) = rest
                .split_once(']')
                .ok_or_else(|| format!("missing ']' in {text:?}"))?;
            match after {
                "" => (host, None),
                _ => match after.strip_prefix(':') {
                    Some(port) => (host, Some(port)),
                    None => return Err(format!("unexpected {after:?} after ']' in {text:?}")),
                },
            }
        } else {
            match text.split_once(':') {
                // Two colons or more: a bare IPv6 address, no port.
                Some((_, rest)) if rest.contains(':') => (text, None),
                Some((host, port)) => (host, Some(port)),
                None => (text, None),
            }
        };
        if host.is_empty() {
            return Err(format!("missing host in {text:?}"));
        }
        let port = match port {
            Some(port) => port.parse().map_err(|_| bad_port(port))?,
            None => DEFAULT_PORT,
        };
        Ok(Target {
            host: host.to_owned(),
            port,
        })
    }

    /// The addresses the host name stands for.
    pub fn resolve(&self) -> io::Result<Vec<SocketAddr>> {
        let addrs: Vec<SocketAddr> = (self.host.as_str(), self.port).to_socket_addrs()?.collect();
        if addrs.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                "the host name has no address",
            ));
        }
        Ok(addrs)
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Connects to the first of `addrs` that answers, each attempt bounded by
/// `timeout` (a host that drops packets would otherwise block for minutes).
pub fn connect(addrs: &[SocketAddr], timeout: Duration) -> io::Result<TcpStream> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no address to connect to");
    for addr in addrs {
        match TcpStream::connect_timeout(addr, timeout) {
            Ok(stream) => {
                // Every line is a message someone waits for.
                stream.set_nodelay(true)?;
                return Ok(stream);
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// One line from the server, as [`ServerLines::next_line`] hands it out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerLine {
    /// The line's bytes without its LF and the CR before it; `crlf` tells
    /// whether that CR was there, as the contract requires.
    Line { bytes: Vec<u8>, crlf: bool },
    /// A line over [`MAX_SERVER_LINE_BYTES`] ended here; its bytes are gone.
    TooLong,
}

impl ServerLine {
    /// The line as text, with invalid UTF-8 replaced (`TooLong` is shown
    /// as a note).
    pub fn text(&self) -> String {
        match self {
            ServerLine::Line { bytes, .. } => String::from_utf8_lossy(bytes).into_owned(),
            ServerLine::TooLong => format!("(a line over {MAX_SERVER_LINE_BYTES} bytes)"),
        }
    }
}

/// Reads the lines a server sends, in bounded memory, each read within an
/// optional deadline.
#[derive(Debug)]
pub struct ServerLines {
    reader: BufReader<TcpStream>,
    /// The start of a line whose LF has not arrived yet. Kept across a
    /// timed-out read, so no byte is lost when the caller tries again.
    partial: Vec<u8>,
    /// True while throwing away the rest of an over-long line, until its LF.
    discarding: bool,
}

impl ServerLines {
    pub fn new(stream: TcpStream) -> ServerLines {
        ServerLines {
            reader: BufReader::new(stream),
            partial: Vec::new(),
            discarding: false,
        }
    }

    /// The socket being read.
    pub fn stream(&self) -> &TcpStream {
        self.reader.get_ref()
    }

    /// The next line, `Ok(None)` at the end of the stream (an unfinished
    /// last line is dropped). With a `deadline`, every read is bounded by
    /// the time left, so a server dribbling one byte at a time cannot
    /// stretch the wait either; past it, the error is `TimedOut`.
    pub fn next_line(&mut self, deadline: Option<Instant>) -> io::Result<Option<ServerLine>> {
        loop {
            if let Some(deadline) = deadline {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(io::ErrorKind::TimedOut.into());
                }
                self.reader.get_ref().set_read_timeout(Some(left))?;
            }
            let available = match self.reader.fill_buf() {
                Ok(bytes) => bytes,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Err(io::ErrorKind::TimedOut.into());
                }
                Err(e) => return Err(e),
            };
            if available.is_empty() {
                return Ok(None);
            }
            let newline = available.iter().position(|&b| b == b'\n');
            let used = newline.map_or(available.len(), |i| i + 1);
            if !self.discarding {
                // +2: the CRLF does not count against the bound.
                if self.partial.len() + used > MAX_SERVER_LINE_BYTES + 2 {
                    self.discarding = true;
                    self.partial = Vec::new();
                } else {
                    self.partial.extend_from_slice(&available[..used]);
                }
            }
            self.reader.consume(used);
            if newline.is_some() {
                if std::mem::take(&mut self.discarding) {
                    return Ok(Some(ServerLine::TooLong));
                }
                let mut bytes = std::mem::take(&mut self.partial);
                bytes.pop(); // the LF
                let crlf = bytes.last() == Some(&b'\r');
                if crlf {
                    bytes.pop();
                }
                return Ok(Some(ServerLine::Line { bytes, crlf }));
            }
        }
    }
}

/// Throws away the rest of an over-long input line, in bounded reads (for
/// `connect`'s input and `diagram`'s log).
pub fn skip_rest_of_line(input: &mut impl BufRead) -> io::Result<()> {
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

/// True for the errors a read that hit its deadline gives: `WouldBlock` or
/// `TimedOut`, depending on the system.
pub fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::TcpListener;

    fn target(text: &str) -> Result<(String, u16), String> {
        Target::parse(text).map(|t| (t.host, t.port))
    }

    #[test]
    fn host_and_port_forms() {
        assert_eq!(target("example.org"), Ok(("example.org".into(), 1234)));
        assert_eq!(target("10.0.0.1:4000"), Ok(("10.0.0.1".into(), 4000)));
        assert_eq!(target("[::1]:1234"), Ok(("::1".into(), 1234)));
        assert_eq!(target("[::1]"), Ok(("::1".into(), 1234)));
        assert_eq!(target("::1"), Ok(("::1".into(), 1234)));
        assert!(target("host:http").is_err());
        assert!(target(":80").is_err());
        assert!(target("[::1").is_err());
        assert!(target("[::1]x").is_err());
        assert_eq!(Target::parse("::1").unwrap().to_string(), "[::1]:1234");
        assert_eq!(Target::default().to_string(), "127.0.0.1:1234");
    }

    /// Serves `bytes` to one client, then closes; returns the lines read.
    fn read_all(bytes: Vec<u8>) -> Vec<ServerLine> {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            stream.write_all(&bytes).unwrap();
        });
        let mut lines = ServerLines::new(connect(&[addr], Duration::from_secs(5)).unwrap());
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut out = Vec::new();
        while let Some(line) = lines.next_line(Some(deadline)).unwrap() {
            out.push(line);
        }
        server.join().unwrap();
        out
    }

    fn line(text: &str, crlf: bool) -> ServerLine {
        ServerLine::Line {
            bytes: text.as_bytes().to_vec(),
            crlf,
        }
    }

    #[test]
    fn lines_tell_crlf_from_lf_and_drop_an_unfinished_end() {
        assert_eq!(
            read_all(b"OK PING\r\nOK LIST\nhalf".to_vec()),
            [line("OK PING", true), line("OK LIST", false)]
        );
    }

    #[test]
    fn an_overlong_line_is_skipped_and_the_next_one_read() {
        let mut bytes = vec![b'x'; 3 * MAX_SERVER_LINE_BYTES];
        bytes.extend_from_slice(b"\r\nOK PING\r\n");
        assert_eq!(
            read_all(bytes),
            [ServerLine::TooLong, line("OK PING", true)]
        );
    }

    #[test]
    fn a_silent_server_times_out_at_the_deadline() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut lines = ServerLines::new(connect(&[addr], Duration::from_secs(5)).unwrap());
        let started = Instant::now();
        let deadline = started + Duration::from_millis(200);
        let error = lines.next_line(Some(deadline)).unwrap_err();
        assert!(is_timeout(&error), "{error:?}");
        assert!(started.elapsed() < Duration::from_secs(2));
        drop(listener);
    }
}
