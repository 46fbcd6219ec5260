#!/usr/bin/python3
"""A float64 numpy reference of DNI training with true and mixed SG targets (target = true and
target = mix past later SG modules), written from docs/semantics.md ("One DNI step, in order" and
"Targets"), not from dnic's IR.

The model (tests/e2e/sgtarget.sh writes the matching .dni): a chain of sigmoid layers
    h1 = sig(x W1 + b1), h2 = sig(h1 W2 + b2), h3 = sig(h2 W3 + b3), out = sig(h3 Wo + bo)
with a linear SG module on h1, h2 and h3 (input = output), loss 0.5 sum (out - y)^2, plain SGD,
backward_message = before_update, lag 0.  Each stage's messages use its weights from before
its update; the true gradient at h_k backpropagates the loss's gradient through the layers
after h_k with the weights their forward pass used (the same ones), updating nothing.

Usage: sgtarget_ref.py DATA.csv HIDDEN BATCH LR SEED NSTEPS T1 T2 T3 [probe]
  Tk: the target of sg hk: bootstrap, true, or a number lambda (target = mix)
Prints one line per training step, `loss L` (the batch's loss sum), then the final weights as
NAME VALUES.  With `probe`: also what --probe reports after the last step (docs/semantics.md,
"Probes"): at the gate after it, the layers have taken the step and the SG modules not yet
learnt from it; on the first BATCH rows, with the weights as they are, per module
`probe hK COS NORM BOOT TRUE` (cosine and norm ratio of the prediction and the true gradient,
sum |prediction - bootstrapped target|, sum |prediction - true gradient|).
"""
import sys

import numpy as np


def sig(z):
    return 1 / (1 + np.exp(-z))


def main():
    path = sys.argv[1]
    H, B = int(sys.argv[2]), int(sys.argv[3])
    lr, seed, nsteps = float(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
    targets = sys.argv[7:10]
    probe = len(sys.argv) > 10 and sys.argv[10] == "probe"
    probes = []
    data = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float64, ndmin=2)
    X, Y = data[:, :-1], data[:, -1:]
    n_in = X.shape[1]

    rs = np.random.RandomState(seed)  # construction order: each layer, then its SG module
    P = {}
    widths = [n_in, H, H, H]
    for k in range(1, 4):
        P["h%d.weight" % k] = rs.randn(widths[k - 1], H) * 0.3
        P["h%d.bias" % k] = rs.randn(1, H) * 0.1
        P["h%d.sg.weight" % k] = rs.randn(H, H) * 0.1
        P["h%d.sg.bias" % k] = rs.randn(1, H) * 0.1
    P["out.weight"] = rs.randn(H, 1) * 0.3
    P["out.bias"] = rs.randn(1, 1) * 0.1

    per_epoch = X.shape[0] // B
    for t in range(nsteps):
        i = (t % per_epoch) * B
        x, y = X[i:i + B], Y[i:i + B]
        h, pred, used, msg = {0: x}, {}, {}, {}
        # stages 1..3: forward, the synthetic gradient, its own update, the message down
        for k in range(1, 4):
            W, b = P["h%d.weight" % k], P["h%d.bias" % k]
            h[k] = sig(h[k - 1] @ W + b)
            pred[k] = h[k] @ P["h%d.sg.weight" % k] + P["h%d.sg.bias" % k]
            d = pred[k] * (h[k] * (1 - h[k]))
            used[k] = W.copy()
            if k > 1:
                msg[k - 1] = d @ W.T
            P["h%d.weight" % k] = W - lr * (h[k - 1].T @ d)
            P["h%d.bias" % k] = b - lr * np.mean(d, axis=0, keepdims=True)
        # the last stage: the loss
        Wo, bo = P["out.weight"], P["out.bias"]
        out = sig(h[3] @ Wo + bo)
        err = out - y
        print("loss %.17g" % (0.5 * np.sum(err * err)))
        do = err * (out * (1 - out))
        msg[3] = do @ Wo.T
        P["out.weight"] = Wo - lr * (h[3].T @ do)
        P["out.bias"] = bo - lr * np.mean(do, axis=0, keepdims=True)
        # true gradients: from the loss back through h3, h2 with their forward's weights
        true = {3: msg[3]}
        for k in (2, 1):
            true[k] = (true[k + 1] * (h[k + 1] * (1 - h[k + 1]))) @ used[k + 1].T
        if probe and t == nsteps - 1:
            probes = measure(P, X[:B], Y[:B])
        # the SG modules learn, nearest the loss first
        for k in (3, 2, 1):
            tk = targets[k - 1]
            if tk == "bootstrap":
                target = msg[k]
            elif tk == "true":
                target = true[k]
            else:
                lam = float(tk)
                target = true[k] * lam + msg[k] * (1 - lam)
            delta = pred[k] - target
            P["h%d.sg.weight" % k] = P["h%d.sg.weight" % k] - lr * (h[k].T @ delta)
            P["h%d.sg.bias" % k] = P["h%d.sg.bias" % k] - lr * np.mean(delta, axis=0, keepdims=True)
    for name, v in P.items():
        print(name, " ".join("%.17g" % e for e in v.ravel()))
    for line in probes:
        print(line)


def measure(P, x, y):
    """The probe on batch (x, y): forward, predictions, then the true gradient and the
    bootstrapped target at each hk, by plain backpropagation with the weights as they are."""
    h = {0: x}
    for k in range(1, 4):
        h[k] = sig(h[k - 1] @ P["h%d.weight" % k] + P["h%d.bias" % k])
    out = sig(h[3] @ P["out.weight"] + P["out.bias"])
    pred = {k: h[k] @ P["h%d.sg.weight" % k] + P["h%d.sg.bias" % k] for k in range(1, 4)}
    top = ((out - y) * (out * (1 - out))) @ P["out.weight"].T
    true, boot = {3: top}, {3: top}
    for k in (2, 1):
        W = P["h%d.weight" % (k + 1)]
        true[k] = (true[k + 1] * (h[k + 1] * (1 - h[k + 1]))) @ W.T
        boot[k] = (pred[k + 1] * (h[k + 1] * (1 - h[k + 1]))) @ W.T
    lines = []
    for k in (1, 2, 3):
        g, tr = pred[k].ravel(), true[k].ravel()
        cos = np.dot(g, tr) / (np.sqrt(np.dot(g, g)) * np.sqrt(np.dot(tr, tr)))
        norm = np.sqrt(np.dot(g, g)) / np.sqrt(np.dot(tr, tr))
        lines.append("probe h%d %.17g %.17g %.17g %.17g" % (k, cos, norm, np.sum(np.abs(pred[k] - boot[k])),
                                                           np.sum(np.abs(pred[k] - true[k]))))
    return lines


if __name__ == "__main__":
    main()
