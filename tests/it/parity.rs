//! Our embeddings against sentence-transformers' reference vectors.

use context_engine::embed::{cosine, Embedder};

use crate::common::{model_dir, shared_dir};

struct Row {
    text: String,
    num_tokens: usize,
    embedding: Vec<f32>,
}

fn reference() -> Option<Vec<Row>> {
    let dir = shared_dir("reference/minilm_reference.jsonl")?;
    let text = std::fs::read_to_string(dir.join("reference/minilm_reference.jsonl")).unwrap();
    Some(
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                Row {
                    text: v["text"].as_str().unwrap().to_string(),
                    num_tokens: v["num_tokens"].as_u64().unwrap() as usize,
                    embedding: serde_json::from_value(v["embedding"].clone()).unwrap(),
                }
            })
            .collect(),
    )
}

fn embedder() -> context_engine::embed::BertEmbedder {
    context_engine::app::load_embedder(&model_dir(), context_engine::embed::DeviceChoice::Cpu).unwrap()
}

#[test]
fn matches_sentence_transformers_reference() {
    let Some(rows) = reference() else { return };
    assert!(rows.len() >= 24, "reference has {} rows", rows.len());
    assert!(rows.iter().any(|r| r.text.is_empty()), "reference includes the empty string");
    assert!(rows.iter().any(|r| r.num_tokens == 256), "reference includes a truncated (>256-token) text");
    let mut model = embedder();
    let texts: Vec<&str> = rows.iter().map(|r| r.text.as_str()).collect();
    let vectors = model.embed(&texts).unwrap();
    let mut min = f32::MAX;
    for (row, vector) in rows.iter().zip(&vectors) {
        assert_eq!(vector.len(), 384);
        assert_eq!(model.count_tokens(&row.text).unwrap(), row.num_tokens, "token count of {:?}", row.text);
        let c = cosine(vector, &row.embedding);
        assert!(c >= 0.9999, "cosine {c} < 0.9999 for {:?}", row.text);
        min = min.min(c);
    }
    println!("parity: {}: {} reference rows, minimum cosine {min:.7}", model.backend(), rows.len());
}

/// The worst cosine to the reference over every text, embedded in one
/// mixed-length batch and alone.
fn min_cosine(model: &mut context_engine::embed::BertEmbedder, rows: &[Row]) -> f32 {
    let texts: Vec<&str> = rows.iter().map(|r| r.text.as_str()).collect();
    let batch = model.embed(&texts).unwrap();
    let mut min = f32::MAX;
    for (row, vector) in rows.iter().zip(&batch) {
        let single = model.embed(&[row.text.as_str()]).unwrap().remove(0);
        min = min.min(cosine(vector, &row.embedding)).min(cosine(&single, &row.embedding));
    }
    min
}

/// Every CPU forward pass meets the reference, not only the default one:
/// BLAS (when a library is installed), the portable kernels, candle's.
#[test]
fn every_cpu_kernel_matches_the_reference() {
    use context_engine::embed::{CpuKernels, DeviceChoice, ModelOptions};
    let Some(rows) = reference() else { return };
    for kernels in [CpuKernels::Blas, CpuKernels::Portable, CpuKernels::Candle] {
        let mut options = ModelOptions::new(model_dir());
        options.device = DeviceChoice::Cpu;
        options.cpu_kernels = kernels;
        options.threads = 2;
        let mut model = match context_engine::app::load_embedder_with(&options) {
            Ok(m) => m,
            Err(e) if kernels == CpuKernels::Blas => {
                crate::common::skip(&format!("{kernels:?} kernels: {e}"));
                continue;
            }
            Err(e) => panic!("{kernels:?}: {e}"),
        };
        let backend = model.backend();
        let min = min_cosine(&mut model, &rows);
        assert!(min >= 0.9999, "{backend}: minimum cosine {min}");
        println!("parity: {backend}: minimum cosine {min:.7}");
    }
}

