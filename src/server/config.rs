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

/// The longest timeout the server counts: 100 years. Every timeout flag
/// accepts any number of seconds up to 18446744073709551615, and a longer
/// one than this counts as this: a deadline a century away is one nobody
/// can tell from a longer one, and every deadline stays a real instant
/// (adding `u64::MAX` seconds to the clock would overflow, and "no
/// deadline" is not what a write timeout promises).
pub const LONGEST_TIMEOUT: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);

/// How a server runs. `Config::default()` is the contract's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The address to listen on (`--bind`, default `0.0.0.0`).
    pub bind: IpAddr,
    /// The port (`--port`); 0 lets the system pick a free one.
    pub port: u16,
    /// The connection limit; at least 1.
    pub max_connections: usize,
    /// The login timeout; `None` (`--login-timeout 0`) is never. At most
    /// [`LONGEST_TIMEOUT`] counts.
    pub login_timeout: Option<Duration>,
    /// The idle timeout; `None` (`--idle-timeout 0`) is never. At most
    /// [`LONGEST_TIMEOUT`] counts.
    pub idle_timeout: Option<Duration>,
    /// The write timeout; never zero, since a zero timeout means "block
    /// forever" to the socket API. At most [`LONGEST_TIMEOUT`] counts.
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

impl Config {
    /// The same settings, with every timeout cut to [`LONGEST_TIMEOUT`]
    /// (and a zero write timeout, which the command line refuses, raised
    /// to a millisecond): what the server runs with.
    pub(crate) fn bounded(self) -> Config {
        let bound = |timeout: Duration| timeout.min(LONGEST_TIMEOUT);
        Config {
            login_timeout: self.login_timeout.map(bound),
            idle_timeout: self.idle_timeout.map(bound),
            write_timeout: bound(self.write_timeout).max(Duration::from_millis(1)),
            ..self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_are_bounded_so_that_no_deadline_overflows() {
        let huge = Duration::from_secs(u64::MAX);
        let config = Config {
            login_timeout: Some(huge),
            idle_timeout: Some(huge),
            write_timeout: huge,
            ..Config::default()
        }
        .bounded();
        assert_eq!(config.login_timeout, Some(LONGEST_TIMEOUT));
        assert_eq!(config.idle_timeout, Some(LONGEST_TIMEOUT));
        assert_eq!(config.write_timeout, LONGEST_TIMEOUT);
        assert!(
            std::time::Instant::now()
                .checked_add(LONGEST_TIMEOUT * 2)
                .is_some()
        );
        // Ordinary values are left alone.
        assert_eq!(Config::default().bounded(), Config::default());
    }
}
