//! Names: which characters, how many, when two are the same, when one is
//! free again (contract: "Names"; "Connections" for the release).

use std::thread;
use std::time::{Duration, Instant};

use super::super::Lab;
use super::super::causes::Cause;
use super::super::probe::{self, Failure};
use super::super::rules;
use super::deliver;
use crate::lang::tr;

/// Names are 1 to 16 characters, each `_`, `-`, or a letter or digit of
/// any script; anything else is BAD_NAME.
pub fn name_characters(lab: &mut Lab<'_>) -> Result<(), Failure> {
    let mut c = lab.connect(&lab.nth(1))?;
    for bad in [
        "b*b",
        "a.b",
        "x!",
        "smile😀",
        "a\u{a0}b",
        "tab\tx",
        "a\u{202e}b",
    ] {
        // Split on any whitespace, `a<U+00A0>b` is two fields: SYNTAX.
        c.ask_error(&format!("CONNECT {bad}"), "BAD_NAME")
            .map_err(|f| {
                f.likely_if(Cause::SplitOnAnyWhitespace, |f| {
                    bad.contains(char::is_whitespace) && f.got_starts_with("ERR SYNTAX")
                })
            })?;
    }
    drop(c);
    for good in [
        lab.name("_x-"),
        lab.name("日本"),
        lab.name("Ωμέγα"),
        lab.name("١٢٣"),
    ] {
        lab.login(&good)?.quit()?;
    }
    Ok(())
}

/// Names with characters that Rust's `char::is_alphanumeric` accepts and
/// other languages' usual tests refuse (checked by the tests below).
const NAME_CHARACTERS_ACCEPTED: [&str; 7] = [
    "\u{2160}",  // Ⅰ ROMAN NUMERAL ONE: Nl (Java's isLetterOrDigit refuses it)
    "x\u{b2}",   // ² SUPERSCRIPT TWO: No (Java)
    "\u{bd}",    // ½ VULGAR FRACTION ONE HALF: No (Java)
    "\u{24b6}",  // Ⓐ CIRCLED LATIN CAPITAL LETTER A: So, Other_Alphabetic (Python's isalnum)
    "हिंदी",      // U+093F (Mc), U+0902 (Mn), both Other_Alphabetic (Python, Java, \p{L})
    "\u{3007}",  // 〇 IDEOGRAPHIC NUMBER ZERO: Nl (Java)
    "\u{1d400}", // 𝐀 MATHEMATICAL BOLD CAPITAL A: 4 bytes, 2 UTF-16 units (C#'s char tests)
];

/// Names with characters that identifier rules (Python's `isidentifier`,
/// Java's `isJavaIdentifierPart`) or a loose idea of a hyphen or an
/// underscore accept, and Rust's `char::is_alphanumeric` refuses.
const NAME_CHARACTERS_REFUSED: [&str; 11] = [
    "e\u{301}",   // COMBINING ACUTE ACCENT: Mn, not alphabetic
    "a\u{b7}b",   // · MIDDLE DOT: Other_ID_Continue
    "a\u{203f}b", // ‿ UNDERTIE: connector punctuation
    "a$b",        // a currency symbol, as Java identifiers allow
    "a\u{20ac}b", // €
    "a\u{200d}b", // ZERO WIDTH JOINER: Cf
    "a\u{ad}b",   // SOFT HYPHEN: Cf
    "a\u{2010}b", // ‐ HYPHEN, not -
    "a\u{ff0d}b", // － FULLWIDTH HYPHEN-MINUS
    "a\u{ff3f}b", // ＿ FULLWIDTH LOW LINE
    "x\u{fe0f}",  // VARIATION SELECTOR-16: Mn
];

/// A name character is `_`, `-` or one for which Rust's
/// `char::is_alphanumeric` is true (Unicode Alphabetic or Numeric): so
/// `Ⅰ` (U+2160, a letter number), `²` and `½` (other numbers), `Ⓐ`
/// (U+24B6) and the vowel signs of `हिंदी` (alphabetic marks) are
/// accepted, which Python's `str.isalnum`, Java's `isLetterOrDigit` or a
/// `\p{L}\p{N}` pattern refuse; a combining accent (U+0301), `·`, `‿`,
/// `$`, `€`, a zero-width joiner, a soft hyphen, `‐` (U+2010) or a
/// fullwidth `－` are refused, which identifier rules accept.
pub fn name_characters_unicode(lab: &mut Lab<'_>) -> Result<(), Failure> {
    let naive = |f: Failure| f.likely(Cause::NameCharacterTest);
    for good in NAME_CHARACTERS_ACCEPTED {
        let name = lab.name(good);
        let mut c = lab.connect(&lab.nth(1))?;
        c.ask(&format!("CONNECT {name}"), &format!("OK CONNECT {name}"))
            .map_err(naive)?;
        c.quit()?;
    }
    let mut c = lab.connect(&lab.nth(1))?;
    for bad in NAME_CHARACTERS_REFUSED {
        c.ask_error(&format!("CONNECT {}", lab.name(bad)), "BAD_NAME")
            .map_err(naive)?;
    }
    c.sync()
}

