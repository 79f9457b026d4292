//! The live view (`--watch ADDR:PORT`): a page that draws the protocol as
//! it happens, for a projector. Off by default. **It shows message texts,
//! as `--verbose` does, to whoever can reach that port.**
//!
//! | part | module |
//! | --- | --- |
//! | what the server tells the view, and the viewers (here) | [`Watch`] |
//! | reading a request, writing a response: HTTP/1.1, bounded | `http` |
//! | the listening thread, one thread per viewer, the event stream | `serve` |
//! | the page and its script, built into the binary | `page.html`, `view.js` |
//!
//! **The log feeds it** (`log.rs`): every event line, and every wire line
//! while someone watches. The view reads those lines with the same reader
//! as `minichat diagram` ([`crate::diagram`]), so the two draw the same
//! rows; the page receives them as JSON in Server-Sent Events.
//!
//! **It never slows or stops the server**, by the log's rule: nobody waits
//! for a viewer.
//! - With no viewer, a wire line costs one atomic load ([`Watch::takes_line`]):
//!   no formatting, no lock.
//! - With viewers, at most [`LINES_PER_TICK`] wire lines per tick are drawn
//!   (a projector shows no more than that anyway); past it, lines are
//!   skipped until the next tick, and the page says so. Events (a
//!   connection accepted, a login, an end) are never skipped.
//! - Each viewer has a queue of [`VIEWER_QUEUE`] messages. A viewer whose
//!   queue is full is dropped, never waited for; its browser reconnects by
//!   itself, and starts again from the current state.
//! - At most [`MAX_VIEWERS`] viewers, and [`MAX_HTTP_CONNECTIONS`]
//!   connections to the view in all; past them, `503`.
//!
//! It is read-only: the page and the stream are the only things it serves,
//! and nothing a viewer sends reaches the server.

mod http;
mod serve;

use std::collections::VecDeque;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::diagram::scene::{Party, Row};
use crate::diagram::{Lang, Scene, event, json};

/// How often the budget of wire lines is renewed.
pub(crate) const TICK: Duration = Duration::from_millis(100);

/// Wire lines drawn per tick at most (500 a second): more than a class can
/// read; a flood beyond it is skipped, not queued.
pub(crate) const LINES_PER_TICK: usize = 50;

/// Messages waiting for one viewer, at most. A message is one row (under
/// 1.5 KB, the log cutting lines at 200 characters), so a viewer holds
/// under 400 KB.
pub(crate) const VIEWER_QUEUE: usize = 256;

/// Viewers of the event stream at once, at most.
pub(crate) const MAX_VIEWERS: usize = 16;

/// Connections to the view at once (viewers, and requests for the page),
/// at most: one thread each.
pub(crate) const MAX_HTTP_CONNECTIONS: usize = MAX_VIEWERS + 4;

/// Rows a new viewer is shown from before it came.
pub(crate) const HISTORY_ROWS: usize = 200;

/// Ended connections the view remembers (those its history may draw).
const REMEMBERED_ENDED: usize = 64;

/// What the view knows, and who watches. Shared by the log (every session
/// thread) and the viewers' threads.
#[derive(Debug)]
pub(crate) struct Watch {
    /// What every wire line reads: on a cache line of its own.
    gate: Gate,
    /// The view's open connections, at most [`MAX_HTTP_CONNECTIONS`].
    connections: AtomicUsize,
    state: Mutex<State>,
}

/// The flags every session thread reads for every wire line, kept on a
/// cache line of their own: the state's lock, taken by the viewers'
/// threads, would otherwise make each of its writes a cache miss for the
/// sessions.
#[derive(Debug, Default)]
#[repr(align(64))]
struct Gate {
    /// Wire lines the viewers may still be shown in this tick; always 0
    /// when nobody watches. The only thing a wire line costs without a
    /// viewer is reading it.
    credits: AtomicUsize,
    /// Some viewer is connected.
    watched: AtomicBool,
    /// Wire lines were skipped in this tick (over the budget).
    skipped: AtomicBool,
}

#[derive(Debug)]
struct State {
    scene: Scene,
    /// The last rows, as their messages, for a new viewer.
    history: VecDeque<Arc<str>>,
    viewers: Vec<Viewer>,
    next_viewer: u64,
    last_tick: Instant,
}

/// One viewer's end of its queue.
#[derive(Debug)]
struct Viewer {
    id: u64,
    queue: SyncSender<Arc<str>>,
    /// Set when the viewer is dropped: its thread stops at once, without
    /// writing what is still queued.
    dropped: Arc<AtomicBool>,
}

/// What a viewer's thread reads: its queue of messages, each one or more
/// Server-Sent Events ready to write.
pub(crate) struct Subscription {
    pub(crate) id: u64,
    pub(crate) messages: Receiver<Arc<str>>,
    pub(crate) dropped: Arc<AtomicBool>,
}

impl Watch {
    /// Binds the view's listening socket and starts its thread.
    pub(crate) fn start(address: SocketAddr) -> io::Result<(Arc<Watch>, SocketAddr)> {
        let listener = TcpListener::bind(address)?;
        let bound = listener.local_addr()?;
        let watch = Arc::new(Watch::new());
        serve::spawn(listener, Arc::clone(&watch))?;
        Ok((watch, bound))
    }

