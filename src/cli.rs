//! The command line: `minichat [serve] [FLAGS]`, `minichat connect
//! [HOST[:PORT]] [FLAGS]`, `minichat check [HOST[:PORT]] [FLAGS]`,
//! `minichat diagram [FILE] [FLAGS]`, `--help`, `--version`.
//!
//! Parsing is a pure function from the arguments to an [`Invocation`], so
//! every flag is tested without starting anything. A bad flag or value is a
//! [`UsageError`]: one line on stderr and exit code 2 (see `main.rs`).

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::lang::Lang;
use crate::server::config::{
    Config, DEFAULT_IDLE_TIMEOUT, DEFAULT_LOGIN_TIMEOUT, DEFAULT_MAX_CONNECTIONS, DEFAULT_PORT,
    DEFAULT_WRITE_TIMEOUT,
};
use crate::tools::check::launch::SpawnCommand;
use crate::tools::check::settings::TimeLimit;
use crate::tools::check::{ALL_LEVELS, CheckOptions, ServerUnderTest, checks, words};
use crate::tools::connect::ConnectOptions;
use crate::tools::diagram::{DiagramOptions, TimeBound};
use crate::tools::remote::Target;

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invocation {
    /// `minichat [serve] [FLAGS]`: run the server.
    Serve(Config),
    /// `minichat connect [HOST[:PORT]] [--raw] [--wait SECS]
    /// [--keepalive SECS]`: the interactive client.
    Connect(ConnectOptions),
    /// `minichat check [HOST[:PORT]] [FLAGS]`: the conformance suite.
    Check(CheckOptions),
    /// `minichat diagram [FILE] [FLAGS]`: a log to a sequence diagram.
    Diagram(DiagramOptions),
    /// `--help` or `minichat help`: print [`usage`] on stdout.
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

Usage: minichat [serve] [OPTIONS]                run the server
       minichat connect [HOST[:PORT]] [OPTIONS]  talk to a server, line by line
       minichat check [HOST[:PORT]] [OPTIONS]    test a running server against the protocol
       minichat check --spawn CMD [OPTIONS]      start a server and test it completely
       minichat diagram [FILE] [OPTIONS]         draw a --verbose log as a sequence diagram
       minichat help                             print this help

HOST defaults to 127.0.0.1 and PORT to {port}; write an IPv6 address as [::1]:{port}.

Server options:
  --bind ADDR             address to listen on [default: 0.0.0.0]
  --port N                TCP port, 0 for any free port [default: {port}]
  --max-connections N     open connections allowed at once, at least 1 [default: {max}]
  --login-timeout SECS    close connections that have not logged in after SECS, 0 for never [default: {login}]
  --idle-timeout SECS     close connections silent for SECS, 0 for never [default: {idle}]
  --write-timeout SECS    drop clients that do not read a line within SECS, at least 1 [default: {write}]
                          (SECS: whole seconds, up to 18446744073709551615; more than
                          100 years counts as 100 years)
  --verbose               log every line in and out
  --watch ADDR:PORT       serve a live view of the protocol (a sequence diagram, the slots)
                          to a browser at http://ADDR:PORT/, for a projector. Off by default.
                          It shows message texts, as --verbose does, to whoever can reach
                          that port: 127.0.0.1:8080 keeps it to this machine
  --help                  print this help
  --version               print the version

Connect options:
  --raw                   show the protocol's lines as they are, not rendered
  --wait SECS             wait at most SECS for the greeting and, with piped input,
                          for the reply to each line before the next [default: {reply_wait}]
  --keepalive SECS        send PING (and hide its OK PING) after SECS without a line
                          from you, so the server's idle timeout spares a listener;
                          0 for never [default: {keepalive}]

Check options (prints PASS, FAIL or SKIP per check, then a summary; exit 0 if none failed):
  --spawn CMD             start the server to check (CMD is 'COMMAND ARGS', split like a
                          shell would) as often as the checks need, with --bind 127.0.0.1
                          --port 0 and the flags each check needs: every check runs
  --junit PATH            also write a JUnit XML report to PATH (for CI)
  --only NAME[,NAME...]   run only these checks
  --level 1|2|3           1: connecting, framing, the commands; 2: also names, texts,
                          limits, timeouts, the command line; 3: also the guarantees
                          [default: 3]
  --lang fr|en            the language of the report [default: from LC_ALL, LC_MESSAGES
                          or LANG: fr if it starts with fr, else en]
  --list                  print every check (level, PROTOCOL.md section, rule) and exit
  --wait SECS             wait at most SECS for each expected line [default: {check_wait}]
  For a running server (HOST[:PORT]), what it was started with, so that more checks can run:
  --max-connections N     its connection limit [default: {max}]
  --login-timeout SECS    its login timeout, 0 for never (start it with a small one)
  --idle-timeout SECS     its idle timeout, 0 for never
  --timeouts SECS         both of the above
  --write-timeout SECS    its write timeout

Diagram options (reads FILE, or standard input if none or -; writes Mermaid text):
  --only NAME[,NAME...]   only these users' connections (any case), or addresses
  --from TIME             only from TIME on: 14:05, 14:05:30 or 2026-11-24T14:05:30Z (UTC,
                          as the log writes it)
  --until TIME            only up to TIME, included (--until 14:05 keeps 14:05:59)
  --max-lines N           at most N rows
  --lang LANG             en or fr, for the words the diagram adds [default: en]

While the server runs, type on its standard input: list (the open connections),
kick NAME or kick ADDRESS (close one), help.

Try it: minichat, then in two other terminals: minichat connect
",
        version = env!("CARGO_PKG_VERSION"),
        port = DEFAULT_PORT,
        max = DEFAULT_MAX_CONNECTIONS,
        login = DEFAULT_LOGIN_TIMEOUT.as_secs(),
        idle = DEFAULT_IDLE_TIMEOUT.as_secs(),
        write = DEFAULT_WRITE_TIMEOUT.as_secs(),
        reply_wait = crate::tools::connect::DEFAULT_REPLY_WAIT.as_secs(),
        keepalive = crate::tools::connect::DEFAULT_KEEPALIVE.as_secs(),
        check_wait = crate::tools::check::DEFAULT_WAIT.as_secs(),
    )
}

