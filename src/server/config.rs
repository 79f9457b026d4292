//! The server's settings, with the contract's defaults. Each one is a flag
//! of `minichat serve` (see `cli.rs`).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

pub use crate::protocol::{DEFAULT_MAX_CONNECTIONS, DEFAULT_PORT};
/// A connection must complete `CONNECT` this soon after it is accepted
/// (`--login-timeout`).
pub const DEFAULT_LOGIN_TIMEOUT: Duration = Duration::from_secs(60);
/// A connection that sends no complete line for this long is closed
/// (`--idle-timeout`).
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(600);
/// A client whose socket does not take a line within this time is dropped
/// (`--write-timeout`).
pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(2);

/// How a server runs. `Config::default()` is the contract's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The address to listen on (`--bind`, default `0.0.0.0`).
    pub bind: IpAddr,
    /// The port (`--port`); 0 lets the system pick a free one.
    pub port: u16,
    /// The connection limit; at least 1.
    pub max_connections: usize,
    /// The login timeout; `None` (`--login-timeout 0`) is never.
    pub login_timeout: Option<Duration>,
    /// The idle timeout; `None` (`--idle-timeout 0`) is never.
    pub idle_timeout: Option<Duration>,
    /// The write timeout; never zero, since a zero timeout means "block
    /// forever" to the socket API.
    pub write_timeout: Duration,
    /// Log every line in and out.
    pub verbose: bool,
    /// Serve the live view on this address (`--watch`); `None`: off.
    /// It shows message texts to whoever can reach it.
    pub watch: Option<SocketAddr>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bind: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port: DEFAULT_PORT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            login_timeout: Some(DEFAULT_LOGIN_TIMEOUT),
            idle_timeout: Some(DEFAULT_IDLE_TIMEOUT),
            write_timeout: DEFAULT_WRITE_TIMEOUT,
            verbose: false,
            watch: None,
        }
    }
}
