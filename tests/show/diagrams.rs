//! PROTOCOL.md's sequence diagrams come from real runs. Each scene below is
//! played against the real server with `--verbose`; `minichat diagram`
//! draws its log; and the test fails if PROTOCOL.md's diagram (the
//! ```` ```mermaid ```` block after `<!-- diagram: NAME -->`) differs. So
//! the document cannot drift from the server.
//!
//! To write the new diagrams into PROTOCOL.md after a change of the server
//! or of the renderer: `MINICHAT_BLESS=1 cargo test --test show diagrams`, then
//! read the diff.
//!
//! The only thing a run may change is how many messages fill a socket's
//! buffers (the stuck recipient's `loop N fois`): the count in a loop's
//! label is not compared.

use std::io::ErrorKind;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use crate::common::stage::Stage;
use crate::common::{Client, WELCOME};
use minichat::Config;
use minichat::diagram::Lang;
use minichat::tools::diagram::DiagramOptions;

/// Scenes write PROTOCOL.md one at a time.
static PROTOCOL_MD: Mutex<()> = Mutex::new(());

fn french() -> DiagramOptions {
    DiagramOptions {
        lang: Lang::Fr,
        ..DiagramOptions::default()
    }
}

/// Compares the scene's diagram with PROTOCOL.md's, or writes it there
/// with `MINICHAT_BLESS=1`.
fn check_in_protocol_md(name: &str, diagram: &str) {
    let _one_at_a_time = PROTOCOL_MD.lock().unwrap_or_else(|e| e.into_inner());
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("PROTOCOL.md");
    let doc = std::fs::read_to_string(&path).unwrap();
    let marker = format!("<!-- diagram: {name} -->\n```mermaid\n");
    let start = doc
        .find(&marker)
        .unwrap_or_else(|| panic!("PROTOCOL.md has no {marker:?}"))
        + marker.len();
    let end = start
        + doc[start..]
            .find("```\n")
            .expect("the mermaid block is closed");
    let written = &doc[start..end];
    if std::env::var_os("MINICHAT_BLESS").is_some() {
        if uncounted(written) != uncounted(diagram) {
            let new = format!("{}{diagram}{}", &doc[..start], &doc[end..]);
            std::fs::write(&path, new).unwrap();
        }
        return;
    }
    assert_eq!(
        uncounted(written),
        uncounted(diagram),
        "PROTOCOL.md's diagram {name:?} is not what the server does now \
         (MINICHAT_BLESS=1 cargo test --test show diagrams writes it there); the run drew:\n{diagram}"
    );
}

