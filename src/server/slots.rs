//! The connection slots: at most `--max-connections` open connections,
//! logged in or not, each holding a [`Slot`] that gives itself back when
//! dropped, however its session ends (an early return, a panic, ...).
//!
//! A connection that ends with `QUIT` or `ERR TIMEOUT` gives its slot back
//! *before* its last line is written, so that a client that has read
//! `OK QUIT` can reconnect at once; its thread then lingers a little (see
//! `Session::linger`) to read and discard what the client still sends. The
//! lingering threads are bounded too, so that junk sent after `QUIT` cannot
//! pile up threads: at most [`MIN_LINGER_PLACES`] or `--max-connections`
//! linger at once, whichever is more, each for at most the write timeout.
//! Past that bound, a connection keeps its slot while it lingers (it is
//! still an open connection, after all).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use super::peer::{ConnId, Peer};

/// At least this many connections may linger at once without holding a
/// slot, however small `--max-connections` is: a whole class that leaves
/// at the bell frees its slots at once. (A lingering thread costs a few
/// pages of stack for at most the write timeout.)
pub(crate) const MIN_LINGER_PLACES: usize = 32;

/// The slots, and the connections that hold them.
#[derive(Debug)]
pub(crate) struct Slots {
    /// `--max-connections`.
    pub(crate) max: usize,
    /// The slots taken, and the open connections: what the operator's
    /// console lists.
    open: Mutex<Open>,
    /// Signalled each time a slot is given back (the console's `kick`
    /// waits on it).
    freed: Condvar,
    /// How many connections linger without a slot...
    lingering: AtomicUsize,
    /// ...and at most how many may: `max`, or [`MIN_LINGER_PLACES`] if more.
    linger_places: usize,
}

/// The slots taken, and their connections once set up.
#[derive(Debug, Default)]
struct Open {
    taken: usize,
    /// Oldest first. (A vector: a few pointers per connection, and a
    /// removal costs a scan of at most `--max-connections` entries.)
    peers: Vec<Arc<Peer>>,
}

/// One taken slot; dropping it frees the slot.
#[derive(Debug)]
pub(crate) struct Slot {
    slots: Arc<Slots>,
    id: ConnId,
}

/// One of the places for a connection that lingers without a slot;
/// dropping it frees the place.
#[derive(Debug)]
pub(crate) struct LingerPlace(Arc<Slots>);

/// What a connection that lingers holds until it is closed. (Held for its
/// `Drop` alone, which gives the place or the slot back: nothing reads it.)
#[derive(Debug)]
#[allow(dead_code)]
pub(crate) enum Lingering {
    /// A lingering place: its slot is free for a newcomer.
    InPlace(LingerPlace),
    /// Every lingering place was taken: it lingers in its own slot, which
    /// stays taken (for at most the write timeout).
    InSlot(Slot),
}

impl Slots {
    pub(crate) fn new(max: usize) -> Arc<Slots> {
        Arc::new(Slots {
            max,
            open: Mutex::new(Open::default()),
            freed: Condvar::new(),
            lingering: AtomicUsize::new(0),
            linger_places: max.max(MIN_LINGER_PLACES),
        })
    }

    /// Gives connection `id` a slot if one is free.
    pub(crate) fn take(self: &Arc<Self>, id: ConnId) -> Option<Slot> {
        let mut open = self.lock();
        if open.taken >= self.max {
            return None;
        }
        open.taken += 1;
        Some(Slot {
            slots: Arc::clone(self),
            id,
        })
    }

    /// How many slots are taken.
    pub(crate) fn count(&self) -> usize {
        self.lock().taken
    }

    /// The open connections, oldest first.
    pub(crate) fn connections(&self) -> Vec<Arc<Peer>> {
        self.lock().peers.clone()
    }

    /// Waits until connection `id` holds no slot, for at most `timeout`;
    /// says whether it was freed.
    pub(crate) fn wait_freed(&self, id: ConnId, timeout: Duration) -> bool {
        let open = self.lock();
        let (open, _) = self
            .freed
            .wait_timeout_while(open, timeout, |open| holds(&open.peers, id))
            .unwrap_or_else(PoisonError::into_inner);
        !holds(&open.peers, id)
    }

    /// The lock guards the map only, for a few operations at a time. A
    /// poisoned lock is used as it is: each change is one insert or remove.
    fn lock(&self) -> MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// True when connection `id` is among `open`.
fn holds(open: &[Arc<Peer>], id: ConnId) -> bool {
    open.iter().any(|peer| peer.id == id)
}

impl Slot {
    /// Lists the connection that holds this slot, once it is set up.
    pub(crate) fn attach(&self, peer: &Arc<Peer>) {
        self.slots.lock().peers.push(Arc::clone(peer));
    }

    /// The connection has ended but its thread will linger: gives the slot
    /// back if a lingering place is free, or keeps it.
    pub(crate) fn linger(self) -> Lingering {
        let slots = &self.slots;
        let place = slots
            .lingering
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < slots.linger_places).then_some(n + 1)
            });
        match place {
            Ok(_) => Lingering::InPlace(LingerPlace(Arc::clone(&self.slots))), // `self` drops here
            Err(_) => Lingering::InSlot(self),
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.slots.lock();
        open.taken -= 1;
        open.peers.retain(|peer| peer.id != self.id);
        drop(open);
        self.slots.freed.notify_all();
    }
}

impl Drop for LingerPlace {
    fn drop(&mut self) {
        self.0.lingering.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::peer::testing::connected;

    fn peer(id: ConnId) -> Arc<Peer> {
        connected(id, Duration::from_secs(1)).0
    }

    #[test]
    fn slots_are_taken_up_to_the_limit_and_freed_by_drop() {
        let slots = Slots::new(2);
        let (a, b, c) = (peer(1), peer(2), peer(3));
        let first = slots.take(1).unwrap();
        first.attach(&a);
        let second = slots.take(2).unwrap();
        second.attach(&b);
        assert!(slots.take(3).is_none());
        assert_eq!(slots.count(), 2);
        drop(first);
        assert!(slots.wait_freed(1, Duration::ZERO));
        assert!(!slots.wait_freed(2, Duration::ZERO));
        let third = slots.take(3).unwrap();
        third.attach(&c);
        let ids: Vec<ConnId> = slots.connections().iter().map(|p| p.id).collect();
        assert_eq!(ids, [2, 3]);
        drop(third);
    }

    #[test]
    fn lingering_frees_the_slot_up_to_the_number_of_lingering_places() {
        let slots = Slots::new(1);
        let places: Vec<Lingering> = (0..MIN_LINGER_PLACES as ConnId)
            .map(|id| slots.take(id).unwrap().linger())
            .collect();
        assert!(places.iter().all(|p| matches!(p, Lingering::InPlace(_))));
        assert_eq!(slots.count(), 0, "a lingering connection holds no slot");
        // Every lingering place is taken: the next one keeps its slot.
        let kept = slots.take(100).unwrap().linger();
        assert!(matches!(kept, Lingering::InSlot(_)));
        assert!(slots.take(101).is_none());
        drop(kept);
        drop(places);
        let again = slots.take(101).unwrap().linger();
        assert!(matches!(again, Lingering::InPlace(_)));
        // With more slots than that, as many places as slots.
        assert_eq!(Slots::new(100).linger_places, 100);
    }
}
