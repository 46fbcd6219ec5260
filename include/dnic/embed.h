/* The runtime behind objects emitted by `dnic model.dni -c`: the generated NAME_* functions
 * forward to these.  A model is described by the text the compiler embeds in the object and
 * by its compiled block functions.  Link with -ldnic (pkg-config --libs dnic).
 *
 *     dnic_rt *m = dnic_rt_create(desc, blocks, nblocks);   // weights from the model's seed
 *     double loss = dnic_rt_train_step(m, x, y);            // one batch
 *     dnic_rt_predict(m, x, out, n);                        // any number of rows
 *     if (dnic_rt_save(m, "w.safetensors")) puts(dnic_rt_error(m));
 *     dnic_rt_free(m);
 */
#ifndef DNIC_EMBED_H
#define DNIC_EMBED_H

#include "dnic/program.h"

typedef struct dnic_rt dnic_rt;

/* Returns NULL when out of memory or when desc is not a description this runtime reads. */
dnic_rt *dnic_rt_create(const char *desc, const dnic_block_fn *fns, int nfns);
void dnic_rt_free(dnic_rt *m);
/* 0 on success; otherwise non-zero and dnic_rt_error says why. */
int dnic_rt_load(dnic_rt *m, const char *path);
int dnic_rt_save(const dnic_rt *m, const char *path);
const char *dnic_rt_error(const dnic_rt *m);
/* x: n rows of the model's inputs, y: n rows of outputs, in the model's dtype. */
void dnic_rt_predict(dnic_rt *m, const void *x, void *y, int n);
/* Models with recurrent layers: the values of carried state per row (each such layer's last
 * state, [h | c] for an lstm, side by side in layer order; 0 without such layers), and predict
 * from the states in state (n rows of that size), which it overwrites with the states after
 * each row's last step.  Zero states give dnic_rt_predict's outputs. */
int dnic_rt_state_size(const dnic_rt *m);
void dnic_rt_predict_state(dnic_rt *m, const void *x, void *y, int n, void *state);
/* One training step on one batch (the compiled batch size), exactly as `dnic --run` does one;
 * returns the step's contribution to the report's Loss: its sum over the batch's rows (divide
 * by the batch for the mean per example that `report_per = example` prints). */
double dnic_rt_train_step(dnic_rt *m, const void *x, const void *y);
/* The program inside (for tests and tools). */
dnic_program *dnic_rt_program(dnic_rt *m);

#endif
