//! Test support shared by the integration tests: a server on an ephemeral
//! port, and a client that speaks the wire with a read timeout on every read,
//! so a bug fails a test instead of hanging it.
#![allow(dead_code)] // each test file uses its own part of this module

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use minichat::{Config, Server};

pub mod devtools;
pub mod json;
pub mod stage;
#[cfg(target_os = "linux")]
pub mod terminal;

/// How long a test waits for a line it expects before failing.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// The greeting every accepted client receives first.
pub const WELCOME: &str = "OK WELCOME minichat 1: CONNECT <name> to log in, HELP for commands";

/// Runs the test functions given (paths to `fn()`) at once, each on a
/// thread of its own, and fails naming those that failed (their panics are
/// printed above). For tests that mostly wait (for a timeout, a browser, a
/// reply that never comes): the test harness runs as many tests at once as
/// there are cores, so on 2 cores these would wait one after another.
#[allow(unused_macros)] // not every test file has tests that wait
macro_rules! side_by_side {
    ($($test:path),+ $(,)?) => {
        $crate::common::run_side_by_side(&[$((stringify!($test), $test as fn())),+])
    };
}
#[allow(unused_imports)]
pub(crate) use side_by_side;

/// What [`side_by_side!`] runs.
pub fn run_side_by_side(tests: &[(&str, fn())]) {
    let failed: Vec<&str> = thread::scope(|scope| {
        let running: Vec<_> = tests
            .iter()
            .map(|(name, test)| (*name, scope.spawn(*test)))
            .collect();
        running
            .into_iter()
            .filter_map(|(name, test)| test.join().is_err().then_some(name))
            .collect()
    });
    assert!(
        failed.is_empty(),
        "failed (see their panics above): {failed:?}"
    );
}

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
    // The log goes nowhere: the tests check the wire, and the log's own
    // guarantees are tested on the real binary.
    let server = Server::bind_with_log(config, io::sink()).expect("bind a test server");
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

    /// Checks that the connection ends cleanly: the end of stream, with no
    /// more lines, and no reset (a reset destroys lines not yet read).
    pub fn expect_clean_end(&mut self) {
        let mut rest = Vec::new();
        match self.reader.read_to_end(&mut rest) {
            Ok(_) => assert!(
                rest.is_empty(),
                "unexpected bytes before the end: {:?}",
                String::from_utf8_lossy(&rest)
            ),
            Err(e) => panic!("no clean end of stream within {READ_TIMEOUT:?}: {e}"),
        }
    }

    /// Sends `PING` and waits for `OK PING`: everything sent before has been
    /// handled, and everything the server wrote before is read.
    pub fn sync(&mut self) {
        self.send("PING");
        self.expect("OK PING");
    }

    /// Floods `target`, which does not read, with pipelined 100-character
    /// messages until the replies stop: the server is then blocked writing
    /// to `target`, whose socket is full. Returns how many messages got
    /// `OK SEND` so far, and how many replies are still owed (once
    /// `target` is dropped or reads again, `OK SEND` for the lines its
    /// socket took whole, `ERR NO_SUCH_USER` for the others).
    pub fn fill_until_blocked(&mut self, target: &str) -> (usize, usize) {
        const CHUNK: usize = 100;
        let batch = format!("SEND {target} {}\n", "z".repeat(100)).repeat(CHUNK);
        let ok = format!("OK SEND {target}\r\n");
        self.reader
            .get_ref()
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let started = Instant::now();
        let (mut acknowledged, mut owed) = (0, 0);
        'filling: loop {
            assert!(started.elapsed() < Duration::from_secs(30), "never filled");
            self.send_raw(batch.as_bytes());
            owed += CHUNK;
            while owed > 0 {
                let mut line = String::new();
                match self.reader.read_line(&mut line) {
                    Ok(_) if line == ok => (acknowledged, owed) = (acknowledged + 1, owed - 1),
                    Ok(_) => panic!("unexpected {line:?}"),
                    Err(_) => break 'filling, // slow: a write to the target is under way
                }
            }
        }
        self.reader
            .get_ref()
            .set_read_timeout(Some(READ_TIMEOUT))
            .unwrap();
        (acknowledged, owed)
    }

    /// Reads `owed` replies to messages for `target`: first `OK SEND` for
    /// those written whole, then `ERR NO_SUCH_USER` for the others (never
    /// the other way round). Returns how many were written.
    pub fn read_owed_replies(&mut self, target: &str, owed: usize) -> usize {
        let ok = format!("OK SEND {target}");
        let mut written = 0;
        for i in 0..owed {
            let line = self.line();
            if line == ok {
                assert_eq!(written, i, "an OK SEND after a retracted line");
                written += 1;
            } else {
                assert!(line.starts_with("ERR NO_SUCH_USER "), "unexpected {line:?}");
            }
        }
        written
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

/// Logs in `count` users named `<prefix>` and a number, zero-padded to
/// 16 characters (the longest names, so that `LIST` replies are as long
/// as they can be). Connects them in waves under the listen backlog,
/// each sending its `CONNECT` without waiting for the greeting, and
/// returns their connections once every one has read `OK CONNECT`.
pub fn log_in_many(address: SocketAddr, prefix: &str, count: usize) -> Vec<Client> {
    const WAVE: usize = 100;
    let width = 16 - prefix.len();
    let mut users = Vec::with_capacity(count);
    for wave in (0..count).step_by(WAVE) {
        let mut opened: Vec<(Client, String)> = (wave..count.min(wave + WAVE))
            .map(|i| {
                let name = format!("{prefix}{i:0width$}");
                let mut client = Client::connect_raw(address);
                client.send(&format!("CONNECT {name}"));
                (client, name)
            })
            .collect();
        for (client, name) in &mut opened {
            client.expect(WELCOME);
            client.expect(&format!("OK CONNECT {name}"));
        }
        users.extend(opened.into_iter().map(|(client, _)| client));
    }
    users
}

/// Sets SO_LINGER to 0 so that dropping `stream` resets the connection
/// (RST) instead of closing it (FIN). Linux only; std has no API for it.
#[cfg(target_os = "linux")]
pub fn reset_on_drop(stream: &TcpStream) {
    #[repr(C)]
    struct Linger {
        l_onoff: i32,
        l_linger: i32,
    }
    const SO_LINGER: i32 = 13;
    let linger = Linger {
        l_onoff: 1,
        l_linger: 0,
    };
    set_socket_option(stream, SO_LINGER, &linger);
}

/// Shrinks the receive buffer (SO_RCVBUF) of `stream`, so that a client
/// that stops reading closes its TCP window for good after a few KiB: the
/// kernel cannot make room by compacting a large buffer. Linux only.
#[cfg(target_os = "linux")]
pub fn shrink_receive_buffer(stream: &TcpStream, bytes: i32) {
    const SO_RCVBUF: i32 = 8;
    set_socket_option(stream, SO_RCVBUF, &bytes);
}

/// `setsockopt(fd, SOL_SOCKET, name, value)`, which std does not offer.
#[cfg(target_os = "linux")]
fn set_socket_option<T>(stream: &TcpStream, name: i32, value: &T) {
    use std::os::fd::AsRawFd;
    unsafe extern "C" {
        fn setsockopt(fd: i32, level: i32, name: i32, value: *const u8, len: u32) -> i32;
    }
    const SOL_SOCKET: i32 = 1;
    // SAFETY: a valid socket descriptor, and a pointer to a live value of
    // the size given.
    let result = unsafe {
        setsockopt(
            stream.as_raw_fd(),
            SOL_SOCKET,
            name,
            (value as *const T).cast(),
            std::mem::size_of::<T>() as u32,
        )
    };
    assert_eq!(result, 0, "setsockopt({name})");
}

// ---------------------------------------------------------------------------
// Support for the adversarial suite (tests/adversarial_*.rs).
// ---------------------------------------------------------------------------

/// A small seeded PRNG (SplitMix64): the tests may use no crate, and a seed
/// printed on failure makes any run reproducible.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The seed to use: `MINICHAT_SEED` if set (to replay a failure), else
    /// one drawn from the clock, so each run explores new inputs.
    pub fn seed_from_env() -> u64 {
        match std::env::var("MINICHAT_SEED") {
            Ok(seed) => seed.parse().expect("MINICHAT_SEED is a u64"),
            Err(_) => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |t| t.as_nanos() as u64),
        }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// A number in `range`.
    pub fn within(&mut self, range: std::ops::RangeInclusive<usize>) -> usize {
        range.start() + self.below(range.end() - range.start() + 1)
    }

    /// True with probability `1 / n`.
    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Two well-behaved clients that keep exchanging messages while an attack
/// runs, and measure the worst round trip they see.
pub struct Pair {
    a: Client,
    b: Client,
    a_name: String,
    b_name: String,
    /// How many round trips were made.
    pub exchanges: u64,
    /// The longest round trip seen (a to b, then b to a).
    pub worst: Duration,
}

impl Pair {
    /// Logs in two clients named `<prefix>a` and `<prefix>b`.
    pub fn login(address: SocketAddr, prefix: &str) -> Pair {
        let a_name = format!("{prefix}a");
        let b_name = format!("{prefix}b");
        Pair {
            a: Client::login(address, &a_name),
            b: Client::login(address, &b_name),
            a_name,
            b_name,
            exchanges: 0,
            worst: Duration::ZERO,
        }
    }

    /// One round trip: a message from a to b, and one back; checks every
    /// line exactly and returns how long it took.
    pub fn exchange(&mut self) -> Duration {
        let n = self.exchanges;
        let started = Instant::now();
        let (a, b) = (&self.a_name, &self.b_name);
        self.a.send(&format!("SEND {b} hello {n} from {a}"));
        self.b.expect(&format!("RECEIVE {a} hello {n} from {a}"));
        self.a.expect(&format!("OK SEND {b}"));
        self.b.send(&format!("SEND {a} reply {n} from {b}"));
        self.a.expect(&format!("RECEIVE {b} reply {n} from {b}"));
        self.b.expect(&format!("OK SEND {a}"));
        let took = started.elapsed();
        self.exchanges += 1;
        self.worst = self.worst.max(took);
        took
    }

    /// Keeps exchanging until `attack` has finished (at most `limit`), then
    /// joins it and returns its result. The pair paces itself (a few
    /// milliseconds between round trips) to leave the two cores to the
    /// attack and the server: this is pacing, not synchronisation.
    pub fn talk_while<T>(&mut self, attack: thread::JoinHandle<T>, limit: Duration) -> T {
        let started = Instant::now();
        while !attack.is_finished() {
            assert!(
                started.elapsed() < limit,
                "the attack did not end within {limit:?}"
            );
            self.exchange();
            thread::sleep(Duration::from_millis(5));
        }
        match attack.join() {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }

    /// Reads the next line of the pair's first client and checks it.
    pub fn expect_on_a(&mut self, expected: &str) {
        self.a.expect(expected);
    }

    /// Reads the next line of the pair's second client and checks it.
    pub fn expect_on_b(&mut self, expected: &str) {
        self.b.expect(expected);
    }

    /// Syncs the second client: nothing unexpected reached it before.
    pub fn b_sync(&mut self) {
        self.b.sync();
    }

    /// A few round trips after the attack: the pair still talks.
    pub fn still_talking(&mut self) {
        for _ in 0..3 {
            self.exchange();
        }
    }
}

/// The real `minichat` binary, run as a child process so that the test can
/// read its memory and thread count in /proc. Killed when dropped.
pub struct ServerProcess {
    pub addr: SocketAddr,
    pub pid: u32,
    child: std::process::Child,
}

/// Starts `minichat --bind 127.0.0.1 --port 0 <args>`, learns its port from
/// the first line on stderr, and keeps draining stderr in a thread (so the
/// server never blocks on a full pipe).
pub fn spawn_binary(args: &[&str]) -> ServerProcess {
    let (server, mut stderr) = spawn_binary_with_stderr(args);
    thread::spawn(move || io::copy(&mut stderr, &mut io::sink()));
    server
}

/// Starts `minichat --bind 127.0.0.1 --port 0 <args>` with its stdin closed,
/// learns its port from the first line on stderr, and hands the rest of
/// stderr to the caller (who may read it, leave it unread, or close it).
pub fn spawn_binary_with_stderr(
    args: &[&str],
) -> (ServerProcess, BufReader<std::process::ChildStderr>) {
    use std::process::Stdio;
    let (child, addr, stderr) = start_binary(args, Stdio::null(), Stdio::null());
    let server = ServerProcess {
        addr,
        pid: child.id(),
        child,
    };
    (server, stderr)
}

/// Starts `minichat --bind 127.0.0.1 --port 0 <args>` with the given stdin
/// and stdout, and stderr piped; reads the first stderr line, which must be
/// the contract's, and returns the child, the address it gives, and the
/// rest of stderr.
pub fn start_binary(
    args: &[&str],
    stdin: std::process::Stdio,
    stdout: std::process::Stdio,
) -> (
    std::process::Child,
    SocketAddr,
    BufReader<std::process::ChildStderr>,
) {
    use assert_cmd::cargo::CommandCargoExt;
    use std::process::{Command, Stdio};
    let mut child = Command::cargo_bin("minichat")
        .expect("the minichat binary")
        .args(["--bind", "127.0.0.1", "--port", "0"])
        .args(args)
        .stdin(stdin)
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .expect("start minichat");
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut first = String::new();
    stderr
        .read_line(&mut first)
        .expect("read minichat's stderr");
    let addr = first
        .strip_prefix("minichat: listening on ")
        .and_then(|rest| rest.split(' ').next())
        .and_then(|addr| addr.parse().ok());
    let Some(addr) = addr else {
        // Not left running after the test.
        let _ = child.kill();
        let _ = child.wait();
        panic!("unexpected first line on stderr: {first:?}");
    };
    (child, addr, stderr)
}

impl ServerProcess {
    /// A number from /proc/PID/status, such as `VmRSS` (in kB) or `Threads`.
    pub fn status(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))
            .expect("read /proc/PID/status");
        status
            .lines()
            .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|value| value.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("no {field} in /proc/{}/status", self.pid))
    }

    /// Checks that the process is still running (it did not crash).
    pub fn assert_alive(&mut self) {
        assert!(
            self.child.try_wait().unwrap().is_none(),
            "the server process died"
        );
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `check` until it returns true, for at most `limit`; returns
/// whether it did. For states the server reaches asynchronously (a thread
/// that ends after a reset): each probe is checked, nothing is assumed.
pub fn poll_until(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(10)); // a poll interval
    }
}

/// Starts `minichat connect <address> <flags>` with `stdin` as its
/// standard input, and its stdout and stderr piped.
pub fn spawn_connect(
    address: SocketAddr,
    flags: &[&str],
    stdin: std::process::Stdio,
) -> std::process::Child {
    use assert_cmd::cargo::CommandCargoExt;
    use std::process::{Command, Stdio};
    Command::cargo_bin("minichat")
        .expect("the minichat binary")
        .arg("connect")
        .arg(address.to_string())
        .args(flags)
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start minichat connect")
}

/// Waits for `child` to exit, for at most `limit` (past it, kills it and
/// fails the test); returns its exit code, stdout and stderr (which must
/// be pipes).
pub fn finish_within(
    mut child: std::process::Child,
    limit: Duration,
) -> (Option<i32>, String, String) {
    if !poll_until(limit, || matches!(child.try_wait(), Ok(Some(_)))) {
        let _ = child.kill();
        let _ = child.wait();
        panic!("the process did not end within {limit:?}");
    }
    let output = child.wait_with_output().expect("the output of the process");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}
