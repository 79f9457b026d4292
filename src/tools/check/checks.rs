//! The checks, one per rule of the contract that can be observed from
//! outside, as a table of (name, function). Each function drives the
//! server through a [`Lab`] and returns the first [`Failure`] it sees.
//!
//! Each check declares how many connections it holds open at once, and is
//! skipped when the server allows fewer (the connection-limit checks open
//! `--max-connections` and one more). User names are unique to each check.

use std::thread;
use std::time::{Duration, Instant};

use super::probe::{Failure, Probe, seconds, shown_str};
use super::{CheckOptions, Lab};

type CheckFn = fn(&mut Lab<'_>) -> Result<(), Failure>;

/// What a check needs to be told before it can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Needs {
    Nothing,
    /// The server's login timeout: the check lasts that long.
    LoginTimeout,
    /// The server's idle timeout: the check lasts about 2.5 times that.
    IdleTimeout,
}

/// One check of the suite.
pub struct Check {
    /// Shown after PASS or FAIL; stable, so a test or a student can grep it.
    pub name: &'static str,
    pub run: CheckFn,
    /// The most connections the check holds open at once (`None`: the
    /// limit checks, which open `--max-connections` and one more).
    connections: Option<usize>,
    needs: Needs,
}

impl Check {
    /// Why this check cannot run with these options, if it cannot: a
    /// flag it needs, or more connections than the server allows.
    pub fn cannot_run(&self, options: &CheckOptions) -> Option<String> {
        if let Some(n) = self.connections.filter(|&n| n > options.max_connections) {
            return Some(format!(
                "needs {n} connections at once, the server allows {}",
                options.max_connections
            ));
        }
        let flag = match self.needs {
            Needs::Nothing => None,
            Needs::LoginTimeout => options
                .login_timeout
                .is_none()
                .then_some("--login-timeout SECS or --timeouts SECS"),
            Needs::IdleTimeout => options
                .idle_timeout
                .is_none()
                .then_some("--idle-timeout SECS or --timeouts SECS"),
        };
        flag.map(|flag| format!("run with {flag}"))
    }
}

const fn check(name: &'static str, connections: usize, run: CheckFn) -> Check {
    Check {
        name,
        run,
        connections: Some(connections),
        needs: Needs::Nothing,
    }
}

const fn limit_check(name: &'static str, run: CheckFn) -> Check {
    Check {
        name,
        run,
        connections: None,
        needs: Needs::Nothing,
    }
}

/// Every check, in the order they run: the simplest first, so the first
/// failure a student sees is the most basic one.
pub fn all() -> Vec<Check> {
    vec![
        check("greeting", 1, greeting),
        check("replies-end-with-crlf", 1, replies_end_with_crlf),
        check("lf-and-crlf-accepted", 1, lf_and_crlf_accepted),
        check("blank-lines-ignored", 1, blank_lines_ignored),
        check("verbs-case-insensitive", 1, verbs_case_insensitive),
        check("spaces-between-fields", 1, spaces_between_fields),
        check("help", 1, help),
        check("commands-before-login", 1, commands_before_login),
        check("connect-and-already-connected", 1, connect_twice),
        check("syntax-errors", 1, syntax_errors),
        check("unknown-command", 1, unknown_command),
        check("name-characters", 2, name_characters),
        check("name-length-16-vs-17", 1, name_length),
        check("names-case-insensitive", 3, names_case_insensitive),
        check("name-released-after-quit", 1, name_released_after_quit),
        check("name-released-after-close", 2, name_released_after_close),
        check("send-and-receive", 2, send_and_receive),
        check("no-such-user", 2, no_such_user),
        check("self-send-receive-before-ok", 1, self_send),
        check("text-length-counts-characters", 2, text_length),
        check("text-control-characters", 2, text_control_characters),
        check("text-bidi-characters", 2, text_bidi_characters),
        check("invalid-utf8", 3, invalid_utf8),
        check("line-512-vs-513-bytes", 2, line_512_vs_513),
        check("line-of-1-mb", 1, line_of_1_mb),
        check("error-precedence", 3, error_precedence),
        check("list-content", 4, list_content),
        check("pipelined-order", 2, pipelined_order),
        check("concurrent-senders", 4, concurrent_senders),
        check("no-spoofing", 2, no_spoofing),
        limit_check("connection-limit", connection_limit),
        limit_check("slot-reused-after-quit", slot_reused_after_quit),
        limit_check("slot-reused-after-close", slot_reused_after_close),
        Check {
            name: "login-timeout",
            run: login_timeout,
            connections: Some(1),
            needs: Needs::LoginTimeout,
        },
        Check {
            name: "idle-timeout",
            run: idle_timeout,
            connections: Some(1),
            needs: Needs::IdleTimeout,
        },
    ]
}

