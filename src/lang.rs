//! The language of the tools' prose (`--lang fr|en`): French for a student
//! who reads PROTOCOL.md in French, English otherwise. `minichat check`
//! writes its report in it (`PASS`, `FAIL`, `SKIP`, the names of the checks
//! and the bytes on the wire stay as they are in both), and `minichat
//! diagram` the few words it adds to the protocol's lines
//! ([`crate::diagram::words`]).

use std::fmt;

/// A language of the tools.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    En,
    Fr,
}

impl Lang {
    /// `fr` or `en` (as `--lang` takes them).
    pub fn parse(text: &str) -> Option<Lang> {
        match text {
            "fr" => Some(Lang::Fr),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// The language of the environment, as a POSIX program finds it: the
    /// first of `LC_ALL`, `LC_MESSAGES`, `LANG` that is set and not empty;
    /// French when it starts with `fr`, English otherwise.
    pub fn from_env() -> Lang {
        Lang::from_vars(|name| std::env::var(name).ok())
    }

    /// [`Lang::from_env`] with the variables read by `get`.
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Lang {
        let locale = ["LC_ALL", "LC_MESSAGES", "LANG"]
            .into_iter()
            .find_map(|name| get(name).filter(|value| !value.is_empty()));
        match locale {
            Some(locale) if locale.starts_with("fr") => Lang::Fr,
            _ => Lang::En,
        }
    }

    /// `en` or `fr`, whichever is this language.
    pub fn pick<T>(self, en: T, fr: T) -> T {
        match self {
            Lang::En => en,
            Lang::Fr => fr,
        }
    }
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.pick("en", "fr"))
    }
}

/// `tr!(lang, "english {x}", "français {x}")`: the text in `lang`, each a
/// `format!` string (so both may name the same variables).
macro_rules! tr {
    ($lang:expr, $en:literal, $fr:literal $(, $arg:expr)* $(,)?) => {
        match $lang {
            $crate::lang::Lang::En => format!($en $(, $arg)*),
            $crate::lang::Lang::Fr => format!($fr $(, $arg)*),
        }
    };
}
pub(crate) use tr;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_chooses_as_posix_says() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            Lang::from_vars(move |name| {
                vars.iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| v.to_string())
            })
        };
        assert_eq!(env(&[]), Lang::En);
        assert_eq!(env(&[("LANG", "fr_FR.UTF-8")]), Lang::Fr);
        assert_eq!(env(&[("LANG", "fr_FR.UTF-8"), ("LC_ALL", "C")]), Lang::En);
        assert_eq!(
            env(&[("LANG", "en_US"), ("LC_MESSAGES", "fr_CA")]),
            Lang::Fr
        );
        assert_eq!(env(&[("LC_ALL", ""), ("LANG", "fr")]), Lang::Fr);
        assert_eq!(Lang::parse("fr"), Some(Lang::Fr));
        assert_eq!(Lang::parse("de"), None);
    }
}
