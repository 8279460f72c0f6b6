//! A BERT encoder forward pass for CPU inference, producing mean-pooled,
//! L2-normalised sentence embeddings (the sentence-transformers recipe of
//! all-MiniLM-L6-v2 and its kin).
//!
//! What it does differently from a general tensor library:
//! - **No padding.** The tokens of every text in a batch are stacked into one
//!   `tokens × hidden` matrix; only attention looks at text boundaries, one
//!   (text, head) pair at a time. A batch of 32 short texts costs the tokens
//!   it has, not 32 × the longest.
//! - **Fused projections.** Q, K and V are one matrix product; biases and
//!   residuals are written into the output before the product accumulates
//!   onto them.
//! - **One thread pool.** Every matrix product is single-threaded and split by
//!   output columns across the model's own pool, so BLAS threads and ours
//!   never compete for the same cores.
//! - **Vectorised element-wise kernels** with exact-erf GELU (see `kernels`).
//!
//! Matrix products use a BLAS library opened at run time (OpenBLAS, MKL or
//! BLIS) when present, else the portable `gemm` crate; see [`GemmChoice`].

mod amx;
mod bf16dot;
pub mod cpu;
mod gemm;
pub mod kernels;
mod packed;

use rayon::prelude::*;

use amx::AmxWeight;
use gemm::Gemm;
pub use gemm::GemmChoice;
use packed::PackedWeight;

/// Arithmetic of the dense layers (attention scores stay f32 throughout).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    /// [`Precision::Bf16`] where the CPU multiplies bf16 in hardware (AMX,
    /// or AVX-512 BF16 as on AMD Zen 4/5), else [`Precision::F32`]. bf16's
    /// parity against sentence-transformers is 0.99997 (the project's bar:
    /// 0.9999) and SciFact's nDCG@10 moves by less than 0.002 (README,
    /// Measured), at two to three times f32's speed; `f32` stays available.
    #[default]
    Auto,
    /// f32 products (BLAS, the packed kernels or the portable gemm).
    F32,
    /// AMX tiles with each f32 operand split into two bf16 parts (three
    /// bf16 products per f32 product; ~16 bits of input precision, f32
    /// accumulation). Loading fails on a CPU without AMX.
    Bf16x3,
    /// Plain bf16 inputs with f32 accumulation: fastest, lowest parity. On
    /// AMX tiles where the CPU has them, else on AVX-512 BF16 dot products
    /// (`VDPBF16PS`, AMD Zen 4 and later); loading fails on a CPU with
    /// neither.
    Bf16,
}

impl Precision {
    /// What `Auto` means on this machine.
    pub fn resolve(self) -> Result<Self, Error> {
        match self {
            Self::Auto if amx::available() || bf16dot::available() => Ok(Self::Bf16),
            Self::Auto => Ok(Self::F32),
            Self::Bf16x3 if !amx::available() => Err(Error::Setup(format!(
                "precision {self:?} needs Intel AMX (amx-bf16, amx-tile) and a kernel that grants it; use f32"
            ))),
            Self::Bf16 if !amx::available() && !bf16dot::available() => {
                Err(Error::Setup(format!("precision {self:?} needs Intel AMX or AVX-512 BF16 (avx512bf16); use f32")))
            }
            p => Ok(p),
        }
    }

    /// The AMX split this precision runs with on this machine (`None`: no
    /// AMX products).
    fn split(self) -> Option<amx::Split> {
        if !amx::available() {
            return None;
        }
        match self {
            Self::Bf16x3 => Some(amx::Split::Three),
            Self::Bf16 => Some(amx::Split::One),
            _ => None,
        }
    }
}

/// The model's shape, from a Hugging Face `config.json`.
#[derive(Debug, Clone)]
pub struct Config {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    pub type_vocab_size: usize,
    pub layer_norm_eps: f32,
}

