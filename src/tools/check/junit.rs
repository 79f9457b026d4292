//! The run as a JUnit XML report (`--junit PATH`), the format GitHub
//! Actions test reporters and GitLab CI (`artifacts:reports:junit`) read:
//! one `<testsuite>` with its counts and time, one `<testcase>` per check,
//! with a `<failure>` (its message both as the `message` attribute and as
//! text, since GitLab shows only the text) or a `<skipped>`.

use std::fs;
use std::io;
use std::path::Path;
use std::time::Duration;

use super::{Report, Verdict};

/// The `classname` of every test case: GitLab shows it as the suite.
const CLASS: &str = "minichat.check";

/// Writes the report of `report` to `path`.
pub fn write(path: &Path, report: &Report) -> io::Result<()> {
    fs::write(path, xml(report))
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
}

/// The report as JUnit XML.
pub fn xml(report: &Report) -> String {
    let name = escape(&format!("minichat check {}", report.server));
    let mut cases = String::new();
    let (mut tests, mut failures, mut skipped) = (0, 0, 0);
    if let Some(why) = &report.preflight {
        tests += 1;
        failures += 1;
        cases.push_str(&testcase("preflight", Duration::ZERO, &failure(why)));
    }
    for outcome in &report.outcomes {
        tests += 1;
        let inner = match &outcome.verdict {
            Verdict::Passed => String::new(),
            Verdict::Failed(why) => {
                failures += 1;
                failure(&why.0)
            }
            Verdict::Skipped(why) => {
                skipped += 1;
                format!("<skipped message=\"{}\"/>", escape(why))
            }
        };
        cases.push_str(&testcase(outcome.name, outcome.time, &inner));
    }
    let counts = format!(
        "tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\" time=\"{}\"",
        secs(report.time)
    );
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <testsuites name=\"{name}\" {counts}>\n\
         \x20 <testsuite name=\"{name}\" {counts}>\n\
         {cases}\
         \x20 </testsuite>\n\
         </testsuites>\n"
    )
}

fn testcase(name: &str, time: Duration, inner: &str) -> String {
    let open = format!(
        "    <testcase classname=\"{CLASS}\" name=\"{}\" time=\"{}\"",
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
/// (most C0 controls, U+FFFE, U+FFFF) as `\u{...}`.
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
                out.push_str(&c.escape_unicode().to_string());
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
            "a\\u{0}b\\u{1b}c\\u{ffff}"
        );
        assert_eq!(escape("tab\there\nCR\r"), "tab&#9;here&#10;CR&#13;");
        assert_eq!(escape("Élodie 日本 😀"), "Élodie 日本 😀");
    }

    #[test]
    fn a_report_has_one_testcase_per_check_and_the_counts() {
        let report = Report {
            server: "127.0.0.1:1234".to_owned(),
            outcomes: vec![
                Outcome {
                    name: "greeting",
                    verdict: Verdict::Passed,
                    time: Duration::from_millis(12),
                },
                Outcome {
                    name: "help",
                    verdict: Verdict::Failed(Failure::new("sent \"HELP\"; got <nothing>")),
                    time: Duration::from_millis(1500),
                },
                Outcome {
                    name: "login-timeout",
                    verdict: Verdict::Skipped("needs --spawn".to_owned()),
                    time: Duration::ZERO,
                },
            ],
            preflight: None,
            time: Duration::from_millis(2345),
        };
        let xml = xml(&report);
        assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites "));
        assert!(xml.contains(
            "<testsuite name=\"minichat check 127.0.0.1:1234\" tests=\"3\" failures=\"1\" \
             errors=\"0\" skipped=\"1\" time=\"2.345\">"
        ));
        assert!(
            xml.contains(
                "<testcase classname=\"minichat.check\" name=\"greeting\" time=\"0.012\"/>"
            )
        );
        assert!(xml.contains(
            "<failure message=\"sent &quot;HELP&quot;; got &lt;nothing&gt;\" type=\"FAIL\">\
             sent &quot;HELP&quot;; got &lt;nothing&gt;</failure>"
        ));
        assert!(xml.contains("<skipped message=\"needs --spawn\"/>"));
        assert_eq!(xml.matches("<testcase ").count(), 3);
        assert!(xml.ends_with("</testsuite>\n</testsuites>\n"));
    }

    #[test]
    fn a_failed_preflight_is_one_failing_testcase() {
        let report = Report {
            server: "127.0.0.1:1".to_owned(),
            preflight: Some("nothing answers there".to_owned()),
            ..Report::default()
        };
        let xml = xml(&report);
        assert!(xml.contains("tests=\"1\" failures=\"1\""));
        assert!(xml.contains("name=\"preflight\""));
    }
}
