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
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident : $ty:ty),*) => $body:ident) => {
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) {
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
                if crate::cpu::avx512f() {
                    // SAFETY: the CPU has the features the function was compiled for.
                    return unsafe { wide($($arg),*) };
                }
                if crate::cpu::avx2_fma() {
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
    // e^r, Taylor to degree 7 (truncation < 6e-9 on |r| <= 0.35). mul_add
    // is one instruction in the FMA builds `dispatch!` picks on any x86 CPU
    // since 2013 (and on aarch64); only the baseline x86 build pays a call.
    let p = 1.0 / 5040.0_f32;
    let p = p.mul_add(r, 1.0 / 720.0);
    let p = p.mul_add(r, 1.0 / 120.0);
    let p = p.mul_add(r, 1.0 / 24.0);
    let p = p.mul_add(r, 1.0 / 6.0);
    let p = p.mul_add(r, 0.5);
    let p = p.mul_add(r, 1.0);
    let p = p.mul_add(r, 1.0);
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
fn gelu_body(rows: &mut [f32], bias: &[f32]) {
    for row in rows.chunks_exact_mut(bias.len()) {
        for (v, b) in row.iter_mut().zip(bias) {
            let z = *v + b;
            *v = 0.5 * z * (1.0 + erf(z * std::f32::consts::FRAC_1_SQRT_2));
        }
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
fn softmax_body(rows: &mut [f32], width: usize, scale: f32, inv_sums: &mut [f32]) {
    for (row, inv) in rows.chunks_exact_mut(width).zip(inv_sums) {
        let m = max(row);
        for v in row.iter_mut() {
            *v = exp((*v - m) * scale);
        }
        *inv = 1.0 / sum(row);
    }
}

/// Unnormalised softmax of each `width`-long row scaled by `scale` (> 0),
/// in place: row ← `exp(scale · (row − max row))`, and `inv_sums[i]` ←
/// 1 / Σ row i, the factor that makes it a softmax. (Attention applies the
/// factor to its 32-wide output rows instead of the 256-wide score rows.)
pub fn softmax_unnormalised(rows: &mut [f32], width: usize, scale: f32, inv_sums: &mut [f32]) {
    assert!(inv_sums.len() * width >= rows.len());
    #[cfg(target_arch = "x86_64")]
    {
        if crate::cpu::avx512f() {
            // SAFETY: the CPU has AVX-512F.
            return unsafe { x86::softmax_avx512(rows, width, scale, inv_sums) };
        }
        if crate::cpu::avx2_fma() {
            #[target_feature(enable = "avx2,fma")]
            unsafe fn narrow(rows: &mut [f32], width: usize, scale: f32, inv_sums: &mut [f32]) {
                softmax_body(rows, width, scale, inv_sums)
            }
            // SAFETY: the CPU has AVX2 and FMA.
            return unsafe { narrow(rows, width, scale, inv_sums) };
        }
    }
    softmax_body(rows, width, scale, inv_sums)
}

/// Softmax of each `width`-long row scaled by `scale` (> 0), in place:
/// `softmax(scale · row)`.
pub fn softmax(rows: &mut [f32], width: usize, scale: f32) {
    let mut inv = vec![0f32; rows.len() / width.max(1)];
    softmax_unnormalised(rows, width, scale, &mut inv);
    for (row, inv) in rows.chunks_exact_mut(width).zip(&inv) {
        for v in row {
            *v *= inv;
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// 16 lanes of [`super::exp`]'s recipe; `vscalefps` applies the 2^n.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn exp16(x: __m512) -> __m512 {
        let x = _mm512_max_ps(_mm512_min_ps(x, _mm512_set1_ps(88.0)), _mm512_set1_ps(-87.0));
        let n = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm512_mul_ps(
            x,
            _mm512_set1_ps(std::f32::consts::LOG2_E),
        ));
        let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693_359_4), x);
        let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.121_944_4e-4), r);
        let mut p = _mm512_set1_ps(1.0 / 5040.0);
        for c in [1.0 / 720.0, 1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0] {
            p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c));
        }
        _mm512_scalef_ps(p, n)
    }

    /// [`super::bias_gelu`]: the same erf recipe, with the division
    /// `1 / (1 + p·|x|)` done as a reciprocal estimate and one Newton step
    /// (relative error ~2⁻²⁸, below f32's) instead of `vdivps`, whose
    /// 512-bit form issues only every several cycles.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn gelu_avx512(rows: &mut [f32], bias: &[f32]) {
        let one = _mm512_set1_ps(1.0);
        let gelu16 = |z: __m512| -> __m512 {
            let u = _mm512_mul_ps(z, _mm512_set1_ps(std::f32::consts::FRAC_1_SQRT_2));
            let a = _mm512_abs_ps(u);
            let den = _mm512_fmadd_ps(a, _mm512_set1_ps(0.327_591_1), one);
            let t = _mm512_rcp14_ps(den);
            let t = _mm512_mul_ps(t, _mm512_fnmadd_ps(den, t, _mm512_set1_ps(2.0)));
            let mut poly = _mm512_set1_ps(1.061_405_4);
            for c in [-1.453_152, 1.421_413_7, -0.284_496_74, 0.254_829_6] {
                poly = _mm512_fmadd_ps(poly, t, _mm512_set1_ps(c));
            }
            poly = _mm512_mul_ps(poly, t);
            let e = exp16(_mm512_sub_ps(_mm512_setzero_ps(), _mm512_mul_ps(a, a)));
            // erf(|u|) = 1 − poly·e; the sign of u restored by xor.
            let erf_abs = _mm512_fnmadd_ps(poly, e, one);
            let sign = _mm512_and_si512(_mm512_castps_si512(u), _mm512_set1_epi32(i32::MIN));
            let erf = _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(erf_abs), sign));
            _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5), z), _mm512_add_ps(one, erf))
        };
        let width = bias.len();
        let (full, b) = (width / 16, bias.as_ptr());
        let tail: __mmask16 = ((1u32 << (width % 16)) - 1) as u16;
        for row in rows.chunks_exact_mut(width) {
            let p = row.as_mut_ptr();
            for i in 0..full {
                let z = _mm512_add_ps(_mm512_loadu_ps(p.add(i * 16)), _mm512_loadu_ps(b.add(i * 16)));
                _mm512_storeu_ps(p.add(i * 16), gelu16(z));
            }
            if tail != 0 {
                let (q, bq) = (p.add(full * 16), b.add(full * 16));
                let z = _mm512_add_ps(_mm512_maskz_loadu_ps(tail, q), _mm512_maskz_loadu_ps(tail, bq));
                _mm512_mask_storeu_ps(q, tail, gelu16(z));
            }
        }
    }

    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn softmax_avx512(rows: &mut [f32], width: usize, scale: f32, inv_sums: &mut [f32]) {
        let full = width / 16;
        let tail: __mmask16 = ((1u32 << (width % 16)) - 1) as u16;
        for (row, inv) in rows.chunks_exact_mut(width).zip(inv_sums) {
            let p = row.as_mut_ptr();
            let mut mx = _mm512_set1_ps(f32::NEG_INFINITY);
            for i in 0..full {
                mx = _mm512_max_ps(mx, _mm512_loadu_ps(p.add(i * 16)));
            }
            if tail != 0 {
                mx = _mm512_mask_max_ps(mx, tail, mx, _mm512_maskz_loadu_ps(tail, p.add(full * 16)));
            }
            // exp(scale·(v − max)): subtracting first keeps the argument
            // exact at the maximum (a fused scale·v − scale·max does not).
            let (s, mx) = (_mm512_set1_ps(scale), _mm512_set1_ps(_mm512_reduce_max_ps(mx)));
            let mut sum = _mm512_setzero_ps();
            for i in 0..full {
                let e = exp16(_mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(p.add(i * 16)), mx), s));
                _mm512_storeu_ps(p.add(i * 16), e);
                sum = _mm512_add_ps(sum, e);
            }
            if tail != 0 {
                let q = p.add(full * 16);
                let e = exp16(_mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(tail, q), mx), s));
                _mm512_mask_storeu_ps(q, tail, e);
                sum = _mm512_mask_add_ps(sum, tail, sum, e);
            }
            *inv = 1.0 / _mm512_reduce_add_ps(sum);
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

