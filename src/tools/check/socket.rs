//! A connection whose receive buffer is small from its first byte, for
//! the checks of a client that never reads: a server writing to it finds
//! its socket full after a few KB, not after the megabytes that the
//! system's buffers grow to (its receive buffer on this side, its send
//! buffer on the server's, which grows with the window this side offers).
//! Filling those is what took time, and most of a machine's CPU.
//!
//! The buffer must be set before the connection is made (the window is
//! offered in the handshake), which std cannot do: the socket is made
//! with the C library here (Linux). Elsewhere, an ordinary connection.

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// The receive buffer asked for (the system doubles it for its books).
const SMALL_BUFFER: i32 = 8 * 1024;

/// Connects to `addr` with a small receive buffer.
#[cfg(target_os = "linux")]
pub fn connect_small(addr: SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
    use std::ffi::{c_int, c_void};
    use std::os::fd::FromRawFd;

    unsafe extern "C" {
        /// `int socket(int domain, int type, int protocol)`.
        fn socket(domain: c_int, kind: c_int, protocol: c_int) -> c_int;
        /// `int connect(int fd, const struct sockaddr *addr, socklen_t length)`.
        fn connect(fd: c_int, addr: *const c_void, length: u32) -> c_int;
    }
    const AF_INET: c_int = 2;
    const AF_INET6: c_int = 10;
    const SOCK_STREAM_CLOEXEC: c_int = 1 | 0o2000000;

    /// `struct sockaddr_in`.
    #[repr(C)]
    struct V4 {
        family: u16,
        port: [u8; 2],
        addr: [u8; 4],
        zero: [u8; 8],
    }
    /// `struct sockaddr_in6`.
    #[repr(C)]
    struct V6 {
        family: u16,
        port: [u8; 2],
        flowinfo: u32,
        addr: [u8; 16],
        scope_id: u32,
    }

    let domain = if addr.is_ipv4() { AF_INET } else { AF_INET6 };
    // SAFETY: a plain system call with constant arguments.
    let fd = unsafe { socket(domain, SOCK_STREAM_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a socket just made and owned by nothing else; the
    // stream closes it when dropped, on every path below.
    let stream = unsafe { TcpStream::from_raw_fd(fd) };
    // A failure leaves the system's buffer, which only makes a check slower.
    let _ = crate::sys::set_receive_buffer(&stream, SMALL_BUFFER);
    let port = addr.port().to_be_bytes();
    // SAFETY: each address is a live, fully initialised C struct whose
    // size is passed; `fd` is open (owned by `stream`).
    let connected = match addr {
        SocketAddr::V4(v4) => {
            let sa = V4 {
                family: AF_INET as u16,
                port,
                addr: v4.ip().octets(),
                zero: [0; 8],
            };
            unsafe { connect(fd, (&raw const sa).cast(), size_of::<V4>() as u32) }
        }
        SocketAddr::V6(v6) => {
            let sa = V6 {
                family: AF_INET6 as u16,
                port,
                flowinfo: v6.flowinfo(),
                addr: v6.ip().octets(),
                scope_id: v6.scope_id(),
            };
            unsafe { connect(fd, (&raw const sa).cast(), size_of::<V6>() as u32) }
        }
    };
    if connected != 0 {
        return Err(io::Error::last_os_error());
    }
    stream.set_nodelay(true)?;
    // The connect above has no timeout of its own: it is only made to an
    // address the check has just reached, where the system answers at once.
    let _ = timeout;
    Ok(stream)
}

#[cfg(not(target_os = "linux"))]
pub fn connect_small(addr: SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
    crate::tools::remote::connect(&[addr], timeout)
}
