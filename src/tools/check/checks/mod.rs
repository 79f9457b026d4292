//! The checks, one per rule of the contract that can be observed from
//! outside (`../shared/protocol-contract.md`), as a table of (name,
//! function, what it needs). Each function drives the server through a
//! [`Lab`] and returns the first [`Failure`] it sees; its doc comment says
//! the rule it covers, and README.md has the same table.
//!
//! | theme | module |
//! | --- | --- |
//! | the command line, the first stderr line, the log | `command_line` |
//! | lines: CRLF, LF, blank lines, lengths, UTF-8 | `lines` |
//! | verbs, fields, each command, error precedence | `commands` |
//! | names: characters, length, case, release | `names` |
//! | SEND, RECEIVE, texts, LIST, order, spoofing | `messages` |
//! | the connection limit, slots, the end of a connection | `connections` |
//! | the write timeout: a recipient that never reads | `writes` |
//! | the login and idle timeouts | `timeouts` |

mod command_line;
mod commands;
mod connections;
mod lines;
mod messages;
mod names;
mod timeouts;
mod writes;

use std::thread;

use super::Lab;
use super::probe::{Failure, Probe};
use super::settings::{ServerFlags, Settings};

type CheckFn = fn(&mut Lab<'_>) -> Result<(), Failure>;

/// What a check runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// A server started with these flags (in spawn mode), or a running
    /// server whose settings match them.
    Server(ServerFlags),
    /// The server's program itself, run with the arguments the check
    /// chooses (spawn mode only).
    CommandLine,
}

/// Whether a check can share the time of others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pace {
    /// Quick, or busy (floods): run alone.
    Alone,
    /// Mostly waiting for a timeout: in spawn mode it runs at the same time
    /// as the others, on a server of its own.
    Waits,
}

/// How many connections a check holds open at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connections {
    AtMost(usize),
    /// The server's limit, and one more.
    PastTheLimit,
}

/// One check of the suite.
pub struct Check {
    /// Shown after PASS or FAIL; stable, so a test or a student can grep it.
    pub name: &'static str,
    pub run: CheckFn,
    pub connections: Connections,
    pub needs: Needs,
    pub pace: Pace,
}

impl Check {
    /// Why this check cannot run on a running server with `known`
    /// settings, if it cannot.
    pub fn cannot_run_on(&self, known: &Settings) -> Option<String> {
        let flags = match self.needs {
            Needs::CommandLine => {
                return Some("needs --spawn: it runs the server's program itself".to_owned());
            }
            Needs::Server(flags) => flags,
        };
        if let Connections::AtMost(n) = self.connections {
            if n > known.max_connections {
                return Some(format!(
                    "needs {n} connections at once, the server allows {}",
                    known.max_connections
                ));
            }
        }
        flags.unmet_by(known)
    }
}

/// A check on a server with the contract's defaults.
const fn check(name: &'static str, connections: usize, run: CheckFn) -> Check {
    Check {
        name,
        run,
        connections: Connections::AtMost(connections),
        needs: Needs::Server(ServerFlags::DEFAULTS),
        pace: Pace::Alone,
    }
}

/// A check on a server started with `flags`.
const fn with(
    name: &'static str,
    connections: Connections,
    flags: ServerFlags,
    run: CheckFn,
) -> Check {
    Check {
        name,
        run,
        connections,
        needs: Needs::Server(flags),
        pace: Pace::Alone,
    }
}

/// A check that mostly waits for a timeout of a server started with `flags`.
const fn waiting(
    name: &'static str,
    connections: usize,
    flags: ServerFlags,
    run: CheckFn,
) -> Check {
    Check {
        name,
        run,
        connections: Connections::AtMost(connections),
        needs: Needs::Server(flags),
        pace: Pace::Waits,
    }
}

/// A check of the server's command line.
const fn command_line(name: &'static str, run: CheckFn) -> Check {
    Check {
        name,
        run,
        connections: Connections::AtMost(0),
        needs: Needs::CommandLine,
        pace: Pace::Alone,
    }
}

