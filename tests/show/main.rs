//! Showing the protocol: `minichat diagram`, PROTOCOL.md's diagrams, and
//! the live view (`--watch`). One test binary, so that its tests, several
//! of which wait on a server or a browser, run side by side.
//!
//! | file | what it proves |
//! | --- | --- |
//! | `diagrams.rs` | PROTOCOL.md's diagrams are what scripted scenes against the real server draw |
//! | `mermaid.rs` | every diagram parses with Mermaid's own parser, and hostile texts come out exactly |
//! | `watch.rs` | the live view's stream, HTTP errors and bounds, over real sockets |
//! | `browser.rs` | the page in headless Chromium draws a session as it runs |

#[path = "../common/mod.rs"]
mod common;

mod browser;
mod diagrams;
mod mermaid;
mod watch;
