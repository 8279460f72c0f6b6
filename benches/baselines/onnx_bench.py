"""ONNX Runtime (fp32, CPUExecutionProvider) on the model exported from the
same weights by export_onnx.py: throughput, single-query latency and parity
for the texts in --texts. Prints one JSON object on stdout.

    python onnx_bench.py --texts texts.json --threads 2 --batch 32 [--model DIR] [--onnx PATH]

Tokenisation uses the `tokenizers` library on the model's tokenizer.json,
truncated at 256 tokens and padded to the longest text of each batch.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from common import HERE, MAX_SEQ_LEN, add_common_args, default_onnx_path, measure


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(parser)
    parser.add_argument("--onnx", type=Path, help="exported model (default: cached by model.safetensors' sha256; exported when missing)")
    args = parser.parse_args()

    os.environ["RAYON_NUM_THREADS"] = str(args.threads)  # tokenizers' batch encoding
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")

    onnx_path = args.onnx or default_onnx_path(args.model)
    if not onnx_path.is_file():
        # A separate process, so torch's thread pools never share this one with ONNX Runtime.
        subprocess.run(
            [sys.executable, str(HERE / "export_onnx.py"), "--model", str(args.model), "--out", str(onnx_path),
             "--threads", str(args.threads)],
            check=True, stdout=sys.stderr,
        )

    import numpy as np
    import onnxruntime as ort
    import tokenizers
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(args.model / "tokenizer.json"))
    tokenizer.enable_truncation(max_length=MAX_SEQ_LEN)  # the file itself says 128
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # to the longest in the batch (the file says fixed 128)

    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    wanted = {i.name for i in session.get_inputs()}

    def embed_batch(texts):
        encodings = tokenizer.encode_batch(list(texts))
        feed = {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
        }
        return session.run(None, {k: v for k, v in feed.items() if k in wanted})[0]

    versions = {"onnxruntime": ort.__version__, "tokenizers": tokenizers.__version__}
    extra = {"onnx_model": str(onnx_path), "providers": session.get_providers()}
    print(json.dumps(measure("onnxruntime", embed_batch, args, versions, extra)))


if __name__ == "__main__":
    main()
