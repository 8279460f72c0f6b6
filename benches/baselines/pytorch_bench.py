"""sentence-transformers on PyTorch (CPU, or CUDA in f16 with --device cuda):
throughput, single-query latency and parity for the texts in --texts. Prints
one JSON object on stdout.

    python pytorch_bench.py --texts texts.json --threads 2 --batch 32 [--model DIR] [--device cuda]

The model is built from the plain transformers folder (config.json,
tokenizer.json, model.safetensors) as all-MiniLM-L6-v2 is defined:
Transformer(max_seq_length=256) + mean Pooling + Normalize.
"""

from __future__ import annotations

import argparse
import json
import os

from common import MAX_SEQ_LEN, add_common_args, measure


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(parser)
    parser.add_argument("--device", default="cpu", help="cpu, or cuda (the model then runs in f16, as ours does)")
    args = parser.parse_args()

    # Thread pools read these at import time.
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "RAYON_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")

    import sentence_transformers
    import tokenizers
    import torch
    import transformers
    from sentence_transformers import SentenceTransformer
    try:
        from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    except ImportError:  # older releases (the GPU machines' image has 6.0)
        from sentence_transformers.models import Normalize, Pooling, Transformer

    transformers.utils.logging.disable_progress_bar()
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    transformer = Transformer(str(args.model), max_seq_length=MAX_SEQ_LEN)
    dimension = getattr(transformer, "get_embedding_dimension", None) or transformer.get_word_embedding_dimension
    model = SentenceTransformer(
        modules=[transformer, Pooling(dimension(), "mean"), Normalize()], device=args.device
    ).eval()
    if args.device != "cpu":
        model = model.half()

    def embed_batch(texts):
        with torch.inference_mode():
            return model.encode(list(texts), batch_size=args.batch, convert_to_numpy=True, show_progress_bar=False)

    versions = {
        "torch": torch.__version__,
        "sentence_transformers": sentence_transformers.__version__,
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
    }
    extra = {
        "attn_implementation": getattr(transformer.auto_model.config, "_attn_implementation", None),
        "device": args.device,
        "dtype": str(next(model.parameters()).dtype),
    }
    print(json.dumps(measure("pytorch", embed_batch, args, versions, extra)))


if __name__ == "__main__":
    main()