#[derive(Debug)]
pub enum Error {
    /// A weight is missing or has the wrong size.
    Weight { name: String, message: String },
    /// The configuration or thread pool cannot be used.
    Setup(String),
    /// A token id or sequence the model cannot take.
    Input(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Weight { name, message } => write!(f, "weight {name}: {message}"),
            Self::Setup(m) => write!(f, "{m}"),
            Self::Input(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for Error {}

/// A dense layer's weight, `[out, in]`, kept as stored (for BLAS) and
/// packed (for few-row f32 products), or packed for AMX tiles.
struct Weight {
    n: usize,
    k: usize,
    /// As stored, for BLAS; empty when AMX takes the many-row products.
    raw: Vec<f32>,
    /// For few-row f32 products; `None` when AMX takes every product.
    packed: Option<PackedWeight>,
    amx: Option<AmxWeight>,
    /// Plain bf16 without AMX: AVX-512 BF16 takes every product.
    bf16: Option<bf16dot::Bf16Weight>,
}

impl Weight {
    fn new(raw: Vec<f32>, n: usize, k: usize, precision: Precision) -> Self {
        if precision == Precision::Bf16 && !amx::available() {
            let bf16 = Some(bf16dot::Bf16Weight::new(&raw, n, k));
            return Self { n, k, raw: Vec::new(), packed: None, amx: None, bf16 };
        }
        let split = precision.split();
        let amx = split.and_then(|split| AmxWeight::new(&raw, n, k, split));
        // Few-row products stay on the f32 packed kernel except under plain
        // bf16 (bf16x3's three products gain nothing on a 16-row tile that
        // is mostly padding).
        let packed = (amx.is_none() || split == Some(amx::Split::Three)).then(|| PackedWeight::new(&raw, n, k));
        let raw = if amx.is_some() { Vec::new() } else { raw };
        Self { n, k, raw, packed, amx, bf16: None }
    }
}

struct Layer {
    /// `[3·hidden, hidden]`: query, key and value weights stacked.
    qkv_w: Weight,
    qkv_b: Vec<f32>,
    attn_out_w: Weight,
    attn_out_b: Vec<f32>,
    attn_norm: (Vec<f32>, Vec<f32>),
    inter_w: Weight,
    inter_b: Vec<f32>,
    out_w: Weight,
    out_b: Vec<f32>,
    out_norm: (Vec<f32>, Vec<f32>),
}

pub struct Model {
    config: Config,
    word: Vec<f32>,
    position: Vec<f32>,
    /// Token type 0's embedding (sentence embedders use one segment).
    token_type0: Vec<f32>,
    embed_norm: (Vec<f32>, Vec<f32>),
    layers: Vec<Layer>,
    gemm: Gemm,
    precision: Precision,
    pool: rayon::ThreadPool,
    threads: usize,
    /// Products with at most this many rows use the packed kernel.
    packed_max_rows: usize,
    /// Batches of at most this many tokens run on the calling thread alone.
    serial_max_tokens: usize,
    /// bf16 products run their [`Post`] on each chunk of rows of a
    /// many-row product and hand their output's bf16 pairs to the next
    /// product (false only in tests: separate passes, and every product
    /// converts its own input, as before the fusion).
    fused_post: bool,
}

/// Tuning knobs, for measurement: the defaults are the measured best on our
/// machines. The library reads no environment; a caller that wants knobs
/// from flags or variables passes them in ([`Model::with_tuning`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tuning {
    /// Products with at most this many rows use the packed kernel.
    pub packed_max_rows: usize,
    /// Batches of at most this many tokens run on the calling thread alone.
    pub serial_max_tokens: usize,
}

impl Default for Tuning {
    fn default() -> Self {
        // Interleaved best-of-8 (`speed::rows_speed`): packed 15–38 %
        // faster at 92 rows, 4–11 % at 184, even at 368, behind at 552.
        Self { packed_max_rows: 256, serial_max_tokens: 0 }
    }
}

/// Raw pointer that may cross into pool threads; each job writes a disjoint
/// part of the buffer it points into.
#[derive(Clone, Copy)]
struct SendPtr(*mut f32);
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}

impl SendPtr {
    /// By value, so closures capture the whole `SendPtr` (not its field).
    fn ptr(self) -> *mut f32 {
        self.0
    }
}

/// Fetches a weight by checkpoint name and shape, flattened row-major.
pub type WeightSource<'a> = dyn FnMut(&str, &[usize]) -> Result<Vec<f32>, String> + 'a;

impl Model {
    /// Loads weights named as in Hugging Face `BertModel` checkpoints
    /// (without the `bert.` prefix; `get` may add it). `get(name, shape)`
    /// returns the tensor flattened row-major. `threads` = 0 uses every core.
    pub fn load(
        config: Config,
        get: &mut WeightSource<'_>,
        choice: &GemmChoice,
        precision: Precision,
        threads: usize,
    ) -> Result<Self, Error> {
        cpu::cap().map_err(Error::Setup)?;
        let precision = precision.resolve()?;
        let h = config.hidden_size;
        if config.num_attention_heads == 0 || !h.is_multiple_of(config.num_attention_heads) {
            return Err(Error::Setup("hidden_size is not a multiple of num_attention_heads".into()));
        }
        let mut fetch = |name: String, shape: &[usize]| -> Result<Vec<f32>, Error> {
            let v = get(&name, shape).map_err(|message| Error::Weight { name: name.clone(), message })?;
            let want: usize = shape.iter().product();
            if v.len() != want {
                return Err(Error::Weight { name, message: format!("{} values, expected {want}", v.len()) });
            }
            Ok(v)
        };
        let mut norm = |prefix: &str| -> Result<(Vec<f32>, Vec<f32>), Error> {
            Ok((fetch(format!("{prefix}.weight"), &[h])?, fetch(format!("{prefix}.bias"), &[h])?))
        };
        let embed_norm = norm("embeddings.LayerNorm")?;
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for i in 0..config.num_hidden_layers {
            let p = format!("encoder.layer.{i}");
            let attn_norm = norm(&format!("{p}.attention.output.LayerNorm"))?;
            let out_norm = norm(&format!("{p}.output.LayerNorm"))?;
            layers.push((p, attn_norm, out_norm));
        }
        let word = fetch("embeddings.word_embeddings.weight".into(), &[config.vocab_size, h])?;
        let position = fetch("embeddings.position_embeddings.weight".into(), &[config.max_position_embeddings, h])?;
        let types = fetch("embeddings.token_type_embeddings.weight".into(), &[config.type_vocab_size.max(1), h])?;
        let inter = config.intermediate_size;
        let layers = layers
            .into_iter()
            .map(|(p, attn_norm, out_norm)| {
                let (mut qkv_w, mut qkv_b) = (Vec::with_capacity(3 * h * h), Vec::with_capacity(3 * h));
                for part in ["query", "key", "value"] {
                    qkv_w.extend(fetch(format!("{p}.attention.self.{part}.weight"), &[h, h])?);
                    qkv_b.extend(fetch(format!("{p}.attention.self.{part}.bias"), &[h])?);
                }
                Ok(Layer {
                    qkv_w: Weight::new(qkv_w, 3 * h, h, precision),
                    qkv_b,
                    attn_out_w: Weight::new(
                        fetch(format!("{p}.attention.output.dense.weight"), &[h, h])?,
                        h,
                        h,
                        precision,
                    ),
                    attn_out_b: fetch(format!("{p}.attention.output.dense.bias"), &[h])?,
                    attn_norm,
                    inter_w: Weight::new(
                        fetch(format!("{p}.intermediate.dense.weight"), &[inter, h])?,
                        inter,
                        h,
                        precision,
                    ),
                    inter_b: fetch(format!("{p}.intermediate.dense.bias"), &[inter])?,
                    out_w: Weight::new(fetch(format!("{p}.output.dense.weight"), &[h, inter])?, h, inter, precision),
                    out_b: fetch(format!("{p}.output.dense.bias"), &[h])?,
                    out_norm,
                })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        let threads =
            if threads == 0 { std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) } else { threads };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("bert-cpu-{i}"))
            .build()
            .map_err(|e| Error::Setup(format!("thread pool: {e}")))?;
        let gemm = Gemm::new(choice).map_err(Error::Setup)?;
        Ok(Self {
            token_type0: types[..h].to_vec(),
            config,
            word,
            position,
            embed_norm,
            layers,
            gemm,
            precision,
            pool,
            threads,
            packed_max_rows: Tuning::default().packed_max_rows,
            serial_max_tokens: Tuning::default().serial_max_tokens,
            fused_post: true,
        })
    }

