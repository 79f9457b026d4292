//! `cargo bench`: minichat's relay measured against a bare line forwarder.
//!
//! The baseline is the least a relay can do: a two-hop forwarder written
//! here, with one thread per side that reads a line from one socket and
//! writes it to the other (TCP_NODELAY, no protocol work, no reply). The
//! same client code drives both, with 100-character messages:
//!
//! 1. latency: A sends, the clock stops when B has read the line; 20 000
//!    sequential messages after a warm-up (for minichat, A reads its
//!    `OK SEND` after the clock stopped); p50, p99, p99.9 in µs.
//! 2. throughput: 2 sender/receiver pairs, each sender pipelining 50 000
//!    messages; messages per second until every receiver has all its lines.
//! 3. scale: 1 000 idle connections open, then the latency run again.
//! 4. memory: resident memory of the server *process* (the release binary,
//!    and the forwarder in a process of its own) with 5 and 1 000 clients.
//! 5. the live view: latency and throughput of minichat with `--watch` and
//!    no viewer, and with one viewer reading the event stream, against
//!    `--watch` off; rounds interleaved, medians and spreads
//!    (`MINICHAT_BENCH_SECTION=watch cargo bench` runs this part alone).
//!
//! The in-process servers log every connection on stderr, so the bench runs
//! itself as a child and keeps only the lines that are not server events.
//! It prints a table, then one line of `key=value` figures.
//!
//! The targets are checked with client and server on one core:
//! `taskset -c 0 cargo bench`.

use std::env;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use minichat::{Config, Server};

const TEXT_CHARS: usize = 100;
const WARM_UP: usize = 2_000;
const LATENCY_MESSAGES: usize = 20_000;
const PAIRS: usize = 2;
const THROUGHPUT_MESSAGES: usize = 50_000;
const IDLE: usize = 1_000;
/// Connections opened at once (even, for the baseline's pairs; under the
/// listen backlog of 128, see [`open_idle`]).
const OPEN_WAVE: usize = 100;
const SCALE_MAX_CONNECTIONS: usize = 1_100;
/// The forwarder's threads get a small stack too, like minichat's sessions.
const FORWARDER_STACK_BYTES: usize = 64 * 1024;
/// Set in the child that runs the measurements ("run"), or that is the
/// baseline forwarder process of the memory figure ("forwarder").
const ROLE: &str = "MINICHAT_BENCH_ROLE";

fn main() {
    match env::var(ROLE).as_deref() {
        Ok("run") => run(),
        Ok("forwarder") => serve_forwarder_process(),
        _ => run_as_child(),
    }
}

/// Runs the bench in a child whose stderr is filtered: server event lines
/// (they start with a timestamp, `2026-...`) are counted, not shown.
fn run_as_child() {
    let mut child = Command::new(env::current_exe().unwrap())
        .env(ROLE, "run")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let mut events = 0;
    for line in stderr.lines() {
        let line = line.unwrap();
        if line.starts_with("20") || line.starts_with("minichat: ") {
            events += 1;
        } else {
            eprintln!("{line}");
        }
    }
    let status = child.wait().unwrap();
    eprintln!("({events} server log lines hidden)");
    std::process::exit(status.code().unwrap_or(1));
}

// ---------------------------------------------------------------- clients

/// One client connection, read line by line.
struct Peer {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    line: Vec<u8>,
}

impl Peer {
    fn connect(address: SocketAddr) -> Peer {
        let stream = TcpStream::connect(address).unwrap();
        stream.set_nodelay(true).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        Peer {
            writer: stream.try_clone().unwrap(),
            reader: BufReader::with_capacity(64 * 1024, stream),
            line: Vec::new(),
        }
    }

    /// Connects to minichat and logs in, without waiting for the replies.
    fn start_login(address: SocketAddr, name: &str) -> Peer {
        let mut peer = Peer::connect(address);
        peer.send(format!("CONNECT {name}\n").as_bytes());
        peer
    }

    /// Reads the greeting and `OK CONNECT` that follow [`start_login`].
    fn finish_login(&mut self) {
        assert!(self.read_line().starts_with(b"OK WELCOME "));
        assert!(self.read_line().starts_with(b"OK CONNECT "));
    }

