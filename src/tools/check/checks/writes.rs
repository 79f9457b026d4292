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
use super::super::probe::{self, Failure, Probe, seconds};
use super::super::settings::ServerFlags;

/// The smallest write timeout: the checks that wait for it are quick.
pub const DROP: ServerFlags = ServerFlags {
    write_timeout: Some(1),
    ..ServerFlags::DEFAULTS
};

/// A write timeout long enough that a server making everyone wait on a
/// stuck recipient cannot hide it; room for two floods and four others.
pub const STALL: ServerFlags = ServerFlags {
    max_connections: Some(8),
    write_timeout: Some(2),
    ..ServerFlags::DEFAULTS
};

/// How much later than the write timeout a stuck client may be dropped.
const GRACE: Duration = Duration::from_millis(500);

/// How many write timeouts a deaf client may last once the server stopped
/// reading it (see [`deaf_client_dropped`]).
const DEAF_TIMEOUTS: u32 = 3;

/// How long a flood may go on before the server is judged never to block
/// (it queues without bound instead).
const FLOOD_LIMIT: Duration = Duration::from_secs(10);

/// What "undelayed" means for the others while a recipient is stuck: a
/// round trip or a greeting slower than this waited on someone else.
const UNDELAYED: Duration = Duration::from_millis(500);

/// The write timeout the server has (known in spawn mode).
fn write_timeout(lab: &Lab<'_>) -> Duration {
    lab.settings().write_timeout.unwrap_or(lab.wait())
}

/// A recipient that never reads is dropped once its socket has not
/// accepted a line for the write timeout (not much later, and not much
/// sooner); its sender then gets `ERR NO_SUCH_USER`; its name is released
/// before that reply.
pub fn stuck_recipient_dropped(lab: &mut Lab<'_>) -> Result<(), Failure> {
    let timeout = write_timeout(lab);
    let (sleeper, flooder) = (lab.name("sleeper"), lab.name("flooder"));
    let _never_reads = lab.login(&sleeper)?;
    let sender = lab.login(&flooder)?;
    flood(sender, &sleeper, timeout, &AtomicBool::new(false))?;
    let mut watcher = lab.connect("watcher")?;
    watcher.send("LIST")?;
    let list = watcher.expect_prefix("OK LIST")?;
    if list.split(' ').any(|name| name == sleeper) {
        return Err(watcher
            .mismatch(&format!("a list without {sleeper}"), &list)
            .because("a client dropped for its write timeout loses its name at once"));
    }
    watcher.ask(
        &format!("CONNECT {sleeper}"),
        &format!("OK CONNECT {sleeper}"),
    )
}

/// While recipients are stuck, every other connection goes on undelayed:
/// exchanges between two others, their replies, a newcomer's greeting;
/// with two stuck recipients flooded at the same time.
pub fn others_undelayed(lab: &mut Lab<'_>) -> Result<(), Failure> {
    let rule = "a recipient that stops reading delays only the connections that send to it";
    let timeout = write_timeout(lab);
    let mut floods = Vec::new();
    for i in 0..2 {
        let sleeper = lab.name(&format!("sleep{i}x"));
        let never_reads = lab.login(&sleeper)?;
        let sender = lab.login(&lab.name(&format!("flood{i}x")))?;
        floods.push((sleeper, never_reads, sender));
    }
    let (alice, bob) = (lab.name("alice"), lab.name("bob"));
    let mut a = lab.login(&alice)?;
    let mut b = lab.login(&bob)?;
    let stalled = AtomicBool::new(false);
    let done = AtomicUsize::new(0);
    thread::scope(|scope| {
        let threads: Vec<_> = floods
            .into_iter()
            .map(|(sleeper, never_reads, sender)| {
                let (stalled, done) = (&stalled, &done);
                scope.spawn(move || {
                    let result = flood(sender, &sleeper, timeout, stalled);
                    done.fetch_add(1, Ordering::AcqRel);
                    drop(never_reads);
                    result
                })
            })
            .collect();
        let mut result = Ok(());
        let mut greeted = false;
        let mut n = 0;
        while done.load(Ordering::Acquire) < 2 && result.is_ok() {
            if stalled.load(Ordering::Acquire) && !greeted {
                greeted = true;
                result = timed("a newcomer's greeting and PING", || {
                    let mut newcomer = lab.connect("newcomer")?;
                    newcomer.sync()
                });
            } else {
                result = timed(&format!("a round trip between {alice} and {bob}"), || {
                    super::deliver(&mut a, &alice, &mut b, &bob, &format!("hello {n}"))?;
                    super::deliver(&mut b, &bob, &mut a, &alice, &format!("reply {n}"))?;
                    a.sync()
                });
                n += 1;
                thread::sleep(Duration::from_millis(10)); // pacing the exchanges
            }
        }
        for thread in threads {
            let flooded = thread
                .join()
                .unwrap_or_else(|_| Err(Failure::new("a flood thread panicked")));
            result = result.and(flooded);
        }
        result
    })
    .map_err(|f| f.because(rule))
}

