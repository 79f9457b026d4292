//! The registry of connected users: who is logged in, under which name, and
//! the connection ([`Peer`]) to reach them (PROTOCOL.md, « Noms »).
//!
//! One `Mutex<HashMap<key, User>>` shared by every session thread. The lock
//! is taken inside this module only, by each method for a few map
//! operations, and let go before the method returns: **it is never held
//! while writing to a socket, nor for work that grows with the number of
//! users or with a client's batch of lines.** If it were, one recipient
//! that stops reading, or one client pipelining `LIST`s to a thousand
//! users, would hold every other client (its `PING`, a newcomer's login,
//! an unrelated pair's messages) behind it. Instead, a sender looks the
//! recipient up, lets go of the map, and writes while holding only that
//! recipient's own write lock (see [`crate::server::peer`], which also
//! states the lock order); `LIST` copies the users out and sorts them
//! after the lock is let go.
//!
//! A name is removed in one place, [`Registry::remove`]: when its session
//! ends or leaves, when a write to it fails, or when the operator kicks it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::peer::{ConnId, Peer};
use crate::protocol::{Error, ErrorCode, name_key, shown};

/// A logged-in user, shared (`Arc`) by the registry and by whoever is
/// delivering to it or listing it at the moment.
#[derive(Debug)]
pub(crate) struct User {
    /// The name as it was registered (shown by LIST, RECEIVE and `OK`).
    pub(crate) name: String,
    /// Its registry key, [`name_key`] of the name: computed once.
    pub(crate) key: String,
    /// The connection that registered it.
    pub(crate) peer: Arc<Peer>,
}

/// One entry of the map.
#[derive(Debug)]
struct Entry {
    user: Arc<User>,
    /// False from `CONNECT` until its `OK CONNECT` is being written: the
    /// name is taken, but other users cannot see it or send to it yet, so
    /// that no `RECEIVE` reaches the client before its `OK CONNECT`.
    visible: bool,
}

impl Entry {
    /// Whether connection `asker` may see this user: everyone once it is
    /// shown, and the user itself from its `CONNECT` on.
    fn seen_by(&self, asker: ConnId) -> bool {
        self.visible || self.user.peer.id == asker
    }
}

/// The shared registry.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    users: Mutex<Users>,
}

/// What the registry lock guards.
#[derive(Debug, Default)]
struct Users {
    /// The users, by [`name_key`] of their names.
    map: HashMap<String, Entry>,
    /// The users everyone can see, sorted for `LIST`, once some `LIST` has
    /// sorted them since the last change: a thousand `LIST`s between two
    /// logins share one sort, and take the lock for a pointer's copy.
    roster: Option<Roster>,
    /// Counts the changes to who is visible, so that a roster sorted
    /// outside the lock is kept only if nothing changed meanwhile.
    changes: u64,
}

/// The visible users, sorted case-insensitively (by key).
pub(crate) type Roster = Arc<[Arc<User>]>;

impl Registry {
    /// `CONNECT`: registers `name` for `peer`, not yet visible to others
    /// (see [`Registry::show`]), and returns the new user with the number
    /// of users now registered; or `ERR NAME_TAKEN` if a user holds the
    /// same name case-insensitively.
    pub(crate) fn register(
        &self,
        name: &str,
        peer: &Arc<Peer>,
    ) -> Result<(Arc<User>, usize), Error> {
        let key = name_key(name); // computed before the lock is taken
        let mut users = self.lock();
        if let Some(holder) = users.map.get(&key) {
            return Err(Error::new(
                ErrorCode::NameTaken,
                format!("{} is already connected", holder.user.name),
            ));
        }
        let user = Arc::new(User {
            name: name.to_owned(),
            key: key.clone(),
            peer: Arc::clone(peer),
        });
        let entry = Entry {
            user: Arc::clone(&user),
            visible: false,
        };
        users.map.insert(key, entry);
        Ok((user, users.map.len()))
    }

