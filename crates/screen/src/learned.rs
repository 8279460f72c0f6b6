//! The learned injection signal: a small feed-forward head over the
//! sentence embedding the engine already computes for every event
//! (all-MiniLM-L6-v2, mean-pooled, L2-normalised, 384 values).
//!
//! The head is data, not code: dense layers read from JSON (ours, format
//! `ce-injection-head/1`, or the `jailguard` crate's 384→256→128→1 file for
//! comparison). The default head ships in this crate (`data/`), trained by
//! `context-eval injection-train` on the development corpus; its provenance,
//! training set and calibrated threshold travel inside the file.
//!
//! Scoring is a few thousand multiply-adds (the default head is one
//! 384→32 layer and a 32→1 output): a couple of microseconds, paid once per
//! event at ingest, never per context call.

use std::sync::OnceLock;

use serde::Deserialize;

/// The format tag of our head files.
pub const FORMAT: &str = "ce-injection-head/1";

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
    /// What it was trained on, how, and what it scored (free-form JSON).
    #[serde(default)]
    pub provenance: serde_json::Value,
}

/// A loaded head, flattened for scoring.
#[derive(Debug, Clone)]
pub struct InjectionHead {
    layers: Vec<Layer>,
    threshold: f32,
    name: String,
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
        if file.format != FORMAT {
            return Err(format!("{name}: format {:?}, expected {FORMAT:?}", file.format));
        }
        Self::from_layers(name, &file.layers, file.threshold)
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
        Ok(Self { layers, threshold, name: name.to_string() })
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

    /// Probability that the embedded text carries instructions. An
    /// embedding of the wrong length scores 0 (and fails in debug builds):
    /// the engine checks the model's dimension against the head at start.
    pub fn probability(&self, embedding: &[f32]) -> f32 {
        if embedding.len() != self.dimension() {
            debug_assert!(false, "embedding of {} values for a head of {}", embedding.len(), self.dimension());
            return 0.0;
        }
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
        let logit = input[0];
        1.0 / (1.0 + (-logit).exp())
    }

    pub fn flags(&self, embedding: &[f32]) -> bool {
        self.probability(embedding) >= self.threshold
    }
}

/// Dot product with 8 independent lanes, so the reduction vectorises (a
/// plain `sum` keeps the sequential order floating point demands and does
/// not). Shared with feed ranking (`ce-core::rank::feed`).
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
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

/// The head this crate ships (see `data/README.md`).
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
        assert!((head.probability(&[1.0, 0.0]) - 0.880_797).abs() < 1e-5);
        // relu([-1, -0]) = [0, 0]; sigmoid(-2) = 0.1192
        assert!((head.probability(&[-1.0, 0.0]) - 0.119_203).abs() < 1e-5);
        // second unit reads -x1: relu(-(-1)) = 1
        assert!((head.probability(&[0.0, -1.0]) - 0.880_797).abs() < 1e-5);
        assert!(head.flags(&[1.0, 0.0]));
        assert!(!head.flags(&[-1.0, 0.0]));
        assert!(!tiny(0.9).flags(&[1.0, 0.0]));
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
        let p = head.probability(&[0.0; 384]);
        assert!((0.0..=1.0).contains(&p));
    }
}
