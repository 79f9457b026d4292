//! The accept loop and its connection limit.
//!
//! The listener takes each new connection, and either gives it one of the
//! `--max-connections` slots and a thread of its own ([`Session`]), or
//! answers `ERR FULL` and closes it at once. Every open TCP connection holds
//! a slot, logged in or not; the slot is a [`Slot`] guard that gives itself
//! back when the session ends, however it ends.

use std::io::{self, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use crate::config::Config;
use crate::log::Log;
use crate::outbox::write_within;
use crate::protocol::{Error, ErrorCode, Reply};
use crate::registry::{ConnId, Registry};
use crate::session::Session;

/// The stack of each session thread. A session keeps its buffers on the
/// heap and never recurses, so 128 KiB is ample; the default (2 MiB)
/// would reserve 2 GB of address space for 1 000 clients.
pub const SESSION_STACK_BYTES: usize = 128 * 1024;

/// How long the accept loop pauses when the system is out of file
/// descriptors or memory, instead of spinning on the same error.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// At most this many reads of 1 KiB drain a refused client's input.
const REFUSAL_DRAIN_READS: usize = 16;

/// What every session shares.
#[derive(Debug)]
pub struct Shared {
    pub config: Config,
    pub registry: Registry,
    pub log: Log,
}

/// The connection slots: how many are taken, out of how many.
#[derive(Debug)]
struct Slots {
    open: AtomicUsize,
    max: usize,
}

/// One taken slot; dropping it frees the slot.
#[derive(Debug)]
pub struct Slot(Arc<Slots>);

impl Slots {
    /// Takes a slot if one is free. Only the accept loop takes slots, but
    /// sessions free them concurrently, hence the compare-and-swap.
    fn take(self: &Arc<Self>) -> Option<Slot> {
        self.open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
                (open < self.max).then_some(open + 1)
            })
            .ok()?;
        Some(Slot(Arc::clone(self)))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A bound server, ready to [`run`](Server::run).
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    shared: Arc<Shared>,
    slots: Arc<Slots>,
    next_id: AtomicU64,
}

impl Server {
    /// Binds the listening socket (`--bind`, `--port`).
    pub fn bind(config: Config) -> io::Result<Server> {
        let listener = TcpListener::bind(SocketAddr::new(config.bind, config.port))?;
        let slots = Arc::new(Slots {
            open: AtomicUsize::new(0),
            max: config.max_connections,
        });
        let log = Log {
            verbose: config.verbose,
        };
        let shared = Arc::new(Shared {
            config,
            registry: Registry::default(),
            log,
        });
        Ok(Server {
            listener,
            shared,
            slots,
            next_id: AtomicU64::new(1),
        })
    }

    /// The address actually bound (with the port the system chose for
    /// `--port 0`).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Announces the server on stderr, then accepts connections for ever.
    /// A failing client never stops it; only a broken listener does.
    pub fn run(self) -> io::Result<()> {
        eprintln!(
            "minichat: listening on {} (max {} connections)",
            self.local_addr()?,
            self.slots.max
        );
        for incoming in self.listener.incoming() {
            match incoming {
                Ok(stream) => self.admit(stream),
                Err(e) => {
                    self.shared.log.event(format_args!("accept failed: {e}"));
                    if is_out_of_resources(&e) {
                        thread::sleep(ACCEPT_BACKOFF);
                    }
                }
            }
        }
        Ok(())
    }

    /// Gives a new connection a slot and a session thread, or refuses it.
    fn admit(&self, stream: TcpStream) {
        let peer = match prepare(&stream, self.shared.config.write_timeout) {
            Ok(peer) => peer,
            Err(e) => {
                return self
                    .shared
                    .log
                    .event(format_args!("connection dropped at accept: {e}"));
            }
        };
        let Some(slot) = self.slots.take() else {
            return self.refuse(stream, peer);
        };
        let id: ConnId = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.shared.log.event(format_args!(
            "{peer} accepted ({}/{} connections)",
            self.slots.open.load(Ordering::Acquire),
            self.slots.max
        ));
        let shared = Arc::clone(&self.shared);
        let spawned = thread::Builder::new()
            .name(format!("session-{id}"))
            .stack_size(SESSION_STACK_BYTES)
            .spawn(move || Session::new(stream, slot, id, peer, shared).run());
        if let Err(e) = spawned {
            // The closure, its slot and its socket were dropped with the error.
            self.shared
                .log
                .event(format_args!("{peer} dropped: no thread for it ({e})"));
        }
    }

    /// `ERR FULL <reason>`, then close.
    fn refuse(&self, mut stream: TcpStream, peer: SocketAddr) {
        let full = Error::new(
            ErrorCode::Full,
            format!(
                "server full ({} connections), try again later",
                self.slots.max
            ),
        );
        let mut line = Vec::new();
        Reply::Error(&full).encode(&mut line);
        // The socket is new, so this small write goes straight into its
        // empty send buffer; the write timeout bounds it all the same.
        let _ = write_within(&stream, &line, self.shared.config.write_timeout);
        // Closing a socket that still holds unread input makes the system
        // reset the connection, which can destroy the ERR FULL line before
        // the client reads it: read whatever the client already sent.
        // (Bounded, so a client streaming bytes cannot hold the accept loop.)
        if stream.set_nonblocking(true).is_ok() {
            let mut sink = [0; 1024];
            for _ in 0..REFUSAL_DRAIN_READS {
                if !matches!(stream.read(&mut sink), Ok(n) if n > 0) {
                    break;
                }
            }
        }
        self.shared
            .log
            .event(format_args!("{peer} refused: server full"));
    }
}

/// Sets up a new client socket: TCP_NODELAY, since every line is a message
/// someone waits for; and the write timeout, so no write can block for ever.
fn prepare(stream: &TcpStream, write_timeout: Duration) -> io::Result<SocketAddr> {
    stream.set_nodelay(true)?;
    stream.set_write_timeout(Some(write_timeout))?;
    stream.peer_addr()
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
