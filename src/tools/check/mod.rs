//! `minichat check`: a conformance suite run from outside, over TCP,
//! against any server that claims to speak the protocol (ours, or a
//! student's).
//!
//! Each check of [`checks`] observes one rule of the contract and prints
//! one line, `PASS <name>`, `FAIL <name>: <what was sent, what was
//! expected, what came back>` or `SKIP <name> (<why>)`; the run ends with
//! `N passed, M failed, K skipped in T s`, and can also be written as a
//! JUnit XML report ([`junit`]).
//!
//! Two ways to meet the server:
//! - **spawn mode** (`--spawn 'COMMAND'`, [`spawn`]): the checker starts
//!   the server itself, with the flags each check needs, so every check
//!   can run, those of the command line included. The checks that mostly
//!   wait (the timeouts) run at the same time, each on a server of its own;
//!   the others run one after another, sharing a server while they need
//!   the same flags, and a server is restarted after a failure.
//! - **a running server** (`HOST[:PORT]`): every check runs on it, one
//!   after another; those that need settings the checker was not told, or
//!   another program, are skipped. A preflight first makes sure something
//!   listens and that nobody else uses it.
//!
//! Nothing the server does can hang the run or make it panic: every read
//! has a deadline ([`probe`]), each check's connections are closed before
//! the next check starts, and a server that stops answering fails the
//! remaining checks at once.

pub mod checks;
pub mod junit;
mod lab;
pub mod probe;
pub mod settings;
pub mod spawn;
pub mod words;

use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::tools::remote::{self, ServerLine, ServerLines, Target};
pub use checks::{Check, Needs, Pace};
pub use lab::Lab;
use probe::{Failure, close_all, seconds, shown_str};
use settings::{ServerFlags, Settings};
use spawn::{Launcher, SpawnCommand, Started};

/// How long a check waits for each line it expects, by default (`--wait`).
pub const DEFAULT_WAIT: Duration = Duration::from_secs(3);

/// The server under test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerUnderTest {
    /// `HOST[:PORT]`: a server already running.
    Running(Target),
    /// `--spawn 'COMMAND [ARGS...]'`: a server the checker starts.
    Spawn(SpawnCommand),
}

/// What `minichat check` is asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckOptions {
    pub server: ServerUnderTest,
    /// What the checker was told of a running server's settings
    /// (`--max-connections`, `--login-timeout`, ...). Unused in spawn mode.
    pub settings: Settings,
    /// How long to wait for each expected line (`--wait`).
    pub wait: Duration,
    /// Where to write a JUnit XML report (`--junit`).
    pub junit: Option<PathBuf>,
    /// Only these checks (`--only`); all when empty.
    pub only: Vec<String>,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            server: ServerUnderTest::Running(Target::default()),
            settings: Settings::default(),
            wait: DEFAULT_WAIT,
            junit: None,
            only: Vec::new(),
        }
    }
}

/// How one check ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Passed,
    Failed(Failure),
    /// Not run, and why.
    Skipped(String),
}

/// The result of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub name: &'static str,
    pub verdict: Verdict,
    /// How long it took.
    pub time: Duration,
}

/// The results of a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// What the run checked: the address, or the command.
    pub server: String,
    pub outcomes: Vec<Outcome>,
    /// Why no check ran at all (nothing listens, the server is not idle).
    pub preflight: Option<String>,
    /// How long the run took.
    pub time: Duration,
}

impl Report {
    pub fn passed(&self) -> usize {
        self.count(|verdict| matches!(verdict, Verdict::Passed))
    }

    pub fn failed(&self) -> usize {
        self.count(|verdict| matches!(verdict, Verdict::Failed(_)))
    }

    pub fn skipped(&self) -> usize {
        self.count(|verdict| matches!(verdict, Verdict::Skipped(_)))
    }

    /// True when the run could start and every check that ran passed.
    pub fn all_passed(&self) -> bool {
        self.preflight.is_none() && self.failed() == 0
    }

    /// The failure of the check called `name`, if it failed.
    pub fn failure(&self, name: &str) -> Option<&Failure> {
        self.outcomes
            .iter()
            .find(|outcome| outcome.name == name)
            .and_then(|outcome| match &outcome.verdict {
                Verdict::Failed(failure) => Some(failure),
                _ => None,
            })
    }

