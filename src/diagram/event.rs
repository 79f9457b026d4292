//! Reading one line of the server's log (`src/server/log.rs`) back into an
//! [`Event`]: the log's wording is the one description of what happened,
//! and this is the one place that reads it.
//!
//! ```text
//! 2026-11-24T16:20:05Z 127.0.0.1:40312 accepted (1/5 connections)
//! 2026-11-24T16:20:05Z 127.0.0.1:40312 < OK WELCOME minichat 1: ...
//! 2026-11-24T16:20:06Z 127.0.0.1:40312 > CONNECT alice
//! 2026-11-24T16:20:06Z 127.0.0.1:40312 logged in as alice (1 logged in)
//! 2026-11-24T16:20:06Z alice < OK CONNECT alice
//! 2026-11-24T16:20:09Z alice left (QUIT)
//! note over alice: a note written by hand, or by a scripted scene
//! ```
//!
//! A connection is named by its address until it logs in, then by its
//! name. The two cannot be confused: an address always holds a `:`, which
//! no name may hold.

/// One line of the log: when, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry<'a> {
    /// The line's UTC timestamp, `2026-11-24T16:20:05Z`, if it has one.
    pub time: Option<&'a str>,
    pub event: Event<'a>,
}

/// What a log line says. `who` is how the log names a connection: its
/// address, or its name once logged in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event<'a> {
    /// `minichat: listening on ADDR (max N connections)`.
    Listening { max: usize },
    /// `ADDR accepted (n/m connections)`.
    Accepted {
        addr: &'a str,
        open: usize,
        max: usize,
    },
    /// `ADDR logged in as NAME (k logged in)`.
    LoggedIn { addr: &'a str, name: &'a str },
    /// With `--verbose`: `WHO > LINE` (received) or `WHO < LINE` (sent).
    Line {
        who: &'a str,
        direction: Direction,
        text: &'a str,
    },
    /// `WHO left (QUIT)`, `WHO timed out (...)`, `WHO disconnected (...)`.
    Ended { who: &'a str, how: Ending<'a> },
    /// `NAME dropped: cannot write to it (ERROR)`: a writer gave up on it.
    Dropped { name: &'a str, why: &'a str },
    /// `NAME (ADDR) kicked by the console`, or `ADDR kicked by the console`.
    Kicked { who: &'a str },
    /// `ADDR refused: server full` (or without the address).
    Refused { addr: Option<&'a str> },
    /// `N log lines dropped`: the log lost lines here.
    LogLinesDropped { count: u64 },
    /// `note: TEXT` or `note over WHO[,WHO...]: TEXT`: not written by the
    /// server, but added to a log by hand (or by a scripted scene) to say
    /// what the log cannot show.
    Note { over: Vec<&'a str>, text: &'a str },
    /// Any other event of the log (`accept failed: ...`), shown as it is.
    Other { text: &'a str },
}

/// Which way a wire line went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// `>`: from the client to the server.
    In,
    /// `<`: from the server to the client.
    Out,
}

/// How a connection ended, as its session logged it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending<'a> {
    /// `left (QUIT)`.
    Quit,
    /// `timed out (no CONNECT)`.
    LoginTimeout,
    /// `timed out (idle)`.
    IdleTimeout,
    /// `disconnected (connection closed)`: the client closed it.
    Closed,
    /// `disconnected (dropped)`: after a writer or the console dropped it.
    Dropped,
    /// `disconnected (ERROR)`: reading or writing failed.
    Failed(&'a str),
}

/// Reads one line of the log; `None` if it is not one (an empty line, a
/// line of another program). A line is read whatever its end of line.
pub fn parse(line: &str) -> Option<Entry<'_>> {
    let line = line.trim_end_matches(['\r', '\n']);
    if let Some(rest) = line.strip_prefix("minichat: listening on ") {
        let max = rest
            .rsplit_once(" (max ")?
            .1
            .strip_suffix(" connections)")?
            .parse()
            .ok()?;
        return Some(Entry {
            time: None,
            event: Event::Listening { max },
        });
    }
    if let Some(note) = parse_note(line) {
        return Some(Entry {
            time: None,
            event: note,
        });
    }
    let (time, rest) = split_timestamp(line)?;
    Some(Entry {
        time: Some(time),
        event: parse_event(rest),
    })
}

