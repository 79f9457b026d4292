//! minichat: the reference implementation of the minichat protocol,
//! version 1 (see PROTOCOL.md, in French, and README.md).
//!
//! A blocking server, one thread per client, standard library only. The
//! crate's parts, and their dependencies, which point one way:
//!
//! | part | what it holds | depends on |
//! | --- | --- | --- |
//! | [`protocol`] | the wire format: commands, replies, error codes, names, texts; pure, no I/O | nothing |
//! | [`lang`] | the tools' two languages (`--lang fr\|en`) | nothing |
//! | [`diagram`] | sequence diagrams read from the server's log: Mermaid text, and rows for the live view; pure | `lang` |
//! | `sys` | the two socket options std has no API for (buffer sizes) | nothing |
//! | [`server`] | everything the server runs: accept loop, slots, sessions, registry, write path, log, console, live view | `protocol`, `diagram`, `sys` |
//! | [`tools`] | the client tools `minichat connect`, `minichat check` and `minichat diagram` | `protocol`, `diagram`, `lang`, `sys` |
//! | [`cli`] | reading the command line of the four subcommands | `server`, `tools` |
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

pub mod cli;
pub mod diagram;
pub mod lang;
pub mod protocol;
pub mod server;
mod sys;
pub mod tools;

pub use server::{Config, Server};
