//! The learned injection signal: a small feed-forward head over the
//! sentence embedding the engine already computes for every event
//! (all-MiniLM-L6-v2, mean-pooled, L2-normalised, 384 values).
//!
//! The head is data, not code: dense layers read from JSON (ours, format
//! `ce-injection-head/2` (`/1`: layers only), or the `jailguard` crate's 384→256→128→1 file for
//! comparison). The default head ships in this crate (`data/`), trained by
//! `context-eval injection-train` on the development corpus; its provenance,
//! training set and calibrated threshold travel inside the file.
//!
//! A head file may also carry a character n-gram model of the same
//! sentence (`ngrams`, format `ce-injection-head/2`; see [`crate::ngrams`]):
//! the head's probability is then the sigmoid of the sum of both logits.
//! That model may take the rule signals as features too; the signals the
//! head lists as `soft_signals` then flag a text only through the
//! probability (one calibrated decision: [`InjectionHead::decide`]), the
//! others flag on their own as before.
//!
//! Scoring is a few thousand multiply-adds (the default head is one
//! 384→32 layer and a 32→1 output) plus the n-gram hashing: microseconds,
//! paid once per event at ingest, never per context call.

use std::sync::OnceLock;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::ngrams::{NgramFile, NgramModel};
use crate::signal::Signal;

/// The format tag of our head files (embedding layers and an n-gram model).
pub const FORMAT: &str = "ce-injection-head/2";
/// The earlier format: embedding layers only. Still read.
pub const FORMAT_V1: &str = "ce-injection-head/1";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    Relu,
    /// Only on the last layer: its one output is the probability.
    Sigmoid,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Dense {
    /// `outputs × inputs`, row-major (one row per output).
    pub weights: Vec<Vec<f32>>,
    pub bias: Vec<f32>,
    pub activation: Activation,
}

/// A head as stored on disk.
#[derive(Debug, Clone, Deserialize)]
pub struct HeadFile {
    pub format: String,
    /// Which embedding the head reads (model, pooling, normalisation).
    pub embedding: String,
    /// Probability at or above which a text is flagged.
    pub threshold: f32,
    pub layers: Vec<Dense>,
    /// The character n-gram model whose logit is added to the layers'
    /// (format 2 only).
    #[serde(default)]
    pub ngrams: Option<NgramFile>,
    /// Rule signals (names) that do not flag a text on their own under this
    /// head: they are features of `ngrams` and count through the
    /// probability.
    #[serde(default)]
    pub soft_signals: Vec<String>,
    /// A soft signal still flags a text whose probability is at least this
    /// (below `threshold`); 0 makes soft signals flag on their own.
    #[serde(default)]
    pub soft_threshold: f32,
    /// What it was trained on, how, and what it scored (free-form JSON).
    #[serde(default)]
    pub provenance: serde_json::Value,
}

/// A loaded head, flattened for scoring.
#[derive(Debug, Clone)]
pub struct InjectionHead {
    layers: Vec<Layer>,
    ngrams: Option<NgramModel>,
    soft: Vec<Signal>,
    soft_threshold: f32,
    threshold: f32,
    name: String,
    /// Identifies the weights and the rules they weigh: the first 12 hex
    /// digits of the sha256 of the head file and this crate's rule and
    /// feature sources (the name for a head built in code). Stored with each
    /// score, so a score from another head or another build's rules is
    /// recomputed rather than trusted.
    id: String,
}

#[derive(Debug, Clone)]
struct Layer {
    inputs: usize,
    outputs: usize,
    /// Row-major, `outputs × inputs`.
    weights: Vec<f32>,
    bias: Vec<f32>,
    relu: bool,
}

impl InjectionHead {
    /// Parses a head in our format.
    pub fn from_json(name: &str, text: &str) -> Result<Self, String> {
        let file: HeadFile = serde_json::from_str(text).map_err(|e| format!("{name}: {e}"))?;
        if file.format != FORMAT && file.format != FORMAT_V1 {
            return Err(format!("{name}: format {:?}, expected {FORMAT:?} or {FORMAT_V1:?}", file.format));
        }
        if file.format == FORMAT_V1 && file.ngrams.is_some() {
            return Err(format!("{name}: a {FORMAT_V1:?} file has no n-gram model"));
        }
        let mut head = Self::from_layers(name, &file.layers, file.threshold)?;
        head.id = hex12(&Sha256::new().chain_update(text.as_bytes()).chain_update(rules_fingerprint()).finalize());
        if let Some(n) = &file.ngrams {
            head = head.with_ngrams(NgramModel::from_file(n).map_err(|e| format!("{name}: {e}"))?);
        }
        let mut soft = Vec::new();
        for s in &file.soft_signals {
            match Signal::from_name(s).filter(|s| Signal::RULES.contains(s)) {
                Some(signal) => soft.push(signal),
                None => return Err(format!("{name}: soft signal {s:?} is not a rule signal")),
            }
        }
        head.with_soft_signals(soft, file.soft_threshold).map_err(|e| format!("{name}: {e}"))
    }

