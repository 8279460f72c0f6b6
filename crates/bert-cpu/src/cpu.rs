//! Which instruction sets the kernels may use: what the CPU reports, capped
//! by the environment variable [`ENV`] when it is set.
//!
//! Our machines are not all the same CPU: some are Intel with AVX-512 and
//! AMX, some AMD Zen 3 with AVX2 only. Every kernel is chosen at run time, so
//! a machine with the wider sets never runs the narrower paths on its own.
//! `CONTEXT_ENGINE_CPU_ISA=avx2` makes it run them: no AVX-512 (so no
//! AVX-512 BF16 and no AMX either, and `auto` precision resolves to f32), as
//! an AVX2-only CPU would; `baseline` takes our kernels down to their
//! portable code. The whole-model parity test runs under both caps, and the
//! benchmarks use it to measure the AVX2 path on an AVX-512 machine
//! (README, Measured). Only our own kernels are capped: the BLAS library
//! opened at run time, the `gemm` crate (AVX2 at most as built here) and
//! candle pick their own; OpenBLAS takes `OPENBLAS_CORETYPE=Haswell`, MKL
//! `MKL_ENABLE_INSTRUCTIONS=AVX2`, BLIS `BLIS_ARCH_TYPE=haswell`.

use std::sync::OnceLock;

/// The environment variable that caps the instruction sets.
pub const ENV: &str = "CONTEXT_ENGINE_CPU_ISA";

/// How far the kernels may go, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Cap {
    /// Portable code only.
    Baseline,
    /// AVX2 and FMA at most.
    Avx2,
    /// Whatever the CPU has.
    Native,
}

impl Cap {
    fn parse(value: &str) -> Result<Self, String> {
        match value.trim().to_ascii_lowercase().as_str() {
            "" | "native" => Ok(Self::Native),
            "avx2" => Ok(Self::Avx2),
            "baseline" => Ok(Self::Baseline),
            _ => Err(format!("{ENV}={value:?}: expected native, avx2 or baseline")),
        }
    }

    /// The name used in logs and reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Baseline => "baseline",
            Self::Avx2 => "avx2",
            Self::Native => "native",
        }
    }
}

fn read() -> &'static Result<Cap, String> {
    static CAP: OnceLock<Result<Cap, String>> = OnceLock::new();
    CAP.get_or_init(|| match std::env::var(ENV) {
        Ok(v) => Cap::parse(&v),
        Err(std::env::VarError::NotPresent) => Ok(Cap::Native),
        Err(std::env::VarError::NotUnicode(_)) => Err(format!("{ENV} is not valid UTF-8")),
    })
}

/// The cap in force (read once per process), or the error for a value that
/// is not one of `native`, `avx2`, `baseline`. Loading a model checks it
/// (`Model::load`, and the embedder before any forward pass is chosen), so
/// a value nobody meant stops the start.
pub fn cap() -> Result<Cap, String> {
    read().clone()
}

/// Whether the cap allows `at_least`; a value that does not parse allows
/// only the portable code (it never widens what runs).
fn allowed(at_least: Cap) -> bool {
    read().as_ref().map_or(Cap::Baseline, |&c| c) >= at_least
}

/// The instruction set our f32 kernels run with here, under the cap:
/// `avx-512`, `avx2` or `portable` (what `Model::backend` reports).
pub fn kernels_isa() -> &'static str {
    if avx512f() {
        "avx-512"
    } else if avx2_fma() {
        "avx2"
    } else {
        "portable"
    }
}

/// AVX-512F may be used.
#[inline]
pub fn avx512f() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        allowed(Cap::Native) && std::arch::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// AVX2 with FMA may be used.
#[inline]
pub fn avx2_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        allowed(Cap::Avx2) && std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Extensions beyond AVX2 (AVX-512 BF16, AMX) may be used, if present.
#[inline]
pub fn beyond_avx2() -> bool {
    allowed(Cap::Native)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_values_and_refuses_others() {
        assert_eq!(Cap::parse("avx2"), Ok(Cap::Avx2));
        assert_eq!(Cap::parse(" AVX2 "), Ok(Cap::Avx2));
        assert_eq!(Cap::parse("baseline"), Ok(Cap::Baseline));
        assert_eq!(Cap::parse(""), Ok(Cap::Native));
        assert_eq!(Cap::parse("native"), Ok(Cap::Native));
        let err = Cap::parse("AVX512 ").unwrap_err();
        assert!(err.contains(ENV) && err.contains("\"AVX512 \""), "{err}");
        assert!(Cap::parse("portable").is_err() && Cap::parse("auto").is_err());
        assert!(Cap::Baseline < Cap::Avx2 && Cap::Avx2 < Cap::Native);
    }

    /// Every kernel asks this module, never the CPU directly: outside the
    /// unit tests (which run every path on purpose), no source file of the
    /// crate checks CPU features itself, except `bf16dot::available`'s two
    /// extra checks, which it ANDs with [`avx512f`].
    #[test]
    fn kernels_choose_their_instruction_set_only_through_this_module() {
        let sources = [
            ("amx.rs", include_str!("amx.rs"), 0),
            ("bf16dot.rs", include_str!("bf16dot.rs"), 2),
            ("gemm.rs", include_str!("gemm.rs"), 0),
            ("kernels.rs", include_str!("kernels.rs"), 0),
            ("lib.rs", include_str!("lib.rs"), 0),
            ("packed.rs", include_str!("packed.rs"), 0),
        ];
        for (name, text, allowed) in sources {
            let code = text.split("#[cfg(test)]").next().unwrap();
            let direct = code.matches("is_x86_feature_detected!").count();
            assert_eq!(direct, allowed, "{name}: feature checks outside crate::cpu");
            if name == "amx.rs" {
                let gate = code.find("crate::cpu::beyond_avx2()").expect("amx asks the cap");
                assert!(code.find("__cpuid").is_some_and(|c| c > gate), "amx checks the cap before CPUID");
            }
        }
    }
}
