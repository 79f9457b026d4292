//! Adversarial tests, part 2: hostile input (an endless line, random
//! garbage, lines at the limit, attempts to pose as another user, QUIT in
//! the middle of a batch). In each, two well-behaved clients keep exchanging
//! messages during and after the attack.

mod common;

use std::io::Write;
use std::thread;
use std::time::Duration;

use common::{Client, Pair, Rng, config, start, start_default};
use minichat::Config;

/// 100 MB without a newline: one `ERR TOO_LONG` once the newline comes, the
/// connection still usable, and the server's resident memory grows by less
/// than 1 MiB (the line is discarded as it arrives, never kept).
#[cfg(target_os = "linux")]
#[test]
fn an_endless_line_is_discarded_in_bounded_memory() {
    const MEGABYTES: usize = 100;
    let mut server = common::spawn_binary(&[]);
    let mut pair = Pair::login(server.addr, "el");
    let mut flooder = Client::login(server.addr, "flooder");
    flooder.sync();
    pair.still_talking();
    let rss_before = server.status("VmRSS");
    let mut writer = flooder.writer.try_clone().unwrap();
    let attack = thread::spawn(move || {
        let chunk = vec![b'A'; 1 << 20];
        for _ in 0..MEGABYTES {
            writer.write_all(&chunk).unwrap();
        }
        writer.write_all(b"\r\n").unwrap();
    });
    pair.talk_while(attack, Duration::from_secs(60));
    flooder.expect_prefix("ERR TOO_LONG ");
    flooder.send("SEND ela still here");
    pair.expect_on_a("RECEIVE flooder still here");
    flooder.expect("OK SEND ela");
    let rss_after = server.status("VmRSS");
    println!("endless line: VmRSS {rss_before} kB before, {rss_after} kB after {MEGABYTES} MB");
    assert!(
        rss_after < rss_before + 1024,
        "VmRSS grew from {rss_before} kB to {rss_after} kB"
    );
    server.assert_alive();
    pair.still_talking();
}

/// Exactly 512 bytes before the CRLF is a line; 513 is not.
#[test]
fn a_line_of_exactly_512_bytes_is_accepted() {
    let server = start_default();
    let mut pair = Pair::login(server, "ex");
    let mut client = Client::login(server, "edge");
    // 8 + 104 spaces + 100 four-byte characters = 512 bytes, 100 characters.
    let text = "😀".repeat(100);
    let line = format!("SEND exb{}{text}", " ".repeat(104));
    assert_eq!(line.len(), 512);
    client.send_raw(format!("{line}\r\n").as_bytes());
    pair.expect_on_b(&format!("RECEIVE edge {text}"));
    client.expect("OK SEND exb");
    client.send_raw(format!("{line} \r\n").as_bytes()); // 513 bytes
    client.expect_prefix("ERR TOO_LONG ");
    let ping = format!("PING{}", " ".repeat(508));
    client.send_raw(format!("{ping}\r\n{ping}\n").as_bytes());
    client.expect("OK PING");
    client.expect("OK PING");
    pair.still_talking();
}

/// A `RECEIVE` line always shows the sender's own registered name and the
/// exact text it sent; anything that could make a line lie (a CR, an
/// escape sequence, a bidi override, a second line) is refused.
#[test]
fn no_client_can_pose_as_another() {
    let server = start_default();
    let mut pair = Pair::login(server, "sp"); // spa and spb
    let mut mallory = Client::login(server, "mallory");
    // Texts relayed as they are, always behind mallory's own name.
    for text in [
        "RECEIVE spa hi",
        "RECEIVE  spa hi",
        "OK SEND spa",
        "ERR FULL sorry",
        "hi\u{2028}RECEIVE spa hi",
        "\u{200f}spa\u{200e}",
        "spa: trust me",
        "\\r\\nRECEIVE spa",
    ] {
        mallory.send(&format!("SEND spb {text}"));
        pair.expect_on_b(&format!("RECEIVE mallory {text}"));
        mallory.expect("OK SEND spb");
    }
    // Texts that could break or rewrite the line on a terminal: refused,
    // and nothing reaches the recipient.
    for text in [
        "hi\rRECEIVE spa hi",
        "\u{1b}[2K\u{1b}[1GRECEIVE spa hi",
        "\u{1b}]0;title\u{7}",
        "\u{9b}2J",
        "x\u{202e}ih",
        "x\u{2067}y\u{2069}",
        "a\u{85}RECEIVE spa hi",
        "\u{7f}",
        "tab\there",
    ] {
        mallory.ask(&format!("SEND spb {text}"), "ERR BAD_TEXT ");
    }
    // A CR alone before the LF is dropped, one more is refused; a second
    // line is a line of its own (an unknown command), never a RECEIVE.
    mallory.send_raw(b"SEND spb hi\r\r\n");
    mallory.expect_prefix("ERR BAD_TEXT ");
    mallory.send_raw(b"SEND spb hi\r\nRECEIVE spa hi\r\n");
    pair.expect_on_b("RECEIVE mallory hi");
    mallory.expect("OK SEND spb");
    mallory.expect_prefix("ERR UNKNOWN_COMMAND ");
    // Names: no way to take another's name, or one that hides characters.
    let mut eve = Client::connect(server);
    for name in [
        "spa",
        "SPA",
        "Spa",
        "\u{202e}eve",
        "eve\u{1b}",
        "e ve",
        "spa\r",
    ] {
        let reply = eve.ask(&format!("CONNECT {name}"), "ERR ");
        assert!(
            ["ERR NAME_TAKEN ", "ERR BAD_NAME ", "ERR SYNTAX "]
                .iter()
                .any(|code| reply.starts_with(code)),
            "CONNECT {name:?}: {reply}"
        );
    }
    eve.ask("SEND spb hi", "ERR NOT_CONNECTED ");
    pair.b_sync(); // nothing else reached spb
    pair.still_talking();
}

