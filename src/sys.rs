//! What std has no API for, through the C library on Linux (on the
//! architectures whose constants are the generic ones): the size of a
//! socket's send and receive buffers, and how much of what was written to
//! it the peer has not acknowledged yet. Shared by the server (which
//! bounds what a client that does not read can cost it, and lingers until
//! its last lines are delivered) and the checker (which plays a client
//! that does not read). Elsewhere, the system's own sizing stays, and the
//! unacknowledged bytes are unknown.

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

/// How many bytes written to the socket its peer has not acknowledged yet
/// (`ioctl(SIOCOUTQ)`, the end of stream included): 0 once everything has
/// reached the peer's system. `None` where it cannot be known.
pub(crate) fn unacknowledged_bytes(stream: &TcpStream) -> Option<u32> {
    linux::unacknowledged(stream)
}

#[cfg(all(
    target_os = "linux",
    any(
        target_arch = "x86",
        target_arch = "x86_64",
        target_arch = "arm",
        target_arch = "aarch64",
        target_arch = "riscv64",
        target_arch = "loongarch64",
        target_arch = "s390x"
    )
))]
mod linux {
    use std::io;
    use std::net::TcpStream;
    use std::os::fd::AsRawFd;

    const SOL_SOCKET: i32 = 1;
    pub(super) const SO_SNDBUF: i32 = 7;
    pub(super) const SO_RCVBUF: i32 = 8;
    const SIOCOUTQ: u64 = 0x5411;

    unsafe extern "C" {
        /// `int setsockopt(int fd, int level, int name, const void *value,
        /// socklen_t length)`.
        fn setsockopt(fd: i32, level: i32, name: i32, value: *const i32, length: u32) -> i32;
        /// `int ioctl(int fd, unsigned long request, int *value)`.
        fn ioctl(fd: i32, request: u64, value: *mut i32) -> i32;
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

    pub(super) fn unacknowledged(stream: &TcpStream) -> Option<u32> {
        let mut bytes: i32 = 0;
        // SAFETY: the descriptor is the stream's, open for the whole call,
        // and SIOCOUTQ writes one `int` into the live `bytes`.
        let done = unsafe { ioctl(stream.as_raw_fd(), SIOCOUTQ, &mut bytes) };
        match done {
            0 => u32::try_from(bytes).ok(),
            _ => None,
        }
    }
}

#[cfg(not(all(
    target_os = "linux",
    any(
        target_arch = "x86",
        target_arch = "x86_64",
        target_arch = "arm",
        target_arch = "aarch64",
        target_arch = "riscv64",
        target_arch = "loongarch64",
        target_arch = "s390x"
    )
)))]
mod linux {
    use std::io;
    use std::net::TcpStream;

    pub(super) const SO_SNDBUF: i32 = 0;
    pub(super) const SO_RCVBUF: i32 = 0;

    pub(super) fn set_option(_: &TcpStream, _: i32, _: i32) -> io::Result<()> {
        Ok(())
    }

    pub(super) fn unacknowledged(_: &TcpStream) -> Option<u32> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    #[cfg(target_os = "linux")]
    #[test]
    fn unacknowledged_bytes_fall_to_zero_once_the_peer_has_them() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        server.write_all(b"hello\r\n").unwrap();
        let mut got = [0; 7];
        client.read_exact(&mut got).unwrap();
        // Loopback acknowledges at once; the count is read once it has.
        let mut left = unacknowledged_bytes(&server);
        for _ in 0..1000 {
            if left == Some(0) {
                break;
            }
            std::thread::yield_now();
            left = unacknowledged_bytes(&server);
        }
        assert_eq!(left, Some(0));
    }
}