/// 16 characters are accepted, 17 are BAD_NAME: characters, not bytes nor
/// UTF-16 units (`é` is 2 bytes, `𝐀` 4 bytes and 2 UTF-16 units).
pub fn name_length(lab: &mut Lab<'_>) -> Result<(), Failure> {
    for (unit, cause) in [
        ("n", None),
        ("é", Some(Cause::LengthInBytes)),
        ("\u{1d400}", Some(Cause::LengthInUtf16)),
    ] {
        let tag_chars = lab.name("").chars().count();
        let name16 = lab.name(&unit.repeat(16 - tag_chars));
        let name17 = lab.name(&unit.repeat(17 - tag_chars));
        let mut c = lab.connect(&lab.nth(1))?;
        c.ask_error(&format!("CONNECT {name17}"), "BAD_NAME")?;
        c.ask(
            &format!("CONNECT {name16}"),
            &format!("OK CONNECT {name16}"),
        )
        .map_err(|f| match cause {
            // 𝐀 is 4 bytes too: a count in bytes fails on é first.
            Some(cause) => f.likely(cause),
            None => f,
        })?;
        c.quit()?;
    }
    Ok(())
}

/// Names are unique case-insensitively: `Alice` blocks `alice`, `Élodie`
/// blocks `ÉLODIE`; SEND finds its recipient the same way; RECEIVE and
/// `OK` replies show names as registered.
pub fn names_case_insensitive(lab: &mut Lab<'_>) -> Result<(), Failure> {
    let (alice, elodie) = (lab.name("Alice"), lab.name("Élodie"));
    let mut a = lab.login(&alice)?;
    let mut e = lab.login(&elodie)?;
    let mut other = lab.connect(&lab.nth(3))?;
    for taken in [
        alice.to_lowercase(),
        alice.to_uppercase(),
        elodie.to_lowercase(),
        elodie.to_uppercase(),
    ] {
        other.ask_error(&format!("CONNECT {taken}"), "NAME_TAKEN")?;
    }
    a.send(&format!("SEND {} bonjour", lab.name("éLODIE")))?;
    e.expect(&format!("RECEIVE {alice} bonjour"))?;
    a.expect(&format!("OK SEND {elodie}"))
        .map_err(|f| f.because(&rules::AS_REGISTERED))
}

/// Two names are the same exactly when their `str::to_lowercase()` are
/// equal, for names and for SEND alike. The traps: `K` (KELVIN SIGN)
/// lowercases to `k`, so `Kelvin` blocks `kelvin` (comparing `upper()`
/// misses it); a final `Σ` lowercases to `ς`, so `ΟΔΟΣ1` blocks `οδος1`
/// (mapping each character alone misses it) but not `οδοσ1`; `Straße` and
/// `STRASSE`, `İzmir` and `izmir` are different names (case folding,
/// `upper()` or Java's `equalsIgnoreCase` would merge them).
pub fn names_compared_by_to_lowercase(lab: &mut Lab<'_>) -> Result<(), Failure> {
    let lang = lab.lang();
    let folding = |f: Failure, note: String| f.noting(&note).likely(Cause::CaseFolding);
    let kelvin = lab.name("\u{212a}elvin");
    let odos = lab.name("ΟΔΟΣ");
    let strasse = lab.name("Straße");
    let izmir = lab.name("İzmir");
    let mut k = lab.login(&kelvin)?;
    let _o = lab.login(&odos)?;
    let mut s = lab.login(&strasse)?;
    let _i = lab.login(&izmir)?;
    let mut c = lab.connect(&lab.nth(5))?;
    for (taken, lowercase) in [
        (lab.name("kelvin"), "kelvin"),
        (lab.name("KELVIN"), "kelvin"),
        (lab.name("οδος"), "οδος"),
    ] {
        c.ask_error(&format!("CONNECT {taken}"), "NAME_TAKEN")
            .map_err(|f| {
                let note = tr!(
                    lang,
                    "both are {lowercase}… in lower case",
                    "tous deux donnent {lowercase}… en minuscules"
                );
                folding(f, note)
            })?;
    }
    let other = lab.name("STRASSE");
    c.ask(&format!("CONNECT {other}"), &format!("OK CONNECT {other}"))
        .map_err(|f| {
            let note = tr!(
                lang,
                "straße… and strasse… differ",
                "straße… et strasse… diffèrent"
            );
            folding(f, note)
        })?;
    // SEND finds its recipient the same way, and shows it as registered.
    deliver(&mut k, &kelvin, &mut c, &other, "to STRASSE")?;
    k.send(&format!("SEND {} to Straße", lab.name("STRAßE")))?;
    s.expect(&format!("RECEIVE {kelvin} to Straße"))?;
    k.expect(&format!("OK SEND {strasse}"))?;
    k.send(&format!("SEND {} to myself", lab.name("KELVIN")))?;
    k.expect(&format!("RECEIVE {kelvin} to myself"))?;
    k.expect(&format!("OK SEND {kelvin}"))?;
    c.quit()?;
    for (distinct, lowercase) in [(lab.name("izmir"), "izmir"), (lab.name("οδοσ"), "οδοσ")]
    {
        let mut c = lab.connect(&lab.nth(5))?;
        c.ask(
            &format!("CONNECT {distinct}"),
            &format!("OK CONNECT {distinct}"),
        )
        .map_err(|f| {
            let note = tr!(
                lang,
                "{lowercase}… is not taken",
                "{lowercase}… n'est pas pris"
            );
            folding(f, note)
        })?;
        c.quit()?;
    }
    Ok(())
}

