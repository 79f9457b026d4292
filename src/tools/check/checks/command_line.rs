//! The command line, the first line on stderr, and the log that never
//! stops the server (contract: "Command line", "Guarantees"). Spawn mode
//! only: these checks run the server's program themselves.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};
use std::thread;
use std::time::{Duration, Instant};

use super::super::Lab;
use super::super::causes::Cause;
use super::super::launch::{self, Launcher, Process, START_WAIT};
use super::super::probe::{Failure, error_words, shown_str};
use super::super::settings::{ServerFlags, Stderr};
use crate::lang::{Lang, tr};

/// Everything logged (`--verbose`), into a pipe nobody reads.
pub const LOG_STALLED: ServerFlags = ServerFlags {
    verbose: true,
    stderr: Stderr::Stalled,
    ..ServerFlags::DEFAULTS
};

/// Everything logged (`--verbose`), into a closed stderr.
pub const LOG_CLOSED: ServerFlags = ServerFlags {
    verbose: true,
    stderr: Stderr::Closed,
    ..ServerFlags::DEFAULTS
};

/// How a program the check ran ended.
struct Ended {
    /// The exit code (`None`: killed by a signal).
    code: Option<i32>,
    /// Its lines on stderr.
    stderr: Vec<String>,
}

/// How long a program run for `--help`, `--version` or a usage error may
/// take to end.
const EXIT_WAIT: Duration = Duration::from_secs(3);

/// How many bad command lines [`usage_errors`] runs at once.
const USAGE_WAVE: usize = 4;

/// Runs the program with `args` to its end (at most [`EXIT_WAIT`]).
fn run_to_end(lang: Lang, launcher: &dyn Launcher, args: &[&str]) -> Result<Ended, Failure> {
    let shown = shown(launcher, args);
    let args: Vec<String> = args.iter().map(|arg| arg.to_string()).collect();
    let mut process = launcher
        .launch(&args, Stderr::Drained)
        .map_err(|e| cannot_run(lang, &shown, &e))?;
    let deadline = Instant::now() + EXIT_WAIT;
    let mut stderr = Vec::new();
    while let Ok(Some(line)) = process.stderr_line(deadline) {
        stderr.push(line);
    }
    loop {
        match process.exit_status() {
            Ok(Some(code)) => return Ok(Ended { code, stderr }),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                let wait = lang.seconds(EXIT_WAIT);
                return Err(Failure::new(tr!(
                    lang,
                    "`{shown}` was still running after {wait} (it was stopped)",
                    "`{shown}` tournait encore au bout de {wait} (il a été arrêté)"
                )));
            }
            Err(e) => return Err(cannot_run(lang, &shown, &e)),
        }
    }
}

/// The failure of a program that cannot be run.
fn cannot_run(lang: Lang, shown: &str, e: &std::io::Error) -> Failure {
    let why = error_words(lang, e.kind());
    Failure::new(tr!(
        lang,
        "cannot run `{shown}`: {why}",
        "impossible de lancer `{shown}` : {why}"
    ))
}

/// The command line as a failure shows it.
fn shown(launcher: &dyn Launcher, args: &[&str]) -> String {
    format!("{} {}", launcher.describe(), args.join(" "))
}

/// `--help` prints help and exits with code 0.
pub fn help_exits_0(lab: &mut Lab<'_>) -> Result<(), Failure> {
    exits_0(lab, "--help")
}

/// `--version` is a flag of the command line, not a usage error: it
/// exits with code 0.
pub fn version_exits_0(lab: &mut Lab<'_>) -> Result<(), Failure> {
    exits_0(lab, "--version")
}

/// Runs the program with `flag` alone, and requires exit code 0.
fn exits_0(lab: &mut Lab<'_>, flag: &str) -> Result<(), Failure> {
    let launcher = lab.launcher()?;
    let lang = lab.lang();
    let ended = run_to_end(lang, launcher, &[flag])?;
    match ended.code {
        Some(0) => Ok(()),
        code => {
            let (shown, exit) = (shown(launcher, &[flag]), exit(lang, code));
            Err(Failure::new(tr!(
                lang,
                "`{shown}`: expected exit code 0; got {exit}",
                "`{shown}` : code de sortie 0 attendu ; obtenu {exit}"
            )))
        }
    }
}