/// Runs `step`, and fails if it took longer than [`UNDELAYED`].
fn timed(what: &str, step: impl FnOnce() -> Result<(), Failure>) -> Result<(), Failure> {
    let started = Instant::now();
    step()?;
    let took = started.elapsed();
    if took > UNDELAYED {
        return Err(Failure::new(format!(
            "while a recipient was stuck, {what} took {}; expected at most {}",
            seconds(took),
            seconds(UNDELAYED)
        )));
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
    let rule = "a client whose socket does not accept a line within the write timeout is \
                disconnected and its name released";
    let timeout = write_timeout(lab);
    let deaf = lab.name("deaf");
    let probe = lab.login(&deaf)?;
    let mut writer = probe.writer()?;
    let mut watcher = lab.login(&lab.name("watcher"))?;
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
        scope.spawn(|| pipeline_help(&mut writer, &stop, &blocked_at));
        let gone = wait_until_unlisted(&mut watcher, &deaf, give_up);
        stop.store(true, Ordering::Release);
        gone
    })?;
    let blocked = *blocked_at.lock().unwrap_or_else(PoisonError::into_inner);
    let Some(gone) = gone else {
        return Err(Failure::new(format!(
            "{deaf} sent HELP without end and never read a reply; expected it to be dropped \
             within {DEAF_TIMEOUTS} times the write timeout ({}) once its socket was full; it was \
             still listed after {}",
            seconds(timeout),
            seconds(started.elapsed())
        ))
        .because(rule));
    };
    if let Some(blocked) = blocked {
        let late = gone.saturating_duration_since(blocked);
        if late > bound + GRACE {
            return Err(Failure::new(format!(
                "{deaf} never read its replies: the server stopped reading it, then dropped it \
                 {} later; expected within {DEAF_TIMEOUTS} times the write timeout ({})",
                seconds(late),
                seconds(timeout)
            ))
            .because(rule));
        }
    }
    drop(probe);
    let mut back = lab.connect("connection 3")?;
    back.ask(&format!("CONNECT {deaf}"), &format!("OK CONNECT {deaf}"))
        .map_err(|f| f.because(rule))
}

/// Writes `HELP` lines (a short line with a long reply) until `stop` or a
/// write fails; notes when a write first blocked: the server had stopped
/// reading.
fn pipeline_help(writer: &mut TcpStream, stop: &AtomicBool, blocked_at: &Mutex<Option<Instant>>) {
    let chunk = "HELP\n".repeat(200);
    while !stop.load(Ordering::Acquire) {
        let before = Instant::now();
        let written = writer.write_all(chunk.as_bytes());
        if before.elapsed() > Duration::from_millis(200) {
            let mut blocked = blocked_at.lock().unwrap_or_else(PoisonError::into_inner);
            blocked.get_or_insert(before);
        }
        if written.is_err() {
            return;
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
/// writes never block.
fn flood(
    mut sender: Probe,
    target: &str,
    timeout: Duration,
    stalled: &AtomicBool,
) -> Result<(), Failure> {
    const CHUNK: usize = 50;
    const WINDOW: usize = 500;
    let rule = "a recipient whose socket does not accept a line within the write timeout is \
                disconnected, and its sender gets ERR NO_SUCH_USER";
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
        let result = read_flood_replies(&mut sender, target, timeout, stalled, &answered, started);
        stop.store(true, Ordering::Release);
        let sent = writing.join().unwrap_or(0);
        (result, sent)
    });
    result.map_err(|f| f.because(rule))?;
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
    stalled: &AtomicBool,
    answered: &AtomicUsize,
    started: Instant,
) -> Result<(), Failure> {
    let ok = format!("OK SEND {target}");
    let mut last_reply = Instant::now();
    let mut longest = Duration::ZERO;
    loop {
        if started.elapsed() > FLOOD_LIMIT {
            return Err(Failure::new(format!(
                "{target} never reads, and was sent {} messages in {}: every one got {ok:?}; \
                 expected the server to block on it, then drop it",
                answered.load(Ordering::Acquire),
                seconds(FLOOD_LIMIT)
            )));
        }
        let quiet = Duration::from_millis(200);
        let Some(line) = sender.poll_line(quiet)? else {
            stalled.store(true, Ordering::Release);
            if last_reply.elapsed() > timeout + GRACE {
                return Err(Failure::new(format!(
                    "{target} never reads: the sender has waited {} for a reply; expected \
                     ERR NO_SUCH_USER within the write timeout ({})",
                    seconds(last_reply.elapsed()),
                    seconds(timeout)
                )));
            }
            continue;
        };
        answered.fetch_add(1, Ordering::AcqRel);
        longest = longest.max(last_reply.elapsed());
        last_reply = Instant::now();
        if probe::is_error(&line, "NO_SUCH_USER") {
            if longest < timeout / 2 {
                return Err(Failure::new(format!(
                    "{target} never reads: the sender got {line:?} after a wait of at most {}; \
                     expected the server to wait for the write timeout ({}) first",
                    seconds(longest),
                    seconds(timeout)
                )));
            }
            return Ok(());
        }
        if line != ok {
            return Err(sender.mismatch(&format!("{ok:?} or \"ERR NO_SUCH_USER ...\""), &line));
        }
    }
}
