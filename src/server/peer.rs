//! One client's connection as every thread sees it, and **the only way to
//! write to a client, or to close it**: through its socket's own write lock.
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
//! **Closing** happens under the same lock, whatever ends the connection
//! (`QUIT`, a timeout, the end of the client's stream, an error, a kick, a
//! write that timed out): a `shutdown` taken outside it could land in the
//! middle of another thread's line and cut it. [`Peer::close`] is the one
//! way to close; [`Peer::reply_last`] closes right after the last lines;
//! a write that fails closes the socket it failed on, lock in hand.
//! (Shutting down the read side, as [`Peer::kick`] does to wake the
//! session, never touches a line being written.)

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
    /// Read only by the client's session; written and closed only under
    /// `writer`.
    stream: TcpStream,
    /// The write lock (see the module doc), and whether other threads may
    /// still write to the socket.
    writer: Mutex<WriteSide>,
    /// Set when the client was dropped (a write to it failed or timed out,
    /// or it was kicked): its session stops at its next step, and whatever
    /// it had not carried out yet is never carried out.
    dropped: AtomicBool,
    /// `--write-timeout`: how long one batch of lines may wait for the
    /// socket. Also the socket's own write timeout.
    write_timeout: Duration,
    /// When the connection was accepted (for the console's `list`, and the
    /// login clock).
    pub(crate) accepted: Instant,
    /// When the last complete line arrived, in milliseconds after
    /// `accepted` (for the console; the session keeps its own clock).
    last_line_ms: AtomicU64,
}

/// What the write lock guards: whether the socket still takes lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WriteSide {
    /// Lines may be written.
    Open,
    /// The connection's last line is written, or it was closed: nothing
    /// may be written after that.
    Closed,
}

/// Why a write did not happen, or did not happen whole.
#[derive(Debug)]
pub(crate) enum Undelivered {
    /// The write failed or timed out after `written` bytes, and this write
    /// dropped the client.
    Dropped { error: io::Error, written: usize },
    /// Nothing was written: the client was already dropped, or has left
    /// (its last line is written), or the sender was dropped meanwhile.
    Gone,
}

impl Undelivered {
    /// How many bytes reached the socket before the write stopped.
    pub(crate) fn written(&self) -> usize {
        match self {
            Undelivered::Dropped { written, .. } => *written,
            Undelivered::Gone => 0,
        }
    }
}

impl Peer {
    /// A new client socket, accepted from `addr` (its session then calls
    /// [`set_up`]).
    pub(crate) fn new(
        stream: TcpStream,
        id: ConnId,
        addr: SocketAddr,
        write_timeout: Duration,
    ) -> Peer {
        Peer {
            id,
            addr,
            stream,
            writer: Mutex::new(WriteSide::Open),
            dropped: AtomicBool::new(false),
            write_timeout,
            accepted: Instant::now(),
            last_line_ms: AtomicU64::new(0),
        }
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

    /// Takes the write lock for the greeting, before the session's thread
    /// exists: whatever that thread writes waits until the greeting is out.
    pub(crate) fn lock_for_greeting(&self) -> Greeting<'_> {
        Greeting {
            peer: self,
            writer: self.lock(),
        }
    }

    /// Returns once the accept loop has written the greeting (and let go of
    /// the write lock it took for it).
    pub(crate) fn wait_for_greeting(&self) {
        drop(self.lock());
    }

    /// Writes `RECEIVE` lines from the user of connection `sender`. The
    /// sender's own state is checked under this socket's write lock: once a
    /// sender is dropped, no line of its can start.
    pub(crate) fn deliver(&self, lines: &[u8], sender: &Peer) -> Result<(), Undelivered> {
        let (mut writer, deadline) = self.writer()?;
        if sender.is_dropped() {
            return Err(Undelivered::Gone);
        }
        self.write_or_drop(&mut writer, lines, deadline)
    }

