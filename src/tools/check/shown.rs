//! How the checker writes what went over the wire: in PROTOCOL.md's
//! notation, never in a programming language's. A line is quoted; a
//! character a reader could not see or tell apart (a control, a space
//! other than U+0020, a bidirectional or invisible formatting character,
//! a combining accent) is written `<U+0085>`, as PROTOCOL.md writes it;
//! a byte that is not UTF-8 is `<0xE9>`; a run of one piece repeated is
//! `100 × "😀"`, so that a long line reads as what it is made of.

use std::time::Duration;

use crate::lang::Lang;

/// At most this many characters of literal text are shown.
const MAX_SHOWN_CHARS: usize = 120;

/// A repeated piece is written `N × "piece"` from this many characters on.
const MIN_RUN_CHARS: usize = 12;

/// The longest piece a run is looked for with (`FROB after quit<U+000A>`).
const MAX_PIECE_CHARS: usize = 24;

/// Only this much of a long input is read: the rest is counted, not shown
/// (a flood of a thousand lines costs no more than one).
const MAX_READ_BYTES: usize = 4096;

/// `<U+0085>` for a character a reader could not see or tell apart.
pub fn notation(c: char) -> Option<String> {
    let hidden = c.is_control()
        || (c.is_whitespace() && c != ' ')
        || matches!(c,
            '\u{ad}' | '\u{34f}' | '\u{61c}' | '\u{180e}' | '\u{feff}'
            | '\u{300}'..='\u{36f}'
            | '\u{200b}'..='\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2060}'..='\u{2069}'
            | '\u{fe00}'..='\u{fe0f}');
    hidden.then(|| format!("<U+{:04X}>", c as u32))
}

/// A line as a failure shows it (see the module's header).
pub fn shown_str(line: &str) -> String {
    shown_bytes(line.as_bytes())
}

/// Bytes as a failure shows them: as [`shown_str`], with `<0xE9>` for a
/// byte that is not UTF-8.
pub fn shown_bytes(bytes: &[u8]) -> String {
    let mut pieces = Vec::new();
    // What is read ends before a character, not inside it.
    let mut end = bytes.len().min(MAX_READ_BYTES);
    while end < bytes.len() && end > 0 && bytes[end] & 0b1100_0000 == 0b1000_0000 {
        end -= 1;
    }
    for chunk in bytes[..end].utf8_chunks() {
        pieces.extend(chunk.valid().chars().map(Piece::Char));
        pieces.extend(chunk.invalid().iter().map(|&b| Piece::Byte(b)));
    }
    shown_pieces(&pieces, bytes.len())
}

/// A character, or a byte that is not part of one.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Piece {
    Char(char),
    Byte(u8),
}

impl Piece {
    fn write(self, out: &mut String) {
        match self {
            Piece::Char(c) => match notation(c) {
                Some(code) => out.push_str(&code),
                None => out.push(c),
            },
            Piece::Byte(b) => out.push_str(&format!("<0x{b:02X}>")),
        }
    }
}

fn shown_pieces(pieces: &[Piece], bytes: usize) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut literal = String::new();
    let mut literal_chars = 0;
    let mut cut = bytes > MAX_READ_BYTES;
    let mut i = 0;
    while i < pieces.len() {
        if let Some((unit, count)) = run_at(&pieces[i..]) {
            if !literal.is_empty() {
                parts.push(format!("\"{}\"", std::mem::take(&mut literal)));
            }
            let mut piece = String::new();
            pieces[i..i + unit].iter().for_each(|p| p.write(&mut piece));
            parts.push(format!("{count} × \"{piece}\""));
            i += unit * count;
            continue;
        }
        if literal_chars == MAX_SHOWN_CHARS {
            cut = true;
            literal.push('…');
            break;
        }
        pieces[i].write(&mut literal);
        literal_chars += 1;
        i += 1;
    }
    if !literal.is_empty() || parts.is_empty() {
        parts.push(format!("\"{literal}\""));
    }
    let shown = parts.join(" + ");
    match cut {
        true => format!("{shown}… ({bytes} bytes)"),
        false => shown,
    }
}

/// The shortest piece that repeats from the start of `pieces` over at
/// least [`MIN_RUN_CHARS`] (and three times), with its count.
fn run_at(pieces: &[Piece]) -> Option<(usize, usize)> {
    (1..=MAX_PIECE_CHARS.min(pieces.len() / 3)).find_map(|unit| {
        let first = &pieces[..unit];
        let count = 1 + pieces[unit..]
            .chunks_exact(unit)
            .take_while(|chunk| *chunk == first)
            .count();
        (count >= 3 && count * unit >= MIN_RUN_CHARS).then_some((unit, count))
    })
}

/// `3 s`, `0.5 s`, `1.01 s`: to the hundredth (`0,5 s` in French).
pub fn seconds(duration: Duration) -> String {
    format!("{} s", (duration.as_secs_f64() * 100.0).round() / 100.0)
}

impl Lang {
    /// [`seconds`], with the decimal comma in French.
    pub fn seconds(self, duration: Duration) -> String {
        match self {
            Lang::En => seconds(duration),
            Lang::Fr => seconds(duration).replace('.', ","),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invisible_characters_are_written_as_protocol_md_writes_them() {
        assert_eq!(shown_str("a\rb"), "\"a<U+000D>b\"");
        assert_eq!(shown_str("HELP\u{85}"), "\"HELP<U+0085>\"");
        assert_eq!(shown_str("a\u{a0}b\tc"), "\"a<U+00A0>b<U+0009>c\"");
        assert_eq!(shown_str("a\u{202e}b e\u{301}"), "\"a<U+202E>b e<U+0301>\"");
        assert_eq!(shown_str("Élodie 日本 😀"), "\"Élodie 日本 😀\"");
        assert_eq!(shown_bytes(b"caf\xe9\n"), "\"caf<0xE9><U+000A>\"");
    }

    #[test]
    fn long_lines_read_as_what_they_are_made_of() {
        let line = format!("RECEIVE alice07 {}", "😀".repeat(100));
        assert_eq!(shown_str(&line), "\"RECEIVE alice07 \" + 100 × \"😀\"");
        let send = format!("SEND bob07{}{}", " ".repeat(102), "😀".repeat(100));
        assert_eq!(
            shown_str(&send),
            "\"SEND bob07\" + 102 × \" \" + 100 × \"😀\""
        );
        assert_eq!(shown_str(&"é".repeat(101)), "101 × \"é\"");
        assert_eq!(
            shown_bytes("PING\n".repeat(3).as_bytes()),
            "3 × \"PING<U+000A>\""
        );
        assert_eq!(shown_str("aaa"), "\"aaa\"");
        assert_eq!(shown_str(""), "\"\"");
        let varied: String = (0..300)
            .map(|i| char::from(b'a' + (i * 7 % 26) as u8))
            .collect();
        assert!(shown_str(&varied).ends_with("…\"… (300 bytes)"));
        let flood = "SEND bob07 hi\n".repeat(1000);
        assert_eq!(
            shown_str(&flood),
            "292 × \"SEND bob07 hi<U+000A>\" + \"SEND bob\"… (14000 bytes)"
        );
    }

    #[test]
    fn durations_are_to_the_hundredth() {
        assert_eq!(seconds(Duration::from_millis(500)), "0.5 s");
        assert_eq!(seconds(Duration::from_secs(3)), "3 s");
        assert_eq!(seconds(Duration::from_nanos(1_006_570_079)), "1.01 s");
        assert_eq!(Lang::Fr.seconds(Duration::from_millis(500)), "0,5 s");
    }
}
