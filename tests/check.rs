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
use minichat::lang::Lang;
use minichat::tools::check::checks::Check;
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
/// servers with `launcher`, with the report in `lang`.
fn check_spawning_in(launcher: &dyn Launcher, only: Vec<String>, lang: Lang) -> (Report, String) {
    let options = CheckOptions {
        only,
        lang,
        junit: std::env::var_os("CHECK_JUNIT").map(Into::into),
        ..CheckOptions::default()
    };
    let mut out = Vec::new();
    let report = check::run_spawning(&options, launcher, &mut out).unwrap();
    (report, String::from_utf8(out).unwrap())
}

fn check_spawning(launcher: &dyn Launcher, only: Vec<String>) -> (Report, String) {
    check_spawning_in(launcher, only, Lang::En)
}

fn owned(names: &[&str]) -> Vec<String> {
    names.iter().map(|name| name.to_string()).collect()
}

/// The FAIL block of `name` in a printed run: its line and the indented
/// lines under it.
fn fail_block(printed: &str, name: &str) -> String {
    let start = printed
        .find(&format!("FAIL {name}: "))
        .unwrap_or_else(|| panic!("{name} did not fail:\n{printed}"));
    let block: Vec<&str> = printed[start..]
        .lines()
        .enumerate()
        .take_while(|(i, line)| *i == 0 || line.starts_with("    "))
        .map(|(_, line)| line)
        .collect();
    block.join("\n")
}

fn our_server_passes_every_check_it_can_run_while_running() {
    let (report, printed) = check_running(start(config()), |_| {});
    assert!(report.all_passed(), "{printed}");
    assert!(report.passed() >= 40, "{printed}");
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
        options.only = owned(&[
            "login-timeout",
            "idle-timeout",
            "quit-ends-within-write-timeout",
        ]);
    });
    assert_eq!(report.passed(), 3, "{printed}");
    assert!(report.all_passed(), "{printed}");
    // A stuck recipient on a server of its own, whose idle timeout cannot
    // close it first however slowly the flood goes.
    let server = start(Config {
        write_timeout: Duration::from_secs(2),
        ..config()
    });
    let (report, printed) = check_running(server, |options| {
        options.settings.write_timeout = Some(Duration::from_secs(2));
        options.only = owned(&["write-timeout-drops-stuck-recipient"]);
    });
    assert_eq!(report.passed(), 1, "{printed}");
}

/// The real binary checks the real binary: every check runs and passes,
/// and the JUnit report says so.
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
        .env("LANG", "fr_FR.UTF-8")
        .env_remove("LC_ALL")
        .env_remove("LC_MESSAGES")
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    let summary = stdout.lines().last().unwrap();
    let checks = check::checks::all();
    let total = checks.len();
    assert!(
        summary.starts_with(&format!("{total} réussies, 0 échouée, 0 sautée en ")),
        "{stdout}"
    );
    assert!(stdout.contains("Par section de PROTOCOL.md :"), "{stdout}");
    assert!(started.elapsed() < Duration::from_secs(60), "{stdout}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    let _ = std::fs::remove_file(&junit);
    assert!(
        xml.contains(&format!("tests=\"{total}\" failures=\"0\"")),
        "{xml}"
    );
    assert_eq!(xml.matches("<testcase ").count(), total);
    let mut sections: Vec<&str> = checks.iter().map(|c| c.rule.section).collect();
    sections.sort_unstable();
    sections.dedup();
    assert_eq!(xml.matches("<testsuite ").count(), sections.len(), "{xml}");
}

/// `--list` prints every check with its level, section and rule; a level
/// runs its checks and those below.
#[test]
fn the_list_shows_every_check_with_its_level_section_and_rule() {
    let output = std::process::Command::cargo_bin("minichat")
        .unwrap()
        .args(["check", "--list", "--lang", "en"])
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    for check in check::checks::all() {
        let head = format!(
            "{} (level {}, PROTOCOL.md « {} »)",
            check.name, check.level, check.rule.section
        );
        assert!(stdout.contains(&head), "{head}\n{stdout}");
        assert!(stdout.contains(&format!("    « {} »", check.rule.quote)));
    }
    let output = std::process::Command::cargo_bin("minichat")
        .unwrap()
        .args(["check", "--list", "--lang", "fr", "--level", "1"])
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let level_1: Vec<Check> = check::checks::all()
        .into_iter()
        .filter(|c| c.level == 1)
        .collect();
    assert_eq!(
        stdout.matches("(niveau 1, PROTOCOL.md").count(),
        level_1.len()
    );
    assert!(!stdout.contains("(niveau 2"), "{stdout}");
}

