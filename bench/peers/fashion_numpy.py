"""Fashion-MNIST, examples/fashion_backprop.dni (--mode backprop) and examples/fashion_dni.dni
(--mode dni) in numpy, written as a numpy user writes it: whole-batch matrix products through
BLAS, in-place elementwise updates, no Python loop below the batch.  The same computation as
dnic (docs/semantics.md):

- data, dnic's seeded shuffle and dnic's initial weights: fashion_common.py (drawn here with
  numpy, not read from dnic's files; `--verify-init`/`--verify-data` compare them bit for bit
  with what `dnic --save-init` and `dnic --export-data` wrote);
- 784-256-256-10 relu/relu/softmax, batch 128, softmax cross-entropy (error p - y at the output);
  weight gradients are batch sums (h^T delta), bias gradients batch means; Adam as dnic applies
  it: m = b1 m + (1 - b1) g, v = b2 v + (1 - b2) g^2, p -= lr * ((m / c1) / (sqrt(v / c2) + eps))
  with c = 1 - beta^t computed in float64 and rounded;
- backprop: forward, loss, then from the output down, each message computed with the weights
  of the forward pass, then that layer's update;
- dni (lag 0, dnic's sequential schedule): per stage in order (h1, h2, out), forward, the
  synthetic gradient of a zero-initialised linear SG module on the stage's output, backprop and
  update within the stage, the message to the stage below; then the SG modules, h2's then h1's,
  regress on the messages (delta = prediction - message) with Adam and the same lr.
- report: per reported period, the loss sum -sum(y log max(p, 1e-300)) in float64 (and in dni
  mode the synthetic losses sum |delta_SG|), then the test set scored with the current weights
  (mean loss per example, accuracy), in dnic's report-line format.  As in dnic, scoring the test
  set at a report is part of the timed loop; loading the data and drawing the weights are not.

float32 throughout (`--dtype float64` also works).  The BLAS thread count comes from
OPENBLAS_NUM_THREADS (bench/run states it).

usage: fashion_numpy.py --mode backprop|dni [--epochs 1 | --steps N] [--report-every 1]
                        [--limit N] [--test-limit N] [--dtype float32|float64]
                        [--verify-init dnic_init.safetensors] [--verify-data dnic_data.safetensors]
"""
import argparse
import sys

import numpy as np

import fashion_common as fc
from common import cpu, now, py2, result

ap = argparse.ArgumentParser()
ap.add_argument("--mode", required=True, choices=["backprop", "dni"])
ap.add_argument("--epochs", type=int, default=1)
ap.add_argument("--steps", type=int, default=0, help="train this many steps instead of --epochs epochs")
ap.add_argument("--report-every", type=int, default=1, help="epochs (or steps with --steps) per report line")
ap.add_argument("--limit", type=int, default=0, help="the first N training examples (dnic's data.limit)")
ap.add_argument("--test-limit", type=int, default=0, help="the first N test examples (data.test_limit)")
ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
ap.add_argument("--data-dir", default=fc.DATA_DIR)
ap.add_argument("--verify-init", help="dnic --save-init file to compare the initial weights with")
ap.add_argument("--verify-data", help="dnic --export-data file to compare the training data with")
args = ap.parse_args()
DT = np.dtype(args.dtype)

X, Y = fc.load("train", args.limit, args.data_dir, DT)
TX, TY = fc.load("t10k", args.test_limit, args.data_dir, DT)
W = fc.init_weights(fc.SEED, DT)
if args.verify_init or args.verify_data:
    sys.exit(0 if fc.verify(args.verify_init, args.verify_data, X, Y, W) else 1)

B = fc.BATCH
n = len(X)
per_epoch = n // B
total = args.steps if args.steps else args.epochs * per_epoch
period = args.report_every * (1 if args.steps else per_epoch)  # steps per report line
DNI = args.mode == "dni"

# optimiser constants as dnic rounds them: the double's value rounded to the dtype
B1, B2, OMB1, OMB2 = DT.type(fc.BETA1), DT.type(fc.BETA2), DT.type(1 - fc.BETA1), DT.type(1 - fc.BETA2)
LR, EPS, INV = DT.type(fc.LR), DT.type(fc.EPS), DT.type(B)


class Adam:
    """One parameter and its Adam state; step(g) updates it in place (g is overwritten)."""

    def __init__(self, p):
        self.p, self.m, self.v, self.t = p, np.zeros_like(p), np.zeros_like(p), 0
        self.tmp = np.empty_like(p)

    def step(self, g):
        self.t += 1
        c1, c2 = DT.type(1 - fc.BETA1 ** self.t), DT.type(1 - fc.BETA2 ** self.t)
        m, v, tmp = self.m, self.v, self.tmp
        m *= B1
        np.multiply(g, OMB1, out=tmp)
        m += tmp
        np.multiply(g, g, out=tmp)
        tmp *= OMB2
        v *= B2
        v += tmp
        np.divide(v, c2, out=tmp)
        np.sqrt(tmp, out=tmp)
        tmp += EPS
        np.divide(m, c1, out=g)
        g /= tmp
        g *= LR
        self.p -= g


