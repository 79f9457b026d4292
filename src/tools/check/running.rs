//! Checking a server already running (`HOST[:PORT]`): a preflight first
//! (something listens, nobody else uses it), then every check it can run
//! there, one after another; the others are skipped, saying what they
//! need. After a failure, a server that no longer greets fails the
//! remaining checks at once.

use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use super::probe::{self, close_all, seconds, shown_str};
use super::{
    CheckOptions, Lab, Report, Verdict, header, not_run, record, run_check, selected, skipped, tag,
};
use crate::lang::tr;
use crate::tools::remote::{self, ServerLine, ServerLines, Target};

pub(super) fn run_on_running(
    options: &CheckOptions,
    target: &Target,
    out: &mut dyn Write,
) -> io::Result<Report> {
    let started = Instant::now();
    let mut report = Report {
        server: target.to_string(),
        ..Report::default()
    };
    let ready = target
        .resolve()
        .map_err(|e| format!("cannot resolve {target}: {e}"))
        .and_then(|addrs| preflight(&addrs, options.wait).map(|()| addrs));
    let addrs = match ready {
        Ok(addrs) => addrs,
        Err(why) => {
            writeln!(out, "cannot check {target}: {why}")?;
            report.preflight = Some(why);
            report.time = started.elapsed();
            return Ok(report);
        }
    };
    let known = &options.settings;
    let lang = options.lang;
    let what = tr!(
        lang,
        "{target} (max {} connections)",
        "{target} (au plus {} connexions)",
        known.max_connections
    );
    writeln!(out, "{}", header(options, &what))?;
    let mut down: Option<String> = None;
    for (index, check) in selected(options) {
        let outcome = if let Some(why) = check.cannot_run_on(known) {
            skipped(&check, why)
        } else if let Some(why) = &down {
            not_run(&check, lang, why)
        } else {
            let lab = Lab::new(
                options.wait,
                known.clone(),
                addrs.clone(),
                None,
                tag(index),
                lang,
            );
            run_check(&check, lab)
        };
        if matches!(outcome.verdict, Verdict::Failed(_)) && down.is_none() {
            down = still_up(&addrs, options.wait).err();
        }
        record(&mut report, outcome, lang, out)?;
    }
    report.time = started.elapsed();
    writeln!(out, "{}", report.summary(lang))?;
    Ok(report)
}

/// Before checking a running server: something must listen there, and
/// nobody else may be using it (the checks count connections and list
/// users).
fn preflight(addrs: &[SocketAddr], wait: Duration) -> Result<(), String> {
    let stream = remote::connect(addrs, wait).map_err(|e| {
        format!("nothing answers there ({e}); start the server first, or use --spawn")
    })?;
    let kept = stream
        .try_clone()
        .map_err(|e| format!("cannot use the connection: {e}"))?;
    let mut lines = ServerLines::new(stream);
    let result = idle(&mut lines, &kept, wait);
    close_all(vec![kept], Instant::now() + wait);
    result
}

/// Reads the greeting, then asks `LIST`: `ERR FULL` or users listed mean
/// the server is busy. Any other surprise is left to the checks.
fn idle(lines: &mut ServerLines, mut writer: &TcpStream, wait: Duration) -> Result<(), String> {
    let busy = "the checks need an idle server, with no other client";
    let mut next = || match lines.next_line(Some(Instant::now() + wait)) {
        Ok(Some(line)) => Ok(line.text()),
        Ok(None) => Err("it accepts connections but closes them without a word".to_owned()),
        Err(e) if remote::is_timeout(&e) => Err(format!(
            "it accepts connections but sends no greeting within {}",
            seconds(wait)
        )),
        Err(e) => Err(format!("cannot read from it: {e}")),
    };
    let greeting = next()?;
    if probe::is_error(&greeting, "FULL") {
        return Err(format!("it greets with {}: {busy}", shown_str(&greeting)));
    }
    if !greeting.starts_with("OK WELCOME") || writer.write_all(b"LIST\n").is_err() {
        return Ok(());
    }
    match next() {
        Ok(list) if list.starts_with("OK LIST ") && !list["OK LIST ".len()..].trim().is_empty() => {
            Err(format!(
                "it already has users ({}): {busy}",
                shown_str(&list)
            ))
        }
        _ => Ok(()),
    }
}

/// After a failure: does the server still greet new connections? If it
/// does not, the remaining checks fail at once instead of each waiting.
fn still_up(addrs: &[SocketAddr], wait: Duration) -> Result<(), String> {
    let stream = remote::connect(addrs, wait).map_err(|e| format!("cannot connect: {e}"))?;
    let kept = stream
        .try_clone()
        .map_err(|e| format!("cannot connect: {e}"))?;
    let mut lines = ServerLines::new(stream);
    let deadline = Instant::now() + wait;
    let greeting = lines.next_line(Some(deadline));
    close_all(vec![kept], Instant::now() + wait);
    match greeting {
        Ok(Some(ServerLine::Line { .. } | ServerLine::TooLong)) => Ok(()),
        Ok(None) => Err("cannot connect: the server closes new connections without a word".into()),
        Err(e) if remote::is_timeout(&e) => Err(format!(
            "cannot connect: the server accepts connections but sends no greeting within {}",
            seconds(wait)
        )),
        Err(e) => Err(format!("cannot connect: {e}")),
    }
}
