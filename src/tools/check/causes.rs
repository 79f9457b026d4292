//! Likely causes: the naive implementations a failure's answer matches.
//! A check that sees such an answer names the cause in one line, and the
//! summary groups the failures one cause explains, so that a student
//! fixes one slip instead of chasing three failures.

use crate::lang::{Lang, tr};

/// A known slip, named after the code that makes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Cause {
    /// `str.split()`, `split("\\s+")`, `strip()`: any whitespace separates.
    SplitOnAnyWhitespace,
    /// A line reader that also ends lines at a lone CR, or strips every CR.
    LoneCrEndsLine,
    /// Verbs compared after a Unicode case mapping.
    UnicodeVerbCase,
    /// Lengths counted in UTF-8 bytes.
    LengthInBytes,
    /// Lengths counted in UTF-16 units.
    LengthInUtf16,
    /// Lengths counted in graphemes, or after normalisation.
    LengthInGraphemes,
    /// `str.isalnum`, `isLetterOrDigit`, `\w` or identifier rules for names.
    NameCharacterTest,
    /// Names compared by case folding, upper case, or char by char.
    CaseFolding,
    /// Only C0 controls (`ord(c) < 32`) refused in a text.
    C0ControlsOnly,
    /// Bidirectional controls not refused.
    BidiAllowed,
    /// Blocking writes without a timeout.
    NoWriteTimeout,
    /// A lock held while writing to a socket.
    LockAcrossWrite,
    /// A socket closed without reading what the client still sends.
    NoLingeringClose,
    /// The name or slot freed after the last line is written, not before.
    ReleasedAfterLastLine,
    /// One clock for the login and idle timeouts.
    OneClock,
    /// Timeouts computed by an addition that overflows.
    DeadlineOverflow,
    /// With huge timeouts, the connection reset after `OK QUIT`: no
    /// lingering at all, or a lingering deadline that overflows.
    NoLingeringOrHugeDeadline,
    /// The connection's thread ended by an uncaught error on a line.
    ThreadCrashed,
    /// The log written straight to a stderr that nobody reads.
    LogBlocks,
    /// A write to a closed stderr that raises or panics.
    LogDiesWhenClosed,
}

