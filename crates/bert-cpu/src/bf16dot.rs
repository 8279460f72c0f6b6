//! `C (+)= A · Wᵀ` in bf16 with f32 accumulation on AVX-512 BF16
//! (`VDPBF16PS`: AMD Zen 4 and later, Intel Cooper Lake and Sapphire Rapids
//! and later), for CPUs where AMX is absent.
//!
//! `VDPBF16PS` multiplies 16 pairs of bf16 values and adds each pair's two
//! products to an f32 lane: 32 multiply-adds per instruction, twice what an
//! f32 FMA does in the same register width. Inputs are rounded to bf16 (8
//! bits of mantissa), so this is [`crate::Precision::Bf16`]'s arithmetic,
//! the same as AMX's plain-bf16 mode; the sums stay f32.
//!
//! Layout: W (`[n, k]`, as stored) is packed once at load into column tiles
//! of [`TILE`] outputs, as in [`crate::packed`], but by depth pairs: tile t
//! holds, for each pair `p` of depths `(2p, 2p + 1)`, the 32 dwords
//! `(W[j, 2p], W[j, 2p + 1])` of outputs `j = t·TILE ..` (low half the even
//! depth), so one `VDPBF16PS` against a broadcast pair `(a[2p], a[2p + 1])`
//! advances 16 outputs by two depths. An odd `k` is padded with a zero
//! depth. A product's left operand is converted to bf16 rows once per
//! product ([`convert_rows`]).

use crate::packed::{finish, row_block, TILE};

/// Whether this CPU has AVX-512 BF16 (with the F and BW subsets the
/// conversion uses) and [`crate::cpu`] allows it; the checks are cached.
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        crate::cpu::avx512f()
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("avx512bf16")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// f32 to bf16, rounding to nearest even (as `VCVTNEPS2BF16` does for
/// normal numbers).
#[inline(always)]
pub fn to_bf16(x: f32) -> u16 {
    let b = x.to_bits();
    if x.is_nan() {
        return ((b >> 16) | 0x40) as u16;
    }
    (b.wrapping_add(0x7FFF + ((b >> 16) & 1)) >> 16) as u16
}

/// Depth pairs of a row of `k` values.
pub fn pairs(k: usize) -> usize {
    k.div_ceil(2)
}

/// Depths `2p` and `2p + 1` of `row` as one dword of bf16 values (the even
/// depth in the low half; past an odd row's end, 0).
#[inline(always)]
fn pair(row: &[f32], p: usize) -> u32 {
    let lo = to_bf16(row[2 * p]) as u32;
    let hi = row.get(2 * p + 1).map_or(0, |&v| to_bf16(v) as u32);
    lo | (hi << 16)
}

/// A weight packed for [`Bf16Weight::matmul`].
pub struct Bf16Weight {
    n: usize,
    k: usize,
    /// `tiles × pairs(k) × TILE` dwords, zero-padded past `n` (and past an
    /// odd `k`).
    data: Vec<u32>,
}

impl Bf16Weight {
    /// Packs `w`, stored `[n, k]` row-major.
    pub fn new(w: &[f32], n: usize, k: usize) -> Self {
        assert_eq!(w.len(), n * k);
        let kp = pairs(k);
        let tiles = n.div_ceil(TILE);
        let mut data = vec![0u32; tiles * kp * TILE];
        for j in 0..n {
            let (t, jj) = (j / TILE, j % TILE);
            let row = &w[j * k..(j + 1) * k];
            for p in 0..kp {
                data[(t * kp + p) * TILE + jj] = pair(row, p);
            }
        }
        Self { n, k, data }
    }

    pub fn tiles(&self) -> usize {
        self.n.div_ceil(TILE)
    }

    /// `c[m × n] (+)= a · Wᵀ` for output tiles `tiles`, where `a` is `m`
    /// rows of `pairs(k)` dwords from [`convert_rows`] and `c` is row-major
    /// with row stride `ldc`.
    ///
    /// # Safety
    /// The CPU must have AVX-512 BF16 ([`available`]); `a` must hold `m ×
    /// pairs(k)` dwords; `c` must hold `m` rows at stride `ldc` covering the
    /// columns of `tiles`, and no other thread may write those rows ×
    /// columns meanwhile.
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn matmul(
        &self,
        m: usize,
        a: *const u32,
        c: *mut f32,
        ldc: usize,
        tiles: std::ops::Range<usize>,
        accumulate: bool,
    ) {
        #[cfg(target_arch = "x86_64")]
        {
            matmul_avx512bf16(self, m, a, c, ldc, tiles, accumulate)
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = (m, a, c, ldc, tiles, accumulate);
            unreachable!("bf16 dot products need x86-64 AVX-512 BF16")
        }
    }
}