    fn login(address: SocketAddr, name: &str) -> Peer {
        let mut peer = Peer::start_login(address, name);
        peer.finish_login();
        peer
    }

    fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).unwrap();
    }

    fn read_line(&mut self) -> &[u8] {
        self.line.clear();
        let n = self.reader.read_until(b'\n', &mut self.line).unwrap();
        assert!(n > 0, "connection closed");
        &self.line
    }
}

/// The line A sends: a `SEND` of a 100-character text. The forwarder relays
/// it as it is; minichat turns it into `RECEIVE <from> <text>`.
fn message_line(to: &str) -> Vec<u8> {
    let text: String = (0..TEXT_CHARS)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    format!("SEND {to} {text}\n").into_bytes()
}

/// Reads from `stream` until `lines` LFs have arrived.
fn count_lines(mut stream: TcpStream, lines: usize) {
    let mut buf = vec![0; 64 * 1024];
    let mut seen = 0;
    while seen < lines {
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "connection closed after {seen} of {lines} lines");
        seen += buf[..n].iter().filter(|&&b| b == b'\n').count();
    }
}

// ---------------------------------------------------------------- servers

/// The baseline: accepts connections two by two (A, then B) and forwards
/// each line in both directions, one thread per side.
fn start_forwarder() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    thread::spawn(move || forward_pairs(listener));
    address
}

fn forward_pairs(listener: TcpListener) {
    loop {
        let (a, _) = listener.accept().unwrap();
        let (b, _) = listener.accept().unwrap();
        for (from, to) in [(a.try_clone().unwrap(), b.try_clone().unwrap()), (b, a)] {
            thread::Builder::new()
                .stack_size(FORWARDER_STACK_BYTES)
                .spawn(move || forward(from, to))
                .unwrap();
        }
    }
}

fn forward(from: TcpStream, mut to: TcpStream) {
    from.set_nodelay(true).unwrap();
    let mut reader = BufReader::new(from);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if to.write_all(&line).is_err() {
            return;
        }
    }
}

/// The forwarder as a process of its own, for its memory figure: prints its
/// address on stdout, then forwards until killed.
fn serve_forwarder_process() {
    let address = start_forwarder();
    println!("{address}");
    loop {
        thread::park();
    }
}

/// A minichat server on its own thread, as the binary runs it.
fn start_minichat(max_connections: usize) -> SocketAddr {
    let config = Config {
        bind: [127, 0, 0, 1].into(),
        port: 0,
        max_connections,
        ..Config::default()
    };
    let server = Server::bind(config).unwrap();
    let address = server.local_addr().unwrap();
    thread::spawn(move || server.run());
    address
}

/// Who relays: the two are driven the same way, except for minichat's
/// login and `OK SEND` replies.
#[derive(Clone, Copy, PartialEq)]
enum Relay {
    Baseline,
    Minichat,
}

/// Connects a sender and a receiver (the receiver is called `name`).
fn pair(relay: Relay, address: SocketAddr, name: &str) -> (Peer, Peer) {
    match relay {
        Relay::Baseline => (Peer::connect(address), Peer::connect(address)),
        Relay::Minichat => (
            Peer::login(address, &format!("{name}-from")),
            Peer::login(address, name),
        ),
    }
}

// ---------------------------------------------------------------- figures

/// p50, p99 and p99.9, in µs.
#[derive(Clone, Copy)]
struct Latency([f64; 3]);

fn latency(relay: Relay, address: SocketAddr, name: &str) -> Latency {
    let (mut a, mut b) = pair(relay, address, name);
    let message = message_line(name);
    let mut samples = Vec::with_capacity(LATENCY_MESSAGES);
    for i in 0..WARM_UP + LATENCY_MESSAGES {
        let start = Instant::now();
        a.send(&message);
        let received = b.read_line().len();
        let elapsed = start.elapsed();
        if relay == Relay::Minichat {
            assert!(a.read_line().starts_with(b"OK SEND "));
        }
        assert!(received > TEXT_CHARS);
        if i >= WARM_UP {
            samples.push(elapsed);
        }
    }
    samples.sort();
    let at = |q: f64| {
        let rank = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
        samples[rank - 1].as_secs_f64() * 1e6
    };
    Latency([at(0.50), at(0.99), at(0.999)])
}

