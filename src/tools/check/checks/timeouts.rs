//! The login and idle timeouts, each on its own clock, and the end of a
//! connection after `ERR TIMEOUT` (contract: "Connections", "Guarantees").
//!
//! Each check starts the server with a login timeout and an idle timeout
//! that differ (one of them often `0`, never), so that a server which has
//! only one clock, or mixes them up, fails. A timeout must fire neither
//! before 0.9 of its value nor later than a fifth of it (at least half a
//! second) past it. Lines flow while the login clock runs, so that only a
//! login clock that ignores lines can fire in time.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use super::super::Lab;
use super::super::probe::{self, Failure, Probe, seconds};
use super::super::settings::{ServerFlags, TimeLimit};
use super::connections::send_until_closed;
use super::in_parallel;

/// A login timeout of 2 s, an idle timeout of 600 s (the default).
pub const LOGIN: ServerFlags = ServerFlags {
    max_connections: Some(2),
    login_timeout: Some(2),
    ..ServerFlags::DEFAULTS
};

/// No login timeout.
pub const LOGIN_NEVER: ServerFlags = ServerFlags {
    login_timeout: Some(0),
    ..ServerFlags::DEFAULTS
};

/// An idle timeout of 2 s, the login timeout 60 s (the default).
pub const IDLE: ServerFlags = ServerFlags {
    idle_timeout: Some(2),
    ..ServerFlags::DEFAULTS
};

/// No idle timeout.
pub const IDLE_NEVER: ServerFlags = ServerFlags {
    idle_timeout: Some(0),
    ..ServerFlags::DEFAULTS
};

/// A login timeout of 1 s and a write timeout of 1 s: a quick end.
pub const LOGIN_SHORT: ServerFlags = ServerFlags {
    login_timeout: Some(1),
    write_timeout: Some(1),
    ..ServerFlags::DEFAULTS
};

/// How often lines are sent while a clock runs.
const PACE: Duration = Duration::from_millis(250);

/// How long "never" is watched: longer than the timeouts checked here.
const NEVER_WATCHED: Duration = Duration::from_millis(2500);

/// A timeout the server must have (`Needs` makes sure it is known).
fn limit(known: Option<TimeLimit>) -> Duration {
    known.and_then(TimeLimit::duration).unwrap_or_default()
}

/// How late a timeout of `timeout` may fire.
fn grace(timeout: Duration) -> Duration {
    (timeout / 5).max(Duration::from_millis(500))
}

/// Requires `line`, read `elapsed` after the clock started, to be
/// `ERR TIMEOUT` (ending with CRLF, as every line), neither too early
/// nor too late; then the close.
fn timed_out(
    c: &mut Probe,
    line: &str,
    elapsed: Duration,
    timeout: Duration,
    rule: &str,
) -> Result<(), Failure> {
    let expected = format!("\"ERR TIMEOUT <reason>\" {} after", seconds(timeout));
    if !probe::is_error(line, "TIMEOUT") {
        return Err(c.mismatch(&expected, line).because(rule));
    }
    if elapsed < timeout.mul_f64(0.9) || elapsed > timeout + grace(timeout) {
        return Err(c
            .mismatch(&expected, &format!("{line} (after {})", seconds(elapsed)))
            .because(rule));
    }
    c.expect_closed()
}

/// Reads nothing but `ERR TIMEOUT`, `timeout` after `started`.
fn silent_until_timeout(
    c: &mut Probe,
    started: Instant,
    timeout: Duration,
    rule: &str,
) -> Result<(), Failure> {
    let within = (started + timeout + grace(timeout)).saturating_duration_since(Instant::now());
    match c.poll_line(within)? {
        Some(line) => timed_out(c, &line, started.elapsed(), timeout, rule),
        None => Err(c
            .mismatch(
                &format!("\"ERR TIMEOUT <reason>\" {} after", seconds(timeout)),
                &format!("nothing after {}", seconds(started.elapsed())),
            )
            .because(rule)),
    }
}

