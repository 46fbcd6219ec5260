#!/bin/bash
# End to end: IDX ubyte images are kept as bytes and scaled when a batch is assembled.  A model
# reading them must compute exactly what it computes from the same values given already scaled
# (an IDX float64 file written by numpy, scale 1): the same report lines, weights and
# predictions, bit for bit, shuffled or not, float32 and float64, sequential or pipelined, with
# a validation split.  --export-data's x must equal numpy's float64(pixel) * (1/255) rounded to
# the dtype (an independent reimplementation), and, when Debian's dataset-fashion-mnist is
# installed, so must the first Fashion-MNIST images.
. "${top_srcdir:-.}/tests/lib.sh"
cd "$top_srcdir" || exit 1
if ! /usr/bin/python3 -c 'import numpy' 2> /dev/null; then
    echo "ok 1 # SKIP python3-numpy is not installed (the README's setup command installs it)"
    finish
fi
export DNIC_CACHE_DIR="$TMP/cache"
D="$TMP/d"
mkdir -p "$D"
/usr/bin/python3 - "$D" <<'PY'
import gzip, sys
import numpy as np
d = sys.argv[1]
rng = np.random.RandomState(7)
n, w = 300, 24
pix = rng.randint(0, 256, size=(n, w)).astype(np.uint8)
pix.reshape(-1)[:256] = np.arange(256)          # every byte value appears
lab = rng.randint(0, 4, size=n).astype(np.uint8)
def idx(type_, arr):
    hdr = bytes([0, 0, type_, arr.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in arr.shape)
    return hdr + arr.tobytes()
with gzip.open(d + "/img.gz", "wb") as f:
    f.write(idx(0x08, pix))
with open(d + "/lab", "wb") as f:
    f.write(idx(0x08, lab))
scaled = pix.astype(np.float64) * (np.float64(1) / np.float64(255))
with open(d + "/img.f64", "wb") as f:
    f.write(idx(0x0E, scaled.astype(">f8")))
np.save(d + "/pix.npy", pix)
PY
model() { # FILE IMAGES SCALE
    cat > "$1" <<DNI
model bytes
data idx {
    train_images = "$2"
    train_labels = "lab"
    test_images  = "$2"
    test_labels  = "lab"
    scale   = $3
    one_hot = 4
    inputs  = 24
    labels  = 4
}
layer h1  = dense(input, 16) { activation = relu }
layer h2  = dense(h1, 16)    { activation = relu }
layer out = dense(h2, 4)     { activation = softmax }
sg h1 { input = output }
sg h2 { input = output }
loss softmax_cross_entropy(out, labels) { report = loss }
train {
    mode = dni
    optimizer = adam
    batch = 10
    lr = 0.001
    epochs = 4
    report_every = 1
    shuffle = true
    seed = 3
    dtype = float32
}
DNI
}
model "$D/bytes.dni" img.gz "1 / 255"
model "$D/floats.dni" img.f64 1
i=0
for args in "" "--set train.shuffle=false" "--set train.dtype=float64" "--set train.mode=backprop --set data.validation=0.2" \
    "--schedule pipeline --set train.lag=1" "--probe"; do
    i=$((i + 1))
    for m in bytes floats; do
        # shellcheck disable=SC2086
        timeout 60 "$DNIC" "$D/$m.dni" --run --no-progress $args --save-weights "$TMP/w$i.$m.st" \
            --save-predictions "$TMP/p$i.$m.st" > "$TMP/o$i.$m" 2>&1 || echo "exit $?" >> "$TMP/o$i.$m"
    done
    if grep -q '^Iter:3 ' "$TMP/o$i.bytes" && diff <(grep '^Iter' "$TMP/o$i.bytes") <(grep '^Iter' "$TMP/o$i.floats") > /dev/null &&
        cmp -s "$TMP/w$i.bytes.st" "$TMP/w$i.floats.st" && cmp -s "$TMP/p$i.bytes.st" "$TMP/p$i.floats.st"; then
        ok "pixels as bytes ${args:-(shuffled, float32)}: the lines, weights and predictions of the pre-scaled floats"
    else
        not_ok "pixels as bytes ${args:-(shuffled, float32)}: same as pre-scaled floats" "$(cat "$TMP/o$i.bytes" "$TMP/o$i.floats")"
    fi
done

# --export-data against numpy: x = float64(pixel) * (1/255), rounded to the dtype
exported() { # FILE NPY-PIXELS DTYPE ROWS: compares the file's x with numpy's scaling
    /usr/bin/python3 - "$@" <<'PY'
import json, struct, sys
import numpy as np
path, pix, dtype, rows = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
raw = open(path, "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
hdr = json.loads(raw[8:8 + n])
t = hdr["x"]
a, b = t["data_offsets"]
x = np.frombuffer(raw[8 + n + a:8 + n + b], dtype="<f4" if t["dtype"] == "F32" else "<f8").reshape(t["shape"])
p = np.load(pix)[:rows].astype(np.float64)
want = (p * (np.float64(1) / np.float64(255))).astype(dtype)
sys.exit(0 if x.shape == want.shape and x.dtype == want.dtype and x.tobytes() == want.tobytes() else 1)
PY
}
for dt in float32 float64; do
    timeout 60 "$DNIC" "$D/bytes.dni" --run --no-progress --set train.epochs=1 --set train.dtype=$dt \
        --export-data "$TMP/x.$dt.st" > "$TMP/x.out" 2>&1
    if exported "$TMP/x.$dt.st" "$D/pix.npy" $dt 300; then ok "--export-data in $dt: numpy's pixel / 255, bit for bit"
    else not_ok "--export-data in $dt: numpy's pixel / 255" "$(cat "$TMP/x.out")"; fi
done

F=/usr/share/datasets/fashion-mnist
if [ -f $F/train-images-idx3-ubyte.gz ]; then
    /usr/bin/python3 -c "
import gzip, numpy as np
b = gzip.open('$F/train-images-idx3-ubyte.gz').read()
np.save('$TMP/fashion.npy', np.frombuffer(b[16:16 + 64 * 784], dtype=np.uint8).reshape(64, 784))"
    timeout 120 "$DNIC" examples/fashion_backprop.dni --run --no-progress --set data.limit=64 --set data.test_limit=16 \
        --set train.epochs=1 --set train.batch=32 --export-data "$TMP/fx.st" > "$TMP/fx.out" 2>&1
    if exported "$TMP/fx.st" "$TMP/fashion.npy" float32 64; then
        ok "Fashion-MNIST's first 64 images as the model sees them: numpy's pixel / 255 in float32, bit for bit"
    else not_ok "Fashion-MNIST's first 64 images: numpy's pixel / 255" "$(cat "$TMP/fx.out")"; fi
else
    tap_n=$((tap_n + 1))
    echo "ok $tap_n # SKIP dataset-fashion-mnist is not installed"
fi
finish
