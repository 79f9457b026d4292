//! Spawn mode's runner: which server each check runs on. The checks that
//! need the same flags share a server, one after another, and a server is
//! restarted after a failure (so that one failure does not spread); the
//! checks that mostly wait for a timeout run at the same time, each on a
//! server of its own, started and stopped by its own thread (a server
//! must not outlive the thread that started it: see [`launch`](super::launch)).

use std::io::{self, Write};
use std::thread;
use std::time::Instant;

use super::launch::{Launcher, Started};
use super::probe::seconds;
use super::settings::{ServerFlags, Settings};
use super::{
    Check, CheckOptions, Lab, Needs, Outcome, Pace, Report, Verdict, not_run, record, run_check,
    run_seed, selected, tag,
};

pub(super) fn run_on_spawned(
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