/// Reads the arguments (without the program's name).
pub fn parse<I>(args: I) -> Result<Invocation, UsageError>
where
    I: IntoIterator,
    I::Item: Into<OsString>,
{
    let args = args
        .into_iter()
        .map(|arg| {
            arg.into()
                .into_string()
                .map_err(|arg| UsageError(format!("argument {arg:?} is not valid UTF-8")))
        })
        .collect::<Result<Vec<String>, UsageError>>()?;
    // `--help` and `--version` win over everything else.
    for arg in &args {
        match arg.as_str() {
            "--help" | "-h" => return Ok(Invocation::Help),
            "--version" | "-V" => return Ok(Invocation::Version),
            _ => {}
        }
    }
    let (subcommand, rest) = match args.split_first() {
        Some((first, rest)) => (first.as_str(), rest.to_vec()),
        None => ("serve", Vec::new()),
    };
    match subcommand {
        "serve" => parse_serve(Args::new(rest)),
        "connect" => parse_connect(Args::new(rest)),
        "check" => parse_check(Args::new(rest)),
        "diagram" => parse_diagram(Args::new(rest)),
        "help" => Ok(Invocation::Help),
        _ => parse_serve(Args::new(args)), // `minichat [FLAGS]` serves
    }
}

/// The arguments after the subcommand.
struct Args {
    rest: std::vec::IntoIter<String>,
    /// The flags seen so far: a flag given twice is a usage error, not a
    /// silent choice of the last one.
    seen: Vec<String>,
}

