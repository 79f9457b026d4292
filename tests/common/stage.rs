//! A stage for scripted scenes whose log becomes a diagram: a real server
//! with `--verbose`, its log kept in memory, notes placed in the log where
//! the scene says, and the clients' ephemeral addresses replaced by fixed
//! ones (`127.0.0.1:50001`, `:50002`, ... in the order they connect), so
//! that the same scene always draws the same diagram.

use std::collections::HashMap;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use minichat::tools::diagram::{self, DiagramOptions};
use minichat::{Config, Server};

use super::{Client, READ_TIMEOUT};

/// The first fixed port a scene's clients are shown with.
const FIRST_SHOWN_PORT: u16 = 50001;

/// The server's log, in memory, and a way to wait for it to grow.
#[derive(Default)]
pub struct Sink {
    /// The log, and how many lines it has.
    text: Mutex<(Vec<u8>, usize)>,
    grew: Condvar,
}

impl Sink {
    /// Waits until the log holds `fragment` (at most [`READ_TIMEOUT`]);
    /// returns the log up to the end of the first line that holds it.
    pub fn until(&self, fragment: &str) -> String {
        let deadline = Instant::now() + READ_TIMEOUT;
        let mut text = self.text.lock().unwrap();
        loop {
            let log = String::from_utf8_lossy(&text.0).into_owned();
            if let Some(at) = log.find(fragment) {
                let end = log[at..].find('\n').map_or(log.len(), |n| at + n + 1);
                return log[..end].to_owned();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "{fragment:?} never came in the log:\n{log}"
            );
            text = self.grew.wait_timeout(text, left).unwrap().0;
        }
    }

    /// Waits until the log has at least `lines` lines.
    pub fn wait_lines(&self, lines: usize) {
        let deadline = Instant::now() + READ_TIMEOUT;
        let mut text = self.text.lock().unwrap();
        while text.1 < lines {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "the log never reached {lines} lines");
            text = self.grew.wait_timeout(text, left).unwrap().0;
        }
    }

    /// The number of lines logged so far.
    pub fn lines(&self) -> usize {
        self.text.lock().unwrap().1
    }
}

struct SinkWriter(Arc<Sink>);

impl Write for SinkWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut text = self.0.text.lock().unwrap();
        text.0.extend_from_slice(buf);
        text.1 += buf.iter().filter(|&&b| b == b'\n').count();
        self.0.grew.notify_all();
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A server, its log, and the scene's notes and fixed addresses.
pub struct Stage {
    pub addr: SocketAddr,
    pub log: Arc<Sink>,
    /// Notes to place, each after the first line holding its fragment
    /// (after the previous note's place).
    notes: Vec<(String, String)>,
    /// Each client's real address, and the fixed one it is shown with.
    shown: HashMap<String, String>,
}

impl Stage {
    /// Starts a server with `config`, `--verbose` and a log in memory.
    pub fn start(config: Config) -> Stage {
        let log = Arc::new(Sink::default());
        let config = Config {
            verbose: true,
            ..config
        };
        let server = Server::bind_with_log(config, SinkWriter(Arc::clone(&log))).unwrap();
        let addr = server.local_addr().unwrap();
        std::thread::spawn(move || server.run());
        Stage {
            addr,
            log,
            notes: Vec::new(),
            shown: HashMap::new(),
        }
    }

    /// Connects a client, without reading its greeting.
    pub fn connect(&mut self) -> Client {
        let client = Client::connect_raw(self.addr);
        let real = client.writer.local_addr().unwrap().to_string();
        let port = FIRST_SHOWN_PORT + self.shown.len() as u16;
        self.shown.insert(real, format!("127.0.0.1:{port}"));
        client
    }

    /// Connects a client and logs it in as `name`.
    pub fn login(&mut self, name: &str) -> Client {
        let mut client = self.connect();
        client.expect(super::WELCOME);
        client.send(&format!("CONNECT {name}"));
        client.expect(&format!("OK CONNECT {name}"));
        client
    }

    /// Places `note` (`note over WHO: TEXT`, see `minichat diagram`) after
    /// the first log line that holds `fragment`.
    pub fn note_after(&mut self, fragment: &str, note: &str) {
        self.notes.push((fragment.to_owned(), note.to_owned()));
    }

    /// The scene's log, up to the line that holds `last`, with its notes
    /// and fixed addresses.
    pub fn log_until(&self, last: &str) -> String {
        let log = self.log.until(last);
        let mut lines: Vec<String> = log.lines().map(str::to_owned).collect();
        let mut from = 0;
        for (fragment, note) in &self.notes {
            let at = lines[from..]
                .iter()
                .position(|line| line.contains(fragment.as_str()))
                .unwrap_or_else(|| panic!("no line holds {fragment:?} for a note:\n{log}"));
            lines.insert(from + at + 1, note.clone());
            from += at + 2;
        }
        self.fixed_addresses(&(lines.join("\n") + "\n"))
    }

    /// The Mermaid diagram of the scene, up to the line that holds `last`.
    pub fn diagram(&self, last: &str, options: &DiagramOptions) -> String {
        let log = self.log_until(last);
        let mut out = Vec::new();
        diagram::run(options, log.as_bytes(), &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    /// `text` with each client's address replaced by the fixed one.
    fn fixed_addresses(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(at) = rest.find("127.0.0.1:") {
            let digits = rest[at + 10..]
                .find(|c: char| !c.is_ascii_digit())
                .map_or(rest.len(), |n| at + 10 + n);
            let address = &rest[at..digits];
            out.push_str(&rest[..at]);
            out.push_str(self.shown.get(address).map_or(address, String::as_str));
            rest = &rest[digits..];
        }
        out.push_str(rest);
        out
    }
}