/// Converts rows of `a` (`rows × k`, row-major) into `rows × pairs(k)`
/// dwords of bf16 pairs (the even depth in the low half).
pub fn convert_rows(a: &[f32], k: usize, out: &mut [u32]) {
    let kp = pairs(k);
    assert_eq!(a.len() / k * kp, out.len(), "convert_rows: output is not rows x pairs");
    #[cfg(target_arch = "x86_64")]
    if available() && k.is_multiple_of(32) {
        // SAFETY: checked above; whole 32-value blocks per row.
        unsafe { convert_rows_avx512(a, k, out) };
        return;
    }
    for (row, dst) in a.chunks_exact(k).zip(out.chunks_exact_mut(kp)) {
        for (p, d) in dst.iter_mut().enumerate() {
            *d = pair(row, p);
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16,avx512bw")]
unsafe fn convert_rows_avx512(a: &[f32], k: usize, out: &mut [u32]) {
    use std::arch::x86_64::*;
    let kp = k / 2;
    for (row, dst) in a.chunks_exact(k).zip(out.chunks_exact_mut(kp)) {
        for b in 0..k / 32 {
            let src = row.as_ptr().add(b * 32);
            // Lanes 0..16 from the second operand, 16..32 from the first:
            // 32 bf16 values in depth order, i.e. 16 pairs.
            let v = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(src.add(16)), _mm512_loadu_ps(src));
            _mm512_storeu_si512(
                dst.as_mut_ptr().add(b * 16) as *mut __m512i,
                std::mem::transmute::<__m512bh, __m512i>(v),
            );
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
#[allow(clippy::too_many_arguments)]
unsafe fn matmul_avx512bf16(
    w: &Bf16Weight,
    m: usize,
    a: *const u32,
    c: *mut f32,
    ldc: usize,
    tiles: std::ops::Range<usize>,
    accumulate: bool,
) {
    let kp = pairs(w.k);
    for t in tiles {
        let tile = w.data.as_ptr().add(t * kp * TILE);
        let cols = TILE.min(w.n - t * TILE);
        let mut row = 0;
        // Register blocks of up to 12 rows, as the f32 kernel's.
        while row < m {
            let r = row_block(m - row);
            let (a, c) = (a.add(row * kp), c.add(row * ldc + t * TILE));
            macro_rules! go {
                ($($n:literal)*) => {
                    match r {
                        $($n => block::<$n>(tile, kp, a, c, ldc, cols, accumulate),)*
                        _ => unreachable!(),
                    }
                };
            }
            go!(1 2 3 4 5 6 7 8 9 10 11 12);
            row += r;
        }
    }
}

/// R rows × 32 outputs: 2·R zmm accumulators.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn block<const R: usize>(
    tile: *const u32,
    kp: usize,
    a: *const u32,
    c: *mut f32,
    ldc: usize,
    cols: usize,
    accumulate: bool,
) {
    use std::arch::x86_64::*;
    let mut lo = [_mm512_setzero_ps(); R];
    let mut hi = [_mm512_setzero_ps(); R];
    for p in 0..kp {
        // 2 KiB ahead (the hardware prefetcher stops at page ends);
        // wrapping: the address may lie past the tile.
        _mm_prefetch::<_MM_HINT_T0>(tile.wrapping_add((p + 16) * TILE) as *const i8);
        let w0: __m512bh = std::mem::transmute(_mm512_loadu_si512(tile.add(p * TILE) as *const __m512i));
        let w1: __m512bh = std::mem::transmute(_mm512_loadu_si512(tile.add(p * TILE + 16) as *const __m512i));
        for r in 0..R {
            let av: __m512bh = std::mem::transmute(_mm512_set1_epi32(*a.add(r * kp + p) as i32));
            lo[r] = _mm512_dpbf16_ps(lo[r], av, w0);
            hi[r] = _mm512_dpbf16_ps(hi[r], av, w1);
        }
    }
    for r in 0..R {
        let dst = c.add(r * ldc);
        if cols == TILE {
            let (mut l, mut h) = (lo[r], hi[r]);
            if accumulate {
                l = _mm512_add_ps(l, _mm512_loadu_ps(dst));
                h = _mm512_add_ps(h, _mm512_loadu_ps(dst.add(16)));
            }
            _mm512_storeu_ps(dst, l);
            _mm512_storeu_ps(dst.add(16), h);
        } else {
            let mut acc = [0f32; TILE];
            _mm512_storeu_ps(acc.as_mut_ptr(), lo[r]);
            _mm512_storeu_ps(acc.as_mut_ptr().add(16), hi[r]);
            finish(&acc, dst, cols, accumulate);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from_bf16(h: u16) -> f32 {
        f32::from_bits((h as u32) << 16)
    }

    /// The kernel against a plain product of the same bf16-rounded inputs
    /// (f32 sums): equal up to summation order, for odd shapes, both
    /// accumulate modes and every row-block size.
    #[test]
    fn matches_the_rounded_product_for_odd_shapes() {
        if !available() {
            eprintln!("skipped: this CPU has no AVX-512 BF16");
            return;
        }
        let mut seed = 7u64;
        let mut rnd = || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((seed >> 33) as f32 / (1u64 << 31) as f32) - 0.5
        };
        for &(m, n, k) in &[(1, 1, 1), (3, 33, 7), (13, 64, 384), (25, 70, 96), (12, 32, 31), (40, 384, 1536)] {
            let w: Vec<f32> = (0..n * k).map(|_| rnd()).collect();
            let a: Vec<f32> = (0..m * k).map(|_| rnd()).collect();
            let packed = Bf16Weight::new(&w, n, k);
            let mut conv = vec![0u32; m * pairs(k)];
            convert_rows(&a, k, &mut conv);
            for accumulate in [false, true] {
                let start: Vec<f32> = (0..m * n).map(|_| rnd()).collect();
                let mut c = start.clone();
                unsafe { packed.matmul(m, conv.as_ptr(), c.as_mut_ptr(), n, 0..packed.tiles(), accumulate) };
                for i in 0..m {
                    for j in 0..n {
                        let mut want = if accumulate { start[i * n + j] as f64 } else { 0.0 };
                        for kk in 0..k {
                            want += from_bf16(to_bf16(a[i * k + kk])) as f64 * from_bf16(to_bf16(w[j * k + kk])) as f64;
                        }
                        let got = c[i * n + j] as f64;
                        assert!(
                            (got - want).abs() < 1e-4 * (k as f64).sqrt(),
                            "{m}x{n}x{k} [{i},{j}]: {got} vs {want}"
                        );
                    }
                }
            }
        }
    }

    /// Single-thread GFLOP/s of the kernel on the model's products with
    /// many rows, all rows at once against chunks of rows (the model's
    /// `ROW_CHUNK`): `cargo test --release -p bert-cpu --lib
    /// bf16_rows_speed -- --ignored --nocapture` (run two at once to see
    /// both cores share L3 and memory).
    #[test]
    #[ignore]
    fn bf16_rows_speed() {
        if !available() {
            eprintln!("skipped: this CPU has no AVX-512 BF16");
            return;
        }
        for (m, n, k) in [(256, 384, 1536), (4096, 384, 1536), (4096, 1536, 384)] {
            let w: Vec<f32> = (0..n * k).map(|i| (i % 7) as f32 * 0.01).collect();
            let a: Vec<f32> = (0..m * k).map(|i| (i % 5) as f32 * 0.01).collect();
            let packed = Bf16Weight::new(&w, n, k);
            let mut conv = vec![0u32; m * pairs(k)];
            convert_rows(&a, k, &mut conv);
            let mut c = vec![0f32; m * n];
            let reps = 200 * 256 / m;
            for chunk in [48, 96, 192, m] {
                let t = std::time::Instant::now();
                for _ in 0..reps {
                    for r0 in (0..m).step_by(chunk) {
                        let rows = chunk.min(m - r0);
                        let (a, c) = (conv[r0 * pairs(k)..].as_ptr(), c[r0 * n..].as_mut_ptr());
                        unsafe { packed.matmul(rows, a, c, n, 0..packed.tiles(), false) };
                    }
                }
                let gflops = (reps * 2 * m * n * k) as f64 / t.elapsed().as_secs_f64() / 1e9;
                eprintln!("{m} x {n} x {k}, chunks of {chunk} rows: {gflops:.0} GFLOP/s");
            }
        }
    }

    /// The vectorised conversion rounds as the scalar one does.
    #[test]
    fn vector_and_scalar_conversions_agree() {
        let a: Vec<f32> = (0..2 * 64).map(|i| (i as f32 * 0.37).sin() * 1e3 + 1.0 / (i as f32 + 1.0)).collect();
        let mut v = vec![0u32; 2 * 32];
        convert_rows(&a, 64, &mut v);
        for (p, d) in v.iter().enumerate() {
            let (row, q) = (p / 32, p % 32);
            assert_eq!(*d & 0xFFFF, to_bf16(a[row * 64 + 2 * q]) as u32, "pair {p} low");
            assert_eq!(*d >> 16, to_bf16(a[row * 64 + 2 * q + 1]) as u32, "pair {p} high");
        }
    }
}
