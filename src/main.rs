//! The `minichat` command: reads the command line and runs what it asks.
//! Everything else lives in the library (src/lib.rs).

use std::net::SocketAddr;
use std::process::ExitCode;

use minichat::check::{self, CheckOptions};
use minichat::cli::{self, Invocation};
use minichat::client::{self, ConnectOptions};
use minichat::{Config, Server};

/// Exit code of a command line that cannot be obeyed.
const USAGE_ERROR: u8 = 2;

fn main() -> ExitCode {
    match cli::parse(std::env::args_os().skip(1)) {
        Ok(Invocation::Help) => {
            print!("{}", cli::usage());
            ExitCode::SUCCESS
        }
        Ok(Invocation::Version) => {
            println!("minichat {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Ok(Invocation::Serve(config)) => serve(config),
        Ok(Invocation::Connect(options)) => connect(&options),
        Ok(Invocation::Check(options)) => check(&options),
        Err(error) => {
            eprintln!("minichat: {error}");
            ExitCode::from(USAGE_ERROR)
        }
    }
}

fn serve(config: Config) -> ExitCode {
    let address = SocketAddr::new(config.bind, config.port);
    let result = Server::bind(config).and_then(Server::run);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("minichat: cannot serve on {address}: {error}");
            ExitCode::FAILURE
        }
    }
}

fn connect(options: &ConnectOptions) -> ExitCode {
    match client::run(options) {
        Ok(end) => {
            eprintln!("minichat: {end}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("minichat: {error}");
            ExitCode::FAILURE
        }
    }
}

fn check(options: &CheckOptions) -> ExitCode {
    match check::run(options, &mut std::io::stdout().lock()) {
        Ok(report) if report.all_passed() => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("minichat: cannot write the report: {error}");
            ExitCode::FAILURE
        }
    }
}
