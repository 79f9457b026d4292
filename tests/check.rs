//! `minichat check`: it passes our server (running, and spawned by the
//! checker), it reports a server it cannot check in one line, and it fails
//! each faulty server of `faulty/` on the check of the rule that server
//! breaks, and on no check that has nothing to do with it.

mod common;
mod faulty;

use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt;
use common::{Client, config, start};
use faulty::{Fault, FaultyServer};
use minichat::Config;
use minichat::tools::check::launch::Launcher;
use minichat::tools::check::{self, CheckOptions, Pace, Report, ServerUnderTest, Verdict};
use minichat::tools::remote::Target;

/// Runs the suite in-process against a running server at `address`.
fn check_running(
    address: std::net::SocketAddr,
    tune: impl FnOnce(&mut CheckOptions),
) -> (Report, String) {
    let mut options = CheckOptions {
        server: ServerUnderTest::Running(Target::parse(&address.to_string()).unwrap()),
        wait: Duration::from_secs(1),
        ..CheckOptions::default()
    };
    tune(&mut options);
    let mut out = Vec::new();
    let report = check::run(&options, &mut out).unwrap();
    (report, String::from_utf8(out).unwrap())
}

/// Runs the checks named in `only` (all if empty) in spawn mode, starting
/// servers with `launcher`.
fn check_spawning(launcher: &dyn Launcher, only: Vec<String>) -> (Report, String) {
    let options = CheckOptions {
        only,
        junit: std::env::var_os("CHECK_JUNIT").map(Into::into),
        ..CheckOptions::default()
    };
    let mut out = Vec::new();
    let report = check::run_spawning(&options, launcher, &mut out).unwrap();
    (report, String::from_utf8(out).unwrap())
}

/// The names of the checks in `groups`.
fn names(groups: u8) -> Vec<String> {
    check::checks::all()
        .into_iter()
        .filter(|check| {
            let slow = ["too-long-once-at-the-lf", "quit-ends-within-write-timeout"];
            let group = match (check.pace, check.name.starts_with("write-timeout")) {
                (Pace::Waits, _) => WAITS,
                (Pace::Alone, true) => WRITES,
                (Pace::Alone, false) if slow.contains(&check.name) => SLOW,
                (Pace::Alone, false) => QUICK,
            };
            groups & group != 0
        })
        .map(|check| check.name.to_owned())
        .collect()
}

/// The checks that take a moment at most.
const QUICK: u8 = 1;
/// The checks that take about a second without waiting for a timeout.
const SLOW: u8 = 8;
/// The checks that wait for a timeout.
const WAITS: u8 = 2;
/// The checks that flood a recipient that never reads.
const WRITES: u8 = 4;

#[test]
fn our_server_passes_every_check_it_can_run_while_running() {
    let (report, printed) = check_running(start(config()), |_| {});
    assert!(report.all_passed(), "{printed}");
    assert!(report.passed() >= 35, "{printed}");
    assert_eq!(
        printed
            .lines()
            .last()
            .unwrap()
            .split(" in ")
            .next()
            .unwrap(),
        format!(
            "{} passed, 0 failed, {} skipped",
            report.passed(),
            report.skipped()
        )
    );
    assert!(
        printed.contains("SKIP login-timeout (needs the server's --login-timeout"),
        "{printed}"
    );
    assert!(
        printed.contains("SKIP usage-errors (needs --spawn"),
        "{printed}"
    );
}

#[test]
fn our_server_passes_the_timeout_checks_when_told_its_timeouts() {
    let server = start(Config {
        login_timeout: Some(Duration::from_secs(1)),
        idle_timeout: Some(Duration::from_secs(2)),
        write_timeout: Duration::from_secs(1),
        ..config()
    });
    let (report, printed) = check_running(server, |options| {
        let known = &mut options.settings;
        known.login_timeout = Some(check::settings::TimeLimit::After(Duration::from_secs(1)));
        known.idle_timeout = Some(check::settings::TimeLimit::After(Duration::from_secs(2)));
        known.write_timeout = Some(Duration::from_secs(1));
        options.only = [
            "login-timeout",
            "idle-timeout",
            "quit-ends-within-write-timeout",
            "write-timeout-drops-stuck-recipient",
        ]
        .map(str::to_owned)
        .into();
    });
    assert_eq!(report.passed(), 4, "{printed}");
    assert!(report.all_passed(), "{printed}");
}