    /// Lets other users see the name under `key` registered by connection
    /// `id` (its `OK CONNECT` is about to be written).
    pub(crate) fn show(&self, key: &str, id: ConnId) {
        let mut users = self.lock();
        if let Some(entry) = users.map.get_mut(key).filter(|e| e.user.peer.id == id) {
            entry.visible = true;
            users.changed();
        }
    }

    /// The user registered under `name`, case-insensitively, as connection
    /// `asker` sees it; or `ERR NO_SUCH_USER`.
    pub(crate) fn find(&self, name: &str, asker: ConnId) -> Result<Arc<User>, Error> {
        let key = name_key(name); // computed before the lock is taken
        let users = self.lock();
        users
            .map
            .get(&key)
            .filter(|entry| entry.seen_by(asker))
            .map(|entry| Arc::clone(&entry.user))
            .ok_or_else(|| no_such_user(name))
    }

    /// `LIST`: the users everyone can see, sorted case-insensitively for a
    /// stable order; and `unshown`, the asker's own user, if its login is
    /// not shown to the others yet (it sees itself from its `CONNECT` on).
    ///
    /// Under the lock, a pointer is copied (or, after a change, the users
    /// are); the sort runs after the lock is let go, once per change.
    pub(crate) fn list(&self, unshown: Option<&Arc<User>>) -> Roster {
        let (copied, changes) = {
            let users = self.lock();
            if let Some(roster) = &users.roster {
                return with_own(Arc::clone(roster), unshown);
            }
            let visible = users.map.values().filter(|entry| entry.visible);
            let copied: Vec<Arc<User>> = visible.map(|entry| Arc::clone(&entry.user)).collect();
            (copied, users.changes)
        };
        let mut sorted = copied;
        sorted.sort_unstable_by(|a, b| a.key.cmp(&b.key));
        let roster: Roster = sorted.into();
        let mut users = self.lock();
        if users.changes == changes {
            users.roster = Some(Arc::clone(&roster));
        }
        drop(users);
        with_own(roster, unshown)
    }

    /// Removes the name under `key` if connection `id` still holds it, and
    /// says whether it did. (A writer may already have dropped that user,
    /// and a new connection may have taken the name since.)
    pub(crate) fn remove(&self, key: &str, id: ConnId) -> bool {
        let mut users = self.lock();
        let holds = users.map.get(key).is_some_and(|e| e.user.peer.id == id);
        if holds {
            users.map.remove(key);
            users.changed();
        }
        holds
    }

    /// The user who holds `name`, case-insensitively, whether or not the
    /// others can see it yet (for the console's `kick NAME`).
    pub(crate) fn holder(&self, name: &str) -> Option<Arc<User>> {
        let key = name_key(name); // computed before the lock is taken
        let users = self.lock();
        users.map.get(&key).map(|entry| Arc::clone(&entry.user))
    }

    /// The user of connection `id`, if it holds a name (for the console: a
    /// scan of the map, which only the operator waits for).
    pub(crate) fn user_of(&self, id: ConnId) -> Option<Arc<User>> {
        let users = self.lock();
        users
            .map
            .values()
            .find(|entry| entry.user.peer.id == id)
            .map(|entry| Arc::clone(&entry.user))
    }

