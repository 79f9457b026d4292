//! The minichat server: everything the binary serves with, and nothing else.
//!
//! | part | module |
//! | --- | --- |
//! | the accept loop, `ERR FULL` (here) | [`Server`] |
//! | the connection slots, and the bound on lingering connections | `slots` |
//! | one client's thread: read, execute, reply, time out, end | `session` |
//! | cutting bytes into lines of at most 512 bytes | `framing` |
//! | who is logged in; the lock that guards the map only | `registry` |
//! | a client's socket and its write lock: the only way to write to it | `peer` |
//! | one batch of deliveries and replies; `RECEIVE` before `OK SEND` | `outbox` |
//! | the operator's log, which can neither block nor kill the server | `log` |
//! | the operator's console on standard input (`list`, `kick`) | `console` |
//! | the live view of the protocol for a projector (`--watch`) | `watch` |
//! | settings and their defaults | [`config`] |
//!
//! The threads: one accepts connections (here); one per connection runs
//! its session; one writes the log; one reads the console. They
//! share a `Shared`: the registry of names, the slots, the log.

pub mod config;
mod console;
mod framing;
mod log;
mod outbox;
mod peer;
mod registry;
mod session;
mod slots;
mod watch;

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

pub use config::Config;
pub use console::Console;

use crate::protocol::{Error, ErrorCode, Reply};
use log::Log;
use peer::{ConnId, Peer};
use registry::Registry;
use session::Session;
use slots::Slots;

/// The stack of each session thread. A session keeps its buffers on the
/// heap and never recurses, so 128 KiB is ample; the default (2 MiB)
/// would reserve 2 GB of address space for 1 000 clients.
pub(crate) const SESSION_STACK_BYTES: usize = 128 * 1024;

/// How long the accept loop pauses when the system is out of file
/// descriptors or memory, instead of spinning on the same error.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// At most this many reads of 1 KiB drain a refused client's input.
const REFUSAL_DRAIN_READS: usize = 16;

/// What every session shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) registry: Registry,
    pub(crate) slots: Arc<Slots>,
    pub(crate) log: Log,
}

/// How the accept loop starts a session's thread: [`spawn_thread`], or in
/// a test, a spawn that fails as a process short of threads would.
pub(crate) type Spawn = fn(thread::Builder, Box<dyn FnOnce() + Send>) -> io::Result<()>;

/// A bound server, ready to [`run`](Server::run).
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    shared: Arc<Shared>,
    next_id: ConnId,
    /// The log's first line, `minichat: listening on ADDR (max N
    /// connections)`.
    announce: String,
    /// `OK WELCOME <text>` with its CRLF, encoded once.
    welcome: Vec<u8>,
    spawn: Spawn,
    watch_addr: Option<SocketAddr>,
}

/// Binds a server with `config`, starts its console on standard input, and
/// serves for ever: what `minichat [serve]` does.
pub fn serve(config: Config) -> io::Result<()> {
    let server = Server::bind(config)?;
    server.console().spawn_on_stdin()?;
    server.run()
}

impl Server {
    /// Binds the listening socket (`--bind`, `--port`); the log goes to
    /// stderr.
    pub fn bind(config: Config) -> io::Result<Server> {
        Server::bind_with_log(config, io::stderr())
    }

    /// Binds the listening socket, with the log going to `log` (tests give
    /// a sink, or a pipe they read).
    pub fn bind_with_log(config: Config, log: impl Write + Send + 'static) -> io::Result<Server> {
        let config = config.bounded();
        let listener = TcpListener::bind(SocketAddr::new(config.bind, config.port))?;
        // The contract fixes this line to the letter, plural included:
        // scripts read the address from it.
        let announce = format!(
            "minichat: listening on {} (max {} connections)",
            listener.local_addr()?,
            config.max_connections
        );
        let mut log = Log::start(log, config.verbose)?;
        let mut watch_addr = None;
        if let Some(address) = config.watch {
            let (watch, bound) = watch::Watch::start(address).map_err(|e| {
                io::Error::new(e.kind(), format!("the live view, --watch {address}: {e}"))
            })?;
            log = log.watched_by(watch, bound, &announce);
            watch_addr = Some(bound);
        }
        let shared = Arc::new(Shared {
            slots: Slots::new(config.max_connections),
            config,
            registry: Registry::default(),
            log,
        });
        let mut welcome = Vec::new();
        Reply::Welcome.encode(&mut welcome);
        Ok(Server {
            listener,
            shared,
            next_id: 1,
            announce,
            welcome,
            spawn: spawn_thread,
            watch_addr,
        })
    }

