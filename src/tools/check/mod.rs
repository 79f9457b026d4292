//! `minichat check`: a conformance suite run from outside, over TCP,
//! against any server that claims to speak the protocol (ours, or a
//! student's).
//!
//! Each check of [`checks`] observes one rule of PROTOCOL.md and prints
//! `PASS <name>`, `SKIP <name> (<why>)` or `FAIL <name>: <what was
//! expected, what came>` followed by what every connection involved sent
//! and got, the rule in PROTOCOL.md's words with its section, and the
//! likely cause when the answer matches a known slip ([`Failure`]). The
//! run ends with a summary per section of PROTOCOL.md, the likely causes
//! with the failures each explains, and `N passed, M failed, K skipped
//! in T s` ([`Report`]); it can also be written as a JUnit XML report
//! ([`junit`]). Checks have levels (`--level 1|2|3`), and the prose is
//! French or English (`--lang`, [`crate::lang`]).
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
//! | the rules they cite, in PROTOCOL.md's words | [`rules`] |
//! | the naive implementations a failure can point to | [`causes`] |
//! | what one check works with: address, settings, names, connections | [`Lab`] |
//! | one connection, every read with a deadline | [`probe`] |
//! | what each connection sent and got, for a failure | `journal` |
//! | a failure, as the student reads it | [`Failure`] |
//! | lines shown in PROTOCOL.md's notation (`<U+0085>`) | `shown` |
//! | French or English | [`crate::lang`] |
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
//!
//! # How a run goes
//!
//! **Spawn mode grades a server completely.** The checker starts the
//! server as `COMMAND ARGS --bind 127.0.0.1 --port 0`, plus the flags each
//! check needs: `--max-connections 2` for the limit and slot checks,
//! `--login-timeout 2` with the default idle timeout and `--idle-timeout 2`
//! with the default login timeout (so that a server with a single clock
//! fails), `0` for "never", `--write-timeout 1`, `2` or `3` for the write
//! timeout and the end of a connection, all three timeouts at
//! 18446744073709551615 for "every value the command line accepts is
//! honoured", `--verbose` for the log checks. The command-line checks run
//! `COMMAND ARGS` themselves, with `--help`, `--version`, bad flags, and
//! without `--bind`. The port comes from the first line on stderr, which
//! the contract fixes (`minichat: listening on 127.0.0.1:<port> (max <n>
//! connections)`); a server whose first line is worded otherwise is still
//! checked if a port can be found in it, and fails `first-stderr-line`
//! only. A server that does not start with some flags fails the checks
//! that need them, with its exit code and its line, and no other.
//!
//! **Side by side.** Four lanes take the quick and busy checks, each lane
//! with a server of its own (shared by the checks that need the same
//! flags, restarted after a failure); the checks that wait for a timeout,
//! and the one that times the others, each run on a server of their own
//! meanwhile. Results are printed in the list's order. A missing reply
//! costs its wait once per check. The server's stdin is `/dev/null` and its
//! stderr is read for its whole life (but by the two log checks, which stop
//! reading it or close it on purpose). Clients that must never read connect
//! with a small receive buffer (`socket`), so that a server finds their
//! socket full after a few KB.
//!
//! **No server is left behind**: each is stopped by its own PID when its
//! check ends, whatever the outcome, and on Linux the system kills it if
//! the checker dies (`PR_SET_PDEATHSIG`), even by `kill -9`. If COMMAND is
//! a script, it should end with `exec` (`exec python3 server.py "$@"`): the
//! checker knows the script's PID only.
//!
//! **A running server** (`HOST[:PORT]`) gets the checks that need nothing
//! else: those of the command line and the log are skipped, and so are
//! those whose settings were not given (`--login-timeout`, ...). The checks
//! need an idle server: if nothing listens, or it greets with `ERR FULL`,
//! or `LIST` shows users, the checker says so in one line and exits with 1.
//!
//! **The same verdict every run.** Each check uses its own user names (two
//! digits, the same on every run). A timing check repeats its critical
//! step, so that a correct server passes every run and a racy one fails
//! (nearly) every run: 32 leavers in a row for "after `OK QUIT`, the slot
//! and the name are free at once", 100 logins for "no `RECEIVE` before
//! `OK CONNECT`". `tests/check.rs` proves it with faulty servers whose race
//! window is 5 ms: they fail 10 runs of 10, the correct one passes 10 of 10.
//!
//! **Not checked**, because it cannot be seen from outside in a few
//! seconds: the default timeouts (60 s, 600 s, 2 s) and port, the bound on
//! memory per connection (beyond a 1 MB line), and that `OK SEND` is
//! written only after its `RECEIVE` (two sockets: the order cannot be seen
//! without a race). `tests/faulty/ANGLES.md` lists, sentence by sentence of
//! the contract, the ways to break it and the check that catches each.

pub mod causes;
pub mod checks;
mod failure;
mod journal;
pub mod junit;
mod lab;
pub mod launch;
pub mod probe;
mod report;
pub mod rules;
mod running;
pub mod settings;
mod shown;
mod socket;
mod spawning;
pub mod words;

