//! One client's session, on its own thread: read lines, carry out commands,
//! write replies, until the client leaves, times out or is dropped.
//!
//! The session owns the client's side of everything: its reads, its login
//! and its connection slot. The last two are guards released by `Drop`, so
//! whatever way the session ends (QUIT, end of stream, reset, timeout, a
//! failed write, even a panic), the slot and the name are freed.
//!
//! **The end of a connection** (PROTOCOL.md, "Fin d'une connexion") is the
//! same after `QUIT` and after `ERR TIMEOUT`: the name and the slot are
//! given back first, so a client that has read the last line can come back
//! at once under the same name; then the last lines are written and the
//! end of stream sent after them; then the session *lingers*: it reads and
//! discards what the client still sends, until the client closes or the
//! write timeout runs out. Closing a socket that still has unread input
//! makes the system reset the connection, and a reset throws away the
//! replies not yet delivered; lingering is what keeps them.

use std::io::{self, Read};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Shared;
use super::framing::{Line, LineReader};
use super::outbox::{Outbox, log_lines};
use super::peer::{ConnId, Peer, Undelivered, is_timeout};
use super::registry::Users;
use super::slots::{LingerPlace, Slot};
use crate::protocol::{self, Command, Error, ErrorCode, Reply};

/// A read timeout that differs from what is left before the next deadline
/// by less than this is left as it is: a system call saved per read, for a
/// timeout that fires at most this late.
const READ_TIMEOUT_SLACK: Duration = Duration::from_millis(10);

/// How much one read takes while lingering. The bytes are thrown away.
const LINGER_READ_BYTES: usize = 1024;

/// Why a session ended, as the log says it.
#[derive(Debug)]
pub(crate) enum End {
    /// The client sent `QUIT`.
    Quit,
    /// The client closed the connection.
    Closed,
    /// The login or idle timeout expired.
    TimedOut(Timeout),
    /// A writer gave up on this client, or the operator kicked it.
    Dropped,
    /// Reading or writing failed (reset by the peer, write timeout, ...).
    Failed(io::Error),
}

/// The two clocks that can close a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Timeout {
    /// No `CONNECT` within `--login-timeout` of the accept.
    Login,
    /// No complete line within `--idle-timeout` of the last one.
    Idle,
}

/// One connection, from its greeting to its close.
pub(crate) struct Session {
    lines: LineReader,
    client: Client,
}

/// Everything about the connection but its read buffer (kept apart so a
/// line borrowed from the buffer can be handled by the client's methods).
struct Client {
    /// This connection's place among the `--max-connections`; given back
    /// by [`Client::end_here`] or at the end of [`Session::run`].
    slot: Option<Slot>,
    /// Set by a successful `CONNECT`.
    login: Option<Login>,
    /// The connection, shared with the registry once logged in.
    peer: Arc<Peer>,
    /// How the log names this client: its address, then its user name once
    /// logged in.
    label: String,
    shared: Arc<Shared>,
    outbox: Outbox,
    /// When the last complete line arrived: the idle clock.
    last_line: Instant,
    /// What the socket's read timeout is set to now.
    read_timeout: Option<Duration>,
    /// Set once the last lines are written: this connection lingers in
    /// this place (or in its slot, if no lingering place was free).
    lingering: Option<Result<LingerPlace, Slot>>,
}

/// A registered name, removed from the registry when dropped.
struct Login {
    name: String,
    /// The name's registry key ([`protocol::name_key`]), computed once.
    key: String,
    /// False until the registry shows the name to the other users, which
    /// happens when its `OK CONNECT` is written.
    shown: bool,
    /// The connection that holds the name.
    id: ConnId,
    shared: Arc<Shared>,
}

impl Drop for Login {
    fn drop(&mut self) {
        self.shared.registry.remove(&self.key, self.id);
    }
}

/// What to do after a command.
enum Flow {
    Continue,
    Stop(End),
}

impl Session {
    /// The thread of a new connection that holds `slot`: sets its socket up
    /// and serves it. (Done here rather than in the accept loop, so that
    /// the connection's memory comes from this thread's allocator arena.)
    pub(crate) fn start(stream: TcpStream, id: ConnId, slot: Slot, shared: Arc<Shared>) {
        let peer = match Peer::new(stream, id, shared.config.write_timeout) {
            Ok(peer) => Arc::new(peer),
            Err(e) => {
                return shared
                    .log
                    .event(format_args!("connection dropped at accept: {e}"));
            }
        };
        slot.attach(&peer);
        shared.log.event(format_args!(
            "{} accepted ({}/{} connections)",
            peer.addr,
            shared.slots.count(),
            shared.slots.max
        ));
        Session::new(peer, slot, shared).run();
    }

    fn new(peer: Arc<Peer>, slot: Slot, shared: Arc<Shared>) -> Session {
        Session {
            lines: LineReader::new(),
            client: Client {
                slot: Some(slot),
                login: None,
                label: peer.addr.to_string(),
                last_line: peer.accepted,
                peer,
                shared,
                outbox: Outbox::default(),
                read_timeout: None,
                lingering: None,
            },
        }
    }