/// The bf16 precisions: bf16x3 (Intel AMX CPUs only) keeps f32's parity
/// (≥ 0.99999); plain bf16 (AMX, or AVX-512 BF16 dot products on CPUs
/// without AMX, e.g. AMD Zen 4/5) is held to the project's 0.9999. Each text
/// in one mixed-length batch and alone (short texts take the f32 few-row
/// kernel under bf16x3, bf16 products under bf16).
#[test]
fn bf16_precisions_match_the_reference() {
    use context_engine::embed::{CpuPrecision, DeviceChoice, ModelOptions};
    let Some(rows) = reference() else { return };
    for (precision, bound) in [(CpuPrecision::Bf16x3, 0.99999f32), (CpuPrecision::Bf16, 0.9999)] {
        let mut options = ModelOptions::new(model_dir());
        options.device = DeviceChoice::Cpu;
        options.cpu_precision = precision;
        options.threads = 2;
        let mut model = match context_engine::app::load_embedder_with(&options) {
            Ok(m) => m,
            Err(e) if e.to_string().contains("needs Intel AMX") => {
                crate::common::skip(&format!("{precision:?}: {e}"));
                continue;
            }
            Err(e) => panic!("{precision:?}: {e}"),
        };
        let backend = model.backend();
        let want = if precision == CpuPrecision::Bf16x3 { "amx" } else { "bf16" };
        assert!(backend.contains(want), "{precision:?} runs on {want} products: {backend}");
        let min = min_cosine(&mut model, &rows);
        assert!(min >= bound, "{backend}: minimum cosine {min} < {bound}");
        println!("parity: {backend}: minimum cosine {min:.7}");
    }
}

#[test]
fn batch_results_equal_single_results() {
    let mut model = embedder();
    let texts = [
        "Purchased 2 × Trail Runner hiking boots (Footwear) for 129.99 USD at Acme Outdoors",
        "",
        "Played Galaxy Raiders for 45 minutes at level 12 on Nova Games",
        "a",
        &"a long text about hiking and trails and boots ".repeat(40),
    ];
    let batch = model.embed(&texts).unwrap();
    for (text, batched) in texts.iter().zip(&batch) {
        let single = model.embed(&[text]).unwrap().remove(0);
        let c = cosine(&single, batched);
        assert!(c > 0.99999, "batch vs single cosine {c} for {text:?}");
        let norm: f32 = batched.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "vector is L2-normalised (norm {norm})");
    }
}

/// On a CUDA GPU (the `cuda` feature, `--device cuda`: candle in f16) the
/// reference rows still match, to a looser bound than f32 on the CPU: each
/// text in one mixed-length batch and alone, minimum cosine >= 0.999. Without
/// a usable device (no GPU, no driver, or only the stub libcuda of
/// scripts/cuda-toolchain.sh) it prints "skipped: no CUDA device". Loads
/// through `BertEmbedder::load`, without the manifest check, so that it also
/// runs on the f16 copy of the weights in scripts/gpu-bundle.sh's bundle.
#[cfg(feature = "cuda")]
#[test]
fn cuda_f16_matches_the_reference() {
    use context_engine::embed::EmbedError;
    use context_engine::embed::{BertEmbedder, DeviceChoice, ModelOptions};
    let Some(rows) = reference() else { return };
    let mut options = ModelOptions::new(model_dir());
    options.device = DeviceChoice::Cuda;
    let mut model = match BertEmbedder::load(&options) {
        Ok(m) => m,
        Err(EmbedError::DeviceUnavailable { message, .. }) => {
            crate::common::skip(&format!("no CUDA device ({message})"));
            return;
        }
        Err(e) => panic!("cuda: {e}"),
    };
    let backend = model.backend();
    assert!(backend.contains("Cuda"), "backend {backend}");
    let texts: Vec<&str> = rows.iter().map(|r| r.text.as_str()).collect();
    let batch = model.embed(&texts).unwrap();
    let mut min = f32::MAX;
    for (row, vector) in rows.iter().zip(&batch) {
        assert_eq!(vector.len(), 384);
        let single = model.embed(&[row.text.as_str()]).unwrap().remove(0);
        let c = cosine(vector, &row.embedding).min(cosine(&single, &row.embedding));
        assert!(c >= 0.999, "{backend}: cosine {c} < 0.999 for {:?}", row.text);
        min = min.min(c);
    }
    println!("parity: {backend}: {} reference rows, minimum cosine {min:.7}", rows.len());
}

