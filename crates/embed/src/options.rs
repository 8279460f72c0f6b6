//! The embedding model's configuration vocabulary: where it runs, which CPU
//! kernels and precision, how many threads. Plain types; the `clap` feature
//! derives `clap::ValueEnum` on the enums for the server's flags.

use std::path::PathBuf;

use candle_core::Device;

use crate::EmbedError;

/// Where the model runs. `Auto` takes the first CUDA GPU when this build has
/// the `cuda` feature and one is usable, and the CPU otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum DeviceChoice {
    #[default]
    Auto,
    Cpu,
    Cuda,
}

impl DeviceChoice {
    pub fn resolve(self) -> Result<Device, EmbedError> {
        match self {
            Self::Cpu => Ok(Device::Cpu),
            Self::Auto => Ok(Device::cuda_if_available(0).unwrap_or(Device::Cpu)),
            Self::Cuda => {
                if !candle_core::utils::cuda_is_available() {
                    return Err(EmbedError::DeviceUnavailable {
                        requested: "cuda".into(),
                        message: "this binary was built without the `cuda` feature".into(),
                    });
                }
                Device::new_cuda(0)
                    .map_err(|e| EmbedError::DeviceUnavailable { requested: "cuda".into(), message: e.to_string() })
            }
        }
    }
}

/// Arithmetic of the CPU forward pass's dense layers (`bert_cpu` kernels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum CpuPrecision {
    /// bf16 where the CPU multiplies bf16 in hardware (AMX, AVX-512 BF16),
    /// else f32; f32 under `--cpu-kernels blas|portable` (README).
    #[default]
    Auto,
    /// f32 products (BLAS / packed AVX-512 kernels).
    #[cfg_attr(feature = "clap", value(name = "f32"))]
    F32,
    /// AMX tiles, each f32 operand split into two bf16 parts (three products,
    /// f32 accumulation; parity with f32 kept, see README).
    #[cfg_attr(feature = "clap", value(name = "bf16x3"))]
    Bf16x3,
    /// Plain bf16 inputs, f32 accumulation: AMX tiles, or AVX-512 BF16 dot
    /// products on CPUs without AMX (AMD Zen 4/5). Fastest, lower parity
    /// (README).
    #[cfg_attr(feature = "clap", value(name = "bf16"))]
    Bf16,
}

impl From<CpuPrecision> for bert_cpu::Precision {
    fn from(p: CpuPrecision) -> Self {
        match p {
            CpuPrecision::Auto => Self::Auto,
            CpuPrecision::F32 => Self::F32,
            CpuPrecision::Bf16x3 => Self::Bf16x3,
            CpuPrecision::Bf16 => Self::Bf16,
        }
    }
}

/// How the model runs on the CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum CpuKernels {
    /// `bert_cpu` with a BLAS library when one can be opened (OpenBLAS, MKL,
    /// BLIS), else with the portable kernels.
    #[default]
    Auto,
    /// `bert_cpu` with BLAS; loading fails when no library can be opened.
    Blas,
    /// `bert_cpu` with the portable `gemm` crate.
    Portable,
    /// candle's tensor operations (the GPU code path, run on the CPU).
    Candle,
}

/// How the embedding model is loaded and run: the one configuration type
/// for it (the server's flags fill it in; nothing re-declares its fields).
#[derive(Debug, Clone)]
pub struct ModelOptions {
    pub model_dir: PathBuf,
    pub device: DeviceChoice,
    /// Tokens kept per text, [CLS] and [SEP] included (sentence-transformers'
    /// `max_seq_length`; 256 for all-MiniLM-L6-v2).
    pub max_seq_len: usize,
    /// Padded tokens per forward pass; bounds activation memory.
    pub max_batch_tokens: usize,
    pub cpu_kernels: CpuKernels,
    pub cpu_precision: CpuPrecision,
    /// Threads the CPU forward pass uses; 0 = every core.
    pub threads: usize,
    /// BLAS shared library to open instead of searching the usual names.
    pub blas_library: Option<String>,
    /// Kernel tuning knobs of the CPU forward pass (measured defaults).
    pub tuning: bert_cpu::Tuning,
}

impl ModelOptions {
    pub fn new(model_dir: impl Into<PathBuf>) -> Self {
        Self {
            model_dir: model_dir.into(),
            device: DeviceChoice::Auto,
            max_seq_len: 256,
            max_batch_tokens: 16_384,
            cpu_kernels: CpuKernels::Auto,
            cpu_precision: CpuPrecision::Auto,
            threads: 0,
            blas_library: None,
            tuning: bert_cpu::Tuning::default(),
        }
    }
}
