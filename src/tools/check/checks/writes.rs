//! The write timeout: a client whose socket does not accept a line in
//! time is dropped, and only those who write to it wait on it (contract:
//! "Connections", "Guarantees").
//!
//! A client that never reads is made real by flooding it: its system
//! buffers and the server's fill after a few MB (about 0.2 s of pipelined
//! 100-character SENDs on Linux), then the server's writes to it block.

use std::io::Write;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use super::super::Lab;
use super::super::causes::Cause;
use super::super::probe::{self, Failure, Probe};
use super::super::settings::ServerFlags;
use crate::lang::{Lang, tr};
use crate::tools::remote;

/// The smallest write timeout: the checks that wait for it are quick. Two
/// slots: a newcomer after the drop needs the dropped client's slot.
pub const DROP: ServerFlags = ServerFlags {
    max_connections: Some(2),
    write_timeout: Some(1),
    ..ServerFlags::DEFAULTS
};

/// A stuck recipient: a write timeout long enough that its wait shows
/// even on a busy machine (a quarter of it: half a second); two slots.
pub const STUCK: ServerFlags = ServerFlags {
    max_connections: Some(2),
    write_timeout: Some(2),
    ..ServerFlags::DEFAULTS
};

/// A write timeout long enough that a server making everyone wait on a
/// stuck recipient cannot hide it; room for two floods, a deaf client and
/// three others.
pub const STALL: ServerFlags = ServerFlags {
    max_connections: Some(8),
    write_timeout: Some(3),
    ..ServerFlags::DEFAULTS
};

/// How much later than the write timeout a stuck client may be dropped.
const GRACE: Duration = Duration::from_millis(500);

/// How many write timeouts a deaf client may last once the server stopped
/// reading it (see [`deaf_client_dropped`]).
const DEAF_TIMEOUTS: u32 = 3;

/// How many messages to a client that never reads may be acknowledged
/// before the server is judged never to block (it queues without bound):
/// about 13 MB of RECEIVE lines, more than the buffers of both ends hold.
/// A count, not a time: a slow server on a busy machine takes longer to
/// fill those buffers, never more lines.
const FLOOD_MESSAGES: usize = 100_000;

/// How long a flood may go on at all (a server too slow to fill the
/// buffers in that time is given up on).
const FLOOD_LIMIT: Duration = Duration::from_secs(30);

/// How long others are timed while a deaf client has not blocked yet.
const DEAF_LIMIT: Duration = Duration::from_secs(10);

/// What "undelayed" means for the others while a recipient is stuck: a
/// round trip or a greeting slower than this waited on someone else. Half
/// the write timeout of [`STALL`]: a server that makes others wait on a
/// stuck write makes them wait up to the whole of it (the round trips go
/// on through the stall, so one of them starts early in it), while a
/// busy machine may slow a round trip of a correct server a little.
const UNDELAYED: Duration = Duration::from_millis(1500);

/// The write timeout the server has (known in spawn mode).
fn write_timeout(lab: &Lab<'_>) -> Duration {
    lab.settings().write_timeout.unwrap_or(lab.wait())
}

/// A recipient that never reads is dropped once its socket has not
/// accepted a line for the write timeout (not much later, and not much
/// sooner); its sender then gets `ERR NO_SUCH_USER`; its name is released
/// before that reply, and its slot too (the server has two: a newcomer
/// needs the dropped client's).
pub fn stuck_recipient_dropped(lab: &mut Lab<'_>) -> Result<(), Failure> {
    let timeout = write_timeout(lab);
    let (sleeper, flooder) = (lab.name("sleeper"), lab.name("flooder"));
    let _never_reads = lab.login_deaf(&sleeper)?;
    let sender = lab.login(&flooder)?;
    let (stalled, abort) = (AtomicBool::new(false), AtomicBool::new(false));
    flood(sender, &sleeper, timeout, &stalled, &abort)?;
    let label = lab.lang().pick("watcher", "observateur");
    let mut watcher = lab.connect(label)?;
    watcher.send("LIST")?;
    let list = watcher.expect_prefix("OK LIST")?;
    if list.split(' ').any(|name| name == sleeper) {
        let expected = tr!(
            lab.lang(),
            "a list without {sleeper}",
            "une liste sans {sleeper}"
        );
        return Err(watcher.mismatch(&expected, &list));
    }
    watcher.ask(
        &format!("CONNECT {sleeper}"),
        &format!("OK CONNECT {sleeper}"),
    )
}

