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
    /// For tokenizers whose tokens never span a space or line break: the
    /// counts of pieces already seen.
    pieces: Option<PieceCounts>,
}

/// Token counts of space-separated pieces. A context block is mostly the
/// same words again (dates, sources, product names, the header), so most
/// pieces are counted once per process instead of once per call. Keys are
/// two 64-bit hashes of the piece under per-process random keys (std's
/// SipHash `RandomState`): the cache holds no text, and a collision of
/// both (~2⁻¹²⁸ per pair) is the only way to read a wrong count.
struct PieceCounts {
    hashers: (std::hash::RandomState, std::hash::RandomState),
    counts: quick_cache::sync::Cache<(u64, u64), u32>,
}

/// Pieces remembered; ~3 MB.
const PIECE_CACHE: usize = 65_536;
/// Longer pieces (URLs, run-on strings) are counted each time, not kept.
const PIECE_MAX_BYTES: usize = 64;

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
        let pieces = lines_add_up.then(|| PieceCounts {
            hashers: (std::hash::RandomState::new(), std::hash::RandomState::new()),
            counts: quick_cache::sync::Cache::new(PIECE_CACHE),
        });
        let mut counter = Self { tokenizer, lines_add_up, frame: 0, pieces };
        counter.frame = counter.count(&crate::render::block_frame());
        Ok(counter)
    }

    /// The tokenizer's own count of `text`, no cache.
    pub fn count_uncached(&self, text: &str) -> usize {
        match self.tokenizer.encode_fast(text, false) {
            Ok(encoding) => encoding.len(),
            Err(_) => text.chars().count(),
        }
    }
}

/// True when no token can span a space or line break: the normalizer only maps
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
        let Some(cache) = &self.pieces else { return self.count_uncached(text) };
        // Spaces and line breaks are kept by the normalizer and split on by
        // the pre-tokenizer, so each piece between them counts alone.
        text.split([' ', '\n'])
            .filter(|p| !p.is_empty())
            .map(|piece| {
                if piece.len() > PIECE_MAX_BYTES {
                    return self.count_uncached(piece);
                }
                use std::hash::BuildHasher;
                let key = (cache.hashers.0.hash_one(piece), cache.hashers.1.hash_one(piece));
                match cache.counts.get(&key) {
                    Some(n) => n as usize,
                    None => {
                        let n = self.count_uncached(piece);
                        cache.counts.insert(key, n as u32);
                        n
                    }
                }
            })
            .sum()
    }

    fn lines_add_up(&self) -> bool {
        self.lines_add_up
    }

    fn frame_tokens(&self) -> usize {
        self.frame
    }
}
