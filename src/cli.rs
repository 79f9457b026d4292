//! The command line: `minichat [serve] [FLAGS]`, `--help`, `--version`.
//!
//! Parsing is a pure function from the arguments to an [`Invocation`], so
//! every flag is tested without starting anything. A bad flag or value is a
//! [`UsageError`]: one line on stderr and exit code 2 (see `main.rs`).

use std::ffi::OsString;
use std::fmt;
use std::time::Duration;

use crate::config::{
    Config, DEFAULT_IDLE_TIMEOUT, DEFAULT_LOGIN_TIMEOUT, DEFAULT_MAX_CONNECTIONS, DEFAULT_PORT,
    DEFAULT_WRITE_TIMEOUT,
};

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invocation {
    /// `minichat [serve] [FLAGS]`: run the server.
    Serve(Config),
    /// `--help`: print [`usage`] on stdout.
    Help,
    /// `--version`: print the version on stdout.
    Version,
}

/// A command line that cannot be obeyed; its message is one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (see minichat --help)", self.0)
    }
}

impl std::error::Error for UsageError {}

/// The text of `--help`.
pub fn usage() -> String {
    format!(
        "\
minichat {version}: a small text-messaging server (the minichat protocol, version 1)

Usage: minichat [serve] [OPTIONS]

Options:
  --bind ADDR             address to listen on [default: 0.0.0.0]
  --port N                TCP port, 0 for any free port [default: {port}]
  --max-connections N     open connections allowed at once, at least 1 [default: {max}]
  --login-timeout SECS    close connections that have not logged in after SECS, 0 for never [default: {login}]
  --idle-timeout SECS     close connections silent for SECS, 0 for never [default: {idle}]
  --write-timeout SECS    drop clients that do not read a line within SECS, at least 1 [default: {write}]
  --verbose               log every line in and out
  --help                  print this help
  --version               print the version

Try it: minichat --port 1234, then in two other terminals: nc localhost 1234
",
        version = env!("CARGO_PKG_VERSION"),
        port = DEFAULT_PORT,
        max = DEFAULT_MAX_CONNECTIONS,
        login = DEFAULT_LOGIN_TIMEOUT.as_secs(),
        idle = DEFAULT_IDLE_TIMEOUT.as_secs(),
        write = DEFAULT_WRITE_TIMEOUT.as_secs(),
    )
}

/// Reads the arguments (without the program's name).
pub fn parse<I>(args: I) -> Result<Invocation, UsageError>
where
    I: IntoIterator,
    I::Item: Into<OsString>,
{
    let mut args = args
        .into_iter()
        .map(|arg| {
            arg.into()
                .into_string()
                .map_err(|arg| UsageError(format!("argument {arg:?} is not valid UTF-8")))
        })
        .collect::<Result<Vec<String>, UsageError>>()?
        .into_iter()
        .peekable();
    if args.peek().is_some_and(|first| first == "serve") {
        args.next();
    }
    let mut config = Config::default();
    while let Some(arg) = args.next() {
        let (flag, inline_value) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => {
                (flag.to_owned(), Some(value.to_owned()))
            }
            _ => (arg, None),
        };
        let mut value = || {
            inline_value
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| UsageError(format!("{flag} needs a value")))
        };
        match flag.as_str() {
            "--help" | "-h" => return Ok(Invocation::Help),
            "--version" | "-V" => return Ok(Invocation::Version),
            "--verbose" | "-v" => config.verbose = true,
            "--bind" => {
                config.bind = parse_value(&flag, &value()?, "an IP address such as 0.0.0.0 or ::1")?
            }
            "--port" => {
                config.port = parse_value(&flag, &value()?, "a port number from 0 to 65535")?
            }
            "--max-connections" => {
                config.max_connections = at_least_one(&flag, &value()?)?;
            }
            "--login-timeout" => config.login_timeout = seconds_or_never(&flag, &value()?)?,
            "--idle-timeout" => config.idle_timeout = seconds_or_never(&flag, &value()?)?,
            "--write-timeout" => {
                config.write_timeout = Duration::from_secs(at_least_one(&flag, &value()?)? as u64);
            }
            _ if flag.starts_with('-') => return Err(UsageError(format!("unknown option {flag}"))),
            _ => return Err(UsageError(format!("unexpected argument {flag:?}"))),
        }
        if inline_value.is_some() && matches!(flag.as_str(), "--verbose" | "--help" | "--version") {
            return Err(UsageError(format!("{flag} takes no value")));
        }
    }
    Ok(Invocation::Serve(config))
}