/// One argument: a flag with its `=value` if written so, or a word.
enum Arg {
    Flag(String, Option<String>),
    Word(String),
}

impl Args {
    fn new(args: Vec<String>) -> Args {
        Args {
            rest: args.into_iter(),
            seen: Vec::new(),
        }
    }

    /// The next argument, or a usage error for a flag given twice.
    fn next(&mut self) -> Result<Option<Arg>, UsageError> {
        let Some(arg) = self.rest.next() else {
            return Ok(None);
        };
        let arg = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => {
                Arg::Flag(flag.to_owned(), Some(value.to_owned()))
            }
            _ if arg.starts_with('-') => Arg::Flag(arg, None),
            _ => Arg::Word(arg),
        };
        if let Arg::Flag(flag, _) = &arg {
            let name = match flag.as_str() {
                "-v" => "--verbose",
                flag => flag,
            };
            if self.seen.iter().any(|seen| seen == name) {
                return Err(UsageError(format!("{name} is given twice")));
            }
            self.seen.push(name.to_owned());
        }
        Ok(Some(arg))
    }

    /// The value of `flag`: its `=value`, or the next argument.
    fn value(&mut self, flag: &str, inline: Option<String>) -> Result<String, UsageError> {
        inline
            .or_else(|| self.rest.next())
            .ok_or_else(|| UsageError(format!("{flag} needs a value")))
    }
}

fn no_value(flag: &str, inline: &Option<String>) -> Result<(), UsageError> {
    match inline {
        Some(_) => Err(UsageError(format!("{flag} takes no value"))),
        None => Ok(()),
    }
}

fn unknown(flag: &str) -> UsageError {
    UsageError(format!("unknown option {flag}"))
}

/// `minichat [serve] [FLAGS]`.
fn parse_serve(mut args: Args) -> Result<Invocation, UsageError> {
    let mut config = Config::default();
    while let Some(arg) = args.next()? {
        let (flag, inline) = match arg {
            Arg::Flag(flag, inline) => (flag, inline),
            Arg::Word(word) => return Err(UsageError(format!("unexpected argument {word:?}"))),
        };
        match flag.as_str() {
            "--verbose" | "-v" => {
                no_value(&flag, &inline)?;
                config.verbose = true;
            }
            "--watch" => {
                config.watch = Some(parse_value(
                    &flag,
                    &args.value(&flag, inline)?,
                    "ADDR:PORT, such as 127.0.0.1:8080 or [::]:8080",
                )?)
            }
            "--bind" => {
                config.bind = parse_value(
                    &flag,
                    &args.value(&flag, inline)?,
                    "an IP address such as 0.0.0.0 or ::1",
                )?
            }
            "--port" => {
                config.port = parse_value(
                    &flag,
                    &args.value(&flag, inline)?,
                    "a port number from 0 to 65535",
                )?
            }
            "--max-connections" => {
                config.max_connections = at_least_one(&flag, &args.value(&flag, inline)?)?;
            }
            "--login-timeout" => {
                config.login_timeout = seconds_or_never(&flag, &args.value(&flag, inline)?)?
            }
            "--idle-timeout" => {
                config.idle_timeout = seconds_or_never(&flag, &args.value(&flag, inline)?)?
            }
            "--write-timeout" => {
                let secs = at_least_one(&flag, &args.value(&flag, inline)?)?;
                config.write_timeout = Duration::from_secs(secs);
            }
            _ => return Err(unknown(&flag)),
        }
    }
    Ok(Invocation::Serve(config))
}

/// For `connect` and `check`: a flag (with its `=value`, if written so) is
/// returned; a word is their optional `HOST[:PORT]`, kept in `target`.
fn flag_or_target(
    arg: Arg,
    target: &mut Option<Target>,
) -> Result<Option<(String, Option<String>)>, UsageError> {
    match arg {
        Arg::Flag(flag, inline) => Ok(Some((flag, inline))),
        Arg::Word(word) if target.is_none() => {
            *target = Some(Target::parse(&word).map_err(UsageError)?);
            Ok(None)
        }
        Arg::Word(word) => Err(UsageError(format!("unexpected argument {word:?}"))),
    }
}

