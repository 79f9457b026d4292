//! Just enough HTTP/1.1 for the live view: one `GET` (or `HEAD`) per
//! connection, then `Connection: close`. Every read is bounded in size and
//! time, and every bad request gets its own status:
//!
//! | request | status |
//! | --- | --- |
//! | `GET /`, `/view.js`, `/events` | `200` |
//! | any other path | `404 Not Found` |
//! | a method other than `GET` or `HEAD` | `405 Method Not Allowed` |
//! | a request line over [`MAX_REQUEST_LINE`] bytes | `414 URI Too Long` |
//! | a head over [`MAX_HEAD`] bytes | `431 Request Header Fields Too Large` |
//! | not HTTP/1.0 or HTTP/1.1 | `505 HTTP Version Not Supported` |
//! | anything else malformed | `400 Bad Request` |
//! | no complete head within [`REQUEST_TIMEOUT`] | `408 Request Timeout` |
//! | [`super::MAX_HTTP_CONNECTIONS`] already open | `503 Service Unavailable` |

use std::io::{self, Read, Write};
use std::time::Duration;

/// The longest request line read (`GET /events HTTP/1.1` is 21 bytes).
pub(crate) const MAX_REQUEST_LINE: usize = 1024;

/// The longest request head read: the request line and the headers.
pub(crate) const MAX_HEAD: usize = 8 * 1024;

/// How long a client has to send its request head: a client that opens a
/// connection and says nothing holds a thread no longer.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// What the view serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    /// `/`: the page.
    Page,
    /// `/view.js`: its script.
    Script,
    /// `/events`: the stream of Server-Sent Events.
    Events,
}

/// A request the view can answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Request {
    pub(crate) route: Route,
    /// `HEAD`: the headers only.
    pub(crate) head_only: bool,
}

/// An error status, with the line that explains it in the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Status {
    pub(crate) code: u16,
    pub(crate) reason: &'static str,
    pub(crate) why: &'static str,
}

pub(crate) const BAD_REQUEST: Status = Status {
    code: 400,
    reason: "Bad Request",
    why: "this is not an HTTP request the live view understands",
};
pub(crate) const NOT_FOUND: Status = Status {
    code: 404,
    reason: "Not Found",
    why: "the live view serves / (the page) and /events (its stream) only",
};
pub(crate) const METHOD_NOT_ALLOWED: Status = Status {
    code: 405,
    reason: "Method Not Allowed",
    why: "the live view is read-only: GET and HEAD only",
};
pub(crate) const REQUEST_TIMEOUT_STATUS: Status = Status {
    code: 408,
    reason: "Request Timeout",
    why: "no complete request in time",
};
pub(crate) const URI_TOO_LONG: Status = Status {
    code: 414,
    reason: "URI Too Long",
    why: "the request line is too long",
};
pub(crate) const HEAD_TOO_LARGE: Status = Status {
    code: 431,
    reason: "Request Header Fields Too Large",
    why: "the request's headers are too large",
};
pub(crate) const UNAVAILABLE: Status = Status {
    code: 503,
    reason: "Service Unavailable",
    why: "too many viewers already; try again later",
};
pub(crate) const BAD_VERSION: Status = Status {
    code: 505,
    reason: "HTTP Version Not Supported",
    why: "HTTP/1.0 or HTTP/1.1 only",
};

/// Reads one request head from `stream` (whose read timeout the caller
/// set) and says what it asks for.
pub(crate) fn read_request(stream: &mut impl Read) -> Result<Request, Status> {
    let head = read_head(stream)?;
    parse(&head)
}

