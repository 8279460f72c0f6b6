"""Helpers shared by the baseline scripts: paths, the reference vectors,
timing and the JSON the benches print. Standard library plus numpy only."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
DEFAULT_MODEL = REPO / "models" / "all-MiniLM-L6-v2"
MAX_SEQ_LEN = 256
WARMUP_QUERIES = 20


def cache_dir() -> Path:
    root = os.environ.get("CONTEXT_ENGINE_CACHE") or Path.home() / ".cache" / "context-engine"
    return Path(root)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def default_onnx_path(model_dir: Path) -> Path:
    """Where the exported model is cached: beside the venv, keyed by the weights' hash."""
    digest = sha256_file(model_dir / "model.safetensors")
    return cache_dir() / "baselines-onnx" / f"{model_dir.name}-{digest[:16]}.onnx"


def reference_path() -> Path:
    """shared/reference/minilm_reference.jsonl; CONTEXT_ENGINE_SHARED (or the
    test suite's CONTEXT_ENGINE_SHARED_DIR) overrides ../shared, which is taken
    relative to the repo root."""
    shared = os.environ.get("CONTEXT_ENGINE_SHARED") or os.environ.get("CONTEXT_ENGINE_SHARED_DIR") or "../shared"
    shared_path = Path(shared)
    if not shared_path.is_absolute():
        shared_path = REPO / shared_path
    return shared_path / "reference" / "minilm_reference.jsonl"


def load_texts(path: Path) -> tuple[list[str], list[str], list[str]]:
    data = json.loads(Path(path).read_text())
    return data["short"], data["long"], data["queries"]


def chunks(items: Sequence[str], size: int) -> list[Sequence[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def throughput(embed_batch: Callable[[Sequence[str]], np.ndarray], texts: Sequence[str], batch: int, passes: int) -> dict:
    """Texts per second over all of `texts` in consecutive batches of `batch`
    (file order, each batch padded to its own longest text), end to end
    including tokenisation. One untimed warm-up pass, then the median of
    `passes` timed passes."""
    batches = chunks(texts, batch)

    def one_pass() -> float:
        start = time.perf_counter()
        for b in batches:
            embed_batch(b)
        return len(texts) / (time.perf_counter() - start)

    one_pass()
    rates = [one_pass() for _ in range(passes)]
    return {"median": statistics.median(rates), "passes": rates}


def nearest_rank(sorted_values: Sequence[float], p: float) -> float:
    """Same percentile rule as benches/bench.rs: index round((n-1)*p)."""
    i = round((len(sorted_values) - 1) * p)
    return sorted_values[min(i, len(sorted_values) - 1)]


def query_latency(embed_batch: Callable[[Sequence[str]], np.ndarray], queries: Sequence[str], calls: int = 200) -> dict:
    """One call per query (a batch of one), 20 warm-up calls, then `calls`
    timed calls cycling through `queries`."""
    for i in range(WARMUP_QUERIES):
        embed_batch([queries[i % len(queries)]])
    times = []
    for i in range(calls):
        q = queries[i % len(queries)]
        start = time.perf_counter()
        embed_batch([q])
        times.append((time.perf_counter() - start) * 1e3)
    times.sort()
    return {"p50": nearest_rank(times, 0.50), "p99": nearest_rank(times, 0.99), "mean": statistics.fmean(times)}


def parity(embed_batch: Callable[[Sequence[str]], np.ndarray]) -> float | None:
    """Lowest cosine between our vectors and the reference rows (each text
    embedded alone), or None when the reference file is absent."""
    path = reference_path()
    if not path.is_file():
        return None
    worst = 1.0
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        got = np.asarray(embed_batch([row["text"]])[0], dtype=np.float64)
        want = np.asarray(row["embedding"], dtype=np.float64)
        cos = float(got @ want / (np.linalg.norm(got) * np.linalg.norm(want)))
        worst = min(worst, cos)
    return worst


def measure(backend: str, embed_batch: Callable[[Sequence[str]], np.ndarray], args, versions: dict, extra: dict | None = None) -> dict:
    """Run the whole protocol and return the JSON object a bench prints."""
    short, long_, queries = load_texts(args.texts)
    short_rate = throughput(embed_batch, short, args.batch, args.passes)
    long_rate = throughput(embed_batch, long_, args.batch, args.passes)
    latency = query_latency(embed_batch, queries, args.queries)
    out = {
        "backend": backend,
        "threads": args.threads,
        "batch": args.batch,
        "short_texts_per_s": short_rate["median"],
        "long_texts_per_s": long_rate["median"],
        "query_p50_ms": latency["p50"],
        "query_p99_ms": latency["p99"],
        "query_mean_ms": latency["mean"],
        "short_passes_per_s": short_rate["passes"],
        "long_passes_per_s": long_rate["passes"],
        "parity_min_cosine": parity(embed_batch),
        "timing": (
            f"median of {args.passes} passes after one warm-up pass, batches of {args.batch} in file order, "
            f"tokenisation included; {args.queries} single queries after {WARMUP_QUERIES} warm-up"
        ),
        "versions": {"python": platform.python_version(), "numpy": np.__version__, **versions},
    }
    out.update(extra or {})
    return out


def add_common_args(parser) -> None:
    parser.add_argument("--texts", type=Path, required=True, help="JSON file written by texts.py")
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads for the model")
    parser.add_argument("--batch", type=int, default=32, help="texts per call in the throughput passes")
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="all-MiniLM-L6-v2 folder")
    parser.add_argument("--passes", type=int, default=3, help="timed passes per text set (median reported)")
    parser.add_argument("--queries", type=int, default=200, help="timed single-query calls")
