//! `minichat check`: a conformance suite run from outside, over TCP,
//! against any server that claims to speak the protocol (ours, or a
//! student's).
//!
//! Each check of [`checks`] observes one rule of the contract and prints
//! one line, `PASS <name>` or `FAIL <name>: <what was sent, what was
//! expected, what came back>`; the run ends with `N passed, M failed`.
//! Nothing the server does can hang the run or make it panic: every read
//! has a deadline ([`probe`]), each check's connections are closed and
//! their slots given back before the next check starts, and a server that
//! stops answering fails the remaining checks at once.

pub mod checks;
pub mod probe;

use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::protocol::DEFAULT_MAX_CONNECTIONS;
use crate::tools::remote::{self, ServerLine, ServerLines, Target};
use probe::{Failure, LastSent, Probe, close_all, seconds, shown_str};

/// How long a check waits for each line it expects, by default (`--wait`).
pub const DEFAULT_WAIT: Duration = Duration::from_secs(3);

/// What `minichat check` is asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckOptions {
    /// The server under test.
    pub target: Target,
    /// The server's `--max-connections` (default 5), for the limit checks.
    pub max_connections: usize,
    /// How long to wait for each expected line (`--wait`).
    pub wait: Duration,
    /// The server's login timeout, if the timeout checks are asked for
    /// (`--login-timeout` or `--timeouts`); they take that long to run.
    pub login_timeout: Option<Duration>,
    /// The server's idle timeout, likewise (`--idle-timeout` or `--timeouts`).
    pub idle_timeout: Option<Duration>,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            target: Target::default(),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            wait: DEFAULT_WAIT,
            login_timeout: None,
            idle_timeout: None,
        }
    }
}

/// The result of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub name: &'static str,
    /// `None` when the check was skipped (it needs a flag to run).
    pub result: Option<Result<(), Failure>>,
}

/// The results of a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub outcomes: Vec<Outcome>,
}

impl Report {
    pub fn passed(&self) -> usize {
        self.count(|result| result.is_ok())
    }

    pub fn failed(&self) -> usize {
        self.count(|result| result.is_err())
    }

    /// True when every check that ran passed.
    pub fn all_passed(&self) -> bool {
        self.failed() == 0
    }

    /// The failure of the check called `name`, if it failed.
    pub fn failure(&self, name: &str) -> Option<&Failure> {
        self.outcomes
            .iter()
            .find(|outcome| outcome.name == name)
            .and_then(|outcome| outcome.result.as_ref()?.as_ref().err())
    }

    /// The last line of a run: `N passed, M failed`.
    pub fn summary(&self) -> String {
        format!("{} passed, {} failed", self.passed(), self.failed())
    }

    fn count(&self, which: impl Fn(&Result<(), Failure>) -> bool) -> usize {
        self.outcomes
            .iter()
            .filter(|outcome| outcome.result.as_ref().is_some_and(&which))
            .count()
    }
}

/// Everything one check works with: the server's address, the limits, a
/// unique suffix for its user names, and the connections it opened (closed
/// by the runner when the check ends, however it ends).
pub struct Lab<'a> {
    pub options: &'a CheckOptions,
    addrs: &'a [SocketAddr],
    /// Digits unique to this check in this run, appended to user names so
    /// that checks (and two runs at once) never collide.
    tag: String,
    opened: Vec<TcpStream>,
    last_sent: LastSent,
}

