//! What one check works with: the server's address and settings, user
//! names unique to the check, the connections it opens (closed by the
//! runner when the check ends, however it ends) and the journal of what
//! they sent and got.

use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::journal::Journal;
use super::launch::Launcher;
use super::probe::{self, Buffer, Failure, Probe};
use super::settings::Settings;
use crate::lang::{Lang, tr};

/// Everything one check works with.
pub struct Lab<'a> {
    wait: Duration,
    settings: Settings,
    /// The server's addresses (none for the command-line checks, which
    /// start their own programs).
    addrs: Vec<SocketAddr>,
    /// In spawn mode, how to start the server (for the command-line checks).
    launcher: Option<&'a dyn Launcher>,
    /// Digits unique to this check in this run, appended to user names so
    /// that checks never collide; the same on every run, so that a fault
    /// is reported in the same words every time.
    tag: String,
    lang: Lang,
    opened: Vec<TcpStream>,
    journal: Arc<Journal>,
}

impl<'a> Lab<'a> {
    pub fn new(
        wait: Duration,
        settings: Settings,
        addrs: Vec<SocketAddr>,
        launcher: Option<&'a dyn Launcher>,
        tag: String,
        lang: Lang,
    ) -> Lab<'a> {
        Lab {
            wait,
            settings,
            addrs,
            launcher,
            tag,
            lang,
            opened: Vec::new(),
            journal: Arc::default(),
        }
    }

    /// The wait for each expected line.
    pub fn wait(&self) -> Duration {
        self.wait
    }

    /// The language of the report.
    pub fn lang(&self) -> Lang {
        self.lang
    }

    /// What the checker knows of the server's settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The way to start the server under test (spawn mode only).
    pub fn launcher(&self) -> Result<&'a dyn Launcher, Failure> {
        self.launcher.ok_or_else(|| {
            Failure::new(self.lang.pick(
                "this check needs --spawn",
                "cette vérification demande --spawn",
            ))
        })
    }

    /// `base` made unique to this check: `alice` becomes `alice07`.
    /// Digits only, so upper- and lower-case forms stay the same name.
    pub fn name(&self, base: &str) -> String {
        format!("{base}{}", self.tag)
    }

    /// `connection 3` (`connexion 3` in French): a connection that has
    /// no user name.
    pub fn nth(&self, n: usize) -> String {
        tr!(self.lang, "connection {n}", "connexion {n}")
    }

    /// Connects without reading the greeting.
    pub fn connect_raw(&mut self, label: &str) -> Result<Probe, Failure> {
        self.dial(label, Buffer::Usual)
    }

    fn dial(&mut self, label: &str, buffer: Buffer) -> Result<Probe, Failure> {
        Probe::connect(
            &self.addrs,
            self.wait,
            label.to_owned(),
            self.lang,
            Arc::clone(&self.journal),
            &mut self.opened,
            buffer,
        )
    }

    /// Connects to `addr` (a server the check started itself), without
    /// reading the greeting.
    pub fn connect_to(&mut self, addr: SocketAddr, label: &str) -> Result<Probe, Failure> {
        Probe::connect(
            &[addr],
            self.wait,
            label.to_owned(),
            self.lang,
            Arc::clone(&self.journal),
            &mut self.opened,
            Buffer::Usual,
        )
    }

    /// Connects and requires `OK WELCOME`. An `ERR FULL` is retried until
    /// the wait runs out: a server frees a slot when *it* sees the close of
    /// the previous check's connections, which may be a moment later.
    pub fn connect(&mut self, label: &str) -> Result<Probe, Failure> {
        let deadline = Instant::now() + self.wait;
        self.connect_when_free(label, deadline)
    }

    /// Retries a connection refused with `ERR FULL` until `deadline` (not
    /// at all if it has passed).
    pub fn connect_when_free(&mut self, label: &str, deadline: Instant) -> Result<Probe, Failure> {
        loop {
            let mut probe = self.connect_raw(label)?;
            let line = probe.line("\"OK WELCOME …\"")?;
            if line.starts_with("OK WELCOME") {
                return Ok(probe);
            }
            if !probe::is_error(&line, "FULL") || Instant::now() >= deadline {
                return Err(probe.mismatch("\"OK WELCOME …\"", &line));
            }
            // Give the server a moment to see the closes it has not seen yet.
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Connects, then logs in as `name`.
    pub fn login(&mut self, name: &str) -> Result<Probe, Failure> {
        let mut probe = self.connect(name)?;
        probe.ask(&format!("CONNECT {name}"), &format!("OK CONNECT {name}"))?;
        Ok(probe)
    }

    /// [`Lab::login`] for a client that will never read: its receive
    /// buffer is small, so that the server finds it full soon.
    pub fn login_deaf(&mut self, name: &str) -> Result<Probe, Failure> {
        let mut probe = self.dial(name, Buffer::Small)?;
        let line = probe.line("\"OK WELCOME …\"")?;
        if !line.starts_with("OK WELCOME") {
            return Err(probe.mismatch("\"OK WELCOME …\"", &line));
        }
        probe.ask(&format!("CONNECT {name}"), &format!("OK CONNECT {name}"))?;
        Ok(probe)
    }

    /// Ends `probe`'s connection with a reset (RST) rather than a close:
    /// asks for a reply, waits until its bytes have arrived, then closes
    /// the socket without reading them, which makes the system reset the
    /// connection.
    pub fn reset(&mut self, mut probe: Probe) -> Result<(), Failure> {
        let local = probe.local_addr()?;
        probe.send("PING")?;
        probe.wait_for_bytes()?;
        // The runner's handle on this socket would keep it open.
        self.opened
            .retain(|stream| stream.local_addr().ok() != Some(local));
        drop(probe);
        Ok(())
    }

    /// Leaves the connection `label` out of a later failure's exchanges
    /// (it ended as it should, and played no part).
    pub fn forget(&self, label: &str) {
        self.journal.forget(label);
    }

    /// What each connection sent and got, for a failure.
    pub fn exchanges(&self) -> Vec<String> {
        self.journal.exchanges(self.lang)
    }

    /// Closes every connection the check opened, and waits until
    /// `deadline` for the server to close them too.
    pub fn close(self, deadline: Instant) {
        probe::close_all(self.opened, deadline);
    }
}
