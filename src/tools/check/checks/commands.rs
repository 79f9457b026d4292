//! Verbs, fields, each command, and which error wins when a line breaks
//! several rules (contract: "Transport and framing", "Commands").

use super::super::Lab;
use super::super::causes::Cause;
use super::super::probe::{Failure, Probe};
use super::super::rules;
use crate::lang::tr;

/// The first line is `OK WELCOME <text>`.
pub fn greeting(lab: &mut Lab<'_>) -> Result<(), Failure> {
    lab.connect(&lab.nth(1)).map(drop)
}

/// Verbs are ASCII case-insensitive: `ping` = `PING` = `PiNg`, for every
/// verb.
pub fn verbs_case_insensitive(lab: &mut Lab<'_>) -> Result<(), Failure> {
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

/// Lines whose first word becomes a verb only through Unicode case
/// mapping or normalisation (checked by the tests below; `NAME` stands for
/// a user name). QUIT's come last, since a server that takes them closes
/// the connection.
const VERB_TRAPS: [&str; 11] = [
    "pıng",     // ı (U+0131): its upper case is I
    "PİNG",     // İ (U+0130): its simple lower case is i
    "ＰＩＮＧ", // fullwidth: PING under NFKC
    "lıſt",     // ſ (U+017F): its upper case is S
    "LİST",
    "hElP\u{200b}", // a zero-width space is a character of the verb
    "ſend NAME hi",
    "SEND\u{17f} NAME hi",
    "ＣＯＮＮＥＣＴ NAME",
    "quıt",
    "QUİT",
];

/// Verbs are *ASCII* case-insensitive only: a word that becomes a verb
/// only through Unicode case mapping is UNKNOWN_COMMAND. `ſ` (U+017F) and
/// `ı` (U+0131) have `S` and `I` as `to_uppercase()` (Python's `upper()`,
/// JavaScript's `toUpperCase()`, Java's `equalsIgnoreCase`, Go's
/// `EqualFold`), `İ` (U+0130) has `i` as simple lowercase (Java's
/// `equalsIgnoreCase`), and fullwidth letters become ASCII under NFKC.
pub fn verbs_ascii_case_only(lab: &mut Lab<'_>) -> Result<(), Failure> {
    let name = lab.name("traps");
    let mut c = lab.connect(&lab.nth(1))?;
    for trap in VERB_TRAPS {
        let line = trap.replace("NAME", &name);
        c.ask_error(&line, "UNKNOWN_COMMAND")
            .map_err(|f| f.likely_if(Cause::UnicodeVerbCase, |f| f.got_starts_with("OK ")))?;
    }
    c.sync()
}

/// Fields are separated by one or more U+0020; a tab or a no-break space
/// is an ordinary character; spaces before the verb and after the last
/// field are skipped; SEND's text keeps its inner and trailing spaces.
pub fn spaces_between_fields(lab: &mut Lab<'_>) -> Result<(), Failure> {
    let name = lab.name("spaces");
    let mut c = lab.connect(&name)?;
    c.ask("   PING   ", "OK PING")?;
    // A tab and Unicode spaces, which Python's `str.split()` and `strip()`
    // take as separators, are ordinary characters.
    let split = |f: Failure| f.likely_if(Cause::SplitOnAnyWhitespace, |f| f.got_starts_with("OK "));
    for line in [
        "PING\t",
        "\u{a0}PING",
        "PING\u{2003}",
        "\u{3000}LIST",
        "HELP\u{85}",
    ] {
        c.ask_error(line, "UNKNOWN_COMMAND").map_err(split)?;
    }
    c.ask_error(&format!("CONNECT\t{name}"), "UNKNOWN_COMMAND")
        .map_err(split)?;
    c.ask(
        &format!("  CONNECT   {name}   "),
        &format!("OK CONNECT {name}"),
    )?;
    c.send(&format!("SEND   {name}    a  b  "))?;
    c.expect(&format!("RECEIVE {name} a  b  "))
        .map_err(|f| f.because(&rules::SEND_TEXT))?;
    c.expect(&format!("OK SEND {name}"))
}

/// `HELP` gets `OK HELP <one-line summary>`.
pub fn help(lab: &mut Lab<'_>) -> Result<(), Failure> {
    let mut c = lab.connect(&lab.nth(1))?;
    c.send("HELP")?;
    let line = c.expect_prefix("OK HELP ")?;
    if line["OK HELP ".len()..].trim().is_empty() {
        let expected = format!("\"OK HELP <{}>\"", lab.lang().pick("summary", "résumé"));
        return Err(c.mismatch(&expected, &line));
    }
    Ok(())
}

/// LIST, PING, HELP and QUIT work before CONNECT; SEND is NOT_CONNECTED.
pub fn commands_before_login(lab: &mut Lab<'_>) -> Result<(), Failure> {
    let mut c = lab.connect(&lab.nth(1))?;
    c.send("LIST")?;
    c.expect_prefix("OK LIST")?;
    c.sync()?;
    c.send("HELP")?;
    c.expect_prefix("OK HELP")?;
    c.ask_error(&format!("SEND {} hi", lab.name("nobody")), "NOT_CONNECTED")?;
    c.quit()
}

/// `CONNECT` logs in once; a second one is ALREADY_CONNECTED.
pub fn connect_twice(lab: &mut Lab<'_>) -> Result<(), Failure> {
    let name = lab.name("twice");
    let mut c = lab.login(&name)?;
    c.ask_error(&format!("CONNECT {name}"), "ALREADY_CONNECTED")?;
    c.ask_error(
        &format!("CONNECT {}", lab.name("other")),
        "ALREADY_CONNECTED",
    )
}

/// Each verb takes a fixed number of arguments: one missing or one too
/// many is SYNTAX.
pub fn syntax_errors(lab: &mut Lab<'_>) -> Result<(), Failure> {
    let mut c = lab.connect(&lab.nth(1))?;
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
pub fn unknown_command(lab: &mut Lab<'_>) -> Result<(), Failure> {
    let mut c = lab.connect(&lab.nth(1))?;
    for line in [
        "FROB",
        "PINGS",
        "CONNECTX y",
        "RECEIVE a b",
        "OK",
        "ÉCRIRE x",
        "\t",
    ] {
        // A server that strips a lone tab takes it for a blank line.
        c.ask_error(line, "UNKNOWN_COMMAND")
            .map_err(|f| f.likely_if(Cause::SplitOnAnyWhitespace, |f| f.silent && line == "\t"))?;
    }
    Ok(())
}

/// When a line breaks several rules, the first in the contract's order is
/// reported: TOO_LONG (line), BAD_TEXT (UTF-8), UNKNOWN_COMMAND, SYNTAX,
/// NOT_CONNECTED or ALREADY_CONNECTED, BAD_NAME, BAD_TEXT (character),
/// TOO_LONG (text), NAME_TAKEN or NO_SUCH_USER; every adjacent pair, and
/// `SEND b*b hi` is NO_SUCH_USER. BAD_NAME before NAME_TAKEN is a pair
/// that only a Unicode case mapping reaches: `i` + U+0307 is no name (a
/// combining dot is no letter), yet it is the lower case of `İ`, so it
/// is taken once `İ…` is registered.
pub fn error_precedence(lab: &mut Lab<'_>) -> Result<(), Failure> {
    let nobody = lab.name("nobody");
    let (alice, bob) = (lab.name("alice"), lab.name("bob"));
    let long = "x".repeat(101);
    let mut b = lab.login(&bob)?;
    let _dotted = lab.login(&lab.name("İ"))?;
    let dotted_lower = lab.name("i\u{307}");
    let mut anon = lab.connect(&lab.nth(3))?;
    let line = |text: &str| format!("{text}\n").into_bytes();
    let over_512 = |fill: u8| {
        let mut bytes = vec![fill; 600];
        bytes.push(b'\n');
        bytes
    };
    let mut invalid_send = format!("SEND {bob} ").into_bytes();
    invalid_send.extend_from_slice(b"caf\xe9\n");
    let before_login: [(Vec<u8>, &str, &str); 13] = [
        (
            over_512(0xff),
            "TOO_LONG",
            "TOO_LONG (line) before BAD_TEXT (UTF-8)",
        ),
        (
            over_512(b' '),
            "TOO_LONG",
            "TOO_LONG (line) before ignoring a blank line",
        ),
        (
            b"FROB \xff\n".to_vec(),
            "BAD_TEXT",
            "BAD_TEXT (UTF-8) before UNKNOWN_COMMAND",
        ),
        (
            b"SEND \xff\n".to_vec(),
            "BAD_TEXT",
            "BAD_TEXT (UTF-8) before SYNTAX",
        ),
        (
            invalid_send,
            "BAD_TEXT",
            "BAD_TEXT (UTF-8) before NOT_CONNECTED",
        ),
        (
            line("FROB a b c"),
            "UNKNOWN_COMMAND",
            "UNKNOWN_COMMAND before SYNTAX",
        ),
        (
            line(&format!("SEND {nobody}")),
            "SYNTAX",
            "SYNTAX before NOT_CONNECTED",
        ),
        (line("CONNECT b*b c"), "SYNTAX", "SYNTAX before BAD_NAME"),
        (
            line("CONNECT a\u{202e}b"),
            "BAD_NAME",
            "BAD_NAME before BAD_TEXT (character)",
        ),
        (
            line(&format!("CONNECT {dotted_lower}")),
            "BAD_NAME",
            "BAD_NAME before NAME_TAKEN",
        ),
        (
            line(&format!("SEND {nobody} \u{1}")),
            "NOT_CONNECTED",
            "NOT_CONNECTED before BAD_TEXT (character)",
        ),
        (
            line(&format!("SEND {nobody} {long}")),
            "NOT_CONNECTED",
            "NOT_CONNECTED before TOO_LONG (text)",
        ),
        (
            line(&format!("SEND {bob} hi")),
            "NOT_CONNECTED",
            "NOT_CONNECTED before delivering",
        ),
    ];
    precedence(&mut anon, &before_login)?;
    let mut a = lab.login(&alice)?;
    let logged_in: [(Vec<u8>, &str, &str); 9] = [
        (line("CONNECT"), "SYNTAX", "SYNTAX before ALREADY_CONNECTED"),
        (
            line("CONNECT b*b"),
            "ALREADY_CONNECTED",
            "ALREADY_CONNECTED before BAD_NAME",
        ),
        (
            line(&format!("CONNECT {bob}")),
            "ALREADY_CONNECTED",
            "ALREADY_CONNECTED before NAME_TAKEN",
        ),
        (
            line(&format!("SEND {nobody} \u{1}{long}")),
            "BAD_TEXT",
            "BAD_TEXT (character) before TOO_LONG (text)",
        ),
        (
            line(&format!("SEND {nobody} \u{1}")),
            "BAD_TEXT",
            "BAD_TEXT (character) before NO_SUCH_USER",
        ),
        (
            line(&format!("SEND {nobody} {long}")),
            "TOO_LONG",
            "TOO_LONG (text) before NO_SUCH_USER",
        ),
        (
            line("SEND b*b \u{1}"),
            "BAD_TEXT",
            "BAD_TEXT (character) before NO_SUCH_USER",
        ),
        (
            line(&format!("SEND b*b {long}")),
            "TOO_LONG",
            "TOO_LONG (text) before NO_SUCH_USER",
        ),
        (
            line("SEND b*b hi"),
            "NO_SUCH_USER",
            "SEND to a name that could not be registered is NO_SUCH_USER",
        ),
    ];
    precedence(&mut a, &logged_in)?;
    b.sync() // nothing reached bob
}

/// Sends each line and requires its error, naming the pair on failure.
fn precedence(c: &mut Probe, cases: &[(Vec<u8>, &str, &str)]) -> Result<(), Failure> {
    let lang = c.lang;
    for (bytes, code, pair) in cases {
        c.ask_error_bytes(bytes, code).map_err(|f| {
            let pair = lang.pick(pair.to_string(), in_french(pair));
            f.noting(&tr!(lang, "precedence: {pair}", "ordre : {pair}"))
        })?;
    }
    c.sync()
}

/// A precedence pair in French.
fn in_french(pair: &str) -> String {
    [
        (" before ", " avant "),
        ("(line)", "(ligne)"),
        ("(character)", "(caractère)"),
        ("(text)", "(texte)"),
        ("ignoring a blank line", "ignorer une ligne vide"),
        ("delivering", "la remise"),
        (
            "SEND to a name that could not be registered is NO_SUCH_USER",
            "SEND vers un nom qui ne pourrait pas être enregistré : NO_SUCH_USER",
        ),
    ]
    .iter()
    .fold(pair.to_owned(), |pair, (en, fr)| pair.replace(en, fr))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The checks' claims about Unicode, verified with Rust itself.
    #[test]
    fn the_verb_traps_match_a_verb_only_through_unicode() {
        let verbs = ["CONNECT", "SEND", "LIST", "PING", "HELP", "QUIT"];
        for trap in VERB_TRAPS {
            let word = trap.split(' ').next().unwrap_or(trap);
            assert!(
                !verbs.iter().any(|verb| word.eq_ignore_ascii_case(verb)),
                "{trap:?}"
            );
        }
        for trap in ["pıng", "lıſt", "ſend", "quıt"] {
            assert!(verbs.contains(&trap.to_uppercase().as_str()), "{trap:?}");
        }
        assert_eq!("PİNG".to_lowercase(), "pi\u{307}ng"); // full mapping: no match
        let simple: String = "PİNG"
            .chars()
            .map(|c| {
                if c == 'İ' {
                    'i'
                } else {
                    c.to_ascii_lowercase()
                }
            })
            .collect();
        assert_eq!(simple, "ping"); // Java's equalsIgnoreCase: a match
    }

    /// `i` + U+0307 is no name, and the same name as `İ`.
    #[test]
    fn the_dotted_i_pair_is_bad_and_taken() {
        assert!(!'\u{307}'.is_alphanumeric());
        assert_eq!("İ35".to_lowercase(), "i\u{307}35".to_lowercase());
        assert!(crate::protocol::check_name("İ35").is_ok());
        assert!(crate::protocol::check_name("i\u{307}35").is_err());
    }
}
