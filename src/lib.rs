//! minichat: the reference implementation of the minichat protocol,
//! version 1 (see PROTOCOL.md, in French, and README.md).
//!
//! A blocking server, one thread per client, standard library only. Where
//! to find what:
//!
//! | concern | module |
//! | --- | --- |
//! | the wire format: commands, replies, error codes, names, texts | [`protocol`] |
//! | cutting bytes into lines of at most 512 bytes | [`line`] |
//! | who is connected, and the lock every write goes through | [`registry`] |
//! | one batch of replies and deliveries, and the write timeout | [`outbox`] |
//! | one client's session: read, execute, reply, time out | [`session`] |
//! | the accept loop and the connection limit | [`server`] |
//! | settings and their defaults | [`config`] |
//! | the command line | [`cli`] |
//! | the operator's log | [`log`] |
//! | reaching a server as a client, reading its lines in bounded memory | [`remote`] |
//! | `minichat connect`: the interactive line client | [`client`] |
//! | `minichat check`: the conformance suite, run from outside | [`check`] |
//!
//! A test or a program starts a server exactly as the binary does:
//!
//! ```no_run
//! use minichat::{Config, Server};
//!
//! let config = Config { port: 0, ..Config::default() };
//! let server = Server::bind(config)?;
//! println!("listening on {}", server.local_addr()?);
//! server.run()?; // serves for ever
//! # Ok::<(), std::io::Error>(())
//! ```

pub mod check;
pub mod cli;
pub mod client;
pub mod config;
pub mod line;
pub mod log;
pub mod outbox;
pub mod protocol;
pub mod registry;
pub mod remote;
pub mod server;
pub mod session;

pub use config::Config;
pub use server::Server;