    /// The names of the checks that failed, in order.
    pub fn failed_names(&self) -> Vec<&'static str> {
        self.outcomes
            .iter()
            .filter(|outcome| matches!(outcome.verdict, Verdict::Failed(_)))
            .map(|outcome| outcome.name)
            .collect()
    }

    /// The last line of a run: `N passed, M failed, K skipped in T s`.
    pub fn summary(&self) -> String {
        format!(
            "{} passed, {} failed, {} skipped in {}",
            self.passed(),
            self.failed(),
            self.skipped(),
            seconds(self.time)
        )
    }

    fn count(&self, which: impl Fn(&Verdict) -> bool) -> usize {
        self.outcomes
            .iter()
            .filter(|outcome| which(&outcome.verdict))
            .count()
    }
}

/// Runs the checks `options` asks for, printing each result to `out` as
/// it comes, then the summary line; writes the JUnit report if asked.
pub fn run(options: &CheckOptions, out: &mut dyn Write) -> io::Result<Report> {
    match &options.server {
        ServerUnderTest::Running(target) => {
            let report = run_on_running(options, target, out)?;
            finish(options, report)
        }
        ServerUnderTest::Spawn(command) => run_spawning(options, command, out),
    }
}

/// Runs the checks in spawn mode, starting the server with `launcher`
/// (tests give servers of their own; `minichat check --spawn` a process).
pub fn run_spawning(
    options: &CheckOptions,
    launcher: &dyn Launcher,
    out: &mut dyn Write,
) -> io::Result<Report> {
    let report = run_on_spawned(options, launcher, out)?;
    finish(options, report)
}

fn finish(options: &CheckOptions, report: Report) -> io::Result<Report> {
    if let Some(path) = &options.junit {
        junit::write(path, &report)?;
    }
    Ok(report)
}

/// The checks `options` selects, in the table's order.
fn selected(options: &CheckOptions) -> Vec<(usize, Check)> {
    checks::all()
        .into_iter()
        .enumerate()
        .filter(|(_, check)| {
            options.only.is_empty() || options.only.iter().any(|n| n == check.name)
        })
        .collect()
}

/// A unique-enough start for the tags of this run: the process id mixed
/// with the clock, as three digits.
fn run_seed() -> u32 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    (std::process::id() ^ nanos) % 1000
}

/// Five digits unique to check `index` of a run.
fn tag(seed: u32, index: usize) -> String {
    format!("{seed:03}{:02}", index % 100)
}

/// Prints and records one outcome.
fn record(report: &mut Report, outcome: Outcome, out: &mut dyn Write) -> io::Result<()> {
    match &outcome.verdict {
        Verdict::Passed => writeln!(out, "PASS {}", outcome.name)?,
        Verdict::Failed(failure) => writeln!(out, "FAIL {}: {}", outcome.name, failure.0)?,
        Verdict::Skipped(why) => writeln!(out, "SKIP {} ({why})", outcome.name)?,
    }
    out.flush()?;
    report.outcomes.push(outcome);
    Ok(())
}

/// Runs `check` in a fresh [`Lab`], timing it.
fn run_check(check: &Check, lab: Lab<'_>) -> Outcome {
    let started = Instant::now();
    let mut lab = lab;
    let result = (check.run)(&mut lab);
    lab.close();
    Outcome {
        name: check.name,
        verdict: match result {
            Ok(()) => Verdict::Passed,
            Err(failure) => Verdict::Failed(failure),
        },
        time: started.elapsed(),
    }
}

fn skipped(check: &Check, why: String) -> Outcome {
    Outcome {
        name: check.name,
        verdict: Verdict::Skipped(why),
        time: Duration::ZERO,
    }
}

fn not_run(check: &Check, why: &str) -> Outcome {
    Outcome {
        name: check.name,
        verdict: Verdict::Failed(Failure::new(format!("not run: {why}"))),
        time: Duration::ZERO,
    }
}

// ---------------------------------------------------------------------------
// A running server
// ---------------------------------------------------------------------------

