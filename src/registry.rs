//! The registry of connected users: who is logged in, under which name, and
//! the socket to reach them.
//!
//! One `Mutex<HashMap<key, User>>` shared by every connection thread. Whoever
//! holds the lock may write to any registered user's socket, and **every
//! write to a client socket in minichat happens under this lock**: that is
//! what keeps two threads from interleaving their bytes in one line
//! (`RECEIVE al` + `OK PI` + `ice hi`...). The cost of this simple rule is
//! that a recipient that stops reading holds the lock while the server tries
//! to write to it; the write timeout bounds that stall (see [`Outbox`]).
//!
//! [`Outbox`]: crate::outbox::Outbox

use std::collections::HashMap;
use std::net::TcpStream;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::protocol::{Error, ErrorCode, name_key, shown};

/// Identifies one accepted connection for its whole life, so that a session
/// can only ever remove its own entry, never a newer user's of the same name.
pub type ConnId = u64;

/// A logged-in user.
#[derive(Debug)]
pub struct User {
    /// The name as it was registered (shown by LIST, RECEIVE and `OK`).
    pub name: String,
    /// The connection that registered it.
    pub id: ConnId,
    /// That connection's socket, shared with its session, for other threads
    /// to write to.
    pub stream: Arc<TcpStream>,
}

/// The users, by [`name_key`] of their names.
#[derive(Debug, Default)]
pub struct Users(HashMap<String, User>);

/// The shared registry.
#[derive(Debug, Default)]
pub struct Registry {
    users: Mutex<Users>,
}

impl Registry {
    /// Takes the lock. A thread that panicked while holding it cannot have
    /// left the map half-updated (every change is one `insert` or `remove`),
    /// so a poisoned lock is used as it is: one broken session must not take
    /// the server down.
    pub fn lock(&self) -> MutexGuard<'_, Users> {
        self.users.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Users {
    /// `CONNECT`: registers `name` for connection `id` and returns its key,
    /// or `ERR NAME_TAKEN` if a user holds the same name case-insensitively.
    pub fn register(
        &mut self,
        name: &str,
        id: ConnId,
        stream: Arc<TcpStream>,
    ) -> Result<String, Error> {
        let key = name_key(name);
        if let Some(holder) = self.0.get(&key) {
            return Err(Error::new(
                ErrorCode::NameTaken,
                format!("{} is already connected", holder.name),
            ));
        }
        let user = User {
            name: name.to_owned(),
            id,
            stream,
        };
        self.0.insert(key.clone(), user);
        Ok(key)
    }

    /// The user registered under `name`, case-insensitively, with its key,
    /// or `ERR NO_SUCH_USER`.
    pub fn find(&self, name: &str) -> Result<(&str, &User), Error> {
        let (key, user) = self
            .0
            .get_key_value(&name_key(name))
            .ok_or_else(|| no_such_user(name))?;
        Ok((key, user))
    }

    /// The user registered under `key` (a [`name_key`]).
    pub fn get(&self, key: &str) -> Option<&User> {
        self.0.get(key)
    }

    /// True when connection `id` still holds the name under `key` (a
    /// writer may have dropped it since it registered).
    pub fn holds(&self, key: &str, id: ConnId) -> bool {
        self.0.get(key).is_some_and(|user| user.id == id)
    }

    /// Removes the name under `key` if connection `id` still holds it, and
    /// returns its user. (A writer may already have dropped that user for a
    /// write timeout, and a new connection may have taken the name since.)
    pub fn remove(&mut self, key: &str, id: ConnId) -> Option<User> {
        if !self.holds(key, id) {
            return None;
        }
        self.0.remove(key)
    }

    /// The registered names, sorted case-insensitively for a stable LIST.
    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.0.values().map(|user| user.name.as_str()).collect();
        names.sort_by_cached_key(|name| name_key(name));
        names
    }

    /// How many users are logged in.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// `ERR NO_SUCH_USER` for `name`.
pub fn no_such_user(name: &str) -> Error {
    Error::new(
        ErrorCode::NoSuchUser,
        format!("no connected user named {}", shown(name)),
    )
}
