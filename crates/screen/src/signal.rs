//! The verdict vocabulary of screening: why a text looks like instructions.
//!
//! Owns [`Signal`], [`Screening`] and the small bit set screening accumulates
//! into; it does not detect anything.

/// Why a text was flagged (several may apply).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Signal {
    /// Instruction-override, jailbreak, prompt-leak or exfiltration phrasing,
    /// or text addressing the model ("note to the AI assistant: …").
    OverridePhrase,
    /// Chat-template tokens and role switches (`<|im_start|>`, `[INST]`,
    /// `system:`, `### Instruction`).
    RoleMarker,
    /// Base64, hex, percent- or entity-encoded text that hides instructions,
    /// or a long opaque blob.
    EncodedPayload,
    /// A URL whose parameters or path carry a prompt.
    PromptUrl,
    /// Text imitating the context block's own delimiters or closing a
    /// surrounding data section (`</activity_context>`, `[c1]`, "end of
    /// context").
    DelimiterForgery,
    /// HTML or markdown that hides text or exfiltrates (comments, scripts,
    /// hidden elements, markdown images to external URLs).
    HiddenMarkup,
    /// Deliberately disguised text: instructions matched only after undoing
    /// leetspeak, homoglyphs, spacing or invisible characters, or text
    /// smuggled as Unicode tag characters.
    Obfuscation,
    /// A call of a tool or function addressed to the model: a JSON object
    /// naming a tool or function with arguments, `send_email(to=…)`-style
    /// call syntax, or a snake_case action name (`transfer_funds`).
    ToolCall,
    /// The learned head over the text's sentence embedding found it
    /// instruction-like (`learned`), whatever its wording.
    LearnedInstruction,
}

impl Signal {
    pub const ALL: [Signal; 9] = [
        Signal::OverridePhrase,
        Signal::RoleMarker,
        Signal::EncodedPayload,
        Signal::PromptUrl,
        Signal::DelimiterForgery,
        Signal::HiddenMarkup,
        Signal::Obfuscation,
        Signal::ToolCall,
        Signal::LearnedInstruction,
    ];

    /// The rule signals (every signal but the learned one), in order.
    pub const RULES: [Signal; 8] = [
        Signal::OverridePhrase,
        Signal::RoleMarker,
        Signal::EncodedPayload,
        Signal::PromptUrl,
        Signal::DelimiterForgery,
        Signal::HiddenMarkup,
        Signal::Obfuscation,
        Signal::ToolCall,
    ];

    /// The signal of a [`Signal::as_str`] name.
    pub fn from_name(name: &str) -> Option<Signal> {
        Signal::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// Stable snake_case name (logs, metrics, API flags).
    pub fn as_str(&self) -> &'static str {
        match self {
            Signal::OverridePhrase => "override_phrase",
            Signal::RoleMarker => "role_marker",
            Signal::EncodedPayload => "encoded_payload",
            Signal::PromptUrl => "prompt_url",
            Signal::DelimiterForgery => "delimiter_forgery",
            Signal::HiddenMarkup => "hidden_markup",
            Signal::Obfuscation => "obfuscation",
            Signal::ToolCall => "tool_call",
            Signal::LearnedInstruction => "learned_instruction",
        }
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

/// The result of screening one text.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Screening {
    /// Sorted, deduplicated.
    pub signals: Vec<Signal>,
}

impl Screening {
    pub fn flagged(&self) -> bool {
        !self.signals.is_empty()
    }
}

/// Signals found so far; allocation-free until turned into a [`Screening`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct SignalSet(u16);

impl SignalSet {
    pub fn insert(&mut self, s: Signal) {
        self.0 |= s.bit();
    }

    pub fn contains(&self, s: Signal) -> bool {
        self.0 & s.bit() != 0
    }

    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }

    pub fn extend(&mut self, other: SignalSet) {
        self.0 |= other.0;
    }

    /// In declaration order, which is also `Ord` order.
    pub fn into_screening(self) -> Screening {
        Screening { signals: Signal::ALL.into_iter().filter(|s| self.contains(*s)).collect() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_stable_and_unique() {
        let names: Vec<&str> = Signal::ALL.iter().map(Signal::as_str).collect();
        assert_eq!(
            names,
            [
                "override_phrase",
                "role_marker",
                "encoded_payload",
                "prompt_url",
                "delimiter_forgery",
                "hidden_markup",
                "obfuscation",
                "tool_call",
                "learned_instruction"
            ]
        );
    }

    #[test]
    fn names_parse_back_and_rules_are_all_but_the_learned_signal() {
        for s in Signal::ALL {
            assert_eq!(Signal::from_name(s.as_str()), Some(s));
        }
        assert_eq!(Signal::from_name("nope"), None);
        assert_eq!(&Signal::ALL[..8], &Signal::RULES[..]);
        assert!(!Signal::RULES.contains(&Signal::LearnedInstruction));
        for (i, s) in Signal::RULES.iter().enumerate() {
            assert_eq!(*s as usize, i, "RULES is indexed by discriminant");
        }
    }

    #[test]
    fn set_yields_sorted_unique_signals() {
        let mut s = SignalSet::default();
        assert!(s.is_empty());
        s.insert(Signal::Obfuscation);
        s.insert(Signal::OverridePhrase);
        s.insert(Signal::Obfuscation);
        let screening = s.into_screening();
        assert_eq!(screening.signals, [Signal::OverridePhrase, Signal::Obfuscation]);
        assert!(screening.flagged());
        assert!(!Screening::default().flagged());
    }
}
