//! Rows to a Mermaid `sequenceDiagram`, for Markdown.
//!
//! How each row is drawn (PROTOCOL.md's diagrams are read with this key):
//!
//! | row | Mermaid | looks like |
//! | --- | --- | --- |
//! | a line from the client | `c1->>S: CONNECT alice` | solid arrow |
//! | a line from the server | `S-->>c1: OK CONNECT alice` | dotted arrow |
//! | an `ERR` line | the same, in a `rect` | dotted arrow on a red band |
//! | a connection accepted | `c1-)S: (connects: 1/5 slots taken)` | open arrowhead |
//! | a connection's end | `S-xc1: (closes the connection after QUIT)` | cross, from the side that ends it |
//! | rows repeated 3 times or more | `loop 40 times` | a frame around one copy |
//!
//! The clients stand on both sides of the server, the first to appear on
//! its left, the second on its right, and so on outwards. A client's box
//! shows its name over its address.
//!
//! **Escaping.** A client may send any text, and Mermaid reads some of it:
//! `;` and `#` end a message, `<br>` breaks a line and other tags are
//! markup, `%%{...}%%` is a directive, a leading `wrap:` an option, and
//! spaces at either end or in a row are lost. [`escape`] writes each of
//! these as an entity (`#59;`), which Mermaid shows as the character.

use std::fmt::Write;

use super::event::Direction;
use super::scene::{LineKind, Participant, Party, Row, SERVER, Scene};
use super::words::Lang;

/// The band behind an `ERR` line.
const ERROR_BAND: &str = "rgb(255, 226, 226)";

/// Rows repeated at least this many times in a row are drawn once, in a
/// `loop` frame that says how many times.
const MIN_REPEATS: usize = 3;

/// The longest group of rows that a loop repeats (`SEND`, `RECEIVE`,
/// `OK SEND`: three).
const MAX_LOOP_ROWS: usize = 4;

/// The Mermaid text of `rows`, drawn with the participants of `scene`.
pub fn render(scene: &Scene, rows: &[Row], lang: Lang) -> String {
    let order = lifelines(rows);
    let mut out = String::from("sequenceDiagram\n");
    for &party in &order {
        let label = match party {
            SERVER => escape(lang.server()),
            _ => box_label(scene.participant(party)),
        };
        let _ = writeln!(out, "    participant {} as {label}", id(party));
    }
    let drawing = Drawing {
        order: &order,
        lang,
    };
    let mut i = 0;
    while i < rows.len() {
        match repeated(&rows[i..]) {
            Some((block, times)) => {
                let _ = writeln!(out, "    loop {}", escape(&lang.times(times)));
                for row in &rows[i..i + block] {
                    drawing.row(&mut out, row, "        ");
                }
                out.push_str("    end\n");
                i += block * times;
            }
            None => {
                drawing.row(&mut out, &rows[i], "    ");
                i += 1;
            }
        }
    }
    out
}

/// What every row needs to be drawn.
struct Drawing<'a> {
    /// The lifelines from left to right.
    order: &'a [Party],
    lang: Lang,
}

