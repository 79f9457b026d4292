//! Who is who, and what happened between them: log [`Entry`]s in, diagram
//! [`Row`]s out.
//!
//! A [`Scene`] has one participant per connection, the server apart. It
//! keeps what the log says about each (its address, then its name) and
//! which labels name an open connection now, since the log names a
//! connection by its address until it logs in, then by its name, and a name
//! passes to another connection once its holder is gone.

use std::collections::{BTreeMap, HashMap};

use super::event::{Direction, Ending, Entry, Event};

/// A participant's number, in the order the log showed them. The server is
/// [`SERVER`].
pub type Party = usize;

/// The server, always participant 0.
pub const SERVER: Party = 0;

/// One connection, as far as the log told.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Participant {
    /// Its address (`127.0.0.1:40312`), once the log gave it.
    pub addr: Option<String>,
    /// The name it logged in as.
    pub name: Option<String>,
    /// Not ended yet (for the server: always).
    pub open: bool,
}

impl Participant {
    /// How a live view names it now: its name, or its address until then.
    pub fn label(&self) -> &str {
        self.name.as_deref().or(self.addr.as_deref()).unwrap_or("?")
    }
}

/// One row of a sequence diagram, from top to bottom. Each row is drawn on
/// the lifeline of one client, `who`, and the server's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Row {
    /// The connection was accepted: `open` of `max` slots are now taken.
    Opened { who: Party, open: usize, max: usize },
    /// A protocol line, with its exact text as the log shows it.
    Line {
        who: Party,
        direction: Direction,
        kind: LineKind,
        text: String,
    },
    /// The connection logged in: from now on it goes by its name.
    LoggedIn { who: Party },
    /// The connection ended.
    End { who: Party, why: Why },
    /// A note over these participants (none: over the server).
    Note { over: Vec<Party>, text: String },
    /// The log lost `count` lines here.
    Missing { count: u64 },
}

/// What a protocol line is, for the way it is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineKind {
    /// A line from the client.
    Command,
    /// `OK ...` from the server.
    Reply,
    /// `ERR ...` from the server.
    Error,
    /// `RECEIVE ...` from the server.
    Receive,
}

/// Why a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Why {
    Quit,
    LoginTimeout,
    IdleTimeout,
    /// The client closed its connection.
    ClosedByClient,
    /// A writer gave up on it (the log's reason, if the log said it).
    Dropped(Option<String>),
    Kicked,
    /// Reading or writing failed.
    Failed(String),
    /// `ERR FULL`.
    Refused,
}

impl Why {
    /// Whether the client, not the server, ended it.
    pub fn by_client(&self) -> bool {
        matches!(self, Why::ClosedByClient)
    }
}

/// The participants met so far, and which labels name whom now.
#[derive(Debug, Clone)]
pub struct Scene {
    participants: BTreeMap<Party, Participant>,
    /// The number the next participant gets.
    next: Party,
    /// The addresses and names of open connections.
    labels: HashMap<String, Party>,
    /// A drop (`NAME dropped: cannot write to it`, or a kick) and its
    /// session's own end (`NAME disconnected (dropped)`) are two events,
    /// logged by two threads in either order; the first draws the end, the
    /// second nothing. These wait for their second event.
    half_ended: Vec<Party>,
    /// `--max-connections`, once the log said it.
    max: Option<usize>,
}

impl Default for Scene {
    fn default() -> Self {
        let server = Participant {
            open: true,
            ..Participant::default()
        };
        Scene {
            participants: BTreeMap::from([(SERVER, server)]),
            next: SERVER + 1,
            labels: HashMap::new(),
            half_ended: Vec::new(),
            max: None,
        }
    }
}

impl Scene {
    /// Every participant met (and not forgotten), the server first.
    pub fn participants(&self) -> impl Iterator<Item = (Party, &Participant)> {
        self.participants.iter().map(|(&party, p)| (party, p))
    }

    /// Participant `party`; one with no name nor address if forgotten.
    pub fn participant(&self, party: Party) -> &Participant {
        static FORGOTTEN: Participant = Participant {
            addr: None,
            name: None,
            open: false,
        };
        self.participants.get(&party).unwrap_or(&FORGOTTEN)
    }

