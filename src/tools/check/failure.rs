//! Why a check failed, for the student who reads it: what was expected
//! and what came instead, what every connection involved sent and got
//! (from the [`Journal`](super::journal::Journal)), the rule in
//! PROTOCOL.md's words with the heading of its section, and the naive
//! implementation the answer matches, if one does. The same fault gives
//! the same words on every run: durations are the bounds crossed, not
//! the ones measured; errors of the system are named by their kind; the
//! exchanges are shown only for an expectation a line did not meet.

use super::causes::Cause;
use super::rules::Rule;
use crate::lang::Lang;

/// Why a check failed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Failure {
    /// What was expected and what came instead, in the run's language.
    pub what: String,
    /// What each connection involved sent and got, one line each.
    pub exchanges: Vec<String>,
    /// The rule broken (the check's own, if the failure names none).
    pub rule: Option<&'static Rule>,
    /// The naive implementation this answer matches, if one does.
    pub cause: Option<Cause>,
    /// The line that came instead of the expected one, if one came (the
    /// checks match it against the naive implementations).
    pub got: Option<String>,
    /// True when nothing came within the wait.
    pub silent: bool,
    /// True when the connection was reset (RST) instead.
    pub reset: bool,
    /// The line (as shown) that the server closed the connection after,
    /// instead of answering it (a thread that crashed on it, likely).
    pub closed_after: Option<String>,
    /// True when the exchanges of the check's connections explain this
    /// failure (an expectation that a line did not meet). A failure a
    /// check words itself (a bound crossed while lines flood in) stands
    /// alone: what the connections last saw there changes from run to
    /// run, and its words must not.
    pub with_exchanges: bool,
}

impl Failure {
    pub fn new(what: impl Into<String>) -> Failure {
        Failure {
            what: what.into(),
            ..Failure::default()
        }
    }

    /// The same failure, citing `rule` (unless it cites a more precise one).
    pub fn because(mut self, rule: &'static Rule) -> Failure {
        self.rule.get_or_insert(rule);
        self
    }

    /// The same failure, with `note` after what was expected and came
    /// (which of several cases failed).
    pub fn noting(mut self, note: &str) -> Failure {
        self.what.push_str(" (");
        self.what.push_str(note);
        self.what.push(')');
        self
    }

    /// The same failure, naming `cause` as likely (unless one is named).
    pub fn likely(mut self, cause: Cause) -> Failure {
        self.cause.get_or_insert(cause);
        self
    }

    /// [`Failure::likely`] when `matches` says the answer is the naive one.
    pub fn likely_if(self, cause: Cause, matches: impl FnOnce(&Failure) -> bool) -> Failure {
        match matches(&self) {
            true => self.likely(cause),
            false => self,
        }
    }

    /// True when the line that came starts with `prefix`.
    pub fn got_starts_with(&self, prefix: &str) -> bool {
        self.got
            .as_deref()
            .is_some_and(|got| got.starts_with(prefix))
    }

    /// The failure as the report prints it after `FAIL <name>: `: the
    /// first line, then one indented line per exchange, the rule and the
    /// likely cause.
    pub fn render(&self, lang: Lang) -> String {
        let mut out = self.what.clone();
        for exchange in &self.exchanges {
            out.push_str("\n    ");
            out.push_str(exchange);
        }
        if let Some(rule) = self.rule {
            out.push_str(&format!(
                "\n    {} « {} » (PROTOCOL.md, « {} »)",
                lang.pick("rule:", "règle :"),
                rule.quote,
                rule.section
            ));
        }
        if let Some(cause) = self.cause {
            out.push_str(&format!(
                "\n    {} {}",
                lang.pick("likely cause:", "cause probable :"),
                cause.describe_on(lang, self.closed_after.as_deref())
            ));
        }
        out
    }
}
