//! The wire format of minichat, version 1, as pure functions: no I/O here.
//!
//! This module owns every rule that can be decided from one line alone:
//! the verbs and their arguments, the error codes and the order in which
//! they are reported, what a valid name and a valid text are, and how each
//! reply is written on the wire. PROTOCOL.md ("Référence complète") explains
//! the same rules in French; each item below says which part.
//!
//! The server and the client tools both build on it; it depends on
//! nothing else in the crate. Framing (cutting the byte stream into lines of
//! at most [`MAX_LINE_BYTES`]) is the server's `framing` module; what depends
//! on the other users (NAME_TAKEN, NO_SUCH_USER) is decided by its registry.

use std::fmt;

/// The protocol's TCP port, as the exercise sets it (PROTOCOL.md, "Sur
/// quel(s) port(s)").
pub const DEFAULT_PORT: u16 = 1234;

/// How many connections a server accepts at once unless told otherwise
/// (`--max-connections`), as the exercise sets it.
pub const DEFAULT_MAX_CONNECTIONS: usize = 5;

/// The longest line a client may send, in bytes, not counting its LF or the
/// CR right before it. Longer lines get `ERR TOO_LONG` (PROTOCOL.md, "Limites et délais").
pub const MAX_LINE_BYTES: usize = 512;

/// The longest text of a `SEND`, in characters (Unicode scalar values, Rust's
/// `chars()`): 100 is accepted, 101 is `ERR TOO_LONG`.
pub const MAX_TEXT_CHARS: usize = 100;

/// The longest user name, in characters.
pub const MAX_NAME_CHARS: usize = 16;

/// Every line the server sends ends with these two bytes.
pub const LINE_END: &[u8] = b"\r\n";

/// The one-line summary sent by `HELP`.
pub const HELP_TEXT: &str = "CONNECT <name> | SEND <name> <text> | LIST | PING | HELP | QUIT";

/// The text of the greeting, after `OK WELCOME`.
pub const WELCOME_TEXT: &str = "minichat 1: CONNECT <name> to log in, HELP for commands";

/// A request from a client, once its line has passed every check that does
/// not depend on other users. The strings borrow from the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command<'a> {
    /// `CONNECT <name>`: log in under `name` (already checked by [`check_name`]).
    Connect(&'a str),
    /// `SEND <name> <text>`: send `text` (already checked by [`check_text`])
    /// to the user registered as `name` (case-insensitively).
    Send { to: &'a str, text: &'a str },
    /// `LIST`: the names of the connected users.
    List,
    /// `PING`: a no-op that proves the connection is alive and keeps it so.
    Ping,
    /// `HELP`: a one-line summary of the commands.
    Help,
    /// `QUIT`: say goodbye; the server closes the connection.
    Quit,
}

/// The error codes, each sent as `ERR <CODE> <reason>` (PROTOCOL.md,
/// "Codes d'erreur et raisons"). The reason is free text for people;
/// clients must rely on the code only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// `ERR FULL`: sent on accept when every connection slot is taken; the
    /// server then closes the connection.
    Full,
    /// `ERR TIMEOUT`: the login or idle timeout expired; the server then
    /// closes the connection.
    Timeout,
    /// `ERR SYNTAX`: a known verb with too few or too many arguments.
    Syntax,
    /// `ERR UNKNOWN_COMMAND`: the verb is none of the six.
    UnknownCommand,
    /// `ERR BAD_NAME`: `CONNECT` with a name that is not 1 to 16 letters,
    /// digits, `_` or `-`.
    BadName,
    /// `ERR NAME_TAKEN`: `CONNECT` with a name already registered,
    /// case-insensitively.
    NameTaken,
    /// `ERR ALREADY_CONNECTED`: `CONNECT` on a connection that has already
    /// logged in.
    AlreadyConnected,
    /// `ERR NOT_CONNECTED`: `SEND` before `CONNECT`.
    NotConnected,
    /// `ERR BAD_TEXT`: a line that is not UTF-8, or a text holding a control
    /// or bidirectional character.
    BadText,
    /// `ERR TOO_LONG`: a line over 512 bytes, or a text over 100 characters.
    TooLong,
    /// `ERR NO_SUCH_USER`: `SEND` to a name nobody holds, or whose delivery
    /// failed.
    NoSuchUser,
}