    /// Forgets the oldest ended participants but the last `keep`, so that
    /// a scene that lasts (the live view's) holds a bounded memory.
    pub fn forget_ended(&mut self, keep: usize) {
        let ended: Vec<Party> = self
            .participants
            .iter()
            .filter(|(_, p)| !p.open)
            .map(|(&party, _)| party)
            .collect();
        let excess = ended.len().saturating_sub(keep);
        for party in &ended[..excess] {
            self.participants.remove(party);
            self.half_ended.retain(|who| who != party);
        }
    }

    /// The connection limit, if the log said it.
    pub fn max_connections(&self) -> Option<usize> {
        self.max
    }

    /// The connections open now (they hold a slot), oldest first.
    pub fn open(&self) -> impl Iterator<Item = (Party, &Participant)> {
        self.participants().skip(1).filter(|(_, p)| p.open)
    }

    /// Reads one entry of the log; adds the rows it draws to `rows`.
    pub fn feed(&mut self, entry: &Entry<'_>, rows: &mut Vec<Row>) {
        match &entry.event {
            Event::Listening { max } => self.max = Some(*max),
            Event::Accepted { addr, open, max } => {
                self.max = Some(*max);
                let who = self.party(addr);
                rows.push(Row::Opened {
                    who,
                    open: *open,
                    max: *max,
                });
            }
            Event::LoggedIn { addr, name } => {
                let who = self.party(addr);
                if let Some(participant) = self.participants.get_mut(&who) {
                    participant.name = Some((*name).to_owned());
                }
                self.labels.insert((*name).to_owned(), who);
                rows.push(Row::LoggedIn { who });
            }
            Event::Line {
                who,
                direction,
                text,
            } => {
                let who = self.party(who);
                rows.push(Row::Line {
                    who,
                    direction: *direction,
                    kind: kind_of(*direction, text),
                    text: (*text).to_owned(),
                });
            }
            Event::Ended { who, how } => self.ended(who, *how, rows),
            Event::Dropped { name, why } => {
                self.dropped(name, Why::Dropped(Some((*why).to_owned())), rows)
            }
            Event::Kicked { who } => self.dropped(who, Why::Kicked, rows),
            Event::Refused { addr } => {
                let who = self.party(addr.unwrap_or("?"));
                self.end(who, Why::Refused, rows);
            }
            Event::LogLinesDropped { count } => rows.push(Row::Missing { count: *count }),
            Event::Note { over, text } => {
                let over = over.iter().filter_map(|label| self.named(label)).collect();
                rows.push(Row::Note {
                    over,
                    text: (*text).to_owned(),
                });
            }
            Event::Other { text } => rows.push(Row::Note {
                over: Vec::new(),
                text: (*text).to_owned(),
            }),
        }
    }

    /// A session logged its end.
    fn ended(&mut self, label: &str, how: Ending<'_>, rows: &mut Vec<Row>) {
        if how == Ending::Dropped {
            if let Some(who) = self.take_half_ended(label) {
                return self.unlabel(who); // its drop drew the end
            }
            // Its drop comes next, and will draw the end with its reason.
            let who = self.party(label);
            self.unlabel(who);
            if let Some(participant) = self.participants.get_mut(&who) {
                participant.open = false;
            }
            return self.half_ended.push(who);
        }
        let why = match how {
            Ending::Quit => Why::Quit,
            Ending::LoginTimeout => Why::LoginTimeout,
            Ending::IdleTimeout => Why::IdleTimeout,
            Ending::Closed => Why::ClosedByClient,
            Ending::Dropped => Why::Dropped(None), // handled above
            Ending::Failed(error) => Why::Failed(error.to_owned()),
        };
        let who = self.party(label);
        self.end(who, why, rows);
    }

    /// A writer dropped `label`, or the console kicked it: draws its end,
    /// unless its session's end came first (see `half_ended`).
    fn dropped(&mut self, label: &str, why: Why, rows: &mut Vec<Row>) {
        match self.take_half_ended(label) {
            Some(who) => rows.push(Row::End { who, why }),
            None => {
                let who = self.party(label);
                self.end(who, why, rows);
                self.half_ended.push(who);
            }
        }
    }

