//! Character classes shared by sanitising and screening: what is invisible,
//! what looks like one of the block's delimiters, what is a homoglyph or a
//! leetspeak digit standing in for a Latin letter.
//!
//! Owns only per-character tables; it does not decide anything about whole
//! texts (that is `sanitize`, `fold` and `structure`).

use unicode_normalization::{is_nfkc_quick, IsNormalized, UnicodeNormalization};

/// Calls `f` with each character of the NFKC form of `text`, skipping the
/// normaliser when a quick check proves the text already normalised (nearly
/// always: ASCII, and most accented or CJK text).
pub(crate) fn for_each_nfkc(text: &str, mut f: impl FnMut(char)) {
    if text.is_ascii() || is_nfkc_quick(text.chars()) == IsNormalized::Yes {
        text.chars().for_each(&mut f);
    } else {
        text.nfkc().for_each(&mut f);
    }
}

/// Characters that render as nothing (or reorder what is around them) yet
/// reach the model: zero-width and bidi controls, BOM, tag characters,
/// variation selectors, fillers, private-use and non-characters, and the C0/C1
/// controls that are not whitespace. Whitespace is handled separately (it
/// becomes one space), so it is deliberately not in this set.
pub fn is_hidden(c: char) -> bool {
    if c.is_whitespace() {
        return false;
    }
    if c.is_control() {
        return true;
    }
    let u = c as u32;
    matches!(u,
        0x00AD | 0x034F | 0x061C | 0x0600..=0x0605 | 0x06DD | 0x070F | 0x0890..=0x0891 | 0x08E2
        | 0x115F | 0x1160 | 0x17B4 | 0x17B5 | 0x180B..=0x180F
        | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x206F
        | 0x3164 | 0xFE00..=0xFE0F | 0xFEFF | 0xFFA0 | 0xFFF0..=0xFFFC
        | 0x110BD | 0x110CD | 0x13430..=0x1343F | 0x1BCA0..=0x1BCA3 | 0x1D173..=0x1D17A
        // Tags (U+E0000 block, "ASCII smuggling") and the variation-selector supplement.
        | 0xE0000..=0xE0FFF
        // Private use: meaningless to a model, and a place to hide payloads.
        | 0xE000..=0xF8FF | 0xF0000..=0x10FFFF
        // Non-characters.
        | 0xFDD0..=0xFDEF)
        || (u & 0xFFFE) == 0xFFFE
}

