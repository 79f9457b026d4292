//! `minichat diagram`: a server's log (written with `--verbose`) in, a
//! Mermaid `sequenceDiagram` out, to paste into Markdown.
//!
//! ```text
//! minichat --verbose 2> class.log        # the lesson
//! minichat diagram class.log --only alice,bob --from 14:05 --max-lines 60
//! ```
//!
//! The reading and the drawing are [`crate::diagram`]'s, shared with the
//! server's live view; this module reads the input, chooses the rows the
//! options keep, and writes the text.

use std::collections::HashSet;
use std::fmt;
use std::io::{self, BufRead, Read, Write};
use std::path::PathBuf;

use crate::diagram::scene::{Party, Row, Scene};
use crate::diagram::{Lang, event, mermaid};
use crate::tools::remote::skip_rest_of_line;

/// A log line longer than this is not one of the server's (they are
/// under 300 bytes): it is skipped, and its bytes are not kept.
pub const MAX_INPUT_LINE: usize = 4096;

/// Mermaid refuses to draw a diagram longer than this many characters
/// unless told otherwise (its `maxTextSize`); past it, a warning says how
/// to keep fewer rows.
pub const MERMAID_MAX_TEXT: usize = 50_000;

/// What `minichat diagram` draws.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiagramOptions {
    /// The log to read; `None` (or `-`) is standard input.
    pub input: Option<PathBuf>,
    /// `--only NAME,...`: only these connections, named by user name (any
    /// case) or address; empty for all.
    pub only: Vec<String>,
    /// `--from TIME`: only from this time on (the log's UTC).
    pub from: Option<TimeBound>,
    /// `--until TIME`: only up to this time, included.
    pub until: Option<TimeBound>,
    /// `--max-lines N`: at most this many rows.
    pub max_lines: Option<usize>,
    /// `--lang en|fr`: the language of the words the diagram adds.
    pub lang: Lang,
}

/// A time as the log writes it, in UTC: a whole timestamp
/// (`2026-11-24T16:20:05Z`), or a time of day (`16:20` or `16:20:05`).
/// A bound covers everything it names: `--until 16:20` keeps 16:20:59.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeBound(String);

impl TimeBound {
    /// Reads `16:20`, `16:20:05` or `2026-11-24T16:20:05Z`.
    pub fn parse(text: &str) -> Option<TimeBound> {
        let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
        let time_of_day = |s: &str| {
            let parts: Vec<&str> = s.split(':').collect();
            matches!(parts.len(), 2 | 3) && parts.iter().all(|p| digits(p, 2))
        };
        let stamp = text
            .strip_suffix('Z')
            .and_then(|t| t.split_once('T'))
            .is_some_and(|(date, time)| {
                let date: Vec<&str> = date.split('-').collect();
                date.len() == 3
                    && digits(date[0], 4)
                    && digits(date[1], 2)
                    && digits(date[2], 2)
                    && time.len() == 8
                    && time_of_day(time)
            });
        (stamp || time_of_day(text)).then(|| TimeBound(text.trim_end_matches('Z').to_owned()))
    }

    /// Where `stamp` (the log's) stands to this bound: its part of the same
    /// precision, compared.
    fn compare(&self, stamp: &str) -> std::cmp::Ordering {
        let stamp = match self.0.contains('T') {
            true => stamp,
            false => stamp.get(11..).unwrap_or(""),
        };
        let precision = self.0.len().min(stamp.len());
        stamp[..precision].cmp(&self.0)
    }
}

impl fmt::Display for TimeBound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What the run found, for the messages on stderr.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Rows drawn.
    pub rows: usize,
    /// Input lines that are not the server's log lines.
    pub skipped: usize,
    /// Whether the log has protocol lines at all (with `--verbose`).
    pub has_lines: bool,
    /// The length of the diagram, in characters.
    pub chars: usize,
}

impl Summary {
    /// What the user should know, one line each.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if self.skipped > 0 {
            let lines = match self.skipped {
                1 => "line is",
                _ => "lines are",
            };
            warnings.push(format!(
                "{} input {lines} not the server's log; skipped",
                self.skipped
            ));
        }
        if !self.has_lines {
            warnings.push(
                "the log has no protocol lines: start the server with --verbose to draw them"
                    .to_owned(),
            );
        }
        if self.chars > MERMAID_MAX_TEXT {
            warnings.push(format!(
                "the diagram has {} characters, more than Mermaid draws by default ({}): \
                 keep fewer rows with --only, --from, --until or --max-lines",
                self.chars, MERMAID_MAX_TEXT
            ));
        }
        warnings
    }
}

