//! Every diagram parses with Mermaid's own parser (npm `mermaid`, under
//! jsdom, in Node): PROTOCOL.md's and README.md's, and `minichat diagram`'s
//! on a log of every kind of event with the most hostile texts a client
//! can send, whose lines must come out of Mermaid exactly as they went in.
//!
//! It needs `node` and the packages of tests/mermaid/package.json in
//! target/mermaid (`.ci/run` installs them: `npm ci --prefix target/mermaid`
//! after copying package*.json there). Without them the test says so and
//! passes, unless `MINICHAT_REQUIRE_MERMAID` is set (CI sets it).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::common::json::{Strings, Token};
use minichat::tools::diagram::{self, DiagramOptions};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The folder with Mermaid's packages, or why there is none.
fn mermaid_dir() -> Result<PathBuf, String> {
    let dir = std::env::var_os("MINICHAT_MERMAID_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/mermaid"));
    if !dir.join("node_modules/mermaid").is_dir() {
        return Err(format!("no Mermaid packages in {}", dir.display()));
    }
    match Command::new("node").arg("--version").output() {
        Ok(out) if out.status.success() => Ok(dir),
        _ => Err("no node on PATH".into()),
    }
}

/// One diagram as Mermaid read it.
#[derive(Debug)]
struct Parsed {
    name: String,
    error: Option<String>,
    /// The messages' texts (sequence diagrams).
    messages: Vec<String>,
}

