"""Seed 002's backpropagation run (12-bit binary addition, 1000 examples, 24-128-64-12 sigmoid
network without biases, batch 10, alpha 0.1), as the seed wrote it, in numpy.  Changes: the
dtype (float64 as in the seed, or float32: data and weights drawn in float64 and rounded, as
dnic does), the epoch count, report lines in dnic's format, and in float32 the report sum is
accumulated in float64 as dnic's is.

--exact evaluates in dnic's order instead (docs/semantics.md): dot products accumulated from
zero in index order with no FMA, the derivative as `g * (out * (1 - out))`, and the C library's
exp.  It is slow (Python loops over the inner dimension) and is used only to show where a
difference between the BLAS port and dnic comes from; bench/run does not time it.

usage: seed_backprop_numpy.py [--dtype float64|float32] [--epochs 1000] [--report-every 100] [--exact]
"""
import argparse
import math
import sys

import numpy as np

from common import cpu, generate_dataset, now, py2, result

ap = argparse.ArgumentParser()
ap.add_argument("--dtype", default="float64", choices=["float64", "float32"])
ap.add_argument("--epochs", type=int, default=1000)
ap.add_argument("--report-every", type=int, default=100)
ap.add_argument("--exact", action="store_true")
args = ap.parse_args()
DT = np.dtype(args.dtype)

np.random.seed(1)


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


num_examples = 1000
output_dim = 12
iterations = args.epochs

x, y = generate_dataset(num_examples=num_examples, output_dim=output_dim)
x, y = x.astype(DT), y.astype(DT)

batch_size = 10
alpha = 0.1

input_dim = len(x[0])
layer_1_dim = 128
layer_2_dim = 64
output_dim = len(y[0])

weights_0_1 = ((np.random.randn(input_dim, layer_1_dim) * 0.2) - 0.1).astype(DT)
weights_1_2 = ((np.random.randn(layer_1_dim, layer_2_dim) * 0.2) - 0.1).astype(DT)
weights_2_3 = ((np.random.randn(layer_2_dim, output_dim) * 0.2) - 0.1).astype(DT)

f64 = DT == np.float64

if args.exact:
    _exp = np.vectorize(math.exp, otypes=[DT])

    def sigmoid(x):  # noqa: F811 -- dnic's sigmoid with the C library's exp
        return 1 / (1 + _exp(-x))

    def dot(a, b):  # a[M,K] . b[K,N], accumulated from zero in k order, one rounding per op
        acc = np.zeros((a.shape[0], b.shape[1]), DT)
        for k in range(a.shape[1]):
            acc += a[:, k:k + 1] * b[k]
        return acc

    def dot_nt(d, w):  # d[B,N] . w[K,N]^T, accumulated over n in order
        acc = np.zeros((d.shape[0], w.shape[0]), DT)
        for n in range(d.shape[1]):
            acc += d[:, n:n + 1] * w[:, n]
        return acc

    def dot_tn(a, d):  # a[B,K]^T . d[B,N], accumulated over the batch in order
        acc = np.zeros((a.shape[1], d.shape[1]), DT)
        for i in range(a.shape[0]):
            acc += np.outer(a[i], d[i])
        return acc

    def deriv(g, out):
        return g * (out * (1 - out))

t0, c0 = now(), cpu()
for iter in range(iterations):
    error = 0

    for batch_i in range(int(len(x) / batch_size)):
        batch_x = x[(batch_i * batch_size):(batch_i + 1) * batch_size]
        batch_y = y[(batch_i * batch_size):(batch_i + 1) * batch_size]

        if not args.exact:
            layer_0 = batch_x
            layer_1 = sigmoid(layer_0.dot(weights_0_1))
            layer_2 = sigmoid(layer_1.dot(weights_1_2))
            layer_3 = sigmoid(layer_2.dot(weights_2_3))

            layer_3_delta = (layer_3 - batch_y) * layer_3 * (1 - layer_3)
            layer_2_delta = layer_3_delta.dot(weights_2_3.T) * layer_2 * (1 - layer_2)
            layer_1_delta = layer_2_delta.dot(weights_1_2.T) * layer_1 * (1 - layer_1)

            weights_0_1 -= layer_0.T.dot(layer_1_delta) * alpha
            weights_1_2 -= layer_1.T.dot(layer_2_delta) * alpha
            weights_2_3 -= layer_2.T.dot(layer_3_delta) * alpha
        else:
            layer_0 = batch_x
            layer_1 = sigmoid(dot(layer_0, weights_0_1))
            layer_2 = sigmoid(dot(layer_1, weights_1_2))
            layer_3 = sigmoid(dot(layer_2, weights_2_3))

            layer_3_delta = deriv(layer_3 - batch_y, layer_3)
            weights_2_3_old = weights_2_3.copy()
            weights_2_3 -= dot_tn(layer_2, layer_3_delta) * DT.type(alpha)
            layer_2_delta = deriv(dot_nt(layer_3_delta, weights_2_3_old), layer_2)
            weights_1_2_old = weights_1_2.copy()
            weights_1_2 -= dot_tn(layer_1, layer_2_delta) * DT.type(alpha)
            layer_1_delta = deriv(dot_nt(layer_2_delta, weights_1_2_old), layer_1)
            weights_0_1 -= dot_tn(layer_0, layer_1_delta) * DT.type(alpha)

        if args.exact:
            for v in np.abs(layer_3_delta).ravel():  # dnic's order: element by element, in float64
                error += float(v)
        elif f64:
            error += (np.sum(np.abs(layer_3_delta)))
        else:
            error += np.abs(layer_3_delta).sum(dtype=np.float64)

    if (iter % args.report_every == args.report_every - 1):
        sys.stdout.write("Iter:" + str(iter) + " Loss:" + py2(error) + "\n")
seconds, cpu_seconds = now() - t0, cpu() - c0
result(iterations * (num_examples // batch_size), seconds, cpu_seconds=cpu_seconds, impl="numpy" + ("-exact" if args.exact else ""),
       dtype=args.dtype)
