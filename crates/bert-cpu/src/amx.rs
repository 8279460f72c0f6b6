//! Matrix products on Intel AMX tiles (Sapphire Rapids and later), in bf16
//! with f32 accumulation.
//!
//! AMX multiplies bf16 tiles an order of magnitude faster than AVX-512 does
//! f32, but bf16 keeps 8 bits of mantissa: a plain bf16 product loses the
//! parity we promise. So the default mode splits each f32 operand into two
//! bf16 parts, `x ≈ hi + lo` (`hi` = x rounded to bf16, `lo` = the rest
//! rounded to bf16: 16 bits of mantissa together), and sums the three
//! products that matter, `hi·hi + hi·lo + lo·hi`. The dropped `lo·lo` term
//! and the rounding of `lo` leave a relative error of about 2⁻¹⁷ per
//! product — far below what changes an embedding — at three tile
//! instructions per product instead of one ([`Split::Three`]).
//! [`Split::One`] keeps only `hi·hi`: fastest, with the parity the tests
//! report.
//!
//! The three products are one product over a depth three times as long:
//! each activation row becomes `[hi | lo | hi]` and each weight row
//! `[hi | hi | lo]`, so both modes share one kernel and the split costs no
//! extra tile loads per product (tile loads, not the multiplies, are what
//! limit AMX here: ~60 cycles per 1 KiB tile on our machines against 16 per
//! tile product).
//!
//! Layout: a weight `W` (`[n, k]`, as stored) is packed once at load into
//! 16 × 32 blocks in AMX's pair-interleaved B format; activations are
//! converted into row-major bf16 copies, padded to whole 16-row tiles, once
//! per product. The kernel keeps four 16 × 16 f32 accumulator tiles (32 rows
//! × 32 outputs; four independent chains, as a tile product's latency is
//! about three times its issue interval) and streams the depth 32 values at
//! a time.

use std::arch::asm;
use std::sync::OnceLock;

use crate::bf16dot::to_bf16;

/// How many bf16 products stand for one f32 product.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// `hi·hi` only: plain bf16 inputs.
    One,
    /// `hi·hi + hi·lo + lo·hi`: about 16 bits of input precision.
    Three,
}

/// Rows and columns of one tile (f32 accumulators: 16 × 16; bf16 operands:
/// 16 rows × 32 values).
pub const ROWS: usize = 16;
pub const COLS: usize = 16;
pub const DEPTH: usize = 32;