/// The paths an AVX2-only CPU (AMD Zen 3) or an older one takes, on
/// whatever CPU runs the suite: this test binary is run again with
/// `CONTEXT_ENGINE_CPU_ISA` set to `avx2` and to `baseline` (our kernels
/// then use no AVX-512, no AVX-512 BF16 and no AMX, and `auto` precision
/// resolves to f32), and the default model (under avx2 also every CPU
/// kernel set) must still meet the reference (candle's and BLAS's own
/// kernels are not capped).
#[test]
fn capped_instruction_sets_match_the_reference() {
    if std::env::var_os(context_engine::embed::CPU_ISA_ENV).is_some() {
        // The child runs set it themselves (and never select this test).
        crate::common::skip("capped parity runs: CONTEXT_ENGINE_CPU_ISA is already set by the caller");
        return;
    }
    if reference().is_none() {
        return;
    }
    // Under avx2 every kernel set; under baseline the default model only
    // (the child runs load the CPU while the rest of the suite runs).
    let runs: [(&str, &[&str]); 2] = [
        (
            "avx2",
            &["parity::matches_sentence_transformers_reference", "parity::every_cpu_kernel_matches_the_reference"],
        ),
        ("baseline", &["parity::matches_sentence_transformers_reference"]),
    ];
    for (cap, tests) in runs {
        let (ok, text) = run_capped(cap, tests);
        assert!(ok, "{cap}: child run failed:\n{text}");
        assert!(text.contains(&format!("{} passed", tests.len())), "{cap}: the parity tests ran:\n{text}");
        let capped =
            text.lines().filter(|l| l.contains(&format!("capped at {cap}")) && l.contains("minimum cosine")).count();
        assert!(capped >= tests.len(), "{cap}: the default model (and the kernel sets) report the cap:\n{text}");
        // The default model runs our kernels on the capped instruction set
        // (as the cap module reports it) and in f32: no bf16 products, no AMX.
        let isa = if cap == "avx2" { "own kernels: avx2" } else { "own kernels: portable" };
        let default = text.lines().find(|l| l.contains("reference rows")).unwrap_or_default();
        assert!(
            default.contains(&format!("capped at {cap}")) && default.contains(isa),
            "{cap}: the default model ran capped ({isa}):\n{text}"
        );
        assert!(!default.contains("bf16") && !default.contains("amx"), "{cap}: no bf16 or AMX products: {default}");
        for line in text.lines().filter_map(|l| l.find("parity: ").map(|i| &l[i..])) {
            println!("{cap}: {line}");
        }
    }
    // An unknown value is refused when the model loads, naming the variable.
    let (ok, text) = run_capped("avx1024", &["parity::matches_sentence_transformers_reference"]);
    assert!(!ok && text.contains("CONTEXT_ENGINE_CPU_ISA") && text.contains("avx1024"), "{text}");
}

/// Runs `tests` of this test binary in a child process with
/// `CONTEXT_ENGINE_CPU_ISA=cap`; whether it passed, and its output.
fn run_capped(cap: &str, tests: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .arg("--exact")
        .args(tests)
        .args(["--nocapture", "--test-threads", "1"])
        .env(context_engine::embed::CPU_ISA_ENV, cap)
        .output()
        .unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}
