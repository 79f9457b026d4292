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
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Shared;
use super::framing::{Line, LineReader};
use super::outbox::{Outbox, log_lines};
use super::peer::{self, Peer, Undelivered, is_timeout};
use super::registry::User;
use super::slots::{Lingering, Slot};
use crate::protocol::{self, Command, Error, ErrorCode, Reply};
use crate::sys;

/// A read timeout that differs from what is left before the next deadline
/// by less than this is left as it is: a system call saved per read, for a
/// timeout that fires at most this late.
const READ_TIMEOUT_SLACK: Duration = Duration::from_millis(10);

/// How much one read takes while lingering. The bytes are thrown away.
const LINGER_READ_BYTES: usize = 1024;

/// While its last lines are still on their way to a client that reads
/// slowly, a lingering session looks at their progress this often.
const LINGER_SLICE: Duration = Duration::from_millis(50);

/// A client still taking its last lines keeps the connection lingering for
/// at most this many write timeouts after them.
const LINGER_LIMIT: u32 = 10;

/// ...as long as it takes some of them every this many write timeouts.
/// (More than one: over loopback, a client's system acknowledges what its
/// program read in steps of up to 64 KB, so a client reading 100 KB a
/// second may acknowledge nothing for most of a second.)
const LINGER_PATIENCE: u32 = 2;

/// How long a session whose idle or login clock has run out waits, at
/// most, for lines that arrived while it was busy (see
/// [`Client::arrived_meanwhile`]).
const ARRIVED_WAIT: Duration = Duration::from_millis(1);

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
    /// Set once the last lines are written: what this connection holds
    /// while it lingers.
    lingering: Option<Lingering>,
    /// False until the first read returned: nothing of this session may
    /// reach the log before the accept loop has logged its greeting, and
    /// nothing can happen before the first read.
    greeted: bool,
}

/// A registered name, removed from the registry when dropped (so a session
/// that ends in any way, even by a panic, releases its name).
struct Login {
    user: Arc<User>,
    /// False until the registry shows the name to the other users, which
    /// happens when its `OK CONNECT` is written.
    shown: bool,
    shared: Arc<Shared>,
}

impl Drop for Login {
    fn drop(&mut self) {
        self.shared
            .registry
            .remove(&self.user.key, self.user.peer.id);
    }
}

/// What to do after a command.
enum Flow {
    Continue,
    Stop(End),
}

