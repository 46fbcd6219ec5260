"""bench/rnn.dni in PyTorch (CPU): torch.nn.LSTM or torch.nn.RNN (tanh) without biases over
`steps` copies of each 16-bit row, its last state into a sigmoid layer, loss 0.5 sum (out - y)^2
by autograd, plain SGD on the batch sums (dnic's rule: W -= lr * sum-gradient).  The same data
(seed 001's generator) and initial weights (randn * 0.05 from numpy's stream, in dnic's order:
weight_ih, weight_hh, out.weight) as dnic; PyTorch stores the transposes.

usage: rnn_torch.py [--cell lstm|rnn] [--hidden 256] [--seq 20] [--batch 32] [--steps 200]
                    [--report-every 50] [--lr 0.01] [--threads 1] [--dtype float32|float64]
"""
import argparse
import sys

import numpy as np
import torch

from common import cpu, generate_dataset, now, py2, result

ap = argparse.ArgumentParser()
ap.add_argument("--cell", default="lstm", choices=["lstm", "rnn"])
ap.add_argument("--hidden", type=int, default=256)
ap.add_argument("--seq", type=int, default=20)
ap.add_argument("--batch", type=int, default=32)
ap.add_argument("--steps", type=int, default=200)
ap.add_argument("--report-every", type=int, default=50)
ap.add_argument("--lr", type=float, default=0.01)
ap.add_argument("--threads", type=int, default=1)
ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
args = ap.parse_args()
torch.set_num_threads(args.threads)
DT = {"float32": torch.float32, "float64": torch.float64}[args.dtype]

np.random.seed(1)
x, y = generate_dataset(output_dim=8, num_examples=1024)
H, G = args.hidden, (4 if args.cell == "lstm" else 1) * args.hidden
w_ih = np.random.randn(16, G) * 0.05
w_hh = np.random.randn(H, G) * 0.05
w_out = np.random.randn(H, 8) * 0.05

rnn = (torch.nn.LSTM if args.cell == "lstm" else torch.nn.RNN)(16, H, bias=False).to(DT)
with torch.no_grad():
    rnn.weight_ih_l0.copy_(torch.from_numpy(w_ih.T))
    rnn.weight_hh_l0.copy_(torch.from_numpy(w_hh.T))
W_out = torch.from_numpy(w_out).to(DT).requires_grad_()
params = [rnn.weight_ih_l0, rnn.weight_hh_l0, W_out]

B, lr = args.batch, args.lr
nb = 1024 // B
xs = [torch.from_numpy(x[i * B:(i + 1) * B]).to(DT) for i in range(nb)]
ys = [torch.from_numpy(y[i * B:(i + 1) * B]).to(DT) for i in range(nb)]

err = 0.0
t0, c0 = now(), cpu()
for step in range(args.steps):
    xb, yb = xs[step % nb], ys[step % nb]
    seq = xb.unsqueeze(0).expand(args.seq, B, 16)
    outs, _ = rnn(seq)
    out = torch.sigmoid(outs[-1] @ W_out)
    e = out - yb
    loss = 0.5 * (e * e).sum()
    for p in params:
        p.grad = None
    loss.backward()
    with torch.no_grad():
        for p in params:
            p.sub_(p.grad, alpha=lr)
    err += e.detach().abs().sum(dtype=torch.float64).item()
    if (step + 1) % args.report_every == 0:
        sys.stdout.write("Iter:%d Loss:%s\n" % (step, py2(err)))
        err = 0.0
seconds, cpu_seconds = now() - t0, cpu() - c0
result(args.steps, seconds, cpu_seconds=cpu_seconds, impl="torch", dtype=args.dtype, torch=torch.__version__,
       torch_threads=torch.get_num_threads())