/// `minichat connect [HOST[:PORT]] [--raw] [--wait SECS] [--keepalive SECS]`.
fn parse_connect(mut args: Args) -> Result<Invocation, UsageError> {
    let mut options = ConnectOptions::default();
    let mut target = None;
    while let Some(arg) = args.next()? {
        let Some((flag, inline)) = flag_or_target(arg, &mut target)? else {
            continue;
        };
        match flag.as_str() {
            "--raw" => {
                no_value(&flag, &inline)?;
                options.raw = true;
            }
            "--wait" => options.wait = positive_seconds(&flag, &args.value(&flag, inline)?)?,
            "--keepalive" => {
                options.keepalive = seconds_or_never(&flag, &args.value(&flag, inline)?)?
            }
            _ => return Err(unknown(&flag)),
        }
    }
    options.target = target.unwrap_or_default();
    Ok(Invocation::Connect(options))
}

/// `minichat check [HOST[:PORT] | --spawn 'COMMAND [ARGS...]'] [FLAGS]`.
fn parse_check(mut args: Args) -> Result<Invocation, UsageError> {
    let mut options = CheckOptions {
        lang: Lang::from_env(),
        ..CheckOptions::default()
    };
    let mut target = None;
    let mut spawn = None;
    // The first flag that describes a running server, if any.
    let mut described = None;
    while let Some(arg) = args.next()? {
        let Some((flag, inline)) = flag_or_target(arg, &mut target)? else {
            continue;
        };
        let mut value = || args.value(&flag, inline.clone());
        let known = &mut options.settings;
        match flag.as_str() {
            "--spawn" => {
                let words =
                    words::split(&value()?).map_err(|e| UsageError(format!("--spawn: {e}")))?;
                if words.is_empty() {
                    return Err(UsageError("--spawn: no command".to_owned()));
                }
                spawn = Some(SpawnCommand { words });
            }
            "--wait" => options.wait = positive_seconds(&flag, &value()?)?,
            "--junit" => options.junit = Some(PathBuf::from(value()?)),
            "--only" => options.only = check_names(&flag, &value()?)?,
            "--level" => options.level = level(&flag, &value()?)?,
            "--lang" => {
                let value = value()?;
                options.lang = Lang::parse(&value).ok_or_else(|| {
                    UsageError(format!(
                        "{flag}: invalid value {value:?}, expected fr or en"
                    ))
                })?;
            }
            "--list" => {
                no_value(&flag, &inline)?;
                options.list = true;
            }
            "--max-connections" => known.max_connections = at_least_one(&flag, &value()?)?,
            "--login-timeout" => known.login_timeout = Some(time_limit(&flag, &value()?)?),
            "--idle-timeout" => known.idle_timeout = Some(time_limit(&flag, &value()?)?),
            "--timeouts" => {
                let timeout = time_limit(&flag, &value()?)?;
                known.login_timeout = Some(timeout);
                known.idle_timeout = Some(timeout);
            }
            "--write-timeout" => known.write_timeout = Some(positive_seconds(&flag, &value()?)?),
            _ => return Err(unknown(&flag)),
        }
        if DESCRIBING.contains(&flag.as_str()) {
            described.get_or_insert(flag);
        }
    }
    options.server = match (spawn, target, described) {
        (Some(_), Some(_), _) => {
            return Err(UsageError(
                "give HOST[:PORT] or --spawn, not both".to_owned(),
            ));
        }
        (Some(_), None, Some(flag)) => {
            return Err(UsageError(format!(
                "{flag} describes a server already running; with --spawn the checker chooses \
                 the server's flags itself"
            )));
        }
        (Some(command), None, None) => ServerUnderTest::Spawn(command),
        (None, target, _) => ServerUnderTest::Running(target.unwrap_or_default()),
    };
    Ok(Invocation::Check(options))
}

