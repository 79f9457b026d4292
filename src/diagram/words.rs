//! The few words a diagram adds to the protocol's lines, in English (the
//! default) or in French (PROTOCOL.md's diagrams): the server's name, and
//! what happens to connections, which is not a line of the protocol and is
//! written in parentheses.

use super::scene::Why;

pub use crate::lang::Lang;

/// The diagram's words, in each language (methods of [`Lang`], so that a
/// renderer writes `lang.server()`).
impl Lang {
    /// The server's lifeline.
    pub fn server(self) -> &'static str {
        match self {
            Lang::En => "server",
            Lang::Fr => "serveur",
        }
    }

    /// A connection accepted, with the slots now taken.
    pub fn opened(self, open: usize, max: usize) -> String {
        match self {
            Lang::En => format!("(connects: {open}/{max} slots taken)"),
            Lang::Fr => format!("(se connecte : {open}/{max} places prises)"),
        }
    }

    /// A connection's end, as the side that ends it says it.
    pub fn end(self, why: &Why) -> String {
        match (self, why) {
            (Lang::En, Why::Quit) => "(closes the connection after QUIT)".into(),
            (Lang::Fr, Why::Quit) => "(ferme la connexion après QUIT)".into(),
            (Lang::En, Why::LoginTimeout) => "(closes the connection: no CONNECT in time)".into(),
            (Lang::Fr, Why::LoginTimeout) => "(ferme la connexion : pas de CONNECT à temps)".into(),
            (Lang::En, Why::IdleTimeout) => "(closes the connection: silent too long)".into(),
            (Lang::Fr, Why::IdleTimeout) => "(ferme la connexion : silence trop long)".into(),
            (Lang::En, Why::ClosedByClient) => "(closes the connection)".into(),
            (Lang::Fr, Why::ClosedByClient) => "(ferme la connexion)".into(),
            (Lang::En, Why::Dropped(Some(error))) => {
                format!("(drops the connection: cannot write to it, {error})")
            }
            (Lang::Fr, Why::Dropped(Some(error))) => {
                format!("(coupe la connexion : écriture impossible, {error})")
            }
            (Lang::En, Why::Dropped(None)) => "(drops the connection)".into(),
            (Lang::Fr, Why::Dropped(None)) => "(coupe la connexion)".into(),
            (Lang::En, Why::Kicked) => "(closes the connection: kicked by the console)".into(),
            (Lang::Fr, Why::Kicked) => "(ferme la connexion : expulsé par la console)".into(),
            (Lang::En, Why::Failed(error)) => format!("(connection lost: {error})"),
            (Lang::Fr, Why::Failed(error)) => format!("(connexion perdue : {error})"),
            (Lang::En, Why::Refused) => "(closes the connection: server full)".into(),
            (Lang::Fr, Why::Refused) => "(ferme la connexion : serveur plein)".into(),
        }
    }

    /// The text a wire line is shown with: itself, or what it is if there
    /// is nothing to show (empty, or only spaces).
    pub fn line(self, text: &str) -> String {
        match text.trim_matches(' ') {
            "" => self.blank_line(text.len()),
            _ => text.to_owned(),
        }
    }

    fn blank_line(self, spaces: usize) -> String {
        match (self, spaces) {
            (Lang::En, 0) => "(empty line)".into(),
            (Lang::Fr, 0) => "(ligne vide)".into(),
            (Lang::En, n) => format!("(a line of {n} spaces)"),
            (Lang::Fr, n) => format!("(une ligne de {n} espaces)"),
        }
    }

    /// Lines the log lost.
    pub fn missing(self, count: u64) -> String {
        match self {
            Lang::En => format!("({count} log lines lost here)"),
            Lang::Fr => format!("({count} lignes du journal perdues ici)"),
        }
    }

    /// The label of a loop: rows repeated `count` times.
    pub fn times(self, count: usize) -> String {
        match self {
            Lang::En => format!("{count} times"),
            Lang::Fr => format!("{count} fois"),
        }
    }

    /// What `--max-lines` left out.
    pub fn cut(self, count: usize) -> String {
        match self {
            Lang::En => format!("({count} more rows not shown: --max-lines)"),
            Lang::Fr => format!("({count} lignes de plus, non montrées : --max-lines)"),
        }
    }
}