    /// Where the live view serves (`--watch`, with the port the system
    /// chose for port 0), if it is on.
    pub fn watch_addr(&self) -> Option<SocketAddr> {
        self.watch_addr
    }

    /// The address actually bound (with the port the system chose for
    /// `--port 0`).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The operator's console of this server.
    pub fn console(&self) -> Console {
        Console::new(Arc::clone(&self.shared))
    }

    /// Announces the server on stderr, then accepts connections for ever.
    /// A failing client never stops it; only a broken listener does.
    pub fn run(mut self) -> io::Result<()> {
        self.shared.log.announce(std::mem::take(&mut self.announce));
        loop {
            match self.listener.accept() {
                Ok((stream, addr)) => self.admit(stream, addr),
                Err(e) => {
                    self.shared.log.event(format_args!("accept failed: {e}"));
                    if is_out_of_resources(&e) {
                        thread::sleep(ACCEPT_BACKOFF);
                    }
                }
            }
        }
    }

    /// Gives a new connection a slot, a session thread and its greeting, or
    /// refuses it with `ERR FULL` (PROTOCOL.md, « Connexions et délais »):
    /// every connection gets one of the two lines.
    ///
    /// The greeting is written here, not by the new thread, so that it does
    /// not wait for that thread to start; and under the socket's write lock,
    /// taken before the thread exists, so that nothing the session writes
    /// can come before it.
    fn admit(&mut self, stream: TcpStream, addr: SocketAddr) {
        let id = self.next_id;
        self.next_id += 1;
        let Some(slot) = self.shared.slots.take(id) else {
            let reason = format!(
                "server full ({}), try again later",
                connections(self.shared.slots.max)
            );
            return self.refuse(&stream, addr, &reason, "server full");
        };
        let write_timeout = self.shared.config.write_timeout;
        let peer = Arc::new(Peer::new(stream, id, addr, write_timeout));
        slot.attach(&peer); // listed by the console from its greeting on
        // Held while the thread starts (a system call that does not wait
        // for any client), then for the greeting's one write.
        let greeting = peer.lock_for_greeting();
        let session = {
            let (peer, shared) = (Arc::clone(&peer), Arc::clone(&self.shared));
            Box::new(move || Session::start(peer, slot, shared))
        };
        let builder = thread::Builder::new()
            .name(format!("session-{id}"))
            .stack_size(SESSION_STACK_BYTES);
        match (self.spawn)(builder, session) {
            Ok(()) => {
                let mut greeting = greeting;
                // A greeting that cannot be written (the client is gone
                // already) closes the socket, which ends the session at its
                // first read.
                let _ = greeting.write(&self.welcome);
                // Logged here, in the order connections are accepted and
                // refused, once the greeting is on its way; the session logs
                // nothing before the lock is let go.
                let log = &self.shared.log;
                log.event(format_args!(
                    "{addr} accepted ({}/{} connections)",
                    self.shared.slots.count(),
                    self.shared.slots.max
                ));
                outbox::log_lines(log, &addr.to_string(), &self.welcome);
                drop(greeting);
            }
            Err(e) => {
                // The closure, its slot and its copy of the peer were
                // dropped with the error: this thread alone holds the socket.
                drop(greeting);
                let why = format!("no thread for it ({e})");
                self.refuse(peer.stream(), addr, OUT_OF_RESOURCES, &why);
            }
        }
    }