/// Parses `diagrams` (name, text) with Mermaid; `None` if it is absent.
fn parse_all(diagrams: &[(String, String)]) -> Option<Vec<Parsed>> {
    let dir = match mermaid_dir() {
        Ok(dir) => dir,
        Err(why) if std::env::var_os("MINICHAT_REQUIRE_MERMAID").is_some() => {
            panic!("Mermaid is required (MINICHAT_REQUIRE_MERMAID) but absent: {why}")
        }
        Err(why) => {
            eprintln!("SKIPPED: Mermaid's parser is not installed ({why}); .ci/run installs it");
            return None;
        }
    };
    std::fs::copy(
        root().join("tests/mermaid/parse.mjs"),
        dir.join("parse.mjs"),
    )
    .unwrap();
    let mut node = Command::new("node")
        .arg(dir.join("parse.mjs"))
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start node");
    let input = format!(
        "[{}]",
        diagrams
            .iter()
            .map(|(name, text)| format!(r#"{{"name":{},"text":{}}}"#, json(name), json(text)))
            .collect::<Vec<_>>()
            .join(",")
    );
    node.stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = node.wait_with_output().unwrap();
    assert!(out.status.success(), "node failed");
    let text = String::from_utf8(out.stdout).unwrap();
    Some(text.lines().map(read_result).collect())
}

/// Reads `{"name":..,"ok":..,"error":..,"messages":[..]}`, just enough.
fn read_result(line: &str) -> Parsed {
    let strings = Strings(line);
    let mut parsed = Parsed {
        name: String::new(),
        error: None,
        messages: Vec::new(),
    };
    let mut key = None;
    for token in strings {
        match (key.take(), token) {
            (_, Token::Key(k)) => key = Some(k),
            (Some(k), Token::Str(s)) if k == "name" => parsed.name = s,
            (Some(k), Token::Str(s)) if k == "error" => parsed.error = Some(s),
            (Some(k), Token::Str(s)) if k == "messages" => {
                parsed.messages.push(s);
                key = Some(k);
            }
            _ => {}
        }
    }
    parsed
}

fn json(text: &str) -> String {
    minichat::diagram::json::string(text)
}

/// The ```` ```mermaid ```` blocks of a Markdown file.
fn blocks(file: &str) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(root().join(file)).unwrap();
    text.split("```mermaid\n")
        .skip(1)
        .enumerate()
        .map(|(i, rest)| {
            (
                format!("{file} #{}", i + 1),
                rest.split("```").next().unwrap().to_owned(),
            )
        })
        .collect()
}

/// What clients may send that Mermaid would otherwise read as syntax.
const HOSTILE: [&str; 12] = [
    "SEND bob a;b; c->>d: fake",
    "SEND bob #59; #lt; # hash",
    "SEND bob <b>bold</b> <br> <script>alert(1)</script>",
    "SEND bob %% not a comment",
    "SEND bob %%{init: {'theme':'dark'}}%%",
    "wrap:hello",
    "SEND bob \"quoted\" 'single' `back` \\ slash",
    "SEND bob   three spaces, and trailing  ",
    "   PING",
    "SEND bob Élodie 李雷 😀 ٣ end participant Note over",
    "SEND bob & &amp; &lt; x",
    "SEND bob }{ ][ )( :: -->> --x -)",
];

pub(crate) fn every_diagram_parses_and_hostile_texts_come_out_exactly() {
    let mut diagrams = blocks("PROTOCOL.md");
    diagrams.extend(blocks("README.md"));
    // A log with every kind of event, and hostile lines.
    let t = "2026-11-24T16:20:05Z";
    let mut log = format!(
        "minichat: listening on 0.0.0.0:1234 (max 5 connections)\n\
         {t} 127.0.0.1:5 accepted (1/5 connections)\n\
         {t} 127.0.0.1:5 > CONNECT end\n\
         {t} 127.0.0.1:5 logged in as end (1 logged in)\n\
         {t} [::1]:6 accepted (2/5 connections)\n\
         {t} [::1]:6 > \n\
         {t} [::1]:6 logged in as Élodie (2 logged in)\n"
    );
    for line in HOSTILE {
        log += &format!(
            "{t} end > {line}\n{t} end < ERR SYNTAX {line}\n{t} Élodie < RECEIVE end {line}\n"
        );
    }
    log += &format!(
        "note over end, Élodie: a note; with # and <b>\n\
         {t} 3 log lines dropped\n\
         {t} accept failed: Too many open files (os error 24)\n\
         {t} Élodie dropped: cannot write to it (timed out)\n\
         {t} end (127.0.0.1:5) kicked by the console\n\
         {t} 127.0.0.1:7 refused: server full\n\
         {t} [::1]:8 timed out (no CONNECT)\n\
         {t} [::1]:9 timed out (idle)\n\
         {t} [::1]:10 disconnected (Connection reset by peer (os error 104))\n\
         {t} [::1]:11 left (QUIT)\n"
    );
    for lang in ["en", "fr"] {
        let options = DiagramOptions {
            lang: minichat::diagram::Lang::parse(lang).unwrap(),
            ..DiagramOptions::default()
        };
        let mut out = Vec::new();
        diagram::run(&options, log.as_bytes(), &mut out).unwrap();
        diagrams.push((format!("hostile-{lang}"), String::from_utf8(out).unwrap()));
    }
    let Some(parsed) = parse_all(&diagrams) else {
        return;
    };
    assert_eq!(
        parsed.len(),
        diagrams.len(),
        "node did not answer for every diagram"
    );
    assert!(diagrams.len() >= 10, "PROTOCOL.md's diagrams are missing");
    for result in &parsed {
        assert!(
            result.error.is_none(),
            "{}: {:?}",
            result.name,
            result.error
        );
    }
    // Mermaid shows each hostile line exactly (a no-break space stands
    // for each space it would otherwise fold or trim).
    let hostile = parsed.iter().find(|p| p.name == "hostile-en").unwrap();
    let shown: Vec<String> = hostile
        .messages
        .iter()
        .map(|m| m.replace('\u{a0}', " "))
        .collect();
    for line in HOSTILE {
        for expected in [
            line.to_owned(),
            format!("ERR SYNTAX {line}"),
            format!("RECEIVE end {line}"),
        ] {
            assert!(
                shown.contains(&expected),
                "Mermaid did not show {expected:?}; it read {shown:#?}"
            );
        }
    }
    assert!(shown.contains(&"(empty line)".to_owned()), "{shown:#?}");
}
