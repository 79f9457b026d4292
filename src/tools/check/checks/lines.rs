//! Lines: their ends, their length, blank ones, UTF-8 (contract:
//! "Transport and framing").

use std::time::Duration;

use super::super::Lab;
use super::super::causes::Cause;
use super::super::probe::{self, Failure, Probe, shown_str};
use super::super::rules;
use crate::lang::tr;

/// Every line the server sends ends with CRLF, whatever its kind.
pub fn replies_end_with_crlf(lab: &mut Lab<'_>) -> Result<(), Failure> {
    let name = lab.name("crlf");
    let mut c = lab.connect_raw(&name)?;
    let expect = |c: &mut Probe, prefix: &str| -> Result<(), Failure> {
        let shown = shown_str(prefix);
        let expected = tr!(
            c.lang,
            "{shown}… ending with CRLF",
            "{shown}… terminée par CRLF"
        );
        let line = c.line_crlf(&expected)?;
        match line.starts_with(prefix) {
            true => Ok(()),
            false => Err(c.mismatch(&expected, &line)),
        }
    };
    expect(&mut c, "OK WELCOME")?;
    for (line, reply) in [
        ("PING", "OK PING"),
        ("LIST", "OK LIST"),
        ("HELP", "OK HELP"),
        ("FROB", "ERR UNKNOWN_COMMAND"),
        (&format!("CONNECT {name}"), "OK CONNECT"),
    ] {
        c.send(line)?;
        expect(&mut c, reply)?;
    }
    c.send(&format!("SEND {name} hi"))?;
    expect(&mut c, "RECEIVE")?;
    expect(&mut c, "OK SEND")?;
    c.send("QUIT")?;
    expect(&mut c, "OK QUIT")
}

/// A line ends with LF; one CR right before the LF is dropped, so CRLF
/// and LF are both accepted. Any other CR (a second one before the LF,
/// one inside the line) is an ordinary character.
pub fn lf_and_crlf_accepted(lab: &mut Lab<'_>) -> Result<(), Failure> {
    let name = lab.name("cr");
    let mut c = lab.connect(&lab.nth(1))?;
    c.send_bytes(b"PING\r\nPING\n")?;
    c.expect("OK PING")?;
    c.expect("OK PING")?;
    c.send_bytes(b"LIST\r\n")?;
    c.expect_prefix("OK LIST")?;
    let lines = [&b"PING\r\r\n"[..], b"\rPING\n", b"PI\rNG\n"];
    for line in lines {
        if let Err(f) = c.ask_error_bytes(line, "UNKNOWN_COMMAND") {
            return Err(cr_taken_away(&mut c, f));
        }
    }
    c.ask(&format!("CONNECT {name}\r"), &format!("OK CONNECT {name}"))?;
    let send = format!("SEND {name} hi\r\r\n");
    if let Err(f) = c.ask_error_bytes(send.as_bytes(), "BAD_TEXT") {
        return Err(cr_taken_away(&mut c, f));
    }
    // `PI<CR>NG` read as two lines gets two replies: the second shows here.
    c.sync().map_err(|f| cr_taken_away(&mut c, f))
}

/// The likely cause of a line with a CR in it taken for a command (or a
/// text without it): a line reader that ends lines at a lone CR or strips
/// every CR, or fields split on any whitespace (CR is whitespace to
/// Python's `str.split()`). One line more tells them apart: `PING<TAB>`
/// is `OK PING` only to the split.
fn cr_taken_away(c: &mut Probe, f: Failure) -> Failure {
    if !(f.got_starts_with("OK ") || f.got_starts_with("RECEIVE ")) {
        return f;
    }
    let split = c.aside(|c| {
        c.send("PING\t")?;
        // The reply to PING<TAB>, past what the line that failed still
        // had coming (the OK SEND after a RECEIVE).
        for _ in 0..3 {
            let line = c.line("\"OK PING\"")?;
            if line == "OK PING" || probe::is_error(&line, "UNKNOWN_COMMAND") {
                return Ok(line == "OK PING");
            }
        }
        Ok::<bool, Failure>(false)
    });
    match split {
        Ok(true) => f.likely(Cause::SplitOnAnyWhitespace),
        _ => f.likely(Cause::LoneCrEndsLine),
    }
}