/// A reader that goes away (`minichat check --list | head -1`) ends the
/// list quietly: no message about a broken pipe, exit code 0.
#[test]
fn the_list_ends_quietly_when_its_reader_has_gone() {
    // A pipe whose reading end is closed: the stdin of a program that
    // has ended.
    let mut gone = std::process::Command::new("true")
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pipe = gone.stdin.take().unwrap();
    gone.wait().unwrap();
    let output = std::process::Command::cargo_bin("minichat")
        .unwrap()
        .args(["check", "--list"])
        .stdout(pipe)
        .output()
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr, "");
    assert_eq!(output.status.code(), Some(0));
}

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

/// The quick checks, and those of the log (which need `--verbose`).
fn quick_and_log() -> Vec<String> {
    check::checks::all()
        .into_iter()
        .filter(|c| c.pace == Pace::Quick || c.name.starts_with("log-"))
        .map(|c| c.name.to_owned())
        .collect()
}

/// A server whose first stderr line is worded otherwise still gets every
/// other check: only the check of that line fails.
fn a_first_line_worded_otherwise_fails_only_its_check() {
    let (report, printed) = check_spawning(&FaultyServer(Fault::FirstLineWording), quick_and_log());
    assert_eq!(report.failed_names(), ["first-stderr-line"], "{printed}");
}

/// A server that cannot start with some flags fails the checks that need
/// them, saying why, and no other.
fn a_server_that_does_not_start_fails_only_the_checks_that_need_it() {
    let (report, printed) = check_spawning(&FaultyServer(Fault::NoVerboseFlag), quick_and_log());
    assert_eq!(
        report.failed_names(),
        ["log-pipe-nobody-reads", "log-stderr-closed"],
        "{printed}"
    );
    let failure = &report.failure("log-pipe-nobody-reads").unwrap().what;
    assert!(
        failure.contains("not run: `faulty-server --fault NoVerboseFlag --bind 127.0.0.1 --port 0 --verbose` exited with code 2"),
        "{printed}"
    );
}

/// One faulty server: the checks that must fail, and those that may fail
/// too (failures that follow from the same fault).
struct Case {
    fault: Fault,
    must: &'static [&'static str],
    may: &'static [&'static str],
}

/// The checks a case runs: those that must or may fail, and their
/// neighbours (the checks of the same PROTOCOL.md sections, flood checks
/// left out), which must pass. The faulty server without a fault passes
/// them all, in its own test.
fn neighbours(case: &Case) -> Vec<String> {
    let checks = check::checks::all();
    let named = |name: &str| case.must.contains(&name) || case.may.contains(&name);
    let sections: Vec<&str> = checks
        .iter()
        .filter(|c| case.must.contains(&c.name))
        .map(|c| c.rule.section)
        .collect();
    checks
        .iter()
        .filter(|c| {
            named(c.name)
                || (sections.contains(&c.rule.section)
                    && matches!(c.pace, Pace::Quick | Pace::Waits))
        })
        .map(|c| c.name.to_owned())
        .collect()
}

/// Runs `case`; `Err` says what went wrong, with the run.
fn run_case(case: &Case) -> Result<(), String> {
    let (report, printed) = check_spawning(&FaultyServer(case.fault), neighbours(case));
    let failed = report.failed_names();
    let fault = case.fault;
    for name in case.must {
        if !failed.contains(name) {
            return Err(format!("{fault:?}: {name} did not fail:\n{printed}"));
        }
    }
    for name in &failed {
        if !case.must.contains(name) && !case.may.contains(name) {
            return Err(format!("{fault:?}: {name} failed too:\n{printed}"));
        }
    }
    for outcome in &report.outcomes {
        if let Verdict::Failed(failure) = &outcome.verdict {
            // Every failure cites its rule, with its section.
            if failure.what.is_empty() || failure.rule.is_none() {
                return Err(format!(
                    "{fault:?}: {} without its rule:\n{printed}",
                    outcome.name
                ));
            }
            if printed.contains("\\u{") {
                return Err(format!("{fault:?}: a Rust escape in:\n{printed}"));
            }
        }
    }
    Ok(())
}