/// `2026-11-24T16:20:05Z rest`: the timestamp and the rest.
fn split_timestamp(line: &str) -> Option<(&str, &str)> {
    let (time, rest) = line.split_once(' ')?;
    let shape = time.bytes().enumerate().all(|(i, b)| match i {
        4 | 7 => b == b'-',
        10 => b == b'T',
        13 | 16 => b == b':',
        19 => b == b'Z',
        _ => b.is_ascii_digit(),
    });
    (time.len() == 20 && shape).then_some((time, rest))
}

/// `note: TEXT` or `note over A,B: TEXT` (a colon and a space end the
/// participants, since an address holds colons).
fn parse_note(line: &str) -> Option<Event<'_>> {
    let rest = line.strip_prefix("note")?;
    let (over, text) = rest.split_once(": ")?;
    let over = match over.trim() {
        "" => Vec::new(),
        over => over
            .strip_prefix("over ")?
            .split(',')
            .map(str::trim)
            .filter(|who| !who.is_empty())
            .collect(),
    };
    Some(Event::Note {
        over,
        text: text.trim(),
    })
}

fn parse_event(rest: &str) -> Event<'_> {
    let (who, what) = rest.split_once(' ').unwrap_or((rest, ""));
    if let Some(event) = parse_line(who, what) {
        return event;
    }
    if let Some(counts) = what.strip_prefix("accepted (") {
        if let Some((open, max)) = counts
            .strip_suffix(" connections)")
            .and_then(|counts| counts.split_once('/'))
            .and_then(|(open, max)| Some((open.parse().ok()?, max.parse().ok()?)))
        {
            return Event::Accepted {
                addr: who,
                open,
                max,
            };
        }
    }
    if let Some(name) = what
        .strip_prefix("logged in as ")
        .and_then(|rest| rest.split(' ').next())
    {
        return Event::LoggedIn { addr: who, name };
    }
    if let Some(how) = parse_ending(what) {
        return Event::Ended { who, how };
    }
    if let Some(why) = what
        .strip_prefix("dropped: cannot write to it (")
        .and_then(|why| why.strip_suffix(')'))
    {
        return Event::Dropped { name: who, why };
    }
    if what == "kicked by the console" {
        return Event::Kicked { who };
    }
    // `NAME (ADDR) kicked by the console`: the address names the connection
    // for sure (a new user may already hold the name).
    if let Some(addr) = what
        .strip_suffix(") kicked by the console")
        .and_then(|what| what.strip_prefix('('))
    {
        return Event::Kicked { who: addr };
    }
    if what == "refused: server full" {
        return Event::Refused { addr: Some(who) };
    }
    if rest == "refused: server full" {
        return Event::Refused { addr: None };
    }
    if let Some(count) = rest
        .strip_suffix(" log lines dropped")
        .or_else(|| rest.strip_suffix(" log line dropped"))
        .and_then(|count| count.parse().ok())
    {
        return Event::LogLinesDropped { count };
    }
    Event::Other { text: rest }
}

/// `WHO > LINE` or `WHO < LINE` (an empty line is logged as `WHO > `).
fn parse_line<'a>(who: &'a str, what: &'a str) -> Option<Event<'a>> {
    let (direction, text) = match what.split_at_checked(1)? {
        (">", text) => (Direction::In, text),
        ("<", text) => (Direction::Out, text),
        _ => return None,
    };
    let text = match text.strip_prefix(' ') {
        Some(text) => text,
        None if text.is_empty() => text,
        None => return None,
    };
    Some(Event::Line {
        who,
        direction,
        text,
    })
}