/// The first line is `OK WELCOME <text>`.
fn greeting(lab: &mut Lab<'_>) -> Result<(), Failure> {
    lab.connect("connection 1").map(drop)
}

/// Every line the server sends ends with CRLF, whatever its kind.
fn replies_end_with_crlf(lab: &mut Lab<'_>) -> Result<(), Failure> {
    let name = lab.name("crlf");
    let mut c = lab.connect_raw(&name)?;
    let expect = |c: &mut Probe, prefix: &str| -> Result<(), Failure> {
        let expected = format!("{}... ending with CRLF", shown_str(prefix));
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

/// A line may end with LF or CRLF.
fn lf_and_crlf_accepted(lab: &mut Lab<'_>) -> Result<(), Failure> {
    let mut c = lab.connect("connection 1")?;
    c.send_bytes(b"PING\r\nPING\n")?;
    c.expect("OK PING")?;
    c.expect("OK PING")?;
    c.send_bytes(b"LIST\r\n")?;
    c.expect_prefix("OK LIST").map(drop)
}

/// Empty lines and lines of spaces get no reply.
fn blank_lines_ignored(lab: &mut Lab<'_>) -> Result<(), Failure> {
    let mut c = lab.connect("connection 1")?;
    c.send_bytes(b"\n\r\n   \n  \r\nPING\n")?;
    c.expect("OK PING")
}

/// `ping` = `PING` = `PiNg`, for every verb.
fn verbs_case_insensitive(lab: &mut Lab<'_>) -> Result<(), Failure> {
    let name = lab.name("verbs");
    let mut c = lab.connect(&name)?;
    c.ask("ping", "OK PING")?;
    c.ask("PiNg", "OK PING")?;
    c.send("list")?;
    c.expect_prefix("OK LIST")?;
    c.send("help")?;
    c.expect_prefix("OK HELP")?;
    c.ask(&format!("connect {name}"), &format!("OK CONNECT {name}"))?;
    c.send(&format!("sEnD {name} hi"))?;
    c.expect(&format!("RECEIVE {name} hi"))?;
    c.expect(&format!("OK SEND {name}"))?;
    c.ask("quit", "OK QUIT")
}

/// Fields are separated by one or more U+0020; a tab or a no-break space
/// is an ordinary character; SEND's text keeps its inner and trailing spaces.
fn spaces_between_fields(lab: &mut Lab<'_>) -> Result<(), Failure> {
    let name = lab.name("spaces");
    let mut c = lab.connect(&name)?;
    c.ask("   PING   ", "OK PING")?;
    c.ask_error("PING\t", "UNKNOWN_COMMAND")?;
    c.ask_error("\u{a0}PING", "UNKNOWN_COMMAND")?;
    c.ask_error(&format!("CONNECT\t{name}"), "UNKNOWN_COMMAND")?;
    c.ask(
        &format!("  CONNECT   {name}   "),
        &format!("OK CONNECT {name}"),
    )?;
    c.send(&format!("SEND   {name}    a  b  "))?;
    c.expect(&format!("RECEIVE {name} a  b  "))?;
    c.expect(&format!("OK SEND {name}"))
}

/// `HELP` gets `OK HELP <summary>`.
fn help(lab: &mut Lab<'_>) -> Result<(), Failure> {
    let mut c = lab.connect("connection 1")?;
    c.send("HELP")?;
    let line = c.expect_prefix("OK HELP ")?;
    if line["OK HELP ".len()..].trim().is_empty() {
        return Err(c.mismatch("\"OK HELP <summary>\"", &line));
    }
    Ok(())
}

/// LIST, PING, HELP and QUIT work before CONNECT; SEND is NOT_CONNECTED.
fn commands_before_login(lab: &mut Lab<'_>) -> Result<(), Failure> {
    let mut c = lab.connect("connection 1")?;
    c.send("LIST")?;
    c.expect_prefix("OK LIST")?;
    c.sync()?;
    c.send("HELP")?;
    c.expect_prefix("OK HELP")?;
    c.ask_error(&format!("SEND {} hi", lab.name("nobody")), "NOT_CONNECTED")?;
    c.quit()
}

/// `CONNECT` logs in once; a second one is ALREADY_CONNECTED.
fn connect_twice(lab: &mut Lab<'_>) -> Result<(), Failure> {
    let name = lab.name("twice");
    let mut c = lab.login(&name)?;
    c.ask_error(&format!("CONNECT {name}"), "ALREADY_CONNECTED")?;
    c.ask_error(
        &format!("CONNECT {}", lab.name("other")),
        "ALREADY_CONNECTED",
    )
}

/// One argument missing or one too many is SYNTAX, for every verb.
fn syntax_errors(lab: &mut Lab<'_>) -> Result<(), Failure> {
    let mut c = lab.connect("connection 1")?;
    for line in [
        "CONNECT",
        "CONNECT al ice",
        "LIST x",
        "PING x",
        "HELP x",
        "QUIT now",
    ] {
        c.ask_error(line, "SYNTAX")?;
    }
    c.sync()?; // still open after "QUIT now"
    let name = lab.name("syntax");
    c.ask(&format!("CONNECT {name}"), &format!("OK CONNECT {name}"))?;
    for line in ["SEND", &format!("SEND {name}"), &format!("SEND {name} ")] {
        c.ask_error(line, "SYNTAX")?;
    }
    c.ask_error(&format!("SEND {name}     "), "SYNTAX")
}

/// Any other verb is UNKNOWN_COMMAND.
fn unknown_command(lab: &mut Lab<'_>) -> Result<(), Failure> {
    let mut c = lab.connect("connection 1")?;
    for line in [
        "FROB",
        "PINGS",
        "CONNECTX y",
        "RECEIVE a b",
        "OK",
        "ÉCRIRE x",
    ] {
        c.ask_error(line, "UNKNOWN_COMMAND")?;
    }
    Ok(())
}

/// Names are letters and digits of any script, `_` and `-`.
fn name_characters(lab: &mut Lab<'_>) -> Result<(), Failure> {
    let mut c = lab.connect("connection 1")?;
    for bad in [
        "b*b",
        "a.b",
        "x!",
        "smile😀",
        "a\u{a0}b",
        "tab\tx",
        "a\u{202e}b",
    ] {
        c.ask_error(&format!("CONNECT {bad}"), "BAD_NAME")?;
    }
    drop(c);
    for good in [
        lab.name("_x-"),
        lab.name("日本"),
        lab.name("Ωμέγα"),
        lab.name("١٢٣"),
    ] {
        lab.login(&good)?.quit()?;
    }
    Ok(())
}

/// 16 characters are accepted, 17 are BAD_NAME, in characters not bytes.
fn name_length(lab: &mut Lab<'_>) -> Result<(), Failure> {
    for unit in ["n", "é"] {
        let tag_chars = lab.name("").chars().count();
        let name16 = lab.name(&unit.repeat(16 - tag_chars));
        let name17 = lab.name(&unit.repeat(17 - tag_chars));
        let mut c = lab.connect("connection 1")?;
        c.ask_error(&format!("CONNECT {name17}"), "BAD_NAME")?;
        c.ask(
            &format!("CONNECT {name16}"),
            &format!("OK CONNECT {name16}"),
        )?;
        c.quit()?;
    }
    Ok(())
}

/// `Alice` blocks `alice`, `Élodie` blocks `ÉLODIE`; SEND finds names the
/// same way; replies show names as registered.
fn names_case_insensitive(lab: &mut Lab<'_>) -> Result<(), Failure> {
    let (alice, elodie) = (lab.name("Alice"), lab.name("Élodie"));
    let mut a = lab.login(&alice)?;
    let mut e = lab.login(&elodie)?;
    let mut other = lab.connect("connection 3")?;
    for taken in [
        alice.to_lowercase(),
        alice.to_uppercase(),
        elodie.to_lowercase(),
        elodie.to_uppercase(),
    ] {
        other.ask_error(&format!("CONNECT {taken}"), "NAME_TAKEN")?;
    }
    a.send(&format!("SEND {} bonjour", lab.name("éLODIE")))?;
    e.expect(&format!("RECEIVE {alice} bonjour"))?;
    a.expect(&format!("OK SEND {elodie}"))
}

/// After QUIT, the name is free at once.
fn name_released_after_quit(lab: &mut Lab<'_>) -> Result<(), Failure> {
    let name = lab.name("leaver");
    lab.login(&name)?.quit()?;
    let mut c = lab.connect("connection 2")?;
    c.ask(&format!("CONNECT {name}"), &format!("OK CONNECT {name}"))
}

/// After an abrupt close, the name is free once the server notices
/// (retried for at most the wait).
fn name_released_after_close(lab: &mut Lab<'_>) -> Result<(), Failure> {
    let name = lab.name("vanished");
    lab.login(&name)?.hang_up();
    let mut c = lab.connect("connection 2")?;
    let deadline = Instant::now() + lab.wait();
    loop {
        c.send(&format!("CONNECT {name}"))?;
        let line = c.line(&format!("\"OK CONNECT {name}\""))?;
        if line == format!("OK CONNECT {name}") {
            return Ok(());
        }
        if !super::probe::is_error(&line, "NAME_TAKEN") || Instant::now() >= deadline {
            return Err(c.mismatch(
                &format!(
                    "\"OK CONNECT {name}\" within {} of the close",
                    seconds(lab.wait())
                ),
                &line,
            ));
        }
        thread::sleep(Duration::from_millis(20)); // pacing the retries
    }
}

/// SEND delivers `RECEIVE <sender> <text>` and answers `OK SEND <name>`.
fn send_and_receive(lab: &mut Lab<'_>) -> Result<(), Failure> {
    let (alice, bob) = (lab.name("alice"), lab.name("bob"));
    let mut a = lab.login(&alice)?;
    let mut b = lab.login(&bob)?;
    a.send(&format!("SEND {} Salut bob !", bob.to_uppercase()))?;
    b.expect(&format!("RECEIVE {alice} Salut bob !"))?;
    a.expect(&format!("OK SEND {bob}"))?;
    b.sync()?;
    a.sync()
}

/// SEND to nobody, to an impossible name, or to a user who left.
fn no_such_user(lab: &mut Lab<'_>) -> Result<(), Failure> {
    let (alice, bob) = (lab.name("alice"), lab.name("bob"));
    let mut a = lab.login(&alice)?;
    a.ask_error(&format!("SEND {} hi", lab.name("nobody")), "NO_SUCH_USER")?;
    a.ask_error("SEND b*b hi", "NO_SUCH_USER")?;
    lab.login(&bob)?.quit()?;
    a.ask_error(&format!("SEND {bob} hi"), "NO_SUCH_USER")
}

/// Sending to oneself works, and the RECEIVE comes before the OK.
fn self_send(lab: &mut Lab<'_>) -> Result<(), Failure> {
    let name = lab.name("Narcisse");
    let mut c = lab.login(&name)?;
    c.send(&format!("SEND {} miroir", name.to_lowercase()))?;
    c.expect(&format!("RECEIVE {name} miroir"))?;
    c.expect(&format!("OK SEND {name}"))
}

/// A text of 100 characters is delivered, 101 is TOO_LONG: characters,
/// not bytes (é is 2 bytes, 😀 is 4).
fn text_length(lab: &mut Lab<'_>) -> Result<(), Failure> {
    let (alice, bob) = (lab.name("alice"), lab.name("bob"));
    let mut a = lab.login(&alice)?;
    let mut b = lab.login(&bob)?;
    for unit in ["a", "é", "😀", "日"] {
        let text = unit.repeat(100);
        a.send(&format!("SEND {bob} {text}"))?;
        b.expect(&format!("RECEIVE {alice} {text}"))?;
        a.expect(&format!("OK SEND {bob}"))?;
        a.ask_error(&format!("SEND {bob} {}", unit.repeat(101)), "TOO_LONG")?;
    }
    b.sync() // nothing else reached bob
}

/// Control characters in a text are BAD_TEXT and nothing is relayed;
/// their neighbours (no-break space, ¡) are ordinary.
fn text_control_characters(lab: &mut Lab<'_>) -> Result<(), Failure> {
    let (alice, bob) = (lab.name("alice"), lab.name("bob"));
    let mut a = lab.login(&alice)?;
    let mut b = lab.login(&bob)?;
    for text in [
        "nul\u{0}",
        "a\u{1}b",
        "tab\there",
        "\u{1b}[2J",
        "del\u{7f}",
        "c1\u{85}",
        "c1\u{9f}",
        "hi\rRECEIVE x y",
    ] {
        a.ask_error(&format!("SEND {bob} {text}"), "BAD_TEXT")?;
    }
    b.sync()?;
    for text in ["a\u{a0}b", "\u{a1}ok"] {
        a.send(&format!("SEND {bob} {text}"))?;
        b.expect(&format!("RECEIVE {alice} {text}"))?;
        a.expect(&format!("OK SEND {bob}"))?;
    }
    Ok(())
}

/// Bidirectional overrides and isolates are BAD_TEXT.
fn text_bidi_characters(lab: &mut Lab<'_>) -> Result<(), Failure> {
    let bob = lab.name("bob");
    let mut a = lab.login(&lab.name("alice"))?;
    let mut b = lab.login(&bob)?;
    for c in ('\u{202a}'..='\u{202e}').chain('\u{2066}'..='\u{2069}') {
        a.ask_error(&format!("SEND {bob} a{c}b"), "BAD_TEXT")?;
    }
    b.sync()
}

/// A line that is not UTF-8 is BAD_TEXT, whatever its verb.
fn invalid_utf8(lab: &mut Lab<'_>) -> Result<(), Failure> {
    let mut anon = lab.connect("connection 1")?;
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
fn line_512_vs_513(lab: &mut Lab<'_>) -> Result<(), Failure> {
    let (alice, bob) = (lab.name("alice"), lab.name("bob"));
    let mut a = lab.login(&alice)?;
    let mut b = lab.login(&bob)?;
    let ping = |bytes: usize| format!("{}PING", " ".repeat(bytes - 4));
    a.ask(&ping(512), "OK PING")?;
    a.ask(&format!("{}\r", ping(512)), "OK PING")?;
    a.ask_error(&ping(513), "TOO_LONG")?;
    a.ask_error(&format!("{}\r", ping(513)), "TOO_LONG")?;
    a.sync()?;
    // A SEND of exactly 512 bytes, with a text of 100 four-byte characters.
    let text = "😀".repeat(100);
    let head = format!("SEND {bob}");
    let line = format!("{head}{}{text}", " ".repeat(512 - head.len() - text.len()));
    a.send(&line)?;
    b.expect(&format!("RECEIVE {alice} {text}"))?;
    a.expect(&format!("OK SEND {bob}"))?;
    a.ask_error(&format!("{line} "), "TOO_LONG")?;
    b.sync()
}

/// A line of 1 MB gets one TOO_LONG, and the connection stays usable.
fn line_of_1_mb(lab: &mut Lab<'_>) -> Result<(), Failure> {
    let name = lab.name("big");
    let mut c = lab.login(&name)?;
    let mut line = vec![b'A'; 1 << 20];
    line.push(b'\n');
    c.ask_error_bytes(&line, "TOO_LONG")?;
    c.send(&format!("SEND {name} still here"))?;
    c.expect(&format!("RECEIVE {name} still here"))?;
    c.expect(&format!("OK SEND {name}"))
}

/// When a line breaks several rules, the first in the contract's order is
/// reported.
fn error_precedence(lab: &mut Lab<'_>) -> Result<(), Failure> {
    let nobody = lab.name("nobody");
    let long = "x".repeat(101);
    let mut anon = lab.connect("connection 1")?;
    let mut too_long = vec![0xff; 600];
    too_long.push(b'\n');
    anon.ask_error_bytes(&too_long, "TOO_LONG")?; // before BAD_TEXT (UTF-8)
    anon.ask_error_bytes(b"FROB \xff\n", "BAD_TEXT")?; // before UNKNOWN_COMMAND
    anon.ask_error_bytes(b"SEND \xff\n", "BAD_TEXT")?; // before SYNTAX
    anon.ask_error("FROB a b c", "UNKNOWN_COMMAND")?; // before SYNTAX
    anon.ask_error(&format!("SEND {nobody}"), "SYNTAX")?; // before NOT_CONNECTED
    anon.ask_error("CONNECT b*b c", "SYNTAX")?; // before BAD_NAME
    anon.ask_error(&format!("SEND {nobody} \u{1}"), "NOT_CONNECTED")?; // before BAD_TEXT
    anon.ask_error(&format!("SEND {nobody} {long}"), "NOT_CONNECTED")?; // before TOO_LONG
    let (alice, bob) = (lab.name("alice"), lab.name("bob"));
    let mut b = lab.login(&bob)?;
    let mut a = lab.login(&alice)?;
    a.ask_error("CONNECT", "SYNTAX")?; // before ALREADY_CONNECTED
    a.ask_error("CONNECT b*b", "ALREADY_CONNECTED")?; // before BAD_NAME
    a.ask_error(&format!("CONNECT {bob}"), "ALREADY_CONNECTED")?; // before NAME_TAKEN
    a.ask_error(&format!("SEND {nobody} \u{1}{long}"), "BAD_TEXT")?; // before TOO_LONG
    a.ask_error(&format!("SEND {nobody} \u{1}"), "BAD_TEXT")?; // before NO_SUCH_USER
    a.ask_error(&format!("SEND {nobody} {long}"), "TOO_LONG")?; // before NO_SUCH_USER
    a.ask_error("SEND b*b \u{1}", "BAD_TEXT")?;
    a.ask_error("SEND b*b hi", "NO_SUCH_USER")?;
    b.sync()
}

/// `OK LIST` shows the connected users as registered, not anonymous
/// connections, nor users who left; `OK LIST` alone when nobody.
fn list_content(lab: &mut Lab<'_>) -> Result<(), Failure> {
    let (zoe, bob) = (lab.name("Zoé"), lab.name("bob"));
    let mut watcher = lab.connect("connection 1")?;
    let names = list(&mut watcher, &[], &[&zoe, &bob])?;
    if names.is_empty() {
        // Nobody else is connected: the exact form of an empty list.
        watcher.ask("LIST", "OK LIST")?;
    }
    let mut anonymous = lab.connect("connection 2")?;
    let mut z = lab.login(&zoe)?;
    let b = lab.login(&bob)?;
    // Failed logins do not show in the list either.
    anonymous.ask_error(&format!("CONNECT {}", zoe.to_uppercase()), "NAME_TAKEN")?;
    anonymous.ask_error("CONNECT b*b", "BAD_NAME")?;
    list(&mut watcher, &[&zoe, &bob], &["b*b"])?;
    list(&mut z, &[&zoe, &bob], &[])?;
    b.quit()?;
    list(&mut watcher, &[&zoe], &[&bob]).map(drop)
}

/// Sends LIST and checks the names: each of `present` once, none of
/// `absent`, single spaces. Returns the names (other users of a shared
/// server may appear too).
fn list(c: &mut Probe, present: &[&str], absent: &[&str]) -> Result<Vec<String>, Failure> {
    c.send("LIST")?;
    let line = c.expect_prefix("OK LIST")?;
    let expected = format!(
        "\"OK LIST <names>\" with {present:?} once each, without {absent:?}, separated by one space"
    );
    let names: Vec<String> = match line.strip_prefix("OK LIST") {
        Some("") => Vec::new(),
        Some(rest) => match rest.strip_prefix(' ') {
            Some(rest) => rest.split(' ').map(str::to_owned).collect(),
            None => return Err(c.mismatch(&expected, &line)),
        },
        None => return Err(c.mismatch(&expected, &line)),
    };
    let count = |name: &str| names.iter().filter(|n| *n == name).count();
    if names.iter().any(String::is_empty)
        || present.iter().any(|name| count(name) != 1)
        || absent.iter().any(|name| count(name) != 0)
    {
        return Err(c.mismatch(&expected, &line));
    }
    Ok(names)
}

/// 200 pipelined messages arrive in the order they were sent.
fn pipelined_order(lab: &mut Lab<'_>) -> Result<(), Failure> {
    const MESSAGES: usize = 200;
    let (alice, bob) = (lab.name("alice"), lab.name("bob"));
    let mut a = lab.login(&alice)?;
    let mut b = lab.login(&bob)?;
    let batch: String = (0..MESSAGES)
        .map(|i| format!("SEND {bob} message {i}\n"))
        .collect();
    a.send_bytes(batch.as_bytes())?;
    for i in 0..MESSAGES {
        b.expect(&format!("RECEIVE {alice} message {i}"))?;
    }
    for _ in 0..MESSAGES {
        a.expect(&format!("OK SEND {bob}"))?;
    }
    b.sync()
}

/// Three senders at once to one recipient: every line arrives whole, and
/// each sender's messages in its order.
fn concurrent_senders(lab: &mut Lab<'_>) -> Result<(), Failure> {
    const SENDERS: usize = 3;
    const MESSAGES: usize = 100;
    let bob = lab.name("bob");
    let mut b = lab.login(&bob)?;
    let names: Vec<String> = (0..SENDERS).map(|i| lab.name(&format!("s{i}x"))).collect();
    let senders = names
        .iter()
        .map(|name| lab.login(name))
        .collect::<Result<Vec<Probe>, Failure>>()?;
    thread::scope(|scope| {
        let handles: Vec<_> = senders
            .into_iter()
            .map(|mut sender| {
                let bob = &bob;
                scope.spawn(move || -> Result<(), Failure> {
                    let batch: String = (0..MESSAGES)
                        .map(|i| format!("SEND {bob} m{i} from {}\n", sender.label))
                        .collect();
                    sender.send_bytes(batch.as_bytes())?;
                    for _ in 0..MESSAGES {
                        sender.expect(&format!("OK SEND {bob}"))?;
                    }
                    Ok(())
                })
            })
            .collect();
        let mut next = vec![0; SENDERS];
        let mut received = Ok(());
        for _ in 0..SENDERS * MESSAGES {
            let line = match b.line("a RECEIVE line from one of the senders") {
                Ok(line) => line,
                Err(failure) => {
                    received = Err(failure);
                    break;
                }
            };
            let found = (0..SENDERS).find(|&sender| {
                let name = &names[sender];
                line == format!("RECEIVE {name} m{} from {name}", next[sender])
            });
            match found {
                Some(sender) => next[sender] += 1,
                None => {
                    let expected = names
                        .iter()
                        .zip(&next)
                        .map(|(name, i)| format!("\"RECEIVE {name} m{i} from {name}\""))
                        .collect::<Vec<_>>()
                        .join(" or ");
                    received = Err(b.mismatch(&expected, &line));
                    break;
                }
            }
        }
        for handle in handles {
            let sent = handle
                .join()
                .unwrap_or_else(|_| Err(Failure::new("a sender thread panicked")));
            received = received.and(sent);
        }
        received
    })?;
    b.sync()
}

/// A text that looks like a RECEIVE line arrives only as the sender's own
/// RECEIVE; a CR cannot split a line in two.
fn no_spoofing(lab: &mut Lab<'_>) -> Result<(), Failure> {
    let (mallory, victim, alice) = (lab.name("mallory"), lab.name("victim"), lab.name("alice"));
    let mut m = lab.login(&mallory)?;
    let mut v = lab.login(&victim)?;
    m.send(&format!("SEND {victim} RECEIVE {alice} trust me"))?;
    v.expect(&format!("RECEIVE {mallory} RECEIVE {alice} trust me"))?;
    m.expect(&format!("OK SEND {victim}"))?;
    m.ask_error(&format!("SEND {victim} hi\rRECEIVE {alice} x"), "BAD_TEXT")?;
    m.send(&format!("SEND {victim} hi\nRECEIVE {alice} x"))?;
    v.expect(&format!("RECEIVE {mallory} hi"))?;
    m.expect(&format!("OK SEND {victim}"))?;
    m.expect_error("UNKNOWN_COMMAND")?;
    v.sync()
}

/// Opens `max` connections (some logged in, some not, since every one
/// counts).
fn fill(lab: &mut Lab<'_>) -> Result<Vec<Probe>, Failure> {
    (0..lab.options.max_connections)
        .map(|i| match i % 2 {
            0 => lab.login(&lab.name(&format!("full{i}x"))),
            _ => lab.connect(&format!("connection {}", i + 1)),
        })
        .collect()
}

/// With `--max-connections` open, the next gets ERR FULL and is closed.
fn connection_limit(lab: &mut Lab<'_>) -> Result<(), Failure> {
    let _open = fill(lab)?;
    let label = format!("connection {}", lab.options.max_connections + 1);
    let mut extra = lab.connect_raw(&label)?;
    extra.expect_error("FULL")?;
    extra.expect_closed()
}

/// A slot freed by QUIT can be taken again.
fn slot_reused_after_quit(lab: &mut Lab<'_>) -> Result<(), Failure> {
    let mut open = fill(lab)?;
    if let Some(first) = open.pop() {
        first.quit()?;
    }
    let label = format!("connection {}", lab.options.max_connections + 1);
    lab.connect(&label).map(drop)
}

/// A slot freed by an abrupt close can be taken again, once the server
/// notices (retried for at most the wait).
fn slot_reused_after_close(lab: &mut Lab<'_>) -> Result<(), Failure> {
    let mut open = fill(lab)?;
    if let Some(first) = open.pop() {
        first.hang_up();
    }
    let label = format!("connection {}", lab.options.max_connections + 1);
    lab.connect(&label).map(drop)
}

/// A connection that does not log in gets ERR TIMEOUT after the login
/// timeout (lines do not stop that clock), then is closed.
fn login_timeout(lab: &mut Lab<'_>) -> Result<(), Failure> {
    let timeout = lab.options.login_timeout.unwrap_or_default();
    let started = Instant::now();
    let mut c = lab.connect("connection 1")?;
    c.sync()?;
    expect_timeout(lab, &mut c, started, timeout, "the login timeout")
}

/// A connection that sends no complete line gets ERR TIMEOUT after the
/// idle timeout. Every complete line restarts the clock (a PING, a blank
/// line, a refused line, an over-long line at its LF); single bytes of an
/// unfinished line do not.
fn idle_timeout(lab: &mut Lab<'_>) -> Result<(), Failure> {
    let timeout = lab.options.idle_timeout.unwrap_or_default();
    let mut c = lab.login(&lab.name("idler"))?;
    let mut over_long = vec![b'x'; 600];
    over_long.push(b'\n');
    // Lines 0.6 of the timeout apart: any two gaps together exceed it, so
    // a line that did not restart the clock lets the timeout fire.
    let steps: [(&[u8], Option<&str>); 5] = [
        (b"PING\n", Some("OK PING")),
        (b"\n", None),
        (b"FROB\n", Some("UNKNOWN_COMMAND")),
        (&over_long, Some("TOO_LONG")),
        (b"PING\n", Some("OK PING")),
    ];
    let mut last_line = Instant::now();
    for (i, (line, reply)) in steps.into_iter().enumerate() {
        let quiet = match i {
            0 => None,
            _ => c.poll_line(timeout.mul_f64(0.6))?,
        };
        if let Some(got) = quiet {
            return Err(c.mismatch(
                &format!(
                    "nothing: complete lines 0.6 x {} apart keep a connection open",
                    seconds(timeout)
                ),
                &got,
            ));
        }
        c.send_bytes(line)?;
        last_line = Instant::now();
        match reply {
            Some("OK PING") => c.expect("OK PING")?,
            Some(code) => c.expect_error(code).map(drop)?,
            None => {}
        }
    }
    // Then only bytes of an unfinished line, a quarter of the timeout apart.
    let deadline = last_line + timeout + lab.wait();
    loop {
        if let Some(line) = c.poll_line(timeout / 4)? {
            return check_timeout_line(&mut c, last_line, timeout, "the idle timeout", &line);
        }
        if Instant::now() >= deadline {
            return Err(c.mismatch(
                &format!(
                    "\"ERR TIMEOUT <reason>\" {} after the last complete line",
                    seconds(timeout)
                ),
                "(nothing)",
            ));
        }
        c.send_bytes(b"P")?;
    }
}

/// Waits for ERR TIMEOUT `timeout` after `started`, then the close.
fn expect_timeout(
    lab: &Lab<'_>,
    c: &mut Probe,
    started: Instant,
    timeout: Duration,
    which: &str,
) -> Result<(), Failure> {
    // Late by at most a fifth of the timeout (at least half a second): a
    // timeout that fires far too late is not the configured one.
    let grace = (timeout / 5)
        .max(Duration::from_millis(500))
        .min(lab.wait());
    let within = (started + timeout + grace).saturating_duration_since(Instant::now());
    match c.poll_line(within)? {
        Some(line) => check_timeout_line(c, started, timeout, which, &line),
        None => Err(c.mismatch(
            &format!(
                "\"ERR TIMEOUT <reason>\" after {which} ({})",
                seconds(timeout)
            ),
            "(nothing)",
        )),
    }
}

/// Checks that `line` is ERR TIMEOUT, not sent too early, and that the
/// connection then closes.
fn check_timeout_line(
    c: &mut Probe,
    started: Instant,
    timeout: Duration,
    which: &str,
    line: &str,
) -> Result<(), Failure> {
    let elapsed = started.elapsed();
    let expected = format!(
        "\"ERR TIMEOUT <reason>\" after {which} ({})",
        seconds(timeout)
    );
    if !super::probe::is_error(line, "TIMEOUT") {
        return Err(c.mismatch(&expected, line));
    }
    // Not too early: a tenth of the timeout is left for clock granularity.
    if elapsed < timeout.mul_f64(0.9) {
        return Err(c.mismatch(
            &expected,
            &format!("{line} (after only {})", seconds(elapsed)),
        ));
    }
    c.expect_closed()
}
