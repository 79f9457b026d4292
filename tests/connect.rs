//! `minichat connect`, run as the real binary with piped input against a
//! server on an ephemeral port: with piped input it waits for each reply, so
//! its output is fixed.

mod common;

use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::process::Stdio;
use std::thread;
use std::time::{Duration, Instant};

use common::{Client, config, start, start_default};
use minichat::Config;

/// Runs `minichat connect <address> <flags>` with `input` on stdin;
/// returns the exit code, stdout and stderr.
fn connect(address: SocketAddr, flags: &[&str], input: &str) -> (Option<i32>, String, String) {
    let output = assert_cmd::Command::cargo_bin("minichat")
        .unwrap()
        .arg("connect")
        .arg(address.to_string())
        .args(flags)
        .write_stdin(input)
        .timeout(Duration::from_secs(30))
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

const SCRIPT: &str = "CONNECT bob\nLIST\n\n   \nSEND BOB Salut  toi\nCONNECT alice\nsend nobody hi\nPING\nQUIT\nLIST\n";

#[test]
fn piped_input_is_rendered_for_people_in_order() {
    let (code, stdout, stderr) = connect(start_default(), &[], SCRIPT);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        stdout,
        "\
* welcome: minichat 1: CONNECT <name> to log in, HELP for commands
* logged in as bob
* connected: bob
[bob] Salut  toi
* sent to bob
error ALREADY_CONNECTED: this connection is already logged in
error NO_SUCH_USER: no connected user named nobody
* pong
* bye
"
    );
    assert_eq!(stderr, "minichat: left (OK QUIT), connection closed\n");
}

#[test]
fn raw_shows_the_wire_lines() {
    let (code, stdout, stderr) = connect(start_default(), &["--raw"], SCRIPT);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        stdout,
        "\
OK WELCOME minichat 1: CONNECT <name> to log in, HELP for commands
OK CONNECT bob
OK LIST bob
RECEIVE bob Salut  toi
OK SEND bob
ERR ALREADY_CONNECTED this connection is already logged in
ERR NO_SUCH_USER no connected user named nobody
OK PING
OK QUIT
"
    );
}

#[test]
fn messages_from_others_are_shown_as_they_arrive() {
    let server = start_default();
    let mut child = connect_listening(server, &[], "CONNECT bob\n");
    let mut stdin = child.stdin.take().unwrap();
    let mut alice = Client::login(server, "alice");
    let deadline = Instant::now() + common::READ_TIMEOUT;
    while !alice.ask("LIST", "OK LIST").contains(" bob") {
        assert!(Instant::now() < deadline, "bob never logged in");
    }
    alice.send("SEND bob Salut bob !");
    alice.expect("OK SEND bob"); // the RECEIVE is on bob's socket now
    stdin.write_all(b"QUIT\n").unwrap();
    drop(stdin);
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        "\
* welcome: minichat 1: CONNECT <name> to log in, HELP for commands
* logged in as bob
[alice] Salut bob !
* bye
"
    );
}

#[test]
fn end_of_input_closes_the_connection() {
    let server = start_default();
    let (code, stdout, stderr) = connect(server, &[], "CONNECT bob\nSEND bob hi\n");
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.ends_with("[bob] hi\n* sent to bob\n"), "{stdout}");
    assert_eq!(stderr, "minichat: end of input, connection closed\n");
    // The name is free again: the client closed its connection.
    Client::login(server, "bob");
}

#[test]
fn connection_refused_is_one_line_and_exit_code_1() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let (code, stdout, stderr) = connect(address, &[], "PING\n");
    assert_eq!(code, Some(1));
    assert_eq!(stdout, "");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(&format!("minichat: cannot connect to {address}: ")),
        "{stderr}"
    );
}

#[test]
fn a_full_server_is_one_line_and_exit_code_1() {
    let server = start(Config {
        max_connections: 1,
        ..config()
    });
    let _only = Client::connect(server);
    let (code, stdout, stderr) = connect(server, &[], "PING\n");
    assert_eq!(code, Some(1));
    assert_eq!(stdout, "");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("the server is full (ERR FULL "), "{stderr}");
}