/// A bad flag or value (an unknown flag, `--write-timeout 0`,
/// `--max-connections 0`, a port out of range, a timeout that is not a
/// number or is negative, a flag without its value) is a usage error: one
/// line on stderr, exit code 2.
pub fn usage_errors(lab: &mut Lab<'_>) -> Result<(), Failure> {
    let launcher = lab.launcher()?;
    let cases: [&[&str]; 7] = [
        &["--bind", "127.0.0.1", "--port", "0", "--frobnicate"],
        &["--bind", "127.0.0.1", "--port", "0", "--write-timeout", "0"],
        &[
            "--bind",
            "127.0.0.1",
            "--port",
            "0",
            "--max-connections",
            "0",
        ],
        &["--bind", "127.0.0.1", "--port", "70000"],
        &[
            "--bind",
            "127.0.0.1",
            "--port",
            "0",
            "--login-timeout",
            "soon",
        ],
        &["--bind", "127.0.0.1", "--port", "0", "--idle-timeout", "-1"],
        &["--bind", "127.0.0.1", "--port", "0", "--max-connections"],
    ];
    let lang = lab.lang();
    // Every case that goes wrong is reported, so that one run shows all
    // there is to mend. A few side by side: a server that starts instead
    // of refusing its flags costs the exit wait once per wave, not once
    // per case, and the programs starting at once leave the machine to
    // the checks that time the server meanwhile.
    let mut wrong = Vec::new();
    for wave in cases.chunks(USAGE_WAVE) {
        thread::scope(|scope| {
            let runs: Vec<_> = wave
                .iter()
                .map(|args| scope.spawn(move || usage_error(lang, launcher, args)))
                .collect();
            for run in runs {
                match run.join() {
                    Ok(Ok(())) => {}
                    Ok(Err(what)) => wrong.push(what),
                    Err(_) => wrong.push("a thread of the checker panicked".to_owned()),
                }
            }
        });
    }
    if wrong.is_empty() {
        return Ok(());
    }
    let (n, total) = (wrong.len(), cases.len());
    Err(Failure {
        exchanges: wrong,
        ..Failure::new(tr!(
            lang,
            "expected exit code 2 and one line on stderr for each bad command line; {n} of \
             {total} got something else:",
            "code de sortie 2 et une ligne sur la sortie d'erreur attendus pour chaque ligne de \
             commande fautive ; {n} sur {total} ont obtenu autre chose :"
        ))
    })
}

/// Runs the program with `args`, a usage error: `Err` says what came
/// instead of exit code 2 and one line on stderr.
fn usage_error(lang: Lang, launcher: &dyn Launcher, args: &[&str]) -> Result<(), String> {
    let shown = shown(launcher, args);
    let ended = run_to_end(lang, launcher, args).map_err(|f| f.what)?;
    if ended.code == Some(2) && ended.stderr.len() == 1 {
        return Ok(());
    }
    let exit = exit(lang, ended.code);
    let lines = match ended.stderr.as_slice() {
        [] => lang.pick("no line", "aucune ligne").to_owned(),
        [line] => {
            let line = shown_str(line);
            tr!(lang, "one line ({line})", "une ligne ({line})")
        }
        lines => {
            let (n, first) = (lines.len(), shown_str(&lines[0]));
            tr!(lang, "{n} lines ({first}, …)", "{n} lignes ({first}, …)")
        }
    };
    Err(tr!(
        lang,
        "`{shown}`: got {exit} and {lines}",
        "`{shown}` : obtenu {exit} et {lines}"
    ))
}

fn exit(lang: Lang, code: Option<i32>) -> String {
    match code {
        Some(code) => tr!(lang, "exit code {code}", "le code de sortie {code}"),
        None => lang
            .pick("an end by a signal", "une fin par un signal")
            .to_owned(),
    }
}