/// `QUIT` in the middle of a pipelined batch: every line before it is
/// answered, no `ERR`, then the connection closes; the lines after it are
/// never carried out. Also with a large tail the server never reads.
#[test]
fn quit_in_the_middle_of_a_pipelined_batch() {
    let server = start_default();
    let mut pair = Pair::login(server, "qu");
    for tail_lines in [1, 100_000] {
        let mut client = Client::login(server, "quitter");
        let mut batch = String::from("PING\nSEND qub before\nLIST\nQUIT\n");
        for _ in 0..tail_lines {
            batch.push_str("SEND qub after\n");
        }
        // The tail may not be read by the server before it closes: write it
        // from a thread, and ignore the error that closing may cause.
        let mut writer = client.writer.try_clone().unwrap();
        let sender = thread::spawn(move || {
            let _ = writer.write_all(batch.as_bytes());
        });
        client.expect("OK PING");
        client.expect("OK SEND qub");
        client.expect_prefix("OK LIST ");
        client.expect("OK QUIT");
        client.expect_closed();
        sender.join().unwrap();
        pair.expect_on_b("RECEIVE quitter before");
        pair.b_sync(); // "after" never arrived
    }
    pair.still_talking();
}

/// `QUIT` after a long pipelined batch, with more lines after it, from a
/// client that reads late (a small receive window): every reply before the
/// `QUIT`, and `OK QUIT`, still arrive. Closing a socket whose input was not
/// all read makes the system reset the connection, and a reset throws away
/// what the server had queued but not yet delivered.
#[cfg(target_os = "linux")]
#[test]
fn quit_with_lines_after_it_loses_no_reply_to_a_late_reader() {
    const BEFORE: usize = 5000;
    let server = start_default();
    let mut pair = Pair::login(server, "ql");
    let mut client = Client::login(server, "late");
    common::shrink_receive_buffer(&client.writer, 8192);
    let mut batch = "PING\n".repeat(BEFORE);
    batch.push_str("QUIT\n");
    batch.push_str(&"PING\n".repeat(5000));
    let mut writer = client.writer.try_clone().unwrap();
    let sender = thread::spawn(move || {
        let _ = writer.write_all(batch.as_bytes()); // the tail may be refused
    });
    // The scenario: the client reads only once it has written everything,
    // so the server's replies wait in its send queue.
    thread::sleep(Duration::from_millis(300));
    sender.join().unwrap();
    let mut pings = 0;
    loop {
        let line = client.line();
        if line != "OK PING" {
            assert_eq!(line, "OK QUIT", "after {pings} OK PING");
            break;
        }
        pings += 1;
    }
    assert_eq!(pings, BEFORE);
    client.expect_closed();
    pair.still_talking();
}

/// The 11 error codes of the contract.
const CODES: [&str; 11] = [
    "FULL",
    "TIMEOUT",
    "SYNTAX",
    "UNKNOWN_COMMAND",
    "BAD_NAME",
    "NAME_TAKEN",
    "ALREADY_CONNECTED",
    "NOT_CONNECTED",
    "BAD_TEXT",
    "TOO_LONG",
    "NO_SUCH_USER",
];

/// What a generated line must get back.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    /// Empty or only spaces: no reply.
    Nothing,
    /// Exactly one reply, of this code when it is easy to predict.
    Reply(Option<&'static str>),
}