/// Sends the lines of `script` in turn, one every [`PACE`], each with its
/// expected reply (`None`: no reply), until `ERR TIMEOUT` comes, which
/// must come `timeout` after `started`.
fn talk_until_timeout(
    c: &mut Probe,
    script: &[(String, Option<&str>)],
    started: Instant,
    timeout: Duration,
    rule: &str,
) -> Result<(), Failure> {
    for (line, reply) in script.iter().cycle() {
        if started.elapsed() > timeout + grace(timeout) {
            return Err(c
                .mismatch(
                    &format!(
                        "\"ERR TIMEOUT <reason>\" {} after the accept, lines flowing meanwhile",
                        seconds(timeout)
                    ),
                    &format!("nothing after {}", seconds(started.elapsed())),
                )
                .because(rule));
        }
        c.send(line)?;
        let next = match reply {
            Some(_) => c.line("a reply").map(Some)?,
            None => c.poll_line(PACE)?,
        };
        match next {
            Some(got) if probe::is_error(&got, "TIMEOUT") => {
                return timed_out(c, &got, started.elapsed(), timeout, rule);
            }
            Some(got) if reply.is_some_and(|reply| got.starts_with(reply)) => {}
            Some(got) => return Err(c.mismatch(&format!("{reply:?}"), &got)),
            None => {}
        }
        thread::sleep(PACE); // pacing the lines
    }
    Ok(())
}

/// The PING script: a line that keeps the idle clock going, not the login one.
fn pings() -> Vec<(String, Option<&'static str>)> {
    vec![("PING".to_owned(), Some("OK PING"))]
}

/// Login timeout: a connection that has not completed `CONNECT` that long
/// after it was accepted gets `ERR TIMEOUT` and is closed, even with lines
/// flowing meanwhile (they restart the idle clock, not this one); and its
/// slot is freed.
pub fn login_timeout(lab: &mut Lab<'_>) -> Result<(), Failure> {
    let rule = "the login timeout runs from the accept until a successful CONNECT";
    let timeout = limit(lab.settings().login_timeout);
    let started = Instant::now();
    let talker = lab.connect("connection 1")?;
    let silent = lab.connect("connection 2")?;
    in_parallel(
        vec![(talker, true), (silent, false)],
        |(mut c, talks)| match talks {
            true => talk_until_timeout(&mut c, &pings(), started, timeout, rule),
            false => silent_until_timeout(&mut c, started, timeout, rule),
        },
    )?;
    lab.connect("connection 3")
        .map(drop)
        .map_err(|f| f.because("a slot is freed when its connection times out"))
}

/// Login timeout: a refused `CONNECT` (BAD_NAME, SYNTAX, NAME_TAKEN) does
/// not stop the login clock.
pub fn login_timeout_despite_refused_connects(lab: &mut Lab<'_>) -> Result<(), Failure> {
    let rule = "only a successful CONNECT stops the login timeout";
    let timeout = limit(lab.settings().login_timeout);
    let user = lab.name("user");
    let started = Instant::now();
    let mut c = lab.connect("connection 2")?;
    let _user = lab.login(&user)?;
    let script = [
        ("CONNECT b*b".to_owned(), Some("ERR BAD_NAME")),
        ("CONNECT".to_owned(), Some("ERR SYNTAX")),
        (format!("CONNECT {user}"), Some("ERR NAME_TAKEN")),
        (format!("CONNECT {}", "x".repeat(17)), Some("ERR BAD_NAME")),
    ];
    talk_until_timeout(&mut c, &script, started, timeout, rule)
}

/// Login timeout: a logged-in client is never cut by it, even one that
/// logged in late, and whatever it sends.
pub fn login_timeout_spares_logged_in(lab: &mut Lab<'_>) -> Result<(), Failure> {
    let rule = "the login timeout stops at a successful CONNECT";
    let timeout = limit(lab.settings().login_timeout);
    let name = lab.name("late");
    let started = Instant::now();
    let mut c = lab.connect("connection 1")?;
    let mut logged_in = false;
    while started.elapsed() < timeout + Duration::from_secs(1) {
        if !logged_in && started.elapsed() > timeout / 4 {
            c.ask(&format!("CONNECT {name}"), &format!("OK CONNECT {name}"))?;
            logged_in = true;
        }
        c.ask("PING", "OK PING").map_err(|f| f.because(rule))?;
        thread::sleep(PACE); // pacing the lines
    }
    Ok(())
}

/// `--login-timeout 0` means never: a connection that does not log in
/// and sends nothing stays open.
pub fn login_timeout_never(lab: &mut Lab<'_>) -> Result<(), Failure> {
    let mut c = lab.connect("connection 1")?;
    stays_open(&mut c, "--login-timeout 0 means no login timeout")
}

