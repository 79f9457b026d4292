//! Messages: SEND and RECEIVE, texts (length, forbidden characters), LIST,
//! order, concurrency and spoofing (contract: "Commands", "Server events",
//! "Text", "Guarantees").

use std::thread;
use std::time::Instant;

use super::super::Lab;
use super::super::causes::Cause;
use super::super::probe::{self, Failure, Probe};
use super::super::rules;
use super::deliver;
use crate::lang::tr;

/// SEND delivers `RECEIVE <sender> <text>` and answers `OK SEND <name>`.
pub fn send_and_receive(lab: &mut Lab<'_>) -> Result<(), Failure> {
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
pub fn no_such_user(lab: &mut Lab<'_>) -> Result<(), Failure> {
    let (alice, bob) = (lab.name("alice"), lab.name("bob"));
    let mut a = lab.login(&alice)?;
    a.ask_error(&format!("SEND {} hi", lab.name("nobody")), "NO_SUCH_USER")?;
    a.ask_error("SEND b*b hi", "NO_SUCH_USER")?;
    lab.login(&bob)?.quit()?;
    a.ask_error(&format!("SEND {bob} hi"), "NO_SUCH_USER")
}

/// Sending to oneself works, and the RECEIVE comes before the OK.
pub fn self_send(lab: &mut Lab<'_>) -> Result<(), Failure> {
    let name = lab.name("Narcisse");
    let mut c = lab.login(&name)?;
    c.send(&format!("SEND {} miroir", name.to_lowercase()))?;
    c.expect(&format!("RECEIVE {name} miroir"))?;
    c.expect(&format!("OK SEND {name}"))
}

/// A text of 100 characters is delivered exactly, 101 is TOO_LONG, a
/// character being a Unicode scalar value: not a byte (`é` is 2, `😀` 4),
/// not a UTF-16 unit (`😀` is 2), not a grapheme (`e` + U+0301 is one
/// grapheme of 2 characters, and stays 2: no normalisation).
pub fn text_length(lab: &mut Lab<'_>) -> Result<(), Failure> {
    let (alice, bob) = (lab.name("alice"), lab.name("bob"));
    let mut a = lab.login(&alice)?;
    let mut b = lab.login(&bob)?;
    // Each piece, its characters, and the count that refuses 100 of them.
    for (unit, chars, refusing) in [
        ("a", 1, None),
        ("é", 1, Some(Cause::LengthInBytes)),
        ("😀", 1, Some(Cause::LengthInUtf16)),
        ("日", 1, None),
        ("e\u{301}", 2, None),
        ("🇫🇷", 2, None),
    ] {
        let text = unit.repeat(100 / chars);
        deliver(&mut a, &alice, &mut b, &bob, &text).map_err(|f| match refusing {
            Some(cause) => f.likely(cause),
            None => f,
        })?;
        // Counting graphemes, or normalising, lets 101 characters through.
        let over = unit.repeat(100 / chars + 1);
        a.ask_error(&format!("SEND {bob} {over}"), "TOO_LONG")
            .map_err(|f| f.likely_if(Cause::LengthInGraphemes, |_| chars == 2))?;
    }
    b.sync() // nothing else reached bob
}

/// Control characters in a text are BAD_TEXT and nothing is relayed;
/// their neighbours (no-break space, ¡) are ordinary.
pub fn text_control_characters(lab: &mut Lab<'_>) -> Result<(), Failure> {
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
        a.ask_error(&format!("SEND {bob} {text}"), "BAD_TEXT")
            .map_err(|f| forbidden_cause(f, text))?;
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
pub fn text_bidi_characters(lab: &mut Lab<'_>) -> Result<(), Failure> {
    let bob = lab.name("bob");
    let mut a = lab.login(&lab.name("alice"))?;
    let mut b = lab.login(&bob)?;
    for c in ('\u{202a}'..='\u{202e}').chain('\u{2066}'..='\u{2069}') {
        let text = format!("a{c}b");
        a.ask_error(&format!("SEND {bob} {text}"), "BAD_TEXT")
            .map_err(|f| forbidden_cause(f, &text))?;
    }
    b.sync()
}

/// The slip that lets a forbidden character of `text` through.
fn forbidden_cause(f: Failure, text: &str) -> Failure {
    let c1 = text.chars().any(|c| ('\u{7f}'..='\u{9f}').contains(&c));
    let bidi = text
        .chars()
        .any(|c| ('\u{202a}'..='\u{202e}').contains(&c) || ('\u{2066}'..='\u{2069}').contains(&c));
    let cr = text.contains('\r');
    let through = f.got_starts_with("OK SEND") || f.got_starts_with("RECEIVE");
    match (through, c1, bidi, cr) {
        (true, true, _, _) => f.likely(Cause::C0ControlsOnly),
        (true, _, true, _) => f.likely(Cause::BidiAllowed),
        (true, _, _, true) => f.likely(Cause::LoneCrEndsLine),
        _ => f,
    }
}

/// The first and last characters of the ranges a text may not hold.
const RANGE_ENDS: [char; 7] = [
    '\u{1f}', '\u{7f}', '\u{9f}', '\u{202a}', '\u{202e}', '\u{2066}', '\u{2069}',
];

/// The characters right outside those ranges, and the bidirectional marks.
const RANGE_NEIGHBOURS: [char; 10] = [
    ' ', '~', '\u{a0}', '\u{2029}', '\u{202f}', '\u{2065}', '\u{206a}', '\u{200e}', '\u{200f}',
    '\u{61c}',
];

/// The forbidden ranges end exactly where the contract says: U+001F,
/// U+007F, U+009F, U+202A, U+202E, U+2066 and U+2069 are BAD_TEXT; their
/// neighbours U+0020, U+007E, U+00A0, U+2029, U+202F, U+2065 and U+206A
/// are delivered as they are, and so are the bidirectional *marks* (LRM,
/// RLM, ALM), which are neither overrides nor isolates.
pub fn forbidden_range_ends(lab: &mut Lab<'_>) -> Result<(), Failure> {
    let (alice, bob) = (lab.name("alice"), lab.name("bob"));
    let mut a = lab.login(&alice)?;
    let mut b = lab.login(&bob)?;
    for c in RANGE_ENDS {
        let text = format!("a{c}b");
        a.ask_error(&format!("SEND {bob} {text}"), "BAD_TEXT")
            .map_err(|f| forbidden_cause(f, &text))?;
    }
    for c in RANGE_NEIGHBOURS {
        deliver(&mut a, &alice, &mut b, &bob, &format!("a{c}b"))?;
    }
    b.sync()
}

/// `OK LIST` shows exactly the users whose CONNECT succeeded, as
/// registered: not the connections that have not logged in (they count
/// as connections, not as users), not a failed login, not a user who
/// left; `OK LIST` alone when there is nobody. (The checks run on an idle
/// server: nobody else is listed.)
pub fn list_content(lab: &mut Lab<'_>) -> Result<(), Failure> {
    let (zoe, bob) = (lab.name("Zoé"), lab.name("bob"));
    let mut watcher = lab.connect(&lab.nth(1))?;
    watcher.ask("LIST", "OK LIST")?;
    let mut anonymous = lab.connect(&lab.nth(2))?;
    list(&mut watcher, &[])?;
    let mut z = lab.login(&zoe)?;
    let b = lab.login(&bob)?;
    // Failed logins do not show in the list either.
    anonymous.ask_error(&format!("CONNECT {}", zoe.to_uppercase()), "NAME_TAKEN")?;
    anonymous.ask_error("CONNECT b*b", "BAD_NAME")?;
    list(&mut watcher, &[&zoe, &bob])?;
    list(&mut z, &[&zoe, &bob])?;
    b.quit()?;
    list(&mut watcher, &[&zoe])
}

/// Sends LIST and requires exactly the names `users`, in any order, each
/// once, separated by single spaces.
fn list(c: &mut Probe, users: &[&str]) -> Result<(), Failure> {
    c.send("LIST")?;
    let line = c.expect_prefix("OK LIST")?;
    let shown = match users {
        [] => "\"OK LIST\"".to_owned(),
        users => format!("\"OK LIST {}\"", users.join(" ")),
    };
    let expected = tr!(
        c.lang,
        "{shown} (these names in any order, no other)",
        "{shown} (ces noms dans n'importe quel ordre, aucun autre)"
    );
    let mut names: Vec<&str> = match line.strip_prefix("OK LIST") {
        Some("") => Vec::new(),
        Some(rest) => match rest.strip_prefix(' ') {
            Some(rest) => rest.split(' ').collect(),
            None => return Err(c.mismatch(&expected, &line)),
        },
        None => return Err(c.mismatch(&expected, &line)),
    };
    let mut wanted = users.to_vec();
    names.sort_unstable();
    wanted.sort_unstable();
    if names != wanted {
        return Err(c.mismatch(&expected, &line));
    }
    Ok(())
}

/// 200 pipelined messages arrive in the order they were sent.
pub fn pipelined_order(lab: &mut Lab<'_>) -> Result<(), Failure> {
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
pub fn concurrent_senders(lab: &mut Lab<'_>) -> Result<(), Failure> {
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
pub fn no_spoofing(lab: &mut Lab<'_>) -> Result<(), Failure> {
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

/// A name becomes visible to others only as its `OK CONNECT` is
/// written: a sender who finds it waits behind that line, so no RECEIVE
/// reaches a user before its `OK CONNECT`. Checked from the recipient's
/// side: a sender sends `SEND` to a name, four at a time, again and again,
/// while that name logs in (a server that registers the name, then
/// writes `OK CONNECT` a moment later, loses the race); 100 logins in a
/// row, so that even a window of microseconds is found on most runs.
/// Every round has the same name and text, freed between rounds, so that
/// the round that loses the race reads the same on every run.
pub fn no_receive_before_ok_connect(lab: &mut Lab<'_>) -> Result<(), Failure> {
    const LOGINS: usize = 100;
    const BURST: usize = 4;
    const TEXT: &str = "hello";
    let (alice, bob) = (lab.name("alice"), lab.name("bob"));
    let mut a = lab.login(&alice)?;
    let wait = lab.wait();
    let burst = format!("SEND {bob} {TEXT}\n").repeat(BURST);
    for _ in 0..LOGINS {
        let mut b = lab.connect(&bob)?;
        let delivered = thread::scope(|scope| -> Result<usize, Failure> {
            let a = &mut a;
            let (bob, burst) = (&bob, &burst);
            let sender = scope.spawn(move || -> Result<usize, Failure> {
                let until = Instant::now() + wait;
                loop {
                    let delivered = sends_delivered(a, bob, burst, BURST)?;
                    if delivered > 0 {
                        return Ok(delivered);
                    }
                    if Instant::now() > until {
                        let waited = a.lang.seconds(wait);
                        return Err(Failure::new(tr!(
                            a.lang,
                            "{bob} logged in, yet SEND {bob} found nobody for {waited}",
                            "{bob} s'est identifié, mais SEND {bob} n'a trouvé personne pendant \
                             {waited}"
                        )));
                    }
                }
            });
            b.send(&format!("CONNECT {bob}"))?;
            let first = ok_connect_first(&mut b, &alice, bob, TEXT);
            let sent = sender
                .join()
                .unwrap_or_else(|_| Err(Failure::new("the sender's thread panicked")));
            first.and(sent)
        })?;
        for _ in 0..delivered {
            b.expect(&format!("RECEIVE {alice} {TEXT}"))?;
        }
        // The name is free again before the next round: the sender finds
        // nobody (a server may free it a moment after OK QUIT).
        b.quit()?;
        let until = Instant::now() + wait;
        while sends_delivered(&mut a, &bob, &format!("SEND {bob} {TEXT}\n"), 1)? > 0 {
            if Instant::now() > until {
                let waited = a.lang.seconds(wait);
                return Err(Failure::new(tr!(
                    a.lang,
                    "{bob} quit, yet SEND {bob} still found it after {waited}",
                    "{bob} est parti, mais SEND {bob} le trouvait encore au bout de {waited}"
                ))
                .because(&rules::NAME_RELEASED));
            }
        }
    }
    Ok(())
}

/// Sends `lines` (`count` SENDs to `to`) and reads their replies: how many
/// were delivered (`OK SEND`), the others finding nobody.
fn sends_delivered(a: &mut Probe, to: &str, lines: &str, count: usize) -> Result<usize, Failure> {
    let expected = format!("\"OK SEND {to}\" / \"ERR NO_SUCH_USER …\"");
    a.send_bytes(lines.as_bytes())?;
    let mut delivered = 0;
    for _ in 0..count {
        let line = a.line(&expected)?;
        if line == format!("OK SEND {to}") {
            delivered += 1;
        } else if !probe::is_error(&line, "NO_SUCH_USER") {
            return Err(a.mismatch(&expected, &line));
        }
    }
    Ok(delivered)
}

/// Requires `OK CONNECT <name>` as the first line after `CONNECT`. A
/// `RECEIVE` first is the fault this check looks for: it is told in the
/// same words every run (what came after it, and how often the sender had
/// sent, depend on the timing).
fn ok_connect_first(b: &mut Probe, sender: &str, name: &str, text: &str) -> Result<(), Failure> {
    let lang = b.lang;
    let ok = format!("OK CONNECT {name}");
    let shown_ok = probe::shown_str(&ok);
    let line = b.line(&shown_ok)?;
    let receive = format!("RECEIVE {sender} {text}");
    if line == ok {
        return Ok(());
    }
    if line != receive {
        return Err(b.mismatch(&shown_ok, &line));
    }
    let (shown_receive, send) = (
        probe::shown_str(&receive),
        probe::shown_str(&format!("SEND {name} {text}")),
    );
    let connect = probe::shown_str(&format!("CONNECT {name}"));
    Err(Failure {
        exchanges: vec![
            tr!(
                lang,
                "{sender}: sent {send}, four at a time, again and again, while {name} logged in",
                "{sender} : a envoyé {send}, quatre à la fois, encore et encore, pendant que \
                 {name} s'identifiait"
            ),
            tr!(
                lang,
                "{name}: got \"OK WELCOME …\", sent {connect}, got {shown_receive}",
                "{name} : a reçu \"OK WELCOME …\", a envoyé {connect}, a reçu {shown_receive}"
            ),
        ],
        ..Failure::new(tr!(
            lang,
            "expected {name} to get {shown_ok} before any RECEIVE; {name} got {shown_receive} \
             first",
            "{name} devait recevoir {shown_ok} avant tout RECEIVE ; {name} a reçu {shown_receive} \
             d'abord"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The contract's ranges, written out: controls are exactly what Rust's
    /// `char::is_control` says (U+0000-U+001F, U+007F-U+009F).
    fn forbidden(c: char) -> bool {
        c.is_control()
            || ('\u{202a}'..='\u{202e}').contains(&c)
            || ('\u{2066}'..='\u{2069}').contains(&c)
    }

    #[test]
    fn the_range_ends_are_what_rust_says() {
        assert!(RANGE_ENDS.iter().all(|&c| forbidden(c)));
        assert!(RANGE_NEIGHBOURS.iter().all(|&c| !forbidden(c)));
        for (inside, outside) in [('\u{1f}', ' '), ('\u{7f}', '~'), ('\u{9f}', '\u{a0}')] {
            assert!(inside.is_control() && !outside.is_control());
        }
    }

    #[test]
    fn the_length_traps_count_as_the_doc_says() {
        assert_eq!("e\u{301}".chars().count(), 2); // one grapheme, two characters
        assert_eq!("🇫🇷".chars().count(), 2);
        assert_eq!("😀".encode_utf16().count(), 2);
        assert_eq!("😀".len(), 4);
    }
}
