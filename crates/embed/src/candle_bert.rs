//! A BERT encoder written for inference only, for sentence-transformers
//! models such as all-MiniLM-L6-v2.
//!
//! Ports `transformers.models.bert.modeling_bert` (BertEmbeddings,
//! BertSelfAttention, BertSelfOutput, BertIntermediate, BertOutput) with the
//! inference-time shortcuts that text-embeddings-inference also takes: Q, K
//! and V are one fused projection, the attention mask is turned into an
//! additive bias once per batch (not once per layer), dropout is gone.

use candle_core::{DType, Device, Module, Result, Tensor, D};
use candle_nn::{Embedding, LayerNorm, VarBuilder};
use serde::Deserialize;

/// The fields of a Hugging Face `config.json` that the forward pass needs.
#[derive(Debug, Clone, Deserialize)]
pub struct BertConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    #[serde(default = "default_type_vocab")]
    pub type_vocab_size: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    #[serde(default = "default_act")]
    pub hidden_act: String,
}

fn default_type_vocab() -> usize {
    2
}
fn default_eps() -> f64 {
    1e-12
}
fn default_act() -> String {
    "gelu".into()
}

struct Layer {
    qkv: Dense,
    attn_out: Dense,
    attn_norm: LayerNorm,
    intermediate: Dense,
    output: Dense,
    out_norm: LayerNorm,
}

pub struct Bert {
    word: Embedding,
    position: Embedding,
    token_type: Embedding,
    embed_norm: LayerNorm,
    layers: Vec<Layer>,
    heads: usize,
    head_dim: usize,
    device: Device,
}

fn linear(vb: VarBuilder, in_dim: usize, out_dim: usize) -> Result<Dense> {
    let weight = vb.get((out_dim, in_dim), "weight")?;
    let bias = vb.get(out_dim, "bias")?;
    Dense::new(&weight, &bias)
}

fn layer_norm(vb: VarBuilder, dim: usize, eps: f64) -> Result<LayerNorm> {
    let weight = vb.get(dim, "weight")?;
    let bias = vb.get(dim, "bias")?;
    Ok(LayerNorm::new(weight, bias, eps))
}

/// A dense layer kept for inference: the weight is stored transposed and
/// contiguous (`[in, out]`), so `x @ W` is one row-major 2-D GEMM. candle_nn's
/// `Linear` multiplies by a strided `W^T` view instead, and broadcasts it over
/// the batch: gemm then re-packs the whole weight on every call, which
/// dominated single-query latency.
struct Dense {
    weight_t: Tensor,
    bias: Tensor,
}

impl Dense {
    fn new(weight: &Tensor, bias: &Tensor) -> Result<Self> {
        Ok(Self { weight_t: weight.t()?.contiguous()?, bias: bias.clone() })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let dims = x.dims().to_vec();
        let (last, lead) = dims.split_last().ok_or_else(|| candle_core::Error::Msg("dense: scalar input".into()))?;
        let rows: usize = lead.iter().product();
        let out = x.reshape((rows, *last))?.matmul(&self.weight_t)?.broadcast_add(&self.bias)?;
        let mut shape = lead.to_vec();
        shape.push(out.dim(1)?);
        out.reshape(shape)
    }
}

