"""Fashion-MNIST, examples/fashion_backprop.dni (--mode backprop) and examples/fashion_dni.dni
(--mode dni) in PyTorch (CPU), the same computation as fashion_numpy.py (which describes it):
torch.no_grad() with every gradient explicit (DNI's updates are local, so autograd would only
add graph bookkeeping), torch.addmm for x.W + b, in-place relu, Tensor.index_select for the
shuffled batch, Adam written with in-place tensor ops in dnic's order (m and v as
torch.optim.Adam keeps them, the step p -= lr * ((m / c1) / (sqrt(v / c2) + eps))), and the
report sums kept as float64 tensors (read once per report, no per-step sync).  Data, shuffle
and initial weights are drawn with numpy exactly as dnic draws them (fashion_common.py), then
shared with torch (torch.from_numpy).  As in dnic, scoring the test set at a report is part of
the timed loop.

Thread count: --threads (torch.set_num_threads); bench/run sets the BLAS/OpenMP pools to the
same number through OMP_NUM_THREADS/OPENBLAS_NUM_THREADS.

usage: fashion_torch.py --mode backprop|dni [--epochs 1 | --steps N] [--report-every 1]
                        [--limit N] [--test-limit N] [--dtype float32|float64] [--threads 1]
"""
import argparse
import sys

import numpy as np
import torch

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
ap.add_argument("--threads", type=int, default=1)
ap.add_argument("--data-dir", default=fc.DATA_DIR)
args = ap.parse_args()
torch.set_num_threads(args.threads)
NPDT = np.dtype(args.dtype)
DT = {"float32": torch.float32, "float64": torch.float64}[args.dtype]

Xn, Yn = fc.load("train", args.limit, args.data_dir, NPDT)
TXn, TYn = fc.load("t10k", args.test_limit, args.data_dir, NPDT)
X, Y, TX, TY = (torch.from_numpy(a) for a in (Xn, Yn, TXn, TYn))
TY64 = TY.to(torch.float64)
T_LABEL = TY.argmax(1)
W1, W2, W3 = (torch.from_numpy(w) for w in fc.init_weights(fc.SEED, NPDT))

B = fc.BATCH
n = len(X)
per_epoch = n // B
total = args.steps if args.steps else args.epochs * per_epoch
period = args.report_every * (1 if args.steps else per_epoch)
DNI = args.mode == "dni"
# the optimiser's constants rounded to the dtype as dnic rounds them
B1, B2, OMB1, OMB2, LR, EPS = (float(NPDT.type(v)) for v in (fc.BETA1, fc.BETA2, 1 - fc.BETA1, 1 - fc.BETA2,
                                                              fc.LR, fc.EPS))


class Adam:
    """One parameter and its Adam state; step(g) updates it in place (g is overwritten)."""

    def __init__(self, p):
        self.p, self.m, self.v, self.t = p, torch.zeros_like(p), torch.zeros_like(p), 0
        self.tmp = torch.empty_like(p)

    def step(self, g):
        self.t += 1
        c1, c2 = float(NPDT.type(1 - fc.BETA1 ** self.t)), float(NPDT.type(1 - fc.BETA2 ** self.t))
        self.m.mul_(B1).add_(g, alpha=OMB1)
        self.v.mul_(B2).addcmul_(g, g, value=OMB2)
        den = torch.div(self.v, c2, out=self.tmp).sqrt_().add_(EPS)
        self.p.sub_(torch.div(self.m, c1, out=g).div_(den).mul_(LR))


def dense_update(opt_w, opt_b, h_in, d):
    """W -= Adam(h_in^T d) (the batch sum), b -= Adam(mean over rows of d)."""
    opt_w.step(h_in.t() @ d)
    opt_b.step(d.sum(0).div_(B))


b1, b2, b3 = (torch.zeros(k, dtype=DT) for k in fc.DIMS[1:])
oW1, oW2, oW3, ob1, ob2, ob3 = (Adam(p) for p in (W1, W2, W3, b1, b2, b3))
if DNI:  # linear SG modules on h1 and h2, zero-initialised
    U1, U2 = torch.zeros(256, 256, dtype=DT), torch.zeros(256, 256, dtype=DT)
    c1_, c2_ = torch.zeros(256, dtype=DT), torch.zeros(256, dtype=DT)
    oU1, oU2, oc1, oc2 = (Adam(p) for p in (U1, U2, c1_, c2_))


