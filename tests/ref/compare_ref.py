#!/usr/bin/python3
"""Compares a dnic run with a numpy reference's output: every step's loss (the third column of
dnic's --log CSV) and every final weight (a float64 safetensors file from --save-weights) against
the reference's `loss VALUE` lines and `NAME VALUES` lines.

Usage: compare_ref.py LOG.csv WEIGHTS.st REF.txt [TOL]   (TOL: the largest relative difference
allowed, 1e-9 by default).  Prints the worst relative difference and where; exits 1 above TOL.
"""
import json
import struct
import sys

import numpy as np


def main():
    log, weights, ref = sys.argv[1:4]
    tol = float(sys.argv[4]) if len(sys.argv) > 4 else 1e-9
    got = [float(l.split(",")[2]) for l in open(log).read().split("\n")[1:] if l]
    lines = open(ref).read().split("\n")
    want = [float(l.split()[1]) for l in lines if l.startswith("loss ")]
    raw = open(weights, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    head = json.loads(raw[8:8 + n])

    def tensor(name):
        a, b = head[name]["data_offsets"]
        return np.frombuffer(raw[8 + n + a:8 + n + b], dtype="<f8")

    if len(got) != len(want) or not want:
        sys.exit("%d losses from dnic, %d from the reference" % (len(got), len(want)))
    worst, where = 0.0, ""
    for i, (g, w) in enumerate(zip(got, want)):
        e = abs(g - w) / max(abs(w), 1e-300)
        if e > worst:
            worst, where = e, "loss of step %d: %r vs %r" % (i, g, w)
    for l in lines:
        if l and not l.startswith("loss "):
            name, vals = l.split()[0], np.array([float(v) for v in l.split()[1:]])
            e = float(np.max(np.abs(tensor(name) - vals) / np.maximum(np.abs(vals), 1e-12)))
            if e > worst:
                worst, where = e, name
    print("worst relative difference %.3g (%s)" % (worst, where))
    sys.exit(0 if worst <= tol else 1)


if __name__ == "__main__":
    main()