    /// The same model with other tuning knobs.
    pub fn with_tuning(mut self, tuning: Tuning) -> Self {
        self.packed_max_rows = tuning.packed_max_rows;
        self.serial_max_tokens = tuning.serial_max_tokens;
        self
    }

    /// Which matrix-product implementation is in use, for logs and reports.
    pub fn backend(&self) -> String {
        let name = match self.precision {
            Precision::Bf16x3 => "amx bf16x3 (attention: f32 packed kernels)".into(),
            Precision::Bf16 if amx::available() => "amx bf16 (attention: f32 packed kernels)".into(),
            Precision::Bf16 => "avx512-bf16 dot products (attention: f32 packed kernels)".into(),
            _ => self.gemm.name(),
        };
        let isa = cpu::kernels_isa();
        match cpu::cap() {
            Ok(cap) if cap != cpu::Cap::Native => {
                format!("{name}; own kernels: {isa}, capped at {} by {}", cap.name(), cpu::ENV)
            }
            _ => format!("{name}; own kernels: {isa}"),
        }
    }

    /// The dense layers' arithmetic (never `Auto`).
    pub fn precision(&self) -> Precision {
        self.precision
    }

    pub fn threads(&self) -> usize {
        self.threads
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Embeds each token-id sequence (`[CLS] … [SEP]`, already truncated to
    /// `max_position_embeddings`): mean of the last hidden states, L2
    /// normalised. Empty sequences give zero vectors.
    pub fn embed(&self, seqs: &[&[u32]]) -> Result<Vec<Vec<f32>>, Error> {
        for (i, s) in seqs.iter().enumerate() {
            if s.len() > self.config.max_position_embeddings {
                return Err(Error::Input(format!(
                    "text {i} has {} tokens, more than the model's {} positions",
                    s.len(),
                    self.config.max_position_embeddings
                )));
            }
            if let Some(bad) = s.iter().find(|&&t| t as usize >= self.config.vocab_size) {
                return Err(Error::Input(format!("text {i} has token id {bad} outside the vocabulary")));
            }
        }
        let total: usize = seqs.iter().map(|s| s.len()).sum();
        if total <= self.serial_max_tokens || self.threads == 1 {
            // A chat query: waking the pool for each of ~60 steps costs more
            // than it saves, and on a busy machine one descheduled worker
            // stalls every step.
            return Ok(self.forward(seqs, false));
        }
        Ok(self.pool.install(|| self.forward(seqs, true)))
    }

    fn forward(&self, seqs: &[&[u32]], par: bool) -> Vec<Vec<f32>> {
        let jobs = if par { self.threads } else { 1 };
        let h = self.config.hidden_size;
        let inter = self.config.intermediate_size;
        let mut offsets = Vec::with_capacity(seqs.len() + 1);
        offsets.push(0usize);
        for s in seqs {
            offsets.push(offsets.last().unwrap() + s.len());
        }
        let total = *offsets.last().unwrap();
        let mut x = vec![0f32; total * h];
        self.embed_tokens(jobs, seqs, &offsets, &mut x);
        let mut qkv = vec![0f32; total * 3 * h];
        let mut ctx = vec![0f32; total * h];
        let mut wide = vec![0f32; total * inter];
        // bf16 copies of a product's left operand (AMX), padded to whole
        // tiles; rows past `total` are read but their results dropped.
        let plain_bf16 = self.precision == Precision::Bf16 && !amx::available();
        let mut bf = Bf16Buffer {
            amx: self.precision.split().map(|split| vec![0u16; amx::padded_rows(total) * split.depth(inter.max(h))]),
            // Fresh conversions go to the first buffer, a product's handed-on
            // output to the one its input is not in. In the order of the
            // layer loop below that puts only the LayerNorm products'
            // outputs (`hidden` wide) in the second; `linear_to` asserts
            // the room for any other order.
            pairs: if plain_bf16 {
                [vec![0u32; total * bf16dot::pairs(inter.max(h))], vec![0u32; total * bf16dot::pairs(h)]]
            } else {
                [Vec::new(), Vec::new()]
            },
            ready: None,
        };
        let layers = self.layers.len();
        for (i, layer) in self.layers.iter().enumerate() {
            // qkv = x·Wqkv^T + b
            self.fill_rows(jobs, &mut qkv, &layer.qkv_b);
            self.linear_to(jobs, &mut bf, &x, total, &layer.qkv_w, &mut qkv, true, Post::Nothing);
            self.attention(jobs, &qkv, &offsets, &mut ctx);
            // x = LN(x + ctx·Wo^T + b), accumulated in place: the residual
            // is the product's starting value.
            self.add_rows(jobs, &mut x, &layer.attn_out_b);
            self.linear_to(
                jobs,
                &mut bf,
                &ctx,
                total,
                &layer.attn_out_w,
                &mut x,
                true,
                Post::Norm(&layer.attn_norm, true),
            );
            // wide = GELU(x·Wi^T + b): the product overwrites, the bias
            // joins in the GELU pass (one pass over `wide` fewer).
            self.linear_to(jobs, &mut bf, &x, total, &layer.inter_w, &mut wide, false, Post::Gelu(&layer.inter_b));
            // x = LN(x + wide·Wout^T + b)
            self.add_rows(jobs, &mut x, &layer.out_b);
            let next = i + 1 < layers;
            self.linear_to(jobs, &mut bf, &wide, total, &layer.out_w, &mut x, true, Post::Norm(&layer.out_norm, next));
        }
        offsets
            .windows(2)
            .map(|w| {
                let mut mean = vec![0f32; h];
                for row in x[w[0] * h..w[1] * h].chunks_exact(h) {
                    for (m, v) in mean.iter_mut().zip(row) {
                        *m += v;
                    }
                }
                let count = (w[1] - w[0]).max(1) as f32;
                let norm = mean.iter().map(|v| (v / count) * (v / count)).sum::<f32>().sqrt().max(1e-12);
                mean.iter().map(|v| v / count / norm).collect()
            })
            .collect()
    }

    fn embed_tokens(&self, jobs: usize, seqs: &[&[u32]], offsets: &[usize], x: &mut [f32]) {
        let h = self.config.hidden_size;
        for (s, seq) in seqs.iter().enumerate() {
            for (p, &id) in seq.iter().enumerate() {
                let row = &mut x[(offsets[s] + p) * h..(offsets[s] + p + 1) * h];
                let word = &self.word[id as usize * h..(id as usize + 1) * h];
                let pos = &self.position[p * h..(p + 1) * h];
                for i in 0..h {
                    row[i] = word[i] + pos[i] + self.token_type0[i];
                }
            }
        }
        self.layer_norm(jobs, x, &self.embed_norm);
    }

    /// Splits `rows` (of `width`) into about one chunk per thread and runs `f`
    /// on each in the pool.
    fn par_chunks(&self, jobs: usize, rows: &mut [f32], width: usize, f: impl Fn(&mut [f32]) + Sync + Send) {
        if jobs <= 1 {
            return f(rows);
        }
        let n_rows = rows.len() / width;
        let per = n_rows.div_ceil(jobs).max(1);
        rows.par_chunks_mut(per * width).for_each(f);
    }

    fn fill_rows(&self, jobs: usize, rows: &mut [f32], row: &[f32]) {
        self.par_chunks(jobs, rows, row.len(), |chunk| {
            for r in chunk.chunks_exact_mut(row.len()) {
                r.copy_from_slice(row);
            }
        });
    }

    fn add_rows(&self, jobs: usize, rows: &mut [f32], row: &[f32]) {
        self.par_chunks(jobs, rows, row.len(), |chunk| kernels::add_rows(chunk, row));
    }

    fn layer_norm(&self, jobs: usize, rows: &mut [f32], (gamma, beta): &(Vec<f32>, Vec<f32>)) {
        let eps = self.config.layer_norm_eps;
        let h = gamma.len();
        self.par_chunks(jobs, rows, h, |chunk| kernels::layer_norm(chunk, h, gamma, beta, eps));
    }

    /// `out[m × n] (+)= a[m × k] · wᵀ` (`+=` when `accumulate`) with `w`
    /// stored `[n, k]`, then `post` on the finished rows. Split by output
    /// columns across the pool (each job reads only its slice of `w`), or,
    /// for many rows in bf16, by chunks of rows. Few rows go to the packed
    /// kernel, many to BLAS (or the portable gemm), AMX or AVX-512 BF16.
    #[allow(clippy::too_many_arguments)]
    fn linear_to(
        &self,
        jobs: usize,
        bf: &mut Bf16Buffer,
        a: &[f32],
        m: usize,
        w: &Weight,
        out: &mut [f32],
        accumulate: bool,
        post: Post,
    ) {
        let (n, k) = (w.n, w.k);
        // Shape checks: always on (two compares per product), since the
        // kernels below write through raw pointers.
        assert_eq!(a.len(), m * k, "linear: input is not {m} x {k}");
        assert_eq!(out.len(), m * n, "linear: output is not {m} x {n}");
        let ready = bf.ready.take();
        if let Some(bw) = &w.bf16 {
            let kp = bf16dot::pairs(k);
            // A's bf16 pairs: made by the previous product's `post` (for
            // exactly this `a`), or converted now (by rows) into buffer 0.
            let src_index = match ready {
                Some((index, ptr, len)) => {
                    assert!(ptr == a.as_ptr() && len == a.len(), "linear: the converted rows are not this input's");
                    index
                }
                None => {
                    convert_by_rows(jobs, a, k, &mut bf.pairs[0][..m * kp]);
                    0
                }
            };
            // The other buffer receives `out`'s pairs when `post` asks.
            let np = bf16dot::pairs(n);
            let convert = post.converts() && self.fused_post;
            if convert {
                bf.ready = Some((1 - src_index, out.as_ptr(), out.len()));
            }
            let [p0, p1] = &mut bf.pairs;
            let (src, next) = if src_index == 0 { (&p0[..], &mut p1[..]) } else { (&p1[..], &mut p0[..]) };
            assert!(src.len() >= m * kp, "linear: the converted input is short");
            assert!(!convert || next.len() >= m * np, "linear: no room for the output's bf16 pairs");
            let src = SendConst(src.as_ptr());
            let next = SendU32(next.as_mut_ptr());
            let eps = self.config.layer_norm_eps;
            let tiles = bw.tiles();
            let chunks = m.div_ceil(ROW_CHUNK);
            if m >= 2 * ROW_CHUNK && (jobs <= 1 || chunks >= 4 * jobs) {
                // Many rows (long texts, big batches): by chunks of rows,
                // each through every tile, so that a chunk's bf16 rows stay
                // in L2 while the weight streams past them. Split by tiles,
                // every job would stream all of A (megabytes) once per tile.
                // At least 4 chunks per job, so that no thread idles long
                // (on many cores a few chunks would leave most of them
                // waiting; those products keep the split by tiles). A
                // chunk's rows are finished when its last tile is: `post`
                // runs on them at once, while they are still in L2, instead
                // of in passes of its own over all of `out`.
                let dst = SendPtr(out.as_mut_ptr());
                let run = |ci: usize| {
                    let (r0, rows) = (ci * ROW_CHUNK, ROW_CHUNK.min(m - ci * ROW_CHUNK));
                    // SAFETY: the weight exists only where AVX-512 BF16
                    // does; the buffer holds m rows of pairs; chunk ci
                    // reads its own rows of A and writes its own rows of C
                    // (all columns) and of `next`, which no other chunk
                    // touches.
                    unsafe {
                        bw.matmul(rows, src.ptr().add(r0 * kp), dst.ptr().add(r0 * n), n, 0..tiles, accumulate);
                        if !self.fused_post {
                            return;
                        }
                        let c = std::slice::from_raw_parts_mut(dst.ptr().add(r0 * n), rows * n);
                        post.apply(c, n, eps);
                        if convert {
                            let to = std::slice::from_raw_parts_mut(next.ptr().add(r0 * np), rows * np);
                            bf16dot::convert_rows(c, n, to);
                        }
                    }
                };
                if jobs > 1 {
                    (0..chunks).into_par_iter().for_each(run);
                } else {
                    (0..chunks).for_each(run);
                }
                if self.fused_post {
                    return;
                }
            } else {
                let dst = SendPtr(out.as_mut_ptr());
                let jobs = jobs.min(tiles).max(1);
                let per = tiles.div_ceil(jobs);
                for_each_job(jobs, |j| {
                    let range = (j * per).min(tiles)..((j + 1) * per).min(tiles);
                    // SAFETY: the weight exists only where AVX-512 BF16 does
                    // (`Precision::resolve`); the buffer holds m rows of pairs;
                    // job j writes only the columns of its tiles.
                    unsafe { bw.matmul(m, src.ptr(), dst.ptr(), n, range, accumulate) };
                });
            }
            // Not fused: `post`, then the conversion, as passes over `out`.
            self.post_pass(jobs, out, n, post);
            if convert {
                // SAFETY: `next` holds at least m × np dwords (asserted).
                let to = unsafe { std::slice::from_raw_parts_mut(next.ptr(), m * np) };
                convert_by_rows(jobs, out, n, to);
            }
            return;
        }
        self.linear_plain(jobs, bf, a, m, w, out, accumulate);
        self.post_pass(jobs, out, n, post);
    }

    /// `post` as a pass over all of `out` (rows of `n`).
    fn post_pass(&self, jobs: usize, out: &mut [f32], n: usize, post: Post) {
        let eps = self.config.layer_norm_eps;
        if !matches!(post, Post::Nothing) {
            self.par_chunks(jobs, out, n, |rows| post.apply(rows, n, eps));
        }
    }

    /// The products other than AVX-512 BF16's (see [`Model::linear_to`]).
    #[allow(clippy::too_many_arguments)]
    fn linear_plain(
        &self,
        jobs: usize,
        bf: &mut Bf16Buffer,
        a: &[f32],
        m: usize,
        w: &Weight,
        out: &mut [f32],
        accumulate: bool,
    ) {
        let (n, k) = (w.n, w.k);
        let dst = SendPtr(out.as_mut_ptr());
        let amx_rows = if w.packed.is_some() { self.packed_max_rows } else { 0 };
        if let (Some(aw), Some(buf), true) = (&w.amx, bf.amx.as_mut(), m > amx_rows) {
            if !accumulate {
                // The tiles always add onto C.
                self.par_chunks(jobs, out, n, |rows| rows.fill(0.0));
            }
            // Convert A to bf16 once (by rows), then every job reads it.
            let (split, depth) = (aw.split(), aw.depth());
            let conv = &mut buf[..m * depth];
            let per = m.div_ceil(jobs.max(1)).max(1);
            if jobs > 1 {
                a.par_chunks(per * k)
                    .zip(conv.par_chunks_mut(per * depth))
                    .for_each(|(a, out)| amx::convert_rows(a, k, out, split));
            } else {
                amx::convert_rows(a, k, conv, split);
            }
            let src = buf.as_ptr() as usize;
            let blocks = aw.blocks();
            let jobs = jobs.min(blocks).max(1);
            let per = blocks.div_ceil(jobs);
            for_each_job(jobs, |j| {
                let range = (j * per).min(blocks)..((j + 1) * per).min(blocks);
                // SAFETY: AMX was granted (the precision resolved to it); the
                // buffer holds padded_rows(m) × depth values; job j writes
                // only the columns of its blocks.
                unsafe { amx::matmul(aw, m, src as *const u16, dst.ptr(), n, range) };
            });
            return;
        }
        if let (Some(packed), true) = (&w.packed, m <= self.packed_max_rows) {
            let tiles = packed.tiles();
            let jobs = jobs.min(tiles).max(1);
            let per = tiles.div_ceil(jobs);
            for_each_job(jobs, |j| {
                let range = (j * per).min(tiles)..((j + 1) * per).min(tiles);
                // SAFETY: job j writes only the columns of its tiles.
                unsafe { packed.matmul(m, a.as_ptr(), k, dst.ptr(), n, range, accumulate) };
            });
            return;
        }
        let jobs = jobs.min(n.div_ceil(64)).max(1);
        let per = n.div_ceil(jobs).div_ceil(16) * 16;
        for_each_job(jobs, |j| {
            let start = j * per;
            let width = per.min(n.saturating_sub(start));
            if width == 0 {
                return;
            }
            // SAFETY: job j writes only columns [start, start + width) of
            // `out`; the shapes are the ones asserted above.
            unsafe {
                self.gemm.sgemm(
                    m,
                    width,
                    k,
                    1.0,
                    a.as_ptr(),
                    k,
                    w.raw.as_ptr().add(start * k),
                    k,
                    true,
                    dst.ptr().add(start),
                    n,
                    accumulate,
                )
            };
        });
    }

    /// Scaled dot-product attention for each (text, head) pair, writing each
    /// head's context into its columns of `ctx` (`tokens × hidden`).
    ///
    /// Per pair, K and V are packed once into the dense layers' tile layout
    /// (`packed`), then queries go through in groups of [`QUERY_ROWS`]: their
    /// scores (a few KiB, in L1), softmax, and the product with V, before
    /// the next group. BLAS calls with a depth of one head (32) spend more
    /// time packing than multiplying; this does no per-call packing beyond
    /// K and V themselves.
    fn attention(&self, jobs: usize, qkv: &[f32], offsets: &[usize], ctx: &mut [f32]) {
        let h = self.config.hidden_size;
        let heads = self.config.num_attention_heads;
        let d = h / heads;
        let scale = 1.0 / (d as f32).sqrt();
        let dst = SendPtr(ctx.as_mut_ptr());
        let pairs: Vec<(usize, usize)> =
            (0..offsets.len() - 1).flat_map(|s| (0..heads).map(move |head| (s, head))).collect();
        let run = |scratch: &mut AttentionScratch, &(s, head): &(usize, usize)| {
            let (start, len) = (offsets[s], offsets[s + 1] - offsets[s]);
            if len == 0 {
                return;
            }
            let AttentionScratch { keys, values, scores, inv_sums } = scratch;
            scores.resize(QUERY_ROWS * len, 0.0);
            let base = qkv.as_ptr();
            // SAFETY: Q, K, V of this text and head lie inside `qkv`
            // (row stride 3h); the job writes only its text's rows and its
            // head's columns of `ctx`.
            unsafe {
                let q = base.add(start * 3 * h + head * d);
                keys.repack_nk(base.add(start * 3 * h + h + head * d), 3 * h, len, d);
                values.repack_kn(base.add(start * 3 * h + 2 * h + head * d), 3 * h, d, len);
                let out = dst.ptr().add(start * h + head * d);
                let mut row = 0;
                while row < len {
                    // Near-equal groups: 256 rows as 11s and 12s, not a
                    // slow last group of 4.
                    let left = len - row;
                    let rows = left.div_ceil(left.div_ceil(QUERY_ROWS));
                    let scores = &mut scores[..rows * len];
                    keys.matmul(rows, q.add(row * 3 * h), 3 * h, scores.as_mut_ptr(), len, 0..keys.tiles(), false);
                    kernels::softmax_unnormalised(scores, len, scale, inv_sums);
                    let out = out.add(row * h);
                    values.matmul(rows, scores.as_ptr(), len, out, h, 0..values.tiles(), false);
                    for (r, inv) in inv_sums[..rows].iter().enumerate() {
                        for v in std::slice::from_raw_parts_mut(out.add(r * h), d) {
                            *v *= inv;
                        }
                    }
                    row += rows;
                }
            }
        };
        if jobs <= 1 {
            let mut scratch = AttentionScratch::default();
            pairs.iter().for_each(|pair| run(&mut scratch, pair));
        } else {
            pairs.par_iter().for_each_init(AttentionScratch::default, run);
        }
    }
}

/// Rows per chunk of a bf16 product with many rows: 8 register blocks,
/// whose bf16 copy (96 × 768 dwords at the widest depth, 288 KiB) stays in
/// L2. Measured (`bf16dot::tests::bf16_rows_speed`, Zen 5, both cores busy):
/// 4096 × 384 × 1536 goes from ~330 GFLOP/s per core unchunked to ~425.
const ROW_CHUNK: usize = 96;

/// Queries per attention step: the packed kernel's widest row block.
const QUERY_ROWS: usize = 12;

/// One attention worker's buffers, reused across (text, head) pairs.
#[derive(Default)]
struct AttentionScratch {
    keys: PackedWeight,
    values: PackedWeight,
    scores: Vec<f32>,
    inv_sums: [f32; QUERY_ROWS],
}

/// The bf16 copy of a product's left operand: for AMX (`amx`), or as depth
/// pairs for AVX-512 BF16 (`pairs`); each empty when not in use.
struct Bf16Buffer {
    amx: Option<Vec<u16>>,
    pairs: [Vec<u32>; 2],
    /// Which of `pairs` holds the next product's left operand, already
    /// converted by the previous product's [`Post`], and the rows it was
    /// made from (checked against the next product's input).
    ready: Option<(usize, *const f32, usize)>,
}

/// Work on a product's finished rows: for many-row bf16 products it runs on
/// each chunk of rows while the chunk is in L2, else as a pass of its own.
/// The results are the same either way (every step works row by row).
#[derive(Clone, Copy)]
enum Post<'a> {
    Nothing,
    /// `GELU(row + bias)`, then the rows' bf16 pairs for the next product.
    Gelu(&'a [f32]),
    /// LayerNorm `(gamma, beta)`; with `true`, then the rows' bf16 pairs
    /// for the next product.
    Norm(&'a (Vec<f32>, Vec<f32>), bool),
}

impl Post<'_> {
    /// Whether the rows' bf16 pairs are made for the next product.
    fn converts(self) -> bool {
        match self {
            Post::Nothing => false,
            Post::Gelu(_) => true,
            Post::Norm(_, next) => next,
        }
    }

    fn apply(self, rows: &mut [f32], width: usize, eps: f32) {
        match self {
            Post::Nothing => {}
            Post::Gelu(bias) => kernels::bias_gelu(rows, bias),
            Post::Norm((gamma, beta), _) => {
                debug_assert_eq!(gamma.len(), width, "LayerNorm of rows of another width");
                kernels::layer_norm(rows, width, gamma, beta, eps)
            }
        }
    }
}

/// `rows` (of `width`) as bf16 pairs into `out`, split by rows across
/// `jobs` of the pool.
fn convert_by_rows(jobs: usize, rows: &[f32], width: usize, out: &mut [u32]) {
    let (m, wp) = (rows.len() / width, bf16dot::pairs(width));
    let per = m.div_ceil(jobs.max(1)).max(1);
    if jobs > 1 {
        rows.par_chunks(per * width)
            .zip(out.par_chunks_mut(per * wp))
            .for_each(|(rows, out)| bf16dot::convert_rows(rows, width, out));
    } else {
        bf16dot::convert_rows(rows, width, out);
    }
}

/// A pointer to bf16 pairs that may cross into pool threads; each job
/// writes its own rows.
#[derive(Clone, Copy)]
struct SendU32(*mut u32);
unsafe impl Send for SendU32 {}
unsafe impl Sync for SendU32 {}

impl SendU32 {
    fn ptr(self) -> *mut u32 {
        self.0
    }
}

/// A read-only pointer that may cross into pool threads.
#[derive(Clone, Copy)]
struct SendConst(*const u32);
unsafe impl Send for SendConst {}
unsafe impl Sync for SendConst {}

impl SendConst {
    fn ptr(self) -> *const u32 {
        self.0
    }
}

/// Runs `f(0..jobs)`: in the current rayon pool when there is more than one.
fn for_each_job(jobs: usize, f: impl Fn(usize) + Sync + Send) {
    if jobs <= 1 {
        (0..jobs).for_each(f);
    } else {
        (0..jobs).into_par_iter().for_each(f);
    }
}

#[cfg(test)]
mod tests_support {
    use super::*;

    /// A model with deterministic pseudo-random weights.
    pub(super) fn model(layers: usize, threads: usize) -> Model {
        model_in(layers, threads, Precision::F32)
    }

    pub(super) fn model_in(layers: usize, threads: usize, precision: Precision) -> Model {
        let config = Config {
            vocab_size: 1000,
            hidden_size: 384,
            num_hidden_layers: layers,
            num_attention_heads: 12,
            intermediate_size: 1536,
            max_position_embeddings: 512,
            type_vocab_size: 2,
            layer_norm_eps: 1e-12,
        };
        let mut seed = 1u64;
        let mut get = |_: &str, shape: &[usize]| -> Result<Vec<f32>, String> {
            let n: usize = shape.iter().product();
            Ok((0..n)
                .map(|_| {
                    seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    ((seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.2
                })
                .collect())
        };
        Model::load(config, &mut get, &GemmChoice::Auto, precision, threads).unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::tests_support::model;
    use super::*;

    /// Attention as two BLAS products per (text, head) around a plain
    /// softmax: the formula the packed kernels must reproduce.
    fn attention_reference(m: &Model, qkv: &[f32], offsets: &[usize]) -> Vec<f32> {
        let (h, heads) = (m.config.hidden_size, m.config.num_attention_heads);
        let d = h / heads;
        let mut ctx = vec![0f32; offsets[offsets.len() - 1] * h];
        for s in 0..offsets.len() - 1 {
            let (start, len) = (offsets[s], offsets[s + 1] - offsets[s]);
            if len == 0 {
                continue;
            }
            for head in 0..heads {
                let mut scores = vec![0f32; len * len];
                let q = &qkv[start * 3 * h + head * d..];
                let k = &qkv[start * 3 * h + h + head * d..];
                let v = &qkv[start * 3 * h + 2 * h + head * d..];
                unsafe {
                    let scale = 1.0 / (d as f32).sqrt();
                    let (q, k, sp) = (q.as_ptr(), k.as_ptr(), scores.as_mut_ptr());
                    m.gemm.sgemm(len, len, d, scale, q, 3 * h, k, 3 * h, true, sp, len, false);
                    // A plain softmax (not the kernels under test).
                    for row in scores.chunks_mut(len) {
                        let max = row.iter().cloned().fold(f32::MIN, f32::max) as f64;
                        let exps: Vec<f64> = row.iter().map(|&v| (v as f64 - max).exp()).collect();
                        let sum: f64 = exps.iter().sum();
                        for (v, e) in row.iter_mut().zip(exps) {
                            *v = (e / sum) as f32;
                        }
                    }
                    let out = ctx.as_mut_ptr().add(start * h + head * d);
                    m.gemm.sgemm(len, d, len, 1.0, scores.as_ptr(), len, v.as_ptr(), 3 * h, false, out, h, false);
                }
            }
        }
        ctx
    }

    fn qkv(tokens: usize) -> Vec<f32> {
        (0..tokens * 3 * 384).map(|i| ((i * 7919 % 1013) as f32 / 1013.0 - 0.5) * 4.0).collect()
    }

    #[test]
    fn packed_attention_matches_the_plain_formula() {
        let m = model(1, 2);
        // Lengths around the 12-query groups and 32-key tiles, and empty.
        let lens = [1usize, 2, 11, 12, 13, 31, 32, 33, 0, 64, 100, 257];
        let mut offsets = vec![0];
        for l in lens {
            offsets.push(offsets.last().unwrap() + l);
        }
        let qkv = qkv(*offsets.last().unwrap());
        let want = attention_reference(&m, &qkv, &offsets);
        for jobs in [1, 2] {
            let mut got = vec![f32::NAN; want.len()];
            m.pool.install(|| m.attention(jobs, &qkv, &offsets, &mut got));
            let worst = got.iter().zip(&want).map(|(g, w)| (g - w).abs()).fold(0f32, f32::max);
            assert!(worst < 1e-5, "jobs {jobs}: worst difference {worst}");
        }
    }

    /// A batch of many rows (bf16 products by chunks of rows) gives each
    /// text the same vector as embedding it alone (products split by
    /// output tiles): each output's sum runs over the depth in the same
    /// order either way.
    #[test]
    fn bf16_batches_of_many_rows_match_each_text_alone() {
        if !bf16dot::available() || amx::available() {
            eprintln!("skipped: the chunked bf16 products run only on AVX-512 BF16 without AMX");
            return;
        }
        let m = super::tests_support::model_in(2, 2, Precision::Bf16);
        // 774 rows: 9 chunks, at least 4 per thread of the two.
        let seqs: Vec<Vec<u32>> = [256usize, 210, 150, 97, 61]
            .iter()
            .map(|&len| (0..len as u32).map(|i| (i * 37 + len as u32) % 1000).collect())
            .collect();
        let refs: Vec<&[u32]> = seqs.iter().map(|s| &s[..]).collect();
        assert!(seqs.iter().map(Vec::len).sum::<usize>() >= 4 * 2 * ROW_CHUNK, "the batch must take the chunked path");
        let together = m.embed(&refs).unwrap();
        for (i, seq) in refs.iter().enumerate() {
            let alone = m.embed(&[seq]).unwrap().remove(0);
            let same = alone.iter().zip(&together[i]).all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same, "text {i}: the batch's vector differs from the text's own");
        }
    }

    /// bf16 products run LayerNorm, GELU and the next product's conversion
    /// on each chunk of rows of a many-row product as it is finished, and
    /// hand the converted rows to the next product; the vectors must be bit
    /// for bit those of the code before (separate passes, each product
    /// converting its own input): on one thread and on two, for a batch
    /// that takes the chunked products (774 rows, 9 chunks) and one that
    /// takes the split by tiles on two threads (308 rows; chunked on one).
    #[test]
    fn bf16_work_on_finished_chunks_matches_separate_passes() {
        if !bf16dot::available() || amx::available() {
            eprintln!("skipped: the chunked bf16 products run only on AVX-512 BF16 without AMX");
            return;
        }
        for threads in [1, 2] {
            let fused = super::tests_support::model_in(2, threads, Precision::Bf16);
            let mut before = super::tests_support::model_in(2, threads, Precision::Bf16);
            before.fused_post = false;
            for lengths in [&[256usize, 210, 150, 97, 61][..], &[150, 97, 61]] {
                let seqs: Vec<Vec<u32>> = lengths
                    .iter()
                    .map(|&len| (0..len as u32).map(|i| (i * 37 + len as u32) % 1000).collect())
                    .collect();
                let refs: Vec<&[u32]> = seqs.iter().map(|s| &s[..]).collect();
                let rows: usize = lengths.iter().sum();
                assert!(rows >= 2 * ROW_CHUNK, "one thread chunks both batches");
                let (a, b) = (fused.embed(&refs).unwrap(), before.embed(&refs).unwrap());
                assert_ne!(a[0], a[1], "distinct texts, distinct vectors");
                for (i, (a, b)) in a.iter().zip(&b).enumerate() {
                    let same = a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits());
                    assert!(same, "{threads} threads, {rows} rows, text {i}: fused and separate passes differ");
                }
            }
        }
    }

    /// Fused against separate passes, interleaved in one process, 2 threads:
    /// `cargo test -p bert-cpu --lib fused_post_speed -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn fused_post_speed() {
        if !bf16dot::available() || amx::available() {
            eprintln!("skipped: the chunked bf16 products run only on AVX-512 BF16 without AMX");
            return;
        }
        let mut m = super::tests_support::model_in(6, 2, Precision::Bf16);
        for len in [23usize, 256] {
            let seqs: Vec<Vec<u32>> = (0..32).map(|t| (0..len as u32).map(|i| (i * 37 + t) % 1000).collect()).collect();
            let refs: Vec<&[u32]> = seqs.iter().map(|s| &s[..]).collect();
            let (mut fused, mut separate) = (Vec::new(), Vec::new());
            for round in 0..24 {
                m.fused_post = round % 2 == 0;
                let t = std::time::Instant::now();
                m.embed(&refs).unwrap();
                let ms = t.elapsed().as_secs_f64() * 1e3;
                if round >= 4 {
                    if m.fused_post {
                        fused.push(ms)
                    } else {
                        separate.push(ms)
                    }
                }
            }
            fused.sort_by(f64::total_cmp);
            separate.sort_by(f64::total_cmp);
            println!(
                "32 x {len} tokens: fused median {:.2} ms, separate {:.2} ms ({:.3}x)",
                fused[fused.len() / 2],
                separate[separate.len() / 2],
                separate[separate.len() / 2] / fused[fused.len() / 2]
            );
        }
    }

    /// Single-thread attention time for 32 texts of 256 tokens, packed
    /// kernels against two BLAS calls per pair:
    /// `cargo test -p bert-cpu --lib attention_speed -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn attention_speed() {
        let m = model(1, 1);
        let texts = std::env::var("TEXTS").ok().and_then(|v| v.parse().ok()).unwrap_or(32);
        let len = std::env::var("LEN").ok().and_then(|v| v.parse().ok()).unwrap_or(256);
        let h = 384;
        let offsets: Vec<usize> = (0..=texts).map(|i| i * len).collect();
        let qkv = qkv(texts * len);
        let mut ctx = vec![0f32; texts * len * h];
        let time = |f: &mut dyn FnMut()| {
            let mut best = f64::MAX;
            for _ in 0..10 {
                let t = std::time::Instant::now();
                f();
                best = best.min(t.elapsed().as_secs_f64());
            }
            best * 1e3
        };
        let mut blas = 0.0;
        let mut packed = 0.0;
        for _ in 0..2 {
            blas = time(&mut || drop(attention_reference(&m, &qkv, &offsets)));
            packed = time(&mut || m.attention(1, &qkv, &offsets, &mut ctx));
        }
        eprintln!("attention, {} pairs of {len} tokens: blas {blas:.1} ms, packed {packed:.1} ms", texts * 12);
    }
}

#[cfg(test)]
mod speed {
    use super::tests_support::model;

    /// Forward time by batch rows, BLAS against the packed kernels:
    /// `cargo test -p bert-cpu --lib rows_speed -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn rows_speed() {
        let mut m = model(6, 2);
        for texts in [4usize, 8, 16, 24, 32] {
            let seq: Vec<u32> = (0..23).map(|i| 100 + i * 7).collect();
            let seqs: Vec<&[u32]> = (0..texts).map(|_| &seq[..]).collect();
            let mut best = [f64::MAX; 2];
            for _ in 0..8 {
                for (i, rows) in [0usize, 100_000].into_iter().enumerate() {
                    m.packed_max_rows = rows;
                    let t = std::time::Instant::now();
                    m.embed(&seqs).unwrap();
                    best[i] = best[i].min(t.elapsed().as_secs_f64());
                }
            }
            eprintln!("{} rows: blas {:.2} ms, packed {:.2} ms", texts * 23, best[0] * 1e3, best[1] * 1e3);
        }
    }
}