/// Messages per second through `PAIRS` pairs, each sender pipelining.
fn throughput(relay: Relay, address: SocketAddr) -> f64 {
    let start = Arc::new(Barrier::new(PAIRS + 1));
    let mut senders = Vec::new();
    let mut receivers = Vec::new();
    let mut drains = Vec::new();
    for p in 0..PAIRS {
        let name = format!("t{p}");
        let (a, b) = pair(relay, address, &name);
        receivers.push(thread::spawn(move || {
            count_lines(b.writer, THROUGHPUT_MESSAGES)
        }));
        if relay == Relay::Minichat {
            let acks = a.writer.try_clone().unwrap();
            drains.push(thread::spawn(move || {
                count_lines(acks, THROUGHPUT_MESSAGES)
            }));
        }
        let start = Arc::clone(&start);
        let message = message_line(&name);
        senders.push(thread::spawn(move || {
            let mut out = BufWriter::with_capacity(64 * 1024, a.writer);
            start.wait();
            for _ in 0..THROUGHPUT_MESSAGES {
                out.write_all(&message).unwrap();
            }
            out.flush().unwrap();
        }));
    }
    start.wait();
    let began = Instant::now();
    for receiver in receivers {
        receiver.join().unwrap();
    }
    let elapsed = began.elapsed();
    for thread in senders.into_iter().chain(drains) {
        thread.join().unwrap();
    }
    (PAIRS * THROUGHPUT_MESSAGES) as f64 / elapsed.as_secs_f64()
}

/// Opens `count` more connections (logged in, for minichat) after `already`
/// ones, returns them and how long opening took: until the last
/// `OK CONNECT` is read (minichat), or until a line went through the last
/// complete pair (baseline, which pairs connections 2k and 2k + 1).
///
/// They are opened in waves of [`OPEN_WAVE`], each wave's handshakes
/// pipelined: std's listen backlog is 128, and a burst of more connections
/// than that before the accept loop runs overflows it; the kernel then
/// drops handshakes, which the clients retry only after a second.
fn open_idle(
    relay: Relay,
    address: SocketAddr,
    already: usize,
    count: usize,
) -> (Vec<Peer>, Duration) {
    let began = Instant::now();
    let mut peers = Vec::with_capacity(count);
    while peers.len() < count {
        let wave = OPEN_WAVE.min(count - peers.len());
        peers.extend(open_wave(relay, address, already + peers.len(), wave));
    }
    (peers, began.elapsed())
}

fn open_wave(relay: Relay, address: SocketAddr, already: usize, count: usize) -> Vec<Peer> {
    let mut peers: Vec<Peer> = (0..count)
        .map(|i| match relay {
            Relay::Baseline => Peer::connect(address),
            Relay::Minichat => Peer::start_login(address, &format!("idle{}", already + i)),
        })
        .collect();
    match relay {
        Relay::Baseline => {
            let last = (already + count) / 2 * 2 - 2 - already;
            peers[last].send(b"PING\n");
            peers[last + 1].read_line();
        }
        Relay::Minichat => peers.iter_mut().for_each(Peer::finish_login),
    }
    peers
}

/// The resident memory of a process, from /proc: (VmRSS, VmHWM) in KiB.
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| -> u64 {
        let line = status.lines().find(|l| l.starts_with(name)).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Memory of the server process with 5 clients, then with `IDLE`.
struct Memory {
    five: (u64, u64),
    idle: (u64, u64),
}

/// A child process, killed when dropped (even by a panic), so that it never
/// outlives the bench holding its stderr open.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn memory(relay: Relay) -> Memory {
    let (child, address) = match relay {
        Relay::Minichat => spawn_minichat_binary(),
        Relay::Baseline => spawn_forwarder_process(),
    };
    let (mut peers, _) = open_idle(relay, address, 0, 5);
    let child = Killed(child);
    let five = memory_kib(child.0.id());
    let (more, _) = open_idle(relay, address, 5, IDLE - 5);
    peers.extend(more);
    let idle = memory_kib(child.0.id());
    Memory { five, idle }
}

