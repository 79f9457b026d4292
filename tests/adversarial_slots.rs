//! Adversarial tests, part 1: clients that try to hold connection slots
//! (squatters, slowloris, half-open sockets, resets, churn). In each, two
//! well-behaved clients keep exchanging messages during and after the attack.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::{Client, Pair, Rng, config, connect_when_free, poll_until, start};
use minichat::Config;

/// Five connections that never send a line take every free slot; the login
/// timeout closes them with `ERR TIMEOUT`, and a newcomer gets in within 2 s.
#[test]
fn squatters_are_closed_by_the_login_timeout() {
    let server = start(Config {
        max_connections: 7, // the pair, and five for the squatters
        login_timeout: Some(Duration::from_secs(1)),
        ..config()
    });
    let mut pair = Pair::login(server, "sq");
    let started = Instant::now();
    let squatters: Vec<Client> = (0..5).map(|_| Client::connect(server)).collect();
    Client::connect_raw(server).expect_prefix("ERR FULL ");
    let attack = thread::spawn(move || {
        for mut squatter in squatters {
            squatter.expect_prefix("ERR TIMEOUT ");
            squatter.expect_closed();
        }
        started.elapsed()
    });
    let closed_after = pair.talk_while(attack, Duration::from_secs(10));
    assert!(
        closed_after >= Duration::from_millis(900) && closed_after < Duration::from_secs(2),
        "squatters closed after {closed_after:?}"
    );
    let mut newcomer = connect_when_free(server);
    let got_in = started.elapsed();
    assert!(got_in < Duration::from_secs(2), "got in after {got_in:?}");
    newcomer.ask("CONNECT newcomer", "OK CONNECT newcomer");
    pair.still_talking();
}

/// A client dribbling a byte every quarter of the idle timeout, never
/// finishing a line, is closed by the idle timeout on time: the clock runs
/// per complete line.
#[test]
fn slowloris_is_closed_by_the_idle_timeout() {
    let idle = Duration::from_secs(1);
    let server = start(Config {
        idle_timeout: Some(idle),
        ..config()
    });
    let mut pair = Pair::login(server, "sl");
    let mut slow = Client::login(server, "slowloris");
    let started = Instant::now();
    let mut writer = slow.writer.try_clone().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = Arc::clone(&stop);
    let dribbler = thread::spawn(move || {
        for byte in b"SEND slb xxxxxxxxxx".iter().cycle().take(20) {
            if stopped.load(Ordering::Relaxed) || writer.write_all(&[*byte]).is_err() {
                return;
            }
            thread::sleep(idle / 4); // the attack's pace
        }
    });
    let reader = thread::spawn(move || {
        slow.expect_prefix("ERR TIMEOUT ");
        let waited = started.elapsed();
        slow.expect_closed();
        waited
    });
    let waited = pair.talk_while(reader, Duration::from_secs(10));
    stop.store(true, Ordering::Relaxed);
    dribbler.join().unwrap();
    assert!(
        waited >= idle - Duration::from_millis(100) && waited < idle * 3 / 2,
        "closed after {waited:?}, expected about {idle:?}"
    );
    pair.still_talking();
}

/// A client that logs in, then shuts down its writing side: the server sees
/// end of stream, closes, and frees the slot and the name.
#[test]
fn a_half_open_client_frees_its_slot_and_name() {
    let server = start(Config {
        max_connections: 3,
        ..config()
    });
    let mut pair = Pair::login(server, "ho");
    let half = Client::login(server, "half");
    Client::connect_raw(server).expect_prefix("ERR FULL ");
    half.hang_up(); // shutdown(Write), then wait for the server's close
    let mut next = Client::connect(server); // a slot is free: no retry needed
    next.ask("CONNECT half", "OK CONNECT half");
    pair.still_talking();
}

/// Clients that connect and reset at once, before or after the greeting.
#[cfg(target_os = "linux")]
#[test]
fn clients_that_reset_at_once_leave_nothing_behind() {
    let server = start(Config {
        max_connections: 3,
        ..config()
    });
    let mut pair = Pair::login(server, "rs");
    for _ in 0..50 {
        let stream = TcpStream::connect(server).unwrap();
        common::reset_on_drop(&stream);
        drop(stream);
    }
    let mut last = connect_when_free(server);
    last.ask("CONNECT last", "OK CONNECT last");
    pair.still_talking();
}