/// True for a case that floods a client that never reads: busy while it
/// fills the client's buffers, so no more than three run at once.
fn floods(case: &Case) -> bool {
    case.must
        .iter()
        .any(|name| name.starts_with("write-timeout-"))
}

/// Runs `cases` side by side, ten at a time (those that flood three at a
/// time, beside the others), and fails with every case that went wrong.
fn run_cases(cases: &[Case]) {
    const AT_ONCE: usize = 10;
    const FLOODS_AT_ONCE: usize = 3;
    let errors = std::sync::Mutex::new(Vec::new());
    let (flooding, quiet): (Vec<&Case>, Vec<&Case>) = cases.iter().partition(|case| floods(case));
    let queues = [
        (
            flooding,
            FLOODS_AT_ONCE,
            std::sync::atomic::AtomicUsize::new(0),
        ),
        (quiet, AT_ONCE, std::sync::atomic::AtomicUsize::new(0)),
    ];
    std::thread::scope(|scope| {
        for (queue, workers, next) in &queues {
            for _ in 0..*workers {
                scope.spawn(|| {
                    loop {
                        let at = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(case) = queue.get(at) else { return };
                        if let Err(error) = run_case(case) {
                            errors.lock().unwrap().push(error);
                        }
                    }
                });
            }
        }
    });
    let errors = errors.into_inner().unwrap();
    assert!(errors.is_empty(), "{}", errors.join("\n\n"));
}

macro_rules! cases {
    ($($fault:ident: [$($must:literal),*], [$($may:literal),*];)*) => {
        &[$(Case { fault: Fault::$fault, must: &[$($must),*], may: &[$($may),*] },)*]
    };
}

