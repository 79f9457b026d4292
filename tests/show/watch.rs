//! The live view (`--watch`) over real sockets: its event stream follows a
//! session as it happens; it answers bad requests with clear HTTP errors;
//! it takes a bounded number of viewers; and a viewer that does not keep up
//! is dropped while the chat goes on undelayed.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use crate::common::{Client, Pair, READ_TIMEOUT};
use minichat::{Config, Server};

/// Starts a server with the live view on a free port; returns both
/// addresses.
fn start() -> (SocketAddr, SocketAddr) {
    let config = Config {
        watch: Some("127.0.0.1:0".parse().unwrap()),
        ..crate::common::config()
    };
    let server = Server::bind_with_log(config, io::sink()).unwrap();
    let chat = server.local_addr().unwrap();
    let watch = server.watch_addr().expect("the live view is on");
    thread::spawn(move || server.run());
    (chat, watch)
}

/// Sends `request` and returns the whole response (the server closes).
fn fetch(watch: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(watch).unwrap();
    stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    let _ = stream.write_all(request);
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    String::from_utf8_lossy(&response).into_owned()
}

/// A viewer of the event stream, reading its events one by one.
struct Viewer {
    reader: BufReader<TcpStream>,
}

impl Viewer {
    /// Opens `/events`; `None` if refused (the status line is returned).
    fn open(watch: SocketAddr) -> Result<Viewer, String> {
        let mut stream = TcpStream::connect(watch).unwrap();
        stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        stream
            .write_all(b"GET /events HTTP/1.1\r\nHost: test\r\nAccept: text/event-stream\r\n\r\n")
            .unwrap();
        let mut reader = BufReader::new(stream);
        let mut status = String::new();
        reader.read_line(&mut status).unwrap();
        if !status.starts_with("HTTP/1.1 200 ") {
            return Err(status);
        }
        let mut header = String::new();
        let mut event_stream = false;
        while reader.read_line(&mut header).unwrap() > 2 {
            event_stream |= header.eq_ignore_ascii_case("content-type: text/event-stream\r\n");
            header.clear();
        }
        assert!(event_stream, "not an event stream");
        Ok(Viewer { reader })
    }

    /// The next event's data (a JSON object), skipping comments and
    /// `retry:`.
    fn next(&mut self) -> String {
        let mut line = String::new();
        loop {
            line.clear();
            let n = self
                .reader
                .read_line(&mut line)
                .expect("an event within the read timeout");
            assert!(n > 0, "the stream ended");
            if let Some(data) = line.strip_prefix("data: ") {
                return data.trim_end().to_owned();
            }
        }
    }

    /// Reads events until one holds `fragment`; returns them all.
    fn until(&mut self, fragment: &str) -> Vec<String> {
        let mut seen = Vec::new();
        loop {
            let event = self.next();
            let done = event.contains(fragment);
            seen.push(event);
            if done {
                return seen;
            }
        }
    }
}

