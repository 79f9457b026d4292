//! The live view's threads: one accepts connections, one serves each, as
//! the chat server does. A viewer's thread writes its queue to its socket
//! and renews the budget of wire lines ([`Watch::tick`]).

use std::io::{self, Read};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::RecvTimeoutError;
use std::thread;
use std::time::{Duration, Instant};

use super::super::peer::write_before;
use super::http::{self, Route};
use super::{MAX_HTTP_CONNECTIONS, TICK, Watch};

/// The page, and its script: built into the binary, nothing is fetched
/// from anywhere (teaching VMs are often offline).
const PAGE: &str = include_str!("page.html");
const SCRIPT: &str = include_str!("view.js");

/// How long one write to a viewer may take: past it, the viewer is too
/// slow, and dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(2);

/// A viewer hears at least this often, even with nothing new: a comment
/// line, so that a viewer gone without a word is noticed and let go.
const KEEPALIVE: Duration = Duration::from_secs(15);

/// How long a browser waits before reconnecting to a stream that ended
/// (a viewer dropped for lagging, a server restarted).
const RECONNECT_MS: u64 = 1000;

/// How long, and for how many reads of 4 KiB, a connection that got an
/// error is read before it is closed (see [`linger`]).
const LINGER: Duration = Duration::from_millis(500);
const LINGER_READS: usize = 16;

/// A thread that serves one connection needs little: its buffers are small.
const STACK_BYTES: usize = 64 * 1024;

/// Starts the thread that accepts the view's connections.
pub(super) fn spawn(listener: TcpListener, watch: Arc<Watch>) -> io::Result<()> {
    thread::Builder::new()
        .name("watch".into())
        .stack_size(STACK_BYTES)
        .spawn(move || accept(listener, &watch))?;
    Ok(())
}

/// One of the view's open connections, counted in `Watch::connections`
/// and given back when dropped, whatever way its thread ends.
struct Open(Arc<Watch>);

impl Open {
    fn take(watch: &Arc<Watch>) -> Option<Open> {
        watch
            .connections
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_HTTP_CONNECTIONS).then_some(n + 1)
            })
            .ok()
            .map(|_| Open(Arc::clone(watch)))
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::AcqRel);
    }
}

fn accept(listener: TcpListener, watch: &Arc<Watch>) {
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else {
            // Out of descriptors, say: the chat server's accept loop logs
            // and waits; the view just waits a little.
            thread::sleep(TICK);
            continue;
        };
        let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
        let Some(open) = Open::take(watch) else {
            // A fresh socket takes this short answer at once; the write
            // timeout bounds it all the same.
            let _ = http::write_error(&mut stream, http::UNAVAILABLE);
            continue;
        };
        // If no thread can be had, the closure, its socket and its `Open`
        // are dropped with the error.
        let _ = thread::Builder::new()
            .name("watch-viewer".into())
            .stack_size(STACK_BYTES)
            .spawn(move || {
                let _ = answer(stream, &open.0);
            });
    }
}

/// Reads one request and answers it.
fn answer(mut stream: TcpStream, watch: &Watch) -> io::Result<()> {
    stream.set_read_timeout(Some(http::REQUEST_TIMEOUT))?;
    let request = match http::read_request(&mut stream) {
        Ok(request) => request,
        Err(status) => {
            http::write_error(&mut stream, status)?;
            return linger(stream);
        }
    };
    match request.route {
        Route::Page => http::write_ok(
            &mut stream,
            "text/html; charset=utf-8",
            PAGE.as_bytes(),
            request.head_only,
        ),
        Route::Script => http::write_ok(
            &mut stream,
            "text/javascript; charset=utf-8",
            SCRIPT.as_bytes(),
            request.head_only,
        ),
        Route::Events if request.head_only => http::write_stream_head(&mut stream),
        Route::Events => stream_events(stream, watch),
    }
}

/// Closes after an error without losing it: a socket closed with unread
/// input (a request's body, the rest of an over-long head) is reset, and
/// a reset can destroy the response before the client reads it. So: end
/// of stream, then read and forget what comes, within bounds.
fn linger(mut stream: TcpStream) -> io::Result<()> {
    stream.shutdown(std::net::Shutdown::Write)?;
    stream.set_read_timeout(Some(LINGER))?;
    let mut sink = [0; 4096];
    for _ in 0..LINGER_READS {
        if !matches!(stream.read(&mut sink), Ok(n) if n > 0) {
            break;
        }
    }
    Ok(())
}

/// Writes the view's messages to a viewer until it goes, lags, or a
/// write fails. A batch that its socket does not take within
/// [`WRITE_TIMEOUT`] (however slowly the viewer reads) ends the stream.
fn stream_events(mut stream: TcpStream, watch: &Watch) -> io::Result<()> {
    let Some(viewer) = watch.subscribe() else {
        http::write_error(&mut stream, http::UNAVAILABLE)?;
        return linger(stream);
    };
    let _watched = Watched {
        watch,
        id: viewer.id,
    };
    http::write_stream_head(&mut stream)?;
    let mut batch = format!("retry: {RECONNECT_MS}\n\n");
    let mut last_write = Instant::now();
    let mut last_tick = Instant::now();
    loop {
        match viewer.messages.recv_timeout(TICK) {
            Ok(first) => {
                batch.push_str(&first);
                // What else is queued goes in the same write.
                while let Ok(more) = viewer.messages.try_recv() {
                    batch.push_str(&more);
                }
                if viewer.dropped.load(Ordering::Relaxed) {
                    return Ok(()); // lagging: the browser reconnects
                }
            }
            Err(RecvTimeoutError::Timeout) if gone(&stream) => return Ok(()),
            Err(RecvTimeoutError::Timeout) if last_write.elapsed() >= KEEPALIVE => {
                batch.push_str(": keepalive\n\n");
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return Ok(()),
        }
        if !batch.is_empty() {
            let deadline = Instant::now() + WRITE_TIMEOUT;
            write_before(&stream, batch.as_bytes(), deadline, WRITE_TIMEOUT)
                .map_err(|stopped| stopped.error)?;
            batch.clear();
            last_write = Instant::now();
        }
        if last_tick.elapsed() >= TICK {
            watch.tick();
            last_tick = Instant::now();
        }
    }
}

/// Whether the viewer has closed its side (a tab closed), found without
/// waiting; what it sends meanwhile is read and forgotten.
fn gone(stream: &TcpStream) -> bool {
    let mut sink = [0; 256];
    let read = stream
        .set_nonblocking(true)
        .and_then(|()| (&*stream).read(&mut sink));
    let blocking = stream.set_nonblocking(false);
    match read {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != io::ErrorKind::WouldBlock || blocking.is_err(),
    }
}

/// A viewer's place among the viewers, given back when its thread ends.
struct Watched<'a> {
    watch: &'a Watch,
    id: u64,
}

impl Drop for Watched<'_> {
    fn drop(&mut self) {
        self.watch.unsubscribe(self.id);
    }
}
