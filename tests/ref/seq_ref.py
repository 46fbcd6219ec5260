#!/usr/bin/python3
"""A float64 numpy reference of a recurrent layer with per-step outputs trained by truncated BPTT,
chunk by chunk, with or without synthetic gradients at the truncation boundaries; written from
docs/semantics.md ("Recurrent layers", "Per-step outputs") and docs/language.md ("data copy"),
not from dnic's IR.

The model (tests/e2e/seqout.sh writes the matching .dni):
    data: the Copy task, `examples` sequences of 2L+1 steps of bits+1 inputs; the labels are the
          L vectors, for the last L steps
    rnn:  h_t = tanh(x_t W_ih + b + h_{t-1} W_hh), h_{-1} = 0;  lstm as in rnn_ref.py
    out_t = sigmoid(h_t W_o + b_o) for the last L steps, loss: sigmoid cross-entropy summed
    sg h.state (dni) predicts the gradient at each truncation boundary from the state there
Each chunk in turn: its forward steps; the outputs of its labelled steps, their loss, W_o and
b_o's update from those steps, the messages to h (with W_o before its update); then BPTT through
the chunk from those messages and (before the last chunk) the SG prediction at its end, and the
layer's update.  After the step, the SG module learns from its boundaries in order.

Usage: seq_ref.py MODE KIND BITS LENGTH EXAMPLES DATA_SEED HIDDEN BATCH UNROLL LR SEED NSTEPS [SCALE [OPT [SCHEDULE]]]
(SCALE: sg h.state's `scale`, 1 by default: the chunk receives SCALE times the prediction, the
module regresses the prediction itself.  OPT: sgd (the default) or adam, docs/semantics.md
"Optimisers": every update of a parameter is one Adam step of its own.  SCHEDULE: a curriculum,
docs/semantics.md "Curriculum", as L1:N1,L2:N2,...: N1 steps at length L1, then N2 at L2 on the
data drawn afresh for L2 (the same DATA_SEED) from its first example, the parameters and Adam's
state carried on; it replaces LENGTH and NSTEPS.)
Prints one line per training step, its loss, then the final weights as NAME VALUES.
"""
import sys

import numpy as np