/// The line the server sees (without the LF and one CR before it), and the
/// reply it must give; `None` for a line that would be `QUIT`.
fn expectation(sent: &[u8]) -> Option<Expect> {
    let line = sent.strip_suffix(b"\n").expect("a line ends with LF");
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.len() > 512 {
        return Some(Expect::Reply(Some("TOO_LONG")));
    }
    if line.iter().all(|&b| b == b' ') {
        return Some(Expect::Nothing);
    }
    if std::str::from_utf8(line).is_err() {
        return Some(Expect::Reply(Some("BAD_TEXT")));
    }
    let verb = line
        .split(|&b| b == b' ')
        .find(|field| !field.is_empty())
        .unwrap_or(b"");
    if verb.eq_ignore_ascii_case(b"QUIT") {
        return None;
    }
    Some(Expect::Reply(None))
}

/// Characters that make random text interesting: controls, CR, ESC, NUL,
/// bidi overrides, no-break and other spaces, combining marks, wide and
/// astral characters, the replacement character, a BOM.
const TRICKY: [char; 24] = [
    '\0',
    '\r',
    '\t',
    '\u{1b}',
    '\u{7f}',
    '\u{85}',
    '\u{9b}',
    '\u{a0}',
    '\u{ad}',
    '\u{300}',
    '\u{200b}',
    '\u{200f}',
    '\u{2028}',
    '\u{202e}',
    '\u{2066}',
    '\u{2069}',
    '\u{3000}',
    '\u{fdd0}',
    '\u{feff}',
    '\u{fffd}',
    'é',
    '日',
    '😀',
    '\u{10ffff}',
];

const VERBS: [&str; 16] = [
    "CONNECT", "connect", "SEND", "send", "SeNd", "LIST", "list", "PING", "ping", "HELP", "help",
    "RECEIVE", "OK", "ERR", "QUITE", "FROB",
];

const NAMES: [&str; 8] = [
    "garbler", "GARBLER", "nobody", "b*b", "Élodie", "x", "", "a-b_c",
];

/// A random string of `len` characters, mostly printable ASCII.
fn random_text(rng: &mut Rng, len: usize) -> String {
    (0..len)
        .map(|_| match rng.below(10) {
            0 => *rng.pick(&TRICKY),
            1 => char::from_u32(rng.below(0x11_0000) as u32).unwrap_or('?'),
            2 => ' ',
            _ => (b' ' + rng.below(95) as u8) as char,
        })
        .filter(|&c| c != '\n')
        .collect()
}

/// Random bytes, anything but LF.
fn random_bytes(rng: &mut Rng, len: usize) -> Vec<u8> {
    (0..len)
        .map(|_| rng.below(256) as u8)
        .map(|b| if b == b'\n' { b'\r' } else { b })
        .collect()
}

/// One random line, LF included.
fn garbage_line(rng: &mut Rng) -> Vec<u8> {
    let mut line: Vec<u8> = match rng.below(12) {
        0 | 1 => {
            let len = rng.within(0..=60);
            random_bytes(rng, len)
        }
        2 | 3 => {
            let len = rng.within(0..=60);
            random_text(rng, len).into_bytes()
        }
        4..=6 => {
            let mut words = vec![rng.pick(&VERBS).to_string()];
            for _ in 0..rng.within(0..=4) {
                let word = match rng.below(3) {
                    0 => rng.pick(&NAMES).to_string(),
                    _ => {
                        let len = rng.within(0..=120);
                        random_text(rng, len)
                    }
                };
                words.push(word);
            }
            let mut line = " ".repeat(rng.below(3));
            for word in words {
                line.push_str(&word);
                line.push_str(&" ".repeat(rng.within(1..=3)));
            }
            if rng.one_in(2) {
                line.truncate(line.trim_end_matches(' ').len());
            }
            line.into_bytes()
        }
        7 => match rng.below(6) {
            0 => vec![0; rng.within(1..=40)],
            1 => b"PING\0".to_vec(),
            2 => b"SEND garbler nul\0here".to_vec(),
            3 => b"\r".to_vec(),
            4 => b"\r\r".to_vec(),
            _ => b" \r \r".to_vec(),
        },
        8 => {
            // Telnet negotiation (IAC WILL/DO/WONT/DONT ...), maybe before a command.
            let mut line = Vec::new();
            for _ in 0..rng.within(1..=4) {
                line.extend_from_slice(&[0xff, 0xfb + rng.below(4) as u8, rng.below(40) as u8]);
            }
            if rng.one_in(2) {
                line.extend_from_slice(b"PING");
            }
            line
        }
        9 => {
            // Many spaces: below, at and over the limit, maybe around a verb.
            let mut line = vec![b' '; *rng.pick(&[1, 100, 511, 512, 513, 2000])];
            if rng.one_in(2) {
                let at = rng.below(line.len());
                line.splice(at..at, b"PING".iter().copied());
            }
            line
        }
        10 => {
            // Around the 512-byte limit, or far over it.
            let len = *rng.pick(&[510, 511, 512, 513, 514, 1000, 2047, 2048, 2049, 5000]);
            let mut line = b"SEND garbler ".to_vec();
            while line.len() < len {
                line.push(b'a' + rng.below(26) as u8);
            }
            line.truncate(len);
            line
        }
        _ => {
            let len = rng.within(513..=4000);
            random_bytes(rng, len)
        }
    };
    // One line: no LF before its end (a telnet option byte may be 10).
    line.retain(|&b| b != b'\n');
    if rng.one_in(2) {
        line.push(b'\r');
    }
    line.push(b'\n');
    line
}

