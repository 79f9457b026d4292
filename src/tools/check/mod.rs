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
//! - **spawn mode** (`--spawn 'COMMAND'`): the checker starts the server
//!   itself ([`launch`]), with the flags each check needs ([`settings`]),
//!   so every check can run, those of the command line included
//!   (`spawning`);
//! - **a running server** (`HOST[:PORT]`): the checks it can run there,
//!   after a preflight (`running`).
//!
//! | part | module |
//! | --- | --- |
//! | the options, the entry points, running one check (here) | [`run`] |
//! | the checks, one per rule, by theme | [`checks`] |
//! | what one check works with: address, settings, names, connections | [`Lab`] |
//! | one connection, every read with a deadline | [`probe`] |
//! | the server's settings, the flags spawn mode gives | [`settings`] |
//! | starting a server program, its first stderr line | [`launch`] |
//! | splitting `--spawn`'s text into words | [`words`] |
//! | spawn mode: which server each check runs on | `spawning` |
//! | a running server: preflight, then the checks | `running` |
//! | the results, the summary line | [`Report`] |
//! | the JUnit XML report | [`junit`] |
//!
//! Nothing the server does can hang the run or make it panic: every read
//! has a deadline ([`probe`]), each check's connections are closed before
//! the next check starts, and a server that stops answering fails the
//! remaining checks at once.

pub mod checks;
pub mod junit;
mod lab;
pub mod launch;
pub mod probe;
mod report;
mod running;
pub mod settings;
mod spawning;
pub mod words;

use std::io::{self, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::tools::remote::Target;
pub use checks::{Check, Needs, Pace};
pub use lab::Lab;
use launch::{Launcher, SpawnCommand};
use probe::Failure;
pub use report::{Outcome, Report, Verdict};
use settings::Settings;

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

/// Runs the checks `options` asks for, printing each result to `out` as
/// it comes, then the summary line; writes the JUnit report if asked.
pub fn run(options: &CheckOptions, out: &mut dyn Write) -> io::Result<Report> {
    match &options.server {
        ServerUnderTest::Running(target) => {
            let report = running::run_on_running(options, target, out)?;
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
    let report = spawning::run_on_spawned(options, launcher, out)?;
    finish(options, report)
}

fn finish(options: &CheckOptions, report: Report) -> io::Result<Report> {
    if let Some(path) = &options.junit {
        junit::write(path, &report)?;
    }
    Ok(report)
}

/// The checks `options` selects, in the table's order.
pub(super) fn selected(options: &CheckOptions) -> Vec<(usize, Check)> {
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
pub(super) fn run_seed() -> u32 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    (std::process::id() ^ nanos) % 1000
}

/// Five digits unique to check `index` of a run.
pub(super) fn tag(seed: u32, index: usize) -> String {
    format!("{seed:03}{:02}", index % 100)
}

/// Prints and records one outcome.
pub(super) fn record(report: &mut Report, outcome: Outcome, out: &mut dyn Write) -> io::Result<()> {
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
pub(super) fn run_check(check: &Check, lab: Lab<'_>) -> Outcome {
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

pub(super) fn skipped(check: &Check, why: String) -> Outcome {
    Outcome {
        name: check.name,
        verdict: Verdict::Skipped(why),
        time: Duration::ZERO,
    }
}

pub(super) fn not_run(check: &Check, why: &str) -> Outcome {
    Outcome {
        name: check.name,
        verdict: Verdict::Failed(Failure::new(format!("not run: {why}"))),
        time: Duration::ZERO,
    }
}
