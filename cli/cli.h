/* The dnic command's internal header: its options, the pipeline it drives (driver.c) and its
 * training session (run.c). */
#ifndef DNIC_CLI_H
#define DNIC_CLI_H

#include "dnic.h"

typedef enum dnic_action { DNIC_ACTION_CHECK, DNIC_ACTION_RUN, DNIC_ACTION_OBJECT } dnic_action;

typedef struct dnic_options {
    const char *path;
    const char **overrides;  /* --set texts, in order */
    int noverrides;
    dnic_action action;
    bool dump_ast, dump_ir, emit_dot;
    const char *emit_llvm, *emit_asm;
    const char *out_path, *header_path, *prefix, *cpu, *target; /* -c */
    const char *save_weights, *load_weights, *save_init, *export_data, *log_csv, *save_predictions;
    const char *plot_svg;    /* --plot: the run's curves */
    const char *checkpoint, *resume;
    const char *vary;        /* --vary KEY=V1,V2,... */
    long long checkpoint_every;
    int progress;            /* -1: when stderr is a terminal */
    dnic_schedule schedule;  /* --schedule */
    int threads;             /* --threads (0: the number of cores) */
    bool no_cache;           /* --no-cache: always compile, never read or write the object cache */
} dnic_options;

int dnic_compile(const dnic_options *o);
/* --vary: one run per value, then a comparison table (vary.c). */
int dnic_vary(const dnic_options *o, const char *spec);

struct dnic_jit_times;
/* Compiles the IR, builds the data and trains, printing report lines and a summary. */
int dnic_run(dnic_diag *d, const dnic_model *m, const dnic_ir *ir, const dnic_options *o);
/* -c: the object and header; fills in the default paths and prefix. */
int dnic_object(dnic_diag *d, const dnic_model *m, const dnic_ir *ir, const dnic_options *o);

#endif
