//! The live view in a real browser: headless Chromium (Debian's
//! `chromium`) loads the page, a scripted session runs, and the test reads
//! the drawn diagram back from the page, row by row, as it was drawn. It
//! also takes the README's screenshot (`MINICHAT_BLESS=1` writes it to
//! tests/images/live-view.png; every run writes target/live-view.png).
//!
//! Without Chromium the test says so and passes, unless
//! `MINICHAT_REQUIRE_BROWSER` is set (CI sets it, after installing it).

use std::io;
use std::path::Path;
use std::thread;

use crate::common::devtools::{Browser, find_chromium};
use crate::common::json::{Strings, Token};
use crate::common::{Client, READ_TIMEOUT, WELCOME};
use minichat::{Config, Server};

/// Each drawn row: `FROM -> TO: TEXT` (a note: `over WHO: TEXT`).
const DRAWN_ROWS: &str = r#"JSON.stringify([...document.querySelectorAll('#diagram g.row')].map(g => {
    const text = [...g.querySelectorAll('text')].filter(t => !t.classList.contains('time')).map(t => t.textContent).join('');
    return g.dataset.over !== undefined ? `over ${g.dataset.over}: ${text}` : `${g.dataset.from} -> ${g.dataset.to}: ${text}`;
}))"#;

const SLOTS: &str = r#"JSON.stringify([document.getElementById('slots').textContent,
    ...[...document.querySelectorAll('#holders li')].map(li => li.textContent),
    ...[...document.querySelectorAll('#heads .head')].map(h => h.firstChild.textContent)])"#;

/// The strings of a JSON array of strings.
fn strings(json: &str) -> Vec<String> {
    Strings(json)
        .filter_map(|token| match token {
            Token::Str(s) => Some(s),
            Token::Key(_) => None,
        })
        .collect()
}

pub(crate) fn the_page_draws_a_session_as_it_happens() {
    let Some(chromium) = find_chromium() else {
        if std::env::var_os("MINICHAT_REQUIRE_BROWSER").is_some() {
            panic!("Chromium is required (MINICHAT_REQUIRE_BROWSER) but absent");
        }
        eprintln!("SKIPPED: no Chromium (apt-get install chromium; .ci/run does)");
        return;
    };
    let config = Config {
        watch: Some("127.0.0.1:0".parse().unwrap()),
        ..crate::common::config()
    };
    let server = Server::bind_with_log(config, io::sink()).unwrap();
    let chat = server.local_addr().unwrap();
    let watch = server.watch_addr().unwrap();
    thread::spawn(move || server.run());

    let mut browser = Browser::open(&chromium, &format!("http://{watch}/"), 1280, 1000);
    let status = browser.wait_for(
        "document.getElementById('status').textContent",
        READ_TIMEOUT,
        |s| s == "live",
    );
    assert_eq!(status, "live", "the page never connected to its stream");

    // The session, while the page watches.
    let mut alice = Client::login(chat, "alice");
    let mut bob = Client::login(chat, "bob");
    alice.ask("LIST", "OK LIST alice bob");
    alice.send("SEND bob Salut <b>Bob</b> ; #1");
    bob.expect("RECEIVE alice Salut <b>Bob</b> ; #1");
    alice.expect("OK SEND bob");
    bob.send("SEND alice Très bien 😀");
    alice.expect("RECEIVE bob Très bien 😀");
    bob.expect("OK SEND alice");
    let mut visitor = Client::connect_raw(chat);
    let v = visitor.writer.local_addr().unwrap();
    visitor.expect(WELCOME);
    visitor.ask("HELLO", "ERR UNKNOWN_COMMAND");
    visitor.hang_up();

    let welcome = "OK WELCOME minichat 1: CONNECT <name> to log in, HELP for commands";
    let expected = [
        "alice -> server: (connects: 1/5 slots taken)".to_owned(),
        format!("server -> alice: {welcome}"),
        "alice -> server: CONNECT alice".into(),
        "server -> alice: OK CONNECT alice".into(),
        "bob -> server: (connects: 2/5 slots taken)".into(),
        format!("server -> bob: {welcome}"),
        "bob -> server: CONNECT bob".into(),
        "server -> bob: OK CONNECT bob".into(),
        "alice -> server: LIST".into(),
        "server -> alice: OK LIST alice bob".into(),
        "alice -> server: SEND bob Salut <b>Bob</b> ; #1".into(),
        "server -> bob: RECEIVE alice Salut <b>Bob</b> ; #1".into(),
        "server -> alice: OK SEND bob".into(),
        "bob -> server: SEND alice Très bien 😀".into(),
        "server -> alice: RECEIVE bob Très bien 😀".into(),
        "server -> bob: OK SEND alice".into(),
        format!("{v} -> server: (connects: 3/5 slots taken)"),
        format!("server -> {v}: {welcome}"),
        format!("{v} -> server: HELLO"),
        format!("server -> {v}: ERR UNKNOWN_COMMAND unknown command HELLO, try HELP"),
        format!("{v} -> server: (closes the connection)"),
    ];
    let drawn = browser.wait_for(DRAWN_ROWS, READ_TIMEOUT, |rows| {
        rows.contains("(closes the connection)")
    });
    assert_eq!(strings(&drawn), expected, "the page drew {drawn}");

    // The slots, and who holds them.
    let slots = strings(&browser.wait_for(SLOTS, READ_TIMEOUT, |s| s.contains("2/5")));
    assert_eq!(slots[..3], ["2/5 slots", "alice", "bob"], "{slots:?}");
    // The server in the middle, the clients on alternate sides.
    let lifelines = [v.to_string(), "alice".into(), "server".into(), "bob".into()];
    assert_eq!(slots[3..], lifelines, "{slots:?}");

    let png = browser.screenshot();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let _ = std::fs::write(root.join("target/live-view.png"), &png);
    if std::env::var_os("MINICHAT_BLESS").is_some() {
        std::fs::create_dir_all(root.join("tests/images")).unwrap();
        std::fs::write(root.join("tests/images/live-view.png"), &png).unwrap();
    }
}