/// The bytes up to the blank line that ends the head (at most
/// [`MAX_HEAD`]); the body, if any, is never read.
fn read_head(stream: &mut impl Read) -> Result<Vec<u8>, Status> {
    let mut head = Vec::with_capacity(512);
    let mut chunk = [0; 512];
    loop {
        if let Some(end) = find(&head, b"\r\n\r\n").or_else(|| find(&head, b"\n\n")) {
            head.truncate(end);
            return Ok(head);
        }
        if find(&head, b"\n").is_none() && head.len() > MAX_REQUEST_LINE {
            return Err(URI_TOO_LONG);
        }
        if head.len() > MAX_HEAD {
            return Err(HEAD_TOO_LARGE);
        }
        match stream.read(&mut chunk) {
            Ok(0) => return Err(BAD_REQUEST),
            Ok(n) => head.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Err(REQUEST_TIMEOUT_STATUS),
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Reads a request head: `METHOD TARGET VERSION`, then `Name: value`
/// lines.
pub(crate) fn parse(head: &[u8]) -> Result<Request, Status> {
    let head = std::str::from_utf8(head).map_err(|_| BAD_REQUEST)?;
    let mut lines = head
        .split('\n')
        .map(|line| line.strip_suffix('\r').unwrap_or(line));
    let request_line = lines.next().unwrap_or("");
    if request_line.len() > MAX_REQUEST_LINE {
        return Err(URI_TOO_LONG);
    }
    let mut fields = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(BAD_REQUEST);
    };
    if !version.starts_with("HTTP/") || method.is_empty() || !target.starts_with('/') {
        return Err(BAD_REQUEST);
    }
    for line in lines {
        let Some((name, _)) = line.split_once(':') else {
            return Err(BAD_REQUEST);
        };
        if name.is_empty() || name.contains([' ', '\t']) {
            return Err(BAD_REQUEST);
        }
    }
    if !matches!(version, "HTTP/1.1" | "HTTP/1.0") {
        return Err(BAD_VERSION);
    }
    let head_only = match method {
        "GET" => false,
        "HEAD" => true,
        _ => return Err(METHOD_NOT_ALLOWED),
    };
    let route = match target {
        "/" | "/index.html" => Route::Page,
        "/view.js" => Route::Script,
        "/events" => Route::Events,
        _ => return Err(NOT_FOUND),
    };
    Ok(Request { route, head_only })
}

/// Headers every response carries: nothing is cached, nothing is taken
/// from elsewhere, nothing is guessed.
const COMMON_HEADERS: &str = "Connection: close\r\n\
    Cache-Control: no-store\r\n\
    X-Content-Type-Options: nosniff\r\n\
    Referrer-Policy: no-referrer\r\n\
    Content-Security-Policy: default-src 'self'; style-src 'self' 'unsafe-inline'\r\n";

/// `200 OK` with `body` (or its headers only, for `HEAD`).
pub(crate) fn write_ok(
    out: &mut impl Write,
    content_type: &str,
    body: &[u8],
    head_only: bool,
) -> io::Result<()> {
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{COMMON_HEADERS}\r\n",
        body.len()
    );
    out.write_all(head.as_bytes())?;
    if !head_only {
        out.write_all(body)?;
    }
    out.flush()
}

/// The head of the event stream, which has no length: it ends when the
/// connection does.
pub(crate) fn write_stream_head(out: &mut impl Write) -> io::Result<()> {
    let head =
        format!("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n{COMMON_HEADERS}\r\n");
    out.write_all(head.as_bytes())?;
    out.flush()
}

/// An error response; its body says why, in one line.
pub(crate) fn write_error(out: &mut impl Write, status: Status) -> io::Result<()> {
    let body = format!("{} {}: {}\n", status.code, status.reason, status.why);
    let allow = match status.code {
        405 => "Allow: GET, HEAD\r\n",
        503 => "Retry-After: 5\r\n",
        _ => "",
    };
    let response = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n{allow}{COMMON_HEADERS}\r\n{body}",
        status.code,
        status.reason,
        body.len()
    );
    out.write_all(response.as_bytes())?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(text: &str) -> Result<Request, Status> {
        read_request(&mut text.as_bytes())
    }

    #[test]
    fn the_three_routes_are_served_to_get_and_head() {
        let get = request("GET /events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n");
        assert_eq!(
            get,
            Ok(Request {
                route: Route::Events,
                head_only: false
            })
        );
        assert_eq!(
            request("HEAD / HTTP/1.0\n\n").map(|r| r.head_only),
            Ok(true)
        );
        assert_eq!(
            request("GET /view.js HTTP/1.1\r\n\r\n").map(|r| r.route),
            Ok(Route::Script)
        );
    }

    #[test]
    fn every_bad_request_gets_its_status() {
        let code = |text: &str| request(text).map_err(|s| s.code);
        assert_eq!(code("GET /nope HTTP/1.1\r\n\r\n"), Err(404));
        assert_eq!(code("GET /events?x=1 HTTP/1.1\r\n\r\n"), Err(404));
        assert_eq!(code("POST /events HTTP/1.1\r\n\r\n"), Err(405));
        assert_eq!(code("DELETE / HTTP/1.1\r\n\r\n"), Err(405));
        assert_eq!(code("GET / HTTP/2\r\n\r\n"), Err(505));
        assert_eq!(code("GET / HTTP/1.1 extra\r\n\r\n"), Err(400));
        assert_eq!(code("GET\r\n\r\n"), Err(400));
        assert_eq!(code("GET / HTTP/1.1\r\nno colon\r\n\r\n"), Err(400));
        assert_eq!(code("GET / HTTP/1.1\r\n"), Err(400)); // closed early
        assert_eq!(code("\u{16}\u{3}\u{1}\r\n\r\n"), Err(400)); // TLS, say
        let long_target = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(MAX_REQUEST_LINE));
        assert_eq!(code(&long_target), Err(414));
        let endless_line = "G".repeat(MAX_HEAD * 2);
        assert_eq!(code(&endless_line), Err(414));
        let many_headers = format!("GET / HTTP/1.1\r\n{}", "X-A: b\r\n".repeat(MAX_HEAD));
        assert_eq!(code(&many_headers), Err(431));
    }

    #[test]
    fn errors_say_why_and_close() {
        let mut out = Vec::new();
        write_error(&mut out, METHOD_NOT_ALLOWED).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"),
            "{text}"
        );
        assert!(text.contains("\r\nAllow: GET, HEAD\r\n"));
        assert!(text.contains("\r\nConnection: close\r\n"));
        assert!(text.ends_with(
            "\r\n\r\n405 Method Not Allowed: the live view is read-only: GET and HEAD only\n"
        ));
    }
}