impl Session {
    /// The thread of a new connection that holds `slot`, which the accept
    /// loop greets (and logs): sets its socket up, then serves it until it
    /// ends.
    pub(crate) fn start(peer: Arc<Peer>, slot: Slot, shared: Arc<Shared>) {
        // Set up here rather than in the accept loop, which only has to
        // greet: its greeting, the socket's first bytes, cannot block.
        if let Err(e) = peer::set_up(peer.stream(), shared.config.write_timeout) {
            peer.wait_for_greeting(); // logged after the accept loop's lines
            let addr = peer.addr;
            shared.log.event(format_args!(
                "{addr} dropped: cannot set its socket up ({e})"
            ));
            return peer.close();
        }
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
                greeted: false,
            },
        }
    }

    /// Serves the client until the connection ends; logs how, and closes.
    pub(crate) fn run(mut self) {
        let end = self.serve();
        let client = &mut self.client;
        // The slot and the name are free before the client sees the close.
        client.login = None;
        if let End::Dropped = end {
            // Kicked: it may still be reading the lines it was sent, before
            // the end of stream the kick sent. It lingers too (until the
            // console, seeing them delivered, shuts the read side), but only
            // in a lingering place, never in its slot. (A client dropped by
            // a writer had its socket shut both ways: it lingers no time.)
            let lingering = client.slot.take().map(Slot::linger);
            client.lingering = lingering.filter(|l| matches!(l, Lingering::InPlace(_)));
        }
        client.slot = None;
        client.after_greeting();
        self.log(&end);
        self.client.linger(); // after QUIT, a timeout or a kick
        // Under the write lock, after any line another thread is writing.
        self.client.peer.close();
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

    /// Reads and handles lines until the connection ends. (The greeting
    /// was written by the accept loop.)
    fn serve(&mut self) -> End {
        loop {
            if self.lines.has_line() {
                if let Flow::Stop(end) = self.handle_lines() {
                    return end;
                }
                continue;
            }
            if let Err(end) = self.client.read_more(&mut self.lines) {
                return end;
            }
        }
    }

    /// Handles, one by one, the complete lines that the last read brought
    /// in, then delivers and writes what they produced. Nothing is held
    /// from one line to the next but the outbox, which is written out
    /// whenever it fills up.
    fn handle_lines(&mut self) -> Flow {
        let client = &mut self.client;
        let mut handled = 0;
        while let Some(line) = self.lines.next_line() {
            if client.peer.is_dropped() {
                return Flow::Stop(End::Dropped); // its lines are never carried out
            }
            handled += 1;
            if let Flow::Stop(end) = client.handle_line(line) {
                return Flow::Stop(client.end_here(end)); // lines after QUIT are ignored
            }
            if client.outbox.is_full() {
                if let Err(end) = client.flush() {
                    return Flow::Stop(end);
                }
            }
        }
        client.peer.saw_line(client.last_line);
        let delivered = client.outbox.deliver(&client.peer, &client.shared);
        if delivered == 1 && handled == 1 {
            // A lone message, whose recipient is most likely waiting for
            // it. On a single CPU (a teaching VM often has one), this thread
            // would go on to write the sender's reply before the recipient
            // gets to run; yielding once hands the CPU over first. A
            // pipelining sender (many lines per read) never yields, and
            // with a CPU to spare the call costs next to nothing.
            std::thread::yield_now();
        }
        match client.write_replies() {
            Ok(()) => Flow::Continue,
            Err(end) => Flow::Stop(end),
        }
    }
}

impl Client {
    /// Handles one line: at most one reply, as the contract says.
    fn handle_line(&mut self, line: Line<'_>) -> Flow {
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
        match parsed.and_then(|command| self.execute(command)) {
            Ok(flow) => flow,
            Err(error) => {
                self.outbox.reply(&Reply::Error(&error));
                Flow::Continue
            }
        }
    }

    /// Carries out a parsed command (`None`: an empty line, no reply).
    /// Each registry call takes the registry lock for a few map operations
    /// and lets it go before returning.
    fn execute(&mut self, command: Option<Command<'_>>) -> Result<Flow, Error> {
        let Some(command) = command else {
            return Ok(Flow::Continue);
        };
        let me = self.peer.id;
        let registry = &self.shared.registry;
        match command {
            Command::Connect(name) => {
                // `parse` refuses a second CONNECT (ALREADY_CONNECTED), so
                // no login is ever replaced here.
                let (user, count) = registry.register(name, &self.peer)?;
                self.shared.log.event(format_args!(
                    "{} logged in as {name} ({count} logged in)",
                    self.peer.addr
                ));
                self.label = name.to_owned();
                self.outbox.reply(&Reply::Connected(name));
                self.login = Some(Login {
                    user,
                    shown: false,
                    shared: Arc::clone(&self.shared),
                });
            }
            Command::Send { to, text } => {
                let to = registry.find(to, me)?;
                let from = self
                    .login
                    .as_ref()
                    .map_or("", |login| login.user.name.as_str());
                if to.peer.id == me {
                    // To oneself: the same socket, so the RECEIVE line goes
                    // with the replies, in order, right before its OK.
                    self.outbox.reply(&Reply::Receive { from, text });
                    self.outbox.reply(&Reply::Sent(&to.name));
                } else {
                    self.outbox.send(&to, from, text);
                }
            }
            Command::List => {
                let unshown = self.login.as_ref().filter(|login| !login.shown);
                let users = registry.list(unshown.map(|login| &login.user));
                let names: Vec<&str> = users.iter().map(|user| user.name.as_str()).collect();
                self.outbox.reply(&Reply::List(&names)); // built outside the lock
            }
            Command::Ping => self.outbox.reply(&Reply::Pong),
            Command::Help => self.outbox.reply(&Reply::Help),
            Command::Quit => {
                self.outbox.reply(&Reply::Bye);
                return Ok(Flow::Stop(End::Quit));
            }
        }
        Ok(Flow::Continue)
    }

