#!/usr/bin/python3
"""A float64 numpy reference of a tanh RNN or an LSTM trained with truncated BPTT and synthetic
gradients, written from docs/semantics.md ("Recurrent layers"), not from dnic's IR.

The model (tests/e2e/rnn.sh writes the matching .dni):
    rnn:  h_t = tanh(x_t W_ih + b + h_{t-1} W_hh), h_{-1} = 0, x_t = columns [t*w, (t+1)*w) of a row
    lstm: z_t = x_t W_ih + b + h_{t-1} W_hh = [i f g o], c_t = sig(f) c_{t-1} + sig(i) tanh(g),
          h_t = sig(o) tanh(c_t); the state at a boundary is [h | c]
    out = sigmoid(h_{T-1} W_o + b_o), loss 0.5 sum (out - y)^2
    sg h        predicts dL/dh_{T-1} from h_{T-1}   (DNI mode: the rnn's stage ends there)
    sg h.state  predicts the gradient at each truncation boundary from the state there

Usage: rnn_ref.py DATA.csv MODE STEPS UNROLL HIDDEN BATCH LR SEED NSTEPS [repeat|split] [rnn|lstm] [sgd|adam] [mlpK]
(repeat: every step reads the whole row, x_t = x; adam: beta1 0.9, beta2 0.999, eps 1e-8, one
optimiser state per parameter, one Adam step per update: a recurrent layer's weights take one
per chunk; mlpK: sg h.state is an mlp with one relu hidden layer of K units, which learns from
each boundary in turn, its message through the last unit before that unit's update)
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
    lstm = len(sys.argv) > 11 and sys.argv[11] == "lstm"
    adam = len(sys.argv) > 12 and sys.argv[12] == "adam"
    mlp = int(sys.argv[13][3:]) if len(sys.argv) > 13 else 0  # sg h.state: an mlp of one relu hidden layer
    moments = {}

    def step(name, p, g):
        """p after one update with gradient g (the batch sum; a bias's already the mean)."""
        if not adam:
            return p - lr * g
        m, v, t = moments.get(name, (np.zeros_like(p), np.zeros_like(p), 0))
        t += 1
        m = 0.9 * m + (1 - 0.9) * g
        v = 0.999 * v + (1 - 0.999) * (g * g)
        moments[name] = (m, v, t)
        return p - lr * ((m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-8))
    G = 4 * H if lstm else H      # the gates' width
    S = 2 * H if lstm else H      # the carried state's
    w = X.shape[1] if repeat else X.shape[1] // steps
    dni = mode == "dni"

    rs = np.random.RandomState(seed)  # construction order: h's parameters, its SG modules, out's
    Wih = rs.randn(w, G) * 0.3
    Whh = rs.randn(H, G) * 0.3
    b = rs.randn(1, G) * 0.1
    if dni:
        Sw = rs.randn(H, H) * 0.1      # sg h
        Sb = rs.randn(1, H) * 0.1
        if mlp:                        # sg h.state, unit by unit: S -> mlp (relu) -> S
            Uw = rs.randn(S, mlp) * 0.1
            Ub = rs.randn(1, mlp) * 0.1
        Tw = rs.randn(mlp or S, S) * 0.1  # sg h.state (its last unit)
        Tb = rs.randn(1, S) * 0.1
    Wo = rs.randn(H, 1) * 0.3
    bo = rs.randn(1, 1) * 0.1

    per_epoch = X.shape[0] // B
    chunks = [(c0, min(c0 + unroll, steps)) for c0 in range(0, steps, unroll)]
    for k in range(nsteps):
        r = k % per_epoch * B
        x, y = X[r:r + B], Y[r:r + B]
        xs = [x if repeat else x[:, t * w:(t + 1) * w] for t in range(steps)]
        hs, cs, gates = {}, {}, {}
        sig = lambda v: 1 / (1 + np.exp(-v))

        def forward(c0, c1):
            for t in range(c0, c1):
                z = xs[t] @ Wih + b
                if t > 0:
                    z = z + hs[t - 1] @ Whh
                if not lstm:
                    hs[t] = np.tanh(z)
                    continue
                i, f, g, o = sig(z[:, :H]), sig(z[:, H:2 * H]), np.tanh(z[:, 2 * H:3 * H]), sig(z[:, 3 * H:])
                cs[t] = (f * cs[t - 1] if t > 0 else 0) + i * g
                hs[t] = o * np.tanh(cs[t])
                gates[t] = (i, f, g, o)

        def state(t):
            return np.concatenate([hs[t], cs[t]], axis=1) if lstm else hs[t]

        def backward(c0, c1, g):
            """BPTT through steps c1-1..c0 from g = dL/d(state after c1-1) (the h part alone for
            the last chunk); the chunk's summed gradient updates the weights; returns the
            gradient w.r.t. the state after c0-1 (with the weights before the update)."""
            nonlocal Wih, Whh, b
            gih, ghh, gb = np.zeros_like(Wih), np.zeros_like(Whh), np.zeros_like(b)
            used_hh = False
            gh, gc = (g[:, :H], g[:, H:]) if lstm and g.shape[1] == 2 * H else (g, None)
            for t in range(c1 - 1, c0 - 1, -1):
                if lstm:
                    i, f, gg, o = gates[t]
                    tc = np.tanh(cs[t])
                    dc = gh * o * (1 - tc ** 2) + (gc if gc is not None else 0)
                    dzf = dc * cs[t - 1] * f * (1 - f) if t > 0 else np.zeros_like(dc)
                    dz = np.concatenate([dc * gg * i * (1 - i), dzf, dc * i * (1 - gg ** 2),
                                         gh * tc * o * (1 - o)], axis=1)
                    gc = dc * f
                else:
                    dz = gh * (1 - hs[t] ** 2)
                gih += xs[t].T @ dz
                gb += dz.sum(axis=0, keepdims=True)
                if t > 0:
                    ghh += hs[t - 1].T @ dz
                    used_hh = True
                gh = dz @ Whh.T
            Wih = step("wih", Wih, gih)
            if used_hh:
                Whh = step("whh", Whh, ghh)
            b = step("b", b, gb / B)
            return np.concatenate([gh, gc], axis=1) if lstm else gh

        boundary = []  # per boundary: (state, the mlp's hidden units, prediction, target)
        for c0, c1 in chunks[:-1]:
            forward(c0, c1)
            if dni:
                hid = np.maximum(state(c1 - 1) @ Uw + Ub, 0) if mlp else None
                pred = (hid if mlp else state(c1 - 1)) @ Tw + Tb
                prev = backward(c0, c1, pred)
                if boundary:
                    boundary[-1][3] = prev
                boundary.append([state(c1 - 1), hid, pred, None])
        c0, c1 = chunks[-1]
        forward(c0, c1)
        hL = hs[steps - 1]
        if dni:
            sg = hL @ Sw + Sb
            prev = backward(c0, c1, sg)
            if boundary:
                boundary[-1][3] = prev
        o = 1 / (1 + np.exp(-(hL @ Wo + bo)))
        loss = 0.5 * np.sum((o - y) ** 2)
        d = (o - y) * o * (1 - o)
        hgrad = d @ Wo.T
        Wo = step("wo", Wo, hL.T @ d)
        bo = step("bo", bo, d.mean(axis=0, keepdims=True))
        if dni:
            delta = sg - hgrad
            Sw = step("sw", Sw, hL.T @ delta)
            Sb = step("sb", Sb, delta.mean(axis=0, keepdims=True))
            for state, hid, pred, target in boundary:  # in order, each learning after the last
                delta = pred - target
                if mlp:
                    dh = (delta @ Tw.T) * (hid > 0)   # the message before the unit's update
                    Tw = step("tw", Tw, hid.T @ delta)
                    Tb = step("tb", Tb, delta.mean(axis=0, keepdims=True))
                    Uw = step("uw", Uw, state.T @ dh)
                    Ub = step("ub", Ub, dh.mean(axis=0, keepdims=True))
                    continue
                Tw = step("tw", Tw, state.T @ delta)
                Tb = step("tb", Tb, delta.mean(axis=0, keepdims=True))
        else:
            backward(c0, c1, hgrad)
        print("loss %.17g" % loss)
    params = [("h.weight_ih", Wih), ("h.weight_hh", Whh), ("h.bias", b), ("out.weight", Wo), ("out.bias", bo)]
    if dni:
        params += [("h.sg.weight", Sw), ("h.sg.bias", Sb)]
        if mlp:
            params += [("h.state.sg.0.weight", Uw), ("h.state.sg.0.bias", Ub), ("h.state.sg.1.weight", Tw),
                       ("h.state.sg.1.bias", Tb)]
        else:
            params += [("h.state.sg.weight", Tw), ("h.state.sg.bias", Tb)]
    for name, v in params:
        print(name, " ".join("%.17g" % e for e in v.ravel()))


if __name__ == "__main__":
    main()