    fn new() -> Watch {
        Watch {
            gate: Gate::default(),
            connections: AtomicUsize::new(0),
            state: Mutex::new(State {
                scene: Scene::default(),
                history: VecDeque::with_capacity(HISTORY_ROWS),
                viewers: Vec::new(),
                next_viewer: 1,
                last_tick: Instant::now(),
            }),
        }
    }

    /// Whether a wire line should be formatted and handed to
    /// [`line`](Self::line): someone watches, and this tick's budget is
    /// not spent. Without a viewer, one atomic load.
    pub(crate) fn takes_line(&self) -> bool {
        if self.gate.credits.load(Ordering::Relaxed) > 0 {
            return true;
        }
        if self.gate.watched.load(Ordering::Relaxed) && !self.gate.skipped.load(Ordering::Relaxed) {
            self.gate.skipped.store(true, Ordering::Relaxed);
        }
        false
    }

    /// An event line of the log (never skipped: the view's state is made
    /// of them).
    pub(crate) fn event(&self, line: &str) {
        self.read(line);
    }

    /// A wire line of the log, once [`takes_line`](Self::takes_line) said
    /// yes.
    pub(crate) fn line(&self, line: &str) {
        let _ = self
            .gate
            .credits
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
        self.read(line);
    }

    /// Reads a log line into the scene and sends what it draws.
    fn read(&self, line: &str) {
        let Some(entry) = event::parse(line) else {
            return;
        };
        let mut state = self.lock();
        let mut rows = Vec::new();
        let known = state
            .scene
            .participants()
            .last()
            .map_or(0, |(party, _)| party);
        state.scene.feed(&entry, &mut rows);
        let mut messages: Vec<String> = Vec::new();
        let watched = !state.viewers.is_empty();
        if watched {
            // New participants first, so that the rows can name them.
            messages.extend(
                state
                    .scene
                    .participants()
                    .filter(|&(party, _)| party > known)
                    .map(|(party, p)| json::party(party, p)),
            );
        }
        let mut slots_changed = !messages.is_empty();
        let mut changed: Vec<Party> = Vec::new();
        for row in &rows {
            let message = json::row(row, entry.time, Lang::En);
            state.remember(&message);
            messages.push(message);
            match row {
                Row::LoggedIn { who } | Row::End { who, .. } => changed.push(*who),
                Row::Opened { .. } => slots_changed = true,
                _ => {}
            }
        }
        if watched {
            slots_changed |= !changed.is_empty();
            for who in changed {
                messages.push(json::party(who, state.scene.participant(who)));
            }
            if slots_changed {
                messages.push(json::slots(&state.scene));
            }
        }
        state.scene.forget_ended(REMEMBERED_ENDED);
        if watched {
            let events: String = messages.iter().map(|m| sse(m)).collect();
            self.broadcast(&mut state, events.into());
        }
    }

    /// A new viewer: its queue starts with the current state (the open
    /// connections, the slots) and the last rows. `None` when
    /// [`MAX_VIEWERS`] already watch.
    pub(crate) fn subscribe(&self) -> Option<Subscription> {
        let mut state = self.lock();
        if state.viewers.len() >= MAX_VIEWERS {
            return None;
        }
        let (queue, messages) = mpsc::sync_channel(VIEWER_QUEUE);
        let mut start = String::new();
        for (party, p) in state.scene.participants().skip(1) {
            start += &sse(&json::party(party, p));
        }
        start += &sse(&json::slots(&state.scene));
        for row in &state.history {
            start += &sse(row);
        }
        // The queue is empty: this first message always fits.
        let _ = queue.try_send(start.into());
        let id = state.next_viewer;
        state.next_viewer += 1;
        let dropped = Arc::new(AtomicBool::new(false));
        state.viewers.push(Viewer {
            id,
            queue,
            dropped: Arc::clone(&dropped),
        });
        self.gate.watched.store(true, Ordering::Relaxed);
        self.gate.credits.store(LINES_PER_TICK, Ordering::Relaxed);
        Some(Subscription {
            id,
            messages,
            dropped,
        })
    }

    /// A viewer left, or was dropped.
    pub(crate) fn unsubscribe(&self, id: u64) {
        let mut state = self.lock();
        state.viewers.retain(|viewer| viewer.id != id);
        self.when_unwatched(&state);
    }

    /// Renews the budget of wire lines once a [`TICK`] has passed; says
    /// to the viewers if lines were skipped in the last one. Called by
    /// the viewers' threads, at least once a tick.
    pub(crate) fn tick(&self) {
        self.tick_at(Instant::now());
    }

