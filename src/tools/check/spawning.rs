//! Spawn mode's runner: which server each check runs on, and side by side
//! with which. Four lanes take the checks one after another, the busy
//! ones first, each lane with a server of its own: checks that need the
//! same flags share it, and it is restarted after a failure (so that one
//! failure does not spread). The checks that mostly wait for a timeout,
//! and the one that times the others to half a second, run meanwhile,
//! each on a server of its own. Every
//! server is started and stopped by one thread (a server must not outlive
//! the thread that started it: see [`launch`](super::launch)). Results
//! are printed in the table's order, each as soon as those before it are.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::mpsc;
use std::sync::{Mutex, PoisonError};
use std::thread;
use std::time::Instant;

use super::launch::{Launcher, Started};
use super::settings::{ServerFlags, Settings};
use super::{
    Check, CheckOptions, Lab, Needs, Outcome, Pace, Report, Verdict, header, not_run, record,
    run_check, selected, tag,
};
use crate::lang::{Lang, tr};

/// How many checks run side by side besides those that wait, each lane
/// on a server of its own.
const LANES: usize = 4;

pub(super) fn run_on_spawned(
    options: &CheckOptions,
    launcher: &dyn Launcher,
    out: &mut dyn Write,
) -> io::Result<Report> {
    let started = Instant::now();
    let lang = options.lang;
    let mut report = Report {
        server: launcher.describe(),
        ..Report::default()
    };
    let what = tr!(
        lang,
        "`{}`, started by the checker with --bind 127.0.0.1 --port 0 and the flags each \
         check needs",
        "`{}`, lancé par le banc avec --bind 127.0.0.1 --port 0 et les options que chaque \
         vérification demande",
        launcher.describe()
    );
    writeln!(out, "{}", header(options, &what))?;
    let checks = selected(options);
    let (done, outcomes) = mpsc::channel::<(usize, Outcome)>();
    // The lanes take the busy checks first, then the quick ones, in order.
    let mut queue: Vec<usize> = (0..checks.len())
        .filter(|&at| matches!(checks[at].1.pace, Pace::Busy | Pace::Quick))
        .collect();
    queue.sort_by_key(|&at| checks[at].1.pace != Pace::Busy);
    let queue = Mutex::new(VecDeque::from(queue));
    thread::scope(|scope| -> io::Result<()> {
        let checks = &checks;
        // The checks that mostly wait, and those that time the others:
        // each on its own thread and server, from the start.
        for (at, (index, check)) in checks.iter().enumerate() {
            if matches!(check.pace, Pace::Waits | Pace::Timing) {
                let done = done.clone();
                scope.spawn(move || {
                    let mut servers = Servers::new(launcher);
                    let outcome = run_spawned_check(check, &mut servers, options, tag(*index));
                    let _ = done.send((at, outcome));
                });
            }
        }
        // The lanes.
        let queue = &queue;
        for _ in 0..LANES {
            let done = done.clone();
            scope.spawn(move || {
                let mut servers = Servers::new(launcher);
                while let Some(at) = next(queue) {
                    let (index, check) = &checks[at];
                    let outcome = run_spawned_check(check, &mut servers, options, tag(*index));
                    let _ = done.send((at, outcome));
                }
            });
        }
        drop(done);
        // Printed in the table's order, each as soon as those before it are.
        let mut ready: Vec<Option<Outcome>> = (0..checks.len()).map(|_| None).collect();
        let mut printed = 0;
        while printed < checks.len() {
            let Ok((at, outcome)) = outcomes.recv() else {
                break;
            };
            ready[at] = Some(outcome);
            while let Some(outcome) = ready.get_mut(printed).and_then(Option::take) {
                record(&mut report, outcome, lang, out)?;
                printed += 1;
            }
        }
        Ok(())
    })?;
    report.time = started.elapsed();
    writeln!(out, "{}", report.summary(lang))?;
    Ok(report)
}

/// The next check a lane takes.
fn next(queue: &Mutex<VecDeque<usize>>) -> Option<usize> {
    queue
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .pop_front()
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
                options.lang,
            );
            return run_check(check, lab);
        }
        Needs::Server(flags) => flags,
    };
    let addr = match servers.ready(&flags) {
        Ok(started) => started.addr,
        Err(why) => return not_run(check, options.lang, &why),
    };
    let lab = Lab::new(
        options.wait,
        flags.settings(),
        vec![addr],
        None,
        tag,
        options.lang,
    );
    let mut outcome = run_check(check, lab);
    if let Verdict::Failed(failure) = &mut outcome.verdict {
        // A fresh server for the next check, so that one failure does not
        // spread; and say if this one has died.
        if let Some(how) = servers.stop(options.lang) {
            failure.what.push_str(&how);
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
    fn stop(&mut self, lang: Lang) -> Option<String> {
        let (_, started) = self.current.take()?;
        let mut started = started.ok()?;
        match started.process.exit_status() {
            Ok(Some(Some(code))) => Some(tr!(
                lang,
                " (then the server exited with code {code})",
                " (puis le serveur s'est arrêté avec le code {code})"
            )),
            Ok(Some(None)) => Some(
                lang.pick(
                    " (then the server was killed by a signal)",
                    " (puis le serveur a été tué par un signal)",
                )
                .to_owned(),
            ),
            _ => None,
        }
    }
}