impl Drawing<'_> {
    fn row(&self, out: &mut String, row: &Row, indent: &str) {
        let lang = self.lang;
        let _ = match row {
            Row::Opened { who, open, max } => writeln!(
                out,
                "{indent}{}-)S: {}",
                id(*who),
                escape(&lang.opened(*open, *max))
            ),
            Row::Line {
                who,
                direction,
                kind,
                text,
            } => {
                let shown = lang.line(text);
                let arrow = match direction {
                    Direction::In => format!("{}->>S", id(*who)),
                    Direction::Out => format!("S-->>{}", id(*who)),
                };
                match kind {
                    LineKind::Error => writeln!(
                        out,
                        "{indent}rect {ERROR_BAND}\n{indent}    {arrow}: {}\n{indent}end",
                        escape(&shown)
                    ),
                    _ => writeln!(out, "{indent}{arrow}: {}", escape(&shown)),
                }
            }
            Row::LoggedIn { .. } => Ok(()), // the box shows the name
            Row::End { who, why } => {
                let arrow = match why.by_client() {
                    true => format!("{}-xS", id(*who)),
                    false => format!("S-x{}", id(*who)),
                };
                writeln!(out, "{indent}{arrow}: {}", escape(&lang.end(why)))
            }
            Row::Note { over, text } => {
                writeln!(
                    out,
                    "{indent}Note over {}: {}",
                    self.span(over),
                    escape(text)
                )
            }
            Row::Missing { count } => writeln!(
                out,
                "{indent}Note over {}: {}",
                self.span(self.order),
                escape(&lang.missing(*count))
            ),
        };
    }

    /// `A,B`: the leftmost and rightmost of `over`, or the server alone.
    fn span(&self, over: &[Party]) -> String {
        let mut shown = self.order.iter().filter(|party| over.contains(party));
        match (shown.next(), shown.next_back()) {
            (Some(&first), Some(&last)) => format!("{},{}", id(first), id(last)),
            (Some(&only), None) => id(only),
            _ => id(SERVER),
        }
    }
}

/// The participants that `rows` draw, from left to right: the server in
/// the middle, clients on alternate sides in the order they appear.
fn lifelines(rows: &[Row]) -> Vec<Party> {
    let mut seen: Vec<Party> = Vec::new();
    for row in rows {
        let parties = match row {
            Row::Opened { who, .. }
            | Row::Line { who, .. }
            | Row::LoggedIn { who }
            | Row::End { who, .. } => std::slice::from_ref(who),
            Row::Note { over, .. } => over.as_slice(),
            Row::Missing { .. } => &[],
        };
        for &party in parties {
            if !seen.contains(&party) {
                seen.push(party);
            }
        }
    }
    let left = seen.iter().step_by(2).rev();
    let right = seen.iter().skip(1).step_by(2);
    left.copied()
        .chain([SERVER])
        .chain(right.copied())
        .collect()
}

/// If `rows` begins with a group of rows repeated [`MIN_REPEATS`] times or
/// more, the group's length and how many times it comes (the longest run,
/// the shortest group on a tie).
fn repeated(rows: &[Row]) -> Option<(usize, usize)> {
    (1..=MAX_LOOP_ROWS)
        .filter(|&block| block <= rows.len())
        .map(|block| {
            let first = &rows[..block];
            let times = rows
                .chunks_exact(block)
                .take_while(|group| *group == first)
                .count();
            (block, times)
        })
        .filter(|&(_, times)| times >= MIN_REPEATS)
        .max_by_key(|&(block, times)| (block * times, std::cmp::Reverse(block)))
}

/// The Mermaid id of a participant.
fn id(party: Party) -> String {
    match party {
        SERVER => "S".to_owned(),
        n => format!("c{n}"),
    }
}

/// A client's box: its name over its address, or whichever is known.
fn box_label(participant: &Participant) -> String {
    match (&participant.name, &participant.addr) {
        (Some(name), Some(addr)) => format!("{}<br/>{}", escape(name), escape(addr)),
        (Some(label), None) | (None, Some(label)) => escape(label),
        (None, None) => "?".to_owned(),
    }
}