    /// `ERR FULL <reason>`, then close; `why` goes to the log.
    fn refuse(&self, mut stream: &TcpStream, addr: SocketAddr, reason: &str, why: &str) {
        let mut line = Vec::new();
        Reply::Error(&Error::new(ErrorCode::Full, reason)).encode(&mut line);
        // The socket is new, so this small line goes straight into its
        // empty send buffer; the write timeout bounds it all the same.
        let timeout = self.shared.config.write_timeout;
        let _ = stream
            .set_write_timeout(Some(timeout))
            .map(|()| peer::write_before(stream, &line, Instant::now() + timeout, timeout));
        self.shared.log.refusal(addr, &line);
        // Closing a socket that still holds unread input makes the system
        // reset the connection, which can destroy the ERR FULL line before
        // it is sent: read whatever the client already sent. (Bounded, so
        // a client streaming bytes cannot hold the accept loop.)
        if stream.set_nonblocking(true).is_ok() {
            let mut sink = [0; 1024];
            for _ in 0..REFUSAL_DRAIN_READS {
                if !matches!(stream.read(&mut sink), Ok(n) if n > 0) {
                    break;
                }
            }
        }
        self.shared.log.event(format_args!("{addr} refused: {why}"));
    }
}

/// The reason of `ERR FULL` for a connection the server has no thread for,
/// free slots or not.
const OUT_OF_RESOURCES: &str = "server out of resources (threads or memory), try again later";

/// Starts a session's thread: the [`Spawn`] of a real server.
fn spawn_thread(builder: thread::Builder, session: Box<dyn FnOnce() + Send>) -> io::Result<()> {
    builder.spawn(session).map(drop)
}

/// `1 connection`, `5 connections`.
pub(crate) fn connections(n: usize) -> String {
    match n {
        1 => "1 connection".to_owned(),
        n => format!("{n} connections"),
    }
}

/// Errors of `accept` that do not come from one client's connection (which
/// was aborted or reset before we took it), but from the system running
/// short of file descriptors, memory or buffers.
fn is_out_of_resources(e: &io::Error) -> bool {
    use io::ErrorKind::*;
    !matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | Interrupted | WouldBlock
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc;
    use testing::Written;

    /// Spawns that fail, one in two: a process short of threads.
    static SPAWNS: AtomicUsize = AtomicUsize::new(0);

    fn every_other_spawn_fails(
        builder: thread::Builder,
        session: Box<dyn FnOnce() + Send>,
    ) -> io::Result<()> {
        match SPAWNS.fetch_add(1, Ordering::Relaxed) % 2 {
            0 => Err(io::Error::new(io::ErrorKind::OutOfMemory, "no thread")),
            _ => spawn_thread(builder, session),
        }
    }

    /// A connection the server cannot start a thread for is refused with
    /// `ERR FULL`, closed at once, and logged; its slot is free again. No
    /// connection is ever closed without a line.
    #[test]
    fn a_connection_without_a_thread_is_refused_with_err_full() {
        let config = Config {
            bind: [127, 0, 0, 1].into(),
            port: 0,
            max_connections: 2,
            ..Config::default()
        };
        let (log, logged) = mpsc::channel();
        let mut server = Server::bind_with_log(config, Written(log)).unwrap();
        server.spawn = every_other_spawn_fails;
        let address = server.local_addr().unwrap();
        let shared = Arc::clone(&server.shared);
        thread::spawn(move || server.run());
        let first_line = |stream: TcpStream| {
            stream
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            let mut reader = BufReader::new(stream);
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            (line, reader)
        };
        let no_thread = "ERR FULL server out of resources (threads or memory), try again later\r\n";
        let mut served = Vec::new();
        // One spawn in two fails: refused, served, refused, served.
        for expected_welcome in [false, true, false, true] {
            let (line, mut reader) = first_line(TcpStream::connect(address).unwrap());
            if expected_welcome {
                assert!(line.starts_with("OK WELCOME "), "{line:?}");
                served.push(reader); // keeps its slot
            } else {
                assert_eq!(line, no_thread);
                let mut rest = Vec::new();
                reader.read_to_end(&mut rest).unwrap();
                assert!(rest.is_empty(), "closed at once: {rest:?}");
            }
        }
        // The refused connections kept no slot: two served fill the two.
        assert_eq!(shared.slots.count(), 2);
        let (line, _) = first_line(TcpStream::connect(address).unwrap());
        assert_eq!(
            line,
            "ERR FULL server full (2 connections), try again later\r\n"
        );
        let mut refusals = 0;
        while refusals < 2 {
            let line = logged.recv_timeout(Duration::from_secs(5)).unwrap();
            refusals += usize::from(line.contains("refused: no thread for it (no thread)"));
        }
    }
}

