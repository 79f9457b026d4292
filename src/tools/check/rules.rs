//! The rules the checks cite, in PROTOCOL.md's own words, each with the
//! heading of the PROTOCOL.md section where it is written. A failure
//! quotes its rule and names that heading, so a student finds the
//! sentence at once; a test reads PROTOCOL.md (`include_str!`) and fails
//! if a heading or a quote is not there word for word, so the two cannot
//! drift apart.
//!
//! PROTOCOL.md is in French: the quotes are too, in both languages of the
//! report (they are quotations). Its emphasis (`**`, `*`) is left out.

/// A rule of PROTOCOL.md, as a check cites it.
#[derive(Debug, PartialEq, Eq)]
pub struct Rule {
    /// The heading of the PROTOCOL.md section that says it, without `#`.
    pub section: &'static str,
    /// The rule, word for word.
    pub quote: &'static str,
}

// The headings, in PROTOCOL.md's order.
pub const PORTS: &str = "Sur quel(s) port(s) le protocole fonctionne-t-il ?";
pub const ACTIONS: &str = "Quels sont les messages/actions disponibles ?";
pub const FORMAT: &str = "Quel est le format des messages/actions ?";
pub const CASES: &str =
    "Existe-t-il des cas limites ou des cas d'erreur ? Que se passe-t-il dans ces cas ?";
pub const TRANSPORT: &str = "Transport et découpage en lignes";
pub const COMMANDS: &str = "Les commandes";
pub const SERVER_LINES: &str = "Les lignes que le serveur envoie de lui-même";
pub const ORDER: &str = "Ordre des erreurs";
pub const LIMITS: &str = "Limites et délais";
pub const NAMES: &str = "Noms";
pub const TEXTS: &str = "Textes : qu'est-ce qu'un « caractère » ?";
pub const CONNECTIONS: &str = "Connexions et délais";
pub const END: &str = "Fin d'une connexion";
pub const GUARANTEES: &str = "Garanties";

/// Every heading a rule names, in PROTOCOL.md's order (the summary and
/// the JUnit report follow it).
pub const SECTIONS: [&str; 14] = [
    PORTS,
    ACTIONS,
    FORMAT,
    CASES,
    TRANSPORT,
    COMMANDS,
    SERVER_LINES,
    ORDER,
    LIMITS,
    NAMES,
    TEXTS,
    CONNECTIONS,
    END,
    GUARANTEES,
];

const fn rule(section: &'static str, quote: &'static str) -> Rule {
    Rule { section, quote }
}

// The command line.
pub const CLI_HELP: Rule = rule(
    PORTS,
    "`minichat --help` les décrit toutes (code de sortie 0, comme `minichat --version`).",
);
pub const CLI_USAGE: Rule = rule(
    PORTS,
    "Une option inconnue, invalide ou répétée (dont `--max-connections 0` et \
     `--write-timeout 0`) est refusée : une ligne sur la sortie d'erreur, code de sortie 2.",
);
pub const CLI_FIRST_LINE: Rule = rule(
    PORTS,
    "La première ligne du serveur sur sa sortie d'erreur est toujours exactement \
     `minichat: listening on <adresse>:<port> (max <n> connections)`, avec l'adresse \
     réellement liée, écrite comme Rust affiche une `SocketAddr` (IPv6 entre crochets)",
);
pub const HUGE_TIMEOUTS: Rule = rule(
    LIMITS,
    "Un délai accepte tout nombre entier de secondes, jusqu'à 18446744073709551615, et \
     chaque garantie tient encore.",
);

