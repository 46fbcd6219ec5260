"""The GEMM-bound workload (bench/gemm.dni) in numpy: a 60-W-W-W-30 chain (relu hidden layers,
sigmoid output, squared error), batch 256, plain backprop with the seeds' update rule
(W -= (in^T . delta) * lr, b -= mean_rows(delta) * lr), messages computed before the updates.
Data: 30-bit binary addition drawn by the seeds' generate_dataset from np.random.seed(1), then
each weight randn * 0.04 in chain order (biases start at zero and draw nothing), as dnic draws
them.  Batches are cycled in order (dnic's `steps` mode); the report is sum |out - y| over the
steps since the last report, in float64.  Vectorised numpy, in-place where it saves a copy;
the BLAS thread count comes from OPENBLAS_NUM_THREADS (bench/run states it).

usage: gemm_numpy.py [--width 1024] [--batch 256] [--examples 2048] [--steps 40]
                     [--report-every 10] [--dtype float32|float64]
"""
import argparse
import sys

import numpy as np

from common import cpu, generate_dataset, now, py2, result

ap = argparse.ArgumentParser()
ap.add_argument("--width", type=int, default=1024)
ap.add_argument("--batch", type=int, default=256)
ap.add_argument("--examples", type=int, default=2048)
ap.add_argument("--steps", type=int, default=40)
ap.add_argument("--report-every", type=int, default=10)
ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
ap.add_argument("--lr", type=float, default=0.0001)
args = ap.parse_args()
DT = np.dtype(args.dtype)

np.random.seed(1)
x, y = generate_dataset(output_dim=30, num_examples=args.examples)
x, y = x.astype(DT), y.astype(DT)
dims = [60, args.width, args.width, args.width, 30]
L = len(dims) - 1
W = [(np.random.randn(dims[i], dims[i + 1]) * 0.04).astype(DT) for i in range(L)]
b = [np.zeros(dims[i + 1], DT) for i in range(L)]

B, lr = args.batch, args.lr
nb = args.examples // B
xs = [x[i * B:(i + 1) * B] for i in range(nb)]
ys = [y[i * B:(i + 1) * B] for i in range(nb)]

err = 0.0
t0, c0 = now(), cpu()
for step in range(args.steps):
    h = [xs[step % nb]]
    for l in range(L):
        z = h[l] @ W[l]
        z += b[l]
        if l < L - 1:
            np.maximum(z, 0, out=z)
        else:
            z = 1 / (1 + np.exp(-z))
        h.append(z)
    out = h[L]
    e = out - ys[step % nb]
    err += np.abs(e).sum(dtype=np.float64)
    d = e * (out * (1 - out))
    for l in reversed(range(L)):
        m = d @ W[l].T if l > 0 else None      # the message uses this step's weights
        W[l] -= (h[l].T @ d) * lr
        b[l] -= d.mean(axis=0) * lr
        if l > 0:
            d = np.multiply(m, h[l] > 0, out=m)  # relu': 1 where the layer's output is > 0
    if (step + 1) % args.report_every == 0:
        sys.stdout.write("Iter:%d Loss:%s\n" % (step, py2(err)))
        err = 0.0
seconds, cpu_seconds = now() - t0, cpu() - c0
result(args.steps, seconds, cpu_seconds=cpu_seconds, impl="numpy", dtype=args.dtype)