/// Starts target/release/minichat (built by cargo for this bench), reads
/// its address from its first stderr line, and drains the rest.
fn spawn_minichat_binary() -> (Child, SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_minichat"))
        .args(["--bind", "127.0.0.1", "--port", "0", "--max-connections"])
        .arg(SCALE_MAX_CONNECTIONS.to_string())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut first = String::new();
    stderr.read_line(&mut first).unwrap();
    // "minichat: listening on 127.0.0.1:PORT (max N connections)"
    let address = first.split_whitespace().nth(3).unwrap().parse().unwrap();
    thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    (child, address)
}

fn spawn_forwarder_process() -> (Child, SocketAddr) {
    let mut child = Command::new(env::current_exe().unwrap())
        .env(ROLE, "forwarder")
        .stdout(Stdio::piped())
        // Not the bench's stderr: a pipe the parent drains to its end.
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    (child, first.trim().parse().unwrap())
}

// ---------------------------------------------------------------- stress

/// How many users the stress figures log in, and how many of them attack.
const STRESS_USERS: usize = 1_000;
const CONVOY_FLOODERS: usize = 80;
const MEMORY_FLOODERS: usize = 100;
/// How long the pair and the newcomers are timed while the flooders work
/// (the flooders are dropped after the write timeout, 2 s).
const CONVOY_WATCH: Duration = Duration::from_millis(2_500);

/// Opens `count` connections one after the other, each: connect, read
/// `OK WELCOME`, send `CONNECT`, read `OK CONNECT` (what relaybench's scale
/// test does); returns them and how long it took.
fn open_one_by_one(address: SocketAddr, count: usize) -> (Vec<Peer>, Duration) {
    let began = Instant::now();
    let peers = (0..count)
        .map(|i| {
            let mut peer = Peer::connect(address);
            assert!(peer.read_line().starts_with(b"OK WELCOME "));
            peer.send(format!("CONNECT one{i}\n").as_bytes());
            assert!(peer.read_line().starts_with(b"OK CONNECT "));
            peer
        })
        .collect();
    (peers, began.elapsed())
}

/// The worst and median waits of an unrelated pair's round trips and of
/// newcomers' logins, while others pipeline `LIST`s and stop reading.
struct Convoy {
    round_trip_ms: [f64; 2],
    login_ms: [f64; 2],
}

/// 1 000 users; `CONVOY_FLOODERS` of them each pipeline 341 `LIST`s (one
/// 2 KiB packet) and stop reading. Meanwhile a pair exchanges messages and
/// newcomers log in, and each wait is timed.
fn list_convoy() -> Convoy {
    let (child, address) = spawn_minichat_binary();
    let _child = Killed(child);
    let (mut users, _) = open_idle(Relay::Minichat, address, 0, STRESS_USERS);
    let (mut a, mut b) = pair(Relay::Minichat, address, "convoy");
    let flood = "LIST\n".repeat(341);
    for flooder in &mut users[..CONVOY_FLOODERS] {
        flooder.send(flood.as_bytes()); // and never reads
    }
    let message = message_line("convoy");
    let (mut trips, mut logins) = (Vec::new(), Vec::new());
    let began = Instant::now();
    while began.elapsed() < CONVOY_WATCH {
        let start = Instant::now();
        a.send(&message);
        b.read_line();
        assert!(a.read_line().starts_with(b"OK SEND "));
        trips.push(start.elapsed());
        let start = Instant::now();
        let mut newcomer = Peer::login(address, &format!("new{}", logins.len()));
        logins.push(start.elapsed());
        newcomer.send(b"QUIT\n");
        thread::sleep(Duration::from_millis(5)); // pacing, as a user would
    }
    let worst_and_median = |mut waits: Vec<Duration>| {
        waits.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        [ms(waits[waits.len() - 1]), ms(waits[waits.len() / 2])]
    };
    Convoy {
        round_trip_ms: worst_and_median(trips),
        login_ms: worst_and_median(logins),
    }
}