// Lines.
pub const LINE_END: Rule = rule(
    TRANSPORT,
    "Une ligne par message, en UTF-8, terminée par LF. Un seul CR juste avant le LF est \
     retiré (CRLF et LF sont acceptés) ; un CR ailleurs, y compris un second, est un \
     caractère ordinaire",
);
pub const SERVER_CRLF: Rule = rule(TRANSPORT, "Toute ligne du serveur finit par CRLF.");
pub const LINE_512: Rule = rule(
    TRANSPORT,
    "Au plus 512 octets avant la fin de ligne (le CR d'un CRLF ne compte pas).",
);
pub const TOO_LONG_ONCE: Rule = rule(
    TRANSPORT,
    "Une ligne plus longue est jetée au fur et à mesure, sans être gardée en mémoire ; à \
     son LF, elle reçoit un seul `ERR TOO_LONG`, et la connexion reste ouverte.",
);
pub const BLANK: Rule = rule(
    TRANSPORT,
    "Une ligne vide ou faite d'espaces est ignorée, sans réponse",
);
pub const FIELDS: Rule = rule(
    TRANSPORT,
    "Champs séparés par un ou plusieurs espaces U+0020 (une tabulation ou une espace \
     insécable est un caractère ordinaire). Les espaces avant le verbe et après le dernier \
     champ sont sautés, sauf dans le texte de `SEND`.",
);
pub const VERBS_CASE: Rule = rule(
    TRANSPORT,
    "Les verbes ignorent la casse ASCII (`send` = `SEND`).",
);
pub const UTF8: Rule = rule(
    TRANSPORT,
    "Une ligne qui n'est pas de l'UTF-8 valide reçoit `ERR BAD_TEXT`, quel que soit son verbe.",
);
pub const ARGS: Rule = rule(
    TRANSPORT,
    "Chaque verbe a un nombre fixe d'arguments ; un de moins ou de trop : `ERR SYNTAX`",
);
pub const PIPELINE: Rule = rule(
    TRANSPORT,
    "Le client peut envoyer plusieurs lignes d'un coup : le serveur les traite et y répond \
     dans l'ordre.",
);

// The commands and the server's own lines.
pub const BEFORE_LOGIN: Rule = rule(ACTIONS, "Avant `CONNECT`, tout est permis sauf `SEND`.");
pub const CONNECT: Rule = rule(
    COMMANDS,
    "`CONNECT <nom>` : s'identifier (voir « Noms »). Succès : `OK CONNECT <nom>`. Erreurs : \
     `SYNTAX`, `ALREADY_CONNECTED`, `BAD_NAME`, `NAME_TAKEN`.",
);
pub const OK_CONNECT_FIRST: Rule = rule(
    COMMANDS,
    "Un expéditeur qui trouve ce nom attend donc derrière cette ligne : aucun `RECEIVE` ne \
     peut arriver avant `OK CONNECT`.",
);
pub const SEND: Rule = rule(
    COMMANDS,
    "Le serveur écrit `RECEIVE <expéditeur> <texte>` sur la connexion du destinataire, puis \
     répond `OK SEND <nom>`",
);
pub const SEND_TEXT: Rule = rule(
    COMMANDS,
    "le texte est le reste de la ligne après les espaces qui suivent le nom ; ses espaces \
     intérieurs et finaux sont gardés",
);
pub const NO_SUCH_USER: Rule = rule(
    COMMANDS,
    "Erreurs : `SYNTAX`, `NOT_CONNECTED`, `BAD_TEXT`, `TOO_LONG`, `NO_SUCH_USER` (aussi pour \
     un nom qui ne pourrait pas être enregistré : `SEND b*b salut`).",
);
pub const SELF_SEND: Rule = rule(
    COMMANDS,
    "S'écrire à soi-même est permis : le `RECEIVE` arrive avant le `OK SEND`.",
);
pub const LIST: Rule = rule(
    COMMANDS,
    "`OK LIST <nom> <nom> …`, les utilisateurs dont le `CONNECT` a réussi, dans un ordre \
     quelconque (le nôtre les trie sans tenir compte de la casse) ; `OK LIST` seul s'il n'y \
     en a aucun.",
);
pub const HELP: Rule = rule(COMMANDS, "`OK HELP <résumé>`, texte libre");
pub const UNKNOWN: Rule = rule(COMMANDS, "Tout autre verbe : `UNKNOWN_COMMAND`.");
pub const WELCOME: Rule = rule(
    SERVER_LINES,
    "`OK WELCOME <texte>` à l'acceptation, s'il y a moins de `--max-connections` connexions \
     ouvertes",
);
pub const FULL: Rule = rule(
    SERVER_LINES,
    "sinon `ERR FULL <raison>`, et le serveur ferme aussitôt la connexion.",
);
pub const RECEIVE: Rule = rule(
    SERVER_LINES,
    "`<expéditeur>` est le nom que le serveur connaît pour la connexion qui l'a envoyé ; \
     `<texte>` est exactement le texte envoyé.",
);
pub const PRECEDENCE: Rule = rule(
    ORDER,
    "Quand une ligne enfreint plusieurs règles, le serveur signale la première",
);

