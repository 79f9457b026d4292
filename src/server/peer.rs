//! One client's connection as every thread sees it, and **the only way to
//! write to a client**: through its socket's own write lock.
//!
//! Two threads may write to one socket: the client's own session (its
//! replies) and the session of any user who sends it a message (`RECEIVE`).
//! Bytes from two writers can interleave (`RECEIVE al` + `OK PI` + `ice hi`),
//! so whoever writes owns the socket for the whole batch of lines: it holds
//! [`Peer`]'s write lock across the blocking write. That lock exists for
//! that call and guards nothing else, so a client that stops reading delays
//! only the threads that write to it, each for at most the write timeout.
//!
//! **Lock order.** A thread holds at most one write lock at a time. It may
//! take the registry lock while it holds a write lock (the registry lock is
//! only ever held for a few map operations, never across I/O), but never a
//! write lock while it holds the registry lock. So no cycle can form.
//!
//! **Dropping a client** happens in one place, [`Peer::drop_client`]: when a
//! write to it fails or times out, or when the operator kicks it. Its socket
//! is shut down, which ends its session at once, and every later write to
//! it fails without waiting. (Its name is released by whoever dropped it,
//! through the registry's one `remove`.)

use std::io::{self, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
#[cfg(test)]
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Identifies one accepted connection for its whole life, so that a session
/// can only ever remove its own name, never a newer user's of the same name.
pub(crate) type ConnId = u64;

/// A socket write whose timeout is this much longer than what is left of
/// its deadline is shortened first. Below that, the system call is not
/// worth it: a write can overrun its deadline by at most this much.
const WRITE_TIMEOUT_SLACK: Duration = Duration::from_millis(10);

/// An open client connection, shared by its session, the registry (once it
/// logged in) and the operator's console.
#[derive(Debug)]
pub(crate) struct Peer {
    pub(crate) id: ConnId,
    pub(crate) addr: SocketAddr,
    /// Read only by the client's session; written only under `writer`.
    stream: TcpStream,
    /// The write lock (see the module doc). `true` while other threads may
    /// still write: the last line (`OK QUIT`, `ERR TIMEOUT`) closes it, so
    /// that nothing can follow that line.
    writer: Mutex<bool>,
    /// Set when the client was dropped (a write to it failed or timed out,
    /// or it was kicked): its session stops at its next step, and whatever
    /// it had not carried out yet is never carried out.
    dropped: AtomicBool,
    /// `--write-timeout`: how long one batch of lines may wait for the
    /// socket. Also the socket's own write timeout.
    write_timeout: Duration,
    /// When the connection was accepted (for the console's `list`).
    pub(crate) accepted: Instant,
    /// When the last complete line arrived, in milliseconds after
    /// `accepted` (for the console; the session keeps its own clock).
    last_line_ms: AtomicU64,
}

/// Why a write did not happen.
#[derive(Debug)]
pub(crate) enum Undelivered {
    /// The write failed or timed out, and this write dropped the client.
    Dropped(io::Error),
    /// The client was already dropped, or has left (its last line is
    /// written), or the sender was dropped meanwhile.
    Gone,
}

impl Peer {
    /// Sets up a new client socket: TCP_NODELAY, since every line is a
    /// message someone waits for; and the write timeout, so that no write
    /// can block for ever.
    pub(crate) fn new(stream: TcpStream, id: ConnId, write_timeout: Duration) -> io::Result<Peer> {
        stream.set_nodelay(true)?;
        stream.set_write_timeout(Some(write_timeout))?;
        let addr = stream.peer_addr()?;
        Ok(Peer {
            id,
            addr,
            stream,
            writer: Mutex::new(true),
            dropped: AtomicBool::new(false),
            write_timeout,
            accepted: Instant::now(),
            last_line_ms: AtomicU64::new(0),
        })
    }

    /// The socket, for the session to read from.
    pub(crate) fn stream(&self) -> &TcpStream {
        &self.stream
    }

    pub(crate) fn is_dropped(&self) -> bool {
        self.dropped.load(Ordering::Acquire)
    }

    /// Notes that a complete line arrived now.
    pub(crate) fn saw_line(&self, at: Instant) {
        let ms = at.saturating_duration_since(self.accepted).as_millis();
        self.last_line_ms
            .store(u64::try_from(ms).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// How long ago the last complete line arrived (or the accept, if none).
    pub(crate) fn idle_for(&self) -> Duration {
        let last = Duration::from_millis(self.last_line_ms.load(Ordering::Relaxed));
        self.accepted.elapsed().saturating_sub(last)
    }

    /// Writes `RECEIVE` lines from the user of connection `sender`. The
    /// sender's own state is checked under this socket's write lock: once a
    /// sender is dropped, no line of its can start.
    pub(crate) fn deliver(&self, lines: &[u8], sender: &Peer) -> Result<(), Undelivered> {
        let (_writer, deadline) = self.writer()?;
        if sender.is_dropped() {
            return Err(Undelivered::Gone);
        }
        self.write_or_drop(lines, deadline)
    }

    /// Writes the session's own replies. `first` runs once the write lock
    /// is held, before the bytes go out: a login becomes visible to other
    /// senders there, so that no `RECEIVE` can come before its `OK CONNECT`.
    pub(crate) fn reply(&self, lines: &[u8], first: impl FnOnce()) -> Result<(), Undelivered> {
        let (_writer, deadline) = self.writer()?;
        first();
        self.write_or_drop(lines, deadline)
    }

    /// Writes the last lines of the connection (ending with `OK QUIT` or
    /// `ERR TIMEOUT`), then closes the socket to every writer and sends the
    /// end of stream, all under the write lock: nothing can come after.
    pub(crate) fn reply_last(&self, lines: &[u8]) -> Result<(), Undelivered> {
        let (mut writer, deadline) = self.writer()?;
        let written = self.write_or_drop(lines, deadline);
        *writer = false;
        let _ = self.stream.shutdown(Shutdown::Write); // closing anyway
        written
    }

    /// Drops the client: its socket is shut down both ways, which wakes its
    /// session (blocked in a read or a write) and ends it. Every write to it
    /// fails from now on. Takes no lock, so it can never wait.
    pub(crate) fn drop_client(&self) {
        self.dropped.store(true, Ordering::Release);
        let _ = self.stream.shutdown(Shutdown::Both); // it may be closed already
    }

    /// Takes the write lock, unless the socket is closed to writers, and
    /// returns it (held by the caller until its write is done) with the
    /// deadline of that write: the write timeout, counted from the moment
    /// the lock was asked for. A poisoned lock is used as it is: its state
    /// is one flag.
    fn writer(&self) -> Result<(MutexGuard<'_, bool>, Option<Instant>), Undelivered> {
        let deadline = Instant::now().checked_add(self.write_timeout);
        // Blocks at most while another thread writes to this socket, which
        // is bounded by the write timeout.
        let writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        if !*writer || self.is_dropped() {
            return Err(Undelivered::Gone);
        }
        Ok((writer, deadline))
    }

    /// Writes all of `bytes` before `deadline`, or drops the client.
    fn write_or_drop(&self, bytes: &[u8], deadline: Option<Instant>) -> Result<(), Undelivered> {
        write_before(&self.stream, bytes, deadline, self.write_timeout).map_err(|error| {
            self.drop_client();
            Undelivered::Dropped(error)
        })
    }
}

/// Writes all of `bytes` to `stream` before `deadline` (`None`: a deadline
/// too far away to compute, which the socket's own timeout still bounds),
/// however slowly the peer reads. The socket's timeout alone would restart
/// at each partial write, and a client reading one byte a second would keep
/// its writers for ever.
///
/// `timeout` is the timeout the socket is set to; it is shortened for the
/// rest of a slow write, and set back after.
pub(crate) fn write_before(
    mut stream: &TcpStream,
    mut bytes: &[u8],
    deadline: Option<Instant>,
    timeout: Duration,
) -> io::Result<()> {
    let mut set = timeout;
    let result = loop {
        if bytes.is_empty() {
            break Ok(());
        }
        if let Some(deadline) = deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break Err(io::ErrorKind::TimedOut.into());
            }
            if left + WRITE_TIMEOUT_SLACK < set {
                if let Err(e) = stream.set_write_timeout(Some(left)) {
                    break Err(e);
                }
                set = left;
            }
        }
        match stream.write(bytes) {
            Ok(0) => break Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // The socket's timeout fired: the deadline decides.
            Err(e) if deadline.is_some() && is_timeout(&e) => {}
            Err(e) => break Err(e),
        }
    };
    if set != timeout {
        stream.set_write_timeout(Some(timeout))?;
    }
    result
}

/// True for the errors a socket read or write that hit its timeout gives:
/// `WouldBlock` or `TimedOut`, depending on the system.
pub(crate) fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use std::net::TcpListener;

    /// A server-side [`Peer`] for connection `id`, and the client's end of
    /// its socket.
    pub(crate) fn connected(id: ConnId, write_timeout: Duration) -> (Arc<Peer>, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        let peer = Peer::new(server, id, write_timeout).unwrap();
        (Arc::new(peer), client)
    }
}
