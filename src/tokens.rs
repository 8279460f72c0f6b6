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
    lines_add_up: bool,
    frame: usize,
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
        let lines_add_up = splits_at_whitespace(&tokenizer);
        let mut counter = Self { tokenizer, lines_add_up, frame: 0 };
        counter.frame = counter.count(&crate::render::block_frame());
        Ok(counter)
    }

    /// Whether this tokenizer's count of texts joined by line breaks is the
    /// sum of their counts (see [`CountTokens::lines_add_up`]).
    pub fn lines_add_up(&self) -> bool {
        self.lines_add_up
    }
}

/// True when no token can span a line break: the normalizer only maps
/// characters one by one (a line break stays whitespace), the pre-tokenizer
/// splits at every whitespace (so the model sees each word alone), and no
/// added token contains whitespace. BERT's tokenizers qualify; byte-level
/// BPE (GPT-style), Metaspace (SentencePiece-style) and anything unknown do
/// not, and get their blocks counted whole.
fn splits_at_whitespace(tokenizer: &Tokenizer) -> bool {
    use tokenizers::normalizers::NormalizerWrapper as N;
    use tokenizers::pre_tokenizers::PreTokenizerWrapper as P;
    let normalizer_ok = match tokenizer.get_normalizer() {
        None => true,
        Some(n) => {
            matches!(n, N::BertNormalizer(_) | N::Lowercase(_) | N::StripAccents(_) | N::NFC(_) | N::NFD(_))
        }
    };
    let pre_ok = matches!(
        tokenizer.get_pre_tokenizer(),
        Some(P::BertPreTokenizer(_) | P::Whitespace(_) | P::WhitespaceSplit(_))
    );
    let added_ok = tokenizer.get_added_tokens_decoder().values().all(|t| !t.content.chars().any(char::is_whitespace));
    normalizer_ok && pre_ok && added_ok
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

    fn lines_add_up(&self) -> bool {
        self.lines_add_up
    }

    fn frame_tokens(&self) -> usize {
        self.frame
    }
}
