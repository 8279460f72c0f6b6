//! Token counting for the context budget with a Hugging Face
//! `tokenizer.json`: the embedding model's by default, or the target LLM's
//! (`--budget-tokenizer`), so "512 tokens" means what the LLM will count.

use std::path::Path;

use tokenizers::Tokenizer;

use crate::rank::CountTokens;

#[derive(Debug, thiserror::Error)]
#[error("cannot load tokenizer {path}: {message}")]
pub struct TokenizerError {
    pub path: String,
    pub message: String,
}

pub struct HfTokenCounter {
    tokenizer: Tokenizer,
}

impl std::fmt::Debug for HfTokenCounter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HfTokenCounter").finish_non_exhaustive()
    }
}

impl HfTokenCounter {
    pub fn load(path: &Path) -> Result<Self, TokenizerError> {
        let err = |message: String| TokenizerError { path: path.display().to_string(), message };
        let mut tokenizer = Tokenizer::from_file(path).map_err(|e| err(e.to_string()))?;
        // A tokenizer.json made for a model often truncates and pads (the
        // MiniLM one at 128); counting must see every token.
        tokenizer.with_padding(None);
        tokenizer.with_truncation(None).map_err(|e| err(e.to_string()))?;
        Ok(Self { tokenizer })
    }
}

impl CountTokens for HfTokenCounter {
    /// Tokens without special tokens ([CLS], <s>, ...): those belong to the
    /// whole prompt, not to the block. A text the tokenizer cannot encode is
    /// counted by characters, which over-counts and so keeps the bound.
    fn count(&self, text: &str) -> usize {
        match self.tokenizer.encode_fast(text, false) {
            Ok(encoding) => encoding.len(),
            Err(_) => text.chars().count(),
        }
    }
}