#[test]
fn a_server_that_never_replies_does_not_hang_the_client() {
    // Greets, then reads and never answers.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let server = thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream.write_all(b"OK WELCOME mute\r\n").unwrap();
        let _ = std::io::copy(&mut stream, &mut std::io::sink());
    });
    let started = Instant::now();
    let (code, stdout, stderr) = connect(address, &["--wait", "0.3"], "PING\nPING\n");
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout, "* welcome: mute\n");
    assert_eq!(
        stderr,
        "\
minichat: no reply within 0.3 s, going on
minichat: no reply within 0.3 s, going on
minichat: end of input, connection closed
"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    server.join().unwrap();
}

/// Runs `minichat connect <address> <flags>` with a stdin pipe the test
/// keeps open, and `first` written to it.
fn connect_listening(address: SocketAddr, flags: &[&str], first: &str) -> std::process::Child {
    let mut child = common::spawn_connect(address, flags, Stdio::piped());
    child
        .stdin
        .as_mut()
        .unwrap()
        .write_all(first.as_bytes())
        .unwrap();
    child
}

/// A user who only listens, for longer than the server's idle timeout: the
/// keepalive's `PING`s keep the connection, and the user never sees their
/// `OK PING`.
#[test]
fn keepalive_keeps_a_listener_connected_and_hides_its_pings() {
    let idle = Duration::from_secs(2);
    let server = start(Config {
        idle_timeout: Some(idle),
        ..config()
    });
    let mut listener = connect_listening(server, &["--keepalive", "1"], "CONNECT ear\n");
    let mut teacher = Client::login(server, "teacher");
    let started = Instant::now();
    let mut said = 0;
    // Past the idle timeout: two keepalives at least have kept it.
    while started.elapsed() < idle * 5 / 4 {
        // The lesson's pace: a message every quarter of a second.
        thread::sleep(Duration::from_millis(250));
        teacher.send(&format!("SEND ear point {said}"));
        teacher.expect("OK SEND ear");
        said += 1;
    }
    drop(listener.stdin.take()); // end of input
    let output = listener.wait_with_output().unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let mut expected = String::from(
        "* welcome: minichat 1: CONNECT <name> to log in, HELP for commands\n* logged in as ear\n",
    );
    for i in 0..said {
        expected.push_str(&format!("[teacher] point {i}\n"));
    }
    assert_eq!(stdout, expected);
}

/// `--keepalive 0`: a user who only listens is cut by the idle timeout.
#[test]
fn without_keepalive_a_listener_times_out() {
    let server = start(Config {
        idle_timeout: Some(Duration::from_secs(1)),
        ..config()
    });
    let listener = connect_listening(server, &["--keepalive", "0"], "CONNECT ear\n");
    let mut watcher = Client::connect(server);
    let started = Instant::now();
    // Logged in, then gone.
    for listed in ["OK LIST ear", "OK LIST"] {
        while watcher.ask("LIST", "OK LIST") != listed {
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "never {listed:?}"
            );
            thread::sleep(Duration::from_millis(50)); // polling pace
        }
    }
    let output = listener.wait_with_output().unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        stdout.ends_with("error TIMEOUT: no complete line for 1 s\n"),
        "{stdout}"
    );
}

/// The server's close ends the client at once, while its input stays open,
/// whether that input is a terminal or a pipe: the same message and the
/// same exit code in both modes.
#[cfg(target_os = "linux")]
#[test]
fn a_timed_out_client_ends_at_once_whatever_its_input() {
    use common::terminal::Terminal;
    let server = start(Config {
        idle_timeout: Some(Duration::from_secs(1)),
        ..config()
    });
    let flags = ["--keepalive", "0"];
    let (mut terminal, keyboard) = Terminal::open();
    let typed = common::spawn_connect(server, &flags, keyboard);
    terminal.type_keys(b"CONNECT tty\n");
    let mut piped = connect_listening(server, &flags, "CONNECT pipe\n");
    let pipe = piped.stdin.take(); // stays open
    let limit = Duration::from_secs(5);
    for (name, client) in [("tty", typed), ("pipe", piped)] {
        let (code, stdout, stderr) = common::finish_within(client, limit);
        assert_eq!(code, Some(0), "{name}: {stderr}");
        assert!(
            stdout.ends_with(&format!(
                "* logged in as {name}\nerror TIMEOUT: no complete line for 1 s\n"
            )),
            "{name}: {stdout}"
        );
        assert_eq!(
            stderr.lines().last(),
            Some("minichat: the server closed the connection after ERR TIMEOUT"),
            "{name}: {stderr}"
        );
    }
    drop((terminal, pipe)); // open until both clients had ended
}