/// Reads the log from `input` and writes the diagram to `out`.
pub fn run(
    options: &DiagramOptions,
    input: impl BufRead,
    out: &mut impl Write,
) -> io::Result<Summary> {
    let mut summary = Summary::default();
    let (scene, timed) = read(input, &mut summary)?;
    let rows = keep(options, &scene, timed);
    summary.rows = rows.len();
    let text = mermaid::render(&scene, &rows, options.lang);
    summary.chars = text.chars().count();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(summary)
}

/// A row and the log time it comes from.
struct Timed {
    time: Option<String>,
    row: Row,
}

/// Every row of the log, each with the time of its line (a note takes the
/// time of the line before it).
fn read(mut input: impl BufRead, summary: &mut Summary) -> io::Result<(Scene, Vec<Timed>)> {
    let mut scene = Scene::default();
    let mut timed = Vec::new();
    let mut rows = Vec::new();
    let mut time: Option<String> = None;
    let mut bytes = Vec::new();
    loop {
        bytes.clear();
        let n = (&mut input)
            .take(MAX_INPUT_LINE as u64)
            .read_until(b'\n', &mut bytes)?;
        if n == 0 {
            break;
        }
        if bytes.last() != Some(&b'\n') && n == MAX_INPUT_LINE {
            skip_rest_of_line(&mut input)?;
            summary.skipped += 1;
            continue;
        }
        let line = String::from_utf8_lossy(&bytes);
        let Some(entry) = event::parse(&line) else {
            if !line.trim().is_empty() {
                summary.skipped += 1;
            }
            continue;
        };
        if let Some(stamp) = entry.time {
            time = Some(stamp.to_owned());
        }
        summary.has_lines |= matches!(entry.event, event::Event::Line { .. });
        scene.feed(&entry, &mut rows);
        timed.extend(rows.drain(..).map(|row| Timed {
            time: time.clone(),
            row,
        }));
    }
    Ok((scene, timed))
}

/// The rows the options keep, with a last note for those `--max-lines`
/// left out.
fn keep(options: &DiagramOptions, scene: &Scene, timed: Vec<Timed>) -> Vec<Row> {
    let chosen = chosen_parties(options, scene);
    let in_window = |time: &Option<String>| {
        let Some(time) = time else {
            return options.from.is_none();
        };
        options
            .from
            .as_ref()
            .is_none_or(|from| from.compare(time).is_ge())
            && options
                .until
                .as_ref()
                .is_none_or(|until| until.compare(time).is_le())
    };
    let mut rows: Vec<Row> = timed
        .into_iter()
        .filter(|t| in_window(&t.time))
        .filter_map(|t| only(t.row, chosen.as_ref()))
        .collect();
    if let Some(max) = options.max_lines {
        let drawn = |row: &Row| !matches!(row, Row::LoggedIn { .. });
        if let Some((cut, _)) = rows.iter().enumerate().filter(|(_, r)| drawn(r)).nth(max) {
            let left_out = rows[cut..].iter().filter(|r| drawn(r)).count();
            rows.truncate(cut);
            rows.push(Row::Note {
                over: Vec::new(),
                text: options.lang.cut(left_out),
            });
        }
    }
    rows
}

/// The participants `--only` names (`None`: everyone).
fn chosen_parties(options: &DiagramOptions, scene: &Scene) -> Option<HashSet<Party>> {
    if options.only.is_empty() {
        return None;
    }
    let wanted: HashSet<String> = options.only.iter().map(|w| w.to_lowercase()).collect();
    let chosen = scene.participants().skip(1).filter(|(_, p)| {
        let name = p.name.as_deref().map(str::to_lowercase);
        name.is_some_and(|name| wanted.contains(&name))
            || p.addr.as_deref().is_some_and(|addr| wanted.contains(addr))
    });
    Some(chosen.map(|(party, _)| party).collect())
}

