//! The `minichat` command: reads the command line and runs what it asks.
//! Everything else lives in the library (src/lib.rs).
//!
//! Nothing here may panic on a closed stdout or stderr (`minichat --help |
//! head -1`): every message is written with [`say`], which ignores a
//! failed write, and a report whose reader has gone ends quietly
//! (`minichat check --list | head`).

use std::fmt::Display;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::process::ExitCode;

use minichat::cli::{self, Invocation};
use minichat::server::{self, Config};
use minichat::tools::check::{self, CheckOptions};
use minichat::tools::connect::{self, ConnectOptions};
use minichat::tools::diagram::{self, DiagramOptions};

/// Exit code of a command line that cannot be obeyed.
const USAGE_ERROR: u8 = 2;

fn main() -> ExitCode {
    match cli::parse(std::env::args_os().skip(1)) {
        Ok(Invocation::Help) => {
            say(io::stdout(), cli::usage());
            ExitCode::SUCCESS
        }
        Ok(Invocation::Version) => {
            say(
                io::stdout(),
                format_args!("minichat {}\n", env!("CARGO_PKG_VERSION")),
            );
            ExitCode::SUCCESS
        }
        Ok(Invocation::Serve(config)) => serve(config),
        Ok(Invocation::Connect(options)) => connect(&options),
        Ok(Invocation::Check(options)) => check(&options),
        Ok(Invocation::Diagram(options)) => draw(&options),
        Err(error) => {
            say(io::stderr(), format_args!("minichat: {error}\n"));
            ExitCode::from(USAGE_ERROR)
        }
    }
}

fn serve(config: Config) -> ExitCode {
    let address = SocketAddr::new(config.bind, config.port);
    match server::serve(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            say(
                io::stderr(),
                format_args!("minichat: cannot serve on {address}: {error}\n"),
            );
            ExitCode::FAILURE
        }
    }
}

fn connect(options: &ConnectOptions) -> ExitCode {
    match connect::run(options) {
        Ok(end) => {
            say(io::stderr(), format_args!("minichat: {end}\n"));
            ExitCode::SUCCESS
        }
        Err(error) => {
            say(io::stderr(), format_args!("minichat: {error}\n"));
            ExitCode::FAILURE
        }
    }
}

fn check(options: &CheckOptions) -> ExitCode {
    match check::run(options, &mut io::stdout().lock()) {
        Ok(report) if report.all_passed() => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        // The reader has gone (`minichat check --list | head`): nobody is
        // left to tell. The list was printed as far as it was wanted; a
        // run was cut short, so it cannot say that every check passed.
        Err(error) if error.kind() == io::ErrorKind::BrokenPipe => match options.list {
            true => ExitCode::SUCCESS,
            false => ExitCode::FAILURE,
        },
        Err(error) => {
            say(
                io::stderr(),
                format_args!("minichat: cannot write the report: {error}\n"),
            );
            ExitCode::FAILURE
        }
    }
}

fn draw(options: &DiagramOptions) -> ExitCode {
    let drawn = match &options.input {
        None => diagram::run(options, io::stdin().lock(), &mut io::stdout().lock()),
        Some(path) => match std::fs::File::open(path) {
            Ok(file) => diagram::run(options, io::BufReader::new(file), &mut io::stdout().lock()),
            Err(error) => {
                let path = path.display();
                say(
                    io::stderr(),
                    format_args!("minichat: cannot read {path}: {error}\n"),
                );
                return ExitCode::FAILURE;
            }
        },
    };
    match drawn {
        Ok(summary) => {
            for warning in summary.warnings() {
                say(io::stderr(), format_args!("minichat: {warning}\n"));
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            say(io::stderr(), format_args!("minichat: {error}\n"));
            ExitCode::FAILURE
        }
    }
}

/// Writes `text` to `out`, ignoring a failure: there is nowhere left to
/// report it.
fn say(mut out: impl Write, text: impl Display) {
    let _ = write!(out, "{text}").and_then(|()| out.flush());
}