impl ErrorCode {
    /// The code as it is written on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Full => "FULL",
            ErrorCode::Timeout => "TIMEOUT",
            ErrorCode::Syntax => "SYNTAX",
            ErrorCode::UnknownCommand => "UNKNOWN_COMMAND",
            ErrorCode::BadName => "BAD_NAME",
            ErrorCode::NameTaken => "NAME_TAKEN",
            ErrorCode::AlreadyConnected => "ALREADY_CONNECTED",
            ErrorCode::NotConnected => "NOT_CONNECTED",
            ErrorCode::BadText => "BAD_TEXT",
            ErrorCode::TooLong => "TOO_LONG",
            ErrorCode::NoSuchUser => "NO_SUCH_USER",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refusal: `ERR <code> <reason>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub code: ErrorCode,
    pub reason: String,
}

impl Error {
    pub fn new(code: ErrorCode, reason: impl Into<String>) -> Error {
        Error {
            code,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ERR {} {}", self.code, self.reason)
    }
}

/// A line the server sends. [`Reply::encode`] writes its wire form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply<'a> {
    /// `OK WELCOME <text>`: the greeting, sent on accept.
    Welcome,
    /// `OK CONNECT <name>`: the name as it was registered.
    Connected(&'a str),
    /// `OK SEND <name>`: the recipient's name as it was registered; sent
    /// only after the `RECEIVE` line was written to the recipient's socket.
    Sent(&'a str),
    /// `OK LIST <name> <name> ...`, or `OK LIST` when nobody is connected.
    List(&'a [&'a str]),
    /// `OK PING`.
    Pong,
    /// `OK HELP <summary>`.
    Help,
    /// `OK QUIT`; the server then closes the connection.
    Bye,
    /// `RECEIVE <sender> <text>`: a message for this user, with the name
    /// the server holds for the sender (so no client can pose as another).
    Receive { from: &'a str, text: &'a str },
    /// `ERR <CODE> <reason>`.
    Error(&'a Error),
}

impl Reply<'_> {
    /// Appends the reply's line, CRLF included, to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut put = |parts: &[&str]| {
            for part in parts {
                out.extend_from_slice(part.as_bytes());
            }
        };
        match self {
            Reply::Welcome => put(&["OK WELCOME ", WELCOME_TEXT]),
            Reply::Connected(name) => put(&["OK CONNECT ", name]),
            Reply::Sent(name) => put(&["OK SEND ", name]),
            Reply::List(names) => {
                put(&["OK LIST"]);
                for name in names.iter() {
                    put(&[" ", name]);
                }
            }
            Reply::Pong => put(&["OK PING"]),
            Reply::Help => put(&["OK HELP ", HELP_TEXT]),
            Reply::Bye => put(&["OK QUIT"]),
            Reply::Receive { from, text } => put(&["RECEIVE ", from, " ", text]),
            Reply::Error(error) => put(&["ERR ", error.code.as_str(), " ", &error.reason]),
        }
        out.extend_from_slice(LINE_END);
    }
}

/// Reads one line (without its LF, and without the CR right before it) sent
/// by a client that has (`logged_in`) or has not yet logged in.
///
/// Returns `Ok(None)` for a line that is empty or only spaces (no reply),
/// `Ok(Some(command))` for a request to carry out, and `Err` with the first
/// broken rule in the contract's order: BAD_TEXT (not UTF-8),
/// UNKNOWN_COMMAND, SYNTAX, NOT_CONNECTED / ALREADY_CONNECTED, BAD_NAME,
/// BAD_TEXT (forbidden character), TOO_LONG (text). TOO_LONG for the line
/// comes first of all, from the server's framing; NAME_TAKEN and
/// NO_SUCH_USER come last, from its registry.
///
/// Fields are separated by one or more spaces (U+0020 only); spaces before
/// the verb and after the last field are skipped, except in SEND's text.
/// Verbs are ASCII case-insensitive.
pub fn parse(line: &[u8], logged_in: bool) -> Result<Option<Command<'_>>, Error> {
    let line = std::str::from_utf8(line)
        .map_err(|_| Error::new(ErrorCode::BadText, "the line is not valid UTF-8"))?;
    let (verb, rest) = split_field(line);
    if verb.is_empty() {
        return Ok(None);
    }
    let verb_is = |name: &str| verb.eq_ignore_ascii_case(name);
    let command = if verb_is("CONNECT") {
        let [name] = fields(rest).ok_or_else(|| usage("CONNECT <name>"))?;
        if logged_in {
            return Err(Error::new(
                ErrorCode::AlreadyConnected,
                "this connection is already logged in",
            ));
        }
        check_name(name)?;
        Command::Connect(name)
    } else if verb_is("SEND") {
        let (to, text) = split_field(rest);
        let text = text.trim_start_matches(' ');
        if to.is_empty() || text.is_empty() {
            return Err(usage("SEND <name> <text>"));
        }
        if !logged_in {
            return Err(Error::new(
                ErrorCode::NotConnected,
                "log in first with CONNECT <name>",
            ));
        }
        check_text(text)?;
        Command::Send { to, text }
    } else if verb_is("LIST") {
        no_arguments(rest, "LIST", Command::List)?
    } else if verb_is("PING") {
        no_arguments(rest, "PING", Command::Ping)?
    } else if verb_is("HELP") {
        no_arguments(rest, "HELP", Command::Help)?
    } else if verb_is("QUIT") {
        no_arguments(rest, "QUIT", Command::Quit)?
    } else {
        return Err(Error::new(
            ErrorCode::UnknownCommand,
            format!("unknown command {}, try HELP", shown(verb)),
        ));
    };
    Ok(Some(command))
}

/// Checks a name for `CONNECT`: 1 to [`MAX_NAME_CHARS`] characters, each `_`,
/// `-` or alphanumeric in Rust's sense (letters and digits of every script).
/// Otherwise `ERR BAD_NAME`.
pub fn check_name(name: &str) -> Result<(), Error> {
    let allowed = |c: char| c == '_' || c == '-' || c.is_alphanumeric();
    let count = name.chars().count();
    let reason = if let Some(c) = name.chars().find(|&c| !allowed(c)) {
        format!(
            "{} is not allowed in a name: use letters, digits, _ or -",
            shown_char(c)
        )
    } else if !(1..=MAX_NAME_CHARS).contains(&count) {
        format!("a name is 1 to {MAX_NAME_CHARS} characters, this one has {count}")
    } else {
        return Ok(());
    };
    Err(Error::new(ErrorCode::BadName, reason))
}

/// Checks the text of a `SEND`: no control character (U+0000–U+001F,
/// U+007F–U+009F) and no bidirectional override or isolate (U+202A–U+202E,
/// U+2066–U+2069), which could make a relayed line lie about its author:
/// `ERR BAD_TEXT`. Then at most [`MAX_TEXT_CHARS`] characters: `ERR TOO_LONG`.
pub fn check_text(text: &str) -> Result<(), Error> {
    if let Some(c) = text.chars().find(|&c| is_forbidden_in_text(c)) {
        let kind = if c.is_control() {
            "control"
        } else {
            "bidirectional"
        };
        return Err(Error::new(
            ErrorCode::BadText,
            format!("the text contains {}, a {kind} character", shown_char(c)),
        ));
    }
    let count = text.chars().count();
    if count > MAX_TEXT_CHARS {
        return Err(Error::new(
            ErrorCode::TooLong,
            format!("the text has {count} characters, the limit is {MAX_TEXT_CHARS}"),
        ));
    }
    Ok(())
}

/// The characters a text may not hold (see [`check_text`]).
pub fn is_forbidden_in_text(c: char) -> bool {
    c.is_control() // exactly U+0000–U+001F and U+007F–U+009F
        || ('\u{202A}'..='\u{202E}').contains(&c)
        || ('\u{2066}'..='\u{2069}').contains(&c)
}

/// The key under which a name is unique: `Alice`, `alice` and `ALICE` are
/// one name, and so are `Élodie` and `ÉLODIE`.
pub fn name_key(name: &str) -> String {
    name.to_lowercase()
}

/// `ERR TOO_LONG` for a line over [`MAX_LINE_BYTES`] (the framing's error).
pub fn line_too_long() -> Error {
    Error::new(
        ErrorCode::TooLong,
        format!("the line is over {MAX_LINE_BYTES} bytes"),
    )
}

/// A client's word as it is echoed in an error's reason: at most 20
/// characters, with control and bidirectional characters written as their
/// code points (a tab is `<U+0009>`), so an echo can neither break the reply
/// line nor garble the client's terminal.
pub fn shown(word: &str) -> String {
    const MAX_SHOWN_CHARS: usize = 20;
    let mut out = String::new();
    for (i, c) in word.chars().enumerate() {
        if i == MAX_SHOWN_CHARS {
            out.push('…');
            break;
        }
        if is_forbidden_in_text(c) {
            out.push_str(&format!("<U+{:04X}>", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

/// One character as an error's reason names it: `'.'`, or `<U+0009>` for
/// one that cannot be shown.
fn shown_char(c: char) -> String {
    if is_forbidden_in_text(c) || c == ' ' {
        format!("<U+{:04X}>", u32::from(c))
    } else {
        format!("'{c}'")
    }
}

/// Skips the spaces before a field, and returns the field and what follows
/// it (starting with the space that ended it, if any).
fn split_field(s: &str) -> (&str, &str) {
    let s = s.trim_start_matches(' ');
    s.split_at(s.find(' ').unwrap_or(s.len()))
}

/// Splits `rest` into exactly `N` space-separated fields, or `None` when
/// there are fewer or more.
fn fields<const N: usize>(rest: &str) -> Option<[&str; N]> {
    let mut words = rest.split(' ').filter(|word| !word.is_empty());
    let found: [&str; N] = std::array::from_fn(|_| words.next().unwrap_or(""));
    let all_present = found.iter().all(|word| !word.is_empty());
    (all_present && words.next().is_none()).then_some(found)
}

fn no_arguments<'a>(rest: &str, verb: &str, command: Command<'a>) -> Result<Command<'a>, Error> {
    match fields::<0>(rest) {
        Some([]) => Ok(command),
        None => Err(usage(verb)),
    }
}

fn usage(form: &str) -> Error {
    Error::new(ErrorCode::Syntax, format!("usage: {form}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(line: &str) -> Result<Option<Command<'_>>, ErrorCode> {
        parse(line.as_bytes(), true).map_err(|e| e.code)
    }

    fn parsed_before_login(line: &str) -> Result<Option<Command<'_>>, ErrorCode> {
        parse(line.as_bytes(), false).map_err(|e| e.code)
    }

    fn encoded(reply: Reply<'_>) -> String {
        let mut out = Vec::new();
        reply.encode(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn empty_and_blank_lines_get_no_reply() {
        assert_eq!(parsed(""), Ok(None));
        assert_eq!(parsed("     "), Ok(None));
    }

    #[test]
    fn tab_and_no_break_space_are_ordinary_characters() {
        assert_eq!(parsed("\t"), Err(ErrorCode::UnknownCommand));
        assert_eq!(parsed("\u{a0}"), Err(ErrorCode::UnknownCommand));
        assert_eq!(parsed("PING\tx"), Err(ErrorCode::UnknownCommand));
    }

    #[test]
    fn verbs_are_ascii_case_insensitive() {
        assert_eq!(parsed("ping"), Ok(Some(Command::Ping)));
        assert_eq!(parsed("PiNg"), Ok(Some(Command::Ping)));
        assert_eq!(parsed("list"), Ok(Some(Command::List)));
        assert_eq!(parsed("help"), Ok(Some(Command::Help)));
        assert_eq!(parsed("quit"), Ok(Some(Command::Quit)));
        assert_eq!(
            parsed("send bob hi"),
            Ok(Some(Command::Send {
                to: "bob",
                text: "hi"
            }))
        );
        assert_eq!(
            parsed_before_login("connect bob"),
            Ok(Some(Command::Connect("bob")))
        );
    }

    #[test]
    fn spaces_around_fields_are_skipped() {
        assert_eq!(
            parsed_before_login("   CONNECT    alice   "),
            Ok(Some(Command::Connect("alice")))
        );
        assert_eq!(parsed("  PING  "), Ok(Some(Command::Ping)));
    }

    #[test]
    fn send_text_keeps_inner_and_trailing_spaces() {
        assert_eq!(
            parsed("SEND   bob   hello   world  "),
            Ok(Some(Command::Send {
                to: "bob",
                text: "hello   world  "
            }))
        );
    }

    #[test]
    fn missing_or_extra_arguments_are_syntax_errors() {
        for line in ["CONNECT", "CONNECT al ice", "CONNECT   "] {
            assert_eq!(
                parsed_before_login(line),
                Err(ErrorCode::Syntax),
                "{line:?}"
            );
        }
        for line in [
            "SEND",
            "SEND bob",
            "SEND bob ",
            "SEND bob    ",
            "LIST x",
            "PING x",
            "HELP x",
            "QUIT now",
        ] {
            assert_eq!(parsed(line), Err(ErrorCode::Syntax), "{line:?}");
        }
    }

    #[test]
    fn unknown_verbs_are_reported_before_anything_else() {
        assert_eq!(parsed("HELLO"), Err(ErrorCode::UnknownCommand));
        assert_eq!(parsed("SENDX bob hi"), Err(ErrorCode::UnknownCommand));
        assert_eq!(
            parsed_before_login("FOO a b c"),
            Err(ErrorCode::UnknownCommand)
        );
    }

    #[test]
    fn invalid_utf8_is_bad_text_whatever_the_verb() {
        assert_eq!(
            parse(b"SEND bob \xff", true).map_err(|e| e.code),
            Err(ErrorCode::BadText)
        );
        assert_eq!(
            parse(b"\xc3(", true).map_err(|e| e.code),
            Err(ErrorCode::BadText)
        );
        assert_eq!(
            parse(b"FOO \xff", false).map_err(|e| e.code),
            Err(ErrorCode::BadText)
        );
    }

    #[test]
    fn send_before_connect_is_not_connected() {
        assert_eq!(
            parsed_before_login("SEND bob hi"),
            Err(ErrorCode::NotConnected)
        );
    }

    #[test]
    fn connect_twice_is_already_connected() {
        assert_eq!(parsed("CONNECT bob"), Err(ErrorCode::AlreadyConnected));
    }

    #[test]
    fn list_ping_help_quit_work_before_connect() {
        assert_eq!(parsed_before_login("LIST"), Ok(Some(Command::List)));
        assert_eq!(parsed_before_login("PING"), Ok(Some(Command::Ping)));
        assert_eq!(parsed_before_login("HELP"), Ok(Some(Command::Help)));
        assert_eq!(parsed_before_login("QUIT"), Ok(Some(Command::Quit)));
    }

    #[test]
    fn names_are_letters_digits_underscore_and_dash_of_any_script() {
        for name in [
            "alice",
            "Bob_2",
            "x-y",
            "Élodie",
            "日本語",
            "ÅSA",
            "a",
            "abcdefghijklmnop",
            "٣",
        ] {
            assert_eq!(check_name(name), Ok(()), "{name:?}");
        }
        for name in [
            "",
            "b*b",
            "al.ice",
            "a\u{a0}b",
            "abcdefghijklmnopq",
            "émoji😀",
            "tab\t",
        ] {
            assert_eq!(
                check_name(name).map_err(|e| e.code),
                Err(ErrorCode::BadName),
                "{name:?}"
            );
        }
    }

    #[test]
    fn refusals_name_the_character_at_fault() {
        let reason = |r: Result<(), Error>| r.unwrap_err().reason;
        assert!(reason(check_name("al.ice")).starts_with("'.' is not allowed"));
        assert!(reason(check_name("a\tb")).starts_with("<U+0009> is not allowed"));
        assert!(reason(check_name(&"x".repeat(17))).contains("this one has 17"));
        assert!(reason(check_text("a\tb")).contains("<U+0009>, a control character"));
        assert!(reason(check_text("a\u{202e}b")).contains("<U+202E>, a bidirectional"));
    }

    #[test]
    fn names_count_characters_not_bytes() {
        assert_eq!(check_name(&"é".repeat(16)), Ok(()));
        assert!(check_name(&"é".repeat(17)).is_err());
    }

    #[test]
    fn text_is_at_most_100_characters() {
        for unit in ["a", "é", "😀"] {
            assert_eq!(check_text(&unit.repeat(100)), Ok(()), "100 x {unit}");
            assert_eq!(
                check_text(&unit.repeat(101)).map_err(|e| e.code),
                Err(ErrorCode::TooLong),
                "101 x {unit}"
            );
        }
    }

    #[test]
    fn control_and_bidi_characters_are_bad_text() {
        for c in [
            '\0', '\r', '\x1b', '\x1f', '\x7f', '\u{85}', '\u{9f}', '\u{202a}', '\u{202e}',
            '\u{2066}', '\u{2069}',
        ] {
            let text = format!("a{c}b");
            assert_eq!(
                check_text(&text).map_err(|e| e.code),
                Err(ErrorCode::BadText),
                "{c:?}"
            );
        }
        for c in [
            '\u{a0}', '\u{200b}', '\u{2029}', '\u{202f}', '\u{206a}', 'é',
        ] {
            assert_eq!(check_text(&format!("a{c}b")), Ok(()), "{c:?}");
        }
    }

    #[test]
    fn errors_are_reported_in_the_contracts_order() {
        // SYNTAX before NOT_CONNECTED / ALREADY_CONNECTED.
        assert_eq!(parsed_before_login("SEND bob"), Err(ErrorCode::Syntax));
        assert_eq!(parsed("CONNECT"), Err(ErrorCode::Syntax));
        // NOT_CONNECTED before BAD_TEXT and TOO_LONG.
        assert_eq!(
            parsed_before_login("SEND bob a\x01b"),
            Err(ErrorCode::NotConnected)
        );
        // ALREADY_CONNECTED before BAD_NAME.
        assert_eq!(parsed("CONNECT b*b"), Err(ErrorCode::AlreadyConnected));
        // BAD_TEXT (character) before TOO_LONG (text).
        let long_and_bad = format!("SEND bob {}\x07", "a".repeat(150));
        assert_eq!(parsed(&long_and_bad), Err(ErrorCode::BadText));
    }

    #[test]
    fn send_to_an_unregistrable_name_is_left_to_the_registry() {
        // `SEND b*b hi` parses: the registry then answers NO_SUCH_USER.
        assert_eq!(
            parsed("SEND b*b hi"),
            Ok(Some(Command::Send {
                to: "b*b",
                text: "hi"
            }))
        );
    }

    #[test]
    fn names_are_unique_case_insensitively() {
        assert_eq!(name_key("Alice"), name_key("alice"));
        assert_eq!(name_key("Élodie"), name_key("ÉLODIE"));
        assert_ne!(name_key("alice"), name_key("alicia"));
    }

    #[test]
    fn echoed_words_cannot_break_a_reply_line() {
        assert_eq!(shown("FOO"), "FOO");
        assert_eq!(shown("a\rb\x1b"), "a<U+000D>b<U+001B>");
        assert_eq!(shown(&"x".repeat(30)), format!("{}…", "x".repeat(20)));
    }

    #[test]
    fn replies_are_written_with_crlf() {
        assert_eq!(
            encoded(Reply::Welcome),
            format!("OK WELCOME {WELCOME_TEXT}\r\n")
        );
        assert_eq!(encoded(Reply::Connected("Alice")), "OK CONNECT Alice\r\n");
        assert_eq!(encoded(Reply::Sent("Bob")), "OK SEND Bob\r\n");
        assert_eq!(encoded(Reply::List(&["a", "b"])), "OK LIST a b\r\n");
        assert_eq!(encoded(Reply::List(&[])), "OK LIST\r\n");
        assert_eq!(encoded(Reply::Pong), "OK PING\r\n");
        assert_eq!(encoded(Reply::Help), format!("OK HELP {HELP_TEXT}\r\n"));
        assert_eq!(encoded(Reply::Bye), "OK QUIT\r\n");
        assert_eq!(
            encoded(Reply::Receive {
                from: "Alice",
                text: "hi  there "
            }),
            "RECEIVE Alice hi  there \r\n"
        );
        let full = Error::new(ErrorCode::Full, "server full");
        assert_eq!(encoded(Reply::Error(&full)), "ERR FULL server full\r\n");
    }

    #[test]
    fn every_error_code_has_its_wire_name() {
        let codes = [
            (ErrorCode::Full, "FULL"),
            (ErrorCode::Timeout, "TIMEOUT"),
            (ErrorCode::Syntax, "SYNTAX"),
            (ErrorCode::UnknownCommand, "UNKNOWN_COMMAND"),
            (ErrorCode::BadName, "BAD_NAME"),
            (ErrorCode::NameTaken, "NAME_TAKEN"),
            (ErrorCode::AlreadyConnected, "ALREADY_CONNECTED"),
            (ErrorCode::NotConnected, "NOT_CONNECTED"),
            (ErrorCode::BadText, "BAD_TEXT"),
            (ErrorCode::TooLong, "TOO_LONG"),
            (ErrorCode::NoSuchUser, "NO_SUCH_USER"),
        ];
        for (code, wire) in codes {
            assert_eq!(code.to_string(), wire);
        }
    }
}
