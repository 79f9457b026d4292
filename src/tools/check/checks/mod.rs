//! The checks, one per rule of the contract that can be observed from
//! outside, as a table of (name, level, rule of PROTOCOL.md, what it
//! needs). Each function drives the server through a [`Lab`] and returns
//! the first [`Failure`] it sees; its doc comment says what it tries.
//! `minichat check --list` prints the table.
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
use super::rules::{self, Rule};
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

/// How a check shares the machine with the others (spawn mode runs
/// checks side by side, each lane on a server of its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pace {
    /// Quick: runs on one of the lanes.
    Quick,
    /// Busy for a second or more (a flood, a stalled log): starts first
    /// on a lane, so that it does not come last.
    Busy,
    /// Times others to half a second, for seconds: runs on a thread and
    /// a server of its own, from the start.
    Timing,
    /// Mostly waits for a timeout: runs on a thread and a server of its own.
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
    /// 1: connecting, framing, the commands and their replies; 2: names,
    /// texts, limits, timeouts, the command line; 3: the guarantees.
    pub level: u8,
    /// The rule it checks, as PROTOCOL.md writes it (its section is the
    /// check's section in the summary).
    pub rule: &'static Rule,
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

/// A row of the table: name, level, rule, connections, flags, pace, function.
#[allow(clippy::too_many_arguments)]
const fn row(
    name: &'static str,
    level: u8,
    rule: &'static Rule,
    connections: Connections,
    needs: Needs,
    pace: Pace,
    run: CheckFn,
) -> Check {
    Check {
        name,
        level,
        rule,
        run,
        connections,
        needs,
        pace,
    }
}