/// Empty lines and lines of spaces get no reply.
pub fn blank_lines_ignored(lab: &mut Lab<'_>) -> Result<(), Failure> {
    let mut c = lab.connect(&lab.nth(1))?;
    c.send_bytes(b"\n\r\n   \n  \r\nPING\n")?;
    c.expect("OK PING")
}

/// A line that is not UTF-8 is BAD_TEXT, whatever its verb.
pub fn invalid_utf8(lab: &mut Lab<'_>) -> Result<(), Failure> {
    let mut anon = lab.connect(&lab.nth(1))?;
    anon.ask_error_bytes(b"CONNECT caf\xe9\n", "BAD_TEXT")?;
    anon.ask_error_bytes(b"\xff\xfe\n", "BAD_TEXT")?;
    let bob = lab.name("bob");
    let mut a = lab.login(&lab.name("alice"))?;
    let mut b = lab.login(&bob)?;
    for text in [
        &b"caf\xe9"[..],
        b"\xc0\xaf",
        b"\xed\xa0\x80",
        b"\xf0\x9f\x98",
    ] {
        let mut line = format!("SEND {bob} ").into_bytes();
        line.extend_from_slice(text);
        line.push(b'\n');
        a.ask_error_bytes(&line, "BAD_TEXT")?;
    }
    a.ask_error_bytes(b"PING \xff\n", "BAD_TEXT")?;
    a.ask_error_bytes(b"FROB \xff\n", "BAD_TEXT")?;
    b.sync()
}

/// 512 bytes before the terminator are accepted (the CR of a CRLF does
/// not count); 513 are TOO_LONG, and the connection stays usable.
pub fn line_512_vs_513(lab: &mut Lab<'_>) -> Result<(), Failure> {
    let (alice, bob) = (lab.name("alice"), lab.name("bob"));
    let mut a = lab.login(&alice)?;
    let mut b = lab.login(&bob)?;
    let ping = |bytes: usize| format!("{}PING", " ".repeat(bytes - 4));
    a.ask(&ping(512), "OK PING")?;
    // (the CR of a CRLF does not count)
    a.ask(&format!("{}\r", ping(512)), "OK PING")?;
    a.ask_error(&ping(513), "TOO_LONG")?;
    a.ask_error(&format!("{}\r", ping(513)), "TOO_LONG")?;
    a.sync()?;
    // A SEND of exactly 512 bytes, with a text of 100 four-byte characters.
    let text = "😀".repeat(100);
    let head = format!("SEND {bob}");
    let line = format!("{head}{}{text}", " ".repeat(512 - head.len() - text.len()));
    a.send(&line)?;
    b.expect(&format!("RECEIVE {alice} {text}"))
        .map_err(|f| f.because(&rules::TEXT_COUNT))?;
    a.expect(&format!("OK SEND {bob}"))?;
    a.ask_error(&format!("{line} "), "TOO_LONG")?;
    b.sync()
}

/// A line of 1 MB gets one TOO_LONG (it is discarded as it arrives), and
/// the connection stays usable.
pub fn line_of_1_mb(lab: &mut Lab<'_>) -> Result<(), Failure> {
    let name = lab.name("big");
    let mut c = lab.login(&name)?;
    let mut line = vec![b'A'; 1 << 20];
    line.push(b'\n');
    c.ask_error_bytes(&line, "TOO_LONG")?;
    c.send(&format!("SEND {name} still here"))?;
    c.expect(&format!("RECEIVE {name} still here"))?;
    c.expect(&format!("OK SEND {name}"))
}

/// A line over 512 bytes gets exactly one `ERR TOO_LONG`, when its LF
/// arrives: not before (nothing while its bytes keep coming), not twice.
pub fn too_long_once_at_the_lf(lab: &mut Lab<'_>) -> Result<(), Failure> {
    /// How long the server is given to answer too early: it answers
    /// every line within milliseconds.
    const QUIET: Duration = Duration::from_millis(300);
    let mut c = lab.connect(&lab.nth(1))?;
    let nothing = lab.lang().pick(
        "nothing before the LF of the over-long line",
        "rien avant le LF de la ligne trop longue",
    );
    for part in [[b'A'; 600], [b'B'; 600]] {
        c.send_bytes(&part)?;
        if let Some(line) = c.poll_line(QUIET)? {
            return Err(c.mismatch(nothing, &line));
        }
    }
    c.send_bytes(b"\n")?;
    c.expect_error("TOO_LONG")?;
    c.sync()
}
