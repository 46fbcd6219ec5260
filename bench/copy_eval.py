#!/usr/bin/python3
"""Scores a trained Copy model (bench/copy.sh's, an lstm followed by a per-step sigmoid dense
layer) on fresh sequences by the paper's measure: the mean number of wrong bits per sequence.
The forward pass is numpy's, from docs/language.md and docs/semantics.md, not dnic's: a check
of the trained weights as well as a score.

Usage: copy_eval.py WEIGHTS.safetensors BITS LENGTH SEQUENCES SEED [REPEATS [FIRST]]
(REPEATS > 0: Repeat Copy, the vectors REPEATS times and the end marker, whose bit counts too.
FIRST: score only the sequences from FIRST on, e.g. a dnic run's test set, drawn after its
`examples` training sequences from the data's seed: SEQUENCES = examples + test_examples.)
Prints: bits_per_sequence B sequences_right R
       copy_eval.py --add-sg WEIGHTS HIDDEN OUT
writes WEIGHTS with the zero weights of a linear `sg h.state` (when the curriculum reaches the
first length with a truncation boundary, bench/copy.sh), unless it has them.
"""
import json
import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "peers"))
from fashion_common import read_safetensors  # noqa: E402


def add_sg(path, H, out):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    head = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    head.pop("__metadata__", None)  # its checksums would no longer hold; a file without them loads
    if "h.state.sg.weight" not in head:
        dt = head["h.weight_hh"]["dtype"]
        size = {"F32": 4, "F64": 8}[dt]
        for name, shape in (("h.state.sg.weight", [2 * H, 2 * H]), ("h.state.sg.bias", [2 * H])):
            count = shape[0] * (shape[1] if len(shape) > 1 else 1)
            head[name] = {"dtype": dt, "shape": shape, "data_offsets": [len(data), len(data) + count * size]}
            data += bytes(count * size)
    text = json.dumps(head).encode()
    text += b" " * (-len(text) % 8)
    open(out, "wb").write(struct.pack("<Q", len(text)) + text + data)


def main():
    if sys.argv[1] == "--add-sg":
        add_sg(sys.argv[2], int(sys.argv[3]), sys.argv[4])
        return
    w = {k: v.astype(np.float64) for k, v in read_safetensors(sys.argv[1]).items()}
    bits, L, n, seed = (int(v) for v in sys.argv[2:6])
    R = int(sys.argv[6]) if len(sys.argv) > 6 else 0
    first = int(sys.argv[7]) if len(sys.argv) > 7 else 0
    rs = np.random.RandomState(seed)
    S, I = (2 * L + 1, bits + 1) if R == 0 else (L + 1 + R * L + 1, bits + 2)
    x = np.zeros((n, S, I))
    v = (rs.rand(n, L, bits) < 0.5).astype(np.float64)
    x[:, :L, :bits] = v
    x[:, L, bits] = 1
    if R:
        x[:, L, bits + 1] = R
    # the labels of the last steps: the vectors (R times over), then (Repeat Copy) the end marker
    out = np.zeros((n, S - L - 1, bits + (1 if R else 0)))
    for k in range(max(R, 1)):
        out[:, k * L:(k + 1) * L, :bits] = v
    if R:
        out[:, -1, bits] = 1
    Wih, Whh, b = w["h.weight_ih"], w["h.weight_hh"], w["h.bias"].reshape(1, -1)
    Wo, bo = w["out.weight"], w["out.bias"].reshape(1, -1)
    H = Whh.shape[0]
    sig = lambda z: 1 / (1 + np.exp(-z))
    h, c = np.zeros((n, H)), np.zeros((n, H))
    wrong = np.zeros(n)
    for t in range(S):
        z = x[:, t] @ Wih + b + h @ Whh
        i, f, g, o = sig(z[:, :H]), sig(z[:, H:2 * H]), np.tanh(z[:, 2 * H:3 * H]), sig(z[:, 3 * H:])
        c = f * c + i * g
        h = o * np.tanh(c)
        if t > L:
            p = sig(h @ Wo + bo)
            wrong += np.sum((p > 0.5) != (out[:, t - L - 1] > 0.5), axis=1)
    wrong = wrong[first:]
    print("bits_per_sequence %.4f sequences_right %.4f" % (wrong.mean(), np.mean(wrong == 0)))


if __name__ == "__main__":
    main()
