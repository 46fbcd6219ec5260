#!/usr/bin/python3
"""A float64 numpy reference of a tanh RNN trained with truncated BPTT and synthetic gradients,
written from docs/semantics.md ("Recurrent layers"), not from dnic's IR.

The model (tests/e2e/rnn.sh writes the matching .dni):
    h_t = tanh(x_t W_ih + b + h_{t-1} W_hh), h_{-1} = 0, x_t = columns [t*w, (t+1)*w) of a row
    out = sigmoid(h_{T-1} W_o + b_o), loss 0.5 sum (out - y)^2
    sg h        predicts dL/dh_{T-1} from h_{T-1}   (DNI mode: the rnn's stage ends there)
    sg h.state  predicts the gradient at each truncation boundary from the state there

Usage: rnn_ref.py DATA.csv MODE STEPS UNROLL HIDDEN BATCH LR SEED NSTEPS [repeat]
(repeat: every step reads the whole row, x_t = x)
Prints one line per training step: the step's loss, then the final weights as NAME VALUES.
"""
import sys

import numpy as np


def main():
    path, mode = sys.argv[1], sys.argv[2]
    steps, unroll, H, B = (int(v) for v in sys.argv[3:7])
    lr, seed, nsteps = float(sys.argv[7]), int(sys.argv[8]), int(sys.argv[9])
    data = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float64, ndmin=2)
    X, Y = data[:, :-1], data[:, -1:]
    repeat = len(sys.argv) > 10 and sys.argv[10] == "repeat"
    w = X.shape[1] if repeat else X.shape[1] // steps
    dni = mode == "dni"

    rs = np.random.RandomState(seed)  # construction order: h's parameters, its SG modules, out's
    Wih = rs.randn(w, H) * 0.3
    Whh = rs.randn(H, H) * 0.3
    b = rs.randn(1, H) * 0.1
    if dni:
        Sw = rs.randn(H, H) * 0.1      # sg h
        Sb = rs.randn(1, H) * 0.1
        Tw = rs.randn(H, H) * 0.1      # sg h.state
        Tb = rs.randn(1, H) * 0.1
    Wo = rs.randn(H, 1) * 0.3
    bo = rs.randn(1, 1) * 0.1

    per_epoch = X.shape[0] // B
    chunks = [(c0, min(c0 + unroll, steps)) for c0 in range(0, steps, unroll)]
    for k in range(nsteps):
        r = k % per_epoch * B
        x, y = X[r:r + B], Y[r:r + B]
        xs = [x if repeat else x[:, t * w:(t + 1) * w] for t in range(steps)]
        hs = {}

        def forward(c0, c1):
            for t in range(c0, c1):
                z = xs[t] @ Wih + b
                if t > 0:
                    z = z + hs[t - 1] @ Whh
                hs[t] = np.tanh(z)

        def backward(c0, c1, g):
            """BPTT through steps c1-1..c0 from g = dL/dh_{c1-1}; the chunk's summed gradient
            updates the weights; returns dL/dh_{c0-1} (with the weights before the update)."""
            nonlocal Wih, Whh, b
            gih, ghh, gb = np.zeros_like(Wih), np.zeros_like(Whh), np.zeros_like(b)
            used_hh = False
            for t in range(c1 - 1, c0 - 1, -1):
                dz = g * (1 - hs[t] ** 2)
                gih += xs[t].T @ dz
                gb += dz.sum(axis=0, keepdims=True)
                if t > 0:
                    ghh += hs[t - 1].T @ dz
                    used_hh = True
                g = dz @ Whh.T
            Wih = Wih - lr * gih
            if used_hh:
                Whh = Whh - lr * ghh
            b = b - lr * (gb / B)
            return g

        boundary = []  # per boundary: (state, prediction, target)
        for c0, c1 in chunks[:-1]:
            forward(c0, c1)
            if dni:
                pred = hs[c1 - 1] @ Tw + Tb
                prev = backward(c0, c1, pred)
                if boundary:
                    boundary[-1][2] = prev
                boundary.append([hs[c1 - 1], pred, None])
        c0, c1 = chunks[-1]
        forward(c0, c1)
        hL = hs[steps - 1]
        if dni:
            sg = hL @ Sw + Sb
            prev = backward(c0, c1, sg)
            if boundary:
                boundary[-1][2] = prev
        o = 1 / (1 + np.exp(-(hL @ Wo + bo)))
        loss = 0.5 * np.sum((o - y) ** 2)
        d = (o - y) * o * (1 - o)
        hgrad = d @ Wo.T
        Wo = Wo - lr * (hL.T @ d)
        bo = bo - lr * d.mean(axis=0, keepdims=True)
        if dni:
            delta = sg - hgrad
            Sw = Sw - lr * (hL.T @ delta)
            Sb = Sb - lr * delta.mean(axis=0, keepdims=True)
            for state, pred, target in boundary:
                delta = pred - target
                Tw = Tw - lr * (state.T @ delta)
                Tb = Tb - lr * delta.mean(axis=0, keepdims=True)
        else:
            backward(c0, c1, hgrad)
        print("loss %.17g" % loss)
    params = [("h.weight_ih", Wih), ("h.weight_hh", Whh), ("h.bias", b), ("out.weight", Wo), ("out.bias", bo)]
    if dni:
        params += [("h.sg.weight", Sw), ("h.sg.bias", Sb), ("h.state.sg.weight", Tw), ("h.state.sg.bias", Tb)]
    for name, v in params:
        print(name, " ".join("%.17g" % e for e in v.ravel()))


if __name__ == "__main__":
    main()