    /// Parses the `jailguard` crate's `neural_binary_200k.json` (keys
    /// `w_h1`, `b_h1`, `w_h2`, `b_h2`, `w_out`, `b_out`; ReLU, ReLU,
    /// sigmoid; threshold 0.5 as that crate uses it).
    pub fn from_jailguard_json(name: &str, text: &str) -> Result<Self, String> {
        #[derive(Deserialize)]
        struct Jailguard {
            w_h1: Vec<Vec<f32>>,
            b_h1: Vec<f32>,
            w_h2: Vec<Vec<f32>>,
            b_h2: Vec<f32>,
            w_out: Vec<Vec<f32>>,
            b_out: Vec<f32>,
        }
        let j: Jailguard = serde_json::from_str(text).map_err(|e| format!("{name}: {e}"))?;
        let layers = [
            Dense { weights: j.w_h1, bias: j.b_h1, activation: Activation::Relu },
            Dense { weights: j.w_h2, bias: j.b_h2, activation: Activation::Relu },
            Dense { weights: j.w_out, bias: j.b_out, activation: Activation::Sigmoid },
        ];
        Self::from_layers(name, &layers, 0.5)
    }

    pub fn from_layers(name: &str, dense: &[Dense], threshold: f32) -> Result<Self, String> {
        if dense.is_empty() {
            return Err(format!("{name}: no layers"));
        }
        if !(0.0..=1.0).contains(&threshold) {
            return Err(format!("{name}: threshold {threshold} is not a probability"));
        }
        let mut layers = Vec::with_capacity(dense.len());
        let mut width = None;
        for (i, d) in dense.iter().enumerate() {
            let outputs = d.weights.len();
            let inputs = d.weights.first().map_or(0, Vec::len);
            if outputs == 0 || inputs == 0 || d.weights.iter().any(|r| r.len() != inputs) || d.bias.len() != outputs {
                return Err(format!("{name}: layer {i} is not a rectangular matrix with one bias per row"));
            }
            if width.is_some_and(|w| w != inputs) {
                return Err(format!("{name}: layer {i} reads {inputs} values, the layer before gives {width:?}"));
            }
            let last = i + 1 == dense.len();
            if last != (d.activation == Activation::Sigmoid) || (last && outputs != 1) {
                return Err(format!("{name}: only the last layer is a sigmoid, with one output"));
            }
            if d.weights.iter().flatten().chain(&d.bias).any(|v| !v.is_finite()) {
                return Err(format!("{name}: layer {i} has a non-finite weight"));
            }
            layers.push(Layer {
                inputs,
                outputs,
                weights: d.weights.iter().flatten().copied().collect(),
                bias: d.bias.clone(),
                relu: d.activation == Activation::Relu,
            });
            width = Some(outputs);
        }
        Ok(Self {
            layers,
            ngrams: None,
            soft: Vec::new(),
            soft_threshold: 0.0,
            threshold,
            name: name.to_string(),
            id: name.to_string(),
        })
    }

    /// The same head with these rule signals soft: they flag a text only
    /// with a probability of at least `soft_threshold` (see
    /// [`Self::decide`]). Each must be a feature of the n-gram model.
    pub fn with_soft_signals(mut self, soft: Vec<Signal>, soft_threshold: f32) -> Result<Self, String> {
        if !soft.is_empty() && self.ngrams.as_ref().and_then(NgramModel::signal_weights).is_none() {
            return Err("soft signals without an n-gram model that weighs rule signals".into());
        }
        if !(0.0..=self.threshold).contains(&soft_threshold) {
            return Err(format!("soft threshold {soft_threshold} is not within 0..={}", self.threshold));
        }
        self.soft_threshold = soft_threshold;
        self.soft = soft;
        self.soft.sort();
        self.soft.dedup();
        Ok(self)
    }

    pub fn soft_signals(&self) -> &[Signal] {
        &self.soft
    }

