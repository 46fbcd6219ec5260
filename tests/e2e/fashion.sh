#!/bin/bash
# End to end, on real data: the three Fashion-MNIST examples train on a subset
# (6000 training and 1000 test images, two epochs), report test accuracy, and their logs plot into one
# well-formed SVG with a curve per run.  Needs Debian's dataset-fashion-mnist.
. "${top_srcdir:-.}/tests/lib.sh"
cd "$top_srcdir" || exit 1
if [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
    echo "ok 1 # SKIP dataset-fashion-mnist is not installed"
    finish
fi
S="--set data.limit=6000 --set data.test_limit=1000 --set train.epochs=2"
for f in fashion_backprop fashion_dni fashion_cdni; do
    timeout 300 "$DNIC" examples/$f.dni --run --no-progress $S --log "$TMP/$f.csv" > "$TMP/$f.out" 2>&1
    rc=$?
    acc=$(sed -n 's/.* Test loss:[^ ]* accuracy:\([0-9.]*\)%.*/\1/p' "$TMP/$f.out" | tail -1)
    if [ $rc -eq 0 ] && [ -n "$acc" ] && awk -v a="$acc" 'BEGIN { exit !(a > 20) }'; then
        ok "$f: two epochs on 6000 images, test accuracy $acc% (chance is 10%)"
    else
        not_ok "$f trains on a Fashion-MNIST subset" "exit $rc" "$(cat "$TMP/$f.out")"
    fi
done
acc=$(sed -n 's/.* accuracy:\([0-9.]*\)%.*/\1/p' "$TMP/fashion_backprop.out" | tail -1)
awk -v a="$acc" 'BEGIN { exit !(a > 50) }' && ok "backprop passes 50% after two small epochs ($acc%)" ||
    not_ok "backprop passes 50% after two small epochs" "$acc"
if "$DNIC" plot "$TMP/fashion_backprop.csv" "$TMP/fashion_dni.csv" "$TMP/fashion_cdni.csv" -o "$TMP/c.svg" 2> "$TMP/plot.err"; then
    n=$(grep -o '<polyline' "$TMP/c.svg" | wc -l)
    opens=$(grep -o '<[a-z]' "$TMP/c.svg" | wc -l); closes=$(grep -o '</[a-z]\|/>' "$TMP/c.svg" | wc -l)
    # one epoch = one point per run per panel: single points are drawn as dots, so count the
    # legend entries and check the tags balance instead of counting polylines
    if [ "$opens" -eq "$closes" ] && grep -q '>fashion_dni<' "$TMP/c.svg" && grep -q '>fashion_cdni<' "$TMP/c.svg" &&
        grep -q '>fashion_backprop<' "$TMP/c.svg"; then
        ok "dnic plot overlays the three runs in a well-formed SVG ($n polylines)"
    else
        not_ok "dnic plot overlays the three runs in a well-formed SVG" "open $opens close $closes"
    fi
else
    not_ok "dnic plot overlays the three runs" "$(cat "$TMP/plot.err")"
fi
finish
