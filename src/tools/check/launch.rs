//! Spawn mode: the checker starts the server under test itself, as many
//! times as the checks need, each time with the flags a check asks for.
//!
//! A server is started as `COMMAND ARGS --bind 127.0.0.1 --port 0 FLAGS...`
//! (stdin from /dev/null, so it runs no console; stdout thrown away). Its
//! port comes from its first line on stderr, which the contract fixes:
//! `minichat: listening on <addr>:<port> (max <n> connections)`. A server
//! that words that line otherwise still gets checked when a port can be
//! found in it; only the check of that line fails.
//!
//! **No server is left behind.** Each one is stopped by its own PID
//! (`Child::kill`, then `wait`) when its `Spawned` is dropped, whatever
//! ends the check (a failure, a panic). If the checker itself is killed,
//! Linux kills the server too (`PR_SET_PDEATHSIG`). That signal follows
//! the *thread* that started the server, so a server must never outlive
//! the thread that started it: the runner drops each server on its own
//! thread. A server started through a script is stopped only if the
//! script `exec`s it (the checker knows the PID of the script only).
//!
//! [`Launcher`] is what the runner needs of a server: tests implement it
//! with servers that run in their own process, emulating the command line.

use std::io::{self, BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::{Child, ChildStderr, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::thread;
use std::time::{Duration, Instant};

use super::settings::{ServerFlags, Stderr};

/// How long a server may take to print its first line.
pub const START_WAIT: Duration = Duration::from_secs(5);

/// Lines of a server's stderr longer than this are cut: a server that
/// prints without end cannot make the checker allocate without end.
const MAX_STDERR_LINE_BYTES: usize = 4096;

/// At most this many stderr lines wait to be read; later ones are dropped
/// (only the first few lines are ever looked at).
const KEPT_STDERR_LINES: usize = 64;

/// A way to start the server under test.
pub trait Launcher: Sync {
    /// The command, as the report shows it.
    fn describe(&self) -> String;

    /// Starts the program with `args` after its own, and treats its stderr
    /// as `stderr` says once the first line is read.
    fn launch(&self, args: &[String], stderr: Stderr) -> io::Result<Box<dyn Process>>;
}

/// A program the checker started. Dropping it stops it.
pub trait Process: Send {
    /// The next line on its stderr (without the LF), waiting until
    /// `deadline`: `Ok(None)` when stderr has ended, a `TimedOut` error
    /// past the deadline.
    fn stderr_line(&mut self, deadline: Instant) -> io::Result<Option<String>>;

    /// How it ended, once it has: its exit code, `None` if a signal ended
    /// it. `Ok(None)` while it runs.
    fn exit_status(&mut self) -> io::Result<Option<Option<i32>>>;
}

/// `--spawn 'COMMAND [ARGS...]'`, split into words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpawnCommand {
    pub words: Vec<String>,
}

impl Launcher for SpawnCommand {
    fn describe(&self) -> String {
        self.words.join(" ")
    }

    fn launch(&self, args: &[String], stderr: Stderr) -> io::Result<Box<dyn Process>> {
        let Some((program, own)) = self.words.split_first() else {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "no command"));
        };
        let mut command = Command::new(program);
        command
            .args(own)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        die_with_the_checker(&mut command);
        let mut child = command.spawn()?;
        let (lines, read) = mpsc::sync_channel(KEPT_STDERR_LINES);
        let (stop, stopped) = mpsc::channel();
        let tapped = child.stderr.take().map(|pipe| {
            thread::Builder::new()
                .name("server stderr".to_owned())
                .spawn(move || tap(pipe, stderr, lines, stopped))
        });
        let spawned = Spawned {
            child,
            lines: read,
            _stop: stop,
        };
        match tapped {
            Some(Ok(_)) => Ok(Box::new(spawned)),
            // `spawned` is dropped: the server is stopped.
            Some(Err(e)) => Err(e),
            None => Err(io::Error::other("the server's stderr was not piped")),
        }
    }
}

/// A server process the checker started; stopped when dropped.
struct Spawned {
    child: Child,
    /// The lines [`tap`] read from its stderr.
    lines: Receiver<String>,
    /// Dropped with the server: tells a stalled [`tap`] to let the pipe go.
    _stop: Sender<()>,
}