    /// Writes the session's own replies. `first` runs once the write lock
    /// is held, before the bytes go out: a login becomes visible to other
    /// senders there, so that no `RECEIVE` can come before its `OK CONNECT`.
    pub(crate) fn reply(&self, lines: &[u8], first: impl FnOnce()) -> Result<(), Undelivered> {
        let (mut writer, deadline) = self.writer()?;
        first();
        self.write_or_drop(&mut writer, lines, deadline)
    }

    /// Writes the last lines of the connection (ending with `OK QUIT` or
    /// `ERR TIMEOUT`), then closes the socket to every writer and sends the
    /// end of stream, all under the write lock: nothing can come after.
    /// The read side stays open, for the session to linger on.
    pub(crate) fn reply_last(&self, lines: &[u8]) -> Result<(), Undelivered> {
        let (mut writer, deadline) = self.writer()?;
        let written = self.write_or_drop(&mut writer, lines, deadline);
        self.shut(&mut writer, Shutdown::Write);
        written
    }

    /// Closes the connection both ways, once whoever is writing to it has
    /// finished its lines: the end of every session, whatever ended it.
    /// Waits at most as long as one write may take (the write timeout).
    pub(crate) fn close(&self) {
        let mut writer = self.lock();
        self.shut(&mut writer, Shutdown::Both);
    }

    /// Sends the end of stream after the lines already written, once
    /// whoever is writing has finished its lines; the read side stays open
    /// for the session to linger on. (The same wait as [`close`](Self::close).)
    pub(crate) fn close_write(&self) {
        let mut writer = self.lock();
        self.shut(&mut writer, Shutdown::Write);
    }

    /// The operator's `kick`, in two steps. First this: marks the client
    /// dropped, so that no new line starts to it and its session stops at
    /// its next step; and sends the end of stream after the lines already
    /// written (waiting, at most the write timeout, for a line being
    /// written). The client can read them all, then the end.
    pub(crate) fn kick(&self) {
        self.dropped.store(true, Ordering::Release);
        self.close_write();
    }

    /// Then, once those lines have reached the client (or it had the time
    /// to take them): wakes the session if it is still waiting for input,
    /// by shutting the read side down. (Not before: a socket shut both ways
    /// that still receives data answers with a reset, which would throw
    /// away the lines still on their way.)
    pub(crate) fn wake(&self) {
        let _ = self.stream.shutdown(Shutdown::Read); // it may be closed already
    }

    /// Whether everything written to the socket has reached the client's
    /// system (`None`: the system cannot tell).
    pub(crate) fn delivered(&self) -> Option<bool> {
        crate::sys::unacknowledged_bytes(&self.stream).map(|bytes| bytes == 0)
    }

    /// Takes the write lock, unless the socket is closed to writers, and
    /// returns it (held by the caller until its write is done) with the
    /// deadline of that write: the write timeout, counted from the moment
    /// the lock was asked for.
    fn writer(&self) -> Result<(MutexGuard<'_, WriteSide>, Instant), Undelivered> {
        let deadline = Instant::now() + self.write_timeout;
        let writer = self.lock();
        if *writer == WriteSide::Closed || self.is_dropped() {
            return Err(Undelivered::Gone);
        }
        Ok((writer, deadline))
    }

    /// The write lock. It blocks at most while another thread writes to
    /// this socket, which the write timeout bounds. A poisoned lock is used
    /// as it is: its state is one flag.
    fn lock(&self) -> MutexGuard<'_, WriteSide> {
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes all of `bytes` before `deadline`, or drops the client.
    fn write_or_drop(
        &self,
        writer: &mut WriteSide,
        bytes: &[u8],
        deadline: Instant,
    ) -> Result<(), Undelivered> {
        write_before(&self.stream, bytes, deadline, self.write_timeout).map_err(|stopped| {
            self.dropped.store(true, Ordering::Release);
            self.shut(writer, Shutdown::Both); // which wakes its session
            Undelivered::Dropped {
                error: stopped.error,
                written: stopped.written,
            }
        })
    }

