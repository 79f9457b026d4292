//! The login and idle timeouts, each on its own clock, and the end of a
//! connection after `ERR TIMEOUT` (contract: "Connections", "Guarantees").
//!
//! Each check starts the server with a login timeout and an idle timeout
//! that differ (one of them often `0`, never), so that a server which has
//! only one clock, or mixes them up, fails. A timeout must fire neither
//! before 0.9 of its value nor later than a fifth of it (at least a
//! second) past it. Lines flow while the login clock runs, so that only a
//! login clock that ignores lines can fire in time.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use super::super::Lab;
use super::super::causes::Cause;
use super::super::probe::{self, Failure, Probe};
use super::super::rules;
use super::super::settings::{ServerFlags, TimeLimit};
use super::connections::{reset_after_last_line, send_until_closed};
use super::in_parallel;
use crate::lang::{Lang, tr};

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

/// How late a timeout of `timeout` may fire: a fifth of it, at least a
/// second (a busy machine may wake a correct server's timer, or the
/// checker, a good part of a second late; a clock that does not run at
/// all is late by far more).
fn grace(timeout: Duration) -> Duration {
    (timeout / 5).max(Duration::from_secs(1))
}

/// `"ERR TIMEOUT <reason>" 2 s after` (`what`: after what).
fn timeout_line(lang: Lang, timeout: Duration, what: &str) -> String {
    let timeout = lang.seconds(timeout);
    tr!(
        lang,
        "\"ERR TIMEOUT <reason>\" {timeout} after {what}",
        "\"ERR TIMEOUT <raison>\" {timeout} après {what}"
    )
}

/// The failure of a timeout that did not come by its bound.
fn never_came(c: &Probe, timeout: Duration, what: &str) -> Failure {
    let lang = c.lang;
    let expected = timeout_line(lang, timeout, what);
    let bound = lang.seconds(timeout + grace(timeout));
    let label = &c.label;
    Failure::new(tr!(
        lang,
        "expected {label} to get {expected}; nothing came within {bound}",
        "{label} devait recevoir {expected} ; rien n'est venu en {bound}"
    ))
}

/// Requires `line`, read `elapsed` after the clock started, to be
/// `ERR TIMEOUT` (ending with CRLF, as every line), neither too early
/// nor too late; then the close.
fn timed_out(
    c: &mut Probe,
    line: &str,
    elapsed: Duration,
    timeout: Duration,
    what: &str,
) -> Result<(), Failure> {
    let lang = c.lang;
    let expected = timeout_line(lang, timeout, what);
    if !probe::is_error(line, "TIMEOUT") {
        return Err(c.mismatch(&expected, line));
    }
    let (early, late) = (timeout.mul_f64(0.9), timeout + grace(timeout));
    if elapsed < early || elapsed > late {
        let when = match elapsed < early {
            true => {
                let early = lang.seconds(early);
                tr!(lang, "before {early}", "avant {early}")
            }
            false => {
                let late = lang.seconds(late);
                tr!(lang, "after {late}", "après {late}")
            }
        };
        let label = &c.label;
        return Err(Failure::new(tr!(
            lang,
            "expected {label} to get {expected}; it came {when}",
            "{label} devait recevoir {expected} ; elle est venue {when}"
        )));
    }
    c.expect_closed()
}

/// Reads nothing but `ERR TIMEOUT`, `timeout` after `started`.
fn silent_until_timeout(
    c: &mut Probe,
    started: Instant,
    timeout: Duration,
    what: &str,
) -> Result<(), Failure> {
    let within = (started + timeout + grace(timeout)).saturating_duration_since(Instant::now());
    match c.poll_line(within)? {
        Some(line) => timed_out(c, &line, started.elapsed(), timeout, what),
        None => Err(never_came(c, timeout, what)),
    }
}

