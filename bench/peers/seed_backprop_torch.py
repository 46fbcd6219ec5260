"""Seed 002's backpropagation run (24-128-64-12 sigmoid, no biases, batch 10, alpha 0.1) in
PyTorch (CPU): torch.no_grad with the seed's explicit gradients, messages computed before the
updates (ordinary backprop, as the seed), in-place SGD steps with Tensor.addmm_, report sum kept
as a float64 tensor.  Data and initial weights come from the seed's numpy stream.

usage: seed_backprop_torch.py [--dtype float32|float64] [--epochs 1000] [--report-every 100] [--threads 1]
"""
import argparse
import sys

import numpy as np
import torch

from common import cpu, generate_dataset, now, py2, result

ap = argparse.ArgumentParser()
ap.add_argument("--dtype", default="float32", choices=["float64", "float32"])
ap.add_argument("--epochs", type=int, default=1000)
ap.add_argument("--report-every", type=int, default=100)
ap.add_argument("--threads", type=int, default=1)
args = ap.parse_args()
torch.set_num_threads(args.threads)
DT = {"float32": torch.float32, "float64": torch.float64}[args.dtype]

np.random.seed(1)
x, y = generate_dataset(num_examples=1000, output_dim=12)
W1, W2, W3 = (torch.from_numpy(np.random.randn(i, o) * 0.2 - 0.1).to(DT) for i, o in ((24, 128), (128, 64), (64, 12)))

B, lr = 10, 0.1
xs = [torch.from_numpy(x[i:i + B]).to(DT) for i in range(0, 1000, B)]
ys = [torch.from_numpy(y[i:i + B]).to(DT) for i in range(0, 1000, B)]
err = torch.zeros((), dtype=torch.float64)

t0, c0 = now(), cpu()
with torch.no_grad():
    for it in range(args.epochs):
        err.zero_()
        for l0, yb in zip(xs, ys):
            l1 = torch.sigmoid(l0 @ W1)
            l2 = torch.sigmoid(l1 @ W2)
            l3 = torch.sigmoid(l2 @ W3)
            d3 = (l3 - yb) * (l3 * (1 - l3))
            d2 = (d3 @ W3.t()) * (l2 * (1 - l2))
            d1 = (d2 @ W2.t()) * (l1 * (1 - l1))
            W1.addmm_(l0.t(), d1, alpha=-lr)
            W2.addmm_(l1.t(), d2, alpha=-lr)
            W3.addmm_(l2.t(), d3, alpha=-lr)
            err += d3.abs().sum(dtype=torch.float64)
        if it % args.report_every == args.report_every - 1:
            sys.stdout.write("Iter:%d Loss:%s\n" % (it, py2(err.item())))
seconds, cpu_seconds = now() - t0, cpu() - c0
result(args.epochs * 100, seconds, cpu_seconds=cpu_seconds, impl="torch", dtype=args.dtype, torch=torch.__version__,
       torch_threads=torch.get_num_threads())