/// While recipients are stuck, every other connection goes on undelayed:
/// exchanges between two others, their replies, a newcomer's greeting;
/// with two stuck recipients flooded at the same time, and a deaf client
/// pipelining LIST without reading a reply (a server that writes a reply
/// while holding a lock that every connection needs, such as the one on
/// its users, makes everyone wait on that client).
pub fn others_undelayed(lab: &mut Lab<'_>) -> Result<(), Failure> {
    let timeout = write_timeout(lab);
    let lang = lab.lang();
    let mut floods = Vec::new();
    for i in 0..2 {
        let sleeper = lab.name(&format!("sleep{i}x"));
        let never_reads = lab.login_deaf(&sleeper)?;
        let sender = lab.login(&lab.name(&format!("flood{i}x")))?;
        floods.push((sleeper, never_reads, sender));
    }
    let (alice, bob) = (lab.name("alice"), lab.name("bob"));
    let mut a = lab.login(&alice)?;
    let mut b = lab.login(&bob)?;
    let deaf = lab.login_deaf(&lab.name("deaf"))?;
    let mut deaf_writer = deaf.writer()?;
    let stalled = AtomicBool::new(false);
    // Set once the check has failed: the floods need not go on.
    let abort = AtomicBool::new(false);
    let done = AtomicUsize::new(0);
    let stop_deaf = AtomicBool::new(false);
    let deaf_over = AtomicBool::new(false);
    let deaf_blocked = Mutex::new(None);
    let started = Instant::now();
    thread::scope(|scope| {
        scope.spawn(|| {
            // Until the server drops it (or the check stops it).
            pipeline(&mut deaf_writer, "LIST\n", &stop_deaf, &deaf_blocked);
            deaf_over.store(true, Ordering::Release);
        });
        let threads: Vec<_> = floods
            .into_iter()
            .map(|(sleeper, never_reads, sender)| {
                let (stalled, abort, done) = (&stalled, &abort, &done);
                scope.spawn(move || {
                    let result = flood(sender, &sleeper, timeout, stalled, abort);
                    done.fetch_add(1, Ordering::AcqRel);
                    drop(never_reads);
                    result
                })
            })
            .collect();
        let mut result = Ok(());
        let mut greeted = false;
        let mut n = 0;
        // Round trips go on while a flood runs, and while the deaf client
        // is not over: until its writes have blocked (the server's buffers
        // for it are full: it is stuck), then until it is dropped, or for
        // the write timeout and a grace (a server that never drops it
        // fails the deaf client's own check).
        let going = || {
            let floods = done.load(Ordering::Acquire) < 2;
            let blocked = *deaf_blocked.lock().unwrap_or_else(PoisonError::into_inner);
            let deaf = !deaf_over.load(Ordering::Acquire)
                && blocked.is_none_or(|blocked| blocked.elapsed() < timeout + GRACE * 2);
            (floods || deaf) && started.elapsed() < DEAF_LIMIT
        };
        while going() && result.is_ok() {
            if stalled.load(Ordering::Acquire) && !greeted {
                greeted = true;
                let what = lang.pick(
                    "a newcomer's greeting and PING",
                    "l'accueil d'un nouveau venu et son PING",
                );
                result = timed(lang, what, || {
                    let mut newcomer = lab.connect(lang.pick("newcomer", "nouveau venu"))?;
                    newcomer.sync()
                });
            } else {
                let what = tr!(
                    lang,
                    "a round trip between {alice} and {bob}",
                    "un aller-retour entre {alice} et {bob}"
                );
                result = timed(lang, &what, || {
                    super::deliver(&mut a, &alice, &mut b, &bob, &format!("hello {n}"))?;
                    super::deliver(&mut b, &bob, &mut a, &alice, &format!("reply {n}"))?;
                    a.sync()
                });
                n += 1;
                thread::sleep(Duration::from_millis(10)); // pacing the exchanges
            }
        }
        stop_deaf.store(true, Ordering::Release);
        abort.store(result.is_err(), Ordering::Release);
        for thread in threads {
            let flooded = thread
                .join()
                .unwrap_or_else(|_| Err(Failure::new("a flood thread panicked")));
            result = result.and(flooded);
        }
        result
    })
}

