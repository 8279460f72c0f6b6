//! Single-precision matrix products: a BLAS library opened at run time
//! (OpenBLAS, MKL or BLIS, whichever is found) or the portable `gemm` crate.
//!
//! Every call here is single-threaded; the model splits work across its own
//! thread pool. One threading system on the machine means no two pools
//! spinning against each other on a small box (OpenBLAS's and rayon's both
//! busy-wait between jobs).

use std::ffi::{c_char, c_int, CStr};

/// Which matrix-product implementation to use.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum GemmChoice {
    /// A BLAS library when one can be opened, else the portable kernels.
    #[default]
    Auto,
    /// A BLAS library; loading fails when none can be opened. `Some(path)`
    /// names the shared library to open.
    Blas(Option<String>),
    /// The portable `gemm` crate (no system library).
    Portable,
}

/// Shared libraries tried in order when no path is given. LP64 builds only:
/// the model passes `int` dimensions.
const BLAS_CANDIDATES: &[&str] =
    &["libopenblas.so.0", "libopenblas.so", "libmkl_rt.so.2", "libmkl_rt.so", "libblis.so.4", "libblis.so"];

type CblasSgemm = unsafe extern "C" fn(
    c_int,
    c_int,
    c_int,
    c_int,
    c_int,
    c_int,
    f32,
    *const f32,
    c_int,
    *const f32,
    c_int,
    f32,
    *mut f32,
    c_int,
);

const ROW_MAJOR: c_int = 101;
const NO_TRANS: c_int = 111;
const TRANS: c_int = 112;

pub(crate) struct Blas {
    sgemm: CblasSgemm,
    name: String,
    // Keeps the library mapped while `sgemm` may be called.
    _lib: libloading::Library,
}

impl Blas {
    fn open(path: Option<&str>) -> Result<Self, String> {
        let candidates: Vec<&str> = match path {
            Some(p) => vec![p],
            None => BLAS_CANDIDATES.to_vec(),
        };
        let mut errors = Vec::new();
        for candidate in candidates {
            // SAFETY: loading a BLAS library runs its initialisers, which only
            // set up its own state (thread pool, CPU detection).
            match unsafe { libloading::Library::new(candidate) } {
                Ok(lib) => return Self::from_library(lib, candidate),
                Err(e) => errors.push(format!("{candidate}: {e}")),
            }
        }
        Err(format!("no BLAS library could be opened ({})", errors.join("; ")))
    }

    fn from_library(lib: libloading::Library, file: &str) -> Result<Self, String> {
        // SAFETY: the symbols are looked up by their documented C names and
        // called with their documented signatures.
        unsafe {
            let sgemm =
                *lib.get::<CblasSgemm>(b"cblas_sgemm\0").map_err(|e| format!("{file}: no cblas_sgemm ({e})"))?;
            let mut name = file.to_string();
            if let Ok(set) = lib.get::<unsafe extern "C" fn(c_int)>(b"openblas_set_num_threads\0") {
                set(1);
            }
            if let Ok(core) = lib.get::<unsafe extern "C" fn() -> *const c_char>(b"openblas_get_corename\0") {
                let p = core();
                if !p.is_null() {
                    name = format!("{file} ({})", CStr::from_ptr(p).to_string_lossy());
                }
            }
            if let Ok(set) = lib.get::<unsafe extern "C" fn(c_int) -> c_int>(b"MKL_Set_Num_Threads_Local\0") {
                set(1);
            } else if let Ok(set) = lib.get::<unsafe extern "C" fn(c_int)>(b"MKL_Set_Num_Threads\0") {
                set(1);
            }
            if let Ok(set) = lib.get::<unsafe extern "C" fn(i64)>(b"bli_thread_set_num_threads\0") {
                set(1);
            }
            Ok(Self { sgemm, name, _lib: lib })
        }
    }
}

pub(crate) enum Gemm {
    Blas(Blas),
    Portable,
}

impl Gemm {
    pub(crate) fn new(choice: &GemmChoice) -> Result<Self, String> {
        match choice {
            GemmChoice::Portable => Ok(Self::Portable),
            GemmChoice::Blas(path) => Blas::open(path.as_deref()).map(Self::Blas),
            GemmChoice::Auto => Ok(Blas::open(None).map(Self::Blas).unwrap_or(Self::Portable)),
        }
    }