/// The block's delimiter characters, each with its look-alikes (after NFKC,
/// which already folds fullwidth and small forms): `<` `>` `[` `]` `|`.
/// Returns the canonical delimiter a character imitates.
pub fn delimiter_canonical(c: char) -> Option<char> {
    Some(match c {
        '<' | '\u{02C2}' | '\u{1438}' | '\u{2039}' | '\u{00AB}' | '\u{226A}' | '\u{226E}' | '\u{227A}' | '\u{22B0}'
        | '\u{22B2}' | '\u{22D6}' | '\u{2329}' | '\u{25C1}' | '\u{276C}' | '\u{276E}' | '\u{2770}' | '\u{27E8}'
        | '\u{27EA}' | '\u{2991}' | '\u{2993}' | '\u{2995}' | '\u{29FC}' | '\u{3008}' | '\u{300A}' | '\u{FE64}'
        | '\u{FF1C}' => '<',
        '>' | '\u{02C3}' | '\u{1433}' | '\u{203A}' | '\u{00BB}' | '\u{226B}' | '\u{226F}' | '\u{227B}' | '\u{22B1}'
        | '\u{22B3}' | '\u{22D7}' | '\u{232A}' | '\u{25B7}' | '\u{276D}' | '\u{276F}' | '\u{2771}' | '\u{27E9}'
        | '\u{27EB}' | '\u{2992}' | '\u{2994}' | '\u{2996}' | '\u{29FD}' | '\u{3009}' | '\u{300B}' | '\u{FE65}'
        | '\u{FF1E}' => '>',
        '[' | '\u{2045}' | '\u{2308}' | '\u{230A}' | '\u{23A1}' | '\u{23A3}' | '\u{2772}' | '\u{27E6}' | '\u{27EC}'
        | '\u{298B}' | '\u{298D}' | '\u{298F}' | '\u{2E22}' | '\u{2E24}' | '\u{3010}' | '\u{3014}' | '\u{3016}'
        | '\u{3018}' | '\u{301A}' | '\u{FE47}' | '\u{FE5D}' | '\u{FF3B}' => '[',
        ']' | '\u{2046}' | '\u{2309}' | '\u{230B}' | '\u{23A4}' | '\u{23A6}' | '\u{2773}' | '\u{27E7}' | '\u{27ED}'
        | '\u{298C}' | '\u{298E}' | '\u{2990}' | '\u{2E23}' | '\u{2E25}' | '\u{3011}' | '\u{3015}' | '\u{3017}'
        | '\u{3019}' | '\u{301B}' | '\u{FE48}' | '\u{FE5E}' | '\u{FF3D}' => ']',
        '|' | '\u{00A6}' | '\u{01C0}' | '\u{2016}' | '\u{20D2}' | '\u{20D3}' | '\u{2223}' | '\u{2225}' | '\u{23B8}'
        | '\u{23B9}' | '\u{23D0}' | '\u{2502}' | '\u{2503}' | '\u{2758}' | '\u{2759}' | '\u{275A}' | '\u{FF5C}'
        | '\u{FFE8}' => '|',
        _ => return None,
    })
}

/// What `sanitize` writes instead of a delimiter or look-alike. Angle quotes
/// are quotation marks in many languages, so they stay quotes; brackets and
/// angle brackets become parentheses; bars become a slash.
pub fn delimiter_replacement(c: char) -> Option<char> {
    match c {
        '\u{00AB}' | '\u{00BB}' | '\u{226A}' | '\u{226B}' | '\u{27EA}' | '\u{27EB}' | '\u{300A}' | '\u{300B}' => {
            Some('"')
        }
        '\u{2039}' | '\u{203A}' => Some('\''),
        _ => delimiter_canonical(c).map(|d| match d {
            '<' | '[' => '(',
            '>' | ']' => ')',
            _ => '/',
        }),
    }
}

/// Cyrillic and Greek lowercase letters that look like Latin ones. Applied
/// after lowercasing, identically to texts and to the phrase tables, so
/// native Russian or Greek phrases still match themselves.
pub(crate) fn homoglyph(c: char) -> Option<char> {
    Some(match c {
        // Latin small capitals ("ɪɢɴᴏʀᴇ"), which NFKC leaves alone, and the
        // Cyrillic letters that look like them.
        'а' | 'ɑ' | 'α' | 'ᴀ' => 'a',
        'в' | 'ʙ' => 'b',
        'с' | 'ᴄ' => 'c',
        'ԁ' | 'ᴅ' => 'd',
        'е' | 'ε' | 'ᴇ' => 'e',
        'ꜰ' => 'f',
        'ɡ' | 'ɢ' => 'g',
        'һ' | 'н' | 'ʜ' => 'h',
        'і' | 'ι' | 'ı' | 'ɪ' => 'i',
        'ј' | 'ᴊ' => 'j',
        'к' | 'κ' | 'ᴋ' => 'k',
        'ӏ' | 'ʟ' => 'l',
        'м' | 'ᴍ' => 'm',
        'п' | 'ɴ' => 'n',
        'о' | 'ο' | 'ᴏ' => 'o',
        'р' | 'ρ' | 'ᴘ' => 'p',
        'ԛ' => 'q',
        'г' | 'ʀ' => 'r',
        'ѕ' | 'ꜱ' => 's',
        'τ' | 'т' | 'ᴛ' => 't',
        'υ' | 'ᴜ' => 'u',
        'ν' | 'ᴠ' => 'v',
        'ԝ' | 'ω' | 'ᴡ' => 'w',
        'х' | 'χ' => 'x',
        'у' | 'γ' | 'ʏ' => 'y',
        'ᴢ' => 'z',
        'ς' => 'σ',
        'đ' => 'd',
        'ł' => 'l',
        _ => return None,
    })
}

