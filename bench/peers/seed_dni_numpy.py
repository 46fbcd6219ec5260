"""Seed 001's DNI notebook (16-64-32-8 sigmoid, batch 10, alpha 0.01, linear SG modules), as
the seed wrote it, in numpy.  The only changes: the dtype (float64 as in the seed, or float32,
in which case data and weights are drawn exactly as in float64 and then rounded, as dnic
does), the epoch count, and report lines printed in dnic's format.  In float32 the report sums
are accumulated in float64, as dnic's are (the seed's `error += np.sum(...)` would accumulate
in float32); in float64 the seed's own lines are used unchanged.

usage: seed_dni_numpy.py [--dtype float64|float32] [--epochs 10000] [--report-every 1000]
"""
import argparse
import sys

import numpy as np

from common import cpu, generate_dataset, now, py2, result

ap = argparse.ArgumentParser()
ap.add_argument("--dtype", default="float64", choices=["float64", "float32"])
ap.add_argument("--epochs", type=int, default=10000)
ap.add_argument("--report-every", type=int, default=1000)
args = ap.parse_args()
DT = np.dtype(args.dtype)


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def sigmoid_out2deriv(out):
    return out * (1 - out)


class DNI(object):

    def __init__(self, input_dim, output_dim, nonlin, nonlin_deriv, alpha=0.1):

        self.weights = ((np.random.randn(input_dim, output_dim) * 2) - 1).astype(DT)
        self.bias = ((np.random.randn(output_dim) * 2) - 1).astype(DT)

        self.weights_0_1_synthetic_grads = ((np.random.randn(output_dim, output_dim) * .0) - .0).astype(DT)
        self.bias_0_1_synthetic_grads = ((np.random.randn(output_dim) * .0) - .0).astype(DT)

        self.nonlin = nonlin
        self.nonlin_deriv = nonlin_deriv
        self.alpha = alpha

    def forward_and_synthetic_update(self, input, update=True):

        self.input = input
        self.output = self.nonlin(self.input.dot(self.weights) + self.bias)

        if (not update):
            return self.output
        else:
            self.synthetic_gradient = (self.output.dot(self.weights_0_1_synthetic_grads) + self.bias_0_1_synthetic_grads)
            self.weight_synthetic_gradient = self.synthetic_gradient * self.nonlin_deriv(self.output)

            self.weights -= self.input.T.dot(self.weight_synthetic_gradient) * self.alpha
            self.bias -= np.average(self.weight_synthetic_gradient, axis=0) * self.alpha

        return self.weight_synthetic_gradient.dot(self.weights.T), self.output

    def normal_update(self, true_gradient):
        grad = true_gradient * self.nonlin_deriv(self.output)

        self.weights -= self.input.T.dot(grad) * self.alpha
        self.bias -= np.average(grad, axis=0) * self.alpha

        return grad.dot(self.weights.T)

    def update_synthetic_weights(self, true_gradient):
        self.synthetic_gradient_delta = (self.synthetic_gradient - true_gradient)
        self.weights_0_1_synthetic_grads -= self.output.T.dot(self.synthetic_gradient_delta) * self.alpha
        self.bias_0_1_synthetic_grads -= np.average(self.synthetic_gradient_delta, axis=0) * self.alpha


np.random.seed(1)

num_examples = 100
output_dim = 8
iterations = args.epochs

x, y = generate_dataset(num_examples=num_examples, output_dim=output_dim)
x, y = x.astype(DT), y.astype(DT)

batch_size = 10
alpha = 0.01

input_dim = len(x[0])
layer_1_dim = 64
layer_2_dim = 32
output_dim = len(y[0])

layer_1 = DNI(input_dim, layer_1_dim, sigmoid, sigmoid_out2deriv, alpha)
layer_2 = DNI(layer_1_dim, layer_2_dim, sigmoid, sigmoid_out2deriv, alpha)
layer_3 = DNI(layer_2_dim, output_dim, sigmoid, sigmoid_out2deriv, alpha)

f64 = DT == np.float64
t0, c0 = now(), cpu()
for iter in range(iterations):
    error = 0
    synthetic_error = 0

    for batch_i in range(int(len(x) / batch_size)):
        batch_x = x[(batch_i * batch_size):(batch_i + 1) * batch_size]
        batch_y = y[(batch_i * batch_size):(batch_i + 1) * batch_size]

        _, layer_1_out = layer_1.forward_and_synthetic_update(batch_x)
        layer_1_delta, layer_2_out = layer_2.forward_and_synthetic_update(layer_1_out)
        layer_3_out = layer_3.forward_and_synthetic_update(layer_2_out, False)

        layer_3_delta = layer_3_out - batch_y
        layer_2_delta = layer_3.normal_update(layer_3_delta)
        layer_2.update_synthetic_weights(layer_2_delta)
        layer_1.update_synthetic_weights(layer_1_delta)

        if f64:
            error += (np.sum(np.abs(layer_3_delta)))
            synthetic_error += (np.sum(np.abs(layer_2_delta - layer_2.synthetic_gradient)))
        else:
            error += np.abs(layer_3_delta).sum(dtype=np.float64)
            synthetic_error += np.abs(layer_2_delta - layer_2.synthetic_gradient).sum(dtype=np.float64)

    if (iter % args.report_every == args.report_every - 1):
        sys.stdout.write("Iter:" + str(iter) + " Loss:" + py2(error) + " Synthetic Loss:" + py2(synthetic_error) + "\n")
seconds, cpu_seconds = now() - t0, cpu() - c0
result(iterations * (num_examples // batch_size), seconds, cpu_seconds=cpu_seconds, impl="numpy", dtype=args.dtype)