/// Runs `step`, and fails if it took longer than [`UNDELAYED`].
fn timed(
    lang: Lang,
    what: &str,
    step: impl FnOnce() -> Result<(), Failure>,
) -> Result<(), Failure> {
    let started = Instant::now();
    step().map_err(|f| f.likely_if(Cause::LockAcrossWrite, |f| f.silent))?;
    if started.elapsed() > UNDELAYED {
        let bound = lang.seconds(UNDELAYED);
        return Err(Failure::new(tr!(
            lang,
            "while recipients were stuck (and a deaf client pipelined LIST), {what} took more \
             than {bound}",
            "pendant que des destinataires étaient bloqués (et qu'un client sourd enchaînait \
             les LIST), {what} a pris plus de {bound}"
        ))
        .likely(Cause::LockAcrossWrite));
    }
    Ok(())
}

/// A client that never reads its own replies is dropped once its socket
/// has not accepted a line for the write timeout, and its name released.
///
/// The bound is loose on purpose (three times the write timeout after the
/// server stopped reading): a client that keeps *sending* makes its system
/// reopen its receive window a little now and then, so its socket may take
/// a line or two after it looked full, and a server that times each line
/// out separately rightly keeps it a while longer. The exact bound is
/// checked on a recipient that sends nothing (`write-timeout-drops-stuck-
/// recipient`); this check catches a server that never drops a deaf client.
pub fn deaf_client_dropped(lab: &mut Lab<'_>) -> Result<(), Failure> {
    let lang = lab.lang();
    let timeout = write_timeout(lab);
    let deaf = lab.name("deaf");
    let probe = lab.login_deaf(&deaf)?;
    let mut writer = probe.writer()?;
    let mut watcher = lab.login(&lab.name(lang.pick("watcher", "observateur")))?;
    let blocked_at: Mutex<Option<Instant>> = Mutex::new(None);
    let stop = AtomicBool::new(false);
    let started = Instant::now();
    // Once the writes block, the drop is due within the (loose) bound.
    let bound = timeout * DEAF_TIMEOUTS;
    let give_up = || {
        let blocked = *blocked_at.lock().unwrap_or_else(PoisonError::into_inner);
        blocked.map_or(started + FLOOD_LIMIT, |blocked| blocked + bound + GRACE * 2)
    };
    let gone = thread::scope(|scope| {
        scope.spawn(|| pipeline(&mut writer, "HELP\n", &stop, &blocked_at));
        let gone = wait_until_unlisted(&mut watcher, &deaf, give_up);
        stop.store(true, Ordering::Release);
        gone
    })?;
    let blocked = *blocked_at.lock().unwrap_or_else(PoisonError::into_inner);
    let expected = deaf_expected(lang, &deaf, bound);
    let Some(gone) = gone else {
        return Err(Failure::new(tr!(
            lang,
            "{expected}; it was still listed when the checker gave up",
            "{expected} ; il était encore listé quand le banc a abandonné"
        ))
        .likely(Cause::NoWriteTimeout));
    };
    if let Some(blocked) = blocked {
        if gone.saturating_duration_since(blocked) > bound + GRACE {
            return Err(Failure::new(tr!(
                lang,
                "{expected}; it was dropped later",
                "{expected} ; il a été déconnecté plus tard"
            )));
        }
    }
    drop(probe);
    let mut back = lab.connect(&lab.nth(3))?;
    back.ask(&format!("CONNECT {deaf}"), &format!("OK CONNECT {deaf}"))
}