fn run_on_running(
    options: &CheckOptions,
    target: &Target,
    out: &mut dyn Write,
) -> io::Result<Report> {
    let started = Instant::now();
    let mut report = Report {
        server: target.to_string(),
        ..Report::default()
    };
    let ready = target
        .resolve()
        .map_err(|e| format!("cannot resolve {target}: {e}"))
        .and_then(|addrs| preflight(target, &addrs, options.wait).map(|()| addrs));
    let addrs = match ready {
        Ok(addrs) => addrs,
        Err(why) => {
            writeln!(out, "cannot check {target}: {why}")?;
            report.preflight = Some(why);
            report.time = started.elapsed();
            return Ok(report);
        }
    };
    let known = &options.settings;
    writeln!(
        out,
        "checking {target} (max {} connections, wait {} per reply)",
        known.max_connections,
        seconds(options.wait)
    )?;
    let seed = run_seed();
    let mut down: Option<String> = None;
    for (index, check) in selected(options) {
        let outcome = if let Some(why) = check.cannot_run_on(known) {
            skipped(&check, why)
        } else if let Some(why) = &down {
            not_run(&check, why)
        } else {
            let lab = Lab::new(
                options.wait,
                known.clone(),
                addrs.clone(),
                None,
                tag(seed, index),
            );
            run_check(&check, lab)
        };
        if matches!(outcome.verdict, Verdict::Failed(_)) && down.is_none() {
            down = still_up(&addrs, options.wait).err();
        }
        record(&mut report, outcome, out)?;
    }
    report.time = started.elapsed();
    writeln!(out, "{}", report.summary())?;
    Ok(report)
}

/// Before checking a running server: something must listen there, and
/// nobody else may be using it (the checks count connections and list
/// users).
fn preflight(target: &Target, addrs: &[SocketAddr], wait: Duration) -> Result<(), String> {
    let stream = remote::connect(addrs, wait).map_err(|e| {
        format!("nothing answers there ({e}); start the server first, or use --spawn")
    })?;
    let kept = stream
        .try_clone()
        .map_err(|e| format!("cannot use the connection: {e}"))?;
    let mut lines = ServerLines::new(stream);
    let result = idle(target, &mut lines, &kept, wait);
    close_all(vec![kept], Instant::now() + wait);
    result
}