    /// Greets the client and serves it until the connection ends; logs how.
    pub(crate) fn run(mut self) {
        let end = self.serve();
        // The slot and the name are free before the client sees the close.
        self.client.slot = None;
        self.client.login = None;
        self.log(&end);
        self.client.linger(); // after QUIT or a timeout
        let _ = self.client.peer.stream().shutdown(Shutdown::Both); // closing anyway
    }

    /// Says in the log how the session ended.
    fn log(&self, end: &End) {
        let who = &self.client.label;
        let log = &self.client.shared.log;
        match end {
            End::Quit => log.event(format_args!("{who} left (QUIT)")),
            End::Closed => log.event(format_args!("{who} disconnected (connection closed)")),
            End::TimedOut(Timeout::Login) => {
                log.event(format_args!("{who} timed out (no CONNECT)"))
            }
            End::TimedOut(Timeout::Idle) => log.event(format_args!("{who} timed out (idle)")),
            End::Dropped => log.event(format_args!("{who} disconnected (dropped)")),
            End::Failed(e) => log.event(format_args!("{who} disconnected ({e})")),
        }
    }

    fn serve(&mut self) -> End {
        self.client.outbox.reply(&Reply::Welcome);
        if let Err(end) = self.client.write_replies() {
            return end;
        }
        loop {
            if self.client.peer.is_dropped() {
                return End::Dropped;
            }
            if self.lines.has_line() {
                if let Flow::Stop(end) = self.handle_batch() {
                    return end;
                }
                continue;
            }
            if let Err(end) = self.client.read_more(&mut self.lines) {
                return end;
            }
        }
    }

    /// Handles every complete line already read, then delivers and writes
    /// what they produced.
    fn handle_batch(&mut self) -> Flow {
        let shared = Arc::clone(&self.client.shared);
        let mut flow = Flow::Continue;
        let mut lines = 0;
        {
            // The registry lock is held while the lines are carried out
            // (no I/O), and let go before anything is written.
            let mut users = shared.registry.lock();
            while let Some(line) = self.lines.next_line() {
                lines += 1;
                flow = self.client.handle_line(line, &mut users);
                if let Flow::Stop(_) = flow {
                    break; // lines after QUIT are never carried out
                }
            }
        }
        self.client.peer.saw_line(self.client.last_line);
        let delivered = self.client.outbox.deliver(&self.client.peer, &shared);
        if delivered == 1 && lines == 1 {
            // A lone message, whose recipient is most likely waiting for
            // it. On a single CPU (a teaching VM often has one), this thread
            // would go on to write the sender's reply before the recipient
            // gets to run; yielding once hands the CPU over first. A
            // pipelining sender (many lines per batch) never yields, and
            // with a CPU to spare the call costs next to nothing.
            std::thread::yield_now();
        }
        match flow {
            Flow::Stop(end) => Flow::Stop(self.client.end_here(end)),
            Flow::Continue => match self.client.write_replies() {
                Ok(()) => Flow::Continue,
                Err(end) => Flow::Stop(end),
            },
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
        let me = self.peer.id;
        match command {
            Command::Connect(name) => {
                let key = users.register(name, &self.peer)?;
                self.login = Some(Login {
                    name: name.to_owned(),
                    key,
                    shown: false,
                    id: me,
                    shared: Arc::clone(&self.shared),
                });
                self.shared.log.event(format_args!(
                    "{} logged in as {name} ({} logged in)",
                    self.peer.addr,
                    users.len()
                ));
                self.label = name.to_owned();
                self.outbox.reply(&Reply::Connected(name));
            }
            Command::Send { to, text } => {
                let (key, user) = users.find(to, me)?;
                let from = self.login.as_ref().map_or("", |login| login.name.as_str());
                if user.peer.id == me {
                    // To oneself: the same socket, so the RECEIVE line goes
                    // with the replies, in order, right before its OK.
                    self.outbox.reply(&Reply::Receive { from, text });
                    self.outbox.reply(&Reply::Sent(&user.name));
                } else {
                    self.outbox.send(key, user, from, text);
                }
            }
            Command::List => self.outbox.reply(&Reply::List(&users.names(me))),
            Command::Ping => self.outbox.reply(&Reply::Pong),
            Command::Help => self.outbox.reply(&Reply::Help),
            Command::Quit => {
                self.outbox.reply(&Reply::Bye);
                return Ok(Flow::Stop(End::Quit));
            }
        }
        Ok(Flow::Continue)
    }

    /// Writes the replies of a batch (or the greeting). A login made in the
    /// batch is shown to the other users under the write lock, right
    /// before its `OK CONNECT` goes out: a message to the new name can only
    /// be written after it.
    fn write_replies(&mut self) -> Result<(), End> {
        let replies = self.outbox.replies();
        if replies.is_empty() {
            return Ok(());
        }
        log_lines(&self.shared.log, &self.label, replies);
        let unshown = self.login.as_mut().filter(|login| !login.shown);
        let written = self.peer.reply(replies, || {
            if let Some(login) = unshown {
                login.shared.registry.show(&login.key, login.id);
                login.shown = true;
            }
        });
        self.outbox.clear();
        written.map_err(|why| self.failed(why))
    }

    /// How the session ends when its own write did not happen.
    fn failed(&self, why: Undelivered) -> End {
        match why {
            Undelivered::Dropped(error) => End::Failed(error),
            Undelivered::Gone => End::Dropped,
        }
    }

    /// Reads more input, waiting at most until the nearest deadline. When
    /// that deadline has passed, says so to the client (`ERR TIMEOUT`) and
    /// ends the connection.
    ///
    /// The deadlines move only with complete lines, never with single
    /// bytes: a client dribbling a byte at a time cannot keep its slot.
    fn read_more(&mut self, lines: &mut LineReader) -> Result<(), End> {
        let left = match self.deadline() {
            None => None,
            Some((deadline, which)) => match deadline.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => Some(left),
                _ => return Err(self.time_out(which)),
            },
        };
        self.set_read_timeout(left).map_err(End::Failed)?;
        match lines.fill(&mut self.peer.stream()) {
            Ok(0) if self.peer.is_dropped() => Err(End::Dropped),
            Ok(0) => Err(End::Closed),
            Ok(_) => Ok(()),
            // The read timed out: the next call checks which clock expired.
            Err(e) if is_timeout(&e) || e.kind() == io::ErrorKind::Interrupted => Ok(()),
            Err(_) if self.peer.is_dropped() => Err(End::Dropped),
            Err(e) => Err(End::Failed(e)),
        }
    }

