//! The model backend: Hugging Face tokenizer + a BERT forward pass + mean
//! pooling, loaded from a sentence-transformers model folder (`config.json`,
//! `tokenizer.json`, `model.safetensors`, memory-mapped through candle).
//!
//! Two forward passes:
//! - on CPU (default), the padding-free `bert_cpu` crate (BLAS opened at run
//!   time when present, else portable kernels): see ARCHITECTURE.md;
//! - on CUDA, or on CPU with `--cpu-kernels candle`, [`Bert`] on candle
//!   tensors (f16 on the GPU).
//!
//! Texts are sorted by token length and cut into sub-batches under a token
//! budget, which bounds activation memory (and, for candle, padding).

use std::path::Path;

use candle_core::{DType, Tensor};
use candle_nn::VarBuilder;
use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

use crate::candle_bert::{mean_pool_normalize, Bert, BertConfig};
use crate::options::{CpuKernels, CpuPrecision, ModelOptions};
use crate::{EmbedError, Embedder};

enum Forward {
    Cpu(bert_cpu::Model),
    Candle(Bert),
}

pub struct BertEmbedder {
    model: Forward,
    tokenizer: Tokenizer,
    model_id: String,
    dimension: usize,
    max_batch_tokens: usize,
}

fn load_err(path: &Path, e: impl std::fmt::Display) -> EmbedError {
    EmbedError::Load { path: path.display().to_string(), message: e.to_string() }
}

fn model_err(e: impl std::fmt::Display) -> EmbedError {
    EmbedError::Model { message: e.to_string() }
}