/// `text` with the counts of its loops left out.
fn uncounted(text: &str) -> String {
    text.lines()
        .map(|line| match line.trim_start().strip_prefix("loop ") {
            Some(label) => format!("loop N{}", label.trim_start_matches(char::is_numeric)),
            None => line.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn config() -> Config {
    crate::common::config()
}

/// Login, LIST, a message each way, QUIT.
#[test]
fn normal_exchange() {
    let mut stage = Stage::start(config());
    let mut alice = stage.login("alice");
    let mut bob = stage.login("bob");
    alice.ask("LIST", "OK LIST alice bob");
    alice.send("SEND bob   Salut Bob, ça va ?");
    bob.expect("RECEIVE alice Salut Bob, ça va ?");
    alice.expect("OK SEND bob");
    bob.send("SEND ALICE Très bien !");
    alice.expect("RECEIVE bob Très bien !");
    bob.expect("OK SEND alice");
    alice.send("QUIT");
    alice.expect("OK QUIT");
    stage.note_after(
        "alice > SEND bob",
        "note over alice: les espaces après « bob » séparent les champs ; le texte commence à « Salut »",
    );
    stage.note_after(
        "bob > SEND ALICE",
        "note over bob: le destinataire est trouvé sans tenir compte de la casse",
    );
    let diagram = stage.diagram("alice left (QUIT)", &french());
    check_in_protocol_md("normal", &diagram);
}

/// A third connection on a server that takes two.
#[test]
fn refusal_when_full() {
    let mut stage = Stage::start(Config {
        max_connections: 2,
        ..config()
    });
    let _alice = stage.login("alice");
    let mut anonymous = stage.connect();
    anonymous.expect(WELCOME);
    let quiet = anonymous.writer.local_addr().unwrap();
    let mut third = stage.connect();
    third.expect_prefix("ERR FULL ");
    third.expect_closed();
    stage.note_after(
        "minichat: listening",
        "note: le serveur est lancé avec --max-connections 2",
    );
    stage.note_after(
        &format!("{quiet} < OK WELCOME"),
        &format!("note over {quiet}: sans CONNECT, elle prend une place quand même"),
    );
    let diagram = stage.diagram("refused: server full", &french());
    check_in_protocol_md("full", &diagram);
}

/// Lines that break several rules, and the code each gets.
#[test]
fn errors_and_their_order() {
    let mut stage = Stage::start(config());
    let mut client = stage.connect();
    client.expect(WELCOME);
    let me = client.writer.local_addr().unwrap().to_string();
    let steps = [
        ("HELLO", "ERR UNKNOWN_COMMAND", None),
        (
            "SEND bob",
            "ERR SYNTAX",
            Some("SYNTAX (4) passe avant NOT_CONNECTED (5)"),
        ),
        ("SEND bob salut", "ERR NOT_CONNECTED", None),
        (
            "CONNECT b*b",
            "ERR BAD_NAME",
            Some("pas encore identifié : BAD_NAME (6)"),
        ),
        ("CONNECT carol", "OK CONNECT carol", None),
        (
            "CONNECT b*b",
            "ERR ALREADY_CONNECTED",
            Some("déjà identifiée : ALREADY_CONNECTED (5) passe avant BAD_NAME (6)"),
        ),
        (
            "SEND b*b salut",
            "ERR NO_SUCH_USER",
            Some("un nom qui ne pourrait pas exister : NO_SUCH_USER"),
        ),
    ];
    let mut who = me.as_str(); // as the log names the connection
    for (line, reply, note) in steps {
        client.ask(line, reply);
        if let Some(note) = note {
            stage.note_after(
                &format!("{who} < {reply}"),
                &format!("note over {who}: {note}"),
            );
        }
        if reply == "OK CONNECT carol" {
            who = "carol";
        }
    }
    let diagram = stage.diagram("carol < ERR NO_SUCH_USER", &french());
    check_in_protocol_md("errors", &diagram);
}

/// `QUIT` with a line after it in the same write, a late line after
/// `OK QUIT`, and the lingering close.
#[test]
fn quit_and_the_lingering_close() {
    let mut stage = Stage::start(config());
    let mut bob = stage.login("bob");
    bob.send_raw(b"PING\nQUIT\nLIST\n");
    bob.expect("OK PING");
    bob.expect("OK QUIT");
    bob.send("PING"); // late: read and thrown away
    bob.writer.shutdown(std::net::Shutdown::Write).unwrap();
    bob.expect_closed();
    stage.note_after(
        "bob > QUIT",
        "note over bob: « PING », « QUIT » et « LIST » sont arrivés en une seule écriture",
    );
    stage.note_after(
        "bob < OK QUIT",
        "note over bob: LIST, après QUIT, n'est jamais exécutée ; le nom et la place sont déjà libres",
    );
    stage.note_after(
        "bob left (QUIT)",
        "note over bob: fin du flux ; un PING tardif est lu et jeté jusqu'à ce que bob ferme (au plus 2 s), sans reset",
    );
    let diagram = stage.diagram("bob left (QUIT)", &french());
    check_in_protocol_md("quit", &diagram);
}

/// The login timeout, which `PING` does not stop.
pub(crate) fn login_timeout() {
    let mut stage = Stage::start(Config {
        login_timeout: Some(Duration::from_secs(1)),
        ..config()
    });
    let mut client = stage.connect();
    let me = client.writer.local_addr().unwrap();
    client.expect(WELCOME);
    client.ask("PING", "OK PING");
    client.expect("ERR TIMEOUT no CONNECT within 1 s");
    client.expect_closed();
    stage.note_after(
        "minichat: listening",
        "note: le serveur est lancé avec --login-timeout 1",
    );
    stage.note_after(
        &format!("{me} < OK PING"),
        &format!("note over {me}: PING ne relance pas le délai de connexion"),
    );
    let diagram = stage.diagram("timed out (no CONNECT)", &french());
    check_in_protocol_md("timeout", &diagram);
}

/// A recipient that stops reading: its sender waits at most the write
/// timeout, others do not wait, then it is dropped.
#[cfg(target_os = "linux")]
#[test]
fn stuck_recipient_dropped() {
    // Deciding that alice's write is stuck takes a guess (no reply within
    // a moment); on a machine too busy for the guess, the scene is played
    // again.
    for _ in 0..3 {
        if let Some(diagram) = play_stuck_recipient() {
            return check_in_protocol_md("stuck", &diagram);
        }
    }
    panic!("alice's writes never got stuck in a way the scene could tell");
}

/// What alice sends bob, again and again until his buffers are full (a
/// longer text fills them with fewer lines).
const FLOOD: &str = "Bob, tu es là ? Réponds-moi, je t'écris encore et encore";

fn play_stuck_recipient() -> Option<String> {
    let mut stage = Stage::start(config());
    let mut alice = stage.login("alice");
    // Bob's receive buffer is made small from the start, so that fewer
    // messages fill it.
    let mut bob = stage.connect();
    crate::common::shrink_receive_buffer(&bob.writer, 2048);
    bob.expect(WELCOME);
    bob.ask("CONNECT bob", "OK CONNECT bob");
    let mut carol = stage.login("carol");
    let logged = stage.log.lines();
    let moment = Duration::from_millis(300);
    alice
        .reader
        .get_ref()
        .set_read_timeout(Some(moment))
        .unwrap();
    let mut sent = 0;
    let stuck = loop {
        alice.send(&format!("SEND bob {FLOOD}"));
        sent += 1;
        match read_line(&mut alice) {
            Some(line) => assert_eq!(line, "OK SEND bob"),
            None => break true,
        }
        if sent % 100 == 0 {
            // Three log lines a message: never more than the log's queue
            // holds, or it would drop some.
            stage.log.wait_lines(logged + 3 * sent);
        }
        if sent > 100_000 {
            break false;
        }
    };
    assert!(stuck, "bob's buffers never filled");
    carol.ask("PING", "OK PING");
    alice
        .reader
        .get_ref()
        .set_read_timeout(Some(crate::common::READ_TIMEOUT))
        .unwrap();
    let reply = alice.line();
    if reply == "OK SEND bob" {
        return None; // not stuck after all, only slow
    }
    assert_eq!(
        reply,
        "ERR NO_SUCH_USER bob was disconnected before the message reached it"
    );
    stage.note_after("carol < OK CONNECT", "note over bob: bob ne lit plus rien");
    stage.note_after(
        "alice < OK SEND bob",
        "note over alice,bob: les tampons de bob se remplissent",
    );
    stage.note_after(
        "carol < OK PING",
        "note over alice,carol: l'écriture vers bob attend, au plus 2 s (--write-timeout) ; carol, elle, n'attend pas",
    );
    Some(stage.diagram("alice < ERR NO_SUCH_USER", &french()))
}

/// The next line, or `None` if none came within the read timeout.
fn read_line(client: &mut Client) -> Option<String> {
    use std::io::BufRead;
    let mut line = String::new();
    match client.reader.read_line(&mut line) {
        Ok(0) => panic!("the server closed the connection"),
        Ok(_) => Some(line.trim_end().to_owned()),
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => None,
        Err(e) => panic!("{e}"),
    }
}

/// `minichat diagram` as a command: a file or standard input in, Mermaid
/// out; what it skipped said on stderr; a file it cannot read is exit 1, a
/// bad flag exit 2.
#[test]
fn the_diagram_command_reads_a_file_or_standard_input() {
    use assert_cmd::Command;
    let mut stage = Stage::start(config());
    let mut alice = stage.login("alice");
    alice.ask("PING", "OK PING");
    let log = stage.log_until("alice < OK PING") + "a line of something else\n";
    let path = std::env::temp_dir().join(format!("minichat-diagram-{}.log", std::process::id()));
    std::fs::write(&path, &log).unwrap();
    let from_file = Command::cargo_bin("minichat")
        .unwrap()
        .args(["diagram", "--only", "ALICE"])
        .arg(&path)
        .output()
        .unwrap();
    std::fs::remove_file(&path).unwrap();
    assert!(from_file.status.success());
    let text = String::from_utf8(from_file.stdout.clone()).unwrap();
    assert!(text.starts_with("sequenceDiagram\n"), "{text}");
    assert!(
        text.ends_with("    c1->>S: PING\n    S-->>c1: OK PING\n"),
        "{text}"
    );
    let stderr = String::from_utf8(from_file.stderr).unwrap();
    assert_eq!(
        stderr,
        "minichat: 1 input line is not the server's log; skipped\n"
    );
    let from_stdin = Command::cargo_bin("minichat")
        .unwrap()
        .args(["diagram", "-", "--only=alice"])
        .write_stdin(log)
        .output()
        .unwrap();
    assert_eq!(from_stdin.stdout, from_file.stdout);
    let missing = Command::cargo_bin("minichat")
        .unwrap()
        .args(["diagram", "/nonexistent/class.log"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&missing.stderr)
            .starts_with("minichat: cannot read /nonexistent/class.log: ")
    );
    let bad = Command::cargo_bin("minichat")
        .unwrap()
        .args(["diagram", "--max-lines", "none"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}