/// 1 000 users; `MEMORY_FLOODERS` of them each send one 2 KiB packet of
/// `LIST`s and stop reading. Returns the server's resident memory before
/// and its peak after, in KiB.
fn pipelined_list_memory() -> (u64, u64) {
    let (child, address) = spawn_minichat_binary();
    let child = Killed(child);
    let (mut users, _) = open_idle(Relay::Minichat, address, 0, STRESS_USERS);
    let (before, _) = memory_kib(child.0.id());
    let flood = "LIST\n".repeat(409);
    for flooder in &mut users[..MEMORY_FLOODERS] {
        flooder.send(flood.as_bytes()); // and never reads
    }
    // Until they are dropped (the write timeout, 2 s), and a little after.
    thread::sleep(Duration::from_millis(2_500));
    let (_, peak) = memory_kib(child.0.id());
    (before, peak)
}

// ---------------------------------------------------------------- report

fn run() {
    match env::var("MINICHAT_BENCH_SECTION").as_deref() {
        Ok("watch") => return live_view_figures(),
        Ok("stress") => return stress_figures(),
        _ => {}
    }
    let began = Instant::now();
    let cores = thread::available_parallelism().map_or(0, |n| n.get());
    println!("minichat relay bench: {TEXT_CHARS}-character messages, {cores} core(s) available");

    // 1. Latency, minichat with 5 clients (A, B and 3 idle).
    let forwarder = start_forwarder();
    let base_lat = latency(Relay::Baseline, forwarder, "b");
    let small = start_minichat(5);
    let (_others, _) = open_idle(Relay::Minichat, small, 0, 3);
    let mc_lat = latency(Relay::Minichat, small, "b");

    // 2. Throughput.
    let base_tput = throughput(Relay::Baseline, start_forwarder());
    let mc_tput = throughput(Relay::Minichat, start_minichat(5));

    // 3. Scale: 1 000 idle connections, then latency.
    let forwarder = start_forwarder();
    let (idle, base_open) = open_idle(Relay::Baseline, forwarder, 0, IDLE);
    let base_lat_idle = latency(Relay::Baseline, forwarder, "b");
    drop(idle);
    let large = start_minichat(SCALE_MAX_CONNECTIONS);
    let (idle, mc_open) = open_idle(Relay::Minichat, large, 0, IDLE);
    let mc_lat_idle = latency(Relay::Minichat, large, "b");
    drop(idle);

    // 4. Memory of the server process.
    let base_mem = memory(Relay::Baseline);
    let mc_mem = memory(Relay::Minichat);

    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let mib = |kib: u64| kib as f64 / 1024.0;
    let rows: Vec<(&str, &str, f64, f64)> = vec![
        ("lat_p50_us", "latency p50 (µs)", base_lat.0[0], mc_lat.0[0]),
        ("lat_p99_us", "latency p99 (µs)", base_lat.0[1], mc_lat.0[1]),
        (
            "lat_p999_us",
            "latency p99.9 (µs)",
            base_lat.0[2],
            mc_lat.0[2],
        ),
        ("tput_msg_s", "throughput (msg/s)", base_tput, mc_tput),
        (
            "open_1000_ms",
            "open 1000 idle (ms)",
            ms(base_open),
            ms(mc_open),
        ),
        (
            "idle_lat_p50_us",
            "latency p50, 1000 idle (µs)",
            base_lat_idle.0[0],
            mc_lat_idle.0[0],
        ),
        (
            "idle_lat_p99_us",
            "latency p99, 1000 idle (µs)",
            base_lat_idle.0[1],
            mc_lat_idle.0[1],
        ),
        (
            "idle_lat_p999_us",
            "latency p99.9, 1000 idle (µs)",
            base_lat_idle.0[2],
            mc_lat_idle.0[2],
        ),
        (
            "rss_5_mib",
            "RSS, 5 clients (MiB)",
            mib(base_mem.five.0),
            mib(mc_mem.five.0),
        ),
        (
            "hwm_5_mib",
            "peak RSS, 5 clients (MiB)",
            mib(base_mem.five.1),
            mib(mc_mem.five.1),
        ),
        (
            "rss_1000_mib",
            "RSS, 1000 clients (MiB)",
            mib(base_mem.idle.0),
            mib(mc_mem.idle.0),
        ),
        (
            "hwm_1000_mib",
            "peak RSS, 1000 clients (MiB)",
            mib(base_mem.idle.1),
            mib(mc_mem.idle.1),
        ),
    ];
    println!();
    println!(
        "| {:<30} | {:>10} | {:>10} | {:>6} |",
        "figure", "baseline", "minichat", "ratio"
    );
    println!("| {:-<30} | {:->10} | {:->10} | {:->6} |", "", "", "", "");
    for (_, label, base, mc) in &rows {
        println!(
            "| {label:<30} | {base:>10.1} | {mc:>10.1} | {:>6.2} |",
            mc / base
        );
    }

    let targets = [
        (
            "latency p50 <= 1.25 x baseline",
            mc_lat.0[0] <= 1.25 * base_lat.0[0],
        ),
        (
            "latency p99 <= 1.5 x baseline",
            mc_lat.0[1] <= 1.5 * base_lat.0[1],
        ),
        ("throughput >= 0.5 x baseline", mc_tput >= 0.5 * base_tput),
        (
            "p50 with 1000 idle <= 1.2 x with 5",
            mc_lat_idle.0[0] <= 1.2 * mc_lat.0[0],
        ),
        (
            "open 1000 idle < 0.2 s",
            mc_open < Duration::from_millis(200),
        ),
        ("RSS with 1000 clients < 16 MiB", mc_mem.idle.0 < 16 * 1024),
        ("RSS with 5 clients < 3 MiB", mc_mem.five.0 < 3 * 1024),
    ];
    println!();
    for (target, met) in targets {
        println!("target {target}: {}", if met { "met" } else { "MISSED" });
    }
    println!("(run in {:.1} s)", began.elapsed().as_secs_f64());

    let mut figures = format!("cores={cores}");
    for (key, _, base, mc) in &rows {
        figures += &format!(" base_{key}={base:.1} minichat_{key}={mc:.1}");
    }
    println!("{figures}");
    println!();
    stress_figures();
    println!();
    live_view_figures();
}

