//! Splitting the `--spawn 'COMMAND [ARGS...]'` text into words the way a
//! POSIX shell would, without running one: quotes and backslashes only.
//!
//! - Unquoted, spaces, tabs and newlines separate words; a backslash keeps
//!   the next character as it is (a backslash before a newline removes both).
//! - `'...'` keeps everything inside as it is, backslashes included.
//! - `"..."` keeps everything inside, except that a backslash before `"`,
//!   `\`, `$`, `` ` `` or a newline escapes it; before anything else it stays.
//! - `''` and `""` make an empty word.
//!
//! Nothing is expanded, so the characters that would make a shell do more
//! (`$`, `` ` ``, `|`, `;`, `&`, `<`, `>`, `(`, `)`, globs, a `#` comment,
//! a `VAR=value` prefix) are refused when unquoted, rather than passed on
//! as arguments the server would not expect: `sh -c '...'` runs a real shell.

/// Characters a shell would act on when unquoted, which [`split`] refuses.
const SHELL_SYNTAX: &[char] = &[
    '$', '`', '|', ';', '&', '<', '>', '(', ')', '*', '?', '[', '{',
];

/// Splits `text` into words; `Err` says what cannot be split.
pub fn split(text: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    // The word being read; `None` between words (`Some("")` after `''`).
    let mut word: Option<String> = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\n' => words.extend(word.take()),
            '\\' => match chars.next() {
                Some('\n') => {}
                Some(next) => word.get_or_insert_default().push(next),
                None => return Err("a backslash at the end escapes nothing".to_owned()),
            },
            '\'' => {
                let word = word.get_or_insert_default();
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(inner) => word.push(inner),
                        None => return Err("a single quote (') is not closed".to_owned()),
                    }
                }
            }
            '"' => {
                let word = word.get_or_insert_default();
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some('\n') => {}
                            Some(next @ ('"' | '\\' | '$' | '`')) => word.push(next),
                            Some(next) => {
                                word.push('\\');
                                word.push(next);
                            }
                            None => return Err("a double quote (\") is not closed".to_owned()),
                        },
                        Some(inner) => word.push(inner),
                        None => return Err("a double quote (\") is not closed".to_owned()),
                    }
                }
            }
            '#' if word.is_none() => {
                return Err("'#' would start a comment in a shell: quote it".to_owned());
            }
            '~' if word.is_none() => {
                return Err(
                    "'~' means the home directory to a shell, which is not run here: \
                     write the path in full"
                        .to_owned(),
                );
            }
            c if SHELL_SYNTAX.contains(&c) => {
                return Err(format!(
                    "{c:?} means something to a shell, which is not run here: \
                     quote it, or spawn sh -c '...'"
                ));
            }
            '=' if words.is_empty() && word.as_deref().is_some_and(is_variable_name) => {
                return Err(
                    "a VAR=value prefix sets a variable in a shell, which is not run here: \
                     spawn env VAR=value COMMAND"
                        .to_owned(),
                );
            }
            c => word.get_or_insert_default().push(c),
        }
    }
    words.extend(word);
    Ok(words)
}

/// True for what a shell takes as a variable name: `PORT`, `_x1`.
fn is_variable_name(word: &str) -> bool {
    let mut chars = word.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        split(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
    }

    #[test]
    fn spaces_tabs_and_newlines_separate_words() {
        assert_eq!(words("python3 server.py"), ["python3", "server.py"]);
        assert_eq!(words("  a \t b\nc  "), ["a", "b", "c"]);
        assert!(words("").is_empty());
        assert!(words("   ").is_empty());
    }

    #[test]
    fn single_quotes_keep_everything() {
        assert_eq!(words("'my server' x"), ["my server", "x"]);
        assert_eq!(words(r"'a\b' '$HOME' 'x\'"), [r"a\b", "$HOME", r"x\"]);
        assert_eq!(words("a'b c'd"), ["ab cd"]);
        assert_eq!(words("'' x"), ["", "x"]);
    }

    #[test]
    fn double_quotes_escape_only_four_characters() {
        assert_eq!(words(r#""a b" "q\"q" "s\\s""#), ["a b", "q\"q", r"s\s"]);
        assert_eq!(words(r#""\$x" "\`" "\n""#), ["$x", "`", r"\n"]);
        assert_eq!(words("\"line\\\ncontinued\""), ["linecontinued"]);
        assert_eq!(words(r#""" ''"#), ["", ""]);
        assert_eq!(words(r#""it's""#), ["it's"]);
        assert_eq!(words(r#""$HOME;|&""#), ["$HOME;|&"]);
    }

    #[test]
    fn backslashes_escape_the_next_character() {
        assert_eq!(words(r"my\ server"), ["my server"]);
        assert_eq!(words(r"a\'b \\ \$"), ["a'b", r"\", "$"]);
        assert_eq!(words("a\\\nb"), ["ab"]);
        assert_eq!(words(r"\#x"), ["#x"]);
    }

    #[test]
    fn what_cannot_be_split_is_an_error() {
        assert!(split("'open").unwrap_err().contains("not closed"));
        assert!(split("\"open").unwrap_err().contains("not closed"));
        assert!(split("\"open\\").unwrap_err().contains("not closed"));
        assert!(split("end\\").unwrap_err().contains("backslash"));
    }

    #[test]
    fn shell_syntax_is_refused_unquoted_only() {
        for text in [
            "server > log",
            "a | b",
            "a; b",
            "a &",
            "echo $PORT",
            "echo `x`",
            "ls *.py",
            "~/server",
            "(a)",
            "a{b,c}",
        ] {
            assert!(split(text).unwrap_err().contains("shell"), "{text}");
        }
        assert_eq!(words("a~b x]"), ["a~b", "x]"]);
        assert!(split("server # note").unwrap_err().contains("comment"));
        assert!(
            split("PORT=1 server")
                .unwrap_err()
                .contains("env VAR=value")
        );
        assert_eq!(words("a#b --x=1"), ["a#b", "--x=1"]);
        assert_eq!(words("env PORT=1 server"), ["env", "PORT=1", "server"]);
        assert_eq!(words("'>' \\|"), [">", "|"]);
    }
}