/// The real binary checks the real binary: every check runs and passes,
/// and the JUnit report says so.
#[test]
fn the_binary_passes_every_check_in_spawn_mode() {
    let binary = assert_cmd::cargo::cargo_bin("minichat");
    let junit = std::env::temp_dir().join(format!("minichat-check-{}.xml", std::process::id()));
    let started = Instant::now();
    let output = std::process::Command::cargo_bin("minichat")
        .unwrap()
        .arg("check")
        .arg("--spawn")
        .arg(format!("'{}'", binary.display()))
        .arg("--junit")
        .arg(&junit)
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    let summary = stdout.lines().last().unwrap();
    let total = check::checks::all().len();
    assert!(
        summary.starts_with(&format!("{total} passed, 0 failed, 0 skipped in ")),
        "{stdout}"
    );
    assert!(started.elapsed() < Duration::from_secs(60), "{stdout}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    let _ = std::fs::remove_file(&junit);
    assert!(
        xml.contains(&format!("tests=\"{total}\" failures=\"0\"")),
        "{xml}"
    );
    assert_eq!(xml.matches("<testcase ").count(), total);
}

#[test]
fn the_faulty_server_without_a_fault_passes_every_check() {
    let (report, printed) = check_spawning(&FaultyServer(Fault::Correct), Vec::new());
    assert!(report.all_passed(), "{printed}");
    assert_eq!(report.passed(), check::checks::all().len(), "{printed}");
}

#[test]
fn nothing_listening_is_one_line_and_exit_code_1() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let junit = std::env::temp_dir().join(format!("minichat-none-{}.xml", std::process::id()));
    let output = std::process::Command::cargo_bin("minichat")
        .unwrap()
        .args(["check", &address.to_string(), "--junit"])
        .arg(&junit)
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(
        stdout.starts_with(&format!("cannot check {address}: nothing answers there")),
        "{stdout}"
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    let _ = std::fs::remove_file(&junit);
    assert!(xml.contains("name=\"preflight\""), "{xml}");
}

#[test]
fn a_server_with_users_is_refused_in_one_line() {
    let server = start(config());
    let _someone = Client::login(server, "someone");
    let (report, printed) = check_running(server, |_| {});
    assert!(!report.all_passed());
    assert!(report.outcomes.is_empty());
    assert_eq!(printed.lines().count(), 1, "{printed}");
    assert!(
        printed
            .contains("it already has users (\"OK LIST someone\"): the checks need an idle server"),
        "{printed}"
    );
}

#[test]
fn a_full_server_is_refused_in_one_line() {
    let server = start(Config {
        max_connections: 1,
        ..config()
    });
    let _someone = Client::connect(server);
    let (report, printed) = check_running(server, |_| {});
    assert!(report.preflight.is_some());
    assert_eq!(printed.lines().count(), 1, "{printed}");
    assert!(printed.contains("it greets with \"ERR FULL"), "{printed}");
}

#[test]
fn a_server_that_never_greets_is_refused_in_one_line_quickly() {
    // Accepts connections (the system does, into the backlog) but never
    // says a word.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let started = Instant::now();
    let (report, printed) = check_running(address, |options| {
        options.wait = Duration::from_millis(300);
    });
    assert!(report.preflight.is_some());
    assert_eq!(printed.lines().count(), 1, "{printed}");
    assert!(
        printed.contains("sends no greeting within 0.3 s"),
        "{printed}"
    );
    assert!(started.elapsed() < Duration::from_secs(5), "{printed}");
    drop(listener);
}

#[test]
fn a_server_that_dies_fails_the_remaining_checks_at_once() {
    // A server that greets, then stops answering anything: the first check
    // that needs a reply fails, and so do the others, without waiting.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut greeted = 0;
        for stream in listener.incoming().flatten() {
            greeted += 1;
            if greeted <= 1 {
                let mut stream = stream;
                let _ = std::io::Write::write_all(&mut stream, b"OK WELCOME hi\r\n");
                let _ = std::io::Write::write_all(&mut stream, b"OK LIST\r\n");
                std::mem::forget(stream);
            }
        }
    });
    let started = Instant::now();
    let (report, printed) = check_running(address, |options| {
        options.wait = Duration::from_millis(300);
    });
    assert_eq!(report.passed(), 0, "{printed}");
    assert!(printed.contains("not run: cannot connect"), "{printed}");
    assert!(started.elapsed() < Duration::from_secs(10), "{printed}");
}

/// A server whose first stderr line is worded otherwise still gets every
/// other check: only the check of that line fails.
#[test]
fn a_first_line_worded_otherwise_fails_only_its_check() {
    expect_failures(Fault::FirstLineWording, QUICK, &["first-stderr-line"], &[]);
}

/// A server that cannot start with some flags fails the checks that need
/// them, saying why, and no other.
#[test]
fn a_server_that_does_not_start_fails_only_the_checks_that_need_it() {
    let (report, printed) = expect_failures(
        Fault::NoVerboseFlag,
        QUICK,
        &["log-pipe-nobody-reads", "log-stderr-closed"],
        &[],
    );
    let failure = &report.failure("log-pipe-nobody-reads").unwrap().0;
    assert!(
        failure.contains("not run: `faulty-server --fault NoVerboseFlag --bind 127.0.0.1 --port 0 --verbose` exited with code 2"),
        "{printed}"
    );
}

