"""Export all-MiniLM-L6-v2 to ONNX (fp32) from the same safetensors weights
the other backends use: BertModel + mean pooling over the attention mask +
L2 normalisation in one graph, inputs input_ids / attention_mask /
token_type_ids (int64, dynamic batch and sequence axes), output
sentence_embedding [batch, 384], opset 17, TorchScript exporter.

    python export_onnx.py --model DIR --out PATH.onnx [--threads N]

onnx_bench.py runs this (in its own process) when the cached file is missing.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path

from common import DEFAULT_MODEL, default_onnx_path

OPSET = 17


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--out", type=Path, help="default: the cache path keyed by model.safetensors' sha256")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    out = args.out or default_onnx_path(args.model)

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import numpy as np
    import onnx
    import torch
    import transformers
    from transformers import AutoModel

    transformers.utils.logging.disable_progress_bar()
    torch.set_num_threads(args.threads)

    class SentenceEmbedder(torch.nn.Module):
        """What sentence-transformers' Transformer + Pooling('mean') + Normalize compute."""

        def __init__(self, bert: torch.nn.Module):
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask, token_type_ids):
            hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            summed = (hidden * mask).sum(dim=1)
            counts = mask.sum(dim=1).clamp(min=1e-9)
            return torch.nn.functional.normalize(summed / counts, p=2, dim=1)

    # "eager" attention exports as the plain MatMul/Softmax pattern that ONNX
    # Runtime's graph optimiser fuses; the weights are the same either way.
    bert = AutoModel.from_pretrained(str(args.model), attn_implementation="eager").eval()
    model = SentenceEmbedder(bert).eval()

    sample = torch.tensor([[101, 7592, 2088, 102], [101, 7592, 102, 0]], dtype=torch.long)
    inputs = (sample, (sample != 0).long(), torch.zeros_like(sample))
    names = ["input_ids", "attention_mask", "token_type_ids"]
    axes = {name: {0: "batch", 1: "sequence"} for name in names}
    axes["sentence_embedding"] = {0: "batch"}

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".onnx.tmp")
    with torch.inference_mode(), warnings.catch_warnings():
        # The tracer notes Python-side shape checks in transformers' masking
        # code; the check below runs other shapes to prove the graph general.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        torch.onnx.export(
            model, inputs, str(tmp), input_names=names, output_names=["sentence_embedding"],
            dynamic_axes=axes, opset_version=OPSET, do_constant_folding=True, dynamo=False,
        )
    onnx.checker.check_model(str(tmp))

    # Check on shapes other than the traced one: batch 3, 300 positions
    # (truncation happens in the tokenizer, so the graph must take any length
    # up to 512), with rows padded by different amounts.
    import onnxruntime as ort

    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, 30000, (3, 300), generator=generator)
    mask = torch.ones_like(ids)
    mask[1, 40:] = 0
    mask[2, 7:] = 0
    ids = ids * mask
    check = (ids, mask, torch.zeros_like(ids))
    with torch.inference_mode():
        expected = model(*check).numpy()
    session = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
    wanted = {i.name for i in session.get_inputs()}  # an input the graph does not use is dropped
    got = session.run(None, {name: t.numpy() for name, t in zip(names, check) if name in wanted})[0]
    worst = float(np.min(np.sum(got * expected, axis=1)))
    if worst < 0.9999:
        sys.exit(f"export: ONNX output differs from PyTorch (min cosine {worst})")
    tmp.replace(out)
    print(f"export: wrote {out} ({out.stat().st_size / 1e6:.1f} MB, opset {OPSET}, cosine to PyTorch {worst:.7f})", file=sys.stderr)


if __name__ == "__main__":
    main()