    /// Delivers the `RECEIVE` lines gathered so far, then writes the
    /// replies: what a full outbox does before the next line is handled.
    fn flush(&mut self) -> Result<(), End> {
        self.peer.saw_line(self.last_line);
        self.outbox.deliver(&self.peer, &self.shared);
        self.write_replies()
    }

    /// Writes the replies gathered so far. A login made meanwhile is shown
    /// to the other users under the write lock, right before its
    /// `OK CONNECT` goes out: a message to the new name can only be
    /// written after it.
    fn write_replies(&mut self) -> Result<(), End> {
        let replies = self.outbox.replies();
        if replies.is_empty() {
            return Ok(());
        }
        log_lines(&self.shared.log, &self.label, replies);
        let unshown = self.login.as_mut().filter(|login| !login.shown);
        let written = self.peer.reply(replies, || {
            if let Some(login) = unshown {
                let user = &login.user;
                login.shared.registry.show(&user.key, user.peer.id);
                login.shown = true;
            }
        });
        self.outbox.clear();
        written.map_err(|why| self.failed(why))
    }

    /// How the session ends when its own write did not happen.
    fn failed(&self, why: Undelivered) -> End {
        match why {
            Undelivered::Dropped { error, .. } => End::Failed(error),
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
        if self.peer.is_dropped() {
            return Err(End::Dropped);
        }
        let (deadline, which) = self.deadline();
        let left = match deadline {
            None => None,
            Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => Some(left),
                _ if self.arrived_meanwhile(lines)? => return Ok(()),
                _ => return Err(self.time_out(which)),
            },
        };
        self.set_read_timeout(left).map_err(End::Failed)?;
        self.read_once(lines).map(drop) // a timeout: the next call checks which clock expired
    }

    /// One read into `lines`, with the socket's read timeout as it is set:
    /// whether bytes came (`false`: the read timed out), or how the
    /// connection ended.
    fn read_once(&mut self, lines: &mut LineReader) -> Result<bool, End> {
        // `Read` is implemented for `&TcpStream`: the session reads through
        // the same shared socket that other threads write to.
        let read = lines.fill(&mut self.peer.stream());
        self.after_greeting();
        match read {
            Ok(0) if self.peer.is_dropped() => Err(End::Dropped),
            Ok(0) => Err(End::Closed),
            Ok(_) => Ok(true),
            Err(e) if is_timeout(&e) || e.kind() == io::ErrorKind::Interrupted => Ok(false),
            Err(_) if self.peer.is_dropped() => Err(End::Dropped),
            Err(e) => Err(End::Failed(e)),
        }
    }

    /// Once a clock has run out: whether complete lines arrived while this
    /// session was busy elsewhere (writing to a recipient that reads
    /// slowly, say, for up to the write timeout). They were sent in time,
    /// so they count, as if read on time; bytes without their LF do not.
    fn arrived_meanwhile(&mut self, lines: &mut LineReader) -> Result<bool, End> {
        self.set_read_timeout(Some(ARRIVED_WAIT))
            .map_err(End::Failed)?;
        Ok(self.read_once(lines)? && lines.has_line())
    }