/// No server is left behind, even when the checker is killed: each one
/// dies with it (Linux: `PR_SET_PDEATHSIG`).
#[cfg(target_os = "linux")]
#[test]
fn a_killed_checker_leaves_no_server_behind() {
    let binary = assert_cmd::cargo::cargo_bin("minichat");
    let pids = std::env::temp_dir().join(format!("minichat-pids-{}", std::process::id()));
    let _ = std::fs::remove_file(&pids);
    // A wrapper that notes its PID, then becomes the server.
    let command = format!(
        "sh -c 'echo $$ >> \"$0\"; exec \"$@\"' '{}' '{}'",
        pids.display(),
        binary.display()
    );
    let mut checker = std::process::Command::cargo_bin("minichat")
        .unwrap()
        .args(["check", "--spawn", &command])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let alive = |pid: &str| {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            // A zombie (state Z) has ended; only its parent has not reaped it.
            .is_ok_and(|stat| !stat.contains(") Z "))
    };
    let running = || {
        let listed = std::fs::read_to_string(&pids).unwrap_or_default();
        listed.lines().filter(|pid| alive(pid)).count()
    };
    // Several servers at once: the waiting checks start theirs together.
    let started = common::poll_until(Duration::from_secs(20), || running() >= 3);
    checker.kill().unwrap();
    checker.wait().unwrap();
    assert!(started, "the checker never had 3 servers running");
    let all_dead = common::poll_until(Duration::from_secs(5), || running() == 0);
    let listed = std::fs::read_to_string(&pids).unwrap_or_default();
    let _ = std::fs::remove_file(&pids);
    assert!(all_dead, "servers still running among {listed:?}");
}

/// Runs the checks of `groups` against a server with `fault`; every check
/// of `must` fails, and nothing else but those of `may` (failures that
/// follow from the same fault).
fn expect_failures(fault: Fault, groups: u8, must: &[&str], may: &[&str]) -> (Report, String) {
    let (report, printed) = check_spawning(&FaultyServer(fault), names(groups));
    let failed = report.failed_names();
    for name in must {
        assert!(
            failed.contains(name),
            "{fault:?}: {name} did not fail:\n{printed}"
        );
    }
    for name in &failed {
        assert!(
            must.contains(name) || may.contains(name),
            "{fault:?}: {name} failed too:\n{printed}"
        );
    }
    for outcome in &report.outcomes {
        if let Verdict::Failed(failure) = &outcome.verdict {
            assert!(!failure.0.is_empty());
        }
    }
    (report, printed)
}

/// One test per fault: the fault, the groups of checks run, the checks
/// that must fail, and those that may fail too.
macro_rules! faults {
    ($($test:ident: $fault:ident, $groups:expr, [$($must:literal),*], [$($may:literal),*];)*) => {
        $(
            #[test]
            fn $test() {
                expect_failures(Fault::$fault, $groups, &[$($must),*], &[$($may),*]);
            }
        )*
    };
}