/// `text` as Mermaid shows it exactly (see the module doc).
pub fn escape(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    for (i, &c) in chars.iter().enumerate() {
        let before = i.checked_sub(1).map(|j| chars[j]);
        let after = chars.get(i + 1).copied();
        match c {
            ';' | '#' | '&' | '<' | '>' => {
                let _ = write!(out, "#{};", u32::from(c));
            }
            // `%%` begins a comment or a directive.
            '%' if before == Some('%') || after == Some('%') => out.push_str("#37;"),
            // Mermaid trims the text and a browser folds runs of spaces:
            // a no-break space shows each of those.
            ' ' if before.is_none_or(|b| b == ' ') || after.is_none() => out.push_str("#160;"),
            // A message that begins with `wrap:` or `nowrap:` sets an option.
            _ if i == 0 && starts_with_option(text) => {
                let _ = write!(out, "#{};", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out
}

fn starts_with_option(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    lower.starts_with("wrap:") || lower.starts_with("nowrap:")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagram::event::parse;

    fn diagram(lines: &[&str]) -> String {
        let mut scene = Scene::default();
        let mut rows = Vec::new();
        for line in lines {
            scene.feed(&parse(line).unwrap(), &mut rows);
        }
        render(&scene, &rows, Lang::En)
    }

    #[test]
    fn every_kind_of_row_is_drawn() {
        let t = "2026-11-24T16:20:05Z";
        let text = diagram(&[
            &format!("{t} 127.0.0.1:5 accepted (1/5 connections)"),
            &format!("{t} 127.0.0.1:5 < OK WELCOME hi"),
            &format!("{t} 127.0.0.1:5 > CONNECT alice"),
            &format!("{t} 127.0.0.1:5 logged in as alice (1 logged in)"),
            &format!("{t} alice < OK CONNECT alice"),
            &format!("{t} 127.0.0.1:6 accepted (2/5 connections)"),
            &format!("{t} 127.0.0.1:6 > SEND bob hi"),
            &format!("{t} 127.0.0.1:6 < ERR NOT_CONNECTED log in first"),
            &format!("{t} 127.0.0.1:6 disconnected (connection closed)"),
            "note over alice: a note",
            &format!("{t} 2 log lines dropped"),
            &format!("{t} alice timed out (idle)"),
        ]);
        assert_eq!(
            text,
            "sequenceDiagram
    participant c1 as alice<br/>127.0.0.1:5
    participant S as server
    participant c2 as 127.0.0.1:6
    c1-)S: (connects: 1/5 slots taken)
    S-->>c1: OK WELCOME hi
    c1->>S: CONNECT alice
    S-->>c1: OK CONNECT alice
    c2-)S: (connects: 2/5 slots taken)
    c2->>S: SEND bob hi
    rect rgb(255, 226, 226)
        S-->>c2: ERR NOT_CONNECTED log in first
    end
    c2-xS: (closes the connection)
    Note over c1: a note
    Note over c1,c2: (2 log lines lost here)
    S-xc1: (closes the connection: silent too long)
"
        );
    }

    #[test]
    fn repeated_rows_are_drawn_once_in_a_loop() {
        let t = "2026-11-24T16:20:05Z";
        let mut lines = Vec::new();
        for _ in 0..40 {
            lines.push(format!("{t} alice > SEND bob x"));
            lines.push(format!("{t} bob < RECEIVE alice x"));
            lines.push(format!("{t} alice < OK SEND bob"));
        }
        lines.push(format!("{t} alice > PING"));
        lines.push(format!("{t} alice > PING"));
        let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
        let text = diagram(&lines);
        assert!(
            text.ends_with(
                "    loop 40 times
        c1->>S: SEND bob x
        S-->>c2: RECEIVE alice x
        S-->>c1: OK SEND bob
    end
    c1->>S: PING
    c1->>S: PING
"
            ),
            "{text}"
        );
    }

    #[test]
    fn what_mermaid_would_read_is_escaped() {
        assert_eq!(
            escape("SEND bob a;b #1 <b>hi</b> & co"),
            "SEND bob a#59;b #35;1 #60;b#62;hi#60;/b#62; #38; co"
        );
        assert_eq!(
            escape("100% sure %%{init}%%"),
            "100% sure #37;#37;{init}#37;#37;"
        );
        assert_eq!(escape(" SEND bob   hi "), "#160;SEND bob #160;#160;hi#160;");
        assert_eq!(escape("wrap:x"), "#119;rap:x");
        assert_eq!(escape("NoWrap:x"), "#78;oWrap:x");
        assert_eq!(
            escape("SEND bob wrap: \"é\" 😀 -->> end"),
            "SEND bob wrap: \"é\" 😀 --#62;#62; end"
        );
    }
}