// Names and texts.
pub const NAME_CHARS: Rule = rule(
    NAMES,
    "1 à 16 caractères, chacun `_`, `-`, ou une lettre ou un chiffre de toute écriture",
);
pub const NAME_RULE: Rule = rule(
    NAMES,
    "un caractère est permis s'il est `_`, `-`, ou s'il a la propriété Unicode Alphabetic ou \
     Numeric (catégorie `Nd`, `Nl` ou `No`). C'est exactement `char::is_alphanumeric` de Rust.",
);
pub const NAME_CASE: Rule = rule(
    NAMES,
    "Uniques sans tenir compte de la casse : `Alice` bloque `alice`, `Élodie` bloque \
     `ÉLODIE`. Deux noms sont le même quand leurs minuscules Unicode complètes sont égales \
     (`to_lowercase()` en Rust, `str.lower()` en Python). `SEND` retrouve son destinataire \
     ainsi.",
);
pub const AS_REGISTERED: Rule = rule(
    NAMES,
    "`RECEIVE`, `LIST`, les `OK` et la raison de `NAME_TAKEN` montrent les noms tels qu'ils \
     se sont enregistrés",
);
pub const NAME_RELEASED: Rule = rule(
    NAMES,
    "Un nom est libéré quand sa connexion se termine, quelle qu'en soit la cause.",
);
pub const TEXT_LENGTH: Rule = rule(
    FORMAT,
    "le texte de `SEND` est tout le reste de la ligne, 1 à 100 caractères.",
);
pub const TEXT_COUNT: Rule = rule(
    TEXTS,
    "minichat compte des valeurs scalaires Unicode (les points de code, sauf les \
     surrogates) : `s.chars().count()` en Rust, `len(s)` en Python 3. Pas des octets, pas \
     des unités UTF-16.",
);
pub const TEXT_FORBIDDEN: Rule = rule(
    TEXTS,
    "Caractères interdits (`BAD_TEXT`) : les contrôles (U+0000–U+001F, U+007F–U+009F : NUL, \
     tabulation, CR, ESC…) et les forçages et isolats bidirectionnels (U+202A–U+202E, \
     U+2066–U+2069).",
);