/// `--idle-timeout 0` means never: a logged-in client that sends nothing
/// stays connected.
pub fn idle_timeout_never(lab: &mut Lab<'_>) -> Result<(), Failure> {
    let mut c = lab.login(&lab.name("quiet"))?;
    stays_open(&mut c, "--idle-timeout 0 means no idle timeout")
}

/// Nothing comes for [`NEVER_WATCHED`], then PING still works.
fn stays_open(c: &mut Probe, rule: &str) -> Result<(), Failure> {
    if let Some(line) = c.poll_line(NEVER_WATCHED)? {
        return Err(c
            .mismatch(&format!("nothing for {}", seconds(NEVER_WATCHED)), &line)
            .because(rule));
    }
    c.sync().map_err(|f| f.because(rule))
}

/// Idle timeout: a connection, logged in or not, that sends no complete
/// line for that long gets `ERR TIMEOUT` and is closed. (The connection
/// that does not log in is left out when the login timeout could close it
/// first.)
pub fn idle_timeout(lab: &mut Lab<'_>) -> Result<(), Failure> {
    let rule = "the idle timeout closes any connection silent that long";
    let timeout = limit(lab.settings().idle_timeout);
    let mut probes = Vec::new();
    let login_first = match lab.settings().login_timeout {
        Some(TimeLimit::After(login)) => login < timeout + grace(timeout) * 2,
        _ => false,
    };
    if !login_first {
        let since = Instant::now();
        probes.push((lab.connect("connection 1")?, since));
    }
    let user = lab.login(&lab.name("idler"))?;
    probes.push((user, Instant::now()));
    in_parallel(probes, |(mut c, since)| {
        silent_until_timeout(&mut c, since, timeout, rule)
    })
}

/// Idle timeout: the clock restarts at each complete line: a PING, an
/// empty line, a line of spaces, a refused line, an over-long line at its
/// LF. Each is sent 0.6 of the timeout after the login, so the timeout
/// must come 0.6 of it later than for a silent connection.
pub fn idle_restarted_by_complete_lines(lab: &mut Lab<'_>) -> Result<(), Failure> {
    let timeout = limit(lab.settings().idle_timeout);
    let mut over_long = "x".repeat(600);
    over_long.push('\n');
    let kinds: [(&str, String, Option<&str>); 5] = [
        ("a PING", "PING\n".to_owned(), Some("OK PING")),
        ("an empty line", "\n".to_owned(), None),
        ("a line of spaces", "   \n".to_owned(), None),
        (
            "a refused line",
            "FROB\n".to_owned(),
            Some("ERR UNKNOWN_COMMAND"),
        ),
        ("an over-long line", over_long, Some("ERR TOO_LONG")),
    ];
    let mut probes = Vec::new();
    for (i, (kind, line, reply)) in kinds.into_iter().enumerate() {
        let c = lab.login(&lab.name(&format!("line{i}x")))?;
        probes.push((c, Instant::now(), kind, line, reply));
    }
    in_parallel(probes, |(mut c, since, kind, line, reply)| {
        let rule = format!("every complete line restarts the idle clock, {kind} too");
        thread::sleep((since + timeout.mul_f64(0.6)).saturating_duration_since(Instant::now())); // pacing: the line goes at 0.6 of the timeout
        c.send_bytes(line.as_bytes())?;
        let sent = Instant::now();
        if let Some(reply) = reply {
            let got = c.line(reply)?;
            if !got.starts_with(reply) {
                return Err(c.mismatch(reply, &got).because(&rule));
            }
        }
        silent_until_timeout(&mut c, sent, timeout, &rule)
    })
}

/// Idle timeout: bytes that do not complete a line do not restart the
/// clock: a client dribbling a byte at a time is closed on time.
pub fn idle_not_restarted_by_bytes(lab: &mut Lab<'_>) -> Result<(), Failure> {
    let rule = "only complete lines restart the idle clock, not bytes";
    let timeout = limit(lab.settings().idle_timeout);
    let mut c = lab.login(&lab.name("dribbler"))?;
    let started = Instant::now();
    while started.elapsed() < timeout + grace(timeout) {
        c.send_bytes(b"P")?;
        if let Some(line) = c.poll_line(timeout / 8)? {
            return timed_out(&mut c, &line, started.elapsed(), timeout, rule);
        }
    }
    Err(c
        .mismatch(
            &format!(
                "\"ERR TIMEOUT <reason>\" {} after the last line",
                seconds(timeout)
            ),
            &format!(
                "nothing after {} of single bytes",
                seconds(started.elapsed())
            ),
        )
        .because(rule))
}

