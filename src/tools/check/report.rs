//! The results of a run: a verdict per check, and the summary: the counts
//! per section of PROTOCOL.md, the likely causes with the failures each
//! explains, and the last line, `N passed, M failed, K skipped in T s`.

use std::time::Duration;

use super::causes::Cause;
use super::failure::Failure;
use super::rules::section_rank;
use super::shown::seconds;
use crate::lang::{Lang, tr};

/// How one check ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Passed,
    Failed(Failure),
    /// Not run, and why.
    Skipped(String),
}

/// The result of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub name: &'static str,
    /// The PROTOCOL.md heading of the check's rule.
    pub section: &'static str,
    pub verdict: Verdict,
    /// How long it took.
    pub time: Duration,
}

/// The results of a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// What the run checked: the address, or the command.
    pub server: String,
    pub outcomes: Vec<Outcome>,
    /// Why no check ran at all (nothing listens, the server is not idle).
    pub preflight: Option<String>,
    /// How long the run took.
    pub time: Duration,
}

/// The counts of a set of outcomes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
}

impl Counts {
    fn of<'a>(outcomes: impl IntoIterator<Item = &'a Outcome>) -> Counts {
        let mut counts = Counts::default();
        for outcome in outcomes {
            match outcome.verdict {
                Verdict::Passed => counts.passed += 1,
                Verdict::Failed(_) => counts.failed += 1,
                Verdict::Skipped(_) => counts.skipped += 1,
            }
        }
        counts
    }

    /// `3 passed, 1 failed, 0 skipped` (`3 réussies, 1 échouée, 0 sautée`).
    pub fn words(self, lang: Lang) -> String {
        let Counts {
            passed,
            failed,
            skipped,
        } = self;
        match lang {
            Lang::En => format!("{passed} passed, {failed} failed, {skipped} skipped"),
            Lang::Fr => {
                let s = |n: usize| if n > 1 { "s" } else { "" };
                format!(
                    "{passed} réussie{}, {failed} échouée{}, {skipped} sautée{}",
                    s(passed),
                    s(failed),
                    s(skipped)
                )
            }
        }
    }
}

impl Report {
    pub fn passed(&self) -> usize {
        Counts::of(&self.outcomes).passed
    }

    pub fn failed(&self) -> usize {
        Counts::of(&self.outcomes).failed
    }

    pub fn skipped(&self) -> usize {
        Counts::of(&self.outcomes).skipped
    }

    /// True when the run could start and every check that ran passed.
    pub fn all_passed(&self) -> bool {
        self.preflight.is_none() && self.failed() == 0
    }

    /// The failure of the check called `name`, if it failed.
    pub fn failure(&self, name: &str) -> Option<&Failure> {
        self.outcomes
            .iter()
            .find(|outcome| outcome.name == name)
            .and_then(|outcome| match &outcome.verdict {
                Verdict::Failed(failure) => Some(failure),
                _ => None,
            })
    }

    /// The names of the checks that failed, in order.
    pub fn failed_names(&self) -> Vec<&'static str> {
        self.outcomes
            .iter()
            .filter(|outcome| matches!(outcome.verdict, Verdict::Failed(_)))
            .map(|outcome| outcome.name)
            .collect()
    }

    /// The sections of PROTOCOL.md the outcomes belong to, in its order,
    /// each with its outcomes.
    pub fn by_section(&self) -> Vec<(&'static str, Vec<&Outcome>)> {
        let mut sections = group(self.outcomes.iter().map(|o| (o.section, o)));
        sections.sort_by_key(|(section, _)| section_rank(section));
        sections
    }

    /// The likely causes named by failures, each with the checks it
    /// explains.
    pub fn causes(&self) -> Vec<(Cause, Vec<&'static str>)> {
        let named = self
            .outcomes
            .iter()
            .filter_map(|outcome| match &outcome.verdict {
                Verdict::Failed(Failure {
                    cause: Some(cause), ..
                }) => Some((*cause, outcome.name)),
                _ => None,
            });
        let mut causes = group(named);
        causes.sort();
        causes
    }

    /// The summary: the counts per section (when a check ran), the likely
    /// causes (when one was found), then the last line.
    pub fn summary(&self, lang: Lang) -> String {
        let mut out = String::new();
        let sections = self.by_section();
        if !sections.is_empty() {
            out.push_str(lang.pick(
                "By section of PROTOCOL.md:\n",
                "Par section de PROTOCOL.md :\n",
            ));
            for (section, outcomes) in sections {
                let counts = Counts::of(outcomes.iter().copied()).words(lang);
                out.push_str(&format!(
                    "    « {section} »{} {counts}\n",
                    lang.pick(":", " :")
                ));
            }
        }
        let causes = self.causes();
        if !causes.is_empty() {
            out.push_str(lang.pick(
                "Likely causes (one fix may mend several failures):\n",
                "Causes probables (une correction peut en réparer plusieurs) :\n",
            ));
            for (cause, names) in causes {
                out.push_str(&format!(
                    "    {}{} {}\n",
                    names.join(", "),
                    lang.pick(":", " :"),
                    cause.describe(lang)
                ));
            }
        }
        out.push_str(&self.last_line(lang));
        out
    }

    /// The last line of a run: `N passed, M failed, K skipped in T s`.
    pub fn last_line(&self, lang: Lang) -> String {
        let counts = Counts::of(&self.outcomes).words(lang);
        let time = match lang {
            Lang::En => seconds(self.time),
            Lang::Fr => lang.seconds(self.time),
        };
        tr!(lang, "{counts} in {time}", "{counts} en {time}")
    }
}

/// The values of `pairs` gathered by key, keys in the order they first come.
fn group<K: PartialEq, V>(pairs: impl IntoIterator<Item = (K, V)>) -> Vec<(K, Vec<V>)> {
    let mut groups: Vec<(K, Vec<V>)> = Vec::new();
    for (key, value) in pairs {
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, values)) => values.push(value),
            None => groups.push((key, vec![value])),
        }
    }
    groups
}