use std::io::{self, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::lang::{Lang, tr};
use crate::tools::remote::Target;
use causes::Cause;
pub use checks::{Check, Needs, Pace};
pub use failure::Failure;
pub use lab::Lab;
use launch::{Launcher, SpawnCommand};
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
    /// Only the checks of this level and below (`--level`, 3: all).
    pub level: u8,
    /// The language of the report (`--lang`).
    pub lang: Lang,
    /// Print the checks instead of running them (`--list`).
    pub list: bool,
}

/// The level that runs every check.
pub const ALL_LEVELS: u8 = 3;

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            server: ServerUnderTest::Running(Target::default()),
            settings: Settings::default(),
            wait: DEFAULT_WAIT,
            junit: None,
            only: Vec::new(),
            level: ALL_LEVELS,
            lang: Lang::En,
            list: false,
        }
    }
}

/// Runs the checks `options` asks for, printing each result to `out` as
/// it comes, then the summary line; writes the JUnit report if asked.
pub fn run(options: &CheckOptions, out: &mut dyn Write) -> io::Result<Report> {
    if options.list {
        list(options, out)?;
        return Ok(Report::default());
    }
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
        junit::write(path, &report, options.lang)?;
    }
    Ok(report)
}

/// Prints every check the options select: its name, level and
/// PROTOCOL.md section, then its rule in PROTOCOL.md's words.
pub fn list(options: &CheckOptions, out: &mut dyn Write) -> io::Result<()> {
    let lang = options.lang;
    for (_, check) in selected(options) {
        let (level, section) = (check.level, check.rule.section);
        writeln!(
            out,
            "{}",
            tr!(
                lang,
                "{} (level {level}, PROTOCOL.md « {section} »)",
                "{} (niveau {level}, PROTOCOL.md « {section} »)",
                check.name
            )
        )?;
        writeln!(out, "    « {} »", check.rule.quote)?;
    }
    Ok(())
}

/// The checks `options` selects, in the table's order.
pub(super) fn selected(options: &CheckOptions) -> Vec<(usize, Check)> {
    checks::all()
        .into_iter()
        .enumerate()
        .filter(|(_, check)| check.level <= options.level)
        .filter(|(_, check)| {
            options.only.is_empty() || options.only.iter().any(|n| n == check.name)
        })
        .collect()
}

/// Two digits unique to check `index`: its user names end with them
/// (`alice07`). The same on every run, so a fault reads the same.
pub(super) fn tag(index: usize) -> String {
    format!("{:02}", index % 100)
}

/// The first line of a run, in the run's language.
pub(super) fn header(options: &CheckOptions, what: &str) -> String {
    let lang = options.lang;
    let wait = lang.seconds(options.wait);
    let level = options.level;
    tr!(
        lang,
        "checking {what} (level {level} of 3, wait {wait} per reply)",
        "vérification de {what} (niveau {level} sur 3, attente de {wait} par réponse)"
    )
}

/// Prints and records one outcome.
pub(super) fn record(
    report: &mut Report,
    outcome: Outcome,
    lang: Lang,
    out: &mut dyn Write,
) -> io::Result<()> {
    match &outcome.verdict {
        Verdict::Passed => writeln!(out, "PASS {}", outcome.name)?,
        Verdict::Failed(failure) => {
            writeln!(out, "FAIL {}: {}", outcome.name, failure.render(lang))?
        }
        Verdict::Skipped(why) => writeln!(out, "SKIP {} ({why})", outcome.name)?,
    }
    out.flush()?;
    report.outcomes.push(outcome);
    Ok(())
}

/// Runs `check` in a fresh [`Lab`], timing it. A failure gets what each
/// connection sent and got, and the check's rule if it cites none. The
/// connections are closed at once after a failure (the server is not
/// used again); after a pass, the server is given the wait to close them.
pub(super) fn run_check(check: &Check, lab: Lab<'_>) -> Outcome {
    let started = Instant::now();
    let mut lab = lab;
    let result = (check.run)(&mut lab);
    let wait = lab.wait();
    let verdict = match result {
        Ok(()) => {
            lab.close(Instant::now() + wait);
            Verdict::Passed
        }
        Err(mut failure) => {
            if failure.with_exchanges {
                failure.exchanges = lab.exchanges();
            }
            failure.rule.get_or_insert(check.rule);
            // A close instead of a reply, and nothing more precise to say:
            // the server's thread for the client likely crashed on the line.
            // (Not in the checks that wait for a timeout: the server closes
            // connections there, and a close is more likely the timeout's.)
            if failure.closed_after.is_some() && matches!(check.pace, Pace::Quick | Pace::Busy) {
                failure.cause.get_or_insert(Cause::ThreadCrashed);
            }
            lab.close(Instant::now());
            Verdict::Failed(failure)
        }
    };
    Outcome {
        name: check.name,
        section: check.rule.section,
        verdict,
        time: started.elapsed(),
    }
}

pub(super) fn skipped(check: &Check, why: String) -> Outcome {
    Outcome {
        name: check.name,
        section: check.rule.section,
        verdict: Verdict::Skipped(why),
        time: Duration::ZERO,
    }
}

pub(super) fn not_run(check: &Check, lang: Lang, why: &str) -> Outcome {
    Outcome {
        name: check.name,
        section: check.rule.section,
        verdict: Verdict::Failed(
            Failure::new(tr!(lang, "not run: {why}", "non lancée : {why}")).because(check.rule),
        ),
        time: Duration::ZERO,
    }
}