/// Every check, in the order they run: the simplest first, so the first
/// failure a student sees is the most basic one; the ones that wait for
/// timeouts last (in spawn mode they run meanwhile). One row per check:
/// its name, the connections it holds at once, the server's flags in spawn
/// mode, and the function (whose doc comment says the rule it covers).
#[rustfmt::skip]
pub fn all() -> Vec<Check> {
    use Connections::{AtMost, PastTheLimit};
    use ServerFlags as Flags;
    use command_line as cli;
    vec![
        command_line("help-exits-0",                                   cli::help_exits_0),
        command_line("version-exits-0",                                cli::version_exits_0),
        command_line("usage-errors",                                   cli::usage_errors),
        command_line("first-stderr-line",                              cli::first_stderr_line),
        check("greeting",                               1,             commands::greeting),
        check("replies-end-with-crlf",                  1,             lines::replies_end_with_crlf),
        check("lf-and-crlf-accepted",                   1,             lines::lf_and_crlf_accepted),
        check("blank-lines-ignored",                    1,             lines::blank_lines_ignored),
        check("verbs-case-insensitive",                 1,             commands::verbs_case_insensitive),
        check("verbs-ascii-case-only",                  1,             commands::verbs_ascii_case_only),
        check("spaces-between-fields",                  1,             commands::spaces_between_fields),
        check("help",                                   1,             commands::help),
        check("commands-before-login",                  1,             commands::commands_before_login),
        check("connect-and-already-connected",          1,             commands::connect_twice),
        check("syntax-errors",                          1,             commands::syntax_errors),
        check("unknown-command",                        1,             commands::unknown_command),
        check("name-characters",                        2,             names::name_characters),
        check("name-characters-unicode",                1,             names::name_characters_unicode),
        check("name-length-16-vs-17",                   1,             names::name_length),
        check("names-case-insensitive",                 3,             names::names_case_insensitive),
        check("names-compared-by-to-lowercase",         5,             names::names_compared_by_to_lowercase),
        check("name-released-after-quit",               1,             names::name_released_after_quit),
        check("name-released-after-close",              2,             names::name_released_after_close),
        check("send-and-receive",                       2,             messages::send_and_receive),
        check("no-such-user",                           2,             messages::no_such_user),
        check("self-send-receive-before-ok",            1,             messages::self_send),
        check("text-length-counts-characters",          2,             messages::text_length),
        check("text-control-characters",                2,             messages::text_control_characters),
        check("text-bidi-characters",                   2,             messages::text_bidi_characters),
        check("text-forbidden-range-ends",              2,             messages::forbidden_range_ends),
        check("invalid-utf8",                           3,             lines::invalid_utf8),
        check("line-512-vs-513-bytes",                  2,             lines::line_512_vs_513),
        check("line-of-1-mb",                           1,             lines::line_of_1_mb),
        check("too-long-once-at-the-lf",                1,             lines::too_long_once_at_the_lf),
        check("error-precedence",                       3,             commands::error_precedence),
        check("list-content",                           4,             messages::list_content),
        check("pipelined-order",                        2,             messages::pipelined_order),
        check("concurrent-senders",                     4,             messages::concurrent_senders),
        check("no-spoofing",                            2,             messages::no_spoofing),
        with("connection-limit",                        PastTheLimit,  Flags::DEFAULTS,           connections::connection_limit),
        with("max-connections-flag",                    PastTheLimit,  connections::FEW,          connections::connection_limit),
        with("slot-reused-after-close",                 PastTheLimit,  connections::FEW,          connections::slot_reused_after_close),
        with("slot-reused-after-reset",                 PastTheLimit,  connections::FEW,          connections::slot_reused_after_reset),
        with("quit-frees-slot-and-name-at-once",        PastTheLimit,  connections::FEW,          connections::quit_frees_at_once),
        with("quit-delivers-owed-lines-then-ends",      AtMost(2),     connections::ENDING,       connections::quit_delivers_owed_lines),
        with("quit-ends-within-write-timeout",          AtMost(1),     connections::ENDING,       connections::quit_ends_within_write_timeout),
        with("write-timeout-drops-stuck-recipient",     AtMost(3),     writes::DROP,              writes::stuck_recipient_dropped),
        with("write-timeout-others-undelayed",          AtMost(7),     writes::STALL,             writes::others_undelayed),
        with("write-timeout-drops-deaf-client",         AtMost(3),     writes::DROP,              writes::deaf_client_dropped),
        with("log-pipe-nobody-reads",                   AtMost(3),     cli::LOG_STALLED,          cli::log_never_blocks),
        with("log-stderr-closed",                       AtMost(3),     cli::LOG_CLOSED,           cli::log_never_blocks),
        waiting("login-timeout",                        2,             timeouts::LOGIN,           timeouts::login_timeout),
        waiting("login-timeout-despite-refused-connects", 2,           timeouts::LOGIN,           timeouts::login_timeout_despite_refused_connects),
        waiting("login-timeout-spares-logged-in",       1,             timeouts::LOGIN,           timeouts::login_timeout_spares_logged_in),
        waiting("login-timeout-0-means-never",          1,             timeouts::LOGIN_NEVER,     timeouts::login_timeout_never),
        waiting("idle-timeout",                         2,             timeouts::IDLE,            timeouts::idle_timeout),
        waiting("idle-timeout-restarted-by-complete-lines", 5,         timeouts::IDLE,            timeouts::idle_restarted_by_complete_lines),
        waiting("idle-timeout-not-restarted-by-bytes",  1,             timeouts::IDLE,            timeouts::idle_not_restarted_by_bytes),
        waiting("idle-timeout-0-means-never",           1,             timeouts::IDLE_NEVER,      timeouts::idle_timeout_never),
        waiting("timeout-delivers-owed-lines-then-ends", 1,            timeouts::LOGIN_SHORT,     timeouts::timeout_delivers_owed_lines),
    ]
}