    pub(crate) fn name(&self) -> String {
        match self {
            Self::Blas(b) => format!("blas: {}", b.name),
            Self::Portable => "portable (gemm crate)".into(),
        }
    }

    /// `C = alpha · A · op(B) (+ C when accumulate)`, all row-major with unit
    /// column stride. A is `m × k` (row stride `lda`); B is `k × n` (row
    /// stride `ldb`), or stored as `n × k` when `b_trans`; C is `m × n`.
    ///
    /// # Safety
    /// The pointers must address matrices of the stated shapes and strides,
    /// and C must not overlap A or B.
    #[allow(clippy::too_many_arguments)]
    pub(crate) unsafe fn sgemm(
        &self,
        m: usize,
        n: usize,
        k: usize,
        alpha: f32,
        a: *const f32,
        lda: usize,
        b: *const f32,
        ldb: usize,
        b_trans: bool,
        c: *mut f32,
        ldc: usize,
        accumulate: bool,
    ) {
        if m == 0 || n == 0 {
            return;
        }
        match self {
            Self::Blas(blas) => (blas.sgemm)(
                ROW_MAJOR,
                NO_TRANS,
                if b_trans { TRANS } else { NO_TRANS },
                m as c_int,
                n as c_int,
                k as c_int,
                alpha,
                a,
                lda as c_int,
                b,
                ldb as c_int,
                if accumulate { 1.0 } else { 0.0 },
                c,
                ldc as c_int,
            ),
            Self::Portable => {
                // gemm computes dst = alpha·dst + beta·lhs·rhs with explicit
                // row and column strides; a transposed B is a stride swap.
                let (rhs_cs, rhs_rs) = if b_trans { (ldb as isize, 1) } else { (1, ldb as isize) };
                gemm::gemm(
                    m,
                    n,
                    k,
                    c,
                    1,
                    ldc as isize,
                    accumulate,
                    a,
                    1,
                    lda as isize,
                    b,
                    rhs_cs,
                    rhs_rs,
                    1.0,
                    alpha,
                    false,
                    false,
                    false,
                    gemm::Parallelism::None,
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(m: usize, n: usize, k: usize, a: &[f32], b: &[f32], b_trans: bool) -> Vec<f32> {
        let mut c = vec![0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                let mut s = 0f64;
                for l in 0..k {
                    let bv = if b_trans { b[j * k + l] } else { b[l * n + j] };
                    s += a[i * k + l] as f64 * bv as f64;
                }
                c[i * n + j] = s as f32;
            }
        }
        c
    }

    fn check(gemm: &Gemm) {
        let (m, n, k) = (7, 13, 5);
        let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.11).cos()).collect();
        for b_trans in [false, true] {
            let want = naive(m, n, k, &a, &b, b_trans);
            let mut c = vec![1f32; m * n];
            let ldb = if b_trans { k } else { n };
            unsafe { gemm.sgemm(m, n, k, 0.5, a.as_ptr(), k, b.as_ptr(), ldb, b_trans, c.as_mut_ptr(), n, true) };
            for (got, want) in c.iter().zip(&want) {
                assert!((got - (1.0 + 0.5 * want)).abs() < 1e-5, "{} vs {}", got, 1.0 + 0.5 * want);
            }
            unsafe { gemm.sgemm(m, n, k, 1.0, a.as_ptr(), k, b.as_ptr(), ldb, b_trans, c.as_mut_ptr(), n, false) };
            for (got, want) in c.iter().zip(&want) {
                assert!((got - want).abs() < 1e-5);
            }
        }
    }

    #[test]
    fn portable_matches_naive() {
        check(&Gemm::Portable);
    }

    #[test]
    fn blas_matches_naive_when_present() {
        match Gemm::new(&GemmChoice::Blas(None)) {
            Ok(g) => check(&g),
            Err(e) => eprintln!("skipped: {e}"),
        }
    }

    #[test]
    fn a_missing_library_is_named() {
        let err = Gemm::new(&GemmChoice::Blas(Some("/nonexistent/libnoblas.so".into()))).err().unwrap();
        assert!(err.contains("/nonexistent/libnoblas.so"), "{err}");
    }
}