/// What [`deaf_client_dropped`] expected of the client `deaf`, dropped
/// within `bound` ([`DEAF_TIMEOUTS`] write timeouts).
fn deaf_expected(lang: Lang, deaf: &str, bound: Duration) -> String {
    let in_all = lang.seconds(bound);
    tr!(
        lang,
        "{deaf} sent HELP without end and never read a reply; expected it to be dropped within \
         {DEAF_TIMEOUTS} times the write timeout ({in_all} in all) once its socket was full",
        "{deaf} a envoyé HELP sans fin sans jamais lire de réponse ; il devait être déconnecté \
         en moins de {DEAF_TIMEOUTS} fois le délai d'écriture ({in_all} en tout) une fois sa \
         socket pleine"
    )
}

/// Writes `line` (a short line with a reply: `HELP`, `LIST`) without end,
/// until `stop` or the server closes the connection; notes when a write
/// first blocked (for 200 ms): the server had stopped reading.
fn pipeline(
    writer: &mut TcpStream,
    line: &str,
    stop: &AtomicBool,
    blocked_at: &Mutex<Option<Instant>>,
) {
    const BLOCKED: Duration = Duration::from_millis(200);
    let chunk = line.repeat(200);
    // A write that blocks returns after BLOCKED, and the next one tries
    // again (a line cut there is only a bad line for a server that has
    // stopped reading anyway).
    let _ = writer.set_write_timeout(Some(BLOCKED));
    while !stop.load(Ordering::Acquire) {
        let before = Instant::now();
        match writer.write_all(chunk.as_bytes()) {
            Ok(()) => {}
            Err(e) if remote::is_timeout(&e) => {
                let mut blocked = blocked_at.lock().unwrap_or_else(PoisonError::into_inner);
                blocked.get_or_insert(before);
            }
            Err(_) => return,
        }
    }
}

/// Asks `LIST` every 50 ms until `name` is not listed (`Some(when)`), or
/// until `give_up()` has passed (`None`).
fn wait_until_unlisted(
    watcher: &mut Probe,
    name: &str,
    give_up: impl Fn() -> Instant,
) -> Result<Option<Instant>, Failure> {
    while Instant::now() < give_up() {
        watcher.send("LIST")?;
        let list = watcher.expect_prefix("OK LIST")?;
        if !list.split(' ').any(|listed| listed == name) {
            return Ok(Some(Instant::now()));
        }
        thread::sleep(Duration::from_millis(50)); // pacing the polls
    }
    Ok(None)
}

/// Floods `target` (who never reads) with pipelined 100-character SENDs
/// from `sender` until it is dropped: the sender then gets
/// `ERR NO_SUCH_USER`, after a silence of about the write timeout (the
/// server was blocked on the target). Sets `stalled` once the replies stop
/// coming. Never more than `WINDOW` lines unanswered, so the sender's own
/// writes never block. Stops early, without a verdict, once `abort` is
/// set.
fn flood(
    mut sender: Probe,
    target: &str,
    timeout: Duration,
    stalled: &AtomicBool,
    abort: &AtomicBool,
) -> Result<(), Failure> {
    const CHUNK: usize = 50;
    const WINDOW: usize = 500;
    let line = format!("SEND {target} {}\n", "z".repeat(100)).repeat(CHUNK);
    let answered = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let mut writer = sender.writer()?;
    let started = Instant::now();
    let (result, sent) = thread::scope(|scope| {
        let writing = scope.spawn(|| {
            let mut sent = 0;
            while !stop.load(Ordering::Acquire) && started.elapsed() < FLOOD_LIMIT {
                if sent - answered.load(Ordering::Acquire) >= WINDOW {
                    thread::sleep(Duration::from_millis(1)); // waiting for replies
                } else if writer.write_all(line.as_bytes()).is_ok() {
                    sent += CHUNK;
                } else {
                    break;
                }
            }
            sent
        });
        let result = read_flood_replies(
            &mut sender,
            target,
            timeout,
            (stalled, abort),
            &answered,
            started,
        );
        stop.store(true, Ordering::Release);
        let sent = writing.join().unwrap_or(0);
        (result, sent)
    });
    result?;
    if abort.load(Ordering::Acquire) {
        return Ok(()); // the check failed elsewhere
    }
    // Every line still unanswered is refused: the target is gone.
    for _ in answered.load(Ordering::Acquire)..sent {
        sender.expect_error("NO_SUCH_USER")?;
    }
    sender.sync()
}

