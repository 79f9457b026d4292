//! The operator's log, on stderr: one line per event, with a UTC timestamp.
//!
//! Events are connections accepted and refused, logins, disconnections and
//! timeouts. Message text is private: it is logged only with `--verbose`,
//! which logs every line in (`>`) and out (`<`) to watch the protocol live.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

/// Where the server reports what happens.
#[derive(Debug, Clone, Copy, Default)]
pub struct Log {
    /// Also log every line in and out (`--verbose`).
    pub verbose: bool,
}

impl Log {
    /// Logs one event line.
    pub fn event(&self, what: fmt::Arguments<'_>) {
        eprintln!("{} {what}", Timestamp::now());
    }

    /// With `--verbose`, logs one wire line received from (`>`) or sent to
    /// (`<`) the client called `who`, with control characters escaped.
    pub fn wire(&self, who: &str, direction: char, line: &[u8]) {
        if self.verbose {
            self.event(format_args!("{who} {direction} {}", escaped(line)));
        }
    }
}

/// A wire line as the log shows it: at most 200 characters, control
/// characters escaped (`\r`, `\u{1b}`) and bytes that are not UTF-8 shown
/// as `\xff`, so a teacher sees exactly what a client sent (telnet's
/// control bytes, say) without it garbling the log.
fn escaped(line: &[u8]) -> String {
    const MAX_LOGGED_CHARS: usize = 200;
    let mut out = String::new();
    let mut count = 0;
    for chunk in line.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_control() || crate::protocol::is_forbidden_in_text(c) {
                out.extend(c.escape_debug());
            } else {
                out.push(c);
            }
            count += 1;
        }
        for byte in chunk.invalid() {
            out.push_str(&format!("\\x{byte:02x}"));
            count += 1;
        }
        if count > MAX_LOGGED_CHARS {
            out.push('…');
            break;
        }
    }
    out
}

/// A UTC time to the second, shown as `2026-11-24T16:20:05Z`.
pub struct Timestamp(u64);

impl Timestamp {
    pub fn now() -> Timestamp {
        let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH);
        Timestamp(since_epoch.map_or(0, |d| d.as_secs()))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (days, secs) = (self.0 / 86_400, self.0 % 86_400);
        let (year, month, day) = civil_from_days(days);
        let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
        write!(f, "{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}Z")
    }
}

/// The proleptic Gregorian date of a day counted from 1970-01-01 (Howard
/// Hinnant's `civil_from_days`, for days after the epoch).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_lines_are_logged_escaped_and_cut() {
        assert_eq!(escaped(b"SEND bob caf\xc3\xa9 \\o/"), "SEND bob café \\o/");
        assert_eq!(
            escaped(b"\xff\xf4\xff\xfd\x06PING\r"),
            "\\xff\\xf4\\xff\\xfd\\u{6}PING\\r"
        );
        assert!(escaped(&[b'x'; 600]).ends_with('…'));
    }

    #[test]
    fn timestamps_are_utc_iso_8601() {
        assert_eq!(Timestamp(0).to_string(), "1970-01-01T00:00:00Z");
        assert_eq!(Timestamp(951_782_400).to_string(), "2000-02-29T00:00:00Z");
        assert_eq!(Timestamp(1_795_537_205).to_string(), "2026-11-24T16:20:05Z");
    }
}