fn parse_value<T: std::str::FromStr>(
    flag: &str,
    value: &str,
    expected: &str,
) -> Result<T, UsageError> {
    value.parse().map_err(|_| {
        UsageError(format!(
            "{flag}: invalid value {value:?}, expected {expected}"
        ))
    })
}

fn at_least_one(flag: &str, value: &str) -> Result<usize, UsageError> {
    match parse_value(flag, value, "a whole number, at least 1")? {
        0 => Err(UsageError(format!("{flag}: must be at least 1"))),
        n => Ok(n),
    }
}

fn seconds_or_never(flag: &str, value: &str) -> Result<Option<Duration>, UsageError> {
    let secs: u64 = parse_value(flag, value, "a number of seconds, 0 for never")?;
    Ok((secs > 0).then(|| Duration::from_secs(secs)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serve(args: &[&str]) -> Config {
        match parse(args.iter().copied()) {
            Ok(Invocation::Serve(config)) => config,
            other => panic!("{args:?} gave {other:?}"),
        }
    }

    fn error(args: &[&str]) -> String {
        match parse(args.iter().copied()) {
            Err(UsageError(message)) => message,
            other => panic!("{args:?} gave {other:?}"),
        }
    }

    #[test]
    fn no_arguments_serve_with_the_contracts_defaults() {
        let config = serve(&[]);
        assert_eq!(config, Config::default());
        assert_eq!(config.bind.to_string(), "0.0.0.0");
        assert_eq!(config.port, 1234);
        assert_eq!(config.max_connections, 5);
        assert_eq!(config.login_timeout, Some(Duration::from_secs(60)));
        assert_eq!(config.idle_timeout, Some(Duration::from_secs(600)));
        assert_eq!(config.write_timeout, Duration::from_secs(2));
        assert!(!config.verbose);
    }

    #[test]
    fn serve_is_a_synonym_of_no_subcommand() {
        assert_eq!(serve(&["serve", "--port", "0"]), serve(&["--port", "0"]));
    }

    #[test]
    fn every_flag_is_read_in_both_forms() {
        let config = serve(&[
            "--bind",
            "::1",
            "--port=0",
            "--max-connections",
            "7",
            "--login-timeout",
            "0",
            "--idle-timeout=30",
            "--write-timeout",
            "3",
            "--verbose",
        ]);
        assert_eq!(config.bind.to_string(), "::1");
        assert_eq!(config.port, 0);
        assert_eq!(config.max_connections, 7);
        assert_eq!(config.login_timeout, None);
        assert_eq!(config.idle_timeout, Some(Duration::from_secs(30)));
        assert_eq!(config.write_timeout, Duration::from_secs(3));
        assert!(config.verbose);
    }

    #[test]
    fn help_and_version() {
        assert_eq!(parse(["--help"]), Ok(Invocation::Help));
        assert_eq!(parse(["--port", "1", "--version"]), Ok(Invocation::Version));
        assert!(usage().contains("--max-connections"));
    }

    #[test]
    fn bad_flags_and_values_are_usage_errors() {
        assert!(error(&["--nope"]).contains("unknown option --nope"));
        assert!(error(&["--port"]).contains("needs a value"));
        assert!(error(&["--port", "70000"]).contains("invalid value"));
        assert!(error(&["--bind", "localhost:80"]).contains("IP address"));
        assert!(error(&["--write-timeout", "0"]).contains("at least 1"));
        assert!(error(&["--max-connections", "0"]).contains("at least 1"));
        assert!(error(&["--idle-timeout", "-1"]).contains("invalid value"));
        assert!(error(&["--verbose=yes"]).contains("takes no value"));
        assert!(error(&["chat"]).contains("unexpected argument"));
    }

    #[test]
    fn usage_errors_are_one_line() {
        let message = UsageError("--port needs a value".into()).to_string();
        assert!(!message.contains('\n'));
    }
}