/// Runs `each` on every probe at once, one thread each (a timing check
/// must read each connection as its line arrives); the first failure wins.
pub(super) fn in_parallel<T: Send>(
    probes: Vec<T>,
    each: impl Fn(T) -> Result<(), Failure> + Sync,
) -> Result<(), Failure> {
    thread::scope(|scope| {
        let threads: Vec<_> = probes
            .into_iter()
            .map(|probe| scope.spawn(|| each(probe)))
            .collect();
        threads
            .into_iter()
            .map(|thread| {
                thread
                    .join()
                    .unwrap_or_else(|_| Err(Failure::new("a probe thread panicked")))
            })
            .collect::<Result<Vec<()>, Failure>>()
            .map(drop)
    })
}

/// Sends `SEND <to> <text>` from `from` and requires the delivery: the
/// RECEIVE at `to`, then `OK SEND <to>` at `from`.
pub(super) fn deliver(
    from: &mut Probe,
    sender: &str,
    to: &mut Probe,
    recipient: &str,
    text: &str,
) -> Result<(), Failure> {
    from.send(&format!("SEND {recipient} {text}"))?;
    to.expect(&format!("RECEIVE {sender} {text}"))?;
    from.expect(&format!("OK SEND {recipient}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_grep_friendly() {
        let checks = all();
        for (i, check) in checks.iter().enumerate() {
            assert!(
                check
                    .name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                "{}",
                check.name
            );
            assert!(
                checks[i + 1..].iter().all(|other| other.name != check.name),
                "{} twice",
                check.name
            );
        }
    }

    #[test]
    fn the_waiting_checks_come_last() {
        let checks = all();
        let first = checks.iter().position(|c| c.pace == Pace::Waits).unwrap();
        assert!(checks[first..].iter().all(|c| c.pace == Pace::Waits));
    }

    #[test]
    fn the_readme_lists_every_check() {
        let readme = include_str!("../../../../README.md");
        for check in all() {
            assert!(
                readme.contains(&format!("| `{}` |", check.name)),
                "README.md does not list {}",
                check.name
            );
        }
    }
}