// Connections and timeouts.
pub const SLOTS: Rule = rule(
    CONNECTIONS,
    "Toute connexion TCP ouverte compte. Sa place est libérée dès que le serveur la voit se \
     terminer, quelle qu'en soit la cause (`QUIT`, fin de flux, reset, erreur, délai, \
     expulsion).",
);
pub const LOGIN_TIMEOUT: Rule = rule(
    CONNECTIONS,
    "Délai de connexion : de l'acceptation au `CONNECT` réussi ; `PING` ou `LIST` ne \
     l'arrêtent pas.",
);
pub const IDLE: Rule = rule(
    CONNECTIONS,
    "Délai d'inactivité : l'horloge repart à chaque ligne complète (`PING`, ligne vide, \
     refusée, ou trop longue à son LF), jamais à chaque octet",
);
pub const IDLE_WRITES: Rule = rule(
    CONNECTIONS,
    "les lignes que le serveur écrit au client, `RECEIVE` compris, ne la relancent pas.",
);
pub const WRITE_TIMEOUT: Rule = rule(
    CONNECTIONS,
    "Un client qui ne lit plus ne retarde donc que ceux qui lui écrivent, chacun au plus ce \
     délai ; puis il est déconnecté (la dernière ligne qu'il reçoit peut être coupée) et son \
     nom libéré, avant que l'expéditeur ne reçoive `NO_SUCH_USER`",
);
pub const DEAF: Rule = rule(
    CONNECTIONS,
    "Un client qui ne lit pas ses propres réponses est déconnecté de même.",
);
pub const LOGIN_NEVER: Rule = rule(LIMITS, "`--login-timeout SECS` (0 = jamais)");
pub const IDLE_NEVER: Rule = rule(LIMITS, "`--idle-timeout SECS` (0 = jamais)");
pub const TIMEOUT_LINE: Rule = rule(
    SERVER_LINES,
    "`ERR TIMEOUT <raison>` : un délai de connexion ou d'inactivité a expiré ; suit la fin de \
     la connexion.",
);

// The end of a connection.
pub const FREED_FIRST: Rule = rule(
    END,
    "Le nom et la place sont libérés (la place, sauf au-delà de la borne du point 4). Un \
     client qui a lu `OK QUIT` peut se reconnecter aussitôt, sous le même nom",
);
pub const OWED: Rule = rule(
    END,
    "Les lignes dues sont écrites : les réponses aux lignes d'avant, les `RECEIVE` déjà \
     confirmés à leurs expéditeurs, puis `OK QUIT` ou `ERR TIMEOUT`, puis la fin du flux. \
     Rien ne peut suivre.",
);
pub const LINGER: Rule = rule(
    END,
    "Fermeture traînante : le serveur lit et jette ce que le client envoie encore, jusqu'à \
     ce qu'il ferme, au plus le délai d'écriture compté après la dernière ligne écrite, puis \
     ferme.",
);
pub const RESET: Rule = rule(
    END,
    "Fermer une socket dont l'entrée n'est pas lue ferait réinitialiser la connexion (reset) \
     par le système, ce qui détruit les réponses pas encore livrées.",
);
pub const HALF_CLOSE: Rule = rule(
    END,
    "Un client qui ferme seulement son côté (demi-fermeture) après ses lignes en reçoit \
     encore toutes les réponses, puis la fin du flux.",
);

// The promises.
pub const NOT_INTERLEAVED: Rule = rule(
    CASES,
    "les lignes écrites à un client ne sont jamais entremêlées",
);
pub const IN_ORDER: Rule = rule(
    CASES,
    "les messages de A vers B arrivent dans l'ordre où A les a envoyés",
);
pub const NO_SPOOFING: Rule = rule(
    CASES,
    "aucun client ne peut faire apparaître, dans un `RECEIVE`, un autre expéditeur que \
     lui-même",
);
pub const UNDELAYED: Rule = rule(
    CASES,
    "un destinataire qui ne lit plus retarde seulement ceux qui lui écrivent, chacun au plus \
     le délai d'écriture, puis il est déconnecté ; toutes les autres connexions (leurs \
     échanges, leurs réponses, l'accueil d'un nouveau venu) continuent sans attendre, même si \
     plusieurs destinataires sont bloqués à la fois",
);
pub const OWED_PROMISE: Rule = rule(
    CASES,
    "après `QUIT` ou `ERR TIMEOUT`, chaque ligne due au client lui parvient avant la fin du \
     flux, quoi que le client envoie ensuite et à quelque moment que ce soit ; la connexion \
     se termine ensuite dans le délai d'écriture, même si le client continue d'envoyer",
);
pub const LOG: Rule = rule(
    GUARANTEES,
    "Si la sortie d'erreur est fermée, pleine ou en pause (terminal suspendu, tube que \
     personne ne lit), les lignes en trop sont jetées et comptées",
);

