//! `C (+)= A · Wᵀ` against a weight matrix packed once at load time.
//!
//! BLAS packs its B operand on every call; for the few rows of a chat query
//! (10–30 tokens) that packing and the trip through memory it causes cost
//! more than the arithmetic. Here W (`[n, k]`, as stored in the checkpoint)
//! is laid out once as column tiles of [`TILE`] outputs: tile t holds, for
//! each k, the `TILE` weights of outputs `t·TILE ..`, contiguous. A tile
//! (k·TILE floats, 48 KiB at k = 384) stays in L2 while every row block of A
//! streams past it, so each weight is read from memory once per call.
//!
//! The micro-kernels keep `R × TILE` accumulators in registers (AVX-512: 8
//! to 12 rows, 24 zmm; AVX2+FMA: 2 rows, 8 ymm), chosen at run time; other CPUs get
//! plain loops.

/// Outputs per tile.
pub const TILE: usize = 32;

/// Rows of the next register block when `left` rows remain: at most 12 (24
/// zmm accumulators), in blocks of near-equal size (256 rows: 11 and 12, not
/// 21 × 12 and a slow 4).
#[inline(always)]
pub(crate) fn row_block(left: usize) -> usize {
    left.div_ceil(left.div_ceil(12))
}

/// Writes (or adds) one row's accumulated tile, `cols` ≤ TILE values.
///
/// # Safety
/// `c` must hold `cols` values no other thread writes meanwhile.
#[inline(always)]
pub(crate) unsafe fn finish(acc: &[f32; TILE], c: *mut f32, cols: usize, accumulate: bool) {
    let out = std::slice::from_raw_parts_mut(c, cols);
    if accumulate {
        for (o, v) in out.iter_mut().zip(acc) {
            *o += v;
        }
    } else {
        out.copy_from_slice(&acc[..cols]);
    }
}

/// Packs the whole groups of 16 of a tile's `cols` outputs by 16 × 16
/// register transposes (attention packs K for every text and head:
/// scattered scalar stores were ~4 % of a 256-token batch) and returns how
/// many columns it packed; the caller packs the rest. None without
/// AVX-512F or when `k` is not a multiple of 16.
///
/// # Safety
/// `src` must hold `cols` rows of `k` values at stride `ld`; `tile` holds
/// `k` rows of [`TILE`].
unsafe fn repack_nk_vector(tile: &mut [f32], src: *const f32, ld: usize, cols: usize, k: usize) -> usize {
    #[cfg(target_arch = "x86_64")]
    if k.is_multiple_of(16) && crate::cpu::avx512f() {
        let done = cols / 16 * 16;
        for j0 in (0..done).step_by(16) {
            for kk0 in (0..k).step_by(16) {
                // SAFETY: avx512f detected; rows j0 .. j0 + 16 < cols hold
                // k ≥ kk0 + 16 values; the tile holds k rows of TILE ≥
                // j0 + 16.
                x86::transpose16(src.add(j0 * ld + kk0), ld, tile.as_mut_ptr().add(kk0 * TILE + j0), TILE);
            }
        }
        return done;
    }
    let _ = (tile, src, ld, cols, k);
    0
}

/// `Default` is an empty matrix whose buffer [`repack_nk`](Self::repack_nk)
/// and [`repack_kn`](Self::repack_kn) reuse (attention packs K and V for
/// every text and head).
#[derive(Default)]
pub struct PackedWeight {
    k: usize,
    n: usize,
    /// `tiles × k × TILE`, zero-padded past `n`.
    data: Vec<f32>,
}

impl PackedWeight {
    /// Packs `w`, stored `[n, k]` row-major.
    pub fn new(w: &[f32], n: usize, k: usize) -> Self {
        assert_eq!(w.len(), n * k);
        let mut packed = Self::default();
        // SAFETY: `w` holds n rows of k values.
        unsafe { packed.repack_nk(w.as_ptr(), k, n, k) };
        packed
    }

