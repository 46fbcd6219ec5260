"""Seed 001's DNI run in PyTorch (CPU), written as a PyTorch user would write manual DNI updates:
no autograd (torch.no_grad, every gradient is explicit as in the seed), fused BLAS calls
(torch.addmm for x.W + b, Tensor.addmm_ for the in-place SGD step), in-place bias updates, and
the report sums kept as float64 tensors (read once per report, no per-step sync).  Data and
initial weights are the seed's (numpy's RandomState stream, then rounded to the dtype), so the
losses are comparable with dnic's.  Thread count: --threads (torch.set_num_threads; the BLAS
pool is set to the same number by bench/run through OMP_NUM_THREADS/OPENBLAS_NUM_THREADS).

usage: seed_dni_torch.py [--dtype float32|float64] [--epochs 10000] [--report-every 1000] [--threads 1]
"""
import argparse
import sys

import numpy as np
import torch

from common import cpu, generate_dataset, now, py2, result

ap = argparse.ArgumentParser()
ap.add_argument("--dtype", default="float32", choices=["float64", "float32"])
ap.add_argument("--epochs", type=int, default=10000)
ap.add_argument("--report-every", type=int, default=1000)
ap.add_argument("--threads", type=int, default=1)
args = ap.parse_args()
torch.set_num_threads(args.threads)
DT = {"float32": torch.float32, "float64": torch.float64}[args.dtype]

np.random.seed(1)
x, y = generate_dataset(num_examples=100, output_dim=8)


def param(*shape, scale=2.0, shift=-1.0):
    return torch.from_numpy(np.random.randn(*shape) * scale + shift).to(DT)


# draw order as the seed: per layer W, b, SG W, SG b (the SG draws are scaled by zero)
dims = [16, 64, 32, 8]
W, b, U, c = [], [], [], []
for i in range(3):
    W.append(param(dims[i], dims[i + 1]))
    b.append(param(dims[i + 1]))
    U.append(param(dims[i + 1], dims[i + 1], scale=0.0, shift=0.0))
    c.append(param(dims[i + 1], scale=0.0, shift=0.0))
W1, W2, W3 = W
b1, b2, b3 = b
U1, U2 = U[0], U[1]
c1, c2 = c[0], c[1]

B, lr = 10, 0.01
xs = [torch.from_numpy(x[i:i + B]).to(DT) for i in range(0, 100, B)]
ys = [torch.from_numpy(y[i:i + B]).to(DT) for i in range(0, 100, B)]
err = torch.zeros((), dtype=torch.float64)
serr = torch.zeros((), dtype=torch.float64)

t0, c0 = now(), cpu()
with torch.no_grad():
    for it in range(args.epochs):
        err.zero_()
        serr.zero_()
        for xb, yb in zip(xs, ys):
            # layer 1: forward, synthetic gradient, update (no message: nothing reads dL/dx)
            h1 = torch.sigmoid(torch.addmm(b1, xb, W1))
            g1 = torch.addmm(c1, h1, U1)
            d1 = g1 * (h1 * (1 - h1))
            W1.addmm_(xb.t(), d1, alpha=-lr)
            b1.sub_(d1.mean(0), alpha=lr)
            # layer 2: the same, then its message to layer 1 with the updated weights (as the seed)
            h2 = torch.sigmoid(torch.addmm(b2, h1, W2))
            g2 = torch.addmm(c2, h2, U2)
            d2 = g2 * (h2 * (1 - h2))
            W2.addmm_(h1.t(), d2, alpha=-lr)
            b2.sub_(d2.mean(0), alpha=lr)
            m1 = d2 @ W2.t()
            # output layer: the true gradient
            h3 = torch.sigmoid(torch.addmm(b3, h2, W3))
            e = h3 - yb
            d3 = e * (h3 * (1 - h3))
            W3.addmm_(h2.t(), d3, alpha=-lr)
            b3.sub_(d3.mean(0), alpha=lr)
            m2 = d3 @ W3.t()
            # SG modules regress on the messages
            s2 = g2 - m2
            U2.addmm_(h2.t(), s2, alpha=-lr)
            c2.sub_(s2.mean(0), alpha=lr)
            s1 = g1 - m1
            U1.addmm_(h1.t(), s1, alpha=-lr)
            c1.sub_(s1.mean(0), alpha=lr)
            err += e.abs().sum(dtype=torch.float64)
            serr += s2.abs().sum(dtype=torch.float64)
        if it % args.report_every == args.report_every - 1:
            sys.stdout.write("Iter:%d Loss:%s Synthetic Loss:%s\n" % (it, py2(err.item()), py2(serr.item())))
seconds, cpu_seconds = now() - t0, cpu() - c0
result(args.epochs * 10, seconds, cpu_seconds=cpu_seconds, impl="torch", dtype=args.dtype, torch=torch.__version__,
       torch_threads=torch.get_num_threads())
