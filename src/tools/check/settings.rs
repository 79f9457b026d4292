//! What the checks know about the server's settings, and the flags spawn
//! mode starts it with.
//!
//! In spawn mode each check names the flags it needs ([`ServerFlags`]):
//! the checker starts the server with them, so it knows every setting. A
//! server already running was started by someone else: the checks know
//! only what `minichat check` was told (`--max-connections`,
//! `--login-timeout`, ...), and a check that needs a setting it was not
//! told, or one the server cannot have, is skipped.

use std::time::Duration;

use crate::protocol::DEFAULT_MAX_CONNECTIONS;
use crate::server::config::{DEFAULT_IDLE_TIMEOUT, DEFAULT_LOGIN_TIMEOUT, DEFAULT_WRITE_TIMEOUT};

/// A login or idle timeout: `--login-timeout 0` is never.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeLimit {
    Never,
    After(Duration),
}

impl TimeLimit {
    /// The value of a server flag given in whole seconds (`0` is never).
    pub fn from_flag(secs: u64) -> TimeLimit {
        match secs {
            0 => TimeLimit::Never,
            secs => TimeLimit::After(Duration::from_secs(secs)),
        }
    }

    /// The duration, if there is one.
    pub fn duration(self) -> Option<Duration> {
        match self {
            TimeLimit::Never => None,
            TimeLimit::After(duration) => Some(duration),
        }
    }
}

/// The settings of the server under test, as far as the checker knows
/// them (`None`: not known).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// `--max-connections`.
    pub max_connections: usize,
    /// `--login-timeout`.
    pub login_timeout: Option<TimeLimit>,
    /// `--idle-timeout`.
    pub idle_timeout: Option<TimeLimit>,
    /// `--write-timeout`.
    pub write_timeout: Option<Duration>,
}

impl Default for Settings {
    /// A running server nobody said anything about: the contract's
    /// connection limit, timeouts unknown.
    fn default() -> Self {
        Settings {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            login_timeout: None,
            idle_timeout: None,
            write_timeout: None,
        }
    }
}

/// What the checker does with the stderr of a server it starts, once it
/// has read the first line (the guarantee that the log never stops the
/// server is checked by not reading it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Stderr {
    /// Read and thrown away for the server's whole life.
    #[default]
    Drained,
    /// Kept open but never read again: a pipe nobody reads.
    Stalled,
    /// Closed.
    Closed,
}

/// The flags a check has the server started with, besides
/// `--bind 127.0.0.1 --port 0`. `None` is "not given": the contract's
/// default applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ServerFlags {
    pub max_connections: Option<usize>,
    /// Whole seconds, `0` for never.
    pub login_timeout: Option<u64>,
    /// Whole seconds, `0` for never.
    pub idle_timeout: Option<u64>,
    /// Whole seconds.
    pub write_timeout: Option<u64>,
    /// `--verbose`: the server logs every line, which fills its stderr.
    pub verbose: bool,
    /// Not a flag: what the checker does with the server's stderr.
    pub stderr: Stderr,
}

impl ServerFlags {
    /// No flag: the contract's defaults.
    pub const DEFAULTS: ServerFlags = ServerFlags {
        max_connections: None,
        login_timeout: None,
        idle_timeout: None,
        write_timeout: None,
        verbose: false,
        stderr: Stderr::Drained,
    };

    /// The arguments that start a server with these flags on a free port
    /// of the loopback.
    pub fn args(&self) -> Vec<String> {
        let mut args: Vec<String> = ["--bind", "127.0.0.1", "--port", "0"]
            .map(str::to_owned)
            .into();
        let mut flag = |name: &str, value: Option<String>| {
            if let Some(value) = value {
                args.extend([name.to_owned(), value]);
            }
        };
        flag(
            "--max-connections",
            self.max_connections.map(|n| n.to_string()),
        );
        flag("--login-timeout", self.login_timeout.map(|s| s.to_string()));
        flag("--idle-timeout", self.idle_timeout.map(|s| s.to_string()));
        flag("--write-timeout", self.write_timeout.map(|s| s.to_string()));
        if self.verbose {
            args.push("--verbose".to_owned());
        }
        args
    }

    /// The settings of a server started with these flags.
    pub fn settings(&self) -> Settings {
        Settings {
            max_connections: self.max_connections.unwrap_or(DEFAULT_MAX_CONNECTIONS),
            login_timeout: Some(self.login_timeout.map_or(
                TimeLimit::After(DEFAULT_LOGIN_TIMEOUT),
                TimeLimit::from_flag,
            )),
            idle_timeout: Some(
                self.idle_timeout
                    .map_or(TimeLimit::After(DEFAULT_IDLE_TIMEOUT), TimeLimit::from_flag),
            ),
            write_timeout: Some(
                self.write_timeout
                    .map_or(DEFAULT_WRITE_TIMEOUT, Duration::from_secs),
            ),
        }
    }