impl Process for Spawned {
    fn stderr_line(&mut self, deadline: Instant) -> io::Result<Option<String>> {
        let left = deadline.saturating_duration_since(Instant::now());
        match self.lines.recv_timeout(left) {
            Ok(line) => Ok(Some(line)),
            Err(RecvTimeoutError::Timeout) => Err(io::ErrorKind::TimedOut.into()),
            Err(RecvTimeoutError::Disconnected) => Ok(None),
        }
    }

    fn exit_status(&mut self) -> io::Result<Option<Option<i32>>> {
        Ok(self.child.try_wait()?.map(|status| status.code()))
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        // By its own PID; an error means it has already ended.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads the server's stderr on a thread of its own, for the server's
/// whole life, so that a full pipe can never block it: the first lines go
/// to the checker, the rest is thrown away. Or, once the first line is
/// read, stops reading (`Stalled`, until the server is stopped) or closes
/// the pipe (`Closed`).
fn tap(pipe: ChildStderr, after_first: Stderr, lines: SyncSender<String>, stop: Receiver<()>) {
    let mut reader = BufReader::new(pipe);
    let mut first = true;
    while let Ok(Some(line)) = read_line(&mut reader) {
        // Full (nobody reads) or gone: the line is dropped, reading goes on.
        let _ = lines.try_send(line);
        if std::mem::take(&mut first) {
            match after_first {
                Stderr::Drained => {}
                Stderr::Stalled => {
                    // Returns when the server is stopped; the pipe is kept
                    // open, and unread, until then.
                    let _ = stop.recv();
                    return;
                }
                Stderr::Closed => return,
            }
        }
    }
}

/// One line of `reader`, without its LF, cut at [`MAX_STDERR_LINE_BYTES`]
/// (the rest of a longer line is skipped); `None` at the end.
fn read_line(reader: &mut impl BufRead) -> io::Result<Option<String>> {
    let mut line = Vec::new();
    loop {
        let available = match reader.fill_buf() {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            return Ok((!line.is_empty()).then(|| String::from_utf8_lossy(&line).into_owned()));
        }
        let newline = available.iter().position(|&b| b == b'\n');
        let used = newline.map_or(available.len(), |i| i + 1);
        let room = MAX_STDERR_LINE_BYTES.saturating_sub(line.len());
        line.extend_from_slice(&available[..used.min(room)]);
        reader.consume(used);
        if newline.is_some() {
            if line.last() == Some(&b'\n') {
                line.pop();
            }
            return Ok(Some(String::from_utf8_lossy(&line).into_owned()));
        }
    }
}

/// Makes Linux kill the server when the thread that started it ends, even
/// if the checker is killed (`kill -9`, a CI job cancelled) and cannot
/// stop it itself.
#[cfg(target_os = "linux")]
fn die_with_the_checker(command: &mut Command) {
    use std::ffi::{c_int, c_ulong};
    use std::os::unix::process::CommandExt;

    unsafe extern "C" {
        /// `int prctl(int option, ...)`, from the C library.
        fn prctl(option: c_int, ...) -> c_int;
    }
    const PR_SET_PDEATHSIG: c_int = 1;
    const SIGKILL: c_ulong = 9;
    const ESRCH: i32 = 3;
    let checker = std::process::id();
    let hook = move || {
        // SAFETY: prctl with PR_SET_PDEATHSIG takes one integer argument,
        // passed as the unsigned long the kernel reads.
        if unsafe { prctl(PR_SET_PDEATHSIG, SIGKILL) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // The checker may have ended before the line above took effect.
        if std::os::unix::process::parent_id() != checker {
            return Err(io::Error::from_raw_os_error(ESRCH));
        }
        Ok(())
    };
    // SAFETY: the hook runs in the child between fork and exec, where only
    // async-signal-safe calls are allowed: it makes two system calls
    // (prctl, getppid) and builds its errors without allocating.
    unsafe {
        command.pre_exec(hook);
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_the_checker(_command: &mut Command) {}

/// A server started for the checks, listening.
pub struct Started {
    /// Where it listens, from its first line on stderr.
    pub addr: SocketAddr,
    pub process: Box<dyn Process>,
}

impl Started {
    /// Starts the server with `flags` and reads its address from its first
    /// line on stderr; `Err` says why there is no server to check.
    pub fn start(launcher: &dyn Launcher, flags: &ServerFlags) -> Result<Started, String> {
        let args = flags.args();
        let shown = format!("{} {}", launcher.describe(), args.join(" "));
        let mut process = launcher
            .launch(&args, flags.stderr)
            .map_err(|e| format!("cannot start `{shown}`: {e}"))?;
        let deadline = Instant::now() + START_WAIT;
        let first_line = match process.stderr_line(deadline) {
            Ok(Some(line)) => line,
            Ok(None) => return Err(ended(&mut *process, &shown, "without a line on stderr")),
            Err(_) => {
                return Err(format!(
                    "`{shown}` printed no line on stderr within {} s",
                    START_WAIT.as_secs()
                ));
            }
        };
        let port = match first_line_address(&first_line) {
            Ok(addr) => Some(addr.port()),
            Err(_) => find_port(&first_line),
        };
        match port {
            Some(port) if port != 0 => Ok(Started {
                addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port),
                process,
            }),
            _ => {
                let printed = format!("after printing {first_line:?}");
                // A usage error, most likely: say how it ended.
                if let Some(end) = ended_within(&mut *process, &shown, &printed) {
                    return Err(end);
                }
                Err(format!(
                    "`{shown}` printed {first_line:?} as its first line on stderr: no port in \
                     it (expected \"minichat: listening on 127.0.0.1:<port> (max <n> \
                     connections)\")"
                ))
            }
        }
    }
}

/// Why a process that should have run has stopped.
pub fn ended(process: &mut dyn Process, shown: &str, how: &str) -> String {
    ended_within(process, shown, how)
        .unwrap_or_else(|| format!("`{shown}` closed its stderr {how}"))
}

/// How the process ended, if it ends within a second (its exit status
/// may take a moment to be known after its stderr closes).
fn ended_within(process: &mut dyn Process, shown: &str, how: &str) -> Option<String> {
    let deadline = Instant::now() + Duration::from_secs(1);
    let status = loop {
        match process.exit_status() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
            _ => return None,
        }
    };
    Some(match status {
        Some(code) => format!("`{shown}` exited with code {code} {how}"),
        None => format!("`{shown}` was killed by a signal {how}"),
    })
}

/// The address in the contract's first line,
/// `minichat: listening on <addr>:<port> (max <n> connections)`, with
/// `<addr>:<port>` written as Rust's `SocketAddr` displays it.
pub fn first_line_address(line: &str) -> Result<SocketAddr, String> {
    let expected = "\"minichat: listening on <addr>:<port> (max <n> connections)\"";
    let rest = line
        .strip_prefix("minichat: listening on ")
        .ok_or_else(|| format!("{line:?} does not start as {expected}"))?;
    let (addr, max) = rest
        .split_once(" (max ")
        .ok_or_else(|| format!("{line:?} is not {expected}"))?;
    let parsed: SocketAddr = addr
        .parse()
        .map_err(|_| format!("{addr:?} in {line:?} is not an address and port"))?;
    if parsed.to_string() != addr {
        return Err(format!(
            "{addr:?} in {line:?} is not written as Rust's SocketAddr displays it ({parsed})"
        ));
    }
    let count = max
        .strip_suffix(" connections)")
        .ok_or_else(|| format!("{line:?} does not end as {expected}"))?;
    match count.parse::<usize>() {
        Ok(n) if n.to_string() == count => Ok(parsed),
        _ => Err(format!(
            "{count:?} in {line:?} is not a number of connections"
        )),
    }
}

/// The number of connections in a first line that follows the contract.
pub fn first_line_max(line: &str) -> Option<usize> {
    line.rsplit_once(" (max ")?
        .1
        .strip_suffix(" connections)")?
        .parse()
        .ok()
}

/// A port in a first line that does not follow the contract: the port of
/// the first word that reads as an address (`127.0.0.1:4242`,
/// `[::1]:4242`, `localhost:4242`), or the number after the word `port`.
fn find_port(line: &str) -> Option<u16> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let trim = |word: &str| {
        word.trim_start_matches('(')
            .trim_end_matches([')', ',', ';', '.', '!'])
            .to_owned()
    };
    let in_address = words.iter().find_map(|word| {
        let word = trim(word);
        word.parse::<SocketAddr>()
            .map(|addr| addr.port())
            .ok()
            .or_else(|| word.rsplit_once(':')?.1.parse().ok())
    });
    in_address.or_else(|| {
        words.windows(2).find_map(|pair| {
            pair[0]
                .eq_ignore_ascii_case("port")
                .then(|| trim(pair[1]).parse().ok())?
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of(bytes: &[u8]) -> Vec<String> {
        let mut reader = BufReader::new(bytes);
        std::iter::from_fn(|| read_line(&mut reader).ok().flatten()).collect()
    }

    #[test]
    fn the_contracts_first_line_gives_the_address() {
        let line = "minichat: listening on 127.0.0.1:4242 (max 5 connections)";
        assert_eq!(
            first_line_address(line),
            Ok("127.0.0.1:4242".parse().unwrap())
        );
        assert_eq!(first_line_max(line), Some(5));
        let v6 = "minichat: listening on [::1]:80 (max 12 connections)";
        assert_eq!(first_line_address(v6).unwrap().port(), 80);
        for wrong in [
            "minichat: listening on 127.0.0.1:4242",
            "minichat: listening on 127.0.0.1:4242 (max 1 connection)",
            "minichat: listening on 127.0.0.1 port 4242 (max 5 connections)",
            "minichat: listening on ::1:4242 (max 5 connections)",
            "minichat: listening on 127.000.0.1:4242 (max 5 connections)",
            "minichat: listening on 127.0.0.1:04242 (max 5 connections)",
            "minichat: listening on 127.0.0.1:4242 (max 05 connections)",
            "Listening on 127.0.0.1:4242 (max 5 connections)",
            "minichat: listening on 127.0.0.1:4242 (max 5 connections)\r",
        ] {
            assert!(first_line_address(wrong).is_err(), "{wrong}");
        }
    }

    #[test]
    fn a_port_is_found_in_other_wordings() {
        assert_eq!(find_port("Server listening on 127.0.0.1:4242"), Some(4242));
        assert_eq!(find_port("listening on ('127.0.0.1', 4242)"), None);
        assert_eq!(find_port("Listening on port 4242."), Some(4242));
        assert_eq!(find_port("serving at [::1]:5000, max 5"), Some(5000));
        assert_eq!(find_port("up (localhost:7000)"), Some(7000));
        assert_eq!(find_port("Server started"), None);
    }

    #[test]
    fn stderr_lines_are_cut_and_kept_apart() {
        assert_eq!(lines_of(b"a\nb\r\nc"), ["a", "b\r", "c"]);
        let mut long = vec![b'x'; 3 * MAX_STDERR_LINE_BYTES];
        long.extend_from_slice(b"\nnext\n");
        let lines = lines_of(&long);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].len(), MAX_STDERR_LINE_BYTES);
        assert_eq!(lines[1], "next");
    }

    /// A real process: `sh` prints a first line, the checker reads it,
    /// and stopping the process ends it (no server is left behind).
    #[cfg(unix)]
    #[test]
    fn a_spawned_process_is_read_and_stopped() {
        let command = SpawnCommand {
            words: vec![
                "sh".into(),
                "-c".into(),
                "echo \"minichat: listening on 127.0.0.1:4242 (max $1 connections)\" >&2; exec sleep 30"
                    .into(),
                "sh".into(),
            ],
        };
        let mut process = command.launch(&["7".into()], Stderr::Drained).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let line = process.stderr_line(deadline).unwrap().unwrap();
        assert_eq!(
            line,
            "minichat: listening on 127.0.0.1:4242 (max 7 connections)"
        );
        assert_eq!(process.exit_status().unwrap(), None);
        drop(process);
        let mut exiting = SpawnCommand {
            words: vec!["sh".into(), "-c".into(), "echo one >&2; exit 2".into()],
        }
        .launch(&[], Stderr::Drained)
        .unwrap();
        assert_eq!(
            exiting.stderr_line(deadline).unwrap().as_deref(),
            Some("one")
        );
        assert_eq!(exiting.stderr_line(deadline).unwrap(), None);
        assert!(ended(&mut *exiting, "sh", "at once").contains("exited with code 2"));
    }
}