    pub fn soft_threshold(&self) -> f32 {
        self.soft_threshold
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// The decision on one text (`signals`: the rule screening of the same
    /// text): flagged if its probability reaches the threshold, if a rule
    /// signal that is not soft under this head fired, or if a soft one
    /// fired and the probability reaches the soft threshold.
    pub fn decide(&self, probability: f32, signals: &[Signal]) -> bool {
        let rule =
            |soft: bool| signals.iter().any(|s| *s != Signal::LearnedInstruction && self.soft.contains(s) == soft);
        probability >= self.threshold || rule(false) || (probability >= self.soft_threshold && rule(true))
    }

    /// The same head with a character n-gram model whose logit is added.
    pub fn with_ngrams(mut self, ngrams: NgramModel) -> Self {
        self.ngrams = Some(ngrams);
        self
    }

    pub fn ngrams(&self) -> Option<&NgramModel> {
        self.ngrams.as_ref()
    }

    /// Length of the embedding the head reads.
    pub fn dimension(&self) -> usize {
        self.layers[0].inputs
    }

    pub fn threshold(&self) -> f32 {
        self.threshold
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The same head with another decision threshold.
    pub fn with_threshold(mut self, threshold: f32) -> Self {
        self.threshold = threshold.clamp(0.0, 1.0);
        self
    }

    /// Probability that `text`, whose sentence embedding is `embedding`,
    /// carries instructions: the sigmoid of the layers' logit plus the
    /// n-gram model's (if the head has one). An embedding of the wrong
    /// length scores 0 (and fails in debug builds): the engine checks the
    /// model's dimension against the head at start.
    pub fn probability(&self, embedding: &[f32], text: &str) -> f32 {
        if embedding.len() != self.dimension() {
            debug_assert!(false, "embedding of {} values for a head of {}", embedding.len(), self.dimension());
            return 0.0;
        }
        let ngrams = self.ngrams.as_ref().map_or(0.0, |n| n.logit(text));
        sigmoid(self.embedding_logit(embedding) + ngrams)
    }

    /// The layers' logit alone (no n-grams). `embedding` must have
    /// [`Self::dimension`] values.
    pub fn embedding_logit(&self, embedding: &[f32]) -> f32 {
        assert_eq!(embedding.len(), self.dimension(), "embedding length");
        let mut input = embedding.to_vec();
        let mut output = Vec::new();
        for layer in &self.layers {
            output.clear();
            output.extend(layer.weights.chunks_exact(layer.inputs).zip(&layer.bias).map(|(row, b)| {
                let z = dot(row, &input) + b;
                if layer.relu {
                    z.max(0.0)
                } else {
                    z
                }
            }));
            debug_assert_eq!(output.len(), layer.outputs);
            std::mem::swap(&mut input, &mut output);
        }
        input[0]
    }

    pub fn flags(&self, embedding: &[f32], text: &str) -> bool {
        self.probability(embedding, text) >= self.threshold
    }
}

/// A stored score weighed the rule signals and n-gram features of the build
/// that computed it: a build whose rules or features differ must not trust
/// it. The sources of everything the score depends on, hashed once.
fn rules_fingerprint() -> &'static [u8; 32] {
    static FINGERPRINT: OnceLock<[u8; 32]> = OnceLock::new();
    FINGERPRINT.get_or_init(|| {
        let sources = [
            include_str!("chars.rs"),
            include_str!("encoded.rs"),
            include_str!("fold.rs"),
            include_str!("lexicon.rs"),
            include_str!("ngrams.rs"),
            include_str!("phrases.rs"),
            include_str!("screen.rs"),
            include_str!("signal.rs"),
            include_str!("structure.rs"),
        ];
        let mut h = Sha256::new();
        for s in sources {
            h.update(s.as_bytes());
        }
        h.finalize().into()
    })
}

fn hex12(digest: &[u8]) -> String {
    digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

pub fn sigmoid(logit: f32) -> f32 {
    1.0 / (1.0 + (-logit).exp())
}

/// Dot product with 8 independent lanes, so the reduction vectorises (a
/// plain `sum` keeps the sequential order floating point demands and does
/// not). Shared with feed ranking (`ce-core::rank::feed`).
///
/// On an x86-64 CPU with AVX the same lanes run in one 256-bit register:
/// lane-wise multiplies and adds round exactly as in two 128-bit ones (no
/// fused multiply-add is enabled), so every result is bit-identical on
/// either path; only the instruction count halves.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx") {
        // SAFETY: the CPU has AVX, checked just above.
        return unsafe { dot_avx(a, b) };
    }
    dot_lanes(a, b)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
unsafe fn dot_avx(a: &[f32], b: &[f32]) -> f32 {
    dot_lanes(a, b)
}

#[inline(always)]
fn dot_lanes(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in ca.zip(cb) {
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    acc.iter().sum::<f32>() + tail
}

const DEFAULT_HEAD: &str = include_str!("../data/injection_head.json");

/// The head this crate ships (its provenance is inside the file; README,
/// "Injection screening").
pub fn default_head() -> &'static InjectionHead {
    static HEAD: OnceLock<InjectionHead> = OnceLock::new();
    HEAD.get_or_init(|| {
        InjectionHead::from_json("ce-screen default head", DEFAULT_HEAD)
            .unwrap_or_else(|e| panic!("the shipped injection head does not load: {e}"))
    })
}

/// The shipped head file itself (for its provenance and hash).
pub fn default_head_json() -> &'static str {
    DEFAULT_HEAD
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The AVX path of `dot` rounds exactly as the portable one, for every
    /// length around the 8-lane blocks (tails included).
    #[test]
    fn dot_is_bit_identical_on_every_path() {
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % 20_001) as f32 / 1_000.0 - 10.0
        };
        for len in [0, 1, 7, 8, 9, 31, 384, 389] {
            for _ in 0..50 {
                let a: Vec<f32> = (0..len).map(|_| next()).collect();
                let b: Vec<f32> = (0..len).map(|_| next()).collect();
                assert_eq!(dot(&a, &b).to_bits(), dot_lanes(&a, &b).to_bits(), "length {len}");
            }
        }
    }

    fn tiny(threshold: f32) -> InjectionHead {
        let layers = [
            Dense {
                weights: vec![vec![1.0, 0.0], vec![0.0, -1.0]],
                bias: vec![0.0, 0.0],
                activation: Activation::Relu,
            },
            Dense { weights: vec![vec![4.0, 4.0]], bias: vec![-2.0], activation: Activation::Sigmoid },
        ];
        InjectionHead::from_layers("tiny", &layers, threshold).unwrap()
    }

    #[test]
    fn forward_pass_matches_hand_computation() {
        let head = tiny(0.5);
        // relu([1, -0]) = [1, 0]; 4 - 2 = 2; sigmoid(2) = 0.8808
        assert!((head.probability(&[1.0, 0.0], "") - 0.880_797).abs() < 1e-5);
        // relu([-1, -0]) = [0, 0]; sigmoid(-2) = 0.1192
        assert!((head.probability(&[-1.0, 0.0], "") - 0.119_203).abs() < 1e-5);
        // second unit reads -x1: relu(-(-1)) = 1
        assert!((head.probability(&[0.0, -1.0], "") - 0.880_797).abs() < 1e-5);
        assert!(head.flags(&[1.0, 0.0], ""));
        assert!(!head.flags(&[-1.0, 0.0], ""));
        assert!(!tiny(0.9).flags(&[1.0, 0.0], ""));
    }

    #[test]
    fn malformed_heads_are_refused() {
        let relu = |w: Vec<Vec<f32>>, b: Vec<f32>| Dense { weights: w, bias: b, activation: Activation::Relu };
        let sig = |w: Vec<Vec<f32>>, b: Vec<f32>| Dense { weights: w, bias: b, activation: Activation::Sigmoid };
        assert!(InjectionHead::from_layers("x", &[], 0.5).is_err());
        assert!(InjectionHead::from_layers("x", &[relu(vec![vec![1.0]], vec![0.0])], 0.5).is_err(), "no sigmoid");
        assert!(InjectionHead::from_layers("x", &[sig(vec![vec![1.0], vec![1.0]], vec![0.0, 0.0])], 0.5).is_err());
        assert!(InjectionHead::from_layers("x", &[sig(vec![vec![1.0, 2.0]], vec![])], 0.5).is_err(), "bias");
        assert!(InjectionHead::from_layers("x", &[sig(vec![vec![f32::NAN]], vec![0.0])], 0.5).is_err());
        assert!(InjectionHead::from_layers("x", &[sig(vec![vec![1.0]], vec![0.0])], 1.5).is_err());
        let mismatched = [relu(vec![vec![1.0, 1.0]; 3], vec![0.0; 3]), sig(vec![vec![1.0; 2]], vec![0.0])];
        assert!(InjectionHead::from_layers("x", &mismatched, 0.5).is_err(), "widths");
        assert!(
            InjectionHead::from_json("x", r#"{"format":"other","embedding":"","threshold":0.5,"layers":[]}"#).is_err()
        );
    }

    #[test]
    fn the_shipped_head_loads_and_reads_minilm_vectors() {
        let head = default_head();
        assert_eq!(head.dimension(), 384);
        assert!(head.threshold() > 0.0 && head.threshold() < 1.0);
        let p = head.probability(&[0.0; 384], "Purchased Trail shoes for 89.00 EUR at Acme Outdoors");
        assert!((0.0..=1.0).contains(&p));
        assert!(head.ngrams().is_some(), "the shipped head carries its n-gram model");
        assert!(head.ngrams().and_then(|n| n.signal_weights()).is_some(), "with the rule signals as features");
        assert!(!head.soft_signals().is_empty() && head.soft_threshold() < head.threshold());
        assert_eq!(head.id().len(), 12);
    }

    #[test]
    fn soft_signals_flag_only_at_their_threshold_and_need_signal_features() {
        use crate::ngrams::NgramSpec;
        let spec = NgramSpec::new(2, 3, 64).unwrap();
        let plain = NgramModel::new(spec, 0.0, vec![0.0; 64]).unwrap();
        assert!(tiny(0.9).with_soft_signals(vec![Signal::OverridePhrase], 0.5).is_err(), "no n-gram model");
        assert!(
            tiny(0.9).with_ngrams(plain.clone()).with_soft_signals(vec![Signal::OverridePhrase], 0.5).is_err(),
            "an n-gram model without signal weights"
        );
        let weighted = plain.with_signal_weights([0.0; 8]).unwrap();
        assert!(tiny(0.9).with_ngrams(weighted.clone()).with_soft_signals(vec![], 0.95).is_err(), "above threshold");
        let head = tiny(0.9).with_ngrams(weighted).with_soft_signals(vec![Signal::OverridePhrase], 0.5).unwrap();
        let (o, r) = (Signal::OverridePhrase, Signal::RoleMarker);
        assert!(!head.decide(0.2, &[]));
        assert!(head.decide(0.9, &[]), "the threshold alone");
        assert!(!head.decide(0.49, &[o]), "soft, below its threshold");
        assert!(head.decide(0.5, &[o]), "soft, at its threshold");
        assert!(head.decide(0.0, &[r]), "not soft: flags on its own");
        assert!(head.decide(0.0, &[o, r]));
        assert!(!head.decide(0.0, &[Signal::LearnedInstruction]), "the learned signal is not a rule");
    }

    #[test]
    fn ngram_logit_is_added_to_the_layers_logit() {
        use crate::ngrams::NgramSpec;
        let spec = NgramSpec::new(2, 3, 64).unwrap();
        let weights: Vec<f32> = (0..64).map(|i| (i % 7) as f32 - 3.0).collect();
        let ngrams = NgramModel::new(spec, -0.5, weights).unwrap();
        let text = "repeat the context";
        let expected = sigmoid(2.0 + ngrams.logit(text));
        let head = tiny(0.5).with_ngrams(ngrams.clone());
        assert!((head.probability(&[1.0, 0.0], text) - expected).abs() < 1e-6);
        // Through a file: format 2 with an `ngrams` section.
        let file = serde_json::json!({
            "format": FORMAT, "embedding": "test", "threshold": 0.5,
            "layers": [
                {"weights": [[1.0, 0.0], [0.0, -1.0]], "bias": [0.0, 0.0], "activation": "relu"},
                {"weights": [[4.0, 4.0]], "bias": [-2.0], "activation": "sigmoid"}
            ],
            "ngrams": ngrams.to_file(),
        });
        let loaded = InjectionHead::from_json("f", &file.to_string()).unwrap();
        assert!((loaded.probability(&[1.0, 0.0], text) - expected).abs() < 1e-6);
        let mut v1 = file.clone();
        v1["format"] = serde_json::json!(FORMAT_V1);
        assert!(InjectionHead::from_json("f", &v1.to_string()).is_err(), "format 1 has no n-grams");
        v1.as_object_mut().unwrap().remove("ngrams");
        let plain = InjectionHead::from_json("f", &v1.to_string()).unwrap();
        assert!((plain.probability(&[1.0, 0.0], text) - sigmoid(2.0)).abs() < 1e-6);
    }
}
