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
use peer::ConnId;
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

/// A bound server, ready to [`run`](Server::run).
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    shared: Arc<Shared>,
    next_id: ConnId,
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
        let listener = TcpListener::bind(SocketAddr::new(config.bind, config.port))?;
        let mut log = Log::start(log, config.verbose)?;
        let mut watch_addr = None;
        if let Some(address) = config.watch {
            let (watch, bound) = watch::Watch::start(address).map_err(|e| {
                io::Error::new(e.kind(), format!("the live view, --watch {address}: {e}"))
            })?;
            log = log.watched_by(watch, bound);
            watch_addr = Some(bound);
        }
        let shared = Arc::new(Shared {
            slots: Slots::new(config.max_connections),
            config,
            registry: Registry::default(),
            log,
        });
        Ok(Server {
            listener,
            shared,
            next_id: 1,
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
        // The contract fixes this line to the letter, plural included:
        // scripts read the address from it.
        self.shared.log.announce(format!(
            "minichat: listening on {} (max {} connections)",
            self.local_addr()?,
            self.shared.config.max_connections
        ));
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => self.admit(stream),
                Err(e) => {
                    self.shared.log.event(format_args!("accept failed: {e}"));
                    if is_out_of_resources(&e) {
                        thread::sleep(ACCEPT_BACKOFF);
                    }
                }
            }
        }
    }

    /// Gives a new connection a slot and a session thread, or refuses it.
    fn admit(&mut self, stream: TcpStream) {
        let id = self.next_id;
        self.next_id += 1;
        let Some(slot) = self.shared.slots.take(id) else {
            return self.refuse(stream);
        };
        let shared = Arc::clone(&self.shared);
        let spawned = thread::Builder::new()
            .name(format!("session-{id}"))
            .stack_size(SESSION_STACK_BYTES)
            .spawn(move || Session::start(stream, id, slot, shared));
        if let Err(e) = spawned {
            // The closure, its slot and its socket were dropped with the error.
            self.shared.log.event(format_args!(
                "connection {id} dropped: no thread for it ({e})"
            ));
        }
    }

    /// `ERR FULL <reason>`, then close.
    fn refuse(&self, mut stream: TcpStream) {
        let full = Error::new(
            ErrorCode::Full,
            format!(
                "server full ({}), try again later",
                connections(self.shared.slots.max)
            ),
        );
        let mut line = Vec::new();
        Reply::Error(&full).encode(&mut line);
        // The socket is new, so this small line goes straight into its
        // empty send buffer; the write timeout bounds it all the same.
        let timeout = self.shared.config.write_timeout;
        let _ = stream.set_write_timeout(Some(timeout)).and_then(|()| {
            peer::write_before(&stream, &line, Instant::now().checked_add(timeout), timeout)
        });
        self.shared.log.refusal(&stream, &line);
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
        match stream.peer_addr() {
            Ok(addr) => self
                .shared
                .log
                .event(format_args!("{addr} refused: server full")),
            Err(_) => self.shared.log.event(format_args!("refused: server full")),
        }
    }
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
pub(crate) mod testing {
    use super::*;

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