impl Bert {
    /// Loads weights named as in Hugging Face `BertModel` checkpoints (with or
    /// without a leading `bert.`).
    pub fn load(vb: VarBuilder, config: &BertConfig) -> Result<Self> {
        if config.hidden_act != "gelu" {
            candle_core::bail!("unsupported hidden_act {:?} (expected exact gelu)", config.hidden_act);
        }
        if !config.hidden_size.is_multiple_of(config.num_attention_heads) {
            candle_core::bail!("hidden_size is not a multiple of num_attention_heads");
        }
        let vb = if vb.contains_tensor("bert.embeddings.word_embeddings.weight") { vb.pp("bert") } else { vb };
        let h = config.hidden_size;
        let eps = config.layer_norm_eps;
        let e = vb.pp("embeddings");
        let word = Embedding::new(e.get((config.vocab_size, h), "word_embeddings.weight")?, h);
        let position = Embedding::new(e.get((config.max_position_embeddings, h), "position_embeddings.weight")?, h);
        let token_type = Embedding::new(e.get((config.type_vocab_size, h), "token_type_embeddings.weight")?, h);
        let embed_norm = layer_norm(e.pp("LayerNorm"), h, eps)?;
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for i in 0..config.num_hidden_layers {
            let l = vb.pp(format!("encoder.layer.{i}"));
            let a = l.pp("attention.self");
            let (mut weights, mut biases) = (Vec::new(), Vec::new());
            for name in ["query", "key", "value"] {
                weights.push(a.pp(name).get((h, h), "weight")?);
                biases.push(a.pp(name).get(h, "bias")?);
            }
            layers.push(Layer {
                qkv: Dense::new(&Tensor::cat(&weights, 0)?, &Tensor::cat(&biases, 0)?)?,
                attn_out: linear(l.pp("attention.output.dense"), h, h)?,
                attn_norm: layer_norm(l.pp("attention.output.LayerNorm"), h, eps)?,
                intermediate: linear(l.pp("intermediate.dense"), h, config.intermediate_size)?,
                output: linear(l.pp("output.dense"), config.intermediate_size, h)?,
                out_norm: layer_norm(l.pp("output.LayerNorm"), h, eps)?,
            });
        }
        Ok(Self {
            word,
            position,
            token_type,
            embed_norm,
            layers,
            heads: config.num_attention_heads,
            head_dim: h / config.num_attention_heads,
            device: vb.device().clone(),
        })
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// `ids`: `[batch, seq]` u32; `mask`: `[batch, seq]` f32 (1 = token,
    /// 0 = padding). Returns the last hidden state, `[batch, seq, hidden]`.
    pub fn forward(&self, ids: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let (batch, seq) = ids.dims2()?;
        let positions = Tensor::arange(0u32, seq as u32, &self.device)?;
        let types = ids.zeros_like()?;
        let x = self
            .word
            .forward(ids)?
            .broadcast_add(&self.position.forward(&positions)?)?
            .add(&self.token_type.forward(&types)?)?;
        let mut x = self.embed_norm.forward(&x)?;
        // Padding gets a large negative bias so softmax gives it zero weight;
        // built once per batch, shape [batch, 1, 1, seq].
        let bias = ((mask - 1.0)? * 1e9)?.reshape((batch, 1, 1, seq))?.to_dtype(x.dtype())?;
        let scale = 1.0 / (self.head_dim as f64).sqrt();
        for layer in &self.layers {
            let qkv = layer.qkv.forward(&x)?;
            let qkv = qkv.reshape((batch, seq, 3, self.heads, self.head_dim))?.permute((2, 0, 3, 1, 4))?;
            let q = (qkv.get(0)?.contiguous()? * scale)?;
            let k = qkv.get(1)?.contiguous()?;
            let v = qkv.get(2)?.contiguous()?;
            let scores = q.matmul(&k.t()?)?.broadcast_add(&bias)?;
            let probs = candle_nn::ops::softmax_last_dim(&scores)?;
            let context = probs.matmul(&v)?.transpose(1, 2)?.reshape((batch, seq, self.heads * self.head_dim))?;
            let attended = layer.attn_out.forward(&context)?;
            x = layer.attn_norm.forward(&(attended + &x)?)?;
            let hidden = layer.intermediate.forward(&x)?.gelu_erf()?;
            let out = layer.output.forward(&hidden)?;
            x = layer.out_norm.forward(&(out + &x)?)?;
        }
        Ok(x)
    }
}

/// Mean over the tokens the mask keeps, then L2 normalisation: the
/// sentence-transformers `Pooling(mode_mean_tokens)` + `Normalize` modules.
/// Returns `[batch, hidden]` in f32.
pub fn mean_pool_normalize(hidden: &Tensor, mask: &Tensor) -> Result<Tensor> {
    let hidden = hidden.to_dtype(DType::F32)?;
    let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
    let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
    // clamp(min=1e-9) as sentence-transformers does, so an all-padding row
    // cannot divide by zero.
    let counts = mask.sum(1)?.clamp(1e-9, f64::MAX)?;
    let mean = summed.broadcast_div(&counts)?;
    let norm = mean.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?.clamp(1e-12, f64::MAX)?;
    mean.broadcast_div(&norm)
}
