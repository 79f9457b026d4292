//! The command line, the first line on stderr, and the log that never
//! stops the server (contract: "Command line", "Guarantees"). Spawn mode
//! only: these checks run the server's program themselves.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};
use std::thread;
use std::time::{Duration, Instant};

use super::super::Lab;
use super::super::launch::{self, Launcher, Process, START_WAIT};
use super::super::probe::{Failure, Probe, seconds};
use super::super::settings::{ServerFlags, Stderr};

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

/// Runs the program with `args` to its end (at most [`START_WAIT`]).
fn run_to_end(launcher: &dyn Launcher, args: &[&str]) -> Result<Ended, Failure> {
    let shown = shown(launcher, args);
    let args: Vec<String> = args.iter().map(|arg| arg.to_string()).collect();
    let mut process = launcher
        .launch(&args, Stderr::Drained)
        .map_err(|e| Failure::new(format!("cannot run `{shown}`: {e}")))?;
    let deadline = Instant::now() + START_WAIT;
    let mut stderr = Vec::new();
    while let Ok(Some(line)) = process.stderr_line(deadline) {
        stderr.push(line);
    }
    loop {
        match process.exit_status() {
            Ok(Some(code)) => return Ok(Ended { code, stderr }),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                return Err(Failure::new(format!(
                    "`{shown}` was still running after {} (it was stopped)",
                    seconds(START_WAIT)
                )));
            }
            Err(e) => return Err(Failure::new(format!("cannot wait for `{shown}`: {e}"))),
        }
    }
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
    let ended = run_to_end(launcher, &[flag])?;
    match ended.code {
        Some(0) => Ok(()),
        code => Err(Failure::new(format!(
            "`{}`: expected exit code 0; got {}",
            shown(launcher, &[flag]),
            exit(code)
        ))
        .because(&format!("{flag} exits with code 0"))),
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
    for args in cases {
        let ended = run_to_end(launcher, args)
            .map_err(|f| f.because("a bad flag or value is a usage error"))?;
        if ended.code != Some(2) || ended.stderr.len() != 1 {
            return Err(Failure::new(format!(
                "`{}`: expected exit code 2 and one line on stderr; got {} and {}",
                shown(launcher, args),
                exit(ended.code),
                match ended.stderr.as_slice() {
                    [] => "no line".to_owned(),
                    [line] => format!("one line ({line:?})"),
                    lines => format!("{} lines ({:?}, ...)", lines.len(), lines[0]),
                }
            ))
            .because("a bad flag or value is a usage error: one line on stderr, exit code 2"));
        }
    }
    Ok(())
}

fn exit(code: Option<i32>) -> String {
    match code {
        Some(code) => format!("exit code {code}"),
        None => "an end by a signal".to_owned(),
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
    for (args, ip, max) in cases {
        let shown = shown(launcher, args);
        let owned: Vec<String> = args.iter().map(|arg| arg.to_string()).collect();
        let mut process = launcher
            .launch(&owned, Stderr::Drained)
            .map_err(|e| Failure::new(format!("cannot run `{shown}`: {e}")))?;
        let line = first_line(&mut *process, &shown)?;
        let expected = format!(
            "\"minichat: listening on {}:<port> (max {max} connections)\"",
            SocketAddr::new(ip, 0).to_string().trim_end_matches(":0")
        );
        let rule = "the first line on stderr is \"minichat: listening on <addr>:<port> \
                    (max <n> connections)\"";
        let wrong = |why: String| {
            Failure::new(format!(
                "`{shown}` printed {line:?} as its first line on stderr; expected {expected}: {why}"
            ))
            .because(rule)
        };
        let addr = launch::first_line_address(&line).map_err(wrong)?;
        if addr.ip() != ip || addr.port() == 0 {
            return Err(wrong(format!(
                "the address bound is {ip} and a port the system chose"
            )));
        }
        if launch::first_line_max(&line) != Some(max) {
            return Err(wrong(format!("the limit in force is {max}")));
        }
        // 0.0.0.0 is reached through the loopback.
        let reach = SocketAddr::new(if ip == any { loopback } else { ip }, addr.port());
        let mut c = lab_probe(lab, reach)?;
        c.expect_prefix("OK WELCOME")
            .map_err(|f| f.because("the first line gives the port the server listens on"))?;
    }
    Ok(())
}

/// The program's first line on stderr, within [`START_WAIT`].
fn first_line(process: &mut dyn Process, shown: &str) -> Result<String, Failure> {
    match process.stderr_line(Instant::now() + START_WAIT) {
        Ok(Some(line)) => Ok(line),
        Ok(None) => Err(Failure::new(launch::ended(
            process,
            shown,
            "without a line on stderr",
        ))),
        Err(_) => Err(Failure::new(format!(
            "`{shown}` printed no line on stderr within {}",
            seconds(START_WAIT)
        ))),
    }
}

/// A connection to a server this check started itself.
fn lab_probe(lab: &Lab<'_>, addr: SocketAddr) -> Result<Probe, Failure> {
    let mut kept = Vec::new();
    Probe::connect(
        &[addr],
        lab.wait(),
        format!("a connection to {addr}"),
        Default::default(),
        &mut kept,
    )
}

/// The operator's log never stops or slows the server: with `--verbose`
/// (a log line for every line in and out) and its stderr a pipe nobody
/// reads, or closed, it keeps serving every client.
pub fn log_never_blocks(lab: &mut Lab<'_>) -> Result<(), Failure> {
    const PINGS: usize = 20_000;
    let rule = "the log never stops or slows the server, even when stderr is full or closed";
    let (alice, bob) = (lab.name("alice"), lab.name("bob"));
    let mut a = lab.login(&alice)?;
    a.send_bytes("PING\n".repeat(PINGS).as_bytes())?;
    for _ in 0..PINGS {
        a.expect("OK PING").map_err(|f| f.because(rule))?;
    }
    for i in 0..5 {
        let mut c = lab
            .login(&lab.name(&format!("guest{i}x")))
            .map_err(|f| f.because(rule))?;
        c.sync().map_err(|f| f.because(rule))?;
        c.quit().map_err(|f| f.because(rule))?;
    }
    let mut b = lab.login(&bob).map_err(|f| f.because(rule))?;
    super::deliver(&mut a, &alice, &mut b, &bob, "still there?").map_err(|f| f.because(rule))
}
