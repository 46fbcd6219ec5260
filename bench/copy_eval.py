#!/usr/bin/python3
"""Scores a trained Copy model (bench/copy.sh's, an lstm followed by a per-step sigmoid dense
layer) on fresh sequences by the paper's measure: the mean number of wrong bits per sequence.
The forward pass is numpy's, from docs/language.md and docs/semantics.md, not dnic's: a check
of the trained weights as well as a score.

Usage: copy_eval.py WEIGHTS.safetensors BITS LENGTH SEQUENCES SEED
Prints: bits_per_sequence B sequences_right R
"""
import json
import struct
import sys

import numpy as np


def load(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    head = json.loads(raw[8:8 + n])
    out = {}
    for name, t in head.items():
        if name == "__metadata__":
            continue
        a, b = t["data_offsets"]
        dt = {"F32": "<f4", "F64": "<f8"}[t["dtype"]]
        out[name] = np.frombuffer(raw[8 + n + a:8 + n + b], dtype=dt).astype(np.float64).reshape(t["shape"])
    return out


def main():
    w = load(sys.argv[1])
    bits, L, n, seed = (int(v) for v in sys.argv[2:6])
    rs = np.random.RandomState(seed)
    S, I = 2 * L + 1, bits + 1
    x = np.zeros((n, S, I))
    v = (rs.rand(n, L, bits) < 0.5).astype(np.float64)
    x[:, :L, :bits] = v
    x[:, L, bits] = 1
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
            wrong += np.sum((p > 0.5) != (v[:, t - L - 1] > 0.5), axis=1)
    print("bits_per_sequence %.4f sequences_right %.4f" % (wrong.mean(), np.mean(wrong == 0)))


if __name__ == "__main__":
    main()