def dense_update(opt_w, opt_b, h_in, d):
    """W -= Adam(h_in^T d) (the batch sum), b -= Adam(mean over rows of d)."""
    opt_w.step(h_in.T @ d)
    opt_b.step(d.sum(axis=0) / INV)


W1, W2, W3 = W
b1, b2, b3 = (np.zeros(k, DT) for k in fc.DIMS[1:])
oW1, oW2, oW3, ob1, ob2, ob3 = (Adam(p) for p in (W1, W2, W3, b1, b2, b3))
if DNI:  # linear SG modules on h1 and h2, zero-initialised (they draw nothing)
    U1, U2 = np.zeros((256, 256), DT), np.zeros((256, 256), DT)
    c1_, c2_ = np.zeros(256, DT), np.zeros(256, DT)
    oU1, oU2, oc1, oc2 = (Adam(p) for p in (U1, U2, c1_, c2_))


def softmax(z):
    z -= z.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z


def loss_sum(p, y):
    """-sum(y log max(p, 1e-300)) in float64, as dnic's loss_sum."""
    q = p.astype(np.float64)
    np.maximum(q, 1e-300, out=q)
    np.log(q, out=q)
    return -float((y * q).sum())


def score():
    """The test set through the current weights: mean loss per example and accuracy."""
    h = np.maximum(TX @ W1 + b1, 0)
    h = np.maximum(h @ W2 + b2, 0)
    p = softmax(h @ W3 + b3)
    acc = float(np.mean(p.argmax(axis=1) == TY.argmax(axis=1)))
    return loss_sum(p, TY) / len(TX), acc


err = serr1 = serr2 = 0.0
order, order_epoch = None, -1
t0, c0 = now(), cpu()
for step in range(total):
    epoch, k = divmod(step, per_epoch)
    if epoch != order_epoch:
        order, order_epoch = fc.epoch_order(epoch, n), epoch
    rows = order[k * B:(k + 1) * B]
    x, y = X[rows], Y[rows]
    if not DNI:
        h1 = x @ W1
        h1 += b1
        np.maximum(h1, 0, out=h1)
        h2 = h1 @ W2
        h2 += b2
        np.maximum(h2, 0, out=h2)
        z = h2 @ W3
        z += b3
        p = softmax(z)
        err += loss_sum(p, y)
        d3 = p - y
        m2 = d3 @ W3.T                       # messages use the forward pass's weights
        dense_update(oW3, ob3, h2, d3)
        d2 = np.multiply(m2, h2 > 0, out=m2)  # relu': 1 where the layer's output is > 0
        m1 = d2 @ W2.T
        dense_update(oW2, ob2, h1, d2)
        d1 = np.multiply(m1, h1 > 0, out=m1)
        dense_update(oW1, ob1, x, d1)
    else:
        # stage h1: forward, synthetic gradient, update (no message: nothing reads dL/dx)
        h1 = x @ W1
        h1 += b1
        np.maximum(h1, 0, out=h1)
        g1 = h1 @ U1
        g1 += c1_
        d1 = g1 * (h1 > 0)
        dense_update(oW1, ob1, x, d1)
        # stage h2: the same, and its message to h1 with the weights of its forward pass
        h2 = h1 @ W2
        h2 += b2
        np.maximum(h2, 0, out=h2)
        g2 = h2 @ U2
        g2 += c2_
        d2 = g2 * (h2 > 0)
        m1 = d2 @ W2.T
        dense_update(oW2, ob2, h1, d2)
        # output stage: the true gradient
        z = h2 @ W3
        z += b3
        p = softmax(z)
        err += loss_sum(p, y)
        d3 = p - y
        m2 = d3 @ W3.T
        dense_update(oW3, ob3, h2, d3)
        # the SG modules regress on the messages, the one nearest the loss first
        s2 = np.subtract(g2, m2, out=g2)
        serr2 += float(np.abs(s2).sum(dtype=np.float64))
        dense_update(oU2, oc2, h2, s2)
        s1 = np.subtract(g1, m1, out=g1)
        serr1 += float(np.abs(s1).sum(dtype=np.float64))
        dense_update(oU1, oc1, h1, s1)
    if (step + 1) % period == 0 or step + 1 == total:
        it = step if args.steps else epoch
        line = "Iter:%d Loss:%s" % (it, py2(err))
        if DNI:
            line += " Synthetic Loss:%s [h1:%s h2:%s]" % (py2(serr2), py2(serr1), py2(serr2))
        sys.stdout.write(line + fc.fmt_test(*score()) + "\n")
        err = serr1 = serr2 = 0.0
seconds, cpu_seconds = now() - t0, cpu() - c0
result(total, seconds, cpu_seconds=cpu_seconds, impl="numpy", dtype=args.dtype, mode=args.mode)