/// `row` if it concerns a chosen participant (a note, over those it
/// concerns; a note over the server concerns everyone).
fn only(row: Row, chosen: Option<&HashSet<Party>>) -> Option<Row> {
    let Some(chosen) = chosen else {
        return Some(row);
    };
    match row {
        Row::Opened { who, .. }
        | Row::Line { who, .. }
        | Row::LoggedIn { who }
        | Row::End { who, .. } => chosen.contains(&who).then_some(row),
        Row::Note { over, text } if !over.is_empty() => {
            let over: Vec<Party> = over.into_iter().filter(|p| chosen.contains(p)).collect();
            (!over.is_empty()).then_some(Row::Note { over, text })
        }
        row @ (Row::Note { .. } | Row::Missing { .. }) => Some(row),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "\
minichat: listening on 127.0.0.1:1234 (max 5 connections)
2026-11-24T16:20:05Z 127.0.0.1:5 accepted (1/5 connections)
2026-11-24T16:20:05Z 127.0.0.1:5 < OK WELCOME hi
2026-11-24T16:20:06Z 127.0.0.1:5 > CONNECT alice
2026-11-24T16:20:06Z 127.0.0.1:5 logged in as alice (1 logged in)
2026-11-24T16:20:06Z alice < OK CONNECT alice
2026-11-24T16:21:00Z 127.0.0.1:6 accepted (2/5 connections)
2026-11-24T16:21:00Z 127.0.0.1:6 < OK WELCOME hi
this line is not the server's
2026-11-24T16:21:01Z 127.0.0.1:6 > CONNECT Bob
2026-11-24T16:21:01Z 127.0.0.1:6 logged in as Bob (2 logged in)
2026-11-24T16:21:01Z Bob < OK CONNECT Bob
2026-11-24T16:22:00Z alice > SEND bob hi
2026-11-24T16:22:00Z Bob < RECEIVE alice hi
2026-11-24T16:22:00Z alice < OK SEND Bob
note over Bob: Bob reads it
";

    fn draw(options: DiagramOptions, log: &str) -> (String, Summary) {
        let mut out = Vec::new();
        let summary = run(&options, log.as_bytes(), &mut out).unwrap();
        (String::from_utf8(out).unwrap(), summary)
    }

    #[test]
    fn the_whole_log_is_drawn_and_foreign_lines_are_counted() {
        let (text, summary) = draw(DiagramOptions::default(), LOG);
        let commands = text.lines().filter(|l| l.contains("->>S: "));
        assert_eq!(commands.count(), 3, "{text}");
        assert!(text.contains("Note over c2: Bob reads it"), "{text}");
        assert_eq!(summary.skipped, 1);
        assert!(summary.has_lines);
        assert_eq!(summary.rows, 14);
    }

    #[test]
    fn only_keeps_the_named_users_connections_whatever_the_case() {
        let options = DiagramOptions {
            only: vec!["BOB".into()],
            ..DiagramOptions::default()
        };
        let (text, _) = draw(options, LOG);
        assert!(!text.contains("alice<br/>"), "{text}");
        assert!(text.contains("S-->>c2: RECEIVE alice hi"), "{text}");
        assert!(text.contains("c2->>S: CONNECT Bob"), "{text}");
        assert!(!text.contains("SEND bob hi"), "{text}");
    }

    #[test]
    fn a_time_window_keeps_whole_minutes_and_notes_follow_their_line() {
        let options = DiagramOptions {
            from: TimeBound::parse("16:21"),
            until: TimeBound::parse("2026-11-24T16:21:59Z"),
            ..DiagramOptions::default()
        };
        let (text, summary) = draw(options, LOG);
        assert_eq!(summary.rows, 5, "{text}");
        assert!(text.contains("CONNECT Bob") && !text.contains("CONNECT alice"));
        assert!(!text.contains("Bob reads it"));
    }

    #[test]
    fn max_lines_cuts_and_says_how_many_more() {
        let options = DiagramOptions {
            max_lines: Some(2),
            lang: Lang::Fr,
            ..DiagramOptions::default()
        };
        let (text, _) = draw(options, LOG);
        assert!(
            text.ends_with(
                "    c1-)S: (se connecte : 1/5 places prises)
    S-->>c1: OK WELCOME hi
    Note over S: (10 lignes de plus, non montrées : --max-lines)
"
            ),
            "{text}"
        );
    }

    #[test]
    fn over_long_input_lines_are_skipped_without_being_kept() {
        let log = format!("{}\n{LOG}", "x".repeat(MAX_INPUT_LINE * 3));
        let (_, summary) = draw(DiagramOptions::default(), &log);
        assert_eq!(summary.skipped, 2);
        assert_eq!(summary.rows, 14);
    }

    #[test]
    fn a_log_without_verbose_says_so() {
        let log = "2026-11-24T16:20:05Z 127.0.0.1:5 accepted (1/5 connections)\n";
        let (_, summary) = draw(DiagramOptions::default(), log);
        assert!(summary.warnings()[0].contains("--verbose"));
    }

    #[test]
    fn time_bounds() {
        for good in ["16:20", "16:20:05", "2026-11-24T16:20:05Z"] {
            assert!(TimeBound::parse(good).is_some(), "{good}");
        }
        for bad in ["", "16", "4pm", "16:2", "2026-11-24", "2026-11-24T16:20Z"] {
            assert!(TimeBound::parse(bad).is_none(), "{bad}");
        }
        let bound = TimeBound::parse("16:20").unwrap();
        assert!(bound.compare("2026-11-24T16:20:59Z").is_eq());
        assert!(bound.compare("2026-11-24T16:21:00Z").is_gt());
    }
}