faults! {
    help_exiting_1: HelpExits1, QUICK, ["help-exits-0"], [];
    version_unknown: NoVersionFlag, QUICK, ["version-exits-0"], [];
    usage_error_exiting_1: UsageErrorExits1, QUICK, ["usage-errors"], [];
    usage_error_of_two_lines: UsageErrorTwoLines, QUICK, ["usage-errors"], [];
    write_timeout_0_accepted: AcceptsWriteTimeout0, QUICK, ["usage-errors"], [];
    max_connections_0_accepted: AcceptsMaxConnections0, QUICK, ["usage-errors"], [];
    log_that_blocks: LogBlocks, QUICK, ["log-pipe-nobody-reads"], [];
    log_that_dies_on_a_closed_stderr: LogDiesWhenClosed, QUICK, ["log-stderr-closed"], [];
    replies_ending_with_lf: LfOnly, QUICK, ["replies-end-with-crlf", "connection-limit", "max-connections-flag"], [];
    every_cr_stripped: StripsAllCrs, QUICK, ["lf-and-crlf-accepted"], [];
    too_long_before_the_lf: TooLongEarly, QUICK | SLOW, ["too-long-once-at-the-lf"], [];
    verbs_split_on_unicode_spaces: SplitsVerbOnUnicodeSpaces, QUICK, ["spaces-between-fields"], ["unknown-command", "lf-and-crlf-accepted"];
    verbs_matched_by_unicode_case: UnicodeVerbs, QUICK, ["verbs-ascii-case-only"], [];
    text_length_in_bytes: CountsBytes, QUICK, ["text-length-counts-characters"], ["line-512-vs-513-bytes"];
    text_length_in_utf16_units: CountsUtf16, QUICK, ["text-length-counts-characters"], ["line-512-vs-513-bytes"];
    text_length_in_graphemes: CountsGraphemes, QUICK, ["text-length-counts-characters"], [];
    bidi_range_from_2029: BidiRangeFrom2029, QUICK, ["text-forbidden-range-ends"], [];
    python_isprintable_texts: ForbidsUnprintable, QUICK, ["text-forbidden-range-ends", "text-control-characters"], [];
    java_name_characters: JavaNameCharacters, QUICK, ["name-characters-unicode"], [];
    identifier_name_characters: IdentifierNameCharacters, QUICK, ["name-characters-unicode"], [];
    name_length_in_utf16_units: NameLengthUtf16, QUICK, ["name-length-16-vs-17"], ["name-characters-unicode"];
    names_compared_by_uppercase: NamesComparedByUppercase, QUICK, ["names-compared-by-to-lowercase"], [];
    names_case_folded: NamesCaseFolded, QUICK, ["names-compared-by-to-lowercase"], [];
    names_lowercased_char_by_char: NamesLowercasedCharByChar, QUICK, ["names-compared-by-to-lowercase"], [];
    name_kept_after_quit: KeepsNameAfterQuit, QUICK, ["name-released-after-quit", "quit-frees-slot-and-name-at-once"], ["no-such-user", "list-content"];
    no_such_user_before_too_long: NoSuchUserBeforeTooLong, QUICK, ["error-precedence"], [];
    not_connected_before_syntax: NotConnectedBeforeSyntax, QUICK, ["error-precedence"], [];
    max_connections_ignored: IgnoresMaxConnections, QUICK, ["max-connections-flag"], ["first-stderr-line"];
    slot_leaked_on_reset: SlotLeakOnReset, QUICK, ["slot-reused-after-reset"], [];
    slot_freed_when_the_client_closes: SlotFreedWhenClientCloses, QUICK, ["quit-frees-slot-and-name-at-once"], [];
    close_without_lingering: ClosesWithoutLingering, QUICK | WAITS, ["quit-delivers-owed-lines-then-ends", "timeout-delivers-owed-lines-then-ends"], [];
    lingering_for_ever: LingersForever, QUICK | SLOW | WAITS, ["quit-ends-within-write-timeout", "timeout-delivers-owed-lines-then-ends"], [];
    no_write_timeout: NoWriteTimeout, WRITES, ["write-timeout-drops-stuck-recipient", "write-timeout-drops-deaf-client", "write-timeout-others-undelayed"], [];
    write_timeout_tripled: WriteTimeoutTripled, WRITES, ["write-timeout-drops-stuck-recipient"], ["write-timeout-drops-deaf-client", "write-timeout-others-undelayed"];
    recipient_dropped_at_once: DropsAtOnce, WRITES, ["write-timeout-drops-stuck-recipient"], ["write-timeout-others-undelayed"];
    one_write_lock_for_all: GlobalWriteLock, WRITES, ["write-timeout-others-undelayed"], [];
    no_login_timeout: NoLoginTimeout, WAITS, ["login-timeout", "login-timeout-despite-refused-connects", "timeout-delivers-owed-lines-then-ends"], [];
    login_clock_restarted_by_lines: LoginClockRestartsOnLines, WAITS, ["login-timeout", "login-timeout-despite-refused-connects"], ["timeout-delivers-owed-lines-then-ends"];
    login_clock_stopped_by_any_connect: LoginClockStopsAtAnyConnect, WAITS, ["login-timeout-despite-refused-connects"], [];
    login_timeout_after_login: LoginTimeoutKeepsRunningAfterLogin, WAITS, ["login-timeout-spares-logged-in"], [];
    login_timeout_0_at_once: LoginTimeout0AtOnce, WAITS, ["login-timeout-0-means-never"], [];
    idle_timeout_for_logged_in_only: IdleTimeoutForLoggedInOnly, WAITS, ["idle-timeout"], [];
    idle_timeout_from_the_login_value: IdleTimeoutUsesLoginValue, WAITS, ["idle-timeout", "idle-timeout-restarted-by-complete-lines", "idle-timeout-not-restarted-by-bytes"], [];
    idle_clock_restarted_by_bytes: IdleClockRestartsOnBytes, WAITS, ["idle-timeout-not-restarted-by-bytes"], [];
    idle_clock_ignoring_blank_lines: IdleClockIgnoresBlankLines, WAITS, ["idle-timeout-restarted-by-complete-lines"], [];
    idle_timeout_0_at_once: IdleTimeout0AtOnce, WAITS, ["idle-timeout-0-means-never"], [];
}
