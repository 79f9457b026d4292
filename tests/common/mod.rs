//! Test support shared by the integration tests: a server on an ephemeral
//! port, and a client that speaks the wire with a read timeout on every read,
//! so a bug fails a test instead of hanging it.
#![allow(dead_code)] // each test file uses its own part of this module

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use minichat::{Config, Server};

/// How long a test waits for a line it expects before failing.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// The greeting every accepted client receives first.
pub const WELCOME: &str = "OK WELCOME minichat 1: CONNECT <name> to log in, HELP for commands";

/// A config for tests: loopback, any free port, the contract's defaults.
pub fn config() -> Config {
    Config {
        bind: [127, 0, 0, 1].into(),
        port: 0,
        ..Config::default()
    }
}

/// Starts a server with `config` on a thread of its own; returns its address.
pub fn start(config: Config) -> SocketAddr {
    let server = Server::bind(config).expect("bind a test server");
    let address = server.local_addr().expect("local address");
    thread::spawn(move || server.run());
    address
}

/// Starts a server with the defaults.
pub fn start_default() -> SocketAddr {
    start(config())
}

/// One client connection, read line by line.
pub struct Client {
    pub reader: BufReader<TcpStream>,
    pub writer: TcpStream,
}

impl Client {
    /// Connects, without reading the greeting.
    pub fn connect_raw(address: SocketAddr) -> Client {
        let stream = TcpStream::connect(address).expect("connect");
        stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(READ_TIMEOUT)).unwrap();
        stream.set_nodelay(true).unwrap();
        let writer = stream.try_clone().unwrap();
        Client {
            reader: BufReader::new(stream),
            writer,
        }
    }

    /// Connects and checks the greeting.
    pub fn connect(address: SocketAddr) -> Client {
        let mut client = Client::connect_raw(address);
        client.expect(WELCOME);
        client
    }

    /// Connects, checks the greeting, and logs in as `name`.
    pub fn login(address: SocketAddr, name: &str) -> Client {
        let mut client = Client::connect(address);
        client.send(&format!("CONNECT {name}"));
        client.expect(&format!("OK CONNECT {name}"));
        client
    }

    /// Sends `line` with an LF.
    pub fn send(&mut self, line: &str) {
        self.send_raw(format!("{line}\n").as_bytes());
    }

    /// Sends bytes as they are.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).expect("write to the server");
    }

    /// Reads one line, checks that it ends with CRLF, and returns it without.
    pub fn line(&mut self) -> String {
        let mut bytes = Vec::new();
        match self.reader.read_until(b'\n', &mut bytes) {
            Ok(0) => panic!("the server closed the connection; expected a line"),
            Ok(_) => {}
            Err(e) => panic!("no line from the server within {READ_TIMEOUT:?}: {e}"),
        }
        let line = String::from_utf8(bytes).expect("the server sent UTF-8");
        line.strip_suffix("\r\n")
            .unwrap_or_else(|| panic!("line not ended by CRLF: {line:?}"))
            .to_owned()
    }

    /// Reads one line and checks it is exactly `expected`.
    pub fn expect(&mut self, expected: &str) {
        assert_eq!(self.line(), expected);
    }

    /// Reads one line and checks it starts with `prefix` (an error code, say).
    pub fn expect_prefix(&mut self, prefix: &str) -> String {
        let line = self.line();
        assert!(
            line.starts_with(prefix),
            "expected {prefix:?}..., got {line:?}"
        );
        line
    }

    /// Sends `line` and checks the reply starts with `prefix`.
    pub fn ask(&mut self, line: &str, prefix: &str) -> String {
        self.send(line);
        self.expect_prefix(prefix)
    }

    /// Checks that the server closes the connection, with no more lines.
    pub fn expect_closed(&mut self) {
        let mut rest = Vec::new();
        match self.reader.read_to_end(&mut rest) {
            Ok(_) => assert!(
                rest.is_empty(),
                "unexpected bytes before close: {:?}",
                String::from_utf8_lossy(&rest)
            ),
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {}
            Err(e) => {
                panic!("the server did not close the connection within {READ_TIMEOUT:?}: {e}")
            }
        }
    }

    /// Sends `PING` and waits for `OK PING`: everything sent before has been
    /// handled, and everything the server wrote before is read.
    pub fn sync(&mut self) {
        self.send("PING");
        self.expect("OK PING");
    }

    /// Leaves cleanly: shuts down writing, then waits for the server to
    /// close. Once this returns, the server has released the slot and name.
    pub fn hang_up(mut self) {
        self.writer.shutdown(Shutdown::Write).unwrap();
        self.expect_closed();
    }
}

/// Retries `connect` until the server greets instead of refusing, for at
/// most `READ_TIMEOUT`: the server frees a slot when *it* sees a close,
/// which a client that reset its connection cannot wait for.
pub fn connect_when_free(address: SocketAddr) -> Client {
    let deadline = Instant::now() + READ_TIMEOUT;
    loop {
        let mut client = Client::connect_raw(address);
        let line = client.line();
        if line == WELCOME {
            return client;
        }
        assert!(
            line.starts_with("ERR FULL "),
            "unexpected greeting {line:?}"
        );
        assert!(
            Instant::now() < deadline,
            "no slot was freed within {READ_TIMEOUT:?}"
        );
        thread::yield_now();
    }
}

/// Sets SO_LINGER to 0 so that dropping `stream` resets the connection
/// (RST) instead of closing it (FIN). Linux only; std has no API for it.
#[cfg(target_os = "linux")]
pub fn reset_on_drop(stream: &TcpStream) {
    use std::os::fd::AsRawFd;
    #[repr(C)]
    struct Linger {
        l_onoff: i32,
        l_linger: i32,
    }
    unsafe extern "C" {
        fn setsockopt(fd: i32, level: i32, name: i32, value: *const Linger, len: u32) -> i32;
    }
    const SOL_SOCKET: i32 = 1;
    const SO_LINGER: i32 = 13;
    let linger = Linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket descriptor and a pointer to a live struct of the
    // size given.
    let result = unsafe {
        setsockopt(
            stream.as_raw_fd(),
            SOL_SOCKET,
            SO_LINGER,
            &linger,
            std::mem::size_of::<Linger>() as u32,
        )
    };
    assert_eq!(result, 0, "setsockopt(SO_LINGER)");
}