impl Cause {
    /// The cause in one line, naming the code that makes it.
    pub fn describe(self, lang: Lang) -> String {
        use Cause::*;
        let words = match (self, lang) {
            (SplitOnAnyWhitespace, Lang::En) => {
                "fields split on any whitespace, tab and CR included (Python's str.split() \
                 or strip(), Java's split(\"\\\\s+\") or trim()): only U+0020 separates"
            }
            (SplitOnAnyWhitespace, Lang::Fr) => {
                "champs découpés sur n'importe quel blanc, tabulation et CR compris \
                 (str.split() ou strip() en Python, split(\"\\\\s+\") ou trim() en Java) : \
                 seul U+0020 sépare"
            }
            (LoneCrEndsLine, Lang::En) => {
                "a line reader that also ends a line at a lone CR, or strips every CR \
                 (Python's universal newlines or rstrip(), Java's readLine()): only LF ends a \
                 line, and only one CR before it is dropped"
            }
            (LoneCrEndsLine, Lang::Fr) => {
                "une lecture de lignes qui coupe aussi à un CR seul, ou retire tous les CR \
                 (retours à la ligne universels ou rstrip() en Python, readLine() en Java) : \
                 seul LF termine une ligne, et un seul CR juste avant est retiré"
            }
            (UnicodeVerbCase, Lang::En) => {
                "verbs compared after a Unicode case mapping (upper(), toUpperCase(), \
                 equalsIgnoreCase): compare ASCII letters only"
            }
            (UnicodeVerbCase, Lang::Fr) => {
                "verbes comparés après un changement de casse Unicode (upper(), \
                 toUpperCase(), equalsIgnoreCase) : ne comparez que les lettres ASCII"
            }
            (LengthInBytes, Lang::En) => {
                "a length counted in UTF-8 bytes (len(s.encode()), strlen): count Unicode \
                 scalar values (len(s) in Python 3)"
            }
            (LengthInBytes, Lang::Fr) => {
                "longueur comptée en octets UTF-8 (len(s.encode()), strlen) : comptez les \
                 valeurs scalaires Unicode (len(s) en Python 3)"
            }
            (LengthInUtf16, Lang::En) => {
                "a length counted in UTF-16 units (Java's or JavaScript's length): count code \
                 points (codePointCount, [...s].length)"
            }
            (LengthInUtf16, Lang::Fr) => {
                "longueur comptée en unités UTF-16 (length en Java ou en JavaScript) : \
                 comptez les points de code (codePointCount, [...s].length)"
            }
            (LengthInGraphemes, Lang::En) => {
                "a length counted in graphemes, or after normalisation: each code point \
                 counts, accents and flags included"
            }
            (LengthInGraphemes, Lang::Fr) => {
                "longueur comptée en graphèmes, ou après normalisation : chaque point de code \
                 compte, accents combinants et drapeaux compris"
            }
            (NameCharacterTest, Lang::En) => {
                "name characters tested with str.isalnum(), isLetterOrDigit(), \\w or an \
                 identifier rule: the rule is Unicode Alphabetic or Numeric, _ or -"
            }
            (NameCharacterTest, Lang::Fr) => {
                "caractères des noms testés avec str.isalnum(), isLetterOrDigit(), \\w ou \
                 une règle d'identifiant : la règle est Alphabetic ou Numeric d'Unicode, _ ou -"
            }
            (CaseFolding, Lang::En) => {
                "names compared by case folding (casefold(), equalsIgnoreCase), upper case, \
                 or lowered character by character: compare the to_lowercase() of whole names"
            }
            (CaseFolding, Lang::Fr) => {
                "noms comparés par pliage de casse (casefold(), equalsIgnoreCase), en \
                 majuscules, ou mis en minuscules caractère par caractère : comparez le \
                 to_lowercase() des noms entiers"
            }
            (C0ControlsOnly, Lang::En) => {
                "only C0 controls refused (ord(c) < 32): U+007F to U+009F are controls too"
            }
            (C0ControlsOnly, Lang::Fr) => {
                "seuls les contrôles C0 refusés (ord(c) < 32) : U+007F à U+009F sont aussi \
                 des contrôles"
            }
            (BidiAllowed, Lang::En) => {
                "bidirectional overrides and isolates not refused (U+202A to U+202E, U+2066 \
                 to U+2069)"
            }
            (BidiAllowed, Lang::Fr) => {
                "forçages et isolats bidirectionnels non refusés (U+202A à U+202E, U+2066 à \
                 U+2069)"
            }
            (NoWriteTimeout, Lang::En) => {
                "writes without a timeout (sendall() or write() on a blocking socket): a \
                 recipient that stops reading blocks its sender for ever"
            }
            (NoWriteTimeout, Lang::Fr) => {
                "écritures sans délai (sendall() ou write() sur une socket bloquante) : un \
                 destinataire qui ne lit plus bloque son expéditeur pour toujours"
            }
            (LockAcrossWrite, Lang::En) => {
                "a lock shared by all connections held while writing to a socket: take it to \
                 look up, write after releasing it"
            }
            (LockAcrossWrite, Lang::Fr) => {
                "un verrou commun à toutes les connexions tenu pendant une écriture sur une \
                 socket : prenez-le pour chercher, écrivez après l'avoir rendu"
            }
            (NoLingeringClose, Lang::En) => {
                "the socket closed right after the last line, with input unread: the system \
                 then resets the connection and destroys lines on their way (read and \
                 discard until the client closes, within the write timeout)"
            }
            (NoLingeringClose, Lang::Fr) => {
                "socket fermée juste après la dernière ligne, avec des octets non lus : le \
                 système réinitialise alors la connexion et détruit les lignes en route \
                 (lisez et jetez jusqu'à ce que le client ferme, au plus le délai d'écriture)"
            }
            (ReleasedAfterLastLine, Lang::En) => {
                "the name and the slot freed after OK QUIT is written, not before: a client \
                 that reads OK QUIT and reconnects at once finds them still taken"
            }
            (ReleasedAfterLastLine, Lang::Fr) => {
                "nom et place libérés après l'écriture de OK QUIT, pas avant : un client qui \
                 lit OK QUIT et se reconnecte aussitôt les trouve encore pris"
            }
            (OneClock, Lang::En) => {
                "one clock for both timeouts: the login clock runs from the accept and only a \
                 successful CONNECT stops it; the idle clock restarts at each complete line"
            }
            (OneClock, Lang::Fr) => {
                "une seule horloge pour les deux délais : celle de connexion part de \
                 l'acceptation et seul un CONNECT réussi l'arrête ; celle d'inactivité repart \
                 à chaque ligne complète"
            }
            (DeadlineOverflow, Lang::En) => {
                "a deadline computed as now + timeout, which overflows (or panics) for a huge \
                 timeout: saturate it"
            }
            (DeadlineOverflow, Lang::Fr) => {
                "échéance calculée par maintenant + délai, qui déborde (ou panique) pour un \
                 délai immense : saturez-la"
            }
            (NoLingeringOrHugeDeadline, Lang::En) => {
                "the socket closed right after OK QUIT without reading what the client still \
                 sends (then quit-delivers-owed-lines-then-ends fails too: see its cause); if \
                 that check passes, the end of the lingering computed as now + write timeout, \
                 which overflows (or panics) with this huge timeout: saturate it"
            }
            (NoLingeringOrHugeDeadline, Lang::Fr) => {
                "socket fermée juste après OK QUIT sans lire ce que le client envoie encore \
                 (quit-delivers-owed-lines-then-ends échoue alors aussi : voyez sa cause) ; si \
                 cette vérification-là réussit, fin de la fermeture traînante calculée par \
                 maintenant + délai d'écriture, qui déborde (ou panique) avec ce délai immense : \
                 saturez-la"
            }
            (ThreadCrashed, lang) => return crashed(lang, None),
            (LogBlocks, Lang::En) => {
                "the log written straight to stderr (print(), System.err, eprintln!): once \
                 the pipe that nobody reads is full, every write to it blocks, and the server \
                 with it; log through a bounded queue that one thread writes out, and drop \
                 (and count) the lines it cannot take"
            }
            (LogBlocks, Lang::Fr) => {
                "journal écrit directement sur la sortie d'erreur (print(), System.err, \
                 eprintln!) : une fois plein le tube que personne ne lit, chaque écriture \
                 bloque, et le serveur avec ; journalisez par une file bornée qu'un fil écrit, \
                 et jetez (en les comptant) les lignes qu'elle ne peut pas prendre"
            }
            (LogDiesWhenClosed, Lang::En) => {
                "a write to a closed stderr that raises or panics (print() without try, \
                 eprintln!): the log must ignore its own write errors"
            }
            (LogDiesWhenClosed, Lang::Fr) => {
                "écriture sur une sortie d'erreur fermée qui lève une erreur ou panique \
                 (print() sans try, eprintln!) : le journal doit ignorer ses propres erreurs \
                 d'écriture"
            }
        };
        words.to_owned()
    }

