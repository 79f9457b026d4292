//! Headless Chromium, driven through its DevTools protocol with the
//! standard library only: a WebSocket client (RFC 6455, text frames) and
//! two commands, `Runtime.evaluate` and `Page.captureScreenshot`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::json::value_of;
use super::{READ_TIMEOUT, poll_until};

/// The Chromium to use: `MINICHAT_CHROMIUM`, or Debian's `chromium`.
pub fn find_chromium() -> Option<PathBuf> {
    let candidates = std::env::var_os("MINICHAT_CHROMIUM")
        .map(PathBuf::from)
        .into_iter()
        .chain(["/usr/bin/chromium", "/usr/bin/chromium-browser"].map(PathBuf::from));
    candidates.into_iter().find(|path| path.is_file())
}

/// A headless Chromium showing one page.
pub struct Browser {
    process: Process,
    socket: TcpStream,
    next_id: u64,
}

/// The Chromium process, killed (and its profile removed) when dropped,
/// even by a failing test.
struct Process {
    child: Child,
    profile: PathBuf,
}

impl Browser {
    /// Starts `chromium` on `url`, with a fresh profile, and connects to
    /// the page's DevTools.
    pub fn open(chromium: &Path, url: &str, width: u32, height: u32) -> Browser {
        let profile = std::env::temp_dir().join(format!(
            "minichat-chromium-{}-{}",
            std::process::id(),
            Instant::now().elapsed().as_nanos()
        ));
        let _ = std::fs::remove_dir_all(&profile);
        std::fs::create_dir_all(&profile).unwrap();
        let child = Command::new(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                "--remote-debugging-port=0",
                "--remote-allow-origins=*",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg(format!("--window-size={width},{height}"))
            .arg(url)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromium");
        let process = Process { child, profile };
        let socket = connect_to_page(&process.profile);
        Browser {
            process,
            socket,
            next_id: 1,
        }
    }

    /// Evaluates `expression` in the page; returns its value, which must
    /// be a string.
    pub fn evaluate(&mut self, expression: &str) -> String {
        let params = format!(
            r#"{{"expression":{},"returnByValue":true}}"#,
            minichat::diagram::json::string(expression)
        );
        let reply = self.call("Runtime.evaluate", &params);
        value_of(&reply, "value").unwrap_or_else(|| panic!("{expression} gave {reply}"))
    }

    /// Polls `expression` until `done` accepts its value, for at most
    /// `limit`; returns the last value.
    pub fn wait_for(
        &mut self,
        expression: &str,
        limit: Duration,
        done: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let value = self.evaluate(expression);
            if done(&value) || Instant::now() >= deadline {
                return value;
            }
            std::thread::sleep(Duration::from_millis(50)); // a poll interval
        }
    }

    /// A PNG of the page as it is shown.
    pub fn screenshot(&mut self) -> Vec<u8> {
        let reply = self.call("Page.captureScreenshot", r#"{"format":"png"}"#);
        base64(&value_of(&reply, "data").expect("screenshot data"))
    }

    /// Sends one command and returns the message that answers it.
    fn call(&mut self, method: &str, params: &str) -> String {
        let id = self.next_id;
        self.next_id += 1;
        send_text(
            &mut self.socket,
            &format!(r#"{{"id":{id},"method":"{method}","params":{params}}}"#),
        );
        let answer = format!(r#"{{"id":{id},"#);
        loop {
            let message = read_message(&mut self.socket);
            if message.starts_with(&answer) {
                assert!(!message.contains(r#""error":"#), "{method}: {message}");
                return message;
            }
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// Chromium writes its port in the profile; the page's WebSocket is listed
/// at `/json/list`.
fn connect_to_page(profile: &Path) -> TcpStream {
    let port_file = profile.join("DevToolsActivePort");
    let limit = Duration::from_secs(20);
    assert!(
        poll_until(limit, || std::fs::read_to_string(&port_file)
            .is_ok_and(|t| t.contains('\n'))),
        "chromium did not start within {limit:?}"
    );
    let port: u16 = std::fs::read_to_string(&port_file)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let mut page = None;
    assert!(
        poll_until(limit, || {
            let list = http_get(port, "/json/list");
            page = list
                .split('{')
                .find(|target| {
                    target.contains(r#""type": "page""#) || target.contains(r#""type":"page""#)
                })
                .and_then(|target| value_of(target, "webSocketDebuggerUrl"));
            page.is_some()
        }),
        "chromium showed no page"
    );
    let url = page.unwrap();
    let path = &url[url.find("/devtools/").unwrap()..];
    let mut socket = TcpStream::connect(("127.0.0.1", port)).unwrap();
    socket.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    write!(
        socket,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: bWluaWNoYXQgdGVzdHMhIQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .unwrap();
    let head = read_head(&mut socket);
    assert!(head.starts_with("HTTP/1.1 101"), "no WebSocket: {head}");
    socket
}

fn http_get(port: u16, path: &str) -> String {
    let Ok(mut socket) = TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    socket.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    let _ = write!(
        socket,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    );
    let mut response = String::new();
    let _ = socket.read_to_string(&mut response);
    response
}

fn read_head(socket: &mut TcpStream) -> String {
    let mut reader = BufReader::new(socket);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        head += &line;
        if line == "\r\n" || line.is_empty() {
            // The upgrade answer has no body: nothing was read past it.
            assert!(reader.buffer().is_empty());
            return head;
        }
    }
}

/// One masked text frame (a client must mask what it sends).
fn send_text(socket: &mut TcpStream, text: &str) {
    let payload = text.as_bytes();
    let mut frame = vec![0x81];
    match payload.len() {
        n if n < 126 => frame.push(0x80 | n as u8),
        n if n <= 0xFFFF => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    let mask = [0x6d, 0x69, 0x6e, 0x69];
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    socket.write_all(&frame).unwrap();
}

/// The next whole message (its frames joined).
fn read_message(socket: &mut TcpStream) -> String {
    let mut message = Vec::new();
    loop {
        let mut head = [0; 2];
        socket
            .read_exact(&mut head)
            .expect("a DevTools message in time");
        let length = match head[1] & 0x7f {
            126 => {
                let mut n = [0; 2];
                socket.read_exact(&mut n).unwrap();
                u16::from_be_bytes(n) as u64
            }
            127 => {
                let mut n = [0; 8];
                socket.read_exact(&mut n).unwrap();
                u64::from_be_bytes(n)
            }
            n => n as u64,
        };
        let mut payload = vec![0; length as usize];
        socket.read_exact(&mut payload).unwrap();
        message.extend_from_slice(&payload);
        if head[0] & 0x80 != 0 {
            return String::from_utf8(message).unwrap();
        }
    }
}

/// Decodes standard base64.
fn base64(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => 0,
    };
    let digits: Vec<u8> = text.bytes().filter(|&c| c != b'=').map(value).collect();
    digits
        .chunks(4)
        .flat_map(|chunk| {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |n, (i, &d)| n | u32::from(d) << (18 - 6 * i));
            let bytes = n.to_be_bytes();
            bytes[1..chunk.len()].to_vec()
        })
        .collect()
}