/// Each faulty server fails the check of the rule it breaks, and none of
/// its neighbours but those that follow from the same fault. (One test
/// for all, so that they run side by side.)
fn each_faulty_server_fails_the_check_of_its_rule_and_no_neighbour() {
    run_cases(cases! {
        HelpExits1: ["help-exits-0"], [];
        NoVersionFlag: ["version-exits-0"], [];
        UsageErrorExits1: ["usage-errors"], [];
        UsageErrorTwoLines: ["usage-errors"], [];
        AcceptsWriteTimeout0: ["usage-errors"], [];
        AcceptsMaxConnections0: ["usage-errors"], [];
        LogBlocks: ["log-pipe-nobody-reads"], [];
        LogDiesWhenClosed: ["log-stderr-closed"], [];
        LfOnly: ["replies-end-with-crlf", "connection-limit", "max-connections-flag"], [];
        StripsAllCrs: ["lf-and-crlf-accepted"], [];
        TooLongEarly: ["too-long-once-at-the-lf"], [];
        SplitsVerbOnUnicodeSpaces: ["spaces-between-fields", "lf-and-crlf-accepted"], ["unknown-command"];
        UnicodeVerbs: ["verbs-ascii-case-only"], [];
        CountsBytes: ["text-length-counts-characters"], ["line-512-vs-513-bytes"];
        CountsUtf16: ["text-length-counts-characters"], ["line-512-vs-513-bytes"];
        CountsGraphemes: ["text-length-counts-characters"], [];
        BidiRangeFrom2029: ["text-forbidden-range-ends"], [];
        ForbidsUnprintable: ["text-forbidden-range-ends", "text-control-characters"], [];
        JavaNameCharacters: ["name-characters-unicode"], [];
        IdentifierNameCharacters: ["name-characters-unicode"], [];
        NameLengthUtf16: ["name-length-16-vs-17"], ["name-characters-unicode"];
        NamesComparedByUppercase: ["names-compared-by-to-lowercase"], [];
        NamesCaseFolded: ["names-compared-by-to-lowercase"], [];
        NamesLowercasedCharByChar: ["names-compared-by-to-lowercase"], [];
        KeepsNameAfterQuit: ["name-released-after-quit", "quit-frees-slot-and-name-at-once"], ["no-such-user", "list-content"];
        NoSuchUserBeforeTooLong: ["error-precedence"], [];
        NotConnectedBeforeSyntax: ["error-precedence"], [];
        IgnoresMaxConnections: ["max-connections-flag"], ["first-stderr-line"];
        SlotLeakOnReset: ["slot-reused-after-reset"], [];
        SlotFreedWhenClientCloses: ["quit-frees-slot-and-name-at-once"], [];
        ClosesWithoutLingering: ["quit-delivers-owed-lines-then-ends", "quit-ends-within-write-timeout", "huge-timeouts-honoured", "timeout-delivers-owed-lines-then-ends"], [];
        LingersForever: ["quit-ends-within-write-timeout", "timeout-delivers-owed-lines-then-ends"], [];
        // No write timeout, so no time to linger after the last line either.
        NoWriteTimeout: ["write-timeout-drops-stuck-recipient", "write-timeout-drops-deaf-client", "write-timeout-others-undelayed"], ["timeout-delivers-owed-lines-then-ends"];
        WriteTimeoutTripled: ["write-timeout-drops-stuck-recipient"], ["write-timeout-drops-deaf-client", "write-timeout-others-undelayed"];
        DropsAtOnce: ["write-timeout-drops-stuck-recipient"], ["write-timeout-others-undelayed"];
        GlobalWriteLock: ["write-timeout-others-undelayed"], [];
        NoLoginTimeout: ["login-timeout", "login-timeout-despite-refused-connects", "timeout-delivers-owed-lines-then-ends"], [];
        LoginClockRestartsOnLines: ["login-timeout", "login-timeout-despite-refused-connects"], ["timeout-delivers-owed-lines-then-ends"];
        LoginClockStopsAtAnyConnect: ["login-timeout-despite-refused-connects"], [];
        LoginTimeoutKeepsRunningAfterLogin: ["login-timeout-spares-logged-in"], [];
        LoginTimeout0AtOnce: ["login-timeout-0-means-never"], [];
        IdleTimeoutForLoggedInOnly: ["idle-timeout"], [];
        IdleTimeoutUsesLoginValue: ["idle-timeout", "idle-timeout-restarted-by-complete-lines", "idle-timeout-not-restarted-by-bytes"], ["idle-timeout-not-restarted-by-receive"];
        IdleClockRestartsOnBytes: ["idle-timeout-not-restarted-by-bytes"], [];
        IdleClockIgnoresBlankLines: ["idle-timeout-restarted-by-complete-lines"], [];
        IdleTimeout0AtOnce: ["idle-timeout-0-means-never"], [];
        HugeTimeoutOverflows: ["huge-timeouts-honoured"], [];
        VisibleBeforeOkConnect: ["no-receive-before-ok-connect"], [];
        ReleasesAfterOkQuit: ["quit-frees-slot-and-name-at-once"], ["name-released-after-quit", "list-content", "no-such-user"];
        FullClosedLate: ["connection-limit", "max-connections-flag"], [];
        ListsAnonymous: ["list-content"], [];
        NameTakenBeforeBadName: ["error-precedence"], [];
        RepliesLostAtHalfClose: ["half-close-gets-every-reply"], [];
        SlotLeakOnDrop: ["write-timeout-drops-stuck-recipient"], ["write-timeout-drops-deaf-client"];
        RegistryLockedWhileWriting: ["write-timeout-others-undelayed"], [];
        IdleClockRestartsOnWrites: ["idle-timeout-not-restarted-by-receive"], [];
        C0ControlsOnly: ["text-control-characters", "text-forbidden-range-ends"], [];
        LoneCrEndsLine: ["lf-and-crlf-accepted"], ["text-control-characters", "no-spoofing", "line-512-vs-513-bytes"];
        CrashesOnBlankLine: ["unknown-command"], [];
    });
}