/// Figures of minichat alone under attack by some of 1 000 users
/// (`MINICHAT_BENCH_SECTION=stress cargo bench` runs this part alone).
fn stress_figures() {
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let mib = |kib: u64| kib as f64 / 1024.0;
    let (one_by_one, mc_one_by_one) = open_one_by_one(start_minichat(SCALE_MAX_CONNECTIONS), IDLE);
    drop(one_by_one);
    let convoy = list_convoy();
    let (list_before, list_peak) = pipelined_list_memory();
    println!("minichat alone, 1 000 users:");
    println!(
        "  open 1000 one by one (connect, OK WELCOME, CONNECT, OK CONNECT): {:.1} ms",
        ms(mc_one_by_one)
    );
    println!(
        "  {CONVOY_FLOODERS} pipelining 341 LIST and not reading: a pair's round trip {:.2} ms at worst \
         ({:.2} ms median), a newcomer's login {:.2} ms at worst ({:.2} ms median)",
        convoy.round_trip_ms[0], convoy.round_trip_ms[1], convoy.login_ms[0], convoy.login_ms[1]
    );
    println!(
        "  {MEMORY_FLOODERS} sending 2 KiB of LIST and not reading: RSS {:.1} MiB before, peak {:.1} MiB",
        mib(list_before),
        mib(list_peak)
    );

    let targets = [
        (
            "open 1000 one by one <= 0.2 s",
            mc_one_by_one <= Duration::from_millis(200),
        ),
        (
            "LIST convoy: a pair's worst round trip < 100 ms",
            convoy.round_trip_ms[0] < 100.0,
        ),
        (
            "LIST convoy: a newcomer's worst login < 100 ms",
            convoy.login_ms[0] < 100.0,
        ),
        ("pipelined LISTs: peak RSS < 64 MiB", list_peak < 64 * 1024),
    ];
    for (target, met) in targets {
        println!("target {target}: {}", if met { "met" } else { "MISSED" });
    }
    println!(
        "stress open_one_by_one_ms={:.1} convoy_trip_max_ms={:.2} convoy_login_max_ms={:.2} \
         list_rss_before_mib={:.1} list_rss_peak_mib={:.1}",
        ms(mc_one_by_one),
        convoy.round_trip_ms[0],
        convoy.login_ms[0],
        mib(list_before),
        mib(list_peak)
    );
}

// ---------------------------------------------------------- the live view

/// Rounds of each live view figure, interleaved.
const WATCH_ROUNDS: usize = 5;

/// How the live view is set for a run.
#[derive(Clone, Copy, PartialEq)]
enum Watching {
    Off,
    NoViewer,
    OneViewer,
}

