//! The operator's console: commands typed on the server's standard input,
//! so that a teacher can see who holds the slots and free one without
//! restarting the server (and cutting everyone).
//!
//! | command | what it does |
//! | --- | --- |
//! | `list` | one line per open connection: address, name (`-` before `CONNECT`), seconds since its last complete line, seconds connected |
//! | `kick NAME`, `kick ADDRESS` | closes that connection; when the console answers, its slot and its name are free |
//! | `help` | the commands |
//!
//! Answers go to standard output; the log stays on stderr. The wire
//! protocol does not change: a kicked client just sees its connection
//! close. The end of standard input ends the console, and nothing else.
//! On a terminal (Ctrl-D, or a server put in the background, which cannot
//! read its terminal), one log line says so, since the operator would
//! otherwise type into a console that is no longer there; elsewhere
//! (`< /dev/null`, a pipe, a service manager, a checker) the end is normal
//! and stays quiet.

use std::fmt::Write as _;
use std::io::{self, BufRead, IsTerminal, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use super::peer::Peer;
use super::registry::User;
use super::{Shared, connections};

/// The longest console line read; the rest of a longer one is ignored.
const MAX_CONSOLE_LINE_BYTES: u64 = 1024;

/// How often `kick` looks whether the kicked client has its last lines.
const KICK_POLL: Duration = Duration::from_millis(20);

/// How much longer than the write timeout `kick` waits for the session to
/// end. A kicked session ends at once, unless it was in the middle of a
/// write to another client, which the write timeout bounds.
const KICK_GRACE: Duration = Duration::from_secs(1);

/// The console of one server.
#[derive(Debug, Clone)]
pub struct Console {
    shared: Arc<Shared>,
}

impl Console {
    pub(crate) fn new(shared: Arc<Shared>) -> Console {
        Console { shared }
    }

    /// Runs the console on the process's standard input and output, on a
    /// thread of its own.
    pub fn spawn_on_stdin(self) -> io::Result<()> {
        ignore_background_read_stop();
        let terminal = io::stdin().is_terminal();
        thread::Builder::new()
            .name("console".into())
            .stack_size(64 * 1024)
            .spawn(move || {
                let end = self.run(io::stdin().lock(), io::stdout());
                if terminal {
                    // The log writes this after its first line, however
                    // early the input ends: scripts read that line.
                    self.shared.log.event(format_args!("{}", closed(&end)));
                }
            })
            .map(drop)
    }

    /// Reads commands from `input` until it ends (`Ok`) or fails (`Err`),
    /// and answers each on `output`. An output that fails (a closed stdout)
    /// is ignored: the console is for the operator, the server goes on
    /// regardless.
    pub fn run(&self, mut input: impl BufRead, mut output: impl Write) -> io::Result<()> {
        let mut line = Vec::new();
        while read_line(&mut input, &mut line)? {
            let answer = self.execute(String::from_utf8_lossy(&line).trim());
            if !answer.is_empty() {
                let _ = output
                    .write_all(answer.as_bytes())
                    .and_then(|()| output.flush());
            }
        }
        Ok(())
    }

    /// Carries out one command and returns its answer (lines ending with
    /// LF, or nothing for an empty line).
    fn execute(&self, command: &str) -> String {
        let (verb, argument) = command.split_once(' ').unwrap_or((command, ""));
        let argument = argument.trim();
        match (verb.to_ascii_lowercase().as_str(), argument) {
            ("", _) => String::new(),
            ("list", "") => self.list(),
            ("kick", "") => KICK_USAGE.to_owned(),
            ("kick", who) => self.kick(who),
            ("help", "") => HELP.to_owned(),
            ("list" | "help", _) => format!("usage: {verb} (it takes no argument)\n"),
            _ => format!("unknown command {command:?}; {HELP}"),
        }
    }

    /// `list`: one line per open connection, then a count.
    fn list(&self) -> String {
        let peers = self.shared.slots.connections();
        let registry = &self.shared.registry;
        let names: Vec<String> = peers
            .iter()
            .map(|peer| {
                registry
                    .user_of(peer.id)
                    .map_or("-".to_owned(), |u| u.name.clone())
            })
            .collect();
        let width = peers
            .iter()
            .map(|peer| peer.addr.to_string().len())
            .max()
            .unwrap_or(0);
        let mut out = String::new();
        for (peer, name) in peers.iter().zip(&names) {
            let _ = writeln!(
                out,
                "{:width$}  {name:16}  idle {:>4} s  connected {:>5} s",
                peer.addr.to_string(),
                peer.idle_for().as_secs(),
                peer.accepted.elapsed().as_secs(),
            );
        }
        let max = self.shared.slots.max;
        let _ = match peers.len() {
            0 => writeln!(out, "no connection open (max {max})"),
            n => writeln!(out, "{} open (max {max})", connections(n)),
        };
        out
    }

    /// `kick NAME` or `kick ADDRESS`: drops that connection, and answers
    /// once its slot and its name are free.
    fn kick(&self, who: &str) -> String {
        let Some(Found { peer, login }) = self.find(who) else {
            return format!("no open connection named {who:?} or at that address; try list\n");
        };
        if let Some(user) = &login {
            self.shared.registry.remove(&user.key, peer.id);
        }
        peer.kick();
        let shown = match &login {
            Some(user) => format!("{} ({})", user.name, peer.addr),
            None => peer.addr.to_string(),
        };
        self.shared
            .log
            .event(format_args!("{shown} kicked by the console"));
        // The client reads its last lines, then the end of stream; its
        // session lingers meanwhile. Once the lines have reached it (or after
        // the write timeout, if it does not take them), the session is woken,
        // and closes.
        let write_timeout = self.shared.config.write_timeout;
        let started = Instant::now();
        while peer.delivered() == Some(false) && started.elapsed() < write_timeout {
            thread::sleep(KICK_POLL);
        }
        peer.wake();
        let wait = write_timeout + KICK_GRACE;
        if self.shared.slots.wait_freed(peer.id, wait) {
            format!("kicked {shown}\n")
        } else {
            format!("kicked {shown}; its slot is not free yet\n")
        }
    }

    /// The open connection of user `who` (any case), or at address `who`.
    fn find(&self, who: &str) -> Option<Found> {
        let peers = self.shared.slots.connections();
        let registry = &self.shared.registry;
        let address: Option<SocketAddr> = who.parse().ok();
        let by_name = || {
            let user = registry.holder(who)?;
            peers.iter().find(|peer| peer.id == user.peer.id)
        };
        let by_address = || peers.iter().find(|peer| Some(peer.addr) == address);
        let peer = by_name().or_else(by_address)?;
        Some(Found {
            peer: Arc::clone(peer),
            login: registry.user_of(peer.id),
        })
    }
}

/// A connection `kick` names.
struct Found {
    peer: Arc<Peer>,
    /// Its user, if it logged in.
    login: Option<Arc<User>>,
}

/// The answer to `help`.
const HELP: &str =
    "commands: list (the open connections), kick NAME or kick ADDRESS (close one), help\n";

/// The answer to `kick` alone.
const KICK_USAGE: &str =
    "usage: kick NAME or kick ADDRESS (list shows both), to close that connection\n";

/// The log line that says the console is gone, and why.
fn closed(end: &io::Result<()>) -> String {
    const GOES_ON: &str = "the server goes on, Ctrl-C stops it";
    match end {
        Ok(()) => format!("console closed (end of input); {GOES_ON}"),
        // EIO: a background process reading its terminal (see
        // `ignore_background_read_stop`).
        Err(e) if e.raw_os_error() == Some(EIO) => {
            "console closed (a server in the background cannot read its terminal); \
             the server goes on"
                .to_owned()
        }
        Err(e) => format!("console closed (cannot read standard input: {e}); {GOES_ON}"),
    }
}

/// The error a background process gets when it reads its terminal (Linux,
/// macOS and the BSDs agree on its number).
const EIO: i32 = 5;

/// Reads one line of `input` into `line`, in bounded memory: at most
/// [`MAX_CONSOLE_LINE_BYTES`] of it are kept, the rest of a longer one is
/// thrown away as it comes. False at the end of input, an unfinished last
/// line included.
fn read_line(input: &mut impl BufRead, line: &mut Vec<u8>) -> io::Result<bool> {
    line.clear();
    let mut rest = Vec::new();
    loop {
        let part = if line.is_empty() {
            &mut *line
        } else {
            &mut rest
        };
        part.clear();
        match input
            .by_ref()
            .take(MAX_CONSOLE_LINE_BYTES)
            .read_until(b'\n', part)
        {
            Ok(0) => return Ok(false),
            Ok(_) if part.ends_with(b"\n") => return Ok(true),
            Ok(_) => {}
            Err(e) => return Err(e), // read_until retries Interrupted itself
        }
    }
}

/// A server started in the background of a shell (`minichat &`) still has
/// the terminal as its standard input, and a background process that reads
/// its terminal is *stopped* by the system (SIGTTIN): every client would
/// freeze. Ignoring that signal turns such a read into an error (EIO)
/// instead, which ends the console. std has no API for it.
#[cfg(all(
    target_os = "linux",
    not(any(target_arch = "mips", target_arch = "mips64", target_arch = "sparc64"))
))]
fn ignore_background_read_stop() {
    const SIGTTIN: i32 = 21;
    const SIG_IGN: usize = 1;
    unsafe extern "C" {
        fn signal(signum: i32, handler: usize) -> usize;
    }
    // SAFETY: setting a signal's disposition to "ignore" runs no code of
    // ours in a signal handler; the call cannot fail for this signal.
    unsafe {
        signal(SIGTTIN, SIG_IGN);
    }
}

#[cfg(not(all(
    target_os = "linux",
    not(any(target_arch = "mips", target_arch = "mips64", target_arch = "sparc64"))
)))]
fn ignore_background_read_stop() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_lines_are_read_in_bounded_memory() {
        let mut input = Vec::new();
        input.extend_from_slice(&[b'x'; 3000]);
        input.extend_from_slice(b"\nhelp\nlist");
        let mut input = &input[..];
        let mut line = Vec::new();
        assert!(read_line(&mut input, &mut line).unwrap());
        assert_eq!(line, vec![b'x'; MAX_CONSOLE_LINE_BYTES as usize]);
        assert!(read_line(&mut input, &mut line).unwrap());
        assert_eq!(line, b"help\n");
        // An unfinished last line is the end of input.
        assert!(!read_line(&mut input, &mut line).unwrap());
    }
}