    /// Why a check that needs these flags cannot run against a server
    /// already running with `known` settings, if it cannot.
    pub fn unmet_by(&self, known: &Settings) -> Option<String> {
        if self.verbose || self.stderr != Stderr::Drained {
            return Some("needs --spawn: it starts the server and watches its stderr".to_owned());
        }
        let timeout = |flag: &str, needed: Option<u64>, known: Option<TimeLimit>| match (
            needed, known,
        ) {
            (None, _) => None,
            (Some(0), Some(TimeLimit::Never)) => None,
            (Some(0), _) => Some(format!(
                "needs a server started with {flag} 0: run it so and pass {flag} 0, or use --spawn"
            )),
            (Some(_), Some(TimeLimit::After(_))) => None,
            (Some(_), _) => Some(format!(
                "needs the server's {flag}: pass {flag} SECS (a small value), or use --spawn"
            )),
        };
        timeout("--login-timeout", self.login_timeout, known.login_timeout)
            .or_else(|| timeout("--idle-timeout", self.idle_timeout, known.idle_timeout))
            .or_else(|| match (self.write_timeout, known.write_timeout) {
                (Some(_), None) => Some(
                    "needs the server's --write-timeout: pass --write-timeout SECS, or use --spawn"
                        .to_owned(),
                ),
                _ => None,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_become_arguments_after_the_loopback_and_any_port() {
        assert_eq!(
            ServerFlags::DEFAULTS.args(),
            ["--bind", "127.0.0.1", "--port", "0"]
        );
        let flags = ServerFlags {
            max_connections: Some(2),
            login_timeout: Some(0),
            idle_timeout: Some(3),
            write_timeout: Some(1),
            verbose: true,
            stderr: Stderr::Stalled,
        };
        assert_eq!(
            flags.args().join(" "),
            "--bind 127.0.0.1 --port 0 --max-connections 2 --login-timeout 0 \
             --idle-timeout 3 --write-timeout 1 --verbose"
        );
        let settings = flags.settings();
        assert_eq!(settings.max_connections, 2);
        assert_eq!(settings.login_timeout, Some(TimeLimit::Never));
        assert_eq!(
            settings.idle_timeout,
            Some(TimeLimit::After(Duration::from_secs(3)))
        );
        assert_eq!(settings.write_timeout, Some(Duration::from_secs(1)));
    }

    #[test]
    fn the_defaults_are_the_contracts() {
        let settings = ServerFlags::DEFAULTS.settings();
        assert_eq!(settings.max_connections, 5);
        assert_eq!(
            settings.login_timeout,
            Some(TimeLimit::After(Duration::from_secs(60)))
        );
        assert_eq!(
            settings.idle_timeout,
            Some(TimeLimit::After(Duration::from_secs(600)))
        );
        assert_eq!(settings.write_timeout, Some(Duration::from_secs(2)));
    }

    #[test]
    fn a_running_server_runs_the_checks_whose_settings_it_was_told() {
        let unknown = Settings::default();
        let told = Settings {
            login_timeout: Some(TimeLimit::After(Duration::from_secs(2))),
            idle_timeout: Some(TimeLimit::Never),
            write_timeout: Some(Duration::from_secs(1)),
            ..Settings::default()
        };
        let login = ServerFlags {
            login_timeout: Some(2),
            ..ServerFlags::DEFAULTS
        };
        assert!(
            login
                .unmet_by(&unknown)
                .unwrap()
                .contains("--login-timeout SECS")
        );
        assert_eq!(login.unmet_by(&told), None);
        let never = ServerFlags {
            idle_timeout: Some(0),
            ..ServerFlags::DEFAULTS
        };
        assert!(
            never
                .unmet_by(&unknown)
                .unwrap()
                .contains("--idle-timeout 0")
        );
        assert_eq!(never.unmet_by(&told), None);
        let write = ServerFlags {
            write_timeout: Some(1),
            ..ServerFlags::DEFAULTS
        };
        assert!(write.unmet_by(&unknown).is_some());
        assert_eq!(write.unmet_by(&told), None);
        let log = ServerFlags {
            stderr: Stderr::Closed,
            ..ServerFlags::DEFAULTS
        };
        assert!(log.unmet_by(&told).unwrap().contains("--spawn"));
        assert_eq!(ServerFlags::DEFAULTS.unmet_by(&unknown), None);
    }
}