/// A name is released when its connection ends: after QUIT, at once.
pub fn name_released_after_quit(lab: &mut Lab<'_>) -> Result<(), Failure> {
    let name = lab.name("leaver");
    lab.login(&name)?.quit()?;
    let mut c = lab.connect(&lab.nth(2))?;
    c.ask(&format!("CONNECT {name}"), &format!("OK CONNECT {name}"))
}

/// A name is released when its connection ends: after an abrupt close,
/// once the server notices (retried for at most the wait).
pub fn name_released_after_close(lab: &mut Lab<'_>) -> Result<(), Failure> {
    let name = lab.name("vanished");
    lab.login(&name)?.hang_up();
    let mut c = lab.connect(&lab.nth(2))?;
    let deadline = Instant::now() + lab.wait();
    loop {
        c.send(&format!("CONNECT {name}"))?;
        let line = c.line(&format!("\"OK CONNECT {name}\""))?;
        if line == format!("OK CONNECT {name}") {
            return Ok(());
        }
        if !probe::is_error(&line, "NAME_TAKEN") || Instant::now() >= deadline {
            let wait = lab.lang().seconds(lab.wait());
            let expected = tr!(
                lab.lang(),
                "\"OK CONNECT {name}\" within {wait} of the close",
                "\"OK CONNECT {name}\" dans les {wait} après la fermeture"
            );
            return Err(c.mismatch(&expected, &line));
        }
        thread::sleep(Duration::from_millis(20)); // pacing the retries
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The checks' claims about Unicode, verified with Rust itself.
    #[test]
    fn the_name_traps_are_what_rust_says() {
        let allowed = |c: char| c == '_' || c == '-' || c.is_alphanumeric();
        for name in NAME_CHARACTERS_ACCEPTED {
            assert!(name.chars().all(allowed), "{name:?}");
        }
        for name in NAME_CHARACTERS_REFUSED {
            assert!(!name.chars().all(allowed), "{name:?}");
        }
        // Not letters (L*) nor decimal digits, yet alphanumeric in Rust.
        for c in ['\u{2160}', '\u{b2}', '\u{24b6}', '\u{93f}', '\u{902}'] {
            assert!(c.is_alphanumeric(), "{c:?}");
        }
        assert_eq!("\u{1d400}".encode_utf16().count(), 2);
    }

    #[test]
    fn the_case_traps_are_what_to_lowercase_says() {
        let same = |a: &str, b: &str| a.to_lowercase() == b.to_lowercase();
        assert!(same("\u{212a}elvin1", "kelvin1"));
        assert!(same("\u{212a}elvin1", "KELVIN1"));
        // ... which comparing upper cases misses: K is its own upper case.
        assert_ne!("\u{212a}elvin1".to_uppercase(), "kelvin1".to_uppercase());
        // A final sigma, even before digits.
        assert!(same("ΟΔΟΣ1", "οδος1"));
        assert!(!same("ΟΔΟΣ1", "οδοσ1"));
        let char_by_char: String = "ΟΔΟΣ1".chars().flat_map(char::to_lowercase).collect();
        assert_eq!(char_by_char, "οδοσ1");
        // Different names, which upper case or case folding would merge.
        assert!(!same("Straße1", "STRASSE1"));
        assert_eq!("Straße1".to_uppercase(), "STRASSE1");
        assert!(!same("İzmir1", "izmir1"));
        assert_eq!("İzmir1".to_lowercase(), "i\u{307}zmir1");
        // The names SEND uses find the same users.
        assert!(same("STRAßE1", "Straße1"));
    }
}
