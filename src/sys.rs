//! The two socket options that std has no API for, set through the C
//! library on Linux: the size of a socket's send and receive buffers.
//! Shared by the server (which bounds what a client that does not read can
//! cost it) and the checker (which plays such a client). Elsewhere, the
//! system's own sizing stays.

use std::io;
use std::net::TcpStream;

/// Sets the socket's send buffer (`SO_SNDBUF`) to `bytes` (Linux reserves
/// twice that, for its bookkeeping).
pub(crate) fn set_send_buffer(stream: &TcpStream, bytes: i32) -> io::Result<()> {
    linux::set_option(stream, linux::SO_SNDBUF, bytes)
}

/// Sets the socket's receive buffer (`SO_RCVBUF`) to `bytes`. Before the
/// connection is made, this bounds the window offered in the handshake.
pub(crate) fn set_receive_buffer(stream: &TcpStream, bytes: i32) -> io::Result<()> {
    linux::set_option(stream, linux::SO_RCVBUF, bytes)
}

#[cfg(all(
    target_os = "linux",
    not(any(target_arch = "mips", target_arch = "mips64", target_arch = "sparc64"))
))]
mod linux {
    use std::io;
    use std::net::TcpStream;
    use std::os::fd::AsRawFd;

    const SOL_SOCKET: i32 = 1;
    pub(super) const SO_SNDBUF: i32 = 7;
    pub(super) const SO_RCVBUF: i32 = 8;

    unsafe extern "C" {
        /// `int setsockopt(int fd, int level, int name, const void *value,
        /// socklen_t length)`.
        fn setsockopt(fd: i32, level: i32, name: i32, value: *const i32, length: u32) -> i32;
    }

    pub(super) fn set_option(stream: &TcpStream, name: i32, value: i32) -> io::Result<()> {
        // SAFETY: the descriptor is the stream's, open for the whole call,
        // and the value is a live `i32` whose size is passed.
        let done = unsafe { setsockopt(stream.as_raw_fd(), SOL_SOCKET, name, &value, 4) };
        match done {
            0 => Ok(()),
            _ => Err(io::Error::last_os_error()),
        }
    }
}

#[cfg(not(all(
    target_os = "linux",
    not(any(target_arch = "mips", target_arch = "mips64", target_arch = "sparc64"))
)))]
mod linux {
    use std::io;
    use std::net::TcpStream;

    pub(super) const SO_SNDBUF: i32 = 0;
    pub(super) const SO_RCVBUF: i32 = 0;

    pub(super) fn set_option(_: &TcpStream, _: i32, _: i32) -> io::Result<()> {
        Ok(())
    }
}
