"""Shared pieces of the Fashion-MNIST peers (fashion_numpy.py, fashion_torch.py): the data as
dnic loads it, dnic's seeded shuffle, dnic's initial weights, its report lines, and a check of
all three against the files `dnic --save-init` and `dnic --export-data` write.

The model is examples/fashion_{backprop,dni}.dni: 784-256-256-10, relu, relu, softmax, He-uniform
hidden layers and a Xavier-uniform output layer, biases and linear SG modules zero, Adam
(lr 1e-4, betas 0.9/0.999, eps 1e-8) for every parameter, batch 128, softmax cross-entropy,
shuffle = true, seed = 1 (docs/semantics.md).

- Data: the IDX files of Debian's dataset-fashion-mnist; pixels times the double 1/255 (dnic's
  `scale = 1 / 255`), rounded to float32; labels one-hot.  `limit`/`test_limit` keep the first N
  examples, as dnic's data.limit/data.test_limit do.
- Shuffle: epoch e visits the examples in the order of a Fisher-Yates shuffle drawn by numpy's
  legacy RandomState seeded with splitmix64((seed << 32) ^ e) (bits 16..47 of the mixed value):
  RandomState(s).permutation(n) draws exactly what runtime/sched.c's epoch_order draws.
- Initial weights: one RandomState(seed) stream, parameters in dnic's construction order (layer
  weight, layer bias, the layer's SG weight and bias); `zeros` draws nothing, so only the three
  weight matrices draw: uniform `random_sample() * 2 * limit - limit` in float64 (limit
  sqrt(6 / fan_in) for He, sqrt(6 / (fan_in + fan_out)) for Xavier), then rounded to float32.
"""
import gzip
import json
import math
import os
import struct
import sys

import numpy as np

DATA_DIR = "/usr/share/datasets/fashion-mnist"
DIMS = [784, 256, 256, 10]
BATCH = 128
LR, BETA1, BETA2, EPS = 0.0001, 0.9, 0.999, 1e-8
SEED = 1
M64 = (1 << 64) - 1


def read_idx(path):
    """An IDX file (plain or gzipped) as a numpy array of its unsigned bytes, shaped by its header."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype != 0x08:
        sys.exit("%s: not an IDX file of unsigned bytes" % path)
    shape = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load(kind, limit=0, data_dir=DATA_DIR, dtype=np.float32):
    """(x [n, 784], y [n, 10]) of the 'train' or 't10k' set, as dnic holds them."""
    prefix = "train" if kind == "train" else "t10k"
    images = read_idx(os.path.join(data_dir, "%s-images-idx3-ubyte.gz" % prefix))
    labels = read_idx(os.path.join(data_dir, "%s-labels-idx1-ubyte.gz" % prefix))
    if limit:
        images, labels = images[:limit], labels[:limit]
    # each pixel times the double 1/255, rounded to the dtype: a table of the 256 values
    table = (np.arange(256, dtype=np.float64) * (1 / 255)).astype(dtype)
    x = table[images.reshape(len(images), -1)]
    y = np.eye(10, dtype=dtype)[labels]
    return x, y


def mix(z):
    """runtime/sched.c's mix(): splitmix64's finaliser, bits 16..47 of the result."""
    z = (z + 0x9e3779b97f4a7c15) & M64
    z = ((z ^ (z >> 30)) * 0xbf58476d1ce4e5b9) & M64
    z = ((z ^ (z >> 27)) * 0x94d049bb133111eb) & M64
    return ((z ^ (z >> 31)) >> 16) & 0xffffffff


def epoch_order(epoch, n, seed=SEED):
    """The order in which dnic visits the n examples in epoch `epoch` (from 0)."""
    return np.random.RandomState(mix(((seed << 32) ^ epoch) & M64)).permutation(n)


def init_weights(seed=SEED, dtype=np.float32):
    """[W1, W2, W3] as dnic initialises them (biases and SG modules start at zero)."""
    rs = np.random.RandomState(seed)
    W = []
    for l in range(3):
        fan_in, fan_out = DIMS[l], DIMS[l + 1]
        limit = math.sqrt(6.0 / fan_in) if l < 2 else math.sqrt(6.0 / (fan_in + fan_out))
        W.append((rs.random_sample((fan_in, fan_out)) * (2 * limit) + -limit).astype(dtype))
    return W


def fmt_test(loss, accuracy):
    """The end of dnic's report line when there is a test set."""
    return " Test loss:%.6g accuracy:%.2f%%" % (loss, 100.0 * accuracy)


def read_safetensors(path):
    """{name: numpy array} of a safetensors file (the format dnic's --save-init writes)."""
    types = {"F32": np.float32, "F64": np.float64}
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    head = json.loads(raw[8:8 + n])
    out = {}
    for name, d in head.items():
        if name == "__metadata__":
            continue
        a, b = d["data_offsets"]
        out[name] = np.frombuffer(raw, types[d["dtype"]], count=(b - a) // np.dtype(types[d["dtype"]]).itemsize,
                                  offset=8 + n + a).reshape(d["shape"])
    return out


def verify(init_file, data_file, x, y, W):
    """Compares this peer's data and initial weights with dnic's files, bit for bit; prints one
    line per tensor and returns whether all are identical."""
    ok = True
    if init_file:
        dn = read_safetensors(init_file)
        for name, mine in zip(("h1.weight", "h2.weight", "out.weight"), W):
            same = name in dn and dn[name].shape == mine.shape and np.array_equal(dn[name], mine)
            print("# verify %s: %s" % (name, "identical" if same else "DIFFERENT"))
            ok &= same
        for name, a in sorted(dn.items()):
            if name not in ("h1.weight", "h2.weight", "out.weight"):
                same = not np.any(a)
                print("# verify %s: %s" % (name, "zero, as here" if same else "NOT ZERO"))
                ok &= same
    if data_file:
        dn = read_safetensors(data_file)
        for name, mine in (("x", x), ("y", y)):
            same = name in dn and dn[name].shape == mine.shape and np.array_equal(dn[name], mine)
            print("# verify data %s %s: %s" % (name, "x".join(map(str, mine.shape)), "identical" if same else "DIFFERENT"))
            ok &= same
    return ok
