//! One client's session, on its own thread: read lines, carry out commands,
//! write replies, until the client leaves or times out.
//!
//! The session owns the client's side of everything: its socket, its login
//! and its connection slot. Both of the last two are guards released by
//! `Drop`, so whatever way the session ends (QUIT, end of stream, reset,
//! timeout, write error, even a panic), the slot and the name are freed.

use std::io::{self, Read};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::line::{Line, LineReader, is_timeout};
use crate::outbox::Outbox;
use crate::protocol::{self, Command, Error, ErrorCode, Reply};
use crate::registry::{ConnId, Users};
use crate::server::{Shared, Slot};

/// Why a session ended, as the log says it.
#[derive(Debug)]
pub enum End {
    /// The client sent `QUIT`.
    Quit,
    /// The client closed the connection (or the server shut it down after a
    /// write to it timed out).
    Closed,
    /// The login or idle timeout expired.
    TimedOut(Timeout),
    /// Reading or writing failed (reset by the peer, write timeout, ...).
    Failed(io::Error),
}

/// The two clocks that can close a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timeout {
    /// No `CONNECT` within `--login-timeout` of the accept.
    Login,
    /// No complete line within `--idle-timeout` of the last one.
    Idle,
}

/// One connection, from its greeting to its close.
pub struct Session {
    lines: LineReader,
    client: Client,
}

/// Everything about the connection but its read buffer (kept apart so a
/// line borrowed from the buffer can be handled by the client's methods).
struct Client {
    // Fields are dropped in this order, which is the order of release when
    // the session ends: the slot, then the name, then the socket. So a
    // client that sees its connection closed knows that both are free.
    /// This connection's place among the `--max-connections`; given back
    /// early by [`Client::end_here`].
    slot: Option<Slot>,
    /// Set by a successful `CONNECT`.
    login: Option<Login>,
    /// The socket, shared with the registry once logged in.
    stream: Arc<TcpStream>,
    id: ConnId,
    peer: SocketAddr,
    /// How the log names this client: its address, then its user name once
    /// logged in.
    label: String,
    shared: Arc<Shared>,
    outbox: Outbox,
    accepted: Instant,
    /// When the last complete line arrived: the idle clock.
    last_line: Instant,
}

/// A registered name, removed from the registry when dropped.
struct Login {
    name: String,
    /// The name's registry key ([`protocol::name_key`]), computed once.
    key: String,
    id: ConnId,
    shared: Arc<Shared>,
}

impl Drop for Login {
    fn drop(&mut self) {
        self.shared.registry.lock().remove(&self.key, self.id);
    }
}

/// What to do after a command.
enum Flow {
    Continue,
    Stop(End),
}

impl Session {
    pub fn new(
        stream: TcpStream,
        slot: Slot,
        id: ConnId,
        peer: SocketAddr,
        shared: Arc<Shared>,
    ) -> Session {
        let now = Instant::now();
        Session {
            lines: LineReader::new(),
            client: Client {
                slot: Some(slot),
                login: None,
                stream: Arc::new(stream),
                id,
                peer,
                label: peer.to_string(),
                shared,
                outbox: Outbox::default(),
                accepted: now,
                last_line: now,
            },
        }
    }

    /// Greets the client and serves it until the connection ends; logs how.
    pub fn run(mut self) {
        let end = self.serve();
        if matches!(end, End::Quit | End::TimedOut(_)) && self.client.slot.is_some() {
            self.client.linger(); // see `Client::end_here`
        }
        let who = &self.client.label;
        let log = &self.client.shared.log;
        match end {
            End::Quit => log.event(format_args!("{who} left (QUIT)")),
            End::Closed => log.event(format_args!("{who} disconnected (connection closed)")),
            End::TimedOut(Timeout::Login) => {
                log.event(format_args!("{who} timed out (no CONNECT)"))
            }
            End::TimedOut(Timeout::Idle) => log.event(format_args!("{who} timed out (idle)")),
            End::Failed(e) => log.event(format_args!("{who} disconnected ({e})")),
        }
    }

    fn serve(&mut self) -> End {
        self.client.outbox.reply(&Reply::Welcome);
        let shared = Arc::clone(&self.client.shared);
        if let Err(e) = self.client.flush(&mut shared.registry.lock()) {
            return End::Failed(e);
        }
        loop {
            if self.lines.has_line() {
                if let Flow::Stop(end) = self.handle_batch() {
                    return end;
                }
                continue;
            }
            if let Err(end) = self.client.arm_read_timeout() {
                return end;
            }
            match self.lines.fill(&mut &*self.client.stream) {
                Ok(0) => return End::Closed,
                Ok(_) => {}
                // The read timed out: the loop checks which clock expired.
                Err(e) if is_timeout(&e) || e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return End::Failed(e),
            }
        }
    }

