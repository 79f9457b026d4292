//! The connection limit, the slots, and the end of a connection after
//! `QUIT` (contract: "Connections", "Guarantees").

use std::io::{self, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use crate::lang::Lang;

use super::super::Lab;
use super::super::causes::Cause;
use super::super::probe::{self, Failure, Probe};
use super::super::rules;
use super::super::settings::ServerFlags;
use super::deliver;
use crate::lang::tr;

/// A small connection limit: a server that ignores `--max-connections`
/// lets a third client in.
pub const FEW: ServerFlags = ServerFlags {
    max_connections: Some(2),
    ..ServerFlags::DEFAULTS
};

/// The smallest write timeout, which bounds the end of a connection.
pub const ENDING: ServerFlags = ServerFlags {
    write_timeout: Some(1),
    ..ServerFlags::DEFAULTS
};

/// Timeouts as long as the command line accepts: 18446744073709551615 s.
pub const HUGE: ServerFlags = ServerFlags {
    login_timeout: Some(u64::MAX),
    idle_timeout: Some(u64::MAX),
    write_timeout: Some(u64::MAX),
    ..ServerFlags::DEFAULTS
};

/// How much later than the write timeout a connection may end.
const END_GRACE: Duration = Duration::from_millis(700);

/// How soon a connection refused with `ERR FULL` must be closed: "at once".
const FULL_CLOSE: Duration = Duration::from_secs(1);

/// Opens as many connections as the server allows (some logged in, some
/// not, since every one counts).
fn fill(lab: &mut Lab<'_>) -> Result<Vec<Probe>, Failure> {
    (0..lab.settings().max_connections)
        .map(|i| match i % 2 {
            0 => lab.login(&lab.name(&format!("full{i}x"))),
            _ => lab.connect(&lab.nth(i + 1)),
        })
        .collect()
}

/// The label of the connection past the limit.
fn extra(lab: &Lab<'_>) -> String {
    lab.nth(lab.settings().max_connections + 1)
}

/// With `--max-connections` connections open (logged in or not), the next
/// gets `ERR FULL` (with any reason) and is closed at once: within a
/// second, not when the server gets round to it. Without the flag, the
/// limit is 5.
pub fn connection_limit(lab: &mut Lab<'_>) -> Result<(), Failure> {
    let _open = fill(lab)?;
    let label = extra(lab);
    let mut extra = lab.connect_raw(&label)?;
    let expected = tr!(
        lab.lang(),
        "\"ERR FULL <reason>\" ending with CRLF",
        "\"ERR FULL <raison>\" terminée par CRLF"
    );
    let line = extra.line_crlf(&expected)?;
    if !probe::is_error(&line, "FULL") {
        return Err(extra.mismatch(&expected, &line).because(&rules::WELCOME));
    }
    extra.expect_clean_end(FULL_CLOSE)
}

/// A slot is freed as soon as the server sees its connection end: after
/// an abrupt close (retried for at most the wait).
pub fn slot_reused_after_close(lab: &mut Lab<'_>) -> Result<(), Failure> {
    let mut open = fill(lab)?;
    if let Some(first) = open.pop() {
        first.hang_up();
    }
    let label = extra(lab);
    lab.connect(&label).map(drop)
}

/// A slot is freed as soon as the server sees its connection end: after a
/// reset (retried for at most the wait).
pub fn slot_reused_after_reset(lab: &mut Lab<'_>) -> Result<(), Failure> {
    let mut open = fill(lab)?;
    if let Some(first) = open.pop() {
        lab.reset(first)?;
    }
    let label = extra(lab);
    lab.connect(&label).map(drop)
}

/// After `QUIT`, the slot and the name are free once the server has
/// handled it: a client that has read `OK QUIT` can reconnect, under the
/// same name, at once; even if the one that left still sends lines and has
/// not closed its side. And for a whole class leaving at the bell: 32
/// leavers in a row, each still connected, on a server of two slots (a
/// server that frees them a moment after writing `OK QUIT` loses that
/// race some of the time: 32 rounds make it lose on nearly every run).
pub fn quit_frees_at_once(lab: &mut Lab<'_>) -> Result<(), Failure> {
    const LEAVERS: usize = 32;
    const QUIT: &[u8] = b"QUIT\nPING\nFROB\n";
    let lang = lab.lang();
    let mut open = fill(lab)?;
    let name = lab.name("full0x"); // the first connection fill() logs in
    // One label for every newcomer, and the failure in words of its own:
    // the same whichever round loses the race.
    let label = extra(lab);
    let late = |f: Failure, newcomer_did: &str| {
        let f = f.noting(lang.pick(
            "right after a client read OK QUIT",
            "juste après qu'un client a lu OK QUIT",
        ));
        let Some(got) = f
            .got
            .as_deref()
            .filter(|got| probe::is_error(got, "FULL") || probe::is_error(got, "NAME_TAKEN"))
        else {
            return f;
        };
        let (quit, got) = (
            probe::shown_bytes(QUIT.trim_ascii_end()),
            probe::shown_str(got),
        );
        Failure {
            exchanges: vec![
                tr!(
                    lang,
                    "{name}: sent {quit}, got \"OK QUIT\", still connected",
                    "{name} : a envoyé {quit}, a reçu \"OK QUIT\", toujours connecté"
                ),
                tr!(
                    lang,
                    "{label}: {newcomer_did}got {got}",
                    "{label} : {newcomer_did}a reçu {got}"
                ),
            ],
            with_exchanges: false,
            ..f
        }
        .likely(Cause::ReleasedAfterLastLine)
    };
    let Some(mut leaver) = (!open.is_empty()).then(|| open.remove(0)) else {
        return Err(Failure::new(lab.lang().pick(
            "the server allows no connection",
            "le serveur n'accepte aucune connexion",
        )));
    };
    let logging_in = tr!(
        lang,
        "got \"OK WELCOME …\", sent \"CONNECT {name}\", ",
        "a reçu \"OK WELCOME …\", a envoyé \"CONNECT {name}\", "
    );
    let mut gone = Vec::new();
    for _ in 0..LEAVERS {
        leaver.send_bytes(QUIT)?;
        leaver.expect("OK QUIT")?;
        let mut back = lab
            .connect_when_free(&label, Instant::now())
            .map_err(|f| late(f, ""))?;
        leaver.send("PING")?; // still sending, still not closed
        back.ask(&format!("CONNECT {name}"), &format!("OK CONNECT {name}"))
            .map_err(|f| late(f, &logging_in))?;
        gone.push(std::mem::replace(&mut leaver, back));
    }
    Ok(())
}

/// After `QUIT`, every line owed to the client reaches it before the end
/// of stream: the replies to its earlier lines, the `RECEIVE` lines
/// already acknowledged to their senders, then `OK QUIT`; whatever the
/// client sends afterwards and whenever (256 KB of lines right behind
/// `QUIT`, more lines later, all read late); then a clean end of stream
/// (no reset, which can destroy lines on their way).
pub fn quit_delivers_owed_lines(lab: &mut Lab<'_>) -> Result<(), Failure> {
    const MESSAGES: usize = 50;
    let lang = lab.lang();
    let (alice, bob) = (lab.name("alice"), lab.name("bob"));
    let mut a = lab.login(&alice)?;
    let mut b = lab.login(&bob)?;
    let batch: String = (0..MESSAGES)
        .map(|i| format!("SEND {alice} m{i}\n"))
        .collect();
    b.send_bytes(batch.as_bytes())?;
    let mut late = a.writer()?;
    let before = format!("PING\nLIST\nSEND {alice} self\nHELP\n");
    send_after_quit(&mut late, &quit_then_more(&before), lang)?;
    for _ in 0..3 {
        thread::sleep(Duration::from_millis(50)); // pacing, not waiting for the server
        send_after_quit(&mut late, b"PING\n", lang)?;
    }
    let own = [
        "OK PING",
        "OK LIST",
        &format!("RECEIVE {alice} self"),
        &format!("OK SEND {alice}"),
        "OK HELP",
        "OK QUIT",
    ];
    let mut received = Vec::new();
    let mut next = 0;
    while next < own.len() {
        let shown = probe::shown_str(own[next]);
        let expected = tr!(
            lang,
            "{shown} (or \"RECEIVE {bob} m<i>\")",
            "{shown} (ou \"RECEIVE {bob} m<i>\")"
        );
        let line = a.line(&expected).map_err(|f| match f.reset {
            true => reset_after_last_line(lang),
            false => f.likely_if(Cause::NoLingeringClose, |f| !f.silent),
        })?;
        if let Some(i) = line
            .strip_prefix(&format!("RECEIVE {bob} m"))
            .and_then(|i| i.parse::<usize>().ok())
        {
            received.push(i);
        } else if line.starts_with(own[next]) {
            next += 1;
        } else {
            return Err(a.mismatch(&expected, &line));
        }
    }
    send_after_quit(&mut late, b"PING\n", lang)?; // after OK QUIT, too
    let within = lab.settings().write_timeout.unwrap_or(lab.wait()) + END_GRACE;
    a.expect_clean_end(within).map_err(|f| match f.reset {
        true => reset_after_last_line(lang),
        false => f.likely(Cause::NoLingeringClose),
    })?;
    if received.iter().enumerate().any(|(n, &i)| n != i) {
        return Err(Failure::new(tr!(
            lang,
            "{alice} received the messages of {bob} out of order: expected m0, m1, m2…",
            "{alice} a reçu les messages de {bob} dans le désordre : attendu m0, m1, m2…"
        ))
        .because(&rules::IN_ORDER));
    }
    let mut acknowledged = 0;
    for _ in 0..MESSAGES {
        let expected = tr!(
            lang,
            "\"OK SEND {alice}\" or \"ERR NO_SUCH_USER …\"",
            "\"OK SEND {alice}\" ou \"ERR NO_SUCH_USER …\""
        );
        let line = b.line(&expected)?;
        if line == format!("OK SEND {alice}") {
            acknowledged += 1;
        } else if !probe::is_error(&line, "NO_SUCH_USER") {
            return Err(b.mismatch(&expected, &line));
        }
    }
    if acknowledged > received.len() {
        return Err(Failure::new(tr!(
            lang,
            "{bob} got OK SEND {alice} for messages that {alice} never received before OK QUIT",
            "{bob} a reçu OK SEND {alice} pour des messages que {alice} n'a pas reçus avant OK QUIT"
        )));
    }
    b.sync()
}

/// `before`, `QUIT`, then more input behind it than a server reads at
/// once (256 KB of lines), all in one write: when the server closes,
/// that input is already there, unread by a server that does not
/// linger, so that its system resets the connection every time, not
/// only when a late line happens to arrive before the close.
fn quit_then_more(before: &str) -> Vec<u8> {
    let mut lines = format!("{before}QUIT\n");
    lines.push_str(&"FROB after quit\n".repeat(16 * 1024));
    lines.into_bytes()
}

/// Sends lines around QUIT. A broken pipe is no failure: the server may
/// have ended the connection cleanly already (its end of stream, then its
/// close); nor is a write that times out (a server that stops reading
/// fails `quit-ends-within-write-timeout`). A reset is one: it can
/// destroy the lines on their way.
fn send_after_quit(writer: &mut TcpStream, bytes: &[u8], lang: Lang) -> Result<(), Failure> {
    match writer.write_all(bytes) {
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => Err(reset_after_last_line(lang)),
        _ => Ok(()),
    }
}

/// The failure of a connection reset after its last line.
pub(super) fn reset_after_last_line(lang: Lang) -> Failure {
    let failure = Failure::new(lang.pick(
        "the lines the client sent after its last line met a reset (RST) of the connection, \
         without a clean end of stream (FIN) first: a reset destroys the lines on their way",
        "les lignes envoyées par le client après sa dernière ligne ont rencontré une \
         réinitialisation (reset) de la connexion, sans fin de flux propre (FIN) d'abord : un \
         reset détruit les lignes en route",
    ))
    .because(&rules::RESET)
    .likely(Cause::NoLingeringClose);
    Failure {
        reset: true,
        ..failure
    }
}

/// After `QUIT`, the connection ends within the write timeout, even if the
/// client keeps sending (256 KB right behind `QUIT`, then a line every
/// 50 ms); and it ends cleanly (FIN, then the close), not with a reset.
pub fn quit_ends_within_write_timeout(lab: &mut Lab<'_>) -> Result<(), Failure> {
    let lang = lab.lang();
    let write_timeout = lab.settings().write_timeout.unwrap_or(lab.wait());
    let mut c = lab.login(&lab.name("chatty"))?;
    let mut writer = c.writer()?;
    let quit = Instant::now();
    send_after_quit(&mut writer, &quit_then_more(""), lang)?;
    c.expect("OK QUIT").map_err(|f| match f.reset {
        true => reset_after_last_line(lang),
        false => f,
    })?;
    let watched = write_timeout + END_GRACE * 2;
    let end = send_until_closed(&mut writer, quit + watched, || false);
    let (timeout, bound) = (
        lang.seconds(write_timeout),
        lang.seconds(write_timeout + END_GRACE),
    );
    let expected = tr!(
        lang,
        "after QUIT, the client sent 256 KB of lines, then PING every 50 ms; expected the \
         connection to end within the write timeout ({timeout}, so by {bound})",
        "après QUIT, le client a envoyé 256 Ko de lignes, puis PING toutes les 50 ms ; la \
         connexion devait se terminer dans le délai d'écriture ({timeout}, donc avant {bound})"
    );
    match end {
        Some((_, io::ErrorKind::ConnectionReset)) => Err(reset_after_last_line(lang)),
        Some((closed, _)) if closed <= quit + write_timeout + END_GRACE => Ok(()),
        Some(_) => Err(Failure::new(tr!(
            lang,
            "{expected}; it ended later",
            "{expected} ; elle s'est terminée plus tard"
        ))),
        None => {
            let watched = lang.seconds(watched);
            Err(Failure::new(tr!(
                lang,
                "{expected}; it was still open after {watched}",
                "{expected} ; elle était encore ouverte au bout de {watched}"
            )))
        }
    }
}

/// Whatever value the command line accepts, every guarantee holds: with
/// its three timeouts at 18446744073709551615 s, the server relays a
/// message, and a `QUIT` with more input behind it (as in
/// `quit-delivers-owed-lines-then-ends`) and a late line still gets every
/// reply, then a clean end of the stream. (A server that computes
/// `now + timeout` overflows, or panics, as soon as it computes a
/// deadline; one whose lingering ends at an overflowed deadline closes at
/// once, with the input unread: a reset.)
pub fn huge_timeouts_honoured(lab: &mut Lab<'_>) -> Result<(), Failure> {
    let lang = lab.lang();
    let overflow = |f: Failure| f.likely(Cause::DeadlineOverflow);
    let ending = |f: Failure| match f.reset {
        true => reset_with_huge_timeouts(lang),
        false => f.likely(Cause::NoLingeringOrHugeDeadline),
    };
    let (alice, bob) = (lab.name("alice"), lab.name("bob"));
    let mut a = lab.login(&alice).map_err(overflow)?;
    let mut b = lab.login(&bob).map_err(overflow)?;
    deliver(&mut a, &alice, &mut b, &bob, "still here").map_err(overflow)?;
    let mut late = a.writer()?;
    send_after_quit(&mut late, &quit_then_more("PING\n"), lang).map_err(ending)?;
    a.expect("OK PING").map_err(ending)?;
    a.expect("OK QUIT").map_err(ending)?;
    send_after_quit(&mut late, b"PING\n", lang).map_err(ending)?; // a late line
    a.expect_clean_end(lab.wait()).map_err(ending)?;
    b.sync().map_err(overflow)
}

/// The failure of [`huge_timeouts_honoured`] when the connection is reset
/// after `QUIT`: in its own words (the huge timeouts), and its own cause.
fn reset_with_huge_timeouts(lang: Lang) -> Failure {
    Failure::new(lang.pick(
        "with its three timeouts at 18446744073709551615 s, the server reset (RST) the \
         connection after QUIT instead of ending it cleanly (FIN): the lines the client sent \
         behind QUIT were still unread, and a reset destroys the lines on their way",
        "avec ses trois délais à 18446744073709551615 s, le serveur a réinitialisé (reset) la \
         connexion après QUIT au lieu de la terminer proprement (FIN) : les lignes envoyées par \
         le client derrière QUIT n'étaient pas lues, et un reset détruit les lignes en route",
    ))
    .likely(Cause::NoLingeringOrHugeDeadline)
}

/// A client that closes its side after its lines (a half-close, as
/// `nc -N` or `shutdown(SHUT_WR)` do) still gets the reply to each, whole
/// and in order, a RECEIVE is still delivered, then the end of the
/// stream: the end of the client's stream is not the end of the server's.
pub fn half_close_gets_every_reply(lab: &mut Lab<'_>) -> Result<(), Failure> {
    let (alice, bob) = (lab.name("alice"), lab.name("bob"));
    let mut b = lab.login(&bob)?;
    let mut a = lab.login(&alice)?;
    a.send_bytes(format!("PING\nLIST\nSEND {bob} bye\nHELP\n").as_bytes())?;
    a.half_close();
    a.expect("OK PING")?;
    a.expect_prefix("OK LIST")?;
    b.expect(&format!("RECEIVE {alice} bye"))?;
    a.expect(&format!("OK SEND {bob}"))?;
    a.expect_prefix("OK HELP ")?;
    a.expect_clean_end(lab.wait())?;
    b.sync()
}

/// Writes `PING` lines until a write fails (the server has closed the
/// connection and answered the next segment with a reset), or until
/// `bound`: one every 50 ms, or without pause while `burst()` says so (each
/// with a thousand blank lines). Returns when the first write failed, and how: after
/// a clean end of stream the system says "broken pipe", without one
/// "connection reset".
pub(super) fn send_until_closed(
    writer: &mut TcpStream,
    bound: Instant,
    burst: impl Fn() -> bool,
) -> Option<(Instant, io::ErrorKind)> {
    // A burst is mostly blank lines, which get no reply: the replies to
    // its few PINGs are all the checker must read before the end of
    // stream, which it must do within the write timeout (before the
    // server stops lingering), busy machine or not.
    let many = format!("PING\n{}", "\n".repeat(999));
    while Instant::now() < bound {
        let bursting = burst();
        let bytes = if bursting { many.as_bytes() } else { b"PING\n" };
        if let Err(e) = writer.write_all(bytes) {
            return Some((Instant::now(), e.kind()));
        }
        if !bursting {
            thread::sleep(Duration::from_millis(50)); // pacing the writes
        }
    }
    None
}