    /// Takes the lock. A thread that panicked while holding it cannot have
    /// left the map half-updated (every change is one `insert`, `remove`
    /// or flag), so a poisoned lock is used as it is: one broken session
    /// must not take the server down.
    fn lock(&self) -> MutexGuard<'_, Users> {
        self.users.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Users {
    /// Who is visible changed: the sorted roster is stale.
    fn changed(&mut self) {
        self.changes += 1;
        self.roster = None;
    }
}

/// `roster`, with `own` in its place if it is given (a login not shown to
/// the others yet, whose own `LIST` shows it all the same).
fn with_own(roster: Roster, own: Option<&Arc<User>>) -> Roster {
    let Some(own) = own else {
        return roster;
    };
    let at = roster.partition_point(|user| user.key < own.key);
    let mut users = roster.to_vec();
    users.insert(at, Arc::clone(own));
    users.into()
}

/// `ERR NO_SUCH_USER` for `name`.
pub(crate) fn no_such_user(name: &str) -> Error {
    Error::new(
        ErrorCode::NoSuchUser,
        format!("no connected user named {}", shown(name)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::peer::testing::connected;
    use std::time::Duration;

    fn peer(id: ConnId) -> Arc<Peer> {
        connected(id, Duration::from_secs(1)).0
    }

    fn names(users: &[Arc<User>]) -> Vec<&str> {
        users.iter().map(|user| user.name.as_str()).collect()
    }

    #[test]
    fn names_are_unique_case_insensitively_and_kept_as_registered() {
        let registry = Registry::default();
        let (alice, other) = (peer(1), peer(2));
        let (user, count) = registry.register("Alice", &alice).unwrap();
        assert_eq!(
            (user.key.as_str(), user.name.as_str(), count),
            ("alice", "Alice", 1)
        );
        let taken = registry.register("ALICE", &other).unwrap_err();
        assert_eq!(taken.code, ErrorCode::NameTaken);
        assert_eq!(taken.reason, "Alice is already connected");
    }

    #[test]
    fn a_login_is_seen_by_others_only_once_shown() {
        let registry = Registry::default();
        let (alice, bob) = (peer(1), peer(2));
        let (user, _) = registry.register("Alice", &alice).unwrap();
        assert_eq!(names(&registry.list(Some(&user))), ["Alice"]);
        assert!(registry.find("alice", 1).is_ok());
        assert!(registry.list(None).is_empty());
        let hidden = registry.find("alice", 2).unwrap_err();
        assert_eq!(hidden.code, ErrorCode::NoSuchUser);
        // Taken all the same.
        let taken = registry.register("alice", &bob).unwrap_err();
        assert_eq!(taken.code, ErrorCode::NameTaken);
        registry.show(&user.key, 1);
        assert_eq!(names(&registry.list(None)), ["Alice"]);
        let found = registry.find("ALICE", 2).unwrap();
        assert_eq!(
            (found.key.as_str(), found.name.as_str(), found.peer.id),
            ("alice", "Alice", 1)
        );
    }

    #[test]
    fn list_is_sorted_case_insensitively_and_follows_every_change() {
        let registry = Registry::default();
        let mut keys = Vec::new();
        for (id, name) in [(1, "bob"), (2, "Alice"), (3, "Élodie"), (4, "carol")] {
            let (user, _) = registry.register(name, &peer(id)).unwrap();
            registry.show(&user.key, id);
            keys.push(user.key.clone());
        }
        let sorted = ["Alice", "bob", "carol", "Élodie"];
        assert_eq!(names(&registry.list(None)), sorted);
        // The second LIST shares the first one's sort...
        assert!(Arc::ptr_eq(&registry.list(None), &registry.list(None)));
        // ...until who is visible changes.
        registry.remove(&keys[0], 1);
        assert_eq!(names(&registry.list(None)), ["Alice", "carol", "Élodie"]);
        let (dave, _) = registry.register("Dave", &peer(5)).unwrap();
        assert_eq!(names(&registry.list(None)), ["Alice", "carol", "Élodie"]);
        let with_dave = ["Alice", "carol", "Dave", "Élodie"];
        assert_eq!(names(&registry.list(Some(&dave))), with_dave);
        registry.show(&dave.key, 5);
        assert_eq!(names(&registry.list(None)), with_dave);
    }

    #[test]
    fn only_the_holder_removes_a_name() {
        let registry = Registry::default();
        let (old, new) = (peer(1), peer(2));
        let (user, _) = registry.register("bob", &old).unwrap();
        assert!(registry.remove(&user.key, 1));
        assert!(!registry.remove(&user.key, 1), "removed twice");
        registry.register("Bob", &new).unwrap();
        // The old connection's late clean-up leaves the newcomer alone.
        assert!(!registry.remove(&user.key, 1));
        assert_eq!(
            registry.user_of(2).map(|u| u.name.clone()).as_deref(),
            Some("Bob")
        );
        assert!(registry.user_of(1).is_none());
    }
}