/// Leetspeak stand-ins for letters.
pub(crate) fn leet(c: char) -> Option<char> {
    Some(match c {
        '0' => 'o',
        '1' => 'i',
        '3' => 'e',
        '4' => 'a',
        '5' => 's',
        '7' => 't',
        '@' => 'a',
        '$' => 's',
        _ => return None,
    })
}

/// Scripts written without spaces between words (or whose words carry
/// attached particles): every character is its own token for matching.
pub(crate) fn is_unspaced_script(c: char) -> bool {
    matches!(c as u32,
        0x0E00..=0x0EFF | 0x1100..=0x11FF | 0x2E80..=0x2FDF | 0x3005..=0x3007 | 0x3040..=0x30FF | 0x3130..=0x318F
        | 0x31F0..=0x31FF | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xAC00..=0xD7AF | 0xF900..=0xFAFF | 0x20000..=0x3FFFF)
}

/// Letters, digits and the combining signs of scripts whose words are built
/// from them (Indic vowel signs, Arabic harakat, kana voicing marks).
pub(crate) fn is_word_char(c: char) -> bool {
    if c.is_alphanumeric() {
        return true;
    }
    matches!(c as u32,
        0x0300..=0x036F | 0x0483..=0x0489 | 0x0591..=0x05C7 | 0x0610..=0x061A | 0x064B..=0x065F | 0x0670
        | 0x06D6..=0x06ED | 0x0900..=0x0963 | 0x0966..=0x0DFF | 0x0E00..=0x0EFF | 0x3099..=0x309A | 0xFE20..=0xFE2F)
}

/// Letters whose accents are stripped for matching (Latin, Greek, Cyrillic):
/// attackers and ordinary users both drop accents.
pub(crate) fn strips_accents(c: char) -> bool {
    matches!(c as u32, 0x00C0..=0x052F | 0x1E00..=0x1FFF)
}

/// Accents and vowel marks that matching ignores: Latin/Greek/Cyrillic
/// combining accents and Arabic harakat (written or omitted at will).
pub(crate) fn is_combining_accent(c: char) -> bool {
    matches!(c as u32, 0x0300..=0x036F | 0x064B..=0x065F | 0x0670)
}

/// Byte offset of ASCII `c` within the first `window` bytes of `s`.
pub(crate) fn find_within(s: &str, c: char, window: usize) -> Option<usize> {
    let b = u8::try_from(c).ok()?;
    s.bytes().take(window).position(|x| x == b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_covers_format_and_controls_but_not_whitespace() {
        for c in ['\u{200B}', '\u{200D}', '\u{202E}', '\u{2066}', '\u{FEFF}', '\u{E0041}', '\u{0007}', '\u{0085}'] {
            assert_eq!(is_hidden(c), c != '\u{0085}', "{:?}", c);
        }
        for c in [' ', '\n', '\t', 'a', 'é', '中'] {
            assert!(!is_hidden(c), "{c:?}");
        }
    }

    #[test]
    fn delimiter_look_alikes_are_recognised() {
        for (c, d) in
            [('＜', '<'), ('﹤', '<'), ('〈', '<'), ('⟨', '<'), ('‹', '<'), ('«', '<'), ('【', '['), ('｜', '|')]
        {
            assert_eq!(delimiter_canonical(c), Some(d), "{c}");
        }
        assert_eq!(delimiter_replacement('«'), Some('"'));
        assert_eq!(delimiter_replacement('['), Some('('));
        assert_eq!(delimiter_replacement('|'), Some('/'));
        assert_eq!(delimiter_replacement('a'), None);
    }
}
