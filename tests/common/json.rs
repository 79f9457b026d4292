//! Just enough JSON reading for tests that talk to Node or Chromium: the
//! strings of a line of JSON, each marked as a key or a value.

/// A string of a JSON text.
pub enum Token {
    /// A string followed by `:`.
    Key(String),
    /// Any other string.
    Str(String),
}

/// The strings of `text`, in order, unescaped.
pub struct Strings<'a>(pub &'a str);

impl Iterator for Strings<'_> {
    type Item = Token;
    fn next(&mut self) -> Option<Token> {
        let start = self.0.find('"')?;
        let mut chars = self.0[start + 1..].char_indices();
        let mut out = String::new();
        let mut high_surrogate = None;
        let end = loop {
            let (i, c) = chars.next()?;
            match c {
                '"' => break start + 1 + i,
                '\\' => match chars.next()?.1 {
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    'r' => out.push('\r'),
                    'u' => {
                        let hex: String =
                            (0..4).filter_map(|_| chars.next().map(|c| c.1)).collect();
                        let unit = u32::from_str_radix(&hex, 16).ok()?;
                        match (high_surrogate.take(), unit) {
                            (None, 0xD800..=0xDBFF) => high_surrogate = Some(unit),
                            (Some(high), 0xDC00..=0xDFFF) => {
                                let code = 0x10000 + ((high - 0xD800) << 10) + (unit - 0xDC00);
                                out.push(char::from_u32(code).unwrap_or('\u{fffd}'));
                            }
                            (_, unit) => out.push(char::from_u32(unit).unwrap_or('\u{fffd}')),
                        }
                    }
                    other => out.push(other),
                },
                c => out.push(c),
            }
        };
        self.0 = &self.0[end + 1..];
        Some(match self.0.trim_start().starts_with(':') {
            true => Token::Key(out),
            false => Token::Str(out),
        })
    }
}

/// The string value of the first `key` in `text`.
pub fn value_of(text: &str, key: &str) -> Option<String> {
    let mut strings = Strings(text);
    while let Some(token) = strings.next() {
        if matches!(&token, Token::Key(k) if k == key) {
            return match strings.next()? {
                Token::Str(value) => Some(value),
                Token::Key(_) => None,
            };
        }
    }
    None
}
