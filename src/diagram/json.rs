//! Rows as JSON, for the live view's page (`src/server/watch/`), which
//! draws them itself. One object per message, each with a `type`:
//!
//! ```text
//! {"type":"party","id":1,"label":"alice","addr":"127.0.0.1:40312","open":true}
//! {"type":"row","time":"16:20:06","kind":"line","who":1,"dir":"in","style":"command","text":"CONNECT alice"}
//! {"type":"row","time":"16:20:09","kind":"end","who":1,"by":"server","text":"(closes the connection after QUIT)"}
//! {"type":"row","time":"16:20:09","kind":"note","over":[1],"text":"..."}
//! {"type":"slots","open":2,"max":5,"holders":[1,2]}
//! ```
//!
//! The words in parentheses are the same as the Mermaid diagram's
//! ([`Lang`]); `time` is the log's, to the second.

use std::fmt::Write;

use super::event::Direction;
use super::scene::{LineKind, Participant, Party, Row, Scene};
use super::words::Lang;

/// A participant as it is now: `{"type":"party",...}`.
pub fn party(id: Party, participant: &Participant) -> String {
    let addr = participant.addr.as_deref().map_or("null".into(), string);
    format!(
        r#"{{"type":"party","id":{id},"label":{},"addr":{addr},"open":{}}}"#,
        string(participant.label()),
        participant.open
    )
}

/// The slots taken and who holds them: `{"type":"slots",...}`.
pub fn slots(scene: &Scene) -> String {
    let holders: Vec<String> = scene.open().map(|(id, _)| id.to_string()).collect();
    let max = scene
        .max_connections()
        .map_or("null".into(), |max| max.to_string());
    format!(
        r#"{{"type":"slots","open":{},"max":{max},"holders":[{}]}}"#,
        holders.len(),
        holders.join(",")
    )
}

/// One row: `{"type":"row",...}`; `time` is the log's timestamp, of which
/// the time of day is kept.
pub fn row(row: &Row, time: Option<&str>, lang: Lang) -> String {
    let mut out = String::from(r#"{"type":"row""#);
    if let Some(clock) = time.and_then(|t| t.get(11..19)) {
        let _ = write!(out, r#","time":{}"#, string(clock));
    }
    let _ = match row {
        Row::Opened { who, open, max } => write!(
            out,
            r#","kind":"opened","who":{who},"text":{}"#,
            string(&lang.opened(*open, *max))
        ),
        Row::Line {
            who,
            direction,
            kind,
            text,
        } => {
            let dir = match direction {
                Direction::In => "in",
                Direction::Out => "out",
            };
            let style = match kind {
                LineKind::Command => "command",
                LineKind::Reply => "reply",
                LineKind::Error => "error",
                LineKind::Receive => "receive",
            };
            let shown = lang.line(text);
            write!(
                out,
                r#","kind":"line","who":{who},"dir":"{dir}","style":"{style}","text":{}"#,
                string(&shown)
            )
        }
        Row::LoggedIn { who } => write!(out, r#","kind":"login","who":{who}"#),
        Row::End { who, why } => write!(
            out,
            r#","kind":"end","who":{who},"by":"{}","text":{}"#,
            if why.by_client() { "client" } else { "server" },
            string(&lang.end(why))
        ),
        Row::Note { over, text } => {
            let over: Vec<String> = over.iter().map(Party::to_string).collect();
            write!(
                out,
                r#","kind":"note","over":[{}],"text":{}"#,
                over.join(","),
                string(text)
            )
        }
        Row::Missing { count } => write!(
            out,
            r#","kind":"note","over":[],"text":{}"#,
            string(&lang.missing(*count))
        ),
    };
    out.push('}');
    out
}

/// A JSON string literal. Besides `"`, `\` and control characters, `<`,
/// `>` and `&` are escaped too, and U+2028 and U+2029: the text is safe
/// wherever a page may put it.
pub fn string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() || matches!(c, '<' | '>' | '&' | '\u{2028}' | '\u{2029}') => {
                let mut units = [0; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagram::scene::Why;

    #[test]
    fn strings_are_escaped_for_json_and_for_a_page() {
        assert_eq!(
            string("a\"b\\c\n\u{1b}<script>&\u{2028}é😀"),
            r#""a\"b\\c\n\u001b\u003cscript\u003e\u0026\u2028é😀""#
        );
    }

    #[test]
    fn rows_are_objects_with_their_kind() {
        let line = Row::Line {
            who: 2,
            direction: Direction::Out,
            kind: LineKind::Error,
            text: "ERR SYNTAX usage: LIST".into(),
        };
        assert_eq!(
            row(&line, Some("2026-11-24T16:20:05Z"), Lang::En),
            r#"{"type":"row","time":"16:20:05","kind":"line","who":2,"dir":"out","style":"error","text":"ERR SYNTAX usage: LIST"}"#
        );
        let end = Row::End {
            who: 1,
            why: Why::ClosedByClient,
        };
        assert_eq!(
            row(&end, None, Lang::En),
            r#"{"type":"row","kind":"end","who":1,"by":"client","text":"(closes the connection)"}"#
        );
    }
}
