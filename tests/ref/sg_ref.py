#!/usr/bin/python3
"""A float64 numpy reference of a three-stage DNI chain with the SG toolkit of docs/semantics.md
("SG output heads", "Stochastic updates", "Warm-up"), written from the docs, not from dnic's IR.

The model (tests/e2e/sgsched.sh writes the matching .dni; lag 0, SGD, before_update):
    h   = tanh(x W_h + b_h)          sg h: linear on [h | y], the layer gets clip_h(scale_h * ghat_h)
    z   = h W_z + b_z  (linear, 1)   sg z: linear on [z | y], head linear (ghat = a) or
                                           sigmoid (ghat = sigmoid(a) - y), gets clip_z(scale_z * ghat_z)
    out = sigmoid(z W_o + b_o)       loss: sigmoid cross-entropy, dL/d(pre-activation) = out - y
Stages: {h}, {z}, {out}; stage k updates at step t when u_k(t) < p, u(t) = RandomState(s_t).rand(3),
s_t = splitmix(((seed << 32) ^ t) ^ SALT) (the finaliser dnic's shuffle uses, bits 16..47).
Steps t < warmup learn by backpropagation (every layer, true gradients); the SG modules learn from
their targets in every step.  With `si` (sg z.input, linear on x): z reads hi = x U + c in
place of h, its update and its message use hi, and U, c regress hi on the real h.

Usage: sg_ref.py DATA.csv NSTEPS SCALE_H CLIP_H HEAD_Z SCALE_Z CLIP_Z P WARMUP [si]
(CLIP 0: none; HEAD_Z linear|sigmoid.)  Prints "loss L" per step, then the final parameters as
NAME VALUES.
"""
import sys

import numpy as np

M64 = (1 << 64) - 1
SALT = 0x7570646174650000  # "update" in ASCII, the stream's own


def mix(z):
    z = (z + 0x9E3779B97F4A7C15) & M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return ((z ^ (z >> 31)) >> 16) & 0xFFFFFFFF


def mask(seed, t, stages, p):
    u = np.random.RandomState(mix(((seed << 32) ^ t) ^ SALT)).rand(stages)
    return [bool(v < p) for v in u]


def clip(v, scale, c):
    v = v * scale
    return np.clip(v, -c, c) if c > 0 else v


def main():
    path, nsteps = sys.argv[1], int(sys.argv[2])
    scale_h, clip_h = float(sys.argv[3]), float(sys.argv[4])
    sigmoid_head = sys.argv[5] == "sigmoid"
    scale_z, clip_z = float(sys.argv[6]), float(sys.argv[7])
    p, warmup = float(sys.argv[8]), int(sys.argv[9])
    si = len(sys.argv) > 10 and sys.argv[10] == "si"
    lr, B, seed = 0.05, 4, 3
    data = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float64, ndmin=2)
    X, Y = data[:, :-1], data[:, -1:]
    rs = np.random.RandomState(seed)  # construction order: each layer, its SG module, its input's
    P = {}
    order = [("h.weight", (4, 5), 0.3), ("h.bias", (1, 5), 0.1), ("h.sg.weight", (6, 5), 0.1),
             ("h.sg.bias", (1, 5), 0.1), ("z.weight", (5, 1), 0.3), ("z.bias", (1, 1), 0.1),
             ("z.sg.weight", (2, 1), 0.1), ("z.sg.bias", (1, 1), 0.1)]
    if si:
        order += [("z.input.sg.weight", (4, 5), 0.1), ("z.input.sg.bias", (1, 5), 0.1)]
    order += [("out.weight", (1, 1), 0.3), ("out.bias", (1, 1), 0.1)]
    for name, shape, sc in order:
        P[name] = rs.randn(*shape) * sc
    per_epoch = len(X) // B

    def upd(name, inp, d):
        P[name + ".weight"] = P[name + ".weight"] - (inp.T @ d) * lr
        P[name + ".bias"] = P[name + ".bias"] - np.mean(d, axis=0, keepdims=True) * lr

    for t in range(nsteps):
        r = t % per_epoch * B
        x, y = X[r:r + B], Y[r:r + B]
        warm = t < warmup
        m = [True] * 3 if warm else mask(seed, t, 3, p)
        # forward and the SG modules' predictions (each stage's weights before its update)
        h = np.tanh(x @ P["h.weight"] + P["h.bias"])
        sh = np.hstack([h, y])
        gh = sh @ P["h.sg.weight"] + P["h.sg.bias"]
        if not warm:  # stage {h} learns from its synthetic gradient at once
            dh = clip(gh, scale_h, clip_h) * (1 - h * h)
            if m[0]:
                upd("h", x, dh)
        zin = x @ P["z.input.sg.weight"] + P["z.input.sg.bias"] if si else h  # what z reads
        z = zin @ P["z.weight"] + P["z.bias"]
        sz = np.hstack([z, y])
        az = sz @ P["z.sg.weight"] + P["z.sg.bias"]
        sig = 1 / (1 + np.exp(-az)) if sigmoid_head else None
        gz = sig - y if sigmoid_head else az
        Wz = P["z.weight"]
        if not warm:
            dz = clip(gz, scale_z, clip_z)
            msg_h = dz @ Wz.T  # before the update
            if m[1]:
                upd("z", zin, dz)
        o = 1 / (1 + np.exp(-(z @ P["out.weight"] + P["out.bias"])))
        print("loss %.17g" % float(-np.sum(y * np.log(o) + (1 - y) * np.log(1 - o))))
        do = o - y
        msg_z = do @ P["out.weight"].T
        if m[2]:
            upd("out", z, do)
        if warm:  # backpropagation: the true gradients, each message with the step's weights
            dz = msg_z
            msg_h = dz @ Wz.T
            upd("z", h, dz)
            upd("h", x, msg_h * (1 - h * h))
        # the SG modules learn, nearest the loss first
        d = gz - msg_z
        if sigmoid_head:
            d = d * (sig * (1 - sig))
        P["z.sg.weight"] = P["z.sg.weight"] - (sz.T @ d) * lr
        P["z.sg.bias"] = P["z.sg.bias"] - np.mean(d, axis=0, keepdims=True) * lr
        d = gh - msg_h
        P["h.sg.weight"] = P["h.sg.weight"] - (sh.T @ d) * lr
        P["h.sg.bias"] = P["h.sg.bias"] - np.mean(d, axis=0, keepdims=True) * lr
        if si:  # the synthetic input regresses on the real one
            d = zin - h
            P["z.input.sg.weight"] = P["z.input.sg.weight"] - (x.T @ d) * lr
            P["z.input.sg.bias"] = P["z.input.sg.bias"] - np.mean(d, axis=0, keepdims=True) * lr
    for name, v in P.items():
        print(name, " ".join("%.17g" % e for e in v.ravel()))


if __name__ == "__main__":
    main()
