"""Prints the largest absolute difference between the tensors of two .safetensors files (same names,
shapes and dtypes required) and exits 1 when it exceeds the tolerance. Usage: A B TOLERANCE [--relative]
[--prefix P]. --relative: each tensor's largest difference divided by its largest absolute value in A
(for low-precision arithmetic, whose rounding scales with the values); --prefix: only tensors whose
names start with P (e.g. exp_avg/ in an optimizer state)."""
import json
import struct
import sys

import numpy

DTYPES = {"F32": numpy.float32, "F64": numpy.float64, "F16": numpy.float16, "I64": numpy.int64, "I32": numpy.int32}


def read(path):
    with open(path, "rb") as f:
        data = f.read()
    (size,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + size])
    header.pop("__metadata__", None)
    body = data[8 + size :]
    out = {}
    for name, t in header.items():
        raw = body[t["data_offsets"][0] : t["data_offsets"][1]]
        if t["dtype"] == "BF16":  # numpy has no bfloat16: its bits are a float32's upper half
            values = (numpy.frombuffer(raw, numpy.uint16).astype(numpy.uint32) << 16).view(numpy.float32)
        else:
            values = numpy.frombuffer(raw, DTYPES[t["dtype"]])
        out[name] = values.reshape(t["shape"])
    return out


args = sys.argv[1:]
relative = "--relative" in args
prefix = args[args.index("--prefix") + 1] if "--prefix" in args else ""
a, b, tolerance = read(args[0]), read(args[1]), float(args[2])
if a.keys() != b.keys():
    sys.exit(f"different tensors: {sorted(a.keys() ^ b.keys())}")
names = [n for n in a if n.startswith(prefix)]
if not names:
    sys.exit(f"no tensor name starts with {prefix!r}")


def difference(n):
    x, y = a[n].astype(numpy.float64), b[n].astype(numpy.float64)
    d = float(numpy.max(numpy.abs(x - y)))
    return d / max(float(numpy.max(numpy.abs(x))), 1e-30) if relative else d


worst = max(difference(n) for n in names)
print(f"max {'relative' if relative else 'abs'} difference {worst:.3g} over {len(names)} tensors (tolerance {tolerance:g})")
sys.exit(0 if worst <= tolerance else 1)