    /// The half-ended connection `label` names, taken off the list.
    fn take_half_ended(&mut self, label: &str) -> Option<Party> {
        let named = |who: &Party| {
            let p = self.participant(*who);
            p.name.as_deref() == Some(label) || p.addr.as_deref() == Some(label)
        };
        let i = self.half_ended.iter().position(named)?;
        Some(self.half_ended.remove(i))
    }

    /// Draws the end of `who`, and frees its labels for newcomers.
    fn end(&mut self, who: Party, why: Why, rows: &mut Vec<Row>) {
        if let Some(participant) = self.participants.get_mut(&who) {
            participant.open = false;
        }
        self.unlabel(who);
        rows.push(Row::End { who, why });
    }

    /// Frees the labels of `who` for newcomers.
    fn unlabel(&mut self, who: Party) {
        self.labels.retain(|_, party| *party != who);
    }

    /// The open connection that `label` names, or else the last one it
    /// named (a note may follow a connection's end).
    fn named(&self, label: &str) -> Option<Party> {
        self.labels.get(label).copied().or_else(|| {
            let named = |p: &Participant| {
                p.name.as_deref() == Some(label) || p.addr.as_deref() == Some(label)
            };
            let mut all = self.participants.iter().rev();
            all.find(|(_, p)| named(p)).map(|(&party, _)| party)
        })
    }

    /// The open connection that `label` names, or a new participant: one
    /// the log shows for the first time (a log cut from its beginning, or
    /// a line logged just after its connection's end).
    fn party(&mut self, label: &str) -> Party {
        if let Some(&who) = self.labels.get(label) {
            return who;
        }
        let is_address = label.contains(':');
        let who = self.next;
        self.next += 1;
        self.participants.insert(
            who,
            Participant {
                addr: is_address.then(|| label.to_owned()),
                name: (!is_address).then(|| label.to_owned()),
                open: true,
            },
        );
        self.labels.insert(label.to_owned(), who);
        who
    }
}