    fn tick_at(&self, now: Instant) {
        let mut state = self.lock();
        if now.saturating_duration_since(state.last_tick) < TICK || state.viewers.is_empty() {
            return;
        }
        state.last_tick = now;
        self.gate.credits.store(LINES_PER_TICK, Ordering::Relaxed);
        if self.gate.skipped.swap(false, Ordering::Relaxed) {
            let note = sse(r#"{"type":"skipped"}"#);
            self.broadcast(&mut state, note.into());
        }
    }

    /// Queues `events` for every viewer; drops those whose queue is full.
    fn broadcast(&self, state: &mut State, events: Arc<str>) {
        state
            .viewers
            .retain(|viewer| match viewer.queue.try_send(Arc::clone(&events)) {
                Ok(()) => true,
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                    viewer.dropped.store(true, Ordering::Relaxed);
                    false
                }
            });
        self.when_unwatched(state);
    }

    /// With no viewer left, wire lines cost nothing again.
    fn when_unwatched(&self, state: &State) {
        if state.viewers.is_empty() {
            self.gate.watched.store(false, Ordering::Relaxed);
            self.gate.credits.store(0, Ordering::Relaxed);
        }
    }

    /// The state's lock. It is held for a few map operations and queue
    /// sends, never across I/O; a panic under it leaves nothing half done
    /// that matters to a view, so a poisoned lock is taken all the same.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl State {
    fn remember(&mut self, message: &str) {
        if self.history.len() == HISTORY_ROWS {
            self.history.pop_front();
        }
        self.history.push_back(message.into());
    }
}

/// One Server-Sent Event carrying `data` (one line of JSON).
fn sse(data: &str) -> String {
    format!("data: {data}\n\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "2026-11-24T16:20:05Z";

    #[test]
    fn without_a_viewer_wire_lines_are_not_taken() {
        let watch = Watch::new();
        assert!(!watch.takes_line());
        let viewer = watch.subscribe().unwrap();
        assert!(watch.takes_line());
        watch.unsubscribe(viewer.id);
        assert!(!watch.takes_line());
        assert!(!watch.gate.skipped.load(Ordering::Relaxed));
    }

    #[test]
    fn a_tick_takes_so_many_lines_then_says_some_were_skipped() {
        let watch = Watch::new();
        let viewer = watch.subscribe().unwrap();
        let _state = viewer.messages.recv().unwrap();
        let mut taken = 0;
        for _ in 0..LINES_PER_TICK * 3 {
            if watch.takes_line() {
                watch.line(&format!("{T} bob > PING"));
                taken += 1;
            }
        }
        assert_eq!(taken, LINES_PER_TICK);
        watch.tick_at(Instant::now() + TICK);
        assert!(watch.takes_line());
        let messages: Vec<Arc<str>> = viewer.messages.try_iter().collect();
        assert_eq!(messages.len(), LINES_PER_TICK + 1);
        assert!(messages[LINES_PER_TICK].contains(r#"{"type":"skipped"}"#));
    }

    #[test]
    fn a_viewer_that_does_not_keep_up_is_dropped_never_waited_for() {
        let watch = Watch::new();
        let viewer = watch.subscribe().unwrap();
        let keeping_up = watch.subscribe().unwrap();
        let started = Instant::now();
        for i in 0..VIEWER_QUEUE * 4 {
            watch.event(&format!("{T} 127.0.0.1:{i} accepted (1/5 connections)"));
            while keeping_up.messages.try_recv().is_ok() {}
        }
        assert!(started.elapsed() < Duration::from_secs(2));
        assert!(viewer.dropped.load(Ordering::Relaxed));
        assert!(!keeping_up.dropped.load(Ordering::Relaxed));
        // What it was sent is still bounded by its queue.
        assert!(viewer.messages.try_iter().count() <= VIEWER_QUEUE);
        watch.unsubscribe(keeping_up.id);
        assert!(!watch.takes_line(), "no viewer left");
    }

    #[test]
    fn a_new_viewer_starts_from_the_state_and_the_last_rows() {
        let watch = Watch::new();
        watch.event("minichat: listening on 0.0.0.0:1234 (max 5 connections)");
        watch.event(&format!("{T} 127.0.0.1:5 accepted (1/5 connections)"));
        watch.event(&format!("{T} 127.0.0.1:5 logged in as alice (1 logged in)"));
        let viewer = watch.subscribe().unwrap();
        let state = viewer.messages.recv().unwrap();
        let events: Vec<&str> = state.split("\n\n").filter(|e| !e.is_empty()).collect();
        assert_eq!(
            events,
            [
                r#"data: {"type":"party","id":1,"label":"alice","addr":"127.0.0.1:5","open":true}"#,
                r#"data: {"type":"slots","open":1,"max":5,"holders":[1]}"#,
                r#"data: {"type":"row","time":"16:20:05","kind":"opened","who":1,"text":"(connects: 1/5 slots taken)"}"#,
                r#"data: {"type":"row","time":"16:20:05","kind":"login","who":1}"#,
            ]
        );
    }

    #[test]
    fn viewers_are_bounded() {
        let watch = Watch::new();
        let viewers: Vec<Subscription> = (0..MAX_VIEWERS)
            .map(|_| watch.subscribe().unwrap())
            .collect();
        assert!(watch.subscribe().is_none());
        watch.unsubscribe(viewers[0].id);
        assert!(watch.subscribe().is_some());
    }
}