/// Whether this CPU and kernel let the process use AMX bf16 tiles (and
/// [`crate::cpu`] allows it); asks the kernel for the tile state once per
/// process.
pub fn available() -> bool {
    static OK: OnceLock<bool> = OnceLock::new();
    *OK.get_or_init(|| {
        if !crate::cpu::beyond_avx2() {
            return false;
        }
        #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
        {
            // CPUID leaf 7 is read only when the CPU reports it.
            let leaves = std::arch::x86_64::__cpuid(0).eax;
            if leaves < 7 {
                return false;
            }
            let l7 = std::arch::x86_64::__cpuid_count(7, 0);
            let (bf16, tile) = ((l7.edx >> 22) & 1 == 1, (l7.edx >> 24) & 1 == 1);
            if !(bf16 && tile) {
                return false;
            }
            // Linux hands out the 8 KiB tile state only on request
            // (ARCH_REQ_XCOMP_PERM for XFEATURE_XTILEDATA); the permission
            // covers every thread of the process.
            const ARCH_REQ_XCOMP_PERM: libc::c_long = 0x1023;
            const XFEATURE_XTILEDATA: libc::c_long = 18;
            // SAFETY: a plain system call with integer arguments.
            unsafe { libc::syscall(libc::SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0 }
        }
        #[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
        {
            false
        }
    })
}

#[inline(always)]
fn from_bf16(h: u16) -> f32 {
    f32::from_bits((h as u32) << 16)
}

/// A weight `[n, k]` packed for AMX: `n / 16` column blocks × `depth / 32`
/// depth blocks of one 1 KiB tile each, the pairs `(W'[j, 2r], W'[j, 2r +
/// 1])` of output `j` at tile row `r`, where `W'` is `W` in bf16 (`depth =
/// k`) or `[hi | hi | lo]` (`depth = 3k`).
pub struct AmxWeight {
    n: usize,
    k: usize,
    split: Split,
    data: Vec<u16>,
}

impl Split {
    /// Depth of the bf16 product for an f32 depth `k`.
    pub fn depth(self, k: usize) -> usize {
        match self {
            Self::One => k,
            Self::Three => 3 * k,
        }
    }
}

impl AmxWeight {
    /// Packs `w` (`[n, k]` row-major); `None` when the shape is not whole
    /// tiles (n a multiple of 16, k of 32).
    pub fn new(w: &[f32], n: usize, k: usize, split: Split) -> Option<Self> {
        assert_eq!(w.len(), n * k);
        if n == 0 || k == 0 || !n.is_multiple_of(COLS) || !k.is_multiple_of(DEPTH) {
            return None;
        }
        let depth = split.depth(k);
        let kb = depth / DEPTH;
        let mut data = vec![0u16; n * depth];
        for j in 0..n {
            let (cb, jj) = (j / COLS, j % COLS);
            for kk in 0..depth {
                let v = w[j * k + kk % k];
                let h = to_bf16(v);
                // [hi | hi | lo]
                let value = if kk < 2 * k { h } else { to_bf16(v - from_bf16(h)) };
                let (b, r, p) = (kk / DEPTH, (kk % DEPTH) / 2, kk % 2);
                data[((cb * kb + b) * ROWS + r) * (2 * COLS) + jj * 2 + p] = value;
            }
        }
        Some(Self { n, k, split, data })
    }

    pub fn split(&self) -> Split {
        self.split
    }

    /// Depth of the bf16 product (values per converted activation row).
    pub fn depth(&self) -> usize {
        self.split.depth(self.k)
    }

    /// Column blocks of 16 outputs.
    pub fn blocks(&self) -> usize {
        self.n / COLS
    }
}

/// Rows padded to whole tiles.
pub fn padded_rows(m: usize) -> usize {
    m.div_ceil(ROWS) * ROWS
}

/// Converts rows of `a` (`rows × k`, row-major) to bf16 rows of
/// `split.depth(k)` values: `hi`, or `[hi | lo | hi]`.
pub fn convert_rows(a: &[f32], k: usize, out: &mut [u16], split: Split) {
    let depth = split.depth(k);
    assert_eq!(a.len() / k * depth, out.len(), "convert_rows: output is not rows x depth");
    for (row, dst) in a.chunks_exact(k).zip(out.chunks_exact_mut(depth)) {
        match split {
            Split::One => {
                for (x, h) in row.iter().zip(dst.iter_mut()) {
                    *h = to_bf16(*x);
                }
            }
            Split::Three => {
                let (hi, rest) = dst.split_at_mut(k);
                let (lo, hi2) = rest.split_at_mut(k);
                for (((x, h), l), h2) in row.iter().zip(hi).zip(lo).zip(hi2) {
                    let v = to_bf16(*x);
                    *h = v;
                    *h2 = v;
                    *l = to_bf16(x - from_bf16(v));
                }
            }
        }
    }
}

/// The tile configuration: palette 1, eight tiles of 16 rows × 64 bytes.
#[repr(C, align(64))]
struct TileConfig([u8; 64]);

impl TileConfig {
    fn full() -> Self {
        let mut c = [0u8; 64];
        c[0] = 1;
        for t in 0..8 {
            c[16 + 2 * t] = 64;
            c[48 + t] = ROWS as u8;
        }
        Self(c)
    }
}

#[repr(C, align(64))]
struct Scratch([f32; 4 * ROWS * COLS]);

macro_rules! load {
    ($tmm:literal, $ptr:expr, $stride:expr) => {
        asm!(concat!("tileloadd ", $tmm, ", [{0} + {1}*1]"), in(reg) $ptr, in(reg) $stride, options(nostack, readonly))
    };
}

macro_rules! dp {
    ($c:literal, $a:literal, $b:literal) => {
        asm!(concat!("tdpbf16ps ", $c, ", ", $a, ", ", $b), options(nostack, nomem))
    };
}

/// `c[m × n] += A · Wᵀ` for the column blocks `blocks` (16 outputs each),
/// where `a` is A converted by [`convert_rows`] (`padded_rows(m) ×
/// w.depth()`, row-major; padding rows are read, their results dropped).
///
/// # Safety
/// [`available`] must have returned true; `a` must hold `padded_rows(m) ×
/// w.depth()` values; `c` must hold `m` rows at stride `ldc` covering the
/// columns of `blocks`, and no other thread may write those columns
/// meanwhile.
pub unsafe fn matmul(w: &AmxWeight, m: usize, a: *const u16, c: *mut f32, ldc: usize, blocks: std::ops::Range<usize>) {
    if m == 0 || blocks.is_empty() {
        return;
    }
    let cfg = TileConfig::full();
    asm!("ldtilecfg [{0}]", in(reg) cfg.0.as_ptr(), options(nostack, readonly));
    kernel(w, m, a, c, ldc, blocks);
    asm!("tilerelease", options(nostack, nomem));
}

/// Blocks of up to 2 × 2 tiles (32 rows × 32 outputs): four independent
/// accumulator chains, four tile loads per four tile products.
#[inline(always)]
unsafe fn kernel(w: &AmxWeight, m: usize, a: *const u16, c: *mut f32, ldc: usize, blocks: std::ops::Range<usize>) {
    let depth = w.depth();
    let kblocks = depth / DEPTH;
    let a_stride = depth * 2;
    let b_stride = 2 * COLS * 2;
    let tile = ROWS * 2 * COLS;
    let row_tiles = m.div_ceil(ROWS);
    let mut scratch = Scratch([0f32; 4 * ROWS * COLS]);
    let s = scratch.0.as_mut_ptr();
    let mut rb = 0;
    while rb < row_tiles {
        let rows2 = rb + 1 < row_tiles;
        let a0 = a.add(rb * ROWS * depth);
        // With one row tile left, the second row's loads repeat the first
        // (in bounds; its results are discarded).
        let a1 = if rows2 { a0.add(ROWS * depth) } else { a0 };
        let mut cb = blocks.start;
        while cb < blocks.end {
            let cols2 = cb + 1 < blocks.end;
            let b0 = w.data.as_ptr().add(cb * kblocks * tile);
            let b1 = if cols2 { b0.add(kblocks * tile) } else { b0 };
            // Accumulator tiles load straight from `c` (which already holds
            // bias and residual) where all 16 rows exist; a partial or
            // unused tile goes through `scratch`.
            let mut tiles = [(s, COLS * 4); 4];
            for tr in 0..2 {
                let r0 = (rb + tr) * ROWS;
                for tc in 0..2 {
                    let i = 2 * tr + tc;
                    let sp = s.add(i * ROWS * COLS);
                    let used = (tr == 0 || rows2) && (tc == 0 || cols2);
                    if used && r0 + ROWS <= m {
                        tiles[i] = (c.add(r0 * ldc + (cb + tc) * COLS), ldc * 4);
                    } else {
                        tiles[i] = (sp, COLS * 4);
                        if used {
                            for r in 0..ROWS {
                                let dst = std::slice::from_raw_parts_mut(sp.add(r * COLS), COLS);
                                if r0 + r < m {
                                    let src =
                                        std::slice::from_raw_parts(c.add((r0 + r) * ldc + (cb + tc) * COLS), COLS);
                                    dst.copy_from_slice(src);
                                } else {
                                    dst.fill(0.0);
                                }
                            }
                        }
                    }
                }
            }
            asm!(
                "tileloadd tmm0, [{p0} + {l0}*1]",
                "tileloadd tmm1, [{p1} + {l1}*1]",
                "tileloadd tmm2, [{p2} + {l2}*1]",
                "tileloadd tmm3, [{p3} + {l3}*1]",
                p0 = in(reg) tiles[0].0, l0 = in(reg) tiles[0].1,
                p1 = in(reg) tiles[1].0, l1 = in(reg) tiles[1].1,
                p2 = in(reg) tiles[2].0, l2 = in(reg) tiles[2].1,
                p3 = in(reg) tiles[3].0, l3 = in(reg) tiles[3].1,
                options(nostack, readonly)
            );
            for kb in 0..kblocks {
                let (ao, bo) = (kb * DEPTH, kb * tile);
                load!("tmm4", b0.add(bo), b_stride);
                load!("tmm6", a0.add(ao), a_stride);
                dp!("tmm0", "tmm6", "tmm4");
                load!("tmm5", b1.add(bo), b_stride);
                dp!("tmm1", "tmm6", "tmm5");
                load!("tmm7", a1.add(ao), a_stride);
                dp!("tmm2", "tmm7", "tmm4");
                dp!("tmm3", "tmm7", "tmm5");
            }
            asm!(
                "tilestored [{p0} + {l0}*1], tmm0",
                "tilestored [{p1} + {l1}*1], tmm1",
                "tilestored [{p2} + {l2}*1], tmm2",
                "tilestored [{p3} + {l3}*1], tmm3",
                p0 = in(reg) tiles[0].0, l0 = in(reg) tiles[0].1,
                p1 = in(reg) tiles[1].0, l1 = in(reg) tiles[1].1,
                p2 = in(reg) tiles[2].0, l2 = in(reg) tiles[2].1,
                p3 = in(reg) tiles[3].0, l3 = in(reg) tiles[3].1,
                options(nostack)
            );
            // Partial tiles: copy their real rows back.
            for tr in 0..2 {
                let r0 = (rb + tr) * ROWS;
                if !(tr == 0 || rows2) || r0 + ROWS <= m {
                    continue;
                }
                for tc in 0..if cols2 { 2 } else { 1 } {
                    let sp = s.add((2 * tr + tc) * ROWS * COLS);
                    for r in 0..m - r0 {
                        let dst = std::slice::from_raw_parts_mut(c.add((r0 + r) * ldc + (cb + tc) * COLS), COLS);
                        dst.copy_from_slice(std::slice::from_raw_parts(sp.add(r * COLS), COLS));
                    }
                }
            }
            cb += 2;
        }
        rb += 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The exact product and, per element, `Σ |a·w|` (the scale rounding
    /// errors are measured against).
    fn naive(m: usize, n: usize, k: usize, a: &[f32], w: &[f32]) -> (Vec<f64>, Vec<f64>) {
        let (mut c, mut s) = (vec![0f64; m * n], vec![0f64; m * n]);
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|l| a[i * k + l] as f64 * w[j * k + l] as f64).sum();
                s[i * n + j] = (0..k).map(|l| (a[i * k + l] as f64 * w[j * k + l] as f64).abs()).sum();
            }
        }
        (c, s)
    }

    fn run(m: usize, n: usize, k: usize, split: Split) -> f64 {
        let a: Vec<f32> = (0..m * k).map(|i| ((i as f32) * 0.37).sin() * 3.0).collect();
        let w: Vec<f32> = (0..n * k).map(|i| ((i as f32) * 0.11).cos() * 0.1).collect();
        let pw = AmxWeight::new(&w, n, k, split).unwrap();
        let rows = padded_rows(m);
        let mut bf = vec![0u16; rows * pw.depth()];
        convert_rows(&a, k, &mut bf[..m * pw.depth()], split);
        let mut c = vec![1f32; m * n];
        unsafe { matmul(&pw, m, bf.as_ptr(), c.as_mut_ptr(), n, 0..pw.blocks()) };
        let (want, scale) = naive(m, n, k, &a, &w);
        c.iter()
            .zip(want.iter().zip(&scale))
            .map(|(got, (want, s))| (*got as f64 - 1.0 - want).abs() / s)
            .fold(0.0, f64::max)
    }

    #[test]
    fn split_products_match_f64_closely() {
        if !available() {
            eprintln!("skipped: this CPU has no AMX bf16");
            return;
        }
        // Odd row counts exercise the one-tile tail and the padding rows.
        for (m, n, k) in [(1, 16, 32), (17, 48, 64), (40, 32, 384), (33, 1536, 384), (64, 384, 1536)] {
            let three = run(m, n, k, Split::Three);
            // Errors relative to Σ|a·w|: f32 products reach ~1e-7, the
            // split ~1e-6, plain bf16 ~5e-4 (measured).
            assert!(three < 1e-5, "{m}×{n}×{k} split in three: max error {three:e}");
            let one = run(m, n, k, Split::One);
            assert!(one < 5e-3, "{m}×{n}×{k} bf16: max error {one:e}");
            assert!(three * 20.0 < one, "the split must be far closer than plain bf16 ({three:e} vs {one:e})");
        }
    }

    #[test]
    fn shapes_that_are_not_whole_tiles_are_refused() {
        assert!(AmxWeight::new(&[0.0; 15 * 32], 15, 32, Split::Three).is_none());
        assert!(AmxWeight::new(&[0.0; 16 * 20], 16, 20, Split::One).is_none());
    }
}