/// `minichat diagram [FILE] [--only NAMES] [--from TIME] [--until TIME]
/// [--max-lines N] [--lang LANG]`.
fn parse_diagram(mut args: Args) -> Result<Invocation, UsageError> {
    let mut options = DiagramOptions::default();
    while let Some(arg) = args.next()? {
        let (flag, inline) = match arg {
            Arg::Word(word) if options.input.is_none() => {
                options.input = Some(PathBuf::from(word));
                continue;
            }
            Arg::Word(word) => return Err(UsageError(format!("unexpected argument {word:?}"))),
            Arg::Flag(flag, inline) if flag == "-" => {
                no_value(&flag, &inline)?;
                continue; // standard input, as with no FILE
            }
            Arg::Flag(flag, inline) => (flag, inline),
        };
        if !["--only", "--from", "--until", "--max-lines", "--lang"].contains(&flag.as_str()) {
            return Err(unknown(&flag));
        }
        let value = args.value(&flag, inline)?;
        let time = |value: &str| {
            TimeBound::parse(value).ok_or_else(|| {
                UsageError(format!(
                    "{flag}: invalid value {value:?}, expected a time such as 14:05, 14:05:30 \
                     or 2026-11-24T14:05:30Z"
                ))
            })
        };
        match flag.as_str() {
            "--only" => {
                options.only = value
                    .split(',')
                    .filter(|w| !w.is_empty())
                    .map(str::to_owned)
                    .collect();
                if options.only.is_empty() {
                    return Err(UsageError(format!("{flag}: no name given")));
                }
            }
            "--from" => options.from = Some(time(&value)?),
            "--until" => options.until = Some(time(&value)?),
            "--max-lines" => options.max_lines = Some(at_least_one(&flag, &value)?),
            "--lang" => {
                options.lang = Lang::parse(&value).ok_or_else(|| {
                    UsageError(format!(
                        "{flag}: invalid value {value:?}, expected en or fr"
                    ))
                })?
            }
            _ => return Err(unknown(&flag)),
        }
    }
    Ok(Invocation::Diagram(options))
}

/// The flags of `check` that describe a server already running.
const DESCRIBING: [&str; 5] = [
    "--max-connections",
    "--login-timeout",
    "--idle-timeout",
    "--timeouts",
    "--write-timeout",
];

/// `--only NAME[,NAME...]`: names of checks of the suite.
fn check_names(flag: &str, value: &str) -> Result<Vec<String>, UsageError> {
    let known: Vec<&str> = checks::all().iter().map(|check| check.name).collect();
    value
        .split(',')
        .map(|name| match known.contains(&name) {
            true => Ok(name.to_owned()),
            false => Err(UsageError(format!(
                "{flag}: no check is named {name:?} (minichat check --list lists them)"
            ))),
        })
        .collect()
}

/// `--level 1|2|3`.
fn level(flag: &str, value: &str) -> Result<u8, UsageError> {
    match value.parse::<u8>() {
        Ok(level @ 1..=ALL_LEVELS) => Ok(level),
        _ => Err(UsageError(format!(
            "{flag}: invalid value {value:?}, expected 1, 2 or 3"
        ))),
    }
}