    /// Sets the socket's read timeout, unless it is already within
    /// [`READ_TIMEOUT_SLACK`] of `left`.
    fn set_read_timeout(&mut self, left: Option<Duration>) -> io::Result<()> {
        let close_enough = match (self.read_timeout, left) {
            (Some(set), Some(left)) => set.abs_diff(left) <= READ_TIMEOUT_SLACK,
            (None, None) => true,
            _ => false,
        };
        if !close_enough {
            self.peer.stream().set_read_timeout(left)?;
            self.read_timeout = left;
        }
        Ok(())
    }

    /// The nearest of the login deadline (until `CONNECT` succeeds) and the
    /// idle deadline, if any applies.
    fn deadline(&self) -> Option<(Instant, Timeout)> {
        let config = &self.shared.config;
        let after =
            |start: Instant, timeout: Option<Duration>| timeout.and_then(|t| start.checked_add(t));
        let login = match self.login {
            None => after(self.peer.accepted, config.login_timeout).map(|at| (at, Timeout::Login)),
            Some(_) => None,
        };
        let idle = after(self.last_line, config.idle_timeout).map(|at| (at, Timeout::Idle));
        login.into_iter().chain(idle).min_by_key(|(at, _)| *at)
    }

    /// `ERR TIMEOUT <reason>`, then the end of the connection.
    fn time_out(&mut self, which: Timeout) -> End {
        let config = &self.shared.config;
        let reason = match which {
            Timeout::Login => format!("no CONNECT within {} s", secs(config.login_timeout)),
            Timeout::Idle => format!("no complete line for {} s", secs(config.idle_timeout)),
        };
        let error = Error::new(ErrorCode::Timeout, reason);
        self.outbox.reply(&Reply::Error(&error));
        self.end_here(End::TimedOut(which))
    }

    /// Ends the connection after `QUIT` or a timeout, as the module doc
    /// says: the name and the slot first, then the last lines and the end
    /// of stream, then the lingering.
    fn end_here(&mut self, end: End) -> End {
        self.login = None; // `Login`'s drop releases the name
        let place = self.slot.take().map(Slot::linger);
        let replies = self.outbox.replies();
        log_lines(&self.shared.log, &self.label, replies);
        let written = self.peer.reply_last(replies);
        self.outbox.clear();
        match written {
            Ok(()) => {
                self.lingering = place;
                end
            }
            Err(why) => self.failed(why),
        }
    }

    /// Reads and discards the client's input until it closes its side, for
    /// at most the write timeout after the last line was written: then the
    /// connection is closed whatever the client does.
    fn linger(&mut self) {
        // Held until the end of the lingering: a lingering place, or the
        // slot itself if none was free.
        let Some(_place) = self.lingering.take() else {
            return;
        };
        let Some(deadline) = Instant::now().checked_add(self.shared.config.write_timeout) else {
            return; // a write timeout too far away to wait for
        };
        let mut sink = [0; LINGER_READ_BYTES];
        let mut stream = self.peer.stream();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
                break;
            }
            match stream.read(&mut sink) {
                Ok(0) => break, // the client closed: all was delivered
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
    }
}

fn secs(timeout: Option<Duration>) -> u64 {
    timeout.map_or(0, |t| t.as_secs())
}