/// Reads the greeting, then asks `LIST`: `ERR FULL` or users listed mean
/// the server is busy. Any other surprise is left to the checks.
fn idle(
    target: &Target,
    lines: &mut ServerLines,
    mut writer: &std::net::TcpStream,
    wait: Duration,
) -> Result<(), String> {
    let busy = "the checks need an idle server, with no other client";
    let mut next = || match lines.next_line(Some(Instant::now() + wait)) {
        Ok(Some(line)) => Ok(line.text()),
        Ok(None) => Err(format!(
            "{target} accepts connections but closes them without a word"
        )),
        Err(e) if remote::is_timeout(&e) => Err(format!(
            "{target} accepts connections but sends no greeting within {}",
            seconds(wait)
        )),
        Err(e) => Err(format!("cannot read from {target}: {e}")),
    };
    let greeting = next()?;
    if probe::is_error(&greeting, "FULL") {
        return Err(format!("it greets with {}: {busy}", shown_str(&greeting)));
    }
    if !greeting.starts_with("OK WELCOME") || writer.write_all(b"LIST\n").is_err() {
        return Ok(());
    }
    match next() {
        Ok(list) if list.starts_with("OK LIST ") && !list["OK LIST ".len()..].trim().is_empty() => {
            Err(format!(
                "it already has users ({}): {busy}",
                shown_str(&list)
            ))
        }
        _ => Ok(()),
    }
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

// ---------------------------------------------------------------------------
// Spawn mode
// ---------------------------------------------------------------------------

fn run_on_spawned(
    options: &CheckOptions,
    launcher: &dyn Launcher,
    out: &mut dyn Write,
) -> io::Result<Report> {
    let started = Instant::now();
    let mut report = Report {
        server: launcher.describe(),
        ..Report::default()
    };
    writeln!(
        out,
        "checking `{}`, started by the checker with --bind 127.0.0.1 --port 0 \
         and the flags each check needs (wait {} per reply)",
        launcher.describe(),
        seconds(options.wait)
    )?;
    let seed = run_seed();
    let (waiting, rest): (Vec<_>, Vec<_>) = selected(options)
        .into_iter()
        .partition(|(_, check)| check.pace == Pace::Waits);
    thread::scope(|scope| -> io::Result<()> {
        // The checks that mostly wait run meanwhile, each on its own
        // server, started and stopped by its own thread.
        let waiting: Vec<_> = waiting
            .iter()
            .map(|(index, check)| {
                let tag = tag(seed, *index);
                let thread = scope.spawn(move || {
                    let mut servers = Servers::new(launcher);
                    run_spawned_check(check, &mut servers, options, tag)
                });
                (check, thread)
            })
            .collect();
        let mut servers = Servers::new(launcher);
        for (index, check) in &rest {
            let outcome = run_spawned_check(check, &mut servers, options, tag(seed, *index));
            record(&mut report, outcome, out)?;
        }
        drop(servers);
        for (check, thread) in waiting {
            let outcome = thread
                .join()
                .unwrap_or_else(|_| not_run(check, "the check panicked"));
            record(&mut report, outcome, out)?;
        }
        Ok(())
    })?;
    report.time = started.elapsed();
    writeln!(out, "{}", report.summary())?;
    Ok(report)
}

/// Runs one check in spawn mode, on a server started with its flags.
fn run_spawned_check(
    check: &Check,
    servers: &mut Servers<'_>,
    options: &CheckOptions,
    tag: String,
) -> Outcome {
    let flags = match check.needs {
        Needs::CommandLine => {
            let lab = Lab::new(
                options.wait,
                Settings::default(),
                Vec::new(),
                Some(servers.launcher),
                tag,
            );
            return run_check(check, lab);
        }
        Needs::Server(flags) => flags,
    };
    let addr = match servers.ready(&flags) {
        Ok(started) => started.addr,
        Err(why) => return not_run(check, &why),
    };
    let lab = Lab::new(options.wait, flags.settings(), vec![addr], None, tag);
    let mut outcome = run_check(check, lab);
    if let Verdict::Failed(failure) = &mut outcome.verdict {
        // A fresh server for the next check, so that one failure does not
        // spread; and say if this one has died.
        if let Some(how) = servers.stop() {
            failure.0.push_str(&format!(" (then the server {how})"));
        }
    }
    outcome
}

/// The server the checks running on one thread share while they need the
/// same flags.
struct Servers<'a> {
    launcher: &'a dyn Launcher,
    /// The flags of the last server started, and it (or why it did not
    /// start: the checks that need the same flags are not run either).
    current: Option<(ServerFlags, Result<Started, String>)>,
}

impl<'a> Servers<'a> {
    fn new(launcher: &'a dyn Launcher) -> Servers<'a> {
        Servers {
            launcher,
            current: None,
        }
    }

    /// A server started with `flags`: the current one if it has the same
    /// flags and still runs, else a new one.
    fn ready(&mut self, flags: &ServerFlags) -> Result<&Started, String> {
        let reusable = match &mut self.current {
            Some((current, Ok(started))) if current == flags => {
                matches!(started.process.exit_status(), Ok(None))
            }
            Some((current, Err(_))) => current == flags,
            _ => false,
        };
        if !reusable {
            self.current = None; // stops the previous server first
            self.current = Some((*flags, Started::start(self.launcher, flags)));
        }
        match &self.current {
            Some((_, Ok(started))) => Ok(started),
            Some((_, Err(why))) => Err(why.clone()),
            None => Err("no server".to_owned()),
        }
    }

    /// Stops the current server; says how it had ended if it had.
    fn stop(&mut self) -> Option<String> {
        let (_, started) = self.current.take()?;
        let mut started = started.ok()?;
        match started.process.exit_status() {
            Ok(Some(Some(code))) => Some(format!("exited with code {code}")),
            Ok(Some(None)) => Some("was killed by a signal".to_owned()),
            _ => None,
        }
    }
}