/// A minichat server with the live view off, on, or on with one viewer
/// reading its event stream as fast as it can; the viewer's thread stops
/// when the returned flag is set.
fn start_watched(watching: Watching) -> (SocketAddr, Arc<std::sync::atomic::AtomicBool>) {
    let config = Config {
        bind: [127, 0, 0, 1].into(),
        port: 0,
        watch: (watching != Watching::Off).then(|| "127.0.0.1:0".parse().unwrap()),
        ..Config::default()
    };
    let server = Server::bind(config).unwrap();
    let address = server.local_addr().unwrap();
    let watch = server.watch_addr();
    thread::spawn(move || server.run());
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    if let (Watching::OneViewer, Some(watch)) = (watching, watch) {
        let stop = Arc::clone(&stop);
        let mut viewer = TcpStream::connect(watch).unwrap();
        viewer
            .write_all(b"GET /events HTTP/1.1\r\nHost: bench\r\n\r\n")
            .unwrap();
        viewer
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut first = [0; 12];
        viewer.read_exact(&mut first).unwrap();
        assert_eq!(&first, b"HTTP/1.1 200");
        thread::spawn(move || {
            let mut buf = vec![0; 64 * 1024];
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if matches!(viewer.read(&mut buf), Ok(0)) {
                    panic!("the bench's viewer was dropped");
                }
            }
        });
    }
    (address, stop)
}

fn live_view_figures() {
    let cores = thread::available_parallelism().map_or(0, |n| n.get());
    println!("live view (--watch): {WATCH_ROUNDS} interleaved rounds, {cores} core(s) available");
    let kinds = [
        (Watching::Off, "off"),
        (Watching::NoViewer, "on, no viewer"),
        (Watching::OneViewer, "on, one viewer"),
    ];
    let mut p50 = vec![Vec::new(); kinds.len()];
    let mut p99 = vec![Vec::new(); kinds.len()];
    let mut tput = vec![Vec::new(); kinds.len()];
    for _ in 0..WATCH_ROUNDS {
        for (k, (watching, _)) in kinds.iter().enumerate() {
            let (address, stop) = start_watched(*watching);
            let lat = latency(Relay::Minichat, address, "b");
            p50[k].push(lat.0[0]);
            p99[k].push(lat.0[1]);
            tput[k].push(throughput(Relay::Minichat, address));
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }
    let median = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let spread = |v: &[f64]| {
        let (lo, hi) = v
            .iter()
            .fold((f64::MAX, f64::MIN), |(lo, hi), &x| (lo.min(x), hi.max(x)));
        format!("{lo:.0}-{hi:.0}")
    };
    println!();
    println!(
        "| {:<15} | {:>9} | {:>13} | {:>9} | {:>13} | {:>11} | {:>17} | {:>6} |",
        "--watch",
        "p50 (µs)",
        "p50 range",
        "p99 (µs)",
        "p99 range",
        "msg/s",
        "msg/s range",
        "vs off"
    );
    println!(
        "| {:-<15} | {:->9} | {:->13} | {:->9} | {:->13} | {:->11} | {:->17} | {:->6} |",
        "", "", "", "", "", "", "", ""
    );
    let off = median(&tput[0]);
    let mut figures = String::from("watch");
    for (k, (_, label)) in kinds.iter().enumerate() {
        let t = median(&tput[k]);
        println!(
            "| {label:<15} | {:>9.1} | {:>13} | {:>9.1} | {:>13} | {:>11.0} | {:>17} | {:>6.2} |",
            median(&p50[k]),
            spread(&p50[k]),
            median(&p99[k]),
            spread(&p99[k]),
            t,
            spread(&tput[k]),
            t / off
        );
        figures += &format!(
            " {}_p50_us={:.1} {}_tput_msg_s={t:.0}",
            ["off", "noviewer", "viewer"][k],
            median(&p50[k]),
            ["off", "noviewer", "viewer"][k]
        );
    }
    let met = |ok: bool| if ok { "met" } else { "MISSED" };
    println!();
    println!(
        "target throughput with one viewer >= 0.9 x off: {}",
        met(median(&tput[2]) >= 0.9 * off)
    );
    println!("{figures}");
}