/// The first line on stderr is
/// `minichat: listening on <addr>:<port> (max <n> connections)`, with the
/// address actually bound as Rust's `SocketAddr` displays it (`0.0.0.0`
/// without `--bind`, `[::1]` for IPv6), the port the system chose for
/// `--port 0`, and `<n>` the limit in force (5 by default).
pub fn first_stderr_line(lab: &mut Lab<'_>) -> Result<(), Failure> {
    let launcher = lab.launcher()?;
    let any = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
    let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let v6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
    // The arguments, the address the line must show, the limit.
    let mut cases: Vec<(&[&str], IpAddr, usize)> = vec![
        (&["--bind", "127.0.0.1", "--port", "0"], loopback, 5),
        (
            &[
                "--bind",
                "127.0.0.1",
                "--port",
                "0",
                "--max-connections",
                "7",
            ],
            loopback,
            7,
        ),
        (&["--port", "0"], any, 5),
    ];
    // Only where this machine has an IPv6 loopback.
    if TcpListener::bind((v6, 0)).is_ok() {
        cases.push((&["--bind", "::1", "--port", "0"], v6, 5));
    }
    let lang = lab.lang();
    for (args, ip, max) in cases {
        let shown = shown(launcher, args);
        let owned: Vec<String> = args.iter().map(|arg| arg.to_string()).collect();
        let mut process = launcher
            .launch(&owned, Stderr::Drained)
            .map_err(|e| cannot_run(lang, &shown, &e))?;
        let line = first_line(lang, &mut *process, &shown)?;
        let expected = format!(
            "\"minichat: listening on {}:<port> (max {max} connections)\"",
            SocketAddr::new(ip, 0).to_string().trim_end_matches(":0")
        );
        let printed = shown_str(&line);
        let wrong = Failure::new(tr!(
            lang,
            "`{shown}` printed {printed} as its first line on stderr; expected {expected}, with \
             the port the system chose",
            "`{shown}` a écrit {printed} en première ligne sur la sortie d'erreur ; attendu \
             {expected}, avec le port choisi par le système"
        ));
        let addr = launch::first_line_address(&line).map_err(|_| wrong.clone())?;
        if addr.ip() != ip || addr.port() == 0 || launch::first_line_max(&line) != Some(max) {
            return Err(wrong);
        }
        // 0.0.0.0 is reached through the loopback.
        let reach = SocketAddr::new(if ip == any { loopback } else { ip }, addr.port());
        let label = tr!(lang, "a connection to {reach}", "une connexion à {reach}");
        let mut c = lab.connect_to(reach, &label)?;
        c.expect_prefix("OK WELCOME")?;
    }
    Ok(())
}

/// The program's first line on stderr, within [`START_WAIT`].
fn first_line(lang: Lang, process: &mut dyn Process, shown: &str) -> Result<String, Failure> {
    match process.stderr_line(Instant::now() + START_WAIT) {
        Ok(Some(line)) => Ok(line),
        Ok(None) => Err(Failure::new(launch::ended(
            process,
            shown,
            lang.pick(
                "without a line on stderr",
                "sans ligne sur la sortie d'erreur",
            ),
        ))),
        Err(_) => {
            let wait = lang.seconds(START_WAIT);
            Err(Failure::new(tr!(
                lang,
                "`{shown}` printed no line on stderr within {wait}",
                "`{shown}` n'a écrit aucune ligne sur la sortie d'erreur en {wait}"
            )))
        }
    }
}

/// The operator's log never stops or slows the server: with `--verbose`
/// (a log line for every line in and out) and its stderr a pipe nobody
/// reads, it keeps serving every client.
pub fn log_pipe_nobody_reads(lab: &mut Lab<'_>) -> Result<(), Failure> {
    // A server that stops answering is stuck writing its log.
    log_never_blocks(lab).map_err(|f| f.likely_if(Cause::LogBlocks, |f| f.silent))
}

/// The same with its stderr closed.
pub fn log_stderr_closed(lab: &mut Lab<'_>) -> Result<(), Failure> {
    // A server that closes the connection (or cannot be reached) died
    // writing its log: what came is no line, and came at once.
    log_never_blocks(lab)
        .map_err(|f| f.likely_if(Cause::LogDiesWhenClosed, |f| f.got.is_none() && !f.silent))
}

/// Keeps a logged-in client busy (20,000 pipelined PINGs), then logs five
/// more in and out, then relays a message.
fn log_never_blocks(lab: &mut Lab<'_>) -> Result<(), Failure> {
    const PINGS: usize = 20_000;
    let (alice, bob) = (lab.name("alice"), lab.name("bob"));
    let mut a = lab.login(&alice)?;
    a.send_bytes("PING\n".repeat(PINGS).as_bytes())?;
    for _ in 0..PINGS {
        a.expect("OK PING")?;
    }
    for i in 0..5 {
        let mut c = lab.login(&lab.name(&format!("guest{i}x")))?;
        c.sync()?;
        c.quit()?;
    }
    let mut b = lab.login(&bob)?;
    super::deliver(&mut a, &alice, &mut b, &bob, "still there?")
}