/// A server's login or idle timeout: seconds, `0` for never.
fn time_limit(flag: &str, value: &str) -> Result<TimeLimit, UsageError> {
    match value.parse::<f64>() {
        Ok(0.0) => Ok(TimeLimit::Never),
        _ => positive_seconds(flag, value).map(TimeLimit::After),
    }
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

fn at_least_one<N: std::str::FromStr + PartialEq + From<u8>>(
    flag: &str,
    value: &str,
) -> Result<N, UsageError> {
    let n: N = parse_value(flag, value, "a whole number, at least 1")?;
    match n == N::from(0) {
        true => Err(UsageError(format!("{flag}: must be at least 1"))),
        false => Ok(n),
    }
}

/// A duration in seconds, fractions allowed (`0.5`), more than zero.
fn positive_seconds(flag: &str, value: &str) -> Result<Duration, UsageError> {
    let secs: f64 = parse_value(flag, value, "a number of seconds such as 3 or 0.5")?;
    match Duration::try_from_secs_f64(secs) {
        Ok(duration) if !duration.is_zero() && duration <= MAX_WAIT => Ok(duration),
        _ => Err(UsageError(format!(
            "{flag}: must be more than 0 and at most {} seconds",
            MAX_WAIT.as_secs()
        ))),
    }
}

/// The longest wait or timeout the client tools accept: a day.
const MAX_WAIT: Duration = Duration::from_secs(86_400);

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
        assert_eq!(config.watch, None);
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
            "--watch=[::1]:8080",
        ]);
        assert_eq!(config.watch, Some("[::1]:8080".parse().unwrap()));
        assert_eq!(config.bind.to_string(), "::1");
        assert_eq!(config.port, 0);
        assert_eq!(config.max_connections, 7);
        assert_eq!(config.login_timeout, None);
        assert_eq!(config.idle_timeout, Some(Duration::from_secs(30)));
        assert_eq!(config.write_timeout, Duration::from_secs(3));
        assert!(config.verbose);
    }

    #[test]
    fn every_timeout_accepts_the_largest_number_of_seconds() {
        let max = u64::MAX.to_string();
        let config = serve(&[
            "--login-timeout",
            &max,
            "--idle-timeout",
            &max,
            "--write-timeout",
            &max,
        ]);
        let huge = Duration::from_secs(u64::MAX);
        assert_eq!(config.login_timeout, Some(huge));
        assert_eq!(config.idle_timeout, Some(huge));
        assert_eq!(config.write_timeout, huge);
        assert!(error(&["--write-timeout", "18446744073709551616"]).contains("invalid value"));
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
        assert!(error(&["--watch", "8080"]).contains("ADDR:PORT"));
        assert!(error(&["--watch"]).contains("needs a value"));
    }

    fn connect(args: &[&str]) -> ConnectOptions {
        match parse(args.iter().copied()) {
            Ok(Invocation::Connect(options)) => options,
            other => panic!("{args:?} gave {other:?}"),
        }
    }

    fn check(args: &[&str]) -> CheckOptions {
        match parse(args.iter().copied()) {
            Ok(Invocation::Check(options)) => options,
            other => panic!("{args:?} gave {other:?}"),
        }
    }

    #[test]
    fn connect_defaults_to_the_local_server() {
        let options = connect(&["connect"]);
        assert_eq!(options, ConnectOptions::default());
        assert_eq!(options.target.to_string(), "127.0.0.1:1234");
        assert!(!options.raw);
        assert_eq!(options.wait, Duration::from_secs(5));
    }

    #[test]
    fn connect_reads_its_target_and_flags() {
        let options = connect(&["connect", "--raw", "[::1]:4000", "--wait=0.5"]);
        assert_eq!(
            (options.target.host.as_str(), options.target.port),
            ("::1", 4000)
        );
        assert!(options.raw);
        assert_eq!(options.wait, Duration::from_millis(500));
        assert_eq!(connect(&["connect", "example.org"]).target.port, 1234);
    }

    #[test]
    fn check_defaults_and_flags() {
        let options = check(&["check"]);
        // The language comes from the environment (see `Lang::from_env`).
        assert_eq!(
            options,
            CheckOptions {
                lang: options.lang,
                ..CheckOptions::default()
            }
        );
        assert_eq!(options.level, 3);
        assert!(!options.list);
        assert_eq!(
            options.server,
            ServerUnderTest::Running(Target::parse("127.0.0.1:1234").unwrap())
        );
        assert_eq!(options.settings.max_connections, 5);
        assert_eq!(options.wait, Duration::from_secs(3));
        assert_eq!(options.settings.login_timeout, None);
        assert_eq!(options.junit, None);
        let options = check(&[
            "check",
            "10.0.0.2:7000",
            "--max-connections",
            "3",
            "--wait",
            "1",
            "--idle-timeout=4",
            "--login-timeout",
            "0",
            "--write-timeout",
            "2",
            "--junit",
            "out.xml",
            "--only",
            "greeting,help",
        ]);
        assert_eq!(
            options.server,
            ServerUnderTest::Running(Target::parse("10.0.0.2:7000").unwrap())
        );
        assert_eq!(options.settings.max_connections, 3);
        assert_eq!(options.wait, Duration::from_secs(1));
        assert_eq!(options.settings.login_timeout, Some(TimeLimit::Never));
        assert_eq!(
            options.settings.idle_timeout,
            Some(TimeLimit::After(Duration::from_secs(4)))
        );
        assert_eq!(options.settings.write_timeout, Some(Duration::from_secs(2)));
        assert_eq!(options.junit, Some(PathBuf::from("out.xml")));
        assert_eq!(options.only, ["greeting", "help"]);
        let options = check(&["check", "--timeouts", "2"]);
        let two = Some(TimeLimit::After(Duration::from_secs(2)));
        assert_eq!(options.settings.login_timeout, two);
        assert_eq!(options.settings.idle_timeout, two);
    }

    #[test]
    fn check_levels_languages_and_the_list() {
        let options = check(&["check", "--level", "1", "--lang", "fr", "--list"]);
        assert_eq!(options.level, 1);
        assert_eq!(options.lang, Lang::Fr);
        assert!(options.list);
        assert_eq!(check(&["check", "--lang=en"]).lang, Lang::En);
        assert!(error(&["check", "--level", "4"]).contains("expected 1, 2 or 3"));
        assert!(error(&["check", "--level", "0"]).contains("expected 1, 2 or 3"));
        assert!(error(&["check", "--lang", "de"]).contains("expected fr or en"));
        assert!(error(&["check", "--list=yes"]).contains("--list"));
    }

    #[test]
    fn check_spawn_splits_its_command_like_a_shell() {
        let options = check(&["check", "--spawn", "python3 'my server.py' -v", "--wait=2"]);
        assert_eq!(
            options.server,
            ServerUnderTest::Spawn(SpawnCommand {
                words: vec!["python3".into(), "my server.py".into(), "-v".into()]
            })
        );
        assert_eq!(options.wait, Duration::from_secs(2));
        assert!(error(&["check", "--spawn", "'open"]).contains("--spawn: a single quote"));
        assert!(error(&["check", "--spawn", "  "]).contains("no command"));
        assert!(error(&["check", "--spawn", "x", "host"]).contains("not both"));
        assert!(
            error(&["check", "--spawn", "x", "--login-timeout", "2"])
                .contains("--login-timeout describes a server already running")
        );
        assert!(error(&["check", "--only", "greeting,nope"]).contains("\"nope\""));
    }

    #[test]
    fn client_tools_refuse_bad_flags_and_values() {
        assert!(error(&["connect", "--port", "1"]).contains("unknown option --port"));
        assert!(error(&["connect", "a", "b"]).contains("unexpected argument \"b\""));
        assert!(error(&["connect", "host:http"]).contains("invalid port"));
        assert!(error(&["connect", "--raw=yes"]).contains("takes no value"));
        assert!(error(&["connect", "--wait", "0"]).contains("more than 0"));
        assert!(error(&["check", "--wait", "-1"]).contains("more than 0"));
        assert!(error(&["check", "--wait", "soon"]).contains("invalid value"));
        assert!(error(&["check", "--max-connections", "0"]).contains("at least 1"));
        assert!(error(&["check", "--timeouts"]).contains("needs a value"));
        assert!(error(&["check", "--login-timeout", "-1"]).contains("more than 0"));
        assert!(error(&["check", "--write-timeout", "0"]).contains("more than 0"));
        assert!(error(&["check", "--verbose"]).contains("unknown option"));
        assert!(error(&["serve", "connect"]).contains("unexpected argument"));
    }

    #[test]
    fn help_wins_in_every_subcommand_and_documents_them() {
        assert_eq!(parse(["connect", "--help"]), Ok(Invocation::Help));
        assert_eq!(parse(["check", "x", "-h"]), Ok(Invocation::Help));
        let usage = usage();
        for word in [
            "minichat connect",
            "minichat check",
            "--raw",
            "--timeouts",
            "--wait",
            "--spawn",
            "--junit",
            "--only",
            "--write-timeout",
            "--watch ADDR:PORT",
            "shows message texts",
            "minichat diagram",
            "--max-lines",
            "--lang",
        ] {
            assert!(usage.contains(word), "{word}");
        }
    }

    #[test]
    fn a_flag_given_twice_is_a_usage_error() {
        assert!(error(&["--port", "1", "--port", "2"]).contains("--port is given twice"));
        assert!(error(&["--port=1", "--port", "2"]).contains("given twice"));
        assert!(error(&["-v", "--verbose"]).contains("--verbose is given twice"));
        assert!(error(&["connect", "--raw", "--raw"]).contains("given twice"));
        assert!(error(&["connect", "--wait", "1", "--wait=2"]).contains("given twice"));
    }

    #[test]
    fn help_is_also_a_subcommand() {
        assert_eq!(parse(["help"]), Ok(Invocation::Help));
    }

    #[test]
    fn connect_keepalive_is_seconds_or_never() {
        assert_eq!(
            connect(&["connect"]).keepalive,
            Some(crate::tools::connect::DEFAULT_KEEPALIVE)
        );
        assert_eq!(
            connect(&["connect", "--keepalive", "30"]).keepalive,
            Some(Duration::from_secs(30))
        );
        assert_eq!(connect(&["connect", "--keepalive=0"]).keepalive, None);
        assert!(error(&["connect", "--keepalive", "soon"]).contains("invalid value"));
    }

    fn diagram(args: &[&str]) -> DiagramOptions {
        match parse(args.iter().copied()) {
            Ok(Invocation::Diagram(options)) => options,
            other => panic!("{args:?} gave {other:?}"),
        }
    }

    #[test]
    fn diagram_reads_its_file_and_flags() {
        assert_eq!(diagram(&["diagram"]), DiagramOptions::default());
        assert_eq!(diagram(&["diagram", "-"]), DiagramOptions::default());
        let options = diagram(&[
            "diagram",
            "class.log",
            "--only",
            "alice,Bob",
            "--from=14:05",
            "--until",
            "2026-11-24T14:30:00Z",
            "--max-lines",
            "60",
            "--lang",
            "fr",
        ]);
        assert_eq!(options.input, Some(PathBuf::from("class.log")));
        assert_eq!(options.only, ["alice", "Bob"]);
        assert_eq!(options.from, TimeBound::parse("14:05"));
        assert_eq!(options.until, TimeBound::parse("2026-11-24T14:30:00Z"));
        assert_eq!(options.max_lines, Some(60));
        assert_eq!(options.lang, Lang::Fr);
        assert!(error(&["diagram", "--from", "2pm"]).contains("expected a time"));
        assert!(error(&["diagram", "--max-lines", "0"]).contains("at least 1"));
        assert!(error(&["diagram", "--lang", "de"]).contains("en or fr"));
        assert!(error(&["diagram", "--only", ","]).contains("no name"));
        assert!(error(&["diagram", "a", "b"]).contains("unexpected argument"));
        assert!(error(&["diagram", "--verbose"]).contains("unknown option"));
    }

    #[test]
    fn usage_errors_are_one_line() {
        let message = UsageError("--port needs a value".into()).to_string();
        assert!(!message.contains('\n'));
    }
}