#[cfg(test)]
mod log_order {
    use super::*;
    use std::io::{BufRead, BufReader};
    use std::sync::mpsc;
    use testing::Written;

    /// Clients that send their lines before they read the greeting: the
    /// session reads them at once, while the accept loop may still be
    /// writing and logging the greeting. The log still says, for each
    /// connection, `accepted`, then the greeting, then its lines.
    #[test]
    fn a_connection_is_logged_accepted_and_greeted_before_anything_else() {
        const CLIENTS: usize = 20;
        let config = Config {
            bind: [127, 0, 0, 1].into(),
            port: 0,
            max_connections: CLIENTS,
            verbose: true,
            ..Config::default()
        };
        let (log, logged) = mpsc::channel();
        let server = Server::bind_with_log(config, Written(log)).unwrap();
        let address = server.local_addr().unwrap();
        thread::spawn(move || server.run());
        let clients: Vec<TcpStream> = (0..CLIENTS)
            .map(|i| {
                let mut stream = TcpStream::connect(address).unwrap();
                stream
                    .write_all(format!("CONNECT early{i}\nPING\n").as_bytes())
                    .unwrap();
                stream
            })
            .collect();
        for client in &clients {
            client
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            let mut lines = BufReader::new(client).lines();
            for _ in 0..3 {
                lines.next().unwrap().unwrap(); // OK WELCOME, OK CONNECT, OK PING
            }
        }
        // The first three lines of each connection, in the log's order.
        let mut first: Vec<(SocketAddr, Vec<String>)> = Vec::new();
        while first.len() < CLIENTS || first.iter().any(|(_, lines)| lines.len() < 3) {
            let line = logged.recv_timeout(Duration::from_secs(5)).unwrap();
            // `TIMESTAMP WHO WHAT`, WHO an address until the login.
            let mut words = line.splitn(3, ' ').skip(1);
            let (Some(who), Some(what)) = (words.next(), words.next()) else {
                continue;
            };
            let Ok(who) = who.parse::<SocketAddr>() else {
                continue;
            };
            match first.iter_mut().find(|(addr, _)| *addr == who) {
                Some((_, lines)) => lines.push(what.to_owned()),
                None => first.push((who, vec![what.to_owned()])),
            }
        }
        for (who, lines) in &first {
            assert!(lines[0].starts_with("accepted "), "{who}: {lines:?}");
            assert!(lines[1].starts_with("< OK WELCOME "), "{who}: {lines:?}");
            assert!(lines[2].starts_with("> CONNECT early"), "{who}: {lines:?}");
        }
    }
}

#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use std::sync::mpsc::Sender;

    /// A stderr for the log whose writes reach the test through a channel,
    /// one message per write (the logging thread writes a line at a time).
    pub(crate) struct Written(pub(crate) Sender<String>);

    impl Write for Written {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let _ = self.0.send(String::from_utf8_lossy(buf).into_owned());
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// What sessions share, for unit tests: the defaults but the write
    /// timeout, and a log that goes nowhere.
    pub(crate) fn shared(write_timeout: Duration) -> Arc<Shared> {
        let config = Config {
            write_timeout,
            ..Config::default()
        };
        Arc::new(Shared {
            slots: Slots::new(config.max_connections),
            registry: Registry::default(),
            log: Log::start(io::sink(), false).unwrap(),
            config,
        })
    }
}
