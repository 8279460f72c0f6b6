//! # ce-screen: the injection detector
//!
//! Flags instruction-like content in one untrusted text: override and
//! jailbreak phrases in nineteen languages (matched on a folded stream that
//! undoes case, accents, width, homoglyphs, leetspeak, spacing and invisible
//! characters), chat-template tokens and role prefixes, HTML/markdown that
//! hides or exfiltrates, base64/hex/percent/entity-encoded payloads (decoded
//! and screened again), prompt-carrying URLs, and imitations of the context
//! block's delimiters. Phrase tables are compiled once per process.
//!
//! Pure: no I/O, no clock, nothing from the rest of the workspace. The
//! engine sees the detector through one small trait, [`Screener`];
//! [`RuleScreener`] is the rule-based detector of this crate. Deciding what
//! happens to a flagged text (drop it, or neutralise and mark it) is the
//! caller's `InjectionPolicy` (`ce-core`).
//!
//! Modules, bottom up: `chars` (character classes shared with the block
//! format's sanitiser), `fold` (the folded stream), `phrases` + `lexicon`
//! (the phrase tables), `structure` (punctuation-shaped markers), `encoded`
//! (decoders; decoded text is screened again through a `Rescan`
//! handed in by `screen`, so no module imports one that imports it), `screen`
//! (merges the three), `signal` (the vocabulary of findings).

pub mod chars;
mod encoded;
mod fold;
pub mod learned;
mod lexicon;
pub mod ngrams;
mod phrases;
mod screen;
mod signal;
mod structure;

pub use encoded::{blobs, Blob, BlobKind};
pub use learned::{default_head, InjectionHead};
pub use ngrams::{NgramModel, NgramSpec};
pub use screen::screen;
pub use signal::{Screening, Signal};

/// The injection detector, as the rest of the engine sees it: one untrusted
/// text in, its findings out. Implementations are pure and cheap enough to
/// run on every candidate line of every context call.
pub trait Screener: Send + Sync {
    fn screen(&self, text: &str) -> Screening;
}

/// The rule-based detector of this crate ([`screen`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct RuleScreener;

impl Screener for RuleScreener {
    fn screen(&self, text: &str) -> Screening {
        screen::screen(text)
    }
}
