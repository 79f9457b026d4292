//! The client tools: `minichat connect` and `minichat check`, and what they
//! share; and `minichat diagram`. The first two talk to any server over
//! TCP, ours or a student's, and know nothing of our server's insides: only
//! the wire format ([`crate::protocol`]). The third reads our server's log,
//! through [`crate::diagram`].
//!
//! | part | module |
//! | --- | --- |
//! | `HOST[:PORT]`, connecting with a timeout, reading a server's lines in bounded memory | [`remote`] |
//! | `minichat connect`: the interactive line client | [`connect`] |
//! | `minichat check`: the conformance suite | [`check`] |
//! | `minichat diagram`: a log to a Mermaid sequence diagram | [`diagram`] |

pub mod check;
pub mod connect;
pub mod diagram;
pub mod remote;