def loss_sum(p, y):
    """-sum(y log max(p, 1e-300)) in float64, as dnic's loss_sum (a 0-d tensor)."""
    return -(y.to(torch.float64) * p.to(torch.float64).clamp_min_(1e-300).log_()).sum()


def score():
    h = torch.addmm(b1, TX, W1).relu_()
    h = torch.addmm(b2, h, W2).relu_()
    p = torch.softmax(torch.addmm(b3, h, W3), 1)
    acc = (p.argmax(1) == T_LABEL).to(torch.float64).mean().item()
    return (-(TY64 * p.to(torch.float64).clamp_min_(1e-300).log_()).sum()).item() / len(TX), acc


err = torch.zeros((), dtype=torch.float64)
serr1 = torch.zeros((), dtype=torch.float64)
serr2 = torch.zeros((), dtype=torch.float64)
order, order_epoch = None, -1
t0, c0 = now(), cpu()
with torch.no_grad():
    for step in range(total):
        epoch, k = divmod(step, per_epoch)
        if epoch != order_epoch:
            order, order_epoch = torch.from_numpy(fc.epoch_order(epoch, n)), epoch
        rows = order[k * B:(k + 1) * B]
        x, y = X.index_select(0, rows), Y.index_select(0, rows)
        if not DNI:
            h1 = torch.addmm(b1, x, W1).relu_()
            h2 = torch.addmm(b2, h1, W2).relu_()
            p = torch.softmax(torch.addmm(b3, h2, W3), 1)
            err += loss_sum(p, y)
            d3 = p - y
            m2 = d3 @ W3.t()                    # messages use the forward pass's weights
            dense_update(oW3, ob3, h2, d3)
            d2 = m2.masked_fill_(h2 <= 0, 0)    # relu': 1 where the layer's output is > 0
            m1 = d2 @ W2.t()
            dense_update(oW2, ob2, h1, d2)
            d1 = m1.masked_fill_(h1 <= 0, 0)
            dense_update(oW1, ob1, x, d1)
        else:
            # stage h1: forward, synthetic gradient, update (no message)
            h1 = torch.addmm(b1, x, W1).relu_()
            g1 = torch.addmm(c1_, h1, U1)
            d1 = g1.masked_fill(h1 <= 0, 0)
            dense_update(oW1, ob1, x, d1)
            # stage h2: the same, and its message to h1 with the weights of its forward pass
            h2 = torch.addmm(b2, h1, W2).relu_()
            g2 = torch.addmm(c2_, h2, U2)
            d2 = g2.masked_fill(h2 <= 0, 0)
            m1 = d2 @ W2.t()
            dense_update(oW2, ob2, h1, d2)
            # output stage: the true gradient
            p = torch.softmax(torch.addmm(b3, h2, W3), 1)
            err += loss_sum(p, y)
            d3 = p - y
            m2 = d3 @ W3.t()
            dense_update(oW3, ob3, h2, d3)
            # the SG modules regress on the messages, the one nearest the loss first
            s2 = g2.sub_(m2)
            serr2 += s2.abs().sum(dtype=torch.float64)
            dense_update(oU2, oc2, h2, s2)
            s1 = g1.sub_(m1)
            serr1 += s1.abs().sum(dtype=torch.float64)
            dense_update(oU1, oc1, h1, s1)
        if (step + 1) % period == 0 or step + 1 == total:
            it = step if args.steps else epoch
            line = "Iter:%d Loss:%s" % (it, py2(err.item()))
            if DNI:
                line += " Synthetic Loss:%s [h1:%s h2:%s]" % (py2(serr2.item()), py2(serr1.item()), py2(serr2.item()))
            sys.stdout.write(line + fc.fmt_test(*score()) + "\n")
            err.zero_()
            serr1.zero_()
            serr2.zero_()
seconds, cpu_seconds = now() - t0, cpu() - c0
result(total, seconds, cpu_seconds=cpu_seconds, impl="torch", dtype=args.dtype, mode=args.mode,
       torch=torch.__version__, torch_threads=torch.get_num_threads())
