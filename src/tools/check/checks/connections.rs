//! The connection limit, the slots, and the end of a connection after
//! `QUIT` (contract: "Connections", "Guarantees").

use std::io::{self, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use super::super::Lab;
use super::super::probe::{self, Failure, Probe, seconds};
use super::super::settings::ServerFlags;

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

/// How much later than the write timeout a connection may end.
const END_GRACE: Duration = Duration::from_millis(700);

/// Opens as many connections as the server allows (some logged in, some
/// not, since every one counts).
fn fill(lab: &mut Lab<'_>) -> Result<Vec<Probe>, Failure> {
    (0..lab.settings().max_connections)
        .map(|i| match i % 2 {
            0 => lab.login(&lab.name(&format!("full{i}x"))),
            _ => lab.connect(&format!("connection {}", i + 1)),
        })
        .collect()
}

/// The label of the connection past the limit.
fn extra(lab: &Lab<'_>) -> String {
    format!("connection {}", lab.settings().max_connections + 1)
}

/// With `--max-connections` connections open (logged in or not), the next
/// gets `ERR FULL` and is closed at once. Without the flag, the limit is 5.
pub fn connection_limit(lab: &mut Lab<'_>) -> Result<(), Failure> {
    let _open = fill(lab)?;
    let label = extra(lab);
    let mut extra = lab.connect_raw(&label)?;
    let line = extra.line_crlf("\"ERR FULL <reason>\" ending with CRLF")?;
    if !probe::is_error(&line, "FULL") {
        return Err(extra
            .mismatch("\"ERR FULL <reason>\"", &line)
            .because(&format!(
                "at most {} connections are open at once (--max-connections)",
                lab.settings().max_connections
            )));
    }
    extra.expect_closed()
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
    lab.connect(&label)
        .map(drop)
        .map_err(|f| f.because("a slot is freed when its connection is reset"))
}

/// After `QUIT`, the slot and the name are free once the server has
/// handled it: a client that has read `OK QUIT` can reconnect, under the
/// same name, at once; even if the one that left still sends lines and has
/// not closed its side. And for a whole class leaving at the bell: eight
/// leavers in a row, each still connected, on a server of two slots.
pub fn quit_frees_at_once(lab: &mut Lab<'_>) -> Result<(), Failure> {
    const LEAVERS: usize = 8;
    let rule = "after QUIT, the slot and the name are free as soon as OK QUIT is read";
    let mut open = fill(lab)?;
    let name = lab.name("full0x"); // the first connection fill() logs in
    let Some(mut leaver) = (!open.is_empty()).then(|| open.remove(0)) else {
        return Err(Failure::new("the server allows no connection"));
    };
    let mut gone = Vec::new();
    for round in 1..=LEAVERS {
        leaver.send_bytes(b"QUIT\nPING\nFROB\n")?;
        leaver.expect("OK QUIT")?;
        let label = format!("{} (after {round} leavers)", extra(lab));
        let mut back = lab
            .connect_when_free(&label, Instant::now())
            .map_err(|f| f.because(rule))?;
        leaver.send("PING")?; // still sending, still not closed
        back.ask(&format!("CONNECT {name}"), &format!("OK CONNECT {name}"))
            .map_err(|f| f.because(rule))?;
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
    let rule = "after QUIT every owed line, then OK QUIT, reaches the client before a clean end \
                of stream";
    let (alice, bob) = (lab.name("alice"), lab.name("bob"));
    let mut a = lab.login(&alice)?;
    let mut b = lab.login(&bob)?;
    let batch: String = (0..MESSAGES)
        .map(|i| format!("SEND {alice} m{i}\n"))
        .collect();
    b.send_bytes(batch.as_bytes())?;
    // More input behind QUIT than a server reads at once: one that closes
    // without reading the rest resets the connection.
    let mut late = a.writer()?;
    let mut lines = format!("PING\nLIST\nSEND {alice} self\nHELP\nQUIT\n");
    lines.push_str(&"FROB after quit\n".repeat(16 * 1024));
    send_after_quit(&mut late, lines.as_bytes(), rule)?;
    for _ in 0..3 {
        thread::sleep(Duration::from_millis(50)); // pacing, not waiting for the server
        send_after_quit(&mut late, b"PING\n", rule)?;
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
        let expected = format!("{} (or RECEIVE {bob} m<i>)", probe::shown_str(own[next]));
        let line = a.line(&expected).map_err(|f| f.because(rule))?;
        if let Some(i) = line
            .strip_prefix(&format!("RECEIVE {bob} m"))
            .and_then(|i| i.parse::<usize>().ok())
        {
            received.push(i);
        } else if line.starts_with(own[next]) {
            next += 1;
        } else {
            return Err(a.mismatch(&expected, &line).because(rule));
        }
    }
    send_after_quit(&mut late, b"PING\n", rule)?; // after OK QUIT, too
    let within = lab.settings().write_timeout.unwrap_or(lab.wait()) + END_GRACE;
    a.expect_clean_end(within).map_err(|f| f.because(rule))?;
    if received.iter().enumerate().any(|(n, &i)| n != i) {
        return Err(Failure::new(format!(
            "{alice} received the messages of {bob} as {received:?}: expected them in order"
        )));
    }
    let mut acknowledged = 0;
    for _ in 0..MESSAGES {
        let line = b.line(&format!("\"OK SEND {alice}\" or \"ERR NO_SUCH_USER ...\""))?;
        if line == format!("OK SEND {alice}") {
            acknowledged += 1;
        } else if !probe::is_error(&line, "NO_SUCH_USER") {
            return Err(b.mismatch(
                &format!("\"OK SEND {alice}\" or \"ERR NO_SUCH_USER\""),
                &line,
            ));
        }
    }
    if acknowledged > received.len() {
        return Err(Failure::new(format!(
            "{bob} got {acknowledged} OK SEND {alice}, but {alice} received only {} of those \
             messages before OK QUIT",
            received.len()
        ))
        .because(rule));
    }
    b.sync()
}

/// Sends lines around QUIT. A broken pipe is no failure: the server may
/// have ended the connection cleanly already (its end of stream, then its
/// close); nor is a write that times out (a server that stops reading
/// fails `quit-ends-within-write-timeout`). A reset is one: it can
/// destroy the lines on their way.
fn send_after_quit(writer: &mut TcpStream, bytes: &[u8], rule: &str) -> Result<(), Failure> {
    match writer.write_all(bytes) {
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => Err(Failure::new(
            "lines sent after QUIT met a reset (RST) of the connection, without a clean end of \
             stream (FIN) first",
        )
        .because(rule)),
        _ => Ok(()),
    }
}

/// After `QUIT`, the connection ends within the write timeout, even if the
/// client keeps sending; and it ends cleanly (FIN, then the close), not
/// with a reset.
pub fn quit_ends_within_write_timeout(lab: &mut Lab<'_>) -> Result<(), Failure> {
    let rule = "after QUIT or ERR TIMEOUT the connection ends cleanly within the write timeout";
    let write_timeout = lab.settings().write_timeout.unwrap_or(lab.wait());
    let mut c = lab.login(&lab.name("chatty"))?;
    c.ask("QUIT", "OK QUIT")?;
    let quit = Instant::now();
    let mut writer = c.writer()?;
    let end = send_until_closed(&mut writer, quit + write_timeout + END_GRACE * 2, || false);
    let sent = "after OK QUIT, the client sent PING every 50 ms";
    match end {
        Some((_, io::ErrorKind::ConnectionReset)) => Err(Failure::new(format!(
            "{sent}; the connection was reset (RST) without a clean end of stream (FIN) first"
        ))
        .because(rule)),
        Some((closed, _)) if closed <= quit + write_timeout + END_GRACE => Ok(()),
        end => Err(Failure::new(format!(
            "{sent}; expected the connection to end within the write timeout ({}); {}",
            seconds(write_timeout),
            match end {
                Some((closed, _)) => format!("it ended after {}", seconds(closed - quit)),
                None => format!("it was still open after {}", seconds(quit.elapsed())),
            }
        ))
        .because(rule)),
    }
}

/// Writes `PING` lines until a write fails (the server has closed the
/// connection and answered the next segment with a reset), or until
/// `bound`: one every 50 ms, or a hundred at a time without pause while
/// `burst()` says so. Returns when the first write failed, and how: after
/// a clean end of stream the system says "broken pipe", without one
/// "connection reset".
pub(super) fn send_until_closed(
    writer: &mut TcpStream,
    bound: Instant,
    burst: impl Fn() -> bool,
) -> Option<(Instant, io::ErrorKind)> {
    let many = "PING\n".repeat(100);
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
