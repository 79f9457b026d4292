//! Sequence diagrams of what the server did, read from its log: the one
//! renderer behind `minichat diagram` (Mermaid text, for notes and
//! PROTOCOL.md) and the server's live view (`--watch`, rows drawn by a
//! page). Pure: text in, text out, no I/O, so both draw the same thing.
//!
//! | step | module |
//! | --- | --- |
//! | a log line → an [`Event`] | [`event`] |
//! | events → [`Row`]s, and who is who | [`scene`] |
//! | rows → Mermaid text | [`mermaid`] |
//! | rows → JSON, for the live view | [`json`] |
//! | the few words a diagram adds, in English or French | [`words`] |

pub mod event;
pub mod json;
pub mod mermaid;
pub mod scene;
pub mod words;

pub use event::{Entry, Event};
pub use scene::{Row, Scene};
pub use words::Lang;
