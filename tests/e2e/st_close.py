#!/usr/bin/env python3
"""st_close.py A.st B.st TOL: whether two safetensors files hold the same tensors (names, shapes,
dtypes) with every value within TOL * max(1, |a|) of the other's.  Prints the largest relative
difference and exits 0 when within TOL, 1 otherwise.  Only the standard library: dnic's weights
files are float32 or float64 safetensors (docs/files.md)."""
import json
import struct
import sys


def load(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    body = data[8 + n:]
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        lo, hi = t["data_offsets"]
        code = {"F64": "d", "F32": "f"}.get(t["dtype"])
        if code is None:
            continue
        count = (hi - lo) // struct.calcsize(code)
        out[name] = (t["dtype"], t["shape"], struct.unpack("<%d%s" % (count, code), body[lo:hi]))
    return out


def main():
    a, b, tol = load(sys.argv[1]), load(sys.argv[2]), float(sys.argv[3])
    if a.keys() != b.keys():
        print("the files hold different tensors")
        return 1
    worst, where = 0.0, ""
    for name in sorted(a):
        ta, tb = a[name], b[name]
        if ta[0] != tb[0] or ta[1] != tb[1]:
            print("%s: dtype or shape differs" % name)
            return 1
        for x, y in zip(ta[2], tb[2]):
            d = abs(x - y) / max(1.0, abs(x))
            if not d <= worst:  # NaN counts as the worst
                worst, where = d, name
                if d != d:
                    break
    print("largest relative difference %.3g%s" % (worst, " (in %s)" % where if where else ""))
    return 0 if worst <= tol else 1


sys.exit(main())