/// After `ERR TIMEOUT`, every line owed to the client reaches it before
/// the end of stream (here the replies to the PINGs it kept sending), then
/// a clean end (no reset), whatever the client sends afterwards; and the
/// connection ends within the write timeout even if the client keeps
/// sending.
pub fn timeout_delivers_owed_lines(lab: &mut Lab<'_>) -> Result<(), Failure> {
    let rule = "after ERR TIMEOUT, every owed line then a clean end of stream, within the write \
                timeout even if the client keeps sending";
    let timeout = limit(lab.settings().login_timeout);
    let write_timeout = lab.settings().write_timeout.unwrap_or(lab.wait());
    let started = Instant::now();
    let mut c = lab.connect("connection 1")?;
    let mut writer = c.writer()?;
    let seen = AtomicBool::new(false);
    let bound = started + timeout + grace(timeout) + write_timeout + Duration::from_secs(2);
    let (read, closed) = thread::scope(|scope| {
        // PING as fast as the server takes them from shortly before the
        // timeout until it is seen (or should have been): the server then
        // has input it has not read yet, which a close without lingering
        // turns into a reset.
        let burst = || {
            let now = Instant::now();
            now + Duration::from_millis(100) > started + timeout
                && now < started + timeout + grace(timeout)
                && !seen.load(Ordering::Acquire)
        };
        let writing = scope.spawn(move || send_until_closed(&mut writer, bound, burst));
        let read = read_until_timeout(&mut c, started, timeout, write_timeout, &seen);
        seen.store(true, Ordering::Release);
        (read, writing.join().unwrap_or(None))
    });
    // A reset seen by the writer first leaves the reader a plain end.
    if let Some((_, io::ErrorKind::ConnectionReset)) = closed {
        return Err(Failure::new(
            "after ERR TIMEOUT the connection was reset (RST), not ended cleanly (FIN): a reset \
             can destroy lines on their way (the server must read what the client still sends, \
             for up to the write timeout, rather than close at once)",
        )
        .because(rule));
    }
    let timed_out_at = read.map_err(|f| f.because(rule))?;
    let after = closed.map(|(closed, _)| closed.saturating_duration_since(timed_out_at));
    match after {
        Some(after) if after <= write_timeout + Duration::from_millis(700) => Ok(()),
        _ => Err(Failure::new(format!(
            "after ERR TIMEOUT the client kept sending PING; expected the connection to end \
             within the write timeout ({}); {}",
            seconds(write_timeout),
            match after {
                Some(after) => format!("it ended {} later", seconds(after)),
                None => "it was still open".to_owned(),
            }
        ))
        .because(rule)),
    }
}

/// Reads `OK PING` lines until `ERR TIMEOUT`, then requires a clean end;
/// returns when the timeout was read. (When it fires is the business of
/// `login-timeout`: here the replies to the burst of PINGs can pile up
/// unread for a while, so the bound is loose.)
fn read_until_timeout(
    c: &mut Probe,
    started: Instant,
    timeout: Duration,
    write_timeout: Duration,
    seen: &AtomicBool,
) -> Result<Instant, Failure> {
    let late = timeout + grace(timeout) + Duration::from_secs(2);
    loop {
        let line = c.line("\"OK PING\" until \"ERR TIMEOUT <reason>\"")?;
        if probe::is_error(&line, "TIMEOUT") {
            let at = Instant::now();
            seen.store(true, Ordering::Release);
            c.expect_clean_end(write_timeout + Duration::from_millis(700))?;
            return Ok(at);
        }
        if line != "OK PING" {
            return Err(c.mismatch("\"OK PING\" or \"ERR TIMEOUT <reason>\"", &line));
        }
        if started.elapsed() > late {
            return Err(c.mismatch(
                &format!(
                    "\"ERR TIMEOUT <reason>\" {} after the accept",
                    seconds(timeout)
                ),
                &format!("only OK PING after {}", seconds(started.elapsed())),
            ));
        }
    }
}