fn parse_ending(what: &str) -> Option<Ending<'_>> {
    Some(match what {
        "left (QUIT)" => Ending::Quit,
        "timed out (no CONNECT)" => Ending::LoginTimeout,
        "timed out (idle)" => Ending::IdleTimeout,
        "disconnected (connection closed)" => Ending::Closed,
        "disconnected (dropped)" => Ending::Dropped,
        _ => Ending::Failed(what.strip_prefix("disconnected (")?.strip_suffix(')')?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(line: &str) -> Event<'_> {
        parse(line)
            .unwrap_or_else(|| panic!("{line:?} is not read"))
            .event
    }

    const T: &str = "2026-11-24T16:20:05Z";

    #[test]
    fn every_event_of_the_log_is_read() {
        assert_eq!(
            event("minichat: listening on [::]:1234 (max 5 connections)"),
            Event::Listening { max: 5 }
        );
        let cases = [
            (
                "127.0.0.1:40312 accepted (3/5 connections)",
                Event::Accepted {
                    addr: "127.0.0.1:40312",
                    open: 3,
                    max: 5,
                },
            ),
            (
                "[::1]:40312 logged in as Élodie (2 logged in)",
                Event::LoggedIn {
                    addr: "[::1]:40312",
                    name: "Élodie",
                },
            ),
            (
                "alice > SEND bob  hi > there ",
                Event::Line {
                    who: "alice",
                    direction: Direction::In,
                    text: "SEND bob  hi > there ",
                },
            ),
            (
                "bob < RECEIVE alice hi",
                Event::Line {
                    who: "bob",
                    direction: Direction::Out,
                    text: "RECEIVE alice hi",
                },
            ),
            (
                "bob > ",
                Event::Line {
                    who: "bob",
                    direction: Direction::In,
                    text: "",
                },
            ),
            (
                "alice left (QUIT)",
                Event::Ended {
                    who: "alice",
                    how: Ending::Quit,
                },
            ),
            (
                "127.0.0.1:1 timed out (no CONNECT)",
                Event::Ended {
                    who: "127.0.0.1:1",
                    how: Ending::LoginTimeout,
                },
            ),
            (
                "bob timed out (idle)",
                Event::Ended {
                    who: "bob",
                    how: Ending::IdleTimeout,
                },
            ),
            (
                "bob disconnected (connection closed)",
                Event::Ended {
                    who: "bob",
                    how: Ending::Closed,
                },
            ),
            (
                "bob disconnected (dropped)",
                Event::Ended {
                    who: "bob",
                    how: Ending::Dropped,
                },
            ),
            (
                "bob disconnected (Connection reset by peer (os error 104))",
                Event::Ended {
                    who: "bob",
                    how: Ending::Failed("Connection reset by peer (os error 104)"),
                },
            ),
            (
                "bob dropped: cannot write to it (timed out)",
                Event::Dropped {
                    name: "bob",
                    why: "timed out",
                },
            ),
            (
                "bob (127.0.0.1:7) kicked by the console",
                Event::Kicked { who: "127.0.0.1:7" },
            ),
            (
                "127.0.0.1:7 kicked by the console",
                Event::Kicked { who: "127.0.0.1:7" },
            ),
            (
                "127.0.0.1:9 refused: server full",
                Event::Refused {
                    addr: Some("127.0.0.1:9"),
                },
            ),
            ("refused: server full", Event::Refused { addr: None }),
            ("12 log lines dropped", Event::LogLinesDropped { count: 12 }),
            ("1 log line dropped", Event::LogLinesDropped { count: 1 }),
            (
                "accept failed: Too many open files (os error 24)",
                Event::Other {
                    text: "accept failed: Too many open files (os error 24)",
                },
            ),
        ];
        for (line, expected) in cases {
            let line = format!("{T} {line}");
            let entry = parse(&line).unwrap();
            assert_eq!(entry.time, Some(T));
            assert_eq!(entry.event, expected, "{line}");
        }
    }

    #[test]
    fn notes_are_read_with_or_without_participants() {
        assert_eq!(
            event("note: the class arrives"),
            Event::Note {
                over: vec![],
                text: "the class arrives"
            }
        );
        assert_eq!(
            event("note over bob, 127.0.0.1:5: bob: stops reading\r\n"),
            Event::Note {
                over: vec!["bob", "127.0.0.1:5"],
                text: "bob: stops reading"
            }
        );
    }

    #[test]
    fn what_is_not_a_log_line_is_not_read() {
        for line in [
            "",
            "hello",
            "kicked alice",
            "2026-11-24 16:20:05 alice > PING",
            "2026-11-24T16:20:05Zalice > PING",
            "notes are nice",
        ] {
            assert_eq!(parse(line), None, "{line:?}");
        }
    }
}