/// Reads the flooder's replies until the first `ERR NO_SUCH_USER`,
/// checking the longest silence before it: the server's wait on the
/// target. (Replies may come in bursts, so that wait shows as the longest
/// gap between two replies, not as the time since the last `OK SEND`.)
fn read_flood_replies(
    sender: &mut Probe,
    target: &str,
    timeout: Duration,
    (stalled, abort): (&AtomicBool, &AtomicBool),
    answered: &AtomicUsize,
    started: Instant,
) -> Result<(), Failure> {
    let lang = sender.lang;
    let ok = format!("OK SEND {target}");
    let mut last_reply = Instant::now();
    let mut longest = Duration::ZERO;
    let (timeout_shown, bound) = (lang.seconds(timeout), lang.seconds(timeout + GRACE));
    loop {
        if abort.load(Ordering::Acquire) {
            return Ok(());
        }
        let answers = answered.load(Ordering::Acquire);
        if answers > FLOOD_MESSAGES || started.elapsed() > FLOOD_LIMIT {
            let count = answers.min(FLOOD_MESSAGES);
            return Err(Failure::new(tr!(
                lang,
                "{target} never reads, and message after message sent to it got \"{ok}\" (more \
                 than {count}): expected the server to block on it, then drop it",
                "{target} ne lit jamais, et message après message qui lui était envoyé a reçu \
                 \"{ok}\" (plus de {count}) : le serveur devait se bloquer sur lui, puis le \
                 déconnecter"
            )));
        }
        let quiet = Duration::from_millis(200);
        let Some(line) = sender.poll_line(quiet)? else {
            stalled.store(true, Ordering::Release);
            if last_reply.elapsed() > timeout + GRACE {
                return Err(Failure::new(tr!(
                    lang,
                    "{target} never reads: its sender has waited more than {bound} for a reply; \
                     expected ERR NO_SUCH_USER within the write timeout ({timeout_shown})",
                    "{target} ne lit jamais : son expéditeur a attendu une réponse plus de \
                     {bound} ; ERR NO_SUCH_USER devait venir dans le délai d'écriture \
                     ({timeout_shown})"
                ))
                .likely(Cause::NoWriteTimeout));
            }
            continue;
        };
        answered.fetch_add(1, Ordering::AcqRel);
        longest = longest.max(last_reply.elapsed());
        last_reply = Instant::now();
        if probe::is_error(&line, "NO_SUCH_USER") {
            // A quarter: replies read late on a busy machine can hide a
            // little of the server's wait, never most of it.
            if longest < timeout / 4 {
                let quarter = lang.seconds(timeout / 4);
                let shown = probe::shown_str(&line);
                return Err(Failure::new(tr!(
                    lang,
                    "{target} never reads: its sender got {shown} after waiting less than {quarter}; \
                     expected the server to wait for the write timeout ({timeout_shown}) first",
                    "{target} ne lit jamais : son expéditeur a reçu {shown} après moins de \
                     {quarter} d'attente ; le serveur devait d'abord attendre le délai d'écriture \
                     ({timeout_shown})"
                )));
            }
            return Ok(());
        }
        if line != ok {
            let expected = tr!(
                lang,
                "\"{ok}\" or \"ERR NO_SUCH_USER …\"",
                "\"{ok}\" ou \"ERR NO_SUCH_USER …\""
            );
            return Err(sender.mismatch(&expected, &line));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bound in all, not one write timeout beside a count of them.
    #[test]
    fn the_deaf_clients_bound_reads_as_a_total() {
        let bound = Duration::from_secs(1) * DEAF_TIMEOUTS;
        assert!(
            deaf_expected(Lang::Fr, "deaf50", bound).contains(
                "en moins de 3 fois le délai d'écriture (3 s en tout) une fois sa socket"
            )
        );
        assert!(
            deaf_expected(Lang::En, "deaf50", bound)
                .contains("within 3 times the write timeout (3 s in all) once its socket was full")
        );
    }
}