/// Every check, in the order they are listed: the simplest first, so the
/// first failure a student sees is the most basic one. One row per
/// check: its name, its level, the rule it checks, the connections it
/// holds at once, the server's flags in spawn mode, how it shares the
/// machine, and the function (whose doc comment says what it tries).
#[rustfmt::skip]
pub fn all() -> Vec<Check> {
    use Connections::{AtMost, PastTheLimit};
    use Needs::{CommandLine as Cli, Server};
    use Pace::{Busy, Quick, Timing, Waits};
    use ServerFlags as Flags;
    use command_line as cl;
    use rules as r;
    const D: Needs = Server(Flags::DEFAULTS);
    const ONE: Connections = AtMost(1);
    const TWO: Connections = AtMost(2);
    const THREE: Connections = AtMost(3);
    vec![
        row("help-exits-0",                        2, &r::CLI_HELP,        AtMost(0), Cli, Quick, cl::help_exits_0),
        row("version-exits-0",                     2, &r::CLI_HELP,        AtMost(0), Cli, Quick, cl::version_exits_0),
        row("usage-errors",                        2, &r::CLI_USAGE,       AtMost(0), Cli, Quick, cl::usage_errors),
        row("first-stderr-line",                   2, &r::CLI_FIRST_LINE,  AtMost(0), Cli, Quick, cl::first_stderr_line),
        row("greeting",                            1, &r::WELCOME,         ONE,   D, Quick, commands::greeting),
        row("replies-end-with-crlf",               1, &r::SERVER_CRLF,     ONE,   D, Quick, lines::replies_end_with_crlf),
        row("lf-and-crlf-accepted",                1, &r::LINE_END,        ONE,   D, Quick, lines::lf_and_crlf_accepted),
        row("blank-lines-ignored",                 1, &r::BLANK,           ONE,   D, Quick, lines::blank_lines_ignored),
        row("verbs-case-insensitive",              1, &r::VERBS_CASE,      ONE,   D, Quick, commands::verbs_case_insensitive),
        row("verbs-ascii-case-only",               2, &r::VERBS_CASE,      ONE,   D, Quick, commands::verbs_ascii_case_only),
        row("spaces-between-fields",               1, &r::FIELDS,          ONE,   D, Quick, commands::spaces_between_fields),
        row("help",                                1, &r::HELP,            ONE,   D, Quick, commands::help),
        row("commands-before-login",               1, &r::BEFORE_LOGIN,    ONE,   D, Quick, commands::commands_before_login),
        row("connect-and-already-connected",       1, &r::CONNECT,         ONE,   D, Quick, commands::connect_twice),
        row("syntax-errors",                       1, &r::ARGS,            ONE,   D, Quick, commands::syntax_errors),
        row("unknown-command",                     1, &r::UNKNOWN,         ONE,   D, Quick, commands::unknown_command),
        row("name-characters",                     2, &r::NAME_CHARS,      TWO,   D, Quick, names::name_characters),
        row("name-characters-unicode",             2, &r::NAME_RULE,       ONE,   D, Quick, names::name_characters_unicode),
        row("name-length-16-vs-17",                2, &r::NAME_CHARS,      ONE,   D, Quick, names::name_length),
        row("names-case-insensitive",              2, &r::NAME_CASE,       THREE, D, Quick, names::names_case_insensitive),
        row("names-compared-by-to-lowercase",      2, &r::NAME_CASE,       AtMost(5), D, Quick, names::names_compared_by_to_lowercase),
        row("name-released-after-quit",            2, &r::NAME_RELEASED,   ONE,   D, Quick, names::name_released_after_quit),
        row("name-released-after-close",           2, &r::NAME_RELEASED,   TWO,   D, Quick, names::name_released_after_close),
        row("send-and-receive",                    1, &r::SEND,            TWO,   D, Quick, messages::send_and_receive),
        row("no-such-user",                        1, &r::NO_SUCH_USER,    TWO,   D, Quick, messages::no_such_user),
        row("self-send-receive-before-ok",         1, &r::SELF_SEND,       ONE,   D, Quick, messages::self_send),
        row("list-content",                        1, &r::LIST,            AtMost(4), D, Quick, messages::list_content),
        row("invalid-utf8",                        1, &r::UTF8,            THREE, D, Quick, lines::invalid_utf8),
        row("text-length-counts-characters",       2, &r::TEXT_COUNT,      TWO,   D, Quick, messages::text_length),
        row("text-control-characters",             2, &r::TEXT_FORBIDDEN,  TWO,   D, Quick, messages::text_control_characters),
        row("text-bidi-characters",                2, &r::TEXT_FORBIDDEN,  TWO,   D, Quick, messages::text_bidi_characters),
        row("text-forbidden-range-ends",           2, &r::TEXT_FORBIDDEN,  TWO,   D, Quick, messages::forbidden_range_ends),
        row("line-512-vs-513-bytes",               2, &r::LINE_512,        TWO,   D, Quick, lines::line_512_vs_513),
        row("line-of-1-mb",                        2, &r::TOO_LONG_ONCE,   ONE,   D, Quick, lines::line_of_1_mb),
        row("too-long-once-at-the-lf",             2, &r::TOO_LONG_ONCE,   ONE,   D, Quick, lines::too_long_once_at_the_lf),
        row("error-precedence",                    2, &r::PRECEDENCE,      AtMost(4), D, Quick, commands::error_precedence),
        row("max-connections-flag",                2, &r::WELCOME,         PastTheLimit, Server(connections::FEW), Quick, connections::connection_limit),
        row("slot-reused-after-close",             2, &r::SLOTS,           PastTheLimit, Server(connections::FEW), Quick, connections::slot_reused_after_close),
        row("connection-limit",                    1, &r::FULL,            PastTheLimit, D, Quick, connections::connection_limit),
        row("pipelined-order",                     3, &r::IN_ORDER,        TWO,   D, Quick, messages::pipelined_order),
        row("concurrent-senders",                  3, &r::NOT_INTERLEAVED, AtMost(4), D, Busy, messages::concurrent_senders),
        row("no-spoofing",                         3, &r::NO_SPOOFING,     TWO,   D, Quick, messages::no_spoofing),
        row("no-receive-before-ok-connect",        3, &r::OK_CONNECT_FIRST, TWO,  D, Quick, messages::no_receive_before_ok_connect),
        row("half-close-gets-every-reply",         3, &r::HALF_CLOSE,      TWO,   D, Quick, connections::half_close_gets_every_reply),
        row("slot-reused-after-reset",             3, &r::SLOTS,           PastTheLimit, Server(connections::FEW), Quick, connections::slot_reused_after_reset),
        row("quit-frees-slot-and-name-at-once",    3, &r::FREED_FIRST,     PastTheLimit, Server(connections::FEW), Quick, connections::quit_frees_at_once),
        row("quit-delivers-owed-lines-then-ends",  3, &r::OWED,            TWO,   Server(connections::ENDING), Busy, connections::quit_delivers_owed_lines),
        row("quit-ends-within-write-timeout",      3, &r::LINGER,          ONE,   Server(connections::ENDING), Busy, connections::quit_ends_within_write_timeout),
        row("huge-timeouts-honoured",              3, &r::HUGE_TIMEOUTS,   THREE, Server(connections::HUGE), Quick, connections::huge_timeouts_honoured),
        row("write-timeout-drops-stuck-recipient", 3, &r::WRITE_TIMEOUT,   PastTheLimit, Server(writes::STUCK), Busy, writes::stuck_recipient_dropped),
        row("write-timeout-drops-deaf-client",     3, &r::DEAF,            PastTheLimit, Server(writes::DROP), Busy, writes::deaf_client_dropped),
        row("log-pipe-nobody-reads",               3, &r::LOG,             THREE, Server(cl::LOG_STALLED), Busy, cl::log_pipe_nobody_reads),
        row("log-stderr-closed",                   3, &r::LOG,             THREE, Server(cl::LOG_CLOSED), Busy, cl::log_stderr_closed),
        row("write-timeout-others-undelayed",      3, &r::UNDELAYED,       AtMost(8), Server(writes::STALL), Timing, writes::others_undelayed),
        row("login-timeout",                       2, &r::LOGIN_TIMEOUT,   THREE, Server(timeouts::LOGIN), Waits, timeouts::login_timeout),
        row("login-timeout-despite-refused-connects", 2, &r::LOGIN_TIMEOUT, TWO,  Server(timeouts::LOGIN), Waits, timeouts::login_timeout_despite_refused_connects),
        row("login-timeout-spares-logged-in",      2, &r::LOGIN_TIMEOUT,   ONE,   Server(timeouts::LOGIN), Waits, timeouts::login_timeout_spares_logged_in),
        row("login-timeout-0-means-never",         2, &r::LOGIN_NEVER,     ONE,   Server(timeouts::LOGIN_NEVER), Waits, timeouts::login_timeout_never),
        row("idle-timeout",                        2, &r::IDLE,            TWO,   Server(timeouts::IDLE), Waits, timeouts::idle_timeout),
        row("idle-timeout-restarted-by-complete-lines", 2, &r::IDLE,       AtMost(5), Server(timeouts::IDLE), Waits, timeouts::idle_restarted_by_complete_lines),
        row("idle-timeout-not-restarted-by-bytes", 2, &r::IDLE,            ONE,   Server(timeouts::IDLE), Waits, timeouts::idle_not_restarted_by_bytes),
        row("idle-timeout-not-restarted-by-receive", 2, &r::IDLE_WRITES,   TWO,   Server(timeouts::IDLE), Waits, timeouts::idle_not_restarted_by_receive),
        row("idle-timeout-0-means-never",          2, &r::IDLE_NEVER,      ONE,   Server(timeouts::IDLE_NEVER), Waits, timeouts::idle_timeout_never),
        row("timeout-delivers-owed-lines-then-ends", 3, &r::OWED_PROMISE,  ONE,   Server(timeouts::LOGIN_SHORT), Waits, timeouts::timeout_delivers_owed_lines),
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
    fn the_waiting_checks_come_last_and_every_level_is_1_to_3() {
        let checks = all();
        let first = checks.iter().position(|c| c.pace == Pace::Waits).unwrap();
        assert!(checks[first..].iter().all(|c| c.pace == Pace::Waits));
        assert!(checks.iter().all(|c| (1..=3).contains(&c.level)));
    }
}