/// Bias then exact GELU, in place: each `bias.len()`-wide row ←
/// `GELU(row + bias)`, `GELU(z) = 0.5·z·(1 + erf(z/√2))` (the bias of the
/// layer whose product wrote the rows, so the product need not start from it).
pub fn bias_gelu(rows: &mut [f32], bias: &[f32]) {
    assert!(!bias.is_empty() && rows.len().is_multiple_of(bias.len()));
    #[cfg(target_arch = "x86_64")]
    {
        if crate::cpu::avx512f() {
            // SAFETY: the CPU has AVX-512F.
            return unsafe { x86::gelu_avx512(rows, bias) };
        }
    }
    gelu_portable(rows, bias)
}

dispatch! {
    /// [`bias_gelu`] by the compiler's vectorisation (AVX2 and older CPUs).
    fn gelu_portable(rows: &mut [f32], bias: &[f32]) => gelu_body
}

dispatch! {
    /// Layer norm of each `width`-long row, in place.
    pub fn layer_norm(rows: &mut [f32], width: usize, gamma: &[f32], beta: &[f32], eps: f32) => layer_norm_body
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
    fn vector_and_portable_paths_match_the_formulas() {
        let xs: Vec<f32> = (-9000..9000).map(|i| i as f32 / 1000.0 + 0.000_3).collect();
        type Gelu = fn(&mut [f32], &[f32]);
        // Row widths with and without a partial vector; the bias is added.
        for width in [1000, 37] {
            let bias: Vec<f32> = (0..width).map(|i| (i % 7) as f32 * 0.25 - 0.75).collect();
            let n = xs.len() / width * width;
            for (name, f) in [("dispatched", bias_gelu as Gelu), ("portable", gelu_portable)] {
                let mut g = xs.clone();
                f(&mut g[..n], &bias);
                for (i, (got, &x)) in g.iter().zip(&xs).take(n).enumerate() {
                    let z = x as f64 + bias[i % width] as f64;
                    let want = 0.5 * z * (1.0 + erf64(z / std::f64::consts::SQRT_2));
                    assert!((*got as f64 - want).abs() < 1e-6 * z.abs().max(1.0), "{name} gelu({z}) = {got}");
                }
                assert_eq!(&g[n..], &xs[n..], "{name} wrote past its slice");
            }
        }
        // Rows whose widths leave every tail length, large and tiny scores.
        for width in [1, 15, 16, 17, 33, 256, 257] {
            let rows: Vec<f32> = (0..width * 3).map(|i| ((i * 7919 % 211) as f32 - 105.0) * 0.9).collect();
            let (mut fast, mut slow) = (rows.clone(), rows.clone());
            let (mut inv_fast, mut inv_slow) = (vec![0f32; 3], vec![0f32; 3]);
            softmax_unnormalised(&mut fast, width, 0.3, &mut inv_fast);
            softmax_body(&mut slow, width, 0.3, &mut inv_slow);
            for (r, row) in rows.chunks(width).enumerate() {
                let m = row.iter().cloned().fold(f32::MIN, f32::max) as f64;
                let z: f64 = row.iter().map(|&v| ((v as f64 - m) * 0.3).exp()).sum();
                for (i, &v) in row.iter().enumerate() {
                    let arg = (v as f64 - m) * 0.3;
                    let want = arg.exp();
                    // exp's own error plus two f32 roundings of its
                    // argument (v − max, then × scale).
                    let tolerance = (3e-7 + arg.abs() * 2.4e-7) * want;
                    for (name, out, inv) in [("dispatched", &fast, &inv_fast), ("portable", &slow, &inv_slow)] {
                        let got = out[r * width + i] as f64;
                        assert!((got - want).abs() <= tolerance, "{name} width {width}: {got} vs {want}");
                        assert!((inv[r] as f64 * z - 1.0).abs() < 1e-6, "{name} width {width}: 1/sum");
                    }
                }
            }
        }
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
        for scale in [1.0, 0.17] {
            let mut s = orig.clone();
            softmax(&mut s, width, scale);
            for (r, o) in s.chunks(width).zip(orig.chunks(width)) {
                let m = o.iter().cloned().fold(f32::MIN, f32::max) as f64;
                let z: f64 = o.iter().map(|&v| ((v as f64 - m) * scale as f64).exp()).sum();
                for i in 0..width {
                    assert!((r[i] as f64 - ((o[i] as f64 - m) * scale as f64).exp() / z).abs() < 1e-6);
                }
            }
        }
        let mut g = orig.clone();
        bias_gelu(&mut g, &vec![0.0; width]);
        for (got, &x) in g.iter().zip(&orig) {
            let want = 0.5 * x as f64 * (1.0 + erf64(x as f64 / std::f64::consts::SQRT_2));
            assert!((*got as f64 - want).abs() < 1e-6, "gelu({x}) = {got}, want {want}");
        }
        let mut a = orig.clone();
        add_rows(&mut a, &beta);
        assert_eq!(a[width + 3], orig[width + 3] + beta[3]);
    }
}