/// Checks that a reply is one well-formed line: `OK <WORD>...` or
/// `ERR <CODE> <reason>` with one of the 11 codes, and no control or bidi
/// character (the CRLF was checked and stripped by [`Client::line`]).
fn check_well_formed(reply: &str, seed: u64) {
    assert!(
        !reply.chars().any(minichat::protocol::is_forbidden_in_text),
        "seed {seed}: a control or bidi character in {reply:?}"
    );
    if let Some(rest) = reply.strip_prefix("ERR ") {
        let code = rest.split(' ').next().unwrap();
        assert!(
            CODES.contains(&code),
            "seed {seed}: unknown code in {reply:?}"
        );
        assert!(
            rest.len() > code.len() + 1,
            "seed {seed}: no reason in {reply:?}"
        );
    } else {
        assert!(
            ["OK SEND ", "OK LIST", "OK PING", "OK HELP ", "OK CONNECT "]
                .iter()
                .any(|ok| reply.starts_with(ok)),
            "seed {seed}: not a reply: {reply:?}"
        );
    }
}

/// 20 000 random lines from a seeded generator: each gets exactly one
/// well-formed reply (none for a blank line), the predictable ones the
/// right code, and the server never dies. Replay with `MINICHAT_SEED`.
#[test]
fn twenty_thousand_garbage_lines_each_get_one_well_formed_reply() {
    const LINES: usize = 20_000;
    const CHUNK: usize = 250;
    let seed = Rng::seed_from_env();
    println!("garbage seed: {seed} (set MINICHAT_SEED to replay)");
    let server = start(Config {
        max_connections: 8,
        ..config()
    });
    let mut pair = Pair::login(server, "ga");
    let mut garbler = Client::login(server, "garbler");
    let attack = thread::spawn(move || {
        let mut rng = Rng::new(seed);
        let (mut replies, mut received, mut predicted) = (0, 0, 0);
        for _ in 0..LINES / CHUNK {
            let mut batch = Vec::new();
            let mut expected = Vec::new();
            while expected.len() < CHUNK {
                let line = garbage_line(&mut rng);
                let Some(expect) = expectation(&line) else {
                    continue; // a QUIT: not this test's business
                };
                batch.extend_from_slice(&line);
                expected.push((expect, line));
            }
            batch.extend_from_slice(b"PING\n");
            garbler.send_raw(&batch);
            let mut wanted = expected
                .iter()
                .filter(|(expect, _)| *expect != Expect::Nothing);
            loop {
                let reply = garbler.line();
                if let Some(text) = reply.strip_prefix("RECEIVE garbler ") {
                    // A SEND to itself that passed: the RECEIVE comes first.
                    assert!(!text.is_empty(), "seed {seed}: {reply:?}");
                    assert!(
                        !text.chars().any(minichat::protocol::is_forbidden_in_text),
                        "seed {seed}: {reply:?}"
                    );
                    received += 1;
                    continue;
                }
                check_well_formed(&reply, seed);
                let Some((expect, line)) = wanted.next() else {
                    assert_eq!(reply, "OK PING", "seed {seed}: one reply too many");
                    break;
                };
                replies += 1;
                if let Expect::Reply(Some(code)) = expect {
                    predicted += 1;
                    assert!(
                        reply.starts_with(&format!("ERR {code} ")),
                        "seed {seed}: line {:?} got {reply:?}, expected {code}",
                        String::from_utf8_lossy(line)
                    );
                }
                if reply.starts_with("OK SEND ") {
                    assert_eq!(reply, "OK SEND garbler", "seed {seed}");
                }
            }
        }
        garbler.sync();
        (replies, received, predicted)
    });
    let (replies, received, predicted) = pair.talk_while(attack, Duration::from_secs(90));
    println!(
        "garbage: {LINES} lines, {replies} replies ({predicted} of a predicted code), \
         {received} self-deliveries, pair worst round trip {:?}",
        pair.worst
    );
    pair.still_talking();
    Client::login(server, "after");
}
