//! The run as a JUnit XML report (`--junit PATH`), the format GitHub
//! Actions test reporters and GitLab CI (`artifacts:reports:junit`) read:
//! one `<testsuite>` per section of PROTOCOL.md, named by its heading,
//! with its counts and time; one `<testcase>` per check, with a
//! `<failure>` (its message both as the `message` attribute and as text,
//! since GitLab shows only the text) or a `<skipped>`.

use std::fs;
use std::io;
use std::path::Path;
use std::time::Duration;

use super::{Report, Verdict};
use crate::lang::Lang;

/// Writes the report of `report` to `path`.
pub fn write(path: &Path, report: &Report, lang: Lang) -> io::Result<()> {
    fs::write(path, xml(report, lang))
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
}

/// The counts of a `<testsuite>` or `<testsuites>` element.
fn counts(tests: usize, failures: usize, skipped: usize, time: Duration) -> String {
    format!(
        "tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\" time=\"{}\"",
        secs(time)
    )
}

/// The report as JUnit XML.
pub fn xml(report: &Report, lang: Lang) -> String {
    let name = escape(&format!("minichat check {}", report.server));
    let mut suites = String::new();
    let (mut tests, mut failures, mut skipped) = (0, 0, 0);
    if let Some(why) = &report.preflight {
        tests += 1;
        failures += 1;
        suites.push_str(&format!(
            "  <testsuite name=\"preflight\" {}>\n{}  </testsuite>\n",
            counts(1, 1, 0, Duration::ZERO),
            testcase("preflight", "preflight", Duration::ZERO, &failure(why))
        ));
    }
    for (section, outcomes) in report.by_section() {
        let (mut s_failures, mut s_skipped, mut time) = (0, 0, Duration::ZERO);
        let mut cases = String::new();
        for outcome in &outcomes {
            time += outcome.time;
            let inner = match &outcome.verdict {
                Verdict::Passed => String::new(),
                Verdict::Failed(why) => {
                    s_failures += 1;
                    failure(&why.render(lang))
                }
                Verdict::Skipped(why) => {
                    s_skipped += 1;
                    format!("<skipped message=\"{}\"/>", escape(why))
                }
            };
            cases.push_str(&testcase(section, outcome.name, outcome.time, &inner));
        }
        tests += outcomes.len();
        failures += s_failures;
        skipped += s_skipped;
        suites.push_str(&format!(
            "  <testsuite name=\"{}\" {}>\n{cases}  </testsuite>\n",
            escape(section),
            counts(outcomes.len(), s_failures, s_skipped, time)
        ));
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <testsuites name=\"{name}\" {}>\n\
         {suites}\
         </testsuites>\n",
        counts(tests, failures, skipped, report.time)
    )
}

/// A test case; its `classname` is its section (GitLab shows it as the suite).
fn testcase(section: &str, name: &str, time: Duration, inner: &str) -> String {
    let open = format!(
        "    <testcase classname=\"{}\" name=\"{}\" time=\"{}\"",
        escape(section),
        escape(name),
        secs(time)
    );
    match inner {
        "" => format!("{open}/>\n"),
        inner => format!("{open}>\n      {inner}\n    </testcase>\n"),
    }
}

fn failure(message: &str) -> String {
    let message = escape(message);
    format!("<failure message=\"{message}\" type=\"FAIL\">{message}</failure>")
}

/// Seconds with three decimals, as JUnit writes times.
fn secs(duration: Duration) -> String {
    format!("{:.3}", duration.as_secs_f64())
}

/// `text` made safe inside an XML attribute or element: the five special
/// characters as entities, and the characters XML 1.0 cannot hold at all
/// (most C0 controls, U+FFFE, U+FFFF) as `<U+001B>`, PROTOCOL.md's notation.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push_str(&format!("&#{};", c as u32)),
            c if c < ' ' || c == '\u{fffe}' || c == '\u{ffff}' => {
                out.push_str(&format!("&lt;U+{:04X}&gt;", c as u32));
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::Outcome;
    use super::super::probe::Failure;
    use super::*;

    #[test]
    fn special_characters_are_escaped() {
        assert_eq!(
            escape(r#"<a href="x">&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&apos;&lt;/a&gt;"
        );
        assert_eq!(
            escape("a\u{0}b\u{1b}c\u{ffff}"),
            "a&lt;U+0000&gt;b&lt;U+001B&gt;c&lt;U+FFFF&gt;"
        );
        assert_eq!(escape("tab\there\nCR\r"), "tab&#9;here&#10;CR&#13;");
        assert_eq!(escape("Élodie 日本 😀"), "Élodie 日本 😀");
    }

    #[test]
    fn a_report_has_one_testsuite_per_section_and_one_testcase_per_check() {
        use super::super::rules::{COMMANDS, CONNECTIONS};
        let report = Report {
            server: "127.0.0.1:1234".to_owned(),
            outcomes: vec![
                Outcome {
                    name: "greeting",
                    section: COMMANDS,
                    verdict: Verdict::Passed,
                    time: Duration::from_millis(12),
                },
                Outcome {
                    name: "help",
                    section: COMMANDS,
                    verdict: Verdict::Failed(Failure::new("sent \"HELP\"; got <nothing>")),
                    time: Duration::from_millis(1500),
                },
                Outcome {
                    name: "login-timeout",
                    section: CONNECTIONS,
                    verdict: Verdict::Skipped("needs --spawn".to_owned()),
                    time: Duration::ZERO,
                },
            ],
            preflight: None,
            time: Duration::from_millis(2345),
        };
        let xml = xml(&report, Lang::En);
        assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites "));
        assert!(xml.contains(
            "<testsuites name=\"minichat check 127.0.0.1:1234\" tests=\"3\" failures=\"1\" \
             errors=\"0\" skipped=\"1\" time=\"2.345\">"
        ));
        assert!(xml.contains(
            "<testsuite name=\"Les commandes\" tests=\"2\" failures=\"1\" errors=\"0\" \
             skipped=\"0\" time=\"1.512\">"
        ));
        assert!(xml.contains("<testsuite name=\"Connexions et délais\" tests=\"1\""));
        assert!(
            xml.contains(
                "<testcase classname=\"Les commandes\" name=\"greeting\" time=\"0.012\"/>"
            )
        );
        assert!(xml.contains(
            "<failure message=\"sent &quot;HELP&quot;; got &lt;nothing&gt;\" type=\"FAIL\">\
             sent &quot;HELP&quot;; got &lt;nothing&gt;</failure>"
        ));
        assert!(xml.contains("<skipped message=\"needs --spawn\"/>"));
        assert_eq!(xml.matches("<testcase ").count(), 3);
        assert_eq!(xml.matches("<testsuite ").count(), 2);
        assert!(xml.ends_with("</testsuite>\n</testsuites>\n"));
    }

    #[test]
    fn a_failed_preflight_is_one_failing_testcase() {
        let report = Report {
            server: "127.0.0.1:1".to_owned(),
            preflight: Some("nothing answers there".to_owned()),
            ..Report::default()
        };
        let xml = xml(&report, Lang::En);
        assert!(xml.contains("tests=\"1\" failures=\"1\""));
        assert!(xml.contains("name=\"preflight\""));
    }
}