impl BertEmbedder {
    pub fn load(options: &ModelOptions) -> Result<Self, EmbedError> {
        // The cap on our CPU kernels' instruction sets is checked here, for
        // every forward pass (candle's and CUDA's too), so a value nobody
        // meant stops the start wherever the model runs.
        bert_cpu::cpu::cap()
            .map_err(|message| EmbedError::Load { path: options.model_dir.display().to_string(), message })?;
        let dir = &options.model_dir;
        let device = options.device.resolve()?;
        let config_path = dir.join("config.json");
        let config: BertConfig =
            serde_json::from_slice(&std::fs::read(&config_path).map_err(|e| load_err(&config_path, e))?)
                .map_err(|e| load_err(&config_path, e))?;
        let tokenizer_path = dir.join("tokenizer.json");
        let mut tokenizer = Tokenizer::from_file(&tokenizer_path).map_err(|e| load_err(&tokenizer_path, e))?;
        // The shipped tokenizer.json pads to a fixed 128 and truncates at 128;
        // sentence-transformers uses max_seq_length (256) and pads per batch.
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: options.max_seq_len.min(config.max_position_embeddings),
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
                direction: TruncationDirection::Right,
            }))
            .map_err(|e| load_err(&tokenizer_path, e))?;
        let weights = dir.join("model.safetensors");
        let dtype = if device.is_cpu() { DType::F32 } else { DType::F16 };
        // SAFETY: the file is memory-mapped read-only; it must not be modified
        // while the server runs (models/ is ours, and fetch.sh only writes
        // files that are absent or fail verification, before start).
        let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[&weights], dtype, &device) }
            .map_err(|e| load_err(&weights, e))?;
        let model = if device.is_cpu() && options.cpu_kernels != CpuKernels::Candle {
            let choice = match options.cpu_kernels {
                CpuKernels::Portable => bert_cpu::GemmChoice::Portable,
                CpuKernels::Blas => bert_cpu::GemmChoice::Blas(options.blas_library.clone()),
                _ if options.blas_library.is_some() => bert_cpu::GemmChoice::Blas(options.blas_library.clone()),
                _ => bert_cpu::GemmChoice::Auto,
            };
            let vb = if vb.contains_tensor("bert.embeddings.word_embeddings.weight") { vb.pp("bert") } else { vb };
            let mut get = |name: &str, shape: &[usize]| -> Result<Vec<f32>, String> {
                vb.get(shape, name).and_then(|t| t.flatten_all()?.to_vec1::<f32>()).map_err(|e| e.to_string())
            };
            let cpu_config = bert_cpu::Config {
                vocab_size: config.vocab_size,
                hidden_size: config.hidden_size,
                num_hidden_layers: config.num_hidden_layers,
                num_attention_heads: config.num_attention_heads,
                intermediate_size: config.intermediate_size,
                max_position_embeddings: config.max_position_embeddings,
                type_vocab_size: config.type_vocab_size,
                layer_norm_eps: config.layer_norm_eps as f32,
            };
            if config.hidden_act != "gelu" {
                return Err(load_err(&config_path, format!("unsupported hidden_act {:?}", config.hidden_act)));
            }
            // An f32 kernel asked for by name (`--cpu-kernels blas|portable`)
            // runs in f32 unless a precision is asked for too.
            let precision = match (options.cpu_kernels, options.cpu_precision) {
                (CpuKernels::Blas | CpuKernels::Portable, CpuPrecision::Auto) => CpuPrecision::F32,
                (_, p) => p,
            };
            Forward::Cpu(
                bert_cpu::Model::load(cpu_config, &mut get, &choice, precision.into(), options.threads)
                    .map_err(|e| load_err(&weights, e))?
                    .with_tuning(options.tuning),
            )
        } else {
            Forward::Candle(Bert::load(vb, &config).map_err(|e| load_err(&weights, e))?)
        };
        let model_id = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "bert".into());
        Ok(Self {
            model,
            tokenizer,
            model_id,
            dimension: config.hidden_size,
            max_batch_tokens: options.max_batch_tokens.max(options.max_seq_len),
        })
    }

    /// What runs the forward pass, e.g. "cpu: blas: libopenblas.so.0
    /// (SkylakeX), 2 threads" or "candle: Cuda".
    pub fn backend(&self) -> String {
        match &self.model {
            Forward::Cpu(m) => format!("cpu: {}, {} threads", m.backend(), m.threads()),
            Forward::Candle(m) => format!("candle: {:?}", m.device()),
        }
    }

    /// Token count of `text` after truncation, [CLS] and [SEP] included.
    pub fn count_tokens(&self, text: &str) -> Result<usize, EmbedError> {
        Ok(self.tokenizer.encode(text, true).map_err(model_err)?.len())
    }

    fn forward(&self, encodings: &[&[u32]]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let model = match &self.model {
            Forward::Cpu(model) => return model.embed(encodings).map_err(model_err),
            Forward::Candle(model) => model,
        };
        let batch = encodings.len();
        let seq = encodings.iter().map(|e| e.len()).max().unwrap_or(0);
        let mut ids = vec![0u32; batch * seq];
        let mut mask = vec![0f32; batch * seq];
        for (row, tokens) in encodings.iter().enumerate() {
            ids[row * seq..row * seq + tokens.len()].copy_from_slice(tokens);
            mask[row * seq..row * seq + tokens.len()].fill(1.0);
        }
        let device = model.device();
        let ids = Tensor::from_vec(ids, (batch, seq), device).map_err(model_err)?;
        let mask = Tensor::from_vec(mask, (batch, seq), device).map_err(model_err)?;
        let hidden = model.forward(&ids, &mask).map_err(model_err)?;
        mean_pool_normalize(&hidden, &mask).and_then(|t| t.to_vec2::<f32>()).map_err(model_err)
    }
}

impl Embedder for BertEmbedder {
    fn model_id(&self) -> &str {
        &self.model_id
    }

    fn dimension(&self) -> usize {
        self.dimension
    }

    fn embed(&mut self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        // One at a time on this thread: `encode_batch` would wake the global
        // rayon pool, a second set of threads competing with the model's.
        let encodings =
            texts.iter().map(|t| self.tokenizer.encode(*t, true)).collect::<Result<Vec<_>, _>>().map_err(model_err)?;
        let ids: Vec<&[u32]> = encodings.iter().map(|e| e.get_ids()).collect();
        // Longest first, so each sub-batch pads to a length close to its own.
        let mut order: Vec<usize> = (0..ids.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(ids[i].len()));
        let mut out: Vec<Vec<f32>> = vec![Vec::new(); texts.len()];
        let mut start = 0;
        while start < order.len() {
            let longest = ids[order[start]].len().max(1);
            let fit = (self.max_batch_tokens / longest).max(1);
            let end = (start + fit).min(order.len());
            let chunk: Vec<&[u32]> = order[start..end].iter().map(|&i| ids[i]).collect();
            for (k, vector) in self.forward(&chunk)?.into_iter().enumerate() {
                out[order[start + k]] = vector;
            }
            start = end;
        }
        Ok(out)
    }
}