impl Lab<'_> {
    /// The wait for each expected line.
    pub fn wait(&self) -> Duration {
        self.options.wait
    }

    /// `base` made unique to this check: `alice` becomes `alice41207`.
    /// Digits only, so upper- and lower-case forms stay the same name.
    pub fn name(&self, base: &str) -> String {
        format!("{base}{}", self.tag)
    }

    /// Connects without reading the greeting.
    pub fn connect_raw(&mut self, label: &str) -> Result<Probe, Failure> {
        Probe::connect(
            self.addrs,
            self.options.wait,
            label.to_owned(),
            Arc::clone(&self.last_sent),
            &mut self.opened,
        )
    }

    /// Connects and requires `OK WELCOME`. An `ERR FULL` is retried until
    /// the wait runs out: a server frees a slot when *it* sees the close of
    /// the previous check's connections, which may be a moment later.
    pub fn connect(&mut self, label: &str) -> Result<Probe, Failure> {
        let deadline = Instant::now() + self.options.wait;
        self.connect_when_free(label, deadline)
    }

    /// Retries a connection refused with `ERR FULL` until `deadline`.
    pub fn connect_when_free(&mut self, label: &str, deadline: Instant) -> Result<Probe, Failure> {
        loop {
            let mut probe = self.connect_raw(label)?;
            let line = probe.line("\"OK WELCOME ...\"")?;
            if line.starts_with("OK WELCOME") {
                return Ok(probe);
            }
            if !probe::is_error(&line, "FULL") || Instant::now() >= deadline {
                return Err(Failure::new(format!(
                    "{label} connected; expected \"OK WELCOME ...\" within {}; got {}",
                    seconds(self.options.wait),
                    shown_str(&line)
                )));
            }
            // Give the server a moment to see the closes it has not seen yet.
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Connects, then logs in as `name`.
    pub fn login(&mut self, name: &str) -> Result<Probe, Failure> {
        let mut probe = self.connect(name)?;
        probe.ask(&format!("CONNECT {name}"), &format!("OK CONNECT {name}"))?;
        Ok(probe)
    }
}

/// A unique-enough start for the tags of this run: the process id mixed
/// with the clock, as three digits.
fn run_seed() -> u32 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    (std::process::id() ^ nanos) % 1000
}

/// Runs every check against `options.target`, printing each result to
/// `out` as it comes, then the summary line.
pub fn run(options: &CheckOptions, out: &mut dyn Write) -> io::Result<Report> {
    writeln!(
        out,
        "checking {} (max {} connections, wait {} per reply)",
        options.target,
        options.max_connections,
        seconds(options.wait)
    )?;
    let seed = run_seed();
    let (addrs, mut down) = match options.target.resolve() {
        Ok(addrs) => (addrs, None),
        Err(e) => (
            Vec::new(),
            Some(format!("cannot resolve {}: {e}", options.target)),
        ),
    };
    let mut report = Report::default();
    for (n, check) in checks::all().into_iter().enumerate() {
        if let Some(why) = check.cannot_run(options) {
            writeln!(out, "SKIP {} ({why})", check.name)?;
            report.outcomes.push(Outcome {
                name: check.name,
                result: None,
            });
            continue;
        }
        let result = match &down {
            Some(reason) => Err(Failure::new(format!("not run: {reason}"))),
            None => {
                let mut lab = Lab {
                    options,
                    addrs: &addrs,
                    tag: format!("{seed:03}{:02}", n % 100),
                    opened: Vec::new(),
                    last_sent: Arc::new(Mutex::new(String::new())),
                };
                let result = (check.run)(&mut lab);
                close_all(lab.opened, Instant::now() + options.wait);
                result
            }
        };
        match &result {
            Ok(()) => writeln!(out, "PASS {}", check.name)?,
            Err(failure) => {
                writeln!(out, "FAIL {}: {}", check.name, failure.0)?;
                if down.is_none() {
                    down = still_up(&addrs, options.wait).err();
                }
            }
        }
        out.flush()?;
        report.outcomes.push(Outcome {
            name: check.name,
            result: Some(result),
        });
    }
    writeln!(out, "{}", report.summary())?;
    Ok(report)
}

/// After a failure: does the server still greet new connections? If it
/// does not, the remaining checks fail at once instead of each waiting.
fn still_up(addrs: &[SocketAddr], wait: Duration) -> Result<(), String> {
    let stream = remote::connect(addrs, wait).map_err(|e| format!("cannot connect: {e}"))?;
    let kept = stream
        .try_clone()
        .map_err(|e| format!("cannot connect: {e}"))?;
    let mut lines = ServerLines::new(stream);
    let deadline = Instant::now() + wait;
    let greeting = lines.next_line(Some(deadline));
    close_all(vec![kept], Instant::now() + wait);
    match greeting {
        Ok(Some(ServerLine::Line { .. } | ServerLine::TooLong)) => Ok(()),
        Ok(None) => Err("cannot connect: the server closes new connections without a word".into()),
        Err(e) if remote::is_timeout(&e) => Err(format!(
            "cannot connect: the server accepts connections but sends no greeting within {}",
            seconds(wait)
        )),
        Err(e) => Err(format!("cannot connect: {e}")),
    }
}
