//! The command line, run as the real binary.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Command, Stdio};

use assert_cmd::cargo::CommandCargoExt;

fn minichat() -> Command {
    Command::cargo_bin("minichat").expect("the minichat binary")
}

#[test]
fn help_lists_every_flag() {
    let output = minichat().arg("--help").output().unwrap();
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    for flag in [
        "--bind",
        "--port",
        "--max-connections",
        "--login-timeout",
        "--idle-timeout",
        "--write-timeout",
        "--verbose",
        "--help",
        "--version",
    ] {
        assert!(help.contains(flag), "--help does not mention {flag}");
    }
}

#[test]
fn help_is_also_a_subcommand() {
    let output = minichat().arg("help").output().unwrap();
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    assert_eq!(help, minichat::cli::usage());
}

#[test]
fn version_prints_the_version() {
    let output = minichat().arg("--version").output().unwrap();
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        format!("minichat {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn bad_flags_are_one_line_usage_errors_with_exit_code_2() {
    for args in [
        &["--frobnicate"][..],
        &["--port", "eighty"],
        &["--port"],
        &["--write-timeout", "0"],
        &["--max-connections", "0"],
        &["serve", "--bind", "nowhere"],
        &["--port", "1", "--port", "2"],
        &["connect", "--keepalive", "1", "--keepalive", "2"],
    ] {
        let output = minichat().args(args).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.starts_with("minichat: "), "{stderr}");
    }
}

#[test]
fn a_port_in_use_is_one_clear_line_and_a_failure() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let output = minichat()
        .args(["--bind", "127.0.0.1", "--port", &port])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("cannot serve on 127.0.0.1:"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn the_first_stderr_line_gives_the_bound_address() {
    let mut child = minichat()
        .args([
            "serve",
            "--bind",
            "127.0.0.1",
            "--port",
            "0",
            "--max-connections",
            "3",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let rest = first
        .strip_prefix("minichat: listening on 127.0.0.1:")
        .unwrap_or_else(|| panic!("{first:?}"));
    let (port, tail) = rest.split_once(' ').unwrap();
    assert_ne!(port.parse::<u16>().unwrap(), 0);
    assert_eq!(tail, "(max 3 connections)\n");
}
