"""Embed the same texts with sentence-transformers (PyTorch), ONNX Runtime and
our engine (`context-bench embed`), same thread count, in one run; print the
numbers side by side with ratios and write them all to a JSON file.

    python compare.py [--threads 2] [--batch 32] [--out FILE] [--ours-cmd CMD] [--skip-ours]
                      [--passes 3] [--queries 200] [--ours-variant NAME=ARGS ...]

`--ours-variant bf16="--cpu-precision bf16"` also runs our bench with those
extra arguments, reported as `ours-bf16` with its own ratios. Leading
`NAME=VALUE` words of a variant are environment settings for that run only:
`--ours-variant 'avx2=CONTEXT_ENGINE_CPU_ISA=avx2 OPENBLAS_CORETYPE=Haswell'`
runs our AVX2 path on an AVX-512 machine (README, Measured).

Each backend runs in its own process so thread settings do not interfere, one
after another so they never compete for cores. run.sh sets up the venv and
calls this.
"""

from __future__ import annotations

import argparse
import statistics
import datetime as dt
import json
import os
import re
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import DEFAULT_MODEL, HERE, REPO, default_onnx_path

DEFAULT_OURS = "cargo run --locked --quiet --bin context-bench -- embed"
# (key, label, kind): throughput ratios are ours/theirs, latency ratios theirs/ours,
# so > 1 always means ours is faster.
METRICS = [
    ("short_texts_per_s", "short texts/s (batch)", "throughput"),
    ("long_texts_per_s", "256-token texts/s (batch)", "throughput"),
    ("query_p50_ms", "single query p50 ms", "latency"),
    ("query_p99_ms", "single query p99 ms", "latency"),
    ("parity_min_cosine", "parity (min cosine)", None),
]


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    for line in out.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def busy_processes(threshold: float = 20.0) -> list[str]:
    """Other processes using noticeable CPU right now (they skew every number)."""
    try:
        out = subprocess.run(["ps", "-eo", "pid,pcpu,comm", "--sort=-pcpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return []
    busy = []
    for line in out.splitlines()[1:]:
        pid, pcpu, comm = line.split(None, 2)
        if float(pcpu) >= threshold and int(pid) != os.getpid():
            busy.append(f"{comm} (pid {pid}, {pcpu}% cpu)")
    return busy


def system_busy_seconds() -> float | None:
    """CPU seconds all processes have spent since boot (Linux /proc/stat)."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def children_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_json(name: str, cmd: list[str], cwd: Path, env: dict) -> tuple[dict | None, str | None, dict]:
    """Run one backend; return (its JSON object, error, run info). Its stderr
    streams through; its stdout must end with one JSON object. The run info
    includes the share of the machine that other processes used meanwhile:
    anything well above 0 means the numbers are skewed."""
    print(f"\n== {name}: {shlex.join(cmd)}", file=sys.stderr, flush=True)
    start, busy0, ours0 = time.perf_counter(), system_busy_seconds(), children_seconds()
    try:
        proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, text=True)
    except OSError as e:
        return None, f"could not start {cmd[0]!r}: {e}", {}
    seconds, busy1, ours1 = time.perf_counter() - start, system_busy_seconds(), children_seconds()
    info: dict = {"wall_s": round(seconds, 1), "cpu_s": round(ours1 - ours0, 1)}
    if busy0 is not None and busy1 is not None:
        others = max(0.0, (busy1 - busy0) - (ours1 - ours0))
        info["other_processes_cpu_share"] = round(others / (seconds * (os.cpu_count() or 1)), 3)
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    if proc.returncode != 0:
        return None, f"exited with status {proc.returncode}", info
    try:
        result = json.loads(lines[-1])
        if not isinstance(result, dict):
            raise ValueError("not a JSON object")
    except (IndexError, ValueError) as e:
        return None, f"printed no JSON object on its last stdout line ({e}): {proc.stdout[-500:]!r}", info
    share = info.get("other_processes_cpu_share")
    print(f"== {name}: done in {seconds:.0f} s; other processes used {share if share is not None else '?'} of the machine meanwhile",
          file=sys.stderr, flush=True)
    return result, None, info


def ratio(ours: dict | None, theirs: dict | None, key: str, kind: str | None) -> float | None:
    if not ours or not theirs or kind is None:
        return None
    a, b = ours.get(key), theirs.get(key)
    if not isinstance(a, (int, float)) or not isinstance(b, (int, float)) or a <= 0 or b <= 0:
        return None
    return a / b if kind == "throughput" else b / a


def fmt(value, key: str) -> str:
    if value is None:
        return "—"
    if key == "parity_min_cosine":
        return f"{value:.6f}"
    return f"{value:.1f}" if value >= 100 else f"{value:.2f}"


def median_result(rounds: list[dict | None]) -> dict | None:
    """One backend's result over several rounds: each metric's median (the
    other keys from its first successful round), `None` if every round failed."""
    ok = [r for r in rounds if r]
    if not ok:
        return None
    merged = dict(ok[0])
    for key, _, _ in METRICS:
        values = [r[key] for r in ok if isinstance(r.get(key), (int, float))]
        if values:
            merged[key] = statistics.median(values)
    merged["rounds"] = len(ok)
    return merged


def ours_names(results: dict) -> list[str]:
    return [n for n in results if n == "ours" or n.startswith("ours-")]


def table(results: dict, header: str) -> str:
    torch_, onnx = results.get("pytorch"), results.get("onnx")
    mine = ours_names(results) or ["ours"]
    rows = [["metric", *mine, "pytorch", "onnx"] + [f"{n}/{t}" for n in mine for t in ("pytorch", "onnx")]]
    for key, label, kind in METRICS:
        cells = [label] + [fmt((results.get(n) or {}).get(key), key) for n in mine]
        cells += [fmt((r or {}).get(key), key) for r in (torch_, onnx)]
        for n in mine:
            for theirs in (torch_, onnx):
                r = ratio(results.get(n), theirs, key, kind)
                cells.append("—" if r is None else f"{r:.2f}×")
        rows.append(cells)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [header]
    for n, row in enumerate(rows):
        lines.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main() -> None:
    today = dt.datetime.now(dt.timezone.utc)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--out", type=Path, default=REPO / "benches" / "results" / f"embed-compare-{today:%Y-%m-%d}.json")
    parser.add_argument("--ours-cmd", default=DEFAULT_OURS, help=f"our bench, run from the repo root (default: {DEFAULT_OURS!r})")
    parser.add_argument("--skip-ours", action="store_true", help="run only the two baselines")
    parser.add_argument("--ours-variant", action="append", default=[], metavar="NAME=ARGS",
                        help="also run our bench with these extra arguments, reported as ours-NAME (repeatable)")
    parser.add_argument("--passes", type=int, default=3, help="timed passes per text set (median reported)")
    parser.add_argument("--queries", type=int, default=200, help="timed single-query calls")
    parser.add_argument("--seed", type=int, default=7, help="seed for texts.py")
    parser.add_argument("--rounds", type=int, default=1,
                        help="run every backend this many times, interleaved (A B C A B C ...); the table reports each "
                             "metric's median over the rounds and the JSON keeps every round: on a shared machine whose "
                             "speed drifts over minutes, one run per backend compares different moments")
    args = parser.parse_args()
    if args.rounds < 1:
        sys.exit("compare: --rounds must be at least 1")
    model = args.model.resolve()
    if not (model / "model.safetensors").is_file():
        sys.exit(f"compare: no model at {model}; run models/fetch.sh first")

    py = sys.executable
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    common_args = ["--threads", str(args.threads), "--batch", str(args.batch), "--passes", str(args.passes), "--queries", str(args.queries)]
    load_before, busy_before = os.getloadavg(), busy_processes()
    if busy_before:
        print(f"compare: warning: other processes are busy ({', '.join(busy_before)}); numbers will be skewed", file=sys.stderr)

    results: dict[str, dict | None] = {}
    errors: dict[str, str] = {}
    run_info: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="embed-compare-") as tmp:
        texts = Path(tmp) / "texts.json"
        subprocess.run([py, str(HERE / "texts.py"), "--out", str(texts), "--model", str(model), "--seed", str(args.seed)], check=True, env=env)
        text_sets = json.loads(texts.read_text())

        # Export first (cached), so the ONNX run below times only inference.
        onnx_path = default_onnx_path(model)
        if not onnx_path.is_file():
            subprocess.run([py, str(HERE / "export_onnx.py"), "--model", str(model), "--out", str(onnx_path), "--threads", str(args.threads)], check=True, env=env)

        # (name, command, environment settings of this run only)
        runs = [
            ("pytorch", [py, str(HERE / "pytorch_bench.py"), "--texts", str(texts), "--model", str(model), *common_args], {}),
            ("onnx", [py, str(HERE / "onnx_bench.py"), "--texts", str(texts), "--model", str(model), "--onnx", str(onnx_path), *common_args], {}),
        ]
        if not args.skip_ours:
            runs.append(("ours", [*shlex.split(args.ours_cmd), "--texts", str(texts), *common_args, "--json"], {}))
            for variant in args.ours_variant:
                name, _, extra = variant.partition("=")
                words = shlex.split(extra)
                settings = {}
                while words and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[0]):
                    key, _, value = words.pop(0).partition("=")
                    settings[key] = value
                runs.append((f"ours-{name}", [*shlex.split(args.ours_cmd), *words, "--texts", str(texts), *common_args, "--json"], settings))
        per_round: dict[str, list[dict | None]] = {name: [] for name, _, _ in runs}
        infos: dict[str, list[dict]] = {name: [] for name, _, _ in runs}
        for round_no in range(args.rounds):
            for name, cmd, settings in runs:
                label = name if args.rounds == 1 else f"{name} (round {round_no + 1}/{args.rounds})"
                if settings:
                    label += " with " + " ".join(f"{k}={v}" for k, v in settings.items())
                result, error, info = run_json(label, cmd, REPO, {**env, **settings})
                per_round[name].append(result)
                infos[name].append(info)
                if error:
                    errors[name] = error
                    print(f"compare: ERROR: {label} failed: {error}", file=sys.stderr)
        for name, _, _ in runs:
            results[name] = median_result(per_round[name])
            run_info[name] = infos[name][0] if args.rounds == 1 else {
                "rounds": infos[name],
                "other_processes_cpu_share": max((i.get("other_processes_cpu_share", 0) for i in infos[name]), default=0),
            }

    load_after, busy_after = os.getloadavg(), busy_processes()
    cpu = cpu_model()
    header = (
        f"Embedding comparison, {today:%Y-%m-%d %H:%M} UTC, {cpu}, {os.cpu_count()} CPUs, "
        f"{args.threads} threads, batch {args.batch}"
        + (f", median of {args.rounds} interleaved rounds" if args.rounds > 1 else "")
        + "\nratios: > 1 means ours is faster (throughput: ours/theirs; latency: theirs/ours)"
    )
    print()
    print(table(results, header))
    round_ratios = {
        f"{mine}/{other}": {
            key: [ratio(a, b, key, kind) for a, b in zip(per_round[mine], per_round[other])]
            for key, _, kind in METRICS
            if kind
        }
        for mine in ours_names(results)
        for other in ("pytorch", "onnx")
        if mine in per_round and other in per_round
    }
    if args.rounds > 1:
        print("ratios round by round (same round, so the same moment of the machine):")
        for pair, by_key in round_ratios.items():
            cells = [f"{key}: " + " ".join("—" if r is None else f"{r:.2f}" for r in values) for key, values in by_key.items()]
            print(f"  {pair}: " + "; ".join(cells))
    if args.skip_ours:
        print("(ours skipped: --skip-ours)")
    elif "ours" in errors:
        print(f"(ours failed: {errors['ours']}; command: {args.ours_cmd})")
    print(f"load average before/after: {load_before[0]:.2f} / {load_after[0]:.2f}")
    skewed = {n: i["other_processes_cpu_share"] for n, i in run_info.items() if i.get("other_processes_cpu_share", 0) > 0.05}
    if skewed:
        print(f"WARNING: other processes used CPU during {skewed} (share of all cores); rerun on an idle machine")

    record = {
        "date_utc": today.isoformat(timespec="seconds"),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "threads": args.threads,
        "batch": args.batch,
        "passes": args.passes,
        "queries": args.queries,
        "texts": {k: len(v) for k, v in text_sets.items()},
        "texts_seed": args.seed,
        "ours_cmd": None if args.skip_ours else args.ours_cmd,
        "results": results,
        "ours_variants": args.ours_variant,
        "ratios": {
            f"{mine}/{other}": {key: ratio(results.get(mine), results.get(other), key, kind) for key, _, kind in METRICS if kind}
            for mine in ours_names(results)
            for other in ("pytorch", "onnx")
        },
        "ratio_convention": "> 1 means ours is faster: throughput ours/theirs, latency theirs/ours",
        "rounds": args.rounds,
        "round_results": per_round if args.rounds > 1 else None,
        "round_ratios": round_ratios if args.rounds > 1 else None,
        "errors": errors,
        "runs": run_info,
        "load_average_1m": {"before": load_before[0], "after": load_after[0]},
        "busy_processes": {"before": busy_before, "after": busy_after},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {args.out}")
    if len(errors) == len(runs):
        sys.exit(1)


if __name__ == "__main__":
    main()