/// Sends the lines of `script` in turn, one every [`PACE`], each with its
/// expected reply (`None`: no reply), until `ERR TIMEOUT` comes, which
/// must come `timeout` after `started` (the accept).
fn talk_until_timeout(
    c: &mut Probe,
    script: &[(String, Option<&str>)],
    started: Instant,
    timeout: Duration,
) -> Result<(), Failure> {
    let what = c.lang.pick(
        "the accept, lines flowing meanwhile",
        "l'acceptation, des lignes passant entre-temps",
    );
    for (line, reply) in script.iter().cycle() {
        if started.elapsed() > timeout + grace(timeout) {
            return Err(never_came(c, timeout, what).likely(Cause::OneClock));
        }
        c.send(line)?;
        let next = match reply {
            Some(reply) => c.line(&format!("\"{reply} …\"")).map(Some)?,
            None => c.poll_line(PACE)?,
        };
        match next {
            Some(got) if probe::is_error(&got, "TIMEOUT") => {
                return timed_out(c, &got, started.elapsed(), timeout, what);
            }
            Some(got) if reply.is_some_and(|reply| got.starts_with(reply)) => {}
            Some(got) => {
                let expected = match reply {
                    Some(reply) => format!("\"{reply} …\""),
                    None => c.lang.pick("no reply", "aucune réponse").to_owned(),
                };
                return Err(c.mismatch(&expected, &got));
            }
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
    let timeout = limit(lab.settings().login_timeout);
    let accept = lab.lang().pick("the accept", "l'acceptation");
    let started = Instant::now();
    let talker = lab.connect(&lab.nth(1))?;
    let silent = lab.connect(&lab.nth(2))?;
    in_parallel(
        vec![(talker, true), (silent, false)],
        |(mut c, talks)| match talks {
            true => talk_until_timeout(&mut c, &pings(), started, timeout),
            false => silent_until_timeout(&mut c, started, timeout, accept),
        },
    )?;
    lab.connect(&lab.nth(3))
        .map(drop)
        .map_err(|f| f.because(&rules::SLOTS))
}

/// Login timeout: a refused `CONNECT` (BAD_NAME, SYNTAX, NAME_TAKEN) does
/// not stop the login clock.
pub fn login_timeout_despite_refused_connects(lab: &mut Lab<'_>) -> Result<(), Failure> {
    let timeout = limit(lab.settings().login_timeout);
    let user = lab.name("user");
    let started = Instant::now();
    let mut c = lab.connect(&lab.nth(2))?;
    let _user = lab.login(&user)?;
    let script = [
        ("CONNECT b*b".to_owned(), Some("ERR BAD_NAME")),
        ("CONNECT".to_owned(), Some("ERR SYNTAX")),
        (format!("CONNECT {user}"), Some("ERR NAME_TAKEN")),
        (format!("CONNECT {}", "x".repeat(17)), Some("ERR BAD_NAME")),
    ];
    talk_until_timeout(&mut c, &script, started, timeout)
}

/// Login timeout: a logged-in client is never cut by it, even one that
/// logged in late, and whatever it sends.
pub fn login_timeout_spares_logged_in(lab: &mut Lab<'_>) -> Result<(), Failure> {
    let timeout = limit(lab.settings().login_timeout);
    let name = lab.name("late");
    let started = Instant::now();
    let mut c = lab.connect(&lab.nth(1))?;
    let mut logged_in = false;
    while started.elapsed() < timeout + Duration::from_secs(1) {
        if !logged_in && started.elapsed() > timeout / 4 {
            c.ask(&format!("CONNECT {name}"), &format!("OK CONNECT {name}"))?;
            logged_in = true;
        }
        c.ask("PING", "OK PING")?;
        thread::sleep(PACE); // pacing the lines
    }
    Ok(())
}

/// `--login-timeout 0` means never: a connection that does not log in
/// and sends nothing stays open.
pub fn login_timeout_never(lab: &mut Lab<'_>) -> Result<(), Failure> {
    let mut c = lab.connect(&lab.nth(1))?;
    stays_open(&mut c)
}

/// `--idle-timeout 0` means never: a logged-in client that sends nothing
/// stays connected.
pub fn idle_timeout_never(lab: &mut Lab<'_>) -> Result<(), Failure> {
    let mut c = lab.login(&lab.name("quiet"))?;
    stays_open(&mut c)
}

/// Nothing comes for [`NEVER_WATCHED`], then PING still works.
fn stays_open(c: &mut Probe) -> Result<(), Failure> {
    if let Some(line) = c.poll_line(NEVER_WATCHED)? {
        let watched = c.lang.seconds(NEVER_WATCHED);
        let expected = tr!(c.lang, "nothing for {watched}", "rien pendant {watched}");
        return Err(c.mismatch(&expected, &line));
    }
    c.sync()
}

/// Idle timeout: a connection, logged in or not, that sends no complete
/// line for that long gets `ERR TIMEOUT` and is closed. (The connection
/// that does not log in is left out when the login timeout could close it
/// first.)
pub fn idle_timeout(lab: &mut Lab<'_>) -> Result<(), Failure> {
    let timeout = limit(lab.settings().idle_timeout);
    let what = lab.lang().pick("its last line", "sa dernière ligne");
    let mut probes = Vec::new();
    let login_first = match lab.settings().login_timeout {
        Some(TimeLimit::After(login)) => login < timeout + grace(timeout) * 2,
        _ => false,
    };
    if !login_first {
        let since = Instant::now();
        probes.push((lab.connect(&lab.nth(1))?, since));
    }
    // Each clock is read before the line that starts the server's (the
    // CONNECT), so that a checker slowed down cannot see a timeout early.
    let since = Instant::now();
    let user = lab.login(&lab.name("idler"))?;
    probes.push((user, since));
    in_parallel(probes, |(mut c, since)| {
        silent_until_timeout(&mut c, since, timeout, what)
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
    let lang = lab.lang();
    let kinds: [(&str, String, Option<&str>); 5] = [
        ("PING", "PING\n".to_owned(), Some("OK PING")),
        (
            lang.pick("an empty line", "une ligne vide"),
            "\n".to_owned(),
            None,
        ),
        (
            lang.pick("a line of spaces", "une ligne d'espaces"),
            "   \n".to_owned(),
            None,
        ),
        (
            lang.pick("a refused line", "une ligne refusée"),
            "FROB\n".to_owned(),
            Some("ERR UNKNOWN_COMMAND"),
        ),
        (
            lang.pick("an over-long line", "une ligne trop longue"),
            over_long,
            Some("ERR TOO_LONG"),
        ),
    ];
    let mut probes = Vec::new();
    for (i, (kind, line, reply)) in kinds.into_iter().enumerate() {
        let since = Instant::now();
        let c = lab.login(&lab.name(&format!("line{i}x")))?;
        probes.push((c, since, kind, line, reply));
    }
    let lang = lab.lang();
    in_parallel(probes, |(mut c, since, kind, line, reply)| {
        let what = tr!(lang, "{kind}, sent then", "{kind}, envoyée alors");
        thread::sleep((since + timeout.mul_f64(0.6)).saturating_duration_since(Instant::now())); // pacing: the line goes at 0.6 of the timeout
        let sent = Instant::now();
        c.send_bytes(line.as_bytes())?;
        if let Some(reply) = reply {
            let got = c.line(reply)?;
            if !got.starts_with(reply) {
                return Err(c.mismatch(reply, &got));
            }
        }
        silent_until_timeout(&mut c, sent, timeout, &what)
    })
}

/// Idle timeout: bytes that do not complete a line do not restart the
/// clock: a client dribbling a byte at a time is closed on time.
pub fn idle_not_restarted_by_bytes(lab: &mut Lab<'_>) -> Result<(), Failure> {
    let timeout = limit(lab.settings().idle_timeout);
    let what = lab.lang().pick(
        "its last line, single bytes following",
        "sa dernière ligne, suivie d'octets un par un",
    );
    let started = Instant::now();
    let mut c = lab.login(&lab.name("dribbler"))?;
    while started.elapsed() < timeout + grace(timeout) {
        c.send_bytes(b"P")?;
        if let Some(line) = c.poll_line(timeout / 8)? {
            return timed_out(&mut c, &line, started.elapsed(), timeout, what);
        }
    }
    Err(never_came(&c, timeout, what))
}

/// After `ERR TIMEOUT`, every line owed to the client reaches it before
/// the end of stream (here the replies to the PINGs it kept sending), then
/// a clean end (no reset), whatever the client sends afterwards; and the
/// connection ends within the write timeout even if the client keeps
/// sending.
pub fn timeout_delivers_owed_lines(lab: &mut Lab<'_>) -> Result<(), Failure> {
    let lang = lab.lang();
    let timeout = limit(lab.settings().login_timeout);
    let write_timeout = lab.settings().write_timeout.unwrap_or(lab.wait());
    let started = Instant::now();
    let mut c = lab.connect(&lab.nth(1))?;
    let mut writer = c.writer()?;
    let seen = AtomicBool::new(false);
    let bound = started + timeout + grace(timeout) + write_timeout + Duration::from_secs(2);
    let (read, closed) = thread::scope(|scope| {
        // Lines as fast as the server takes them (blank ones, and a PING
        // now and then) from shortly before the timeout until it is seen
        // (or should have been): the server then has input it has not read
        // yet, which a close without lingering turns into a reset.
        let burst = || {
            let now = Instant::now();
            now + Duration::from_millis(100) > started + timeout
                && now < started + timeout + Duration::from_millis(200)
                && !seen.load(Ordering::Acquire)
        };
        let writing = scope.spawn(move || send_until_closed(&mut writer, bound, burst));
        let read = read_until_timeout(&mut c, started, timeout, write_timeout, &seen);
        seen.store(true, Ordering::Release);
        (read, writing.join().unwrap_or(None))
    });
    // A reset, whichever side sees it first, is worded one way.
    let reset = matches!(closed, Some((_, io::ErrorKind::ConnectionReset)))
        || read.as_ref().is_err_and(|f| f.reset);
    if reset {
        return Err(reset_after_last_line(lang));
    }
    let timed_out_at = read?;
    let after = closed.map(|(closed, _)| closed.saturating_duration_since(timed_out_at));
    match after {
        Some(after) if after <= write_timeout + Duration::from_millis(700) => Ok(()),
        _ => {
            let timeout = lang.seconds(write_timeout);
            let expected = tr!(
                lang,
                "after ERR TIMEOUT the client kept sending PING; expected the connection to end \
                 within the write timeout ({timeout})",
                "après ERR TIMEOUT le client a continué d'envoyer PING ; la connexion devait se \
                 terminer dans le délai d'écriture ({timeout})"
            );
            Err(Failure::new(match after {
                Some(_) => tr!(
                    lang,
                    "{expected}; it ended later",
                    "{expected} ; elle s'est terminée plus tard"
                ),
                None => tr!(
                    lang,
                    "{expected}; it was still open",
                    "{expected} ; elle était encore ouverte"
                ),
            }))
        }
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
    let lang = c.lang;
    let expected = tr!(
        lang,
        "\"OK PING\" until \"ERR TIMEOUT <reason>\"",
        "\"OK PING\" jusqu'à \"ERR TIMEOUT <raison>\""
    );
    loop {
        let line = c.line(&expected)?;
        if probe::is_error(&line, "TIMEOUT") {
            let at = Instant::now();
            seen.store(true, Ordering::Release);
            c.expect_clean_end(write_timeout + Duration::from_millis(700))?;
            return Ok(at);
        }
        if line != "OK PING" {
            return Err(c.mismatch(&expected, &line));
        }
        if started.elapsed() > late {
            let late = lang.seconds(late);
            let label = &c.label;
            let expected = timeout_line(lang, timeout, lang.pick("the accept", "l'acceptation"));
            return Err(Failure::new(tr!(
                lang,
                "expected {label} to get {expected}; only OK PING came for {late}",
                "{label} devait recevoir {expected} ; seuls des OK PING sont venus pendant {late}"
            )));
        }
    }
}

/// Idle timeout: only the lines a client sends restart its clock, not
/// those the server writes to it. A user who only receives (a RECEIVE a
/// quarter of a second from someone who keeps talking) is closed on time;
/// the talker, whose own lines restart its clock, stays.
pub fn idle_not_restarted_by_receive(lab: &mut Lab<'_>) -> Result<(), Failure> {
    let timeout = limit(lab.settings().idle_timeout);
    let what = lab.lang().pick(
        "its last line, RECEIVE lines coming meanwhile",
        "sa dernière ligne, des RECEIVE arrivant entre-temps",
    );
    let (listener, talker) = (lab.name("listener"), lab.name("talker"));
    let started = Instant::now();
    let mut l = lab.login(&listener)?;
    let mut t = lab.login(&talker)?;
    for n in 0.. {
        if started.elapsed() > timeout + grace(timeout) {
            return Err(never_came(&l, timeout, what));
        }
        t.send(&format!("SEND {listener} news {n}"))?;
        let expected = format!("\"OK SEND {listener}\" / \"ERR NO_SUCH_USER …\"");
        let reply = t.line(&expected)?;
        if reply == format!("OK SEND {listener}") {
            l.expect(&format!("RECEIVE {talker} news {n}"))?;
        } else if probe::is_error(&reply, "NO_SUCH_USER") {
            let line = l.line(&timeout_line(l.lang, timeout, what))?;
            timed_out(&mut l, &line, started.elapsed(), timeout, what)?;
            return t.sync();
        } else {
            return Err(t.mismatch(&expected, &reply));
        }
        thread::sleep(PACE); // pacing the messages
    }
    Ok(())
}
