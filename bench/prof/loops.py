"""Splits perf samples of an ahead-of-time compiled dnic model (bench/profile, step 3) by the
kind of loop they fall in, from the disassembly: a loop is the address range of a backward
jump; each sample is charged to the innermost loop holding it, classified by what that loop
does.  Usage: loops.py BINARY PERF.DATA [SYMBOL_PREFIX] [--loops]  (--loops: also the 12 hottest loops)

Classes (by the instructions of the innermost loop):
  sigmoid/exp   calls expf/exp (a vector exp that LLVM scalarised into libm calls)
  scatter       AVX-512 scatters (vscatter*): the W^T copy of matmul_nt
  f64 sum       scalar float64 adds of converted values: the abs_sum / loss report sums
  gemm tile     vector multiplies and adds: the register-tiled matrix products
  other         everything else (elementwise loops, loop control outside loops)
libm's expf itself is reported separately (its own symbol)."""
import collections
import re
import subprocess
import sys

binary, data = [a for a in sys.argv if a != "--loops"][1:3]
show_loops = "--loops" in sys.argv
argv = [a for a in sys.argv if a != "--loops"]
prefix = argv[3] if len(argv) > 3 else "_block"
dis = subprocess.run(["objdump", "-d", "--no-show-raw-insn", binary], capture_output=True, text=True).stdout
funcs, base, cur = {}, {}, None
for line in dis.splitlines():
    m = re.match(r"^([0-9a-f]+) <(.*)>:$", line)
    if m:
        cur = m.group(2) if prefix in m.group(2) else None
        if cur:
            funcs[cur] = []
            base[cur] = int(m.group(1), 16)
        continue
    m = re.match(r"^\s+([0-9a-f]+):\s+(\S+)\s*(.*)$", line)
    if m and cur:
        funcs[cur].append((int(m.group(1), 16), m.group(2), m.group(3)))


def classify(insns):
    text = " ".join(op + " " + args for _, op, args in insns)
    if "exp" in text and "call" in text:
        return "sigmoid/exp (scalarised)"
    if "vscatter" in text:
        return "scatter (W^T copy)"
    if "vcvtss2sd" in text or ("vaddsd" in text and "vmulps" not in text and "vaddps" not in text):
        return "f64 report sum (serial)"
    if re.search(r"vmulp[sd]", text) and re.search(r"vaddp[sd]", text):
        return "gemm tile"
    return "other"


loops = []  # (start, end, func, class)
for f, ins in funcs.items():
    for a, op, args in ins:
        if op.startswith("j"):
            m = re.match(r"([0-9a-f]+) <", args)
            if m and int(m.group(1), 16) <= a:
                start = int(m.group(1), 16)
                body = [x for x in ins if start <= x[0] <= a]
                loops.append((start, a, f, classify(body)))

script = subprocess.run(["perf", "script", "-i", data, "-F", "ip,sym,symoff"], capture_output=True, text=True).stdout
count, per_loop = collections.Counter(), collections.Counter()
total = 0
for line in script.splitlines():
    parts = line.split()
    if len(parts) < 2:
        continue
    total += 1
    sym, _, off = parts[1].partition("+0x")
    if sym.startswith("__exp") or sym == "expf" or sym.startswith("__ieee754_exp"):
        count["libm exp (the calls themselves)"] += 1
        continue
    if sym not in base:
        count["outside the blocks (runtime, kernel)"] += 1
        continue
    ip = base[sym] + int(off or "0", 16)
    inner = [l for l in loops if l[0] <= ip <= l[1]]
    if not inner:
        count["other"] += 1
        continue
    start, end, f, cls = min(inner, key=lambda l: l[1] - l[0])
    count[cls] += 1
    per_loop[(f, start, end, cls)] += 1
print("%-34s %8s %7s" % ("where", "samples", "share"))
for k, v in count.most_common():
    print("%-34s %8d %6.1f%%" % (k, v, 100.0 * v / total))
print("%-34s %8d" % ("total", total))
if show_loops:
    print()
    print("hottest loops (function, address range, class, share; code order follows the ops' order):")
    for (f, a, b, cls), v in per_loop.most_common(12):
        print("  %-14s %6x-%-6x %-26s %5.1f%%" % (f, a, b, cls, 100.0 * v / total))