/// 2 000 cycles of connect / CONNECT / SEND / reset across 5 threads. After
/// them every name is free, 5 fresh clients get in, and the server process
/// is back to its baseline thread count.
#[cfg(target_os = "linux")]
#[test]
fn churn_of_resets_leaks_no_slot_name_or_thread() {
    const THREADS: usize = 5;
    const CYCLES: usize = 2000;
    let mut server = common::spawn_binary(&["--max-connections", "16"]);
    let address = server.addr;
    let mut pair = Pair::login(address, "ch");
    // A sink for the churners' messages, read by a thread of its own.
    let mut sink = Client::login(address, "sink");
    let received = Arc::new(AtomicU64::new(0));
    let counted = Arc::clone(&received);
    let sink_stop = Arc::new(AtomicBool::new(false));
    let sink_stopped = Arc::clone(&sink_stop);
    let mut sink_writer = sink.writer.try_clone().unwrap();
    let sink_thread = thread::spawn(move || {
        loop {
            let line = sink.line();
            if line == "OK PING" {
                if sink_stopped.load(Ordering::Relaxed) {
                    return;
                }
                continue;
            }
            assert!(line.starts_with("RECEIVE c"), "sink got {line:?}");
            counted.fetch_add(1, Ordering::Relaxed);
        }
    });
    let baseline = server.status("Threads");
    let seed = Rng::seed_from_env();
    println!("churn seed: {seed} (set MINICHAT_SEED to replay)");
    let names = Arc::new(Mutex::new(Vec::new()));
    let churners: Vec<_> = (0..THREADS)
        .map(|t| {
            let names = Arc::clone(&names);
            thread::spawn(move || {
                let mut rng = Rng::new(seed ^ t as u64);
                for cycle in 0..CYCLES / THREADS {
                    let name = format!("c{t}x{cycle}");
                    let mut client = connect_when_free(address);
                    common::reset_on_drop(&client.writer);
                    client.send(&format!("CONNECT {name}"));
                    if rng.one_in(2) {
                        client.expect(&format!("OK CONNECT {name}"));
                        client.send(&format!("SEND sink churn {cycle}"));
                        if rng.one_in(2) {
                            client.expect("OK SEND sink");
                        }
                    } else {
                        // Reset with the replies unread, maybe mid-line.
                        client.send_raw(format!("SEND sink churn {cycle}\nSEND si").as_bytes());
                    }
                    names.lock().unwrap().push(name);
                }
            })
        })
        .collect();
    let attack = thread::spawn(move || {
        for churner in churners {
            churner.join().unwrap();
        }
    });
    let started = Instant::now();
    // The sink pings now and then, so its read timeout never fires while
    // the churners are slow to send.
    let mut last_ping = Instant::now();
    while !attack.is_finished() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "churn too slow"
        );
        pair.exchange();
        if last_ping.elapsed() > Duration::from_secs(1) {
            sink_writer.write_all(b"PING\n").unwrap();
            last_ping = Instant::now();
        }
        thread::sleep(Duration::from_millis(5)); // pacing the pair
    }
    attack.join().unwrap();
    println!(
        "churn: {CYCLES} cycles in {:?}, {} messages relayed, pair worst round trip {:?}",
        started.elapsed(),
        received.load(Ordering::Relaxed),
        pair.worst
    );
    server.assert_alive();
    pair.still_talking();
    // Sessions end asynchronously after a reset: poll until every churner's
    // thread is gone.
    let mut threads = server.status("Threads");
    let back = poll_until(Duration::from_secs(10), || {
        threads = server.status("Threads");
        threads == baseline
    });
    assert!(back, "threads: {threads}, baseline {baseline}");
    println!("churn: threads back to baseline {baseline}");
    // Every churner's name is free: nobody but the pair and the sink is
    // logged in, and the last names used can be taken again.
    let mut watcher = Client::connect(address);
    let line = watcher.ask("LIST", "OK LIST");
    let mut listed: Vec<&str> = line.split(' ').skip(2).collect();
    listed.sort();
    assert_eq!(listed, ["cha", "chb", "sink"]);
    let names = names.lock().unwrap();
    assert_eq!(names.len(), CYCLES);
    let fresh: Vec<Client> = (0..THREADS)
        .map(|t| Client::login(address, &format!("c{t}x{}", CYCLES / THREADS - 1)))
        .collect();
    pair.still_talking();
    drop(fresh);
    sink_stop.store(true, Ordering::Relaxed);
    sink_writer.write_all(b"PING\n").unwrap();
    sink_thread.join().unwrap();
}