    /// The cause in one line for a failure, naming the line it happened
    /// on when the cause is about one ([`Cause::ThreadCrashed`]).
    pub fn describe_on(self, lang: Lang, line: Option<&str>) -> String {
        match self {
            Cause::ThreadCrashed => crashed(lang, line),
            _ => self.describe(lang),
        }
    }
}

/// [`Cause::ThreadCrashed`], on `line` (as shown) if it is known.
fn crashed(lang: Lang, line: Option<&str>) -> String {
    let on = match line {
        Some(line) => tr!(lang, "the line {line}", "la ligne {line}"),
        None => lang
            .pick("the last line sent", "la dernière ligne envoyée")
            .to_owned(),
    };
    tr!(
        lang,
        "the server's thread for this client crashed on {on} (an uncaught error ends the \
         thread, which closes the socket), for example a field split that finds no verb in a \
         line of blanks (\"\\t\".split() is [], and [0] raises IndexError): every line gets a \
         reply, whatever it holds",
        "le fil du serveur pour ce client a planté sur {on} (une erreur non rattrapée termine le \
         fil, ce qui ferme la socket), par exemple un découpage en champs qui ne trouve aucun \
         verbe dans une ligne de blancs (\"\\t\".split() donne [], et [0] lève IndexError) : \
         chaque ligne reçoit une réponse, quoi qu'elle contienne"
    )
}
