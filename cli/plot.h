/* Training-log charts: `dnic --plot`-style SVG pictures of the CSV logs `--run --log` writes.
 * C11 + POSIX only (no LLVM, no dnic headers), so its unit test compiles plot.c alone. */
#ifndef DNIC_PLOT_H
#define DNIC_PLOT_H

/* Reads the CSV logs csv_paths[0..n) (header `iter,step,loss,<sg>.sg_loss...,elapsed_s`, plus
 * any further numeric columns such as test_loss and test_accuracy; empty, `nan` and `inf` cells
 * are gaps) and writes one self-contained SVG chart, 900 px wide, to svg_path:
 *   - one panel per numeric column other than iter, step and elapsed_s, in order of first
 *     appearance, except that every `*.sg_loss` column shares one "synthetic gradient losses"
 *     panel (its modules told apart by marker shapes, with a key in the panel's title line),
 *     and so do the columns of each --probe measure (`*.probe_cos`, `*.probe_norm`,
 *     `*.probe_sg_boot`, `*.probe_sg_true`), a panel each;
 *   - x = step (the same range in every panel), y = the column, with nice round ticks, grid
 *     lines and tick labels; the y axis is logarithmic when the panel's values are all positive
 *     and span more than 2 decades;
 *   - one <polyline> per run per column (a gap splits it; a lone point is a dot), colours
 *     distinct for the first 8 runs, then repeated with dash patterns;
 *   - a legend naming each run: labels[i], or when labels or labels[i] is NULL the file's base
 *     name without `.csv`.
 * Returns 0, or 1 after printing `dnic: error: FILE:LINE: message` to stderr for a malformed
 * log (missing header, wrong field count, non-numeric cell, no rows; `dnic: error: FILE: ...`
 * when it cannot be read). The SVG goes to a temporary file renamed over svg_path, so on
 * error nothing is written. */
int dnic_plot(const char *const *csv_paths, const char *const *labels, int n, const char *svg_path);

/* The x axis of a chart: the step (dnic_plot's), or the wall time since training began (the
 * logs' elapsed_s column, labelled "wall time (s)"), where DNI's speed shows. */
typedef enum dnic_plot_xaxis { DNIC_PLOT_X_STEP, DNIC_PLOT_X_TIME } dnic_plot_xaxis;
int dnic_plot_x(const char *const *csv_paths, const char *const *labels, int n, const char *svg_path, dnic_plot_xaxis x);

#endif
