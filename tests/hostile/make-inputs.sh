#!/bin/bash
# Makes, in the current directory, the hostile inputs too big, too binary or too derived to keep
# in git (tests/hostile/files/ holds the small ones).  Deterministic: the same bytes every time.
# Needs $DNIC for the inputs that are dnic's own files (weights, checkpoints) made hostile.
set -eu

# bytes OCTAL...: raw bytes ("bytes 0 0 10 3" writes 00 00 0a 03)
bytes() { for b in "$@"; do printf "\\$(printf %03o "$b")"; done; }
# be32 N: a big-endian 32-bit number
be32() { bytes $((($1 >> 24) & 255)) $((($1 >> 16) & 255)) $((($1 >> 8) & 255)) $(($1 & 255)); }
# st FILE HEADER DATA_BYTES [LENGTH]: a safetensors file without checksums: the header's length
# (or LENGTH), the header padded to 8 bytes, then DATA_BYTES zero bytes
st() {
    local h=$2 n
    while [ $((${#h} % 8)) -ne 0 ]; do h="$h "; done
    n=${4:-${#h}}
    { bytes $((n & 255)) $(((n >> 8) & 255)) $(((n >> 16) & 255)) $(((n >> 24) & 255)) 0 0 0 0
      printf '%s' "$h"; head -c "$3" /dev/zero; } > "$1"
}
# rep N TEXT: TEXT N times
rep() { awk -v n="$1" -v t="$2" 'BEGIN { for (i = 0; i < n; i++) printf "%s", t }'; }
# flip FILE OFFSET XOR
flip() {
    local b
    b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
    bytes $((b ^ $3)) | dd of="$1" bs=1 seek="$2" conv=notrunc 2> /dev/null
}
W='"h.weight":{"dtype":"F32","shape":[4,4],"data_offsets":[0,64]}'
B='"h.bias":{"dtype":"F32","shape":[4],"data_offsets":[64,80]}'
OW='"out.weight":{"dtype":"F32","shape":[4,3],"data_offsets":[80,128]}'
OB='"out.bias":{"dtype":"F32","shape":[3],"data_offsets":[128,140]}'

# ---- .dni files ----------------------------------------------------------------------------
head -c 20000000 /dev/zero | tr '\0' '#' > huge.dni
{ printf 'model m\ndata binary_addition { bits = 8  examples = 10  inputs = 16  labels = 8 }\nlayer out = dense(input, '
  rep 100000 '('; printf 8; rep 100000 ')'; printf ')\n'; } > deep.dni
{ printf 'model '; rep 1000000 a; printf '\n'; } > longname.dni
{ printf 'model m\ndata csv { train = "'; rep 5000 a; printf '" }\n'; } > longstring.dni
{ printf 'model m\ndata binary_addition { bits = 8  examples = 10  inputs = 16  labels = 8 }\nlayer out = dense(input, 8'
  rep 100000 ' + 1'; printf ')\n'; } > longsum.dni
{ printf 'model m\n'; rep 200000 '   \n'; printf 'layer\n'; } > manylines.dni
{ printf 'model m\nlayer out = dense(input, '; rep 300 9; printf ')\n'; } > longnumber.dni
awk 'BEGIN { s = 18; for (i = 0; i < 4096; i++) { s = (s * 1103515245 + 12345) % 2147483648; printf "%c", 128 + int(s / 65536) % 128 } }' > garbage.dni
printf 'model m\001\n' > control.dni
printf '\357\273\277model m\nlayer\n' > bom.dni

# ---- IDX --------------------------------------------------------------------------------------
{ bytes 0 0 8 3; be32 2147483647; be32 2147483647; be32 2; } > idx-dims-overflow.idx
{ bytes 0 0 8 3; be32 4294967295; be32 4294967295; be32 4294967295; } > idx-dims-max.idx
{ bytes 0 0 8 3; be32 4; be32 2; be32 2; bytes 1 2; } > idx-truncated.idx
{ bytes 0 0 8 3; be32 4; be32 2; } > idx-truncated-header.idx
{ bytes 0 0 8 3; be32 0; be32 2; be32 2; } > idx-no-images.idx
{ bytes 0 0 8 3; be32 4; be32 0; be32 2; } > idx-zero-width.idx
{ cat i.idx; bytes 1; } > idx-trailing.idx
bytes 0 0 8 > idx-3-bytes.idx
: > idx-empty.idx
{ bytes 0 0 7 3; be32 4; be32 2; be32 2; head -c 16 /dev/zero; } > idx-bad-type.idx
{ bytes 1 0 8 3; be32 4; be32 2; be32 2; head -c 16 /dev/zero; } > idx-bad-magic.idx
{ bytes 0 0 8 0; } > idx-no-dims.idx
{ bytes 0 0 13 3; be32 4; be32 2; be32 2; for i in $(seq 16); do bytes 127 192 0 0; done; } > idx-nan.idx
{ bytes 0 0 13 3; be32 4; be32 2; be32 2; for i in $(seq 16); do bytes 127 128 0 0; done; } > idx-inf.idx
{ bytes 0 0 8 1; be32 4; bytes 0 5 1 2; } > idx-label-range.idx
{ bytes 0 0 8 1; be32 3; bytes 0 1 1; } > idx-label-count.idx
{ bytes 0 0 8 3; be32 4; be32 2; be32 2; head -c 16 /dev/zero; } > idx-images-as-labels.idx
{ bytes 0 0 8 1; be32 4; bytes 0 1 2 1; } > idx-labels-as-images.idx
gzip -n -c i.idx > idx-badcrc.idx.gz
n=$(wc -c < idx-badcrc.idx.gz); flip idx-badcrc.idx.gz $((n - 8)) 1
gzip -n -c i.idx | head -c 20 > idx-gz-truncated.idx.gz
{ bytes 31 139 8 0 0 0 0 0 0 3; head -c 100 /dev/zero; } > idx-gz-garbage.idx.gz
# a gzip bomb: 4 images declared, 200 MB of zeros after them (about 200 KB compressed)
{ cat i.idx; head -c 200000000 /dev/zero; } | gzip -n -1 > idx-bomb.idx.gz
# a bomb that declares what it holds: 2^31 values, refused before anything is allocated
{ bytes 0 0 8 3; be32 32768; be32 256; be32 256; head -c 1000000 /dev/zero; } | gzip -n -1 > idx-bomb-declared.idx.gz

# ---- CSV --------------------------------------------------------------------------------------
H='x0,x1,x2,x3,y'
printf '%s\n0,1,nan,3,0\n4,5,6,7,1\n' $H > csv-nan.csv
printf '%s\n0,1,inf,3,0\n4,5,6,7,1\n' $H > csv-inf.csv
printf '%s\n0,1,-Infinity,3,0\n4,5,6,7,1\n' $H > csv-minus-inf.csv
printf '%s\n0,1,2,3,0\n4,5,1e999,7,1\n' $H > csv-overflow.csv
printf '%s\n0,1,2,3,0\n4,5,1e-999,7,1\n' $H > csv-underflow.csv
printf '\357\273\277%s\n0,1,2,3,0\n4,5,x,7,1\n' $H > csv-bom-bad-value.csv
printf '%s\r\n0,1,2,3,0\r\n4,5,x,7,1\r\n' $H > csv-crlf-bad-value.csv
printf '%s\n"0",1,2,3,0\n4,"5,6,7,1\n' $H > csv-open-quote.csv
printf '%s\n0,1,2,3,0\n4,5,6"7",7,1\n' $H > csv-quote-inside.csv
printf '%s\n0,1,2,3,7\n4,5,6,7,1\n' $H > csv-label-range.csv
printf '%s\n0,1,2,3,-1\n4,5,6,7,1\n' $H > csv-label-negative.csv
printf '%s\n0,1,2,3,1.5\n4,5,6,7,1\n' $H > csv-label-fraction.csv
printf '%s\n0,1,2,3,nan\n4,5,6,7,1\n' $H > csv-label-nan.csv
printf '%s\n0,1,2,3\n4,5,6,7,1\n' $H > csv-short-row.csv
printf '%s\n0,1,2,3,0,9\n' $H > csv-long-row.csv
printf '%s\n0,1,2,3,0\n4,5,\000,7,1\n' $H > csv-nul.csv
: > csv-empty.csv
printf '%s\n' $H > csv-header-only.csv
printf '%s\n0,1,2,3,0\n4,5,,7,1\n' $H > csv-empty-cell.csv
printf '%s\n0,1,2,3,0\n4,5,0x10,7,1\n' $H > csv-hex.csv
printf 'x0,x1,x2,x3,label\n0,1,2,3,0\n' > csv-no-label.csv
printf 'x0,x1,x2,x3\n0,1,2,3\n' > csv-no-label-column.csv
printf 'x0,x1,x2,y\n0,1,2,0\n' > csv-narrow.csv
printf 'x0,x1,x2,x3,x4,y\n0,1,2,3,4,0\n' > csv-wide.csv
printf '%s\n0,1,2,3,0\n4,5,\3576,7,1\n' $H > csv-binary-cell.csv
printf '%s\n0,1,2,3,0\n\n4,5,6,7,1\n' $H > csv-blank-line.csv
printf '%s\n0;1;2;3;0\n' $H > csv-semicolons.csv
{ printf '%s\n' $H; head -c 10000000 /dev/zero | tr '\0' '1'; printf ',1,2,3,0\n'; } > csv-10mb-line.csv
{ rep 100000 'x,'; printf 'y\n'; } > csv-100k-columns.csv
gzip -n -c d.csv > csv-badcrc.csv.gz
n=$(wc -c < csv-badcrc.csv.gz); flip csv-badcrc.csv.gz $((n - 8)) 1
# a CSV gzip bomb: 20 million rows (200 MB of text, 200 KB compressed); 2 GiB of address space
# is not enough to hold it, and the loader says so
{ printf '%s\n' $H; yes '0,0,0,0,0' | head -n 20000000; } | gzip -n -1 > csv-bomb.csv.gz

# ---- safetensors weights ------------------------------------------------------------------------
st st-length-past-end.st '{}' 0 4096
st st-length-huge.st '{}' 0 4294967295
printf 'abc' > st-3-bytes.st
: > st-empty.st
st st-not-json.st 'hello, world' 0
st st-deep.st "{\"a\":$(rep 100000 '[')" 0
st st-duplicate.st "{$W,$B,$OW,$OB,$B}" 140
st st-overlap.st "{$W,\"h.bias\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[60,76]},$OW,$OB}" 140
st st-offsets-past-data.st "{$W,$B,$OW,\"out.bias\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[128,1000]}}" 140
st st-offsets-short.st "{$W,$B,$OW,\"out.bias\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[128,136]}}" 140
st st-offsets-reversed.st "{$W,$B,$OW,\"out.bias\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[140,128]}}" 140
st st-negative.st "{$W,$B,$OW,\"out.bias\":{\"dtype\":\"F32\",\"shape\":[-3],\"data_offsets\":[128,140]}}" 140
st st-float-shape.st "{$W,$B,$OW,\"out.bias\":{\"dtype\":\"F32\",\"shape\":[3.0],\"data_offsets\":[128,140]}}" 140
st st-3d.st "{$W,$B,$OW,\"out.bias\":{\"dtype\":\"F32\",\"shape\":[1,1,3],\"data_offsets\":[128,140]}}" 140
st st-bf16.st "{$W,$B,$OW,\"out.bias\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[128,134]}}" 134
st st-f64.st "{$W,$B,$OW,\"out.bias\":{\"dtype\":\"F64\",\"shape\":[3],\"data_offsets\":[128,152]}}" 152
st st-unknown-field.st "{$W,$B,$OW,\"out.bias\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[128,140],\"x\":1}}" 140
st st-missing.st "{$W,$B,$OW}" 128
st st-extra.st "{$W,$B,$OW,$OB,\"z\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[140,144]}}" 144
st st-wrong-shape.st "{$W,$B,$OW,\"out.bias\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[128,136]}}" 136
st st-transposed.st "{$W,$B,\"out.weight\":{\"dtype\":\"F32\",\"shape\":[3,4],\"data_offsets\":[80,128]},$OB}" 140
st st-huge-dim.st "{$W,$B,$OW,\"out.bias\":{\"dtype\":\"F32\",\"shape\":[99999999999],\"data_offsets\":[128,140]}}" 140
st st-big-number.st "{$W,$B,$OW,\"out.bias\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[128,99999999999999999999]}}" 140
st st-escape.st "{$W,$B,$OW,\"out.bi\\u0061s\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[128,140]}}" 140
st st-control.st "$(printf '{"h.weight\001":{}}')" 0
st st-trailing.st "{$W,$B,$OW,$OB} x" 140
st st-unterminated.st '{"h.weight' 0
st st-metadata-number.st "{\"__metadata__\":{\"a\":1},$W,$B,$OW,$OB}" 140
st st-array.st '[1,2,3]' 0
# values: NaN and infinity in a bias (F32 bytes of 0x7fc00000 and 0xff800000, little-endian)
st st-nan.st "{$W,$B,$OW,$OB}" 128
{ bytes 0 0 192 127; bytes 0 0 0 0; bytes 0 0 0 0; } >> st-nan.st
st st-inf.st "{$W,$B,$OW,$OB}" 128
{ bytes 0 0 0 0; bytes 0 0 128 255; bytes 0 0 0 0; } >> st-inf.st
# dnic's own weights, damaged: a bit in the header, in the data, in the length, in the checksum
"$DNIC" csv.dni --run --no-progress --save-weights good.st > /dev/null
hlen=$(od -An -tu8 -N8 good.st | tr -d ' ')
cp good.st st-flip-header.st; flip st-flip-header.st 100 4
cp good.st st-flip-data.st; flip st-flip-data.st $((8 + hlen + 5)) 1
cp good.st st-flip-length.st; flip st-flip-length.st 2 1
cp good.st st-flip-checksum.st; flip st-flip-checksum.st 40 64
head -c $(($(wc -c < good.st) - 4)) good.st > st-cut.st

# ---- checkpoints --------------------------------------------------------------------------------
"$DNIC" csv.dni --run --no-progress --checkpoint ck.st > /dev/null
"$DNIC" csv.dni --run --no-progress --set layer.h.activation=relu --checkpoint ck-other.st > /dev/null
"$DNIC" csv.dni --run --no-progress --set train.batch=1 --checkpoint ck-batch.st > /dev/null
hlen=$(od -An -tu8 -N8 ck.st | tr -d ' ')
cp ck.st ck-flip-header.st; flip ck-flip-header.st 200 2
cp ck.st ck-flip-data.st; flip ck-flip-data.st $((8 + hlen + 3)) 8
head -c 100 ck.st > ck-cut.st
: > ck-empty.st
mv good.st st-good.st; rm -f ck.st
mkfifo fifo.dni