/// The `text` of each row among `events`.
fn texts(events: &[String]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e.starts_with(r#"{"type":"row""#))
        .filter_map(|e| e.split(r#""text":""#).nth(1))
        .map(|t| t.trim_end_matches("\"}").to_owned())
        .collect()
}

#[test]
fn the_stream_follows_a_session_as_it_happens() {
    let (chat, watch) = start();
    let mut viewer = Viewer::open(watch).unwrap();
    assert_eq!(
        viewer.next(),
        r#"{"type":"slots","open":0,"max":5,"holders":[]}"#
    );
    let mut alice = Client::login(chat, "alice");
    let mut bob = Client::login(chat, "bob");
    alice.send("SEND bob <b>hi</b> & bye");
    bob.expect("RECEIVE alice <b>hi</b> & bye");
    alice.expect("OK SEND bob");
    bob.send("QUIT");
    bob.expect("OK QUIT");
    let mut events = viewer.until("after QUIT");
    events.push(viewer.next()); // bob's box, ended
    events.push(viewer.next()); // the slots
    let shown = texts(&events);
    let expected = [
        "(connects: 1/5 slots taken)",
        "OK WELCOME minichat 1: CONNECT \\u003cname\\u003e to log in, HELP for commands",
        "CONNECT alice",
        "OK CONNECT alice",
        "(connects: 2/5 slots taken)",
        "OK WELCOME minichat 1: CONNECT \\u003cname\\u003e to log in, HELP for commands",
        "CONNECT bob",
        "OK CONNECT bob",
        "SEND bob \\u003cb\\u003ehi\\u003c/b\\u003e \\u0026 bye",
        "RECEIVE alice \\u003cb\\u003ehi\\u003c/b\\u003e \\u0026 bye",
        "OK SEND bob",
        "QUIT",
        "OK QUIT",
        "(closes the connection after QUIT)",
    ];
    assert_eq!(shown, expected);
    assert!(
        events
            .iter()
            .any(|e| e.starts_with(r#"{"type":"party","id":1,"label":"alice","addr":"127.0.0.1:"#)),
        "{events:#?}"
    );
    let last_slots = events
        .iter()
        .rev()
        .find(|e| e.contains(r#""type":"slots""#))
        .unwrap();
    assert_eq!(
        last_slots,
        r#"{"type":"slots","open":1,"max":5,"holders":[1]}"#
    );
    // A viewer who comes later starts from the state and the last rows.
    let mut late = Viewer::open(watch).unwrap();
    let start = late.until("after QUIT");
    assert!(start[0].contains(r#""label":"alice""#), "{start:#?}");
    assert_eq!(texts(&start), expected);
}

pub(crate) fn the_page_and_its_script_are_served_and_bad_requests_get_clear_errors() {
    let (_, watch) = start();
    let page = fetch(watch, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(page.starts_with("HTTP/1.1 200 OK\r\n"), "{page}");
    assert!(page.contains("Content-Type: text/html; charset=utf-8\r\n"));
    assert!(page.contains("<script src=\"/view.js\"></script>"));
    let script = fetch(watch, b"GET /view.js HTTP/1.0\r\n\r\n");
    assert!(script.contains("Content-Type: text/javascript"), "{script}");
    assert!(script.contains("new EventSource('/events')"));
    let head = fetch(watch, b"HEAD / HTTP/1.1\r\n\r\n");
    assert!(
        head.starts_with("HTTP/1.1 200 OK\r\n") && head.ends_with("\r\n\r\n"),
        "{head}"
    );
    let cases: [(&[u8], &str); 7] = [
        (b"GET /admin HTTP/1.1\r\n\r\n", "404 Not Found"),
        (
            b"POST /events HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi",
            "405 Method Not Allowed",
        ),
        (b"GET / HTTP/3\r\n\r\n", "505 HTTP Version Not Supported"),
        (b"GET / HTTP/1.1\r\nnonsense\r\n\r\n", "400 Bad Request"),
        (
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\r\n\r\n",
            "400 Bad Request",
        ),
        (&[b'A'; 4000], "414 URI Too Long"),
        (
            b"GET / HTTP/1.1\r\nX: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n",
            "431 Request Header Fields Too Large",
        ),
    ];
    for (request, status) in cases {
        let mut request = request.to_vec();
        if status.starts_with("431") {
            let header = b"X: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
            while request.len() < 10_000 {
                request.extend_from_slice(header);
            }
        }
        let response = fetch(watch, &request);
        assert!(
            response.starts_with(&format!("HTTP/1.1 {status}\r\n")),
            "{:?} got {response:?}",
            String::from_utf8_lossy(&request[..request.len().min(60)])
        );
        assert!(response.contains("Connection: close\r\n"));
    }
    // A client that says nothing gets 408 in time, and holds nothing.
    let started = Instant::now();
    let mut silent = TcpStream::connect(watch).unwrap();
    silent
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut response = String::new();
    silent.read_to_string(&mut response).unwrap();
    assert!(
        response.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
        "{response}"
    );
    assert!(started.elapsed() < Duration::from_secs(8));
}

#[test]
fn viewers_are_bounded() {
    let (_, watch) = start();
    let viewers: Vec<Viewer> = (0..16).map(|_| Viewer::open(watch).unwrap()).collect();
    match Viewer::open(watch) {
        Err(status) => assert_eq!(status, "HTTP/1.1 503 Service Unavailable\r\n"),
        Ok(_) => panic!("a 17th viewer was let in"),
    }
    drop(viewers);
    // Once they are gone, a viewer is let in again.
    let deadline = Instant::now() + READ_TIMEOUT;
    while Viewer::open(watch).is_err() {
        assert!(
            Instant::now() < deadline,
            "the viewers' places were never freed"
        );
        thread::sleep(Duration::from_millis(20)); // a poll interval
    }
}

/// A viewer that stops reading: the chat goes on undelayed while
/// connections come and go (events the view never skips), and a viewer
/// that reads is served all along. (That the lagging viewer is then
/// dropped is tested in src/server/watch/mod.rs: here the system's socket
/// buffers, megabytes on loopback, would take too long to fill.)
#[cfg(target_os = "linux")]
#[test]
fn a_viewer_that_does_not_read_delays_nobody() {
    let (chat, watch) = start();
    let deaf = Viewer::open(watch).unwrap();
    crate::common::shrink_receive_buffer(deaf.reader.get_ref(), 2048);
    let mut pair = Pair::login(chat, "w");
    let churn = thread::spawn(move || {
        for _ in 0..1000 {
            let mut stream = TcpStream::connect(chat).unwrap();
            stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
            let mut greeting = [0; 8];
            let _ = stream.read(&mut greeting);
        }
    });
    pair.talk_while(churn, Duration::from_secs(30));
    assert!(
        pair.worst < Duration::from_secs(1),
        "a round trip took {:?}",
        pair.worst
    );
    let mut reader = Viewer::open(watch).unwrap();
    assert!(reader.next().contains(r#""type":"party""#));
    pair.still_talking();
    drop(deaf);
}