    /// Packs W from `n` rows of `k` values at row stride `ld` (W as a dense
    /// layer stores it; attention's K, whose rows are keys).
    ///
    /// # Safety
    /// `src` must hold `n` rows of `k` values at stride `ld`.
    pub unsafe fn repack_nk(&mut self, src: *const f32, ld: usize, n: usize, k: usize) {
        self.reset(n, k);
        for t in 0..self.tiles() {
            let tile = &mut self.data[t * k * TILE..(t + 1) * k * TILE];
            let cols = TILE.min(n - t * TILE);
            let done = repack_nk_vector(tile, src.add(t * TILE * ld), ld, cols, k);
            for j in done..cols {
                let row = std::slice::from_raw_parts(src.add((t * TILE + j) * ld), k);
                for (kk, &v) in row.iter().enumerate() {
                    tile[kk * TILE + j] = v;
                }
            }
            if cols < TILE {
                for out in tile.chunks_exact_mut(TILE) {
                    out[cols..].fill(0.0);
                }
            }
        }
    }

    /// Packs W from its transpose: `k` rows of `n` values at row stride
    /// `ld` (attention's V, whose rows are keys and columns outputs).
    ///
    /// # Safety
    /// `src` must hold `k` rows of `n` values at stride `ld`.
    pub unsafe fn repack_kn(&mut self, src: *const f32, ld: usize, n: usize, k: usize) {
        self.reset(n, k);
        for t in 0..self.tiles() {
            let cols = TILE.min(n - t * TILE);
            let tile = &mut self.data[t * k * TILE..(t + 1) * k * TILE];
            for (kk, dst) in tile.chunks_exact_mut(TILE).enumerate() {
                let row = src.add(kk * ld + t * TILE);
                if cols == TILE {
                    // A fixed-size copy: inline moves, not a memcpy call.
                    *<&mut [f32; TILE]>::try_from(dst).unwrap() = *(row as *const [f32; TILE]);
                } else {
                    dst[..cols].copy_from_slice(std::slice::from_raw_parts(row, cols));
                    dst[cols..].fill(0.0);
                }
            }
        }
    }

    /// Sizes the buffer for `n × k` (old contents stay: every repack writes
    /// all of it, zero padding included).
    fn reset(&mut self, n: usize, k: usize) {
        (self.n, self.k) = (n, k);
        self.data.resize(n.div_ceil(TILE) * k * TILE, 0.0);
    }

    pub fn tiles(&self) -> usize {
        self.n.div_ceil(TILE)
    }

