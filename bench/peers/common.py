"""Shared pieces of the bench peers: the seeds' data set, dnic's report-line format and the
result line bench/run reads.

Every peer prints the report lines dnic prints (`Iter:N Loss:X [Synthetic Loss:Y]`, numbers as
Python 2's str(float)) and, last, one line `# result {json}` with the timed loop's steps and
seconds, the thread counts and the BLAS it ran on.  Timing covers the training loop only
(data generation, weight initialisation and imports are excluded, as dnic's own `steps in S s`
excludes parsing and compiling).
"""
import json
import os
import sys
import time

import numpy as np


def generate_dataset(output_dim=8, num_examples=1000):
    """The seeds' generate_dataset, verbatim (it draws from np.random's global stream)."""
    def int2vec(x, dim=output_dim):
        out = np.zeros(dim)
        binrep = np.array(list(np.binary_repr(x))).astype('int')
        out[-len(binrep):] = binrep
        return out

    x_left_int = (np.random.rand(num_examples) * 2**(output_dim - 1)).astype('int')
    x_right_int = (np.random.rand(num_examples) * 2**(output_dim - 1)).astype('int')
    y_int = x_left_int + x_right_int

    x = list()
    for i in range(len(x_left_int)):
        x.append(np.concatenate((int2vec(x_left_int[i]), int2vec(x_right_int[i]))))

    y = list()
    for i in range(len(y_int)):
        y.append(int2vec(y_int[i]))

    x = np.array(x)
    y = np.array(y)

    return (x, y)


def py2(v):
    """Python 2's str(float), which the seeds printed and dnic reproduces: %.12g (+ '.0')."""
    v = float(v)
    if v != v:
        return "nan"
    if v in (float("inf"), float("-inf")):
        return "inf" if v > 0 else "-inf"
    s = "%.12g" % v
    if "." not in s and "e" not in s and "n" not in s:
        s += ".0"
    return s


def blas_info():
    """Which BLAS (and which OpenBLAS kernel) this process uses, and its thread count."""
    try:
        import threadpoolctl
        return [{k: d.get(k) for k in ("internal_api", "version", "architecture", "num_threads", "filepath")}
                for d in threadpoolctl.threadpool_info()]
    except ImportError:
        return "threadpoolctl not installed"


def result(steps, seconds, **extra):
    d = {"steps": steps, "seconds": seconds, "blas": blas_info(),
         "env_threads": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")}}
    d.update(extra)
    sys.stdout.write("# result " + json.dumps(d) + "\n")
    sys.stdout.flush()


now = time.perf_counter
cpu = time.process_time  # all threads of the process
