//! A pseudo-terminal, to run a child process whose standard input is a
//! terminal (`std::io::IsTerminal` says yes), as when a person types:
//! the test types on one end, the child reads the other. Linux only (the
//! flag values below are Linux's); std has no API for it.

use std::ffi::CStr;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::process::Stdio;
use std::thread;

const O_RDWR: i32 = 0o2;
/// Opening a terminal must not make it the test's controlling terminal.
const O_NOCTTY: i32 = 0o400;

unsafe extern "C" {
    fn posix_openpt(flags: i32) -> i32;
    fn grantpt(fd: i32) -> i32;
    fn unlockpt(fd: i32) -> i32;
    fn ptsname_r(fd: i32, buf: *mut std::ffi::c_char, len: usize) -> i32;
}

/// The keyboard side of a pseudo-terminal.
pub struct Terminal {
    keyboard: File,
}

/// Ctrl-D: at the start of a line, the end of input for whoever reads the
/// terminal.
pub const CTRL_D: &[u8] = b"\x04";

impl Terminal {
    /// Opens a pseudo-terminal; returns its keyboard side, and its other
    /// side to give a child as standard input.
    pub fn open() -> (Terminal, Stdio) {
        // SAFETY: plain calls on a descriptor we own; each result is
        // checked, and `File` takes ownership of the descriptor.
        let keyboard = unsafe {
            let fd = posix_openpt(O_RDWR | O_NOCTTY);
            assert!(fd >= 0, "posix_openpt: {}", io::Error::last_os_error());
            let keyboard = File::from_raw_fd(fd);
            assert_eq!(grantpt(fd), 0, "grantpt: {}", io::Error::last_os_error());
            assert_eq!(unlockpt(fd), 0, "unlockpt: {}", io::Error::last_os_error());
            keyboard
        };
        let mut name = [0 as std::ffi::c_char; 128];
        // SAFETY: the buffer is writable for its whole length.
        let named = unsafe { ptsname_r(keyboard.as_raw_fd(), name.as_mut_ptr(), name.len()) };
        assert_eq!(named, 0, "ptsname_r failed");
        // SAFETY: ptsname_r wrote a NUL-terminated string into `name`.
        let path = unsafe { CStr::from_ptr(name.as_ptr()) }
            .to_str()
            .expect("a terminal's name is ASCII")
            .to_owned();
        let screen = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(O_NOCTTY)
            .open(&path)
            .expect("open the terminal");
        // The terminal echoes what is typed: read it away, so that its
        // buffer never fills. (The read fails once no process holds the
        // other side.)
        let mut echo = keyboard.try_clone().expect("clone the terminal");
        thread::spawn(move || io::copy(&mut echo, &mut io::sink()));
        (Terminal { keyboard }, Stdio::from(screen))
    }

    /// Types `keys`, as a person would.
    pub fn type_keys(&mut self, keys: &[u8]) {
        self.keyboard.write_all(keys).expect("type on the terminal");
    }
}
