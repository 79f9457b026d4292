//! The registry of connected users: who is logged in, under which name, and
//! the connection ([`Peer`]) to reach them.
//!
//! One `Mutex<HashMap<key, User>>` shared by every session thread. A session
//! takes the lock to register a name, to look recipients up, to list names
//! or to remove a name, and nothing else: **the lock is never held while
//! writing to a socket.** If it were, one recipient that stops reading
//! would hold the lock for the write timeout, and every other client (its
//! `PING`, a newcomer's login, an unrelated pair's messages) would wait
//! behind it, once per stuck recipient. Instead, a sender looks the
//! recipient up, lets go of the map, and writes while holding only that
//! recipient's own write lock (see [`crate::server::peer`], which also
//! states the lock order).
//!
//! A name is removed in one place, [`Registry::remove`]: when its session
//! ends or leaves, when a write to it fails, or when the operator kicks it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::peer::{ConnId, Peer};
use crate::protocol::{Error, ErrorCode, name_key, shown};

/// A logged-in user.
#[derive(Debug)]
pub(crate) struct User {
    /// The name as it was registered (shown by LIST, RECEIVE and `OK`).
    pub(crate) name: String,
    /// The connection that registered it.
    pub(crate) peer: Arc<Peer>,
    /// False from `CONNECT` until its `OK CONNECT` is being written: the
    /// name is taken, but other users cannot see it or send to it yet, so
    /// that no `RECEIVE` reaches the client before its `OK CONNECT`.
    visible: bool,
}

/// The users, by [`name_key`] of their names.
#[derive(Debug, Default)]
pub(crate) struct Users(HashMap<String, User>);

/// The shared registry.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    users: Mutex<Users>,
}

impl Registry {
    /// Takes the lock. A thread that panicked while holding it cannot have
    /// left the map half-updated (every change is one `insert`, `remove`
    /// or flag), so a poisoned lock is used as it is: one broken session
    /// must not take the server down.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Users> {
        self.users.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Lets other users see the name under `key` registered by connection
    /// `id` (its `OK CONNECT` is about to be written).
    pub(crate) fn show(&self, key: &str, id: ConnId) {
        if let Some(user) = self.lock().0.get_mut(key).filter(|u| u.peer.id == id) {
            user.visible = true;
        }
    }

    /// Removes the name under `key` if connection `id` still holds it, and
    /// says whether it did. (A writer may already have dropped that user,
    /// and a new connection may have taken the name since.)
    pub(crate) fn remove(&self, key: &str, id: ConnId) -> bool {
        let mut users = self.lock();
        let holds = users.0.get(key).is_some_and(|user| user.peer.id == id);
        if holds {
            users.0.remove(key);
        }
        holds
    }
}

impl Users {
    /// `CONNECT`: registers `name` for `peer`, not yet visible to others
    /// (see [`Registry::show`]), and returns its key; or `ERR NAME_TAKEN`
    /// if a user holds the same name case-insensitively.
    pub(crate) fn register(&mut self, name: &str, peer: &Arc<Peer>) -> Result<String, Error> {
        let key = name_key(name);
        if let Some(holder) = self.0.get(&key) {
            return Err(Error::new(
                ErrorCode::NameTaken,
                format!("{} is already connected", holder.name),
            ));
        }
        let user = User {
            name: name.to_owned(),
            peer: Arc::clone(peer),
            visible: false,
        };
        self.0.insert(key.clone(), user);
        Ok(key)
    }

    /// The user registered under `name`, case-insensitively, with its key,
    /// as connection `asker` sees it; or `ERR NO_SUCH_USER`.
    pub(crate) fn find(&self, name: &str, asker: ConnId) -> Result<(&str, &User), Error> {
        self.0
            .get_key_value(&name_key(name))
            .filter(|(_, user)| user.visible || user.peer.id == asker)
            .map(|(key, user)| (key.as_str(), user))
            .ok_or_else(|| no_such_user(name))
    }

    /// The registered names as connection `asker` sees them, sorted
    /// case-insensitively for a stable LIST.
    pub(crate) fn names(&self, asker: ConnId) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .0
            .values()
            .filter(|user| user.visible || user.peer.id == asker)
            .map(|user| user.name.as_str())
            .collect();
        names.sort_by_cached_key(|name| name_key(name));
        names
    }

    /// The name held by connection `id`, with its key, if it holds one.
    pub(crate) fn name_of(&self, id: ConnId) -> Option<(&str, &str)> {
        self.0
            .iter()
            .find(|(_, user)| user.peer.id == id)
            .map(|(key, user)| (key.as_str(), user.name.as_str()))
    }

    /// How many users are logged in.
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }
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

    #[test]
    fn names_are_unique_case_insensitively_and_kept_as_registered() {
        let registry = Registry::default();
        let (alice, other) = (peer(1), peer(2));
        let mut users = registry.lock();
        let key = users.register("Alice", &alice).unwrap();
        assert_eq!(key, "alice");
        let taken = users.register("ALICE", &other).unwrap_err();
        assert_eq!(taken.code, ErrorCode::NameTaken);
        assert_eq!(taken.reason, "Alice is already connected");
    }

    #[test]
    fn a_login_is_seen_by_others_only_once_shown() {
        let registry = Registry::default();
        let (alice, bob) = (peer(1), peer(2));
        let key = registry.lock().register("Alice", &alice).unwrap();
        {
            let mut users = registry.lock();
            assert_eq!(users.names(1), ["Alice"]);
            assert!(users.find("alice", 1).is_ok());
            assert!(users.names(2).is_empty());
            let hidden = users.find("alice", 2).unwrap_err();
            assert_eq!(hidden.code, ErrorCode::NoSuchUser);
            // Taken all the same.
            let taken = users.register("alice", &bob).unwrap_err();
            assert_eq!(taken.code, ErrorCode::NameTaken);
        }
        registry.show(&key, 1);
        let users = registry.lock();
        assert_eq!(users.names(2), ["Alice"]);
        let (found, user) = users.find("ALICE", 2).unwrap();
        assert_eq!(
            (found, user.name.as_str(), user.peer.id),
            ("alice", "Alice", 1)
        );
    }

    #[test]
    fn only_the_holder_removes_a_name() {
        let registry = Registry::default();
        let (old, new) = (peer(1), peer(2));
        let key = registry.lock().register("bob", &old).unwrap();
        assert!(registry.remove(&key, 1));
        assert!(!registry.remove(&key, 1), "removed twice");
        registry.lock().register("Bob", &new).unwrap();
        // The old connection's late clean-up leaves the newcomer alone.
        assert!(!registry.remove(&key, 1));
        assert_eq!(registry.lock().name_of(2), Some(("bob", "Bob")));
        assert_eq!(registry.lock().len(), 1);
    }
}