    /// Handles every complete line already read, then writes what they
    /// produced, all under one hold of the registry lock.
    fn handle_batch(&mut self) -> Flow {
        // The lock is held across the writes below on purpose: it is what
        // makes each line written to a socket whole (see registry.rs). A
        // recipient that does not read can keep it for at most the write
        // timeout, after which it is dropped; that bounds the stall every
        // other client can see.
        let shared = Arc::clone(&self.client.shared);
        let mut users = shared.registry.lock();
        // While this thread waited for the lock, a writer may have dropped
        // this client for a write timeout (see `Outbox::flush`): its name is
        // released, and may already belong to a newcomer. The lines it read
        // before the drop must not be carried out, or a RECEIVE would show
        // a name this connection no longer holds.
        if self.client.lost_its_name(&users) {
            return Flow::Stop(End::Closed);
        }
        let mut flow = Flow::Continue;
        while let Some(line) = self.lines.next_line() {
            flow = self.client.handle_line(line, &mut users);
            if let Flow::Stop(_) = flow {
                break;
            }
        }
        if let Flow::Stop(End::Quit) = flow {
            self.client.end_here(&mut users);
        }
        match self.client.flush(&mut users) {
            Ok(()) => flow,
            Err(e) => Flow::Stop(End::Failed(e)),
        }
    }
}

impl Client {
    /// Handles one line: at most one reply, as the contract says.
    fn handle_line(&mut self, line: Line<'_>, users: &mut Users) -> Flow {
        self.last_line = Instant::now();
        let parsed = match line {
            Line::TooLong => {
                self.shared
                    .log
                    .wire(&self.label, '>', b"(a line over 512 bytes)");
                Err(protocol::line_too_long())
            }
            Line::Complete(bytes) => {
                self.shared.log.wire(&self.label, '>', bytes);
                protocol::parse(bytes, self.login.is_some())
            }
        };
        match parsed.and_then(|command| self.execute(command, users)) {
            Ok(flow) => flow,
            Err(error) => {
                self.outbox.reply(&Reply::Error(&error));
                Flow::Continue
            }
        }
    }

    /// Carries out a parsed command (`None`: an empty line, no reply).
    fn execute(&mut self, command: Option<Command<'_>>, users: &mut Users) -> Result<Flow, Error> {
        let Some(command) = command else {
            return Ok(Flow::Continue);
        };
        match command {
            Command::Connect(name) => {
                let key = users.register(name, self.id, Arc::clone(&self.stream))?;
                self.login = Some(Login {
                    name: name.to_owned(),
                    key,
                    id: self.id,
                    shared: Arc::clone(&self.shared),
                });
                self.shared.log.event(format_args!(
                    "{} logged in as {name} ({} logged in)",
                    self.peer,
                    users.len()
                ));
                self.label = name.to_owned();
                self.outbox.reply(&Reply::Connected(name));
            }
            Command::Send { to, text } => {
                let (key, user) = users.find(to)?;
                let from = self.login.as_ref().map_or("", |login| login.name.as_str());
                if user.id == self.id {
                    // To oneself: the same socket, so the RECEIVE line goes
                    // with the replies, in order, right before its OK.
                    self.outbox.reply(&Reply::Receive { from, text });
                    self.outbox.reply(&Reply::Sent(&user.name));
                } else {
                    self.outbox.deliver(key, &user.name, from, text);
                }
            }
            Command::List => self.outbox.reply(&Reply::List(&users.names())),
            Command::Ping => self.outbox.reply(&Reply::Pong),
            Command::Help => self.outbox.reply(&Reply::Help),
            Command::Quit => {
                self.outbox.reply(&Reply::Bye);
                return Ok(Flow::Stop(End::Quit));
            }
        }
        Ok(Flow::Continue)
    }

    /// True when this client logged in but the registry no longer holds its
    /// name for this connection: another thread dropped it.
    fn lost_its_name(&self, users: &Users) -> bool {
        self.login
            .as_ref()
            .is_some_and(|login| !users.holds(&login.key, self.id))
    }

