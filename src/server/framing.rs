//! Framing: cutting a client's byte stream into lines, in bounded memory
//! (PROTOCOL.md, "Transport et découpage en lignes").
//!
//! A line ends with LF; one CR right before the LF is dropped, so CRLF and LF
//! are both accepted. A line may hold at most [`MAX_LINE_BYTES`] bytes before
//! its terminator. A longer line is thrown away as it arrives and reported
//! once, as [`Line::TooLong`], when its LF comes: this is what stops a client
//! from making the server hold a 100 MB "line" in memory.

use std::io::{self, Read};

use crate::protocol::MAX_LINE_BYTES;

/// How many bytes one `read` may bring in. It must hold a whole line of
/// [`MAX_LINE_BYTES`] plus its CRLF; more lets one `read` bring several
/// pipelined lines, which the session then handles as one batch. 2 KiB is
/// about 18 messages of 100 characters, and costs 2 MB for 1 000 clients.
pub(crate) const READ_BUFFER_BYTES: usize = 2048;

const _: () = assert!(READ_BUFFER_BYTES >= MAX_LINE_BYTES + 2);

/// One complete line, as [`LineReader::next_line`] hands it out.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Line<'a> {
    /// The line's bytes, without its LF or the CR right before it.
    Complete(&'a [u8]),
    /// A line longer than [`MAX_LINE_BYTES`] ended here; its bytes are gone.
    TooLong,
}

/// Reads lines from a stream into one fixed buffer.
pub(crate) struct LineReader {
    /// The bytes read and not yet handed out are `buf[start..end]`.
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    /// True while throwing away the rest of an over-long line, until its LF.
    discarding: bool,
}

impl Default for LineReader {
    fn default() -> Self {
        LineReader::new()
    }
}

impl LineReader {
    pub(crate) fn new() -> LineReader {
        LineReader {
            buf: vec![0; READ_BUFFER_BYTES].into_boxed_slice(),
            start: 0,
            end: 0,
            discarding: false,
        }
    }

    /// True when [`next_line`](Self::next_line) has a line to give without
    /// reading.
    pub(crate) fn has_line(&self) -> bool {
        self.pending().contains(&b'\n')
    }

    /// Makes one `read` call on `source` and keeps what it brings. Returns
    /// the number of bytes read, 0 meaning end of stream.
    pub(crate) fn fill(&mut self, source: &mut impl Read) -> io::Result<usize> {
        if self.start == self.end {
            (self.start, self.end) = (0, 0);
        } else if self.end == self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            (self.start, self.end) = (0, self.end - self.start);
        }
        let n = source.read(&mut self.buf[self.end..])?;
        self.end += n;
        self.drop_overlong_start();
        Ok(n)
    }

    /// The next complete line already read, if any.
    pub(crate) fn next_line(&mut self) -> Option<Line<'_>> {
        let newline = self.pending().iter().position(|&b| b == b'\n')?;
        let line_start = self.start;
        self.start += newline + 1;
        if std::mem::take(&mut self.discarding) {
            self.drop_overlong_start();
            return Some(Line::TooLong);
        }
        let mut line = &self.buf[line_start..line_start + newline];
        if let [rest @ .., b'\r'] = line {
            line = rest;
        }
        if line.len() > MAX_LINE_BYTES {
            return Some(Line::TooLong);
        }
        Some(Line::Complete(line))
    }

    fn pending(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// If the unfinished line at the start of the buffer can no longer fit
    /// (more than [`MAX_LINE_BYTES`] bytes and a CR, with no LF yet), forget
    /// it and discard the rest of it as it arrives.
    fn drop_overlong_start(&mut self) {
        let pending = self.pending();
        if !self.discarding && pending.len() > MAX_LINE_BYTES + 1 && !pending.contains(&b'\n') {
            self.discarding = true;
        }
        if self.discarding && !self.pending().contains(&b'\n') {
            (self.start, self.end) = (0, 0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` to a reader `chunk` bytes per `read`, and collects what
    /// it hands out (`None` standing for a too-long line).
    fn lines(input: &[u8], chunk: usize) -> Vec<Option<Vec<u8>>> {
        struct Chunks<'a>(&'a [u8], usize);
        impl Read for Chunks<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = self.0.len().min(self.1).min(buf.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut source = Chunks(input, chunk);
        let mut reader = LineReader::new();
        let mut out = Vec::new();
        loop {
            while let Some(line) = reader.next_line() {
                out.push(match line {
                    Line::Complete(bytes) => Some(bytes.to_vec()),
                    Line::TooLong => None,
                });
            }
            if reader.fill(&mut source).unwrap() == 0 {
                return out;
            }
        }
    }

    fn text(s: &str) -> Option<Vec<u8>> {
        Some(s.as_bytes().to_vec())
    }

    #[test]
    fn lf_and_crlf_both_end_a_line() {
        for chunk in [1, 3, 4096] {
            assert_eq!(
                lines(b"a\nb\r\nc\n", chunk),
                [text("a"), text("b"), text("c")]
            );
        }
    }

    #[test]
    fn only_one_cr_before_lf_is_dropped() {
        assert_eq!(lines(b"a\r\r\n\r\n", 7), [text("a\r"), text("")]);
        assert_eq!(lines(b"a\rb\n", 7), [text("a\rb")]);
    }

    #[test]
    fn an_unfinished_last_line_is_not_a_line() {
        assert_eq!(lines(b"a\nb", 10), [text("a")]);
    }

    #[test]
    fn a_line_of_512_bytes_is_accepted_with_lf_or_crlf() {
        let line = "x".repeat(MAX_LINE_BYTES);
        for chunk in [1, 100, 4096] {
            let input = format!("{line}\n{line}\r\nok\n");
            assert_eq!(
                lines(input.as_bytes(), chunk),
                [text(&line), text(&line), text("ok")]
            );
        }
    }

    #[test]
    fn a_line_of_513_bytes_is_too_long_once_and_the_next_line_is_read() {
        let line = "x".repeat(MAX_LINE_BYTES + 1);
        for chunk in [1, 100, 4096] {
            for end in ["\n", "\r\n"] {
                let input = format!("{line}{end}PING\n");
                assert_eq!(
                    lines(input.as_bytes(), chunk),
                    [None, text("PING")],
                    "{chunk} {end:?}"
                );
            }
        }
    }

    #[test]
    fn a_huge_line_is_discarded_without_growing_the_buffer() {
        let mut input = vec![b'y'; 1_000_000];
        input.extend_from_slice(b"\nPING\n");
        assert_eq!(lines(&input, 65536), [None, text("PING")]);
    }

    #[test]
    fn an_overlong_line_does_not_swallow_the_lines_after_it() {
        let mut input = vec![b'z'; 3000];
        input.extend_from_slice(b"\r\na\nb\n");
        for chunk in [1, 700, 4096] {
            assert_eq!(
                lines(&input, chunk),
                [None, text("a"), text("b")],
                "{chunk}"
            );
        }
    }

    #[test]
    fn has_line_tells_whether_a_line_is_waiting() {
        let mut reader = LineReader::new();
        assert!(!reader.has_line());
        reader.fill(&mut &b"PI"[..]).unwrap();
        assert!(!reader.has_line());
        reader.fill(&mut &b"NG\n"[..]).unwrap();
        assert!(reader.has_line());
        assert_eq!(reader.next_line(), Some(Line::Complete(b"PING")));
        assert!(!reader.has_line());
    }
}
