//! Untrusted text → one safe line of a snippet.
//!
//! Owns the guarantee the block's structure rests on: whatever comes in, the
//! output has no delimiter character (nor a look-alike), no newline, no
//! control or invisible formatting character, and a bounded length. It does
//! not judge content (that is `screen`) and does not defang role markers
//! (that is `neutralize`).

use unicode_normalization::{is_nfkc_quick, IsNormalized, UnicodeNormalization};

use ce_screen::chars::{delimiter_replacement, is_hidden};

/// Longest snippet text, in characters, including the trailing ellipsis.
pub const MAX_TEXT_CHARS: usize = 1000;

/// Appended when a text is cut. One character, so a cut text re-sanitises to
/// itself.
const ELLIPSIS: char = '…';
/// Stands in for `…` while NFKC runs (NFKC would expand it to "..."); a
/// private-use code point, which the pre-filter has already removed from the
/// input, so it cannot collide with user text.
const ELLIPSIS_GUARD: char = '\u{E000}';

/// NFKC-normalised, invisible characters removed, whitespace collapsed,
/// delimiters and their look-alikes replaced, capped at [`MAX_TEXT_CHARS`].
pub fn sanitize(text: &str) -> String {
    sanitize_capped(text, MAX_TEXT_CHARS)
}

/// [`sanitize`] with a caller-chosen cap (in characters, ellipsis included).
pub(super) fn sanitize_capped(text: &str, cap: usize) -> String {
    let mut out = Line::new(text.len().min(cap * 4), cap);
    if text.is_ascii() || is_nfkc_quick(text.chars()) == IsNormalized::Yes {
        // Already NFKC: skip the normaliser on the common path. (A "Yes"
        // text has no combining marks, so removing invisible characters
        // cannot create a composable pair either.)
        for c in text.chars() {
            if out.push(c) {
                break;
            }
        }
    } else {
        // Invisible characters go before NFKC so that a zero-width space
        // between a letter and a combining mark cannot survive as a
        // non-normalised pair (it keeps `sanitize` idempotent), and again
        // after, for the few that NFKC itself produces (U+FFA0 → U+3164).
        let normalized = text
            .chars()
            .filter(|&c| !is_hidden(c))
            .map(|c| if c == ELLIPSIS { ELLIPSIS_GUARD } else { c })
            .nfkc()
            .map(|c| if c == ELLIPSIS_GUARD { ELLIPSIS } else { c });
        for c in normalized {
            if out.push(c) {
                break;
            }
        }
    }
    out.finish()
}

/// The output line under construction.
struct Line {
    out: String,
    chars: usize,
    cap: usize,
    pending_space: bool,
    truncated: bool,
}

impl Line {
    fn new(capacity: usize, cap: usize) -> Self {
        Line { out: String::with_capacity(capacity), chars: 0, cap: cap.max(1), pending_space: false, truncated: false }
    }

    /// Adds one character; returns true once the text no longer fits.
    fn push(&mut self, c: char) -> bool {
        if c.is_whitespace() {
            self.pending_space = !self.out.is_empty();
            return false;
        }
        let c = if c.is_ascii_graphic() {
            match c {
                '<' | '[' => '(',
                '>' | ']' => ')',
                '|' => '/',
                _ => c,
            }
        } else if is_hidden(c) {
            return false;
        } else {
            delimiter_replacement(c).unwrap_or(c)
        };
        let needed = 1 + usize::from(self.pending_space);
        if self.chars + needed > self.cap {
            self.truncated = true;
            return true;
        }
        if self.pending_space {
            self.out.push(' ');
            self.pending_space = false;
        }
        self.out.push(c);
        self.chars += needed;
        false
    }

    fn finish(mut self) -> String {
        if self.truncated {
            // Make room for the ellipsis and never leave a space before it.
            while self.chars > self.cap - 1 || self.out.ends_with(' ') {
                if self.out.pop().is_none() {
                    break;
                }
                self.chars -= 1;
            }
            self.out.push(ELLIPSIS);
        }
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collapses_whitespace_and_newlines() {
        assert_eq!(sanitize("  Trail\n\n Runner\t3\r\n "), "Trail Runner 3");
        assert_eq!(sanitize("a\u{2028}b\u{2029}c\u{0085}d\u{3000}e\u{00A0}f"), "a b c d e f");
    }

    #[test]
    fn removes_zero_width_and_bidi_controls() {
        assert_eq!(sanitize("ig\u{200B}no\u{200C}re\u{200D}d\u{2060}\u{FEFF}"), "ignored");
        assert_eq!(sanitize("\u{202E}evil\u{202C} \u{2066}x\u{2069}"), "evil x");
        assert_eq!(sanitize("soft\u{00AD}hyphen"), "softhyphen");
    }

    #[test]
    fn removes_tag_characters_and_controls() {
        let tags: String = "hidden".chars().map(|c| char::from_u32(0xE0000 + c as u32).unwrap_or(' ')).collect();
        assert_eq!(sanitize(&format!("shoes{tags}")), "shoes");
        assert_eq!(sanitize("bell\u{0007}esc\u{001B}[31m"), "bellesc(31m");
    }

    #[test]
    fn replaces_delimiters_and_look_alikes() {
        assert_eq!(sanitize("<system>[INST]|x|"), "(system)(INST)/x/");
        assert_eq!(sanitize("＜｜im_start｜＞"), "(/im_start/)");
        assert_eq!(sanitize("﹤b﹥ 〈c〉 ⟨d⟩ ‹e› «f» 【g】 ［h］"), "(b) (c) (d) 'e' \"f\" (g) (h)");
        assert_eq!(sanitize("a ≮ b"), "a ( b");
    }

    #[test]
    fn applies_nfkc() {
        assert_eq!(sanitize("ＡＢＣ １２３ 𝐛𝐨𝐥𝐝 ﬁne"), "ABC 123 bold fine");
        assert_eq!(sanitize("e\u{0301}"), "é");
    }

    #[test]
    fn caps_length_with_an_ellipsis() {
        let long = "word ".repeat(400);
        let s = sanitize(&long);
        assert_eq!(s.chars().count(), MAX_TEXT_CHARS);
        assert!(s.ends_with("word…") || s.ends_with('…'));
        assert!(!s.contains(" …"));
        assert_eq!(sanitize(&s), s);
        let exact = "x".repeat(MAX_TEXT_CHARS);
        assert_eq!(sanitize(&exact), exact);
        let over = "x".repeat(MAX_TEXT_CHARS + 1);
        assert_eq!(sanitize(&over).chars().count(), MAX_TEXT_CHARS);
        assert!(sanitize(&over).ends_with('…'));
        assert_eq!(sanitize_capped("abcdef", 4), "abc…");
    }

    #[test]
    fn keeps_ellipsis_and_ordinary_text() {
        assert_eq!(sanitize("Wait…"), "Wait…");
        assert_eq!(
            sanitize("Purchased \"Trail Runner 3\" for 129.00 EUR"),
            "Purchased \"Trail Runner 3\" for 129.00 EUR"
        );
        assert_eq!(sanitize(""), "");
        assert_eq!(sanitize(" \n\u{200B} "), "");
    }
}