/// Every rule above, for the test that finds each in PROTOCOL.md.
pub const ALL: [&Rule; 55] = [
    &CLI_HELP,
    &CLI_USAGE,
    &CLI_FIRST_LINE,
    &HUGE_TIMEOUTS,
    &LINE_END,
    &SERVER_CRLF,
    &LINE_512,
    &TOO_LONG_ONCE,
    &BLANK,
    &FIELDS,
    &VERBS_CASE,
    &UTF8,
    &ARGS,
    &PIPELINE,
    &BEFORE_LOGIN,
    &CONNECT,
    &OK_CONNECT_FIRST,
    &SEND,
    &SEND_TEXT,
    &NO_SUCH_USER,
    &SELF_SEND,
    &LIST,
    &HELP,
    &UNKNOWN,
    &WELCOME,
    &FULL,
    &RECEIVE,
    &PRECEDENCE,
    &NAME_CHARS,
    &NAME_RULE,
    &NAME_CASE,
    &AS_REGISTERED,
    &NAME_RELEASED,
    &TEXT_LENGTH,
    &TEXT_COUNT,
    &TEXT_FORBIDDEN,
    &SLOTS,
    &LOGIN_TIMEOUT,
    &IDLE,
    &IDLE_WRITES,
    &WRITE_TIMEOUT,
    &DEAF,
    &LOGIN_NEVER,
    &IDLE_NEVER,
    &TIMEOUT_LINE,
    &FREED_FIRST,
    &OWED,
    &LINGER,
    &RESET,
    &HALF_CLOSE,
    &NOT_INTERLEAVED,
    &IN_ORDER,
    &NO_SPOOFING,
    &UNDELAYED,
    &OWED_PROMISE,
];

/// Where `section` comes in PROTOCOL.md (for sorting; unknown ones last).
pub fn section_rank(section: &str) -> usize {
    SECTIONS
        .iter()
        .position(|s| *s == section)
        .unwrap_or(SECTIONS.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROTOCOL: &str = include_str!("../../../PROTOCOL.md");

    /// Text as compared: emphasis markers left out, every run of
    /// whitespace (a line break included) one space.
    fn plain(text: &str) -> String {
        text.replace('*', "")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn every_heading_is_a_heading_of_protocol_md_in_its_order() {
        let headings: Vec<&str> = PROTOCOL
            .lines()
            .filter(|line| line.starts_with('#'))
            .map(|line| line.trim_start_matches('#').trim())
            .collect();
        let mut last = 0;
        for section in SECTIONS {
            let at = headings.iter().position(|h| *h == section);
            assert!(at.is_some(), "PROTOCOL.md has no heading {section:?}");
            assert!(
                at >= Some(last),
                "{section:?} is out of PROTOCOL.md's order"
            );
            last = at.unwrap_or(last);
        }
    }

    /// The text of the section under `heading`, up to the next heading.
    fn section_text(heading: &str) -> String {
        let mut inside = false;
        let mut text = String::new();
        for line in PROTOCOL.lines() {
            if line.starts_with('#') {
                inside = line.trim_start_matches('#').trim() == heading;
            } else if inside {
                text.push_str(line);
                text.push('\n');
            }
        }
        plain(&text)
    }

    #[test]
    fn every_quote_is_in_protocol_md_word_for_word_under_its_heading() {
        for rule in ALL {
            assert!(SECTIONS.contains(&rule.section), "{rule:?}");
            assert!(
                section_text(rule.section).contains(&plain(rule.quote)),
                "PROTOCOL.md, « {} », does not say: {}",
                rule.section,
                rule.quote
            );
        }
    }
}