    /// Closes the socket to writers and shuts it down `how`; the caller
    /// holds the write lock (`writer`).
    fn shut(&self, writer: &mut WriteSide, how: Shutdown) {
        *writer = WriteSide::Closed;
        let _ = self.stream.shutdown(how); // it may be closed already
    }
}

/// How many bytes the system may hold for one client that does not read,
/// at most, in its send buffer: [`SEND_BUFFER_BYTES`] (Linux reserves
/// twice that for its bookkeeping). Left alone, Linux grows a send buffer
/// up to 4 MB, so a client that pipelines `LIST`s and stops reading would
/// make the server format and copy megabytes for it before a write blocks:
/// 80 such clients kept an unrelated pair waiting for CPU for 150 ms. 64 KiB
/// holds hundreds of messages, more than a reader that keeps up needs.
pub(crate) const SEND_BUFFER_BYTES: i32 = 64 * 1024;

/// Sets up a new client socket: TCP_NODELAY, since every line is a message
/// someone waits for; the write timeout, so that no write can block for
/// ever; and a bounded send buffer ([`SEND_BUFFER_BYTES`]).
pub(crate) fn set_up(stream: &TcpStream, write_timeout: Duration) -> io::Result<()> {
    stream.set_nodelay(true)?;
    stream.set_write_timeout(Some(write_timeout))?;
    crate::sys::set_send_buffer(stream, SEND_BUFFER_BYTES)
}

/// The write lock, held by the accept loop while it starts the session's
/// thread and writes the greeting.
pub(crate) struct Greeting<'a> {
    peer: &'a Peer,
    writer: MutexGuard<'a, WriteSide>,
}

impl Greeting<'_> {
    /// Writes `line` (`OK WELCOME`). The socket is new and its send buffer
    /// empty, so the line goes straight in; the write timeout bounds it all
    /// the same. The lock is held until this `Greeting` is dropped.
    pub(crate) fn write(&mut self, line: &[u8]) -> Result<(), Undelivered> {
        let deadline = Instant::now() + self.peer.write_timeout;
        self.peer.write_or_drop(&mut self.writer, line, deadline)
    }
}

/// A write that stopped before its end.
#[derive(Debug)]
pub(crate) struct Stopped {
    pub(crate) error: io::Error,
    /// How many bytes were written before it stopped.
    pub(crate) written: usize,
}

/// Writes all of `bytes` to `stream` before `deadline`, however slowly the
/// peer reads. The socket's timeout alone would restart at each partial
/// write, and a client reading one byte a second would keep its writers for
/// ever.
///
/// `timeout` is the timeout the socket is set to; it is shortened for the
/// rest of a slow write, and set back after.
pub(crate) fn write_before(
    mut stream: &TcpStream,
    bytes: &[u8],
    deadline: Instant,
    timeout: Duration,
) -> Result<(), Stopped> {
    let mut written = 0;
    let mut set = timeout;
    let result = loop {
        let rest = &bytes[written..];
        if rest.is_empty() {
            break Ok(());
        }
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
        // `Write` is implemented for `&TcpStream` too: the socket is shared
        // by reference, and the write lock says who may write through it.
        match stream.write(rest) {
            Ok(0) => break Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => written += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // The socket's timeout fired: the deadline decides.
            Err(e) if is_timeout(&e) => {}
            Err(e) => break Err(e),
        }
    };
    let restored = match set == timeout {
        true => Ok(()),
        false => stream.set_write_timeout(Some(timeout)),
    };
    result
        .and(restored)
        .map_err(|error| Stopped { error, written })
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
        let (server, addr) = listener.accept().unwrap();
        set_up(&server, write_timeout).unwrap();
        let peer = Peer::new(server, id, addr, write_timeout);
        (Arc::new(peer), client)
    }
}