    /// The connection ends here, by `QUIT` or a timeout, and the caller
    /// holds the lock to write the last reply. Frees the name now, in this
    /// same hold of the lock, so that whoever reads `OK QUIT` or
    /// `ERR TIMEOUT` can take the name at once; and frees the slot too,
    /// unless the client has sent more than the server read (then
    /// [`linger`](Self::linger) keeps it a little longer).
    fn end_here(&mut self, users: &mut Users) {
        if let Some(login) = &self.login {
            users.remove(&login.key, self.id); // `Login`'s drop finds it gone
        }
        if !self.has_unread_input() {
            self.slot = None;
        }
    }

    /// Closes gently after `QUIT` or a timeout when the client has sent
    /// more than the server read. Closing a socket whose input is not all
    /// read makes the system reset the connection, and a reset throws away
    /// the replies still queued for the client (`OK QUIT`, `ERR TIMEOUT`,
    /// even `RECEIVE` lines already acknowledged to their senders). So:
    /// send the end of stream after the replies, and read and discard the
    /// client's input until it closes its side, for at most the write
    /// timeout. The slot stays taken meanwhile, so that a client cannot
    /// pile up lingering threads by sending junk after `QUIT`.
    fn linger(&mut self) {
        let _ = self.stream.shutdown(Shutdown::Write); // closing anyway
        let Some(deadline) = Instant::now().checked_add(self.shared.config.write_timeout) else {
            return; // a write timeout too far away to wait for
        };
        let mut sink = [0; 1024];
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            if left.is_zero() || self.stream.set_read_timeout(Some(left)).is_err() {
                break;
            }
            match (&*self.stream).read(&mut sink) {
                Ok(0) => break, // the client closed: all was delivered
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
    }

    /// True when bytes the client sent wait in the socket, unread.
    fn has_unread_input(&self) -> bool {
        if self.stream.set_nonblocking(true).is_err() {
            return false;
        }
        let unread = matches!(self.stream.peek(&mut [0]), Ok(n) if n > 0);
        let _ = self.stream.set_nonblocking(false); // closing soon anyway
        unread
    }

    /// Writes what the batch produced (the caller holds the lock).
    fn flush(&mut self, users: &mut Users) -> io::Result<()> {
        let timeout = self.shared.config.write_timeout;
        self.outbox
            .flush(users, &self.stream, &self.label, timeout, &self.shared.log)
    }

    /// Sets the socket's read timeout to what is left before the nearest
    /// deadline. When that deadline has passed, says so to the client
    /// (`ERR TIMEOUT`) and returns how the session ends.
    ///
    /// The deadlines move only with complete lines, never with single
    /// bytes: a client dribbling a byte at a time cannot keep its slot.
    fn arm_read_timeout(&mut self) -> Result<(), End> {
        let Some((deadline, which)) = self.deadline() else {
            return self.stream.set_read_timeout(None).map_err(End::Failed);
        };
        match deadline.checked_duration_since(Instant::now()) {
            Some(left) if !left.is_zero() => self
                .stream
                .set_read_timeout(Some(left))
                .map_err(End::Failed),
            _ => {
                let reason = match which {
                    Timeout::Login => format!(
                        "no CONNECT within {} s",
                        secs(self.shared.config.login_timeout)
                    ),
                    Timeout::Idle => format!(
                        "no complete line for {} s",
                        secs(self.shared.config.idle_timeout)
                    ),
                };
                self.outbox
                    .reply(&Reply::Error(&Error::new(ErrorCode::Timeout, reason)));
                let shared = Arc::clone(&self.shared);
                let mut users = shared.registry.lock();
                self.end_here(&mut users);
                let _ = self.flush(&mut users); // closing anyway
                Err(End::TimedOut(which))
            }
        }
    }

    /// The nearest of the login deadline (until `CONNECT` succeeds) and the
    /// idle deadline, if any applies.
    fn deadline(&self) -> Option<(Instant, Timeout)> {
        let config = &self.shared.config;
        let after =
            |start: Instant, timeout: Option<Duration>| timeout.and_then(|t| start.checked_add(t));
        let login = match self.login {
            None => after(self.accepted, config.login_timeout).map(|at| (at, Timeout::Login)),
            Some(_) => None,
        };
        let idle = after(self.last_line, config.idle_timeout).map(|at| (at, Timeout::Idle));
        login.into_iter().chain(idle).min_by_key(|(at, _)| *at)
    }
}

fn secs(timeout: Option<Duration>) -> u64 {
    timeout.map_or(0, |t| t.as_secs())
}
