"""Copy a safetensors file with every F32 tensor rounded to F16 (round to
nearest even, as numpy's astype does). Standard library only.

    python3 scripts/safetensors_f16.py IN.safetensors OUT.safetensors

scripts/gpu-bundle.sh uses it to halve all-MiniLM-L6-v2 (91 MB) so that the
bundle fits the GPU machine's 64 MiB transfer limit. On CUDA the engine runs
the model in F16 anyway, so the GPU result is the same as from the F32 file.
"""

from __future__ import annotations

import json
import struct
import sys


def main(src: str, dst: str) -> None:
    with open(src, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    meta = header.pop("__metadata__", None)
    out_header: dict = {} if meta is None else {"__metadata__": meta}
    chunks: list[bytes] = []
    offset = 0
    for name, info in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        start, end = info["data_offsets"]
        raw = data[start:end]
        dtype = info["dtype"]
        if dtype == "F32":
            count = len(raw) // 4
            raw = struct.pack(f"<{count}e", *struct.unpack(f"<{count}f", raw))
            dtype = "F16"
        out_header[name] = {"dtype": dtype, "shape": info["shape"], "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    blob = json.dumps(out_header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)  # keep the data 8-byte aligned
    with open(dst, "wb") as f:
        f.write(struct.pack("<Q", len(blob)))
        f.write(blob)
        for c in chunks:
            f.write(c)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