/// A failure says what each connection sent and got (the sender's own
/// reply when its recipient got nothing), the rule in PROTOCOL.md's words
/// under its heading, the likely cause, in PROTOCOL.md's notation; the
/// summary groups the failures one cause explains; French reads French;
/// and the same fault gives the same words on every run.
fn a_failure_explains_itself_the_same_way_every_run() {
    let only = owned(&[
        "line-512-vs-513-bytes",
        "text-length-counts-characters",
        "spaces-between-fields",
        "unknown-command",
    ]);
    let again = owned(&[
        "line-512-vs-513-bytes",
        "timeout-delivers-owed-lines-then-ends",
    ]);
    // Seven runs, side by side: three to read, four to compare two by two.
    let runs = [
        (Fault::CountsBytes, &only, Lang::En),
        (Fault::SplitsVerbOnUnicodeSpaces, &only, Lang::En),
        (Fault::CountsBytes, &only, Lang::Fr),
        (Fault::CountsBytes, &again, Lang::En),
        (Fault::CountsBytes, &again, Lang::En),
        (Fault::ClosesWithoutLingering, &again, Lang::En),
        (Fault::ClosesWithoutLingering, &again, Lang::En),
    ];
    let printed: Vec<String> = std::thread::scope(|scope| {
        let runs: Vec<_> = runs
            .iter()
            .map(|(fault, only, lang)| {
                scope
                    .spawn(move || check_spawning_in(&FaultyServer(*fault), only.to_vec(), *lang).1)
            })
            .collect();
        runs.into_iter().map(|run| run.join().unwrap()).collect()
    });
    let (bytes, split, french) = (&printed[0], &printed[1], &printed[2]);

    let block = fail_block(bytes, "line-512-vs-513-bytes");
    assert!(
        block.starts_with(
            "FAIL line-512-vs-513-bytes: expected bob32 to get \"RECEIVE alice32 \" + 100 × \"😀\"; \
             bob32 got no reply within 3 s"
        ),
        "{block}"
    );
    assert!(block.contains("\n    alice32: …"), "{block}");
    assert!(
        block.contains("sent \"SEND bob32\" + 102 × \" \" + 100 × \"😀\", got \"ERR TOO_LONG"),
        "{block}"
    );
    assert!(
        block.contains("\n    rule: « minichat compte des valeurs scalaires Unicode"),
        "{block}"
    );
    assert!(
        block.contains("(PROTOCOL.md, « Textes : qu'est-ce qu'un « caractère » ? »)"),
        "{block}"
    );
    let block = fail_block(bytes, "text-length-counts-characters");
    assert!(
        block.contains("\n    likely cause: a length counted in UTF-8 bytes"),
        "{block}"
    );

    let block = fail_block(split, "spaces-between-fields");
    assert!(block.contains("sent \"PING<U+0009>\""), "{block}");
    assert!(
        split
            .contains("    spaces-between-fields, unknown-command: fields split on any whitespace"),
        "{split}"
    );

    let block = fail_block(french, "line-512-vs-513-bytes");
    assert!(
        block.starts_with(
            "FAIL line-512-vs-513-bytes: bob32 devait recevoir \"RECEIVE alice32 \" + 100 × \"😀\" ; \
             bob32 n'a rien reçu en 3 s"
        ),
        "{block}"
    );
    assert!(block.contains("\n    alice32 : …"), "{block}");
    assert!(block.contains("\n    règle : « minichat compte"), "{block}");
    let block = fail_block(french, "text-length-counts-characters");
    assert!(
        block.contains("\n    cause probable : longueur comptée en octets UTF-8"),
        "{block}"
    );
    assert!(french.contains("Causes probables"), "{french}");

    // The same words on every run: the reset of a close without
    // lingering too, whichever side sees it first.
    let fails = |printed: &str| {
        again
            .iter()
            .filter(|name| printed.contains(&format!("FAIL {name}:")))
            .map(|name| fail_block(printed, name))
            .collect::<Vec<_>>()
    };
    assert_eq!(fails(&printed[3]).len(), 1, "{}", printed[3]);
    assert_eq!(fails(&printed[3]), fails(&printed[4]));
    assert_eq!(fails(&printed[5]).len(), 1, "{}", printed[5]);
    assert_eq!(fails(&printed[5]), fails(&printed[6]));
}