def main():
    mode, kind = sys.argv[1], sys.argv[2]
    bits, L, examples, data_seed, H, B, unroll = (int(v) for v in sys.argv[3:10])
    lr, seed, nsteps = float(sys.argv[10]), int(sys.argv[11]), int(sys.argv[12])
    scale = float(sys.argv[13]) if len(sys.argv) > 13 else 1.0
    opt = sys.argv[14] if len(sys.argv) > 14 else "sgd"
    schedule = [(L, nsteps)]
    if len(sys.argv) > 15:
        schedule = [tuple(int(v) for v in part.split(":")) for part in sys.argv[15].split(",")]
    lstm, dni = kind == "lstm", mode == "dni"
    I, O = bits + 1, bits
    adam = {}  # per parameter: m, v, t

    def upd(name, P, grad, div=1):
        """P after one update from its gradient grad / div (what plain SGD multiplies by lr)."""
        if opt == "sgd":
            return P - lr * grad / div
        grad = grad / div
        m, v, t = adam.get(name, (np.zeros_like(P), np.zeros_like(P), 0))
        m = 0.9 * m + (1 - 0.9) * grad
        v = 0.999 * v + (1 - 0.999) * grad * grad
        t += 1
        adam[name] = (m, v, t)
        return P - lr * (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-8)

    G = 4 * H if lstm else H
    SW = 2 * H if lstm else H
    rs = np.random.RandomState(seed)  # construction order: h, its SG module, out
    Wih = rs.randn(I, G) * 0.3
    Whh = rs.randn(H, G) * 0.3
    b = rs.randn(1, G) * 0.1
    Tw = Tb = None
    if dni:
        Tw = rs.randn(SW, SW) * 0.1
        Tb = rs.randn(1, SW) * 0.1
    Wo = rs.randn(H, O) * 0.3
    bo = rs.randn(1, O) * 0.1
    sig = lambda z: 1 / (1 + np.exp(-z))

    def train(S, N, X, Y, first, chunks, nsteps):
        nonlocal Wih, Whh, b, Wo, bo, Tw, Tb
        for k in range(nsteps):
            r = k % (examples // B) * B
            xs, y = [X[r:r + B, t] for t in range(S)], Y[r:r + B]
            hs, cs, gates = {}, {}, {}

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

            def backward(c0, c1, g_end, gout):
                """BPTT through steps c1-1..c0 from g_end (w.r.t. the state after c1-1, or None) and
                gout[t] (w.r.t. h_t, for labelled steps); the chunk's summed gradient updates the
                layer; returns the gradient w.r.t. the state after c0-1 (weights before the update)."""
                nonlocal Wih, Whh, b
                gih, ghh, gb = np.zeros_like(Wih), np.zeros_like(Whh), np.zeros_like(b)
                used_hh = False
                gh, gc = None, None
                if g_end is not None:
                    gh, gc = (g_end[:, :H], g_end[:, H:]) if lstm else (g_end, None)
                for t in range(c1 - 1, c0 - 1, -1):
                    if t in gout:
                        gh = gout[t] if gh is None else gh + gout[t]
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
                Wih = upd("h.weight_ih", Wih, gih)
                if used_hh:
                    Whh = upd("h.weight_hh", Whh, ghh)
                b = upd("h.bias", b, gb, B)
                return np.concatenate([gh, gc], axis=1) if lstm else gh

            loss = 0.0
            boundary = []  # per boundary: [state, prediction, target]
            for ci, (c0, c1) in enumerate(chunks):
                last = ci == len(chunks) - 1
                forward(c0, c1)
                gout, deltas = {}, {}
                for t in range(max(c0, first), c1):
                    o, yt = sig(hs[t] @ Wo + bo), y[:, t - first]
                    loss -= np.sum(yt * np.log(o) + (1 - yt) * np.log(1 - o))
                    deltas[t] = o - yt
                    gout[t] = deltas[t] @ Wo.T
                if deltas:
                    Wo = upd("out.weight", Wo, sum(hs[t].T @ d for t, d in deltas.items()))
                    bo = upd("out.bias", bo, sum(d.sum(axis=0, keepdims=True) for d in deltas.values()), B)
                pred = state(c1 - 1) @ Tw + Tb if dni and not last else None
                if gout or pred is not None:
                    prev = backward(c0, c1, None if pred is None else scale * pred, gout)
                    if boundary:
                        boundary[-1][2] = prev
                if pred is not None:
                    boundary.append([state(c1 - 1), pred, None])
            for st, pred, target in boundary:
                delta = pred - target
                Tw = upd("h.state.sg.weight", Tw, st.T @ delta)
                Tb = upd("h.state.sg.bias", Tb, delta.mean(axis=0, keepdims=True))
            print("loss %.17g" % loss)

    for L, nsteps in schedule:  # each length's data drawn afresh, read from its first example
        rd = np.random.RandomState(data_seed)
        S, N = 2 * L + 1, L
        X, Y = np.zeros((examples, S, I)), np.zeros((examples, N, O))
        for e in range(examples):
            v = (rd.rand(L, bits) < 0.5).astype(float)
            X[e, :L, :bits] = v
            X[e, L, bits] = 1
            Y[e] = v
        first = S - N
        chunks = [(c0, min(c0 + unroll, S)) for c0 in range(0, S, unroll)]
        train(S, N, X, Y, first, chunks, nsteps)
    params = [("h.weight_ih", Wih), ("h.weight_hh", Whh), ("h.bias", b), ("out.weight", Wo), ("out.bias", bo)]
    if dni:
        params += [("h.state.sg.weight", Tw), ("h.state.sg.bias", Tb)]
    for name, v in params:
        print(name, " ".join("%.17g" % e for e in v.ravel()))


if __name__ == "__main__":
    main()