/// A line from the client, or the kind of reply the server sent.
fn kind_of(direction: Direction, text: &str) -> LineKind {
    match direction {
        Direction::In => LineKind::Command,
        Direction::Out if text.starts_with("ERR ") => LineKind::Error,
        Direction::Out if text.starts_with("RECEIVE ") => LineKind::Receive,
        Direction::Out => LineKind::Reply,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagram::event::parse;

    /// Feeds log lines (timestamps added) to a new scene.
    fn scene(lines: &[&str]) -> (Scene, Vec<Row>) {
        let mut scene = Scene::default();
        let mut rows = Vec::new();
        for line in lines {
            let line = match line.starts_with("note") || line.starts_with("minichat:") {
                true => line.to_string(),
                false => format!("2026-11-24T16:20:05Z {line}"),
            };
            scene.feed(&parse(&line).unwrap(), &mut rows);
        }
        (scene, rows)
    }

    #[test]
    fn a_connection_goes_by_its_address_then_by_its_name() {
        let (scene, rows) = scene(&[
            "127.0.0.1:5 accepted (1/5 connections)",
            "127.0.0.1:5 > CONNECT alice",
            "127.0.0.1:5 logged in as alice (1 logged in)",
            "alice < OK CONNECT alice",
            "alice left (QUIT)",
        ]);
        let alice = scene.participant(1);
        assert_eq!(alice.addr.as_deref(), Some("127.0.0.1:5"));
        assert_eq!(alice.label(), "alice");
        assert!(!alice.open);
        assert_eq!(scene.participants().count(), 2);
        assert_eq!(rows.len(), 5);
        assert_eq!(
            rows[3],
            Row::Line {
                who: 1,
                direction: Direction::Out,
                kind: LineKind::Reply,
                text: "OK CONNECT alice".into()
            }
        );
        assert_eq!(
            rows[4],
            Row::End {
                who: 1,
                why: Why::Quit
            }
        );
    }

    #[test]
    fn a_name_passes_to_the_next_connection_once_its_holder_is_gone() {
        let (scene, rows) = scene(&[
            "127.0.0.1:5 logged in as bob (1 logged in)",
            "bob dropped: cannot write to it (timed out)",
            "127.0.0.1:6 logged in as bob (1 logged in)",
            "bob < OK CONNECT bob",
            // The first bob's session ends after the second logged in.
            "bob disconnected (dropped)",
            "bob > PING",
        ]);
        assert_eq!(scene.participants().count(), 3);
        let whose: Vec<Party> = rows
            .iter()
            .filter_map(|row| match row {
                Row::Line { who, .. } | Row::End { who, .. } => Some(*who),
                _ => None,
            })
            .collect();
        // The drop ends the first; its session's own end draws nothing.
        assert_eq!(whose, [1, 2, 2]);
        assert!(scene.participant(2).open);
    }

    #[test]
    fn a_drop_draws_the_same_whichever_of_its_two_events_comes_first() {
        let drop_first = [
            "127.0.0.1:5 logged in as bob (1 logged in)",
            "bob dropped: cannot write to it (timed out)",
            "bob disconnected (dropped)",
            "127.0.0.1:6 logged in as bob (1 logged in)",
        ];
        let end_first = [drop_first[0], drop_first[2], drop_first[1], drop_first[3]];
        let (first, rows) = scene(&drop_first);
        let (second, same_rows) = scene(&end_first);
        assert_eq!(rows, same_rows);
        assert_eq!(
            rows[1],
            Row::End {
                who: 1,
                why: Why::Dropped(Some("timed out".into()))
            }
        );
        for scene in [first, second] {
            let open: Vec<Party> = scene.open().map(|(party, _)| party).collect();
            assert_eq!(open, [2]);
        }
    }

    #[test]
    fn a_kick_ends_the_connection_at_its_address() {
        let (scene, rows) = scene(&[
            "127.0.0.1:5 logged in as eve (1 logged in)",
            "eve (127.0.0.1:5) kicked by the console",
            "eve disconnected (dropped)",
        ]);
        assert_eq!(
            rows[1..],
            [Row::End {
                who: 1,
                why: Why::Kicked
            }]
        );
        assert_eq!(scene.open().count(), 0);
    }

    #[test]
    fn notes_go_over_open_connections_and_the_rest_over_the_server() {
        let (_, rows) = scene(&[
            "127.0.0.1:5 logged in as bob (1 logged in)",
            "note over bob, nobody: bob stops reading",
            "127.0.0.1:5 disconnected (connection closed)",
            "note over bob: bob is gone",
            "accept failed: Too many open files (os error 24)",
            "3 log lines dropped",
            "127.0.0.1:9 refused: server full",
        ]);
        assert_eq!(
            rows[1..],
            [
                Row::Note {
                    over: vec![1],
                    text: "bob stops reading".into()
                },
                Row::End {
                    who: 1,
                    why: Why::ClosedByClient
                },
                Row::Note {
                    over: vec![1],
                    text: "bob is gone".into()
                },
                Row::Note {
                    over: vec![],
                    text: "accept failed: Too many open files (os error 24)".into()
                },
                Row::Missing { count: 3 },
                Row::End {
                    who: 2,
                    why: Why::Refused
                },
            ]
        );
    }

    #[test]
    fn slots_are_the_open_connections() {
        let (scene, _) = scene(&[
            "minichat: listening on 0.0.0.0:1234 (max 3 connections)",
            "127.0.0.1:5 accepted (1/3 connections)",
            "127.0.0.1:6 accepted (2/3 connections)",
            "127.0.0.1:6 logged in as bob (1 logged in)",
            "127.0.0.1:5 disconnected (connection closed)",
        ]);
        assert_eq!(scene.max_connections(), Some(3));
        let open: Vec<&str> = scene.open().map(|(_, p)| p.label()).collect();
        assert_eq!(open, ["bob"]);
    }

    #[test]
    fn a_lasting_scene_forgets_the_oldest_ended_connections() {
        let (mut scene, _) = scene(&[
            "127.0.0.1:5 accepted (1/5 connections)",
            "127.0.0.1:6 accepted (2/5 connections)",
            "127.0.0.1:5 disconnected (connection closed)",
            "127.0.0.1:7 accepted (2/5 connections)",
            "127.0.0.1:6 disconnected (connection closed)",
        ]);
        scene.forget_ended(1);
        let kept: Vec<Party> = scene.participants().map(|(party, _)| party).collect();
        assert_eq!(kept, [SERVER, 2, 3]);
        assert_eq!(scene.participant(1).label(), "?");
    }
}