    /// Waits, the first time, until the accept loop has written and logged
    /// the greeting. Most often it has, long before; a client that sent
    /// its lines before reading the greeting may find it still at it.
    fn after_greeting(&mut self) {
        if !self.greeted {
            self.peer.wait_for_greeting();
            self.greeted = true;
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
    /// idle deadline, and which one it is; no deadline if neither applies
    /// (PROTOCOL.md, « Connexions et délais »). The timeouts are bounded
    /// ([`super::config::LONGEST_TIMEOUT`]), so these sums cannot overflow.
    fn deadline(&self) -> (Option<Instant>, Timeout) {
        let config = &self.shared.config;
        let login = match (&self.login, config.login_timeout) {
            (None, Some(timeout)) => Some(self.peer.accepted + timeout),
            _ => None,
        };
        let idle = config.idle_timeout.map(|timeout| self.last_line + timeout);
        match (login, idle) {
            (Some(login), Some(idle)) if idle < login => (Some(idle), Timeout::Idle),
            (Some(login), _) => (Some(login), Timeout::Login),
            (None, idle) => (idle, Timeout::Idle),
        }
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
    /// says: the messages already sent are delivered; then the name and the
    /// slot are freed; then the last lines and the end of stream are
    /// written; then the session lingers.
    fn end_here(&mut self, end: End) -> End {
        self.outbox.deliver(&self.peer, &self.shared);
        self.login = None; // `Login`'s drop releases the name
        let lingering = self.slot.take().map(Slot::linger);
        let replies = self.outbox.replies();
        log_lines(&self.shared.log, &self.label, replies);
        let written = self.peer.reply_last(replies);
        self.outbox.clear();
        match written {
            Ok(()) => {
                self.lingering = lingering;
                end
            }
            Err(why) => self.failed(why),
        }
    }

    /// Reads and discards the client's input until it closes its side, so
    /// that closing the socket does not reset the connection (a reset
    /// throws away the lines still on their way). It ends, whatever the
    /// client does, once the write timeout has passed since the last lines
    /// were written and they have reached the client's system; or once the
    /// client has taken none of them for the write timeout (it does not
    /// read: no more to wait for); and after [`LINGER_LIMIT`] write
    /// timeouts in any case. Where the system cannot tell what reached the
    /// client, after the write timeout.
    fn linger(&mut self) {
        // Held until the end of the lingering: a lingering place, or the
        // slot itself if none was free.
        let Some(_held) = self.lingering.take() else {
            return;
        };
        let write_timeout = self.shared.config.write_timeout;
        // The write timeout is bounded, so these cannot overflow.
        let started = Instant::now();
        let (deadline, limit) = (
            started + write_timeout,
            started + write_timeout * LINGER_LIMIT,
        );
        let stream = self.peer.stream();
        let mut unacknowledged = sys::unacknowledged_bytes(stream);
        let mut progress = started;
        let mut sink = [0; LINGER_READ_BYTES];
        loop {
            let now = Instant::now();
            let delivered = unacknowledged.is_none_or(|bytes| bytes == 0);
            let stuck = now >= progress + write_timeout * LINGER_PATIENCE;
            if now >= limit || (now >= deadline && (delivered || stuck)) {
                break;
            }
            let wait = match deadline.checked_duration_since(now) {
                Some(left) if !left.is_zero() => left,
                _ => LINGER_SLICE,
            };
            if stream.set_read_timeout(Some(wait)).is_err() {
                break;
            }
            // `Read` is implemented for `&TcpStream`, as in `read_more`.
            match (&mut &*stream).read(&mut sink) {
                Ok(0) => break, // the client closed (or was kicked meanwhile)
                Ok(_) => {}
                Err(e) if is_timeout(&e) || e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
            let now_unacknowledged = sys::unacknowledged_bytes(stream);
            if now_unacknowledged < unacknowledged {
                progress = Instant::now();
            }
            unacknowledged = now_unacknowledged;
        }
    }
}

fn secs(timeout: Option<Duration>) -> u64 {
    timeout.map_or(0, |t| t.as_secs())
}
