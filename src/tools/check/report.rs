//! The results of a run: a verdict per check, and the summary line.

use std::time::Duration;

use super::probe::{Failure, seconds};

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

impl Report {
    pub fn passed(&self) -> usize {
        self.count(|verdict| matches!(verdict, Verdict::Passed))
    }

    pub fn failed(&self) -> usize {
        self.count(|verdict| matches!(verdict, Verdict::Failed(_)))
    }

    pub fn skipped(&self) -> usize {
        self.count(|verdict| matches!(verdict, Verdict::Skipped(_)))
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

    /// The last line of a run: `N passed, M failed, K skipped in T s`.
    pub fn summary(&self) -> String {
        format!(
            "{} passed, {} failed, {} skipped in {}",
            self.passed(),
            self.failed(),
            self.skipped(),
            seconds(self.time)
        )
    }

    fn count(&self, which: impl Fn(&Verdict) -> bool) -> usize {
        self.outcomes
            .iter()
            .filter(|outcome| which(&outcome.verdict))
            .count()
    }
}
