"""The machine's matrix-multiply ceiling: OpenBLAS sgemm (and dgemm) through numpy on a large
square product, with the BLAS thread count taken from OPENBLAS_NUM_THREADS (bench/run runs this
once per thread count).  Prints `# result {json}` with the best and median GFLOP/s of --reps
timed products after one untimed warm-up.

usage: gemm_ceiling.py [--n 4096] [--reps 3] [--dtype float32|float64]
"""
import argparse

import numpy as np

from common import now, result

ap = argparse.ArgumentParser()
ap.add_argument("--n", type=int, default=4096)
ap.add_argument("--reps", type=int, default=3)
ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
args = ap.parse_args()

rng = np.random.RandomState(0)
a = rng.rand(args.n, args.n).astype(args.dtype)
b = rng.rand(args.n, args.n).astype(args.dtype)
c = np.empty_like(a)
np.matmul(a, b, out=c)  # warm-up: page faults, thread start-up
times = []
for _ in range(args.reps):
    t = now()
    np.matmul(a, b, out=c)
    times.append(now() - t)
flop = 2.0 * args.n ** 3
times.sort()
result(args.reps, sum(times), impl="numpy-matmul", dtype=args.dtype, n=args.n,
       gflops_best=flop / times[0] / 1e9, gflops_median=flop / times[len(times) // 2] / 1e9)
