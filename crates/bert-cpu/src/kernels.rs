//! Element-wise kernels: layer norm, exact (erf) GELU, softmax, written so
//! the compiler vectorises them, and compiled three times (AVX-512, AVX2+FMA,
//! baseline) with the widest the CPU has picked at run time.
//!
//! `exp` and `erf` are our own branch-free approximations (libm's are scalar
//! calls that block vectorisation): `exp` by range reduction to 2^n · 2^f
//! with a degree-7 polynomial (relative error < 2e-7), `erf` by Abramowitz &
//! Stegun 7.1.26 (absolute error < 1e-6 in f32). Both are far below what changes
//! a sentence embedding at f32 (the parity test holds at cosine ≥ 0.99999).

const LANES: usize = 16;

/// Runs `$body` compiled for the best instruction set the CPU has.
macro_rules! dispatch {
    ($(#[$meta:meta])* pub fn $name:ident($($arg:ident : $ty:ty),*) => $body:ident) => {
        $(#[$meta])*
        pub fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx2,fma")]
                unsafe fn wide($($arg: $ty),*) {
                    $body($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn narrow($($arg: $ty),*) {
                    $body($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU has the features the function was compiled for.
                    return unsafe { wide($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                    // SAFETY: as above.
                    return unsafe { narrow($($arg),*) };
                }
            }
            $body($($arg),*)
        }
    };
}

#[inline(always)]
fn sum(x: &[f32]) -> f32 {
    let mut acc = [0f32; LANES];
    let chunks = x.chunks_exact(LANES);
    let tail: f32 = chunks.remainder().iter().sum();
    for c in chunks {
        for i in 0..LANES {
            acc[i] += c[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

#[inline(always)]
fn max(x: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; LANES];
    let chunks = x.chunks_exact(LANES);
    let tail = chunks.remainder().iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    for c in chunks {
        for i in 0..LANES {
            acc[i] = acc[i].max(c[i]);
        }
    }
    acc.iter().fold(tail, |m, &v| m.max(v))
}

/// e^x for x in [-87, 88] (clamped outside), relative error < 3e-7 where
/// the result is a normal float.
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // ln 2 split in two (Cody & Waite) so x − n·ln 2 loses no bits.
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // 1.5·2^23: adding it rounds to an integer held in the low mantissa bits.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let shifted = x * LOG2E + ROUND;
    let n = shifted - ROUND;
    let r = (x - n * LN2_HI) - n * LN2_LO; // |r| <= ln 2 / 2
    let ni = shifted.to_bits().wrapping_sub(ROUND.to_bits()) as i32;
    // e^r, Taylor to degree 7 (truncation < 6e-9 on |r| <= 0.35).
    let p = 1.0 / 5040.0_f32;
    let p = p * r + 1.0 / 720.0;
    let p = p * r + 1.0 / 120.0;
    let p = p * r + 1.0 / 24.0;
    let p = p * r + 1.0 / 6.0;
    let p = p * r + 0.5;
    let p = p * r + 1.0;
    let p = p * r + 1.0;
    p * f32::from_bits(((ni + 127) as u32) << 23)
}

/// erf(x), absolute error < 1e-6 in f32 (Abramowitz & Stegun 7.1.26, whose
/// own error is 1.5e-7; the rest is f32 rounding of `1 − poly·e^(−x²)`).
#[inline(always)]
pub(crate) fn erf(x: f32) -> f32 {
    let a = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let poly = t * (0.254_829_6 + t * (-0.284_496_74 + t * (1.421_413_7 + t * (-1.453_152 + t * 1.061_405_4))));
    let y = 1.0 - poly * exp(-a * a);
    y.copysign(x)
}

#[inline(always)]
fn gelu_body(x: &mut [f32]) {
    for v in x.iter_mut() {
        let z = *v;
        *v = 0.5 * z * (1.0 + erf(z * std::f32::consts::FRAC_1_SQRT_2));
    }
}

#[inline(always)]
fn layer_norm_body(rows: &mut [f32], width: usize, gamma: &[f32], beta: &[f32], eps: f32) {
    for row in rows.chunks_exact_mut(width) {
        let mean = sum(row) / width as f32;
        for v in row.iter_mut() {
            *v -= mean;
        }
        let mut acc = [0f32; LANES];
        let chunks = row.chunks_exact(LANES);
        let tail: f32 = chunks.remainder().iter().map(|v| v * v).sum();
        for c in chunks {
            for i in 0..LANES {
                acc[i] += c[i] * c[i];
            }
        }
        let var = (acc.iter().sum::<f32>() + tail) / width as f32;
        let inv = 1.0 / (var + eps).sqrt();
        for ((v, g), b) in row.iter_mut().zip(gamma).zip(beta) {
            *v = *v * inv * g + b;
        }
    }
}

#[inline(always)]
fn softmax_body(rows: &mut [f32], width: usize) {
    for row in rows.chunks_exact_mut(width) {
        let m = max(row);
        for v in row.iter_mut() {
            *v = exp(*v - m);
        }
        let inv = 1.0 / sum(row);
        for v in row.iter_mut() {
            *v *= inv;
        }
    }
}

#[inline(always)]
fn add_rows_body(rows: &mut [f32], row: &[f32]) {
    for r in rows.chunks_exact_mut(row.len()) {
        for (v, b) in r.iter_mut().zip(row) {
            *v += b;
        }
    }
}

dispatch! {
    /// Exact GELU, `0.5·x·(1 + erf(x/√2))`, in place.
    pub fn gelu(x: &mut [f32]) => gelu_body
}

dispatch! {
    /// Layer norm of each `width`-long row, in place.
    pub fn layer_norm(rows: &mut [f32], width: usize, gamma: &[f32], beta: &[f32], eps: f32) => layer_norm_body
}

dispatch! {
    /// Softmax of each `width`-long row, in place.
    pub fn softmax(rows: &mut [f32], width: usize) => softmax_body
}

dispatch! {
    /// Adds `row` to every row of `rows`.
    pub fn add_rows(rows: &mut [f32], row: &[f32]) => add_rows_body
}

#[cfg(test)]
mod tests {
    use super::*;

    fn erf64(x: f64) -> f64 {
        // High-precision reference by the series / continued fraction.
        if x.abs() < 3.0 {
            let mut sum = x;
            let mut term = x;
            let mut n = 0.0;
            loop {
                n += 1.0;
                term *= -x * x / n;
                let add = term / (2.0 * n + 1.0);
                sum += add;
                if add.abs() < 1e-17 {
                    break;
                }
            }
            2.0 / std::f64::consts::PI.sqrt() * sum
        } else {
            // erfc continued fraction (Lentz), accurate for |x| >= 3.
            let a = x.abs();
            let mut f = 0.0;
            for k in (1..60).rev() {
                f = (k as f64 / 2.0) / (a + f);
            }
            let erfc = (-a * a).exp() / std::f64::consts::PI.sqrt() / (a + f);
            (1.0 - erfc).copysign(x)
        }
    }

    #[test]
    fn exp_is_accurate() {
        let mut worst = 0f64;
        let mut x = -80.0f32;
        while x < 88.0 {
            let got = exp(x) as f64;
            let want = (x as f64).exp();
            worst = worst.max(((got - want) / want).abs());
            x += 0.01;
        }
        assert!(worst < 3e-7, "worst relative error {worst}");
        assert!(exp(-80.0) > 0.0 && exp(100.0).is_finite());
        assert_eq!(exp(-1000.0), exp(-87.0));
        assert!(exp(0.0) == 1.0);
    }

    #[test]
    fn erf_is_accurate() {
        let mut worst = 0f64;
        let mut x = -6.0f32;
        while x < 6.0 {
            worst = worst.max((erf(x) as f64 - erf64(x as f64)).abs());
            x += 0.001;
        }
        assert!(worst < 1e-6, "worst absolute error {worst}");
    }

    #[test]
    fn kernels_match_plain_formulas() {
        let width = 37;
        let mut rows: Vec<f32> = (0..width * 3).map(|i| ((i * 7919 % 101) as f32 - 50.0) / 9.0).collect();
        let orig = rows.clone();
        let gamma: Vec<f32> = (0..width).map(|i| 1.0 + i as f32 / 100.0).collect();
        let beta: Vec<f32> = (0..width).map(|i| i as f32 / 50.0).collect();
        layer_norm(&mut rows, width, &gamma, &beta, 1e-12);
        for (r, o) in rows.chunks(width).zip(orig.chunks(width)) {
            let mean = o.iter().map(|&v| v as f64).sum::<f64>() / width as f64;
            let var = o.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / width as f64;
            for i in 0..width {
                let want = (o[i] as f64 - mean) / (var + 1e-12).sqrt() * gamma[i] as f64 + beta[i] as f64;
                assert!((r[i] as f64 - want).abs() < 1e-5, "{} vs {want}", r[i]);
            }
        }
        let mut s = orig.clone();
        softmax(&mut s, width);
        for (r, o) in s.chunks(width).zip(orig.chunks(width)) {
            let m = o.iter().cloned().fold(f32::MIN, f32::max) as f64;
            let z: f64 = o.iter().map(|&v| (v as f64 - m).exp()).sum();
            for i in 0..width {
                assert!((r[i] as f64 - (o[i] as f64 - m).exp() / z).abs() < 1e-6);
            }
        }
        let mut g = orig.clone();
        gelu(&mut g);
        for (got, &x) in g.iter().zip(&orig) {
            let want = 0.5 * x as f64 * (1.0 + erf64(x as f64 / std::f64::consts::SQRT_2));
            assert!((*got as f64 - want).abs() < 1e-6, "gelu({x}) = {got}, want {want}");
        }
        let mut a = orig.clone();
        add_rows(&mut a, &beta);
        assert_eq!(a[width + 3], orig[width + 3] + beta[3]);
    }
}
