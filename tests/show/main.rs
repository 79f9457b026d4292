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

/// The tests that wait (for a browser, for the view's request timeout, for
/// Node, for a login timeout) run side by side: one after another they
/// would add up on 2 cores.
#[test]
fn the_waiting_tests_side_by_side() {
    common::side_by_side!(
        browser::the_page_draws_a_session_as_it_happens,
        watch::the_page_and_its_script_are_served_and_bad_requests_get_clear_errors,
        mermaid::every_diagram_parses_and_hostile_texts_come_out_exactly,
        diagrams::login_timeout,
    );
}
