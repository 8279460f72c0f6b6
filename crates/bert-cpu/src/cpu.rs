//! Which instruction sets the kernels may use: what the CPU reports, capped
//! by the environment variable [`ENV`] when it is set.
//!
//! Our machines are not all the same CPU: some are Intel with AVX-512 and
//! AMX, some AMD Zen 3 with AVX2 only. Every kernel is chosen at run time, so
//! a machine with the wider sets never runs the narrower paths on its own.
//! `CONTEXT_ENGINE_CPU_ISA=avx2` makes it run them: no AVX-512 (so no
//! AVX-512 BF16 and no AMX either, and `auto` precision resolves to f32), as
//! an AVX2-only CPU would; `baseline` goes down to the portable code. The
//! whole-model parity test runs under both caps, and the benchmarks use it
//! to measure the AVX2 path on an AVX-512 machine (README, Measured). The
//! BLAS library opened at run time picks its own kernels: OpenBLAS takes
//! `OPENBLAS_CORETYPE=Haswell` for the same effect.

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
            "" | "native" | "auto" => Ok(Self::Native),
            "avx2" => Ok(Self::Avx2),
            "baseline" | "portable" => Ok(Self::Baseline),
            other => Err(format!("{ENV}={other:?}: expected native, avx2 or baseline")),
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
/// is not one of `native`, `avx2`, `baseline`. Loading a model checks it,
/// so the kernels never run under a value nobody meant.
pub fn cap() -> Result<Cap, String> {
    read().clone()
}

fn allowed(at_least: Cap) -> bool {
    read().as_ref().map_or(true, |&c| c >= at_least)
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
        let err = Cap::parse("avx512").unwrap_err();
        assert!(err.contains(ENV) && err.contains("avx512"), "{err}");
        assert!(Cap::Baseline < Cap::Avx2 && Cap::Avx2 < Cap::Native);
    }
}
