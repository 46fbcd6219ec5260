"""The GEMM-bound workload (bench/gemm.dni) in PyTorch (CPU), the same computation as
gemm_numpy.py: torch.no_grad with explicit backprop, torch.addmm for x.W + b, Tensor.addmm_
for the in-place SGD step, in-place relu and relu'.  Same data and initial weights (numpy's
stream).  Thread count: --threads (torch.set_num_threads); bench/run sets the BLAS pool to the
same number.

usage: gemm_torch.py [--width 1024] [--batch 256] [--examples 2048] [--steps 40]
                     [--report-every 10] [--dtype float32|float64] [--threads 1]
"""
import argparse
import sys

import numpy as np
import torch

from common import cpu, generate_dataset, now, py2, result

ap = argparse.ArgumentParser()
ap.add_argument("--width", type=int, default=1024)
ap.add_argument("--batch", type=int, default=256)
ap.add_argument("--examples", type=int, default=2048)
ap.add_argument("--steps", type=int, default=40)
ap.add_argument("--report-every", type=int, default=10)
ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
ap.add_argument("--lr", type=float, default=0.0001)
ap.add_argument("--threads", type=int, default=1)
args = ap.parse_args()
torch.set_num_threads(args.threads)
DT = {"float32": torch.float32, "float64": torch.float64}[args.dtype]

np.random.seed(1)
x, y = generate_dataset(output_dim=30, num_examples=args.examples)
dims = [60, args.width, args.width, args.width, 30]
L = len(dims) - 1
W = [torch.from_numpy(np.random.randn(dims[i], dims[i + 1]) * 0.04).to(DT) for i in range(L)]
b = [torch.zeros(dims[i + 1], dtype=DT) for i in range(L)]

B, lr = args.batch, args.lr
nb = args.examples // B
xs = [torch.from_numpy(x[i * B:(i + 1) * B]).to(DT) for i in range(nb)]
ys = [torch.from_numpy(y[i * B:(i + 1) * B]).to(DT) for i in range(nb)]

err = torch.zeros((), dtype=torch.float64)
t0, c0 = now(), cpu()
with torch.no_grad():
    for step in range(args.steps):
        h = [xs[step % nb]]
        for l in range(L):
            z = torch.addmm(b[l], h[l], W[l])
            h.append(z.relu_() if l < L - 1 else z.sigmoid_())
        out = h[L]
        e = out - ys[step % nb]
        err += e.abs().sum(dtype=torch.float64)
        d = e * (out * (1 - out))
        for l in reversed(range(L)):
            m = d @ W[l].t() if l > 0 else None
            W[l].addmm_(h[l].t(), d, alpha=-lr)
            b[l].sub_(d.mean(0), alpha=lr)
            if l > 0:
                d = m.masked_fill_(h[l] <= 0, 0)
        if (step + 1) % args.report_every == 0:
            sys.stdout.write("Iter:%d Loss:%s\n" % (step, py2(err.item())))
            err.zero_()
seconds, cpu_seconds = now() - t0, cpu() - c0
result(args.steps, seconds, cpu_seconds=cpu_seconds, impl="torch", dtype=args.dtype, torch=torch.__version__,
       torch_threads=torch.get_num_threads())