/// Each likely cause is the right one, where two slips give the same
/// answer: a CR taken away by the line reader or by a split on any
/// whitespace; a close without lingering or a deadline that overflows; a
/// thread that crashed on a line (named); a log that blocks on its pipe or
/// dies when it is closed. And a check of several cases reports every case
/// that went wrong.
fn each_likely_cause_names_the_slip_that_gave_the_answer() {
    let runs: &[(Fault, &str, &[&str])] = &[
        (
            Fault::SplitsVerbOnUnicodeSpaces,
            "lf-and-crlf-accepted",
            &[
                "sent \"PING<U+000D><U+000D>\", got \"OK PING\"\n",
                "likely cause: fields split on any whitespace, tab and CR included",
            ],
        ),
        (
            Fault::StripsAllCrs,
            "lf-and-crlf-accepted",
            &["likely cause: a line reader that also ends a line at a lone CR, or strips every CR"],
        ),
        (
            Fault::LoneCrEndsLine,
            "lf-and-crlf-accepted",
            &["likely cause: a line reader that also ends a line at a lone CR"],
        ),
        (
            Fault::CrashesOnBlankLine,
            "unknown-command",
            &[
                "sent \"<U+0009>\", got the end of the stream",
                "likely cause: the server's thread for this client crashed on the line \"<U+0009>\" (",
            ],
        ),
        (
            Fault::ClosesWithoutLingering,
            "huge-timeouts-honoured",
            &[
                "FAIL huge-timeouts-honoured: with its three timeouts at 18446744073709551615 s, the server reset (RST)",
                "likely cause: the socket closed right after OK QUIT without reading what the client still sends (then quit-delivers-owed-lines-then-ends fails too",
            ],
        ),
        (
            Fault::HugeTimeoutOverflows,
            "huge-timeouts-honoured",
            &["likely cause: a deadline computed as now + timeout, which overflows"],
        ),
        (
            Fault::LogBlocks,
            "log-pipe-nobody-reads",
            &["likely cause: the log written straight to stderr (print(), System.err, eprintln!)"],
        ),
        (
            Fault::LogDiesWhenClosed,
            "log-stderr-closed",
            &["likely cause: a write to a closed stderr that raises or panics"],
        ),
        (
            // Every one of the seven bad command lines, not the first only.
            Fault::UsageErrorTwoLines,
            "usage-errors",
            &[
                "FAIL usage-errors: expected exit code 2 and one line on stderr for each bad command line; 7 of 7 got something else:",
                "--frobnicate`: got exit code 2 and 2 lines",
                "--max-connections`: got exit code 2 and 2 lines",
            ],
        ),
    ];
    let printed: Vec<String> = std::thread::scope(|scope| {
        let runs: Vec<_> = runs
            .iter()
            .map(|(fault, name, _)| {
                scope.spawn(move || check_spawning(&FaultyServer(*fault), owned(&[name])).1)
            })
            .collect();
        runs.into_iter().map(|run| run.join().unwrap()).collect()
    });
    for ((fault, name, words), printed) in runs.iter().zip(&printed) {
        let block = fail_block(printed, name);
        for words in *words {
            assert!(
                block.contains(words),
                "{fault:?}: {words:?} not in\n{block}"
            );
        }
    }
}

/// A check whose verdict depends on timing repeats its critical step: a
/// server whose race window is a few milliseconds fails 10 runs of 10,
/// and a correct one passes 10 of 10.
fn a_racy_server_fails_every_run_and_a_correct_one_passes_every_run() {
    const RUNS: usize = 10;
    let races = [
        (
            Fault::ReleasesAfterOkQuit,
            "quit-frees-slot-and-name-at-once",
        ),
        (
            Fault::VisibleBeforeOkConnect,
            "no-receive-before-ok-connect",
        ),
        // The late input is at the server before it closes: a reset, every
        // run, not only when a late line beats the close.
        (Fault::ClosesWithoutLingering, "huge-timeouts-honoured"),
    ];
    for (fault, name) in races {
        for (server, fails) in [(fault, true), (Fault::Correct, false)] {
            let runs: Vec<(bool, String)> = (0..RUNS)
                .map(|_| {
                    let (report, printed) = check_spawning(&FaultyServer(server), owned(&[name]));
                    let words = match report.failed() {
                        1 => fail_block(&printed, name),
                        _ => String::new(),
                    };
                    (report.failed() == 1, words)
                })
                .collect();
            let verdicts: Vec<bool> = runs.iter().map(|(failed, _)| *failed).collect();
            assert!(
                verdicts.iter().all(|&failed| failed == fails),
                "{server:?} on {name}: {verdicts:?}"
            );
            // The same fault in the same words, whichever round lost.
            for (_, words) in &runs[1..] {
                assert_eq!(words, &runs[0].1, "{server:?} on {name}");
            }
        }
    }
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

/// The tests above that wait (for timeouts, for replies that never come)
/// or run many servers, run side by side: one after another they take a
/// minute, side by side the time of the longest, on 2 cores. A failure
/// names the one that failed.
#[test]
fn the_long_tests_side_by_side() {
    common::side_by_side!(
        each_faulty_server_fails_the_check_of_its_rule_and_no_neighbour,
        the_faulty_server_without_a_fault_passes_every_check,
        the_binary_passes_every_check_in_spawn_mode,
        a_racy_server_fails_every_run_and_a_correct_one_passes_every_run,
        a_failure_explains_itself_the_same_way_every_run,
        each_likely_cause_names_the_slip_that_gave_the_answer,
        our_server_passes_every_check_it_can_run_while_running,
        a_first_line_worded_otherwise_fails_only_its_check,
        a_server_that_does_not_start_fails_only_the_checks_that_need_it,
    );
}