    /// `c[m × n] (+)= a[m × k] · Wᵀ` for output tiles `tiles`; `a` and `c`
    /// row-major with row strides `lda` and `ldc`.
    ///
    /// # Safety
    /// `a` must hold `m` rows of `k` values at stride `lda`, `c` must hold
    /// `m` rows at stride `ldc` covering the columns of `tiles`, and no other
    /// thread may write those columns meanwhile.
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn matmul(
        &self,
        m: usize,
        a: *const f32,
        lda: usize,
        c: *mut f32,
        ldc: usize,
        tiles: std::ops::Range<usize>,
        accumulate: bool,
    ) {
        #[cfg(target_arch = "x86_64")]
        {
            if crate::cpu::avx512f() {
                return matmul_avx512(self, m, a, lda, c, ldc, tiles, accumulate);
            }
            if crate::cpu::avx2_fma() {
                return matmul_avx2(self, m, a, lda, c, ldc, tiles, accumulate);
            }
        }
        run_scalar(self, m, a, lda, c, ldc, tiles, accumulate)
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn matmul_avx512(
    w: &PackedWeight,
    m: usize,
    a: *const f32,
    lda: usize,
    c: *mut f32,
    ldc: usize,
    tiles: std::ops::Range<usize>,
    accumulate: bool,
) {
    let k = w.k;
    for t in tiles {
        let tile = w.data.as_ptr().add(t * k * TILE);
        let cols = TILE.min(w.n - t * TILE);
        let mut row = 0;
        // Up to 12 rows in one pass, so a chat query's rows read each weight
        // tile once; more in blocks of near-equal size (`row_block`).
        while row < m {
            let r = row_block(m - row);
            let (a, c) = (a.add(row * lda), c.add(row * ldc + t * TILE));
            macro_rules! go {
                ($($n:literal)*) => {
                    match r {
                        $($n => x86::block_avx512::<$n>(tile, k, a, lda, c, ldc, cols, accumulate),)*
                        _ => unreachable!(),
                    }
                };
            }
            go!(1 2 3 4 5 6 7 8 9 10 11 12);
            row += r;
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn matmul_avx2(
    w: &PackedWeight,
    m: usize,
    a: *const f32,
    lda: usize,
    c: *mut f32,
    ldc: usize,
    tiles: std::ops::Range<usize>,
    accumulate: bool,
) {
    let k = w.k;
    for t in tiles {
        let tile = w.data.as_ptr().add(t * k * TILE);
        let cols = TILE.min(w.n - t * TILE);
        let mut row = 0;
        while row + 2 <= m {
            x86::block_avx2::<2>(tile, k, a.add(row * lda), lda, c.add(row * ldc + t * TILE), ldc, cols, accumulate);
            row += 2;
        }
        while row < m {
            x86::block_avx2::<1>(tile, k, a.add(row * lda), lda, c.add(row * ldc + t * TILE), ldc, cols, accumulate);
            row += 1;
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{finish, TILE};
    use std::arch::x86_64::*;

    /// Writes the transpose of the 16 × 16 block at `src` (row stride
    /// `lds`) to `dst` (row stride `ldd`): `dst[q][i] = src[i][q]`.
    ///
    /// # Safety
    /// AVX-512F; `src` must hold 16 rows of 16 values at stride `lds`, `dst`
    /// 16 rows of 16 at stride `ldd`.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn transpose16(src: *const f32, lds: usize, dst: *mut f32, ldd: usize) {
        let r: [__m512; 16] = std::array::from_fn(|i| _mm512_loadu_ps(src.add(i * lds)));
        // Pairs of rows interleaved by 32 bits, then by 64: u[4g + c] holds,
        // in each 128-bit lane l, column 4l + c of rows 4g .. 4g + 4.
        let t: [__m512; 16] = std::array::from_fn(|i| {
            let (a, b) = (r[i & !1], r[i | 1]);
            if i % 2 == 0 {
                _mm512_unpacklo_ps(a, b)
            } else {
                _mm512_unpackhi_ps(a, b)
            }
        });
        let u: [__m512; 16] = std::array::from_fn(|i| {
            let (g, c) = (i / 4, i % 4);
            let (a, b) = (_mm512_castps_pd(t[4 * g + c / 2]), _mm512_castps_pd(t[4 * g + 2 + c / 2]));
            _mm512_castpd_ps(if c % 2 == 0 { _mm512_unpacklo_pd(a, b) } else { _mm512_unpackhi_pd(a, b) })
        });
        // Then the 128-bit lanes: column c + 4l gathers lane l of u[c],
        // u[4 + c], u[8 + c], u[12 + c].
        for c in 0..4 {
            let v0 = _mm512_shuffle_f32x4::<0x88>(u[c], u[4 + c]);
            let v1 = _mm512_shuffle_f32x4::<0xdd>(u[c], u[4 + c]);
            let v2 = _mm512_shuffle_f32x4::<0x88>(u[8 + c], u[12 + c]);
            let v3 = _mm512_shuffle_f32x4::<0xdd>(u[8 + c], u[12 + c]);
            _mm512_storeu_ps(dst.add(c * ldd), _mm512_shuffle_f32x4::<0x88>(v0, v2));
            _mm512_storeu_ps(dst.add((c + 8) * ldd), _mm512_shuffle_f32x4::<0xdd>(v0, v2));
            _mm512_storeu_ps(dst.add((c + 4) * ldd), _mm512_shuffle_f32x4::<0x88>(v1, v3));
            _mm512_storeu_ps(dst.add((c + 12) * ldd), _mm512_shuffle_f32x4::<0xdd>(v1, v3));
        }
    }

    /// R rows × 32 outputs: 2·R zmm accumulators.
    #[target_feature(enable = "avx512f,avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn block_avx512<const R: usize>(
        tile: *const f32,
        k: usize,
        a: *const f32,
        lda: usize,
        c: *mut f32,
        ldc: usize,
        cols: usize,
        accumulate: bool,
    ) {
        let mut lo = [_mm512_setzero_ps(); R];
        let mut hi = [_mm512_setzero_ps(); R];
        for kk in 0..k {
            // Stream the tile ahead of use (2 KiB): the hardware prefetcher
            // stops at every 4 KiB page.
            // (wrapping: the address may lie past the tile's end, which a
            // prefetch may name but `add` may not.)
            _mm_prefetch::<_MM_HINT_T0>(tile.wrapping_add((kk + 16) * TILE) as *const i8);
            let w0 = _mm512_loadu_ps(tile.add(kk * TILE));
            let w1 = _mm512_loadu_ps(tile.add(kk * TILE + 16));
            for r in 0..R {
                let av = _mm512_set1_ps(*a.add(r * lda + kk));
                lo[r] = _mm512_fmadd_ps(av, w0, lo[r]);
                hi[r] = _mm512_fmadd_ps(av, w1, hi[r]);
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

    /// R rows × 32 outputs: 4·R ymm accumulators.
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn block_avx2<const R: usize>(
        tile: *const f32,
        k: usize,
        a: *const f32,
        lda: usize,
        c: *mut f32,
        ldc: usize,
        cols: usize,
        accumulate: bool,
    ) {
        let mut acc = [[_mm256_setzero_ps(); 4]; R];
        for kk in 0..k {
            let w = [
                _mm256_loadu_ps(tile.add(kk * TILE)),
                _mm256_loadu_ps(tile.add(kk * TILE + 8)),
                _mm256_loadu_ps(tile.add(kk * TILE + 16)),
                _mm256_loadu_ps(tile.add(kk * TILE + 24)),
            ];
            for (r, acc) in acc.iter_mut().enumerate() {
                let av = _mm256_set1_ps(*a.add(r * lda + kk));
                for (q, w) in w.iter().enumerate() {
                    acc[q] = _mm256_fmadd_ps(av, *w, acc[q]);
                }
            }
        }
        for (r, acc) in acc.iter().enumerate() {
            let mut out = [0f32; TILE];
            for (q, v) in acc.iter().enumerate() {
                _mm256_storeu_ps(out.as_mut_ptr().add(q * 8), *v);
            }
            finish(&out, c.add(r * ldc), cols, accumulate);
        }
    }
}

/// Any CPU: one row at a time, plain loops.
#[allow(clippy::too_many_arguments)]
unsafe fn run_scalar(
    w: &PackedWeight,
    m: usize,
    a: *const f32,
    lda: usize,
    c: *mut f32,
    ldc: usize,
    tiles: std::ops::Range<usize>,
    accumulate: bool,
) {
    let k = w.k;
    for t in tiles {
        let tile = &w.data[t * k * TILE..(t + 1) * k * TILE];
        let cols = TILE.min(w.n - t * TILE);
        for row in 0..m {
            let mut acc = [0f32; TILE];
            for (kk, wk) in tile.chunks_exact(TILE).enumerate() {
                let av = *a.add(row * lda + kk);
                for (s, wv) in acc.iter_mut().zip(wk) {
                    *s += av * wv;
                }
            }
            let out = std::slice::from_raw_parts_mut(c.add(row * ldc + t * TILE), cols);
            for (o, v) in out.iter_mut().zip(&acc) {
                *o = if accumulate { *o + v } else { *v };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ops::Range;

    /// Packing (vector transposes where the depth allows, scalar
    /// elsewhere) lays out exactly what the definition says, for strided
    /// sources and partial tiles.
    #[test]
    fn repack_nk_lays_out_tiles_as_defined() {
        // 20 and 50: a tile with 16 vector columns and a scalar rest.
        for (n, k, ld) in [
            (1, 16, 16),
            (16, 16, 20),
            (20, 32, 32),
            (33, 32, 96),
            (50, 16, 17),
            (70, 48, 50),
            (256, 32, 1152),
            (5, 7, 7),
        ] {
            let src: Vec<f32> = (0..n * ld).map(|i| i as f32 * 0.5 - 3.0).collect();
            let mut p = PackedWeight::default();
            // Stale contents first: every repack must write all of it.
            unsafe { p.repack_nk(src.as_ptr(), ld, n, k) };
            p.data.iter_mut().for_each(|v| *v = f32::NAN);
            unsafe { p.repack_nk(src.as_ptr(), ld, n, k) };
            for t in 0..p.tiles() {
                for kk in 0..k {
                    for jj in 0..TILE {
                        let j = t * TILE + jj;
                        let want = if j < n { src[j * ld + kk] } else { 0.0 };
                        let got = p.data[(t * k + kk) * TILE + jj];
                        assert_eq!(got.to_bits(), want.to_bits(), "n {n} k {k}: tile {t} depth {kk} column {jj}");
                    }
                }
            }
        }
    }

    #[test]
    fn matches_naive_for_odd_shapes() {
        // Every micro-kernel this CPU can run, not just the one `matmul`
        // picks (the AVX2 and plain ones serve CPUs without AVX-512).
        type Kernel = unsafe fn(&PackedWeight, usize, *const f32, usize, *mut f32, usize, Range<usize>, bool);
        let mut kernels: Vec<(&str, Kernel)> = vec![("scalar", run_scalar)];
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                kernels.push(("avx2", matmul_avx2));
            }
            if std::arch::is_x86_feature_detected!("avx512f") {
                kernels.push(("avx512", matmul_avx512));
            }
        }
        for (m, n, k) in [(1, 5, 3), (7, 33, 17), (9, 64, 384), (17, 70, 5), (25, 40, 9), (255, 33, 31)] {
            let a: Vec<f32> = (0..m * k).map(|i| ((i * 31 % 17) as f32 - 8.0) / 7.0).collect();
            let w: Vec<f32> = (0..n * k).map(|i| ((i * 13 % 23) as f32 - 11.0) / 5.0).collect();
            let packed = PackedWeight::new(&w, n, k);
            for &(name, kernel) in &kernels {
                for accumulate in [true, false] {
                    let mut c = vec![0.5f32; m * n];
                    unsafe { kernel(&packed, m, a.as_ptr(), k, c.as_mut_ptr(), n, 0..packed.tiles(), accumulate) };
                    let start = if accumulate { 0.5 } else { 0.0 };
                    for i in 0..m {
                        for j in 0..n {
                            let dot: f64 = (0..k).map(|l| a[i * k + l] as f64 * w[j * k + l] as f64).sum();
                            let got = c[i * n + j] as f64;
                            assert!(
                                (got - start - dot).abs() < 1e-3,
                                "{name} ({m},{n},{k}) acc {accumulate} [{i},{j}]"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn repacking_k_and_v_matches_packing_the_transpose() {
        // K as stored in the fused QKV rows (stride 3·h), and V the same
        // way: repack_nk of K must equal new() of K, repack_kn of V must
        // equal new() of Vᵀ, through one reused buffer of shrinking and
        // growing sizes (stale values must not survive in the padding).
        let mut reused = PackedWeight::default();
        for (rows, cols) in [(70, 32), (5, 32), (33, 40), (1, 7), (64, 32)] {
            let ld = cols * 3 + 1;
            let src: Vec<f32> = (0..rows * ld).map(|i| (i % 97) as f32 - 48.0).collect();
            let dense: Vec<f32> = (0..rows).flat_map(|r| src[r * ld..r * ld + cols].to_vec()).collect();
            unsafe { reused.repack_nk(src.as_ptr(), ld, rows, cols) };
            let want = PackedWeight::new(&dense, rows, cols);
            assert_eq!((reused.n, reused.k), (want.n, want.k));
            assert_eq!(reused.data, want.data, "nk {rows}x{cols}");
            let transposed: Vec<f32> =
                (0..cols).flat_map(|c| (0..rows).map(move |r| (r, c))).map(|(r, c)| dense[r * cols + c]).collect();
            unsafe { reused.repack_kn(src.as_ptr(), ld, cols, rows) };
            let want = PackedWeight::new(&transposed, cols, rows);
            assert_eq!((reused.n, reused.k), (want.n, want.k));
            assert_eq!(reused.data, want.data, "kn {rows}x{cols}");
        }
    }
}
