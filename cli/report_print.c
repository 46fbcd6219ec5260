/* What a run prints on stdout: a report line per report in the seeds' format (Python 2's
 * float printing) and the closing summary of time, speed, compilation and schedule. */
#include "cli.h"
#include "codegen.h"
#include "report.h"

/* Iter:999 Loss:380.142015668 Synthetic Loss:1694.16764408 [h1:... h2:...] */
void cli_print_report(void *user, const dnic_report *r)
{
    cli_reporter *rp = user;
    const dnic_model *m = rp->m;
    char num[64];
    dnic_format_py2(num, sizeof num, r->loss);
    printf("Iter:%lld Loss:%s", r->iter, num);
    if (r->nsg > 0) {
        int shown = m->train.report_sg >= 0 ? m->train.report_sg : r->nsg - 1;
        dnic_format_py2(num, sizeof num, r->sg_loss[shown]);
        printf(" Synthetic Loss:%s", num);
        if (m->train.report_sg < 0 && r->nsg > 1) {
            printf(" [");
            for (int s = 0; s < r->nsg; s++) {
                dnic_format_py2(num, sizeof num, r->sg_loss[s]);
                printf("%s%s:%s", s ? " " : "", m->sgs[s].name, num);
            }
            printf("]");
        }
    }
    if (r->has_validation)
        printf(" Validation loss:%.6g accuracy:%.2f%%", r->val_loss, 100 * r->val_accuracy);
    if (r->has_test)
        printf(" Test loss:%.6g accuracy:%.2f%%", r->test_loss, 100 * r->test_accuracy);
    putchar('\n');
    fflush(stdout);
    cli_log_row(rp->log, r);
}

/* # seed_dni: 100000 steps in 1.234 s (81037 steps/s); compile 12.3 ms (...); <plan.why>, e.g.
 * "4.1e+05 flops per step are too few to pay for hand-offs: sequential".  "kernels on N threads"
 * only when some product was split over the pool (codegen.c splits only large ones). */
void cli_print_summary(const dnic_model *m, const dnic_train_result *res, const dnic_jit_times *jt,
                       const dnic_sched_plan *plan)
{
    char cached[64] = "", kernels[64] = "", resumed[64] = "";
    if (res->steps_run != res->steps) /* resumed: the rate counts only this process's steps */
        snprintf(resumed, sizeof resumed, " (resumed after step %lld)", res->steps - res->steps_run);
    if (dnic_parallel_threads() > 1 && dnic_parallel_splits() > 0)
        snprintf(kernels, sizeof kernels, "; kernels on %d threads", dnic_parallel_threads());
    if (jt->cached > 0)
        snprintf(cached, sizeof cached, "; %d of %d parts from the cache", jt->cached, jt->parts);
    printf("# %s: %lld steps%s in %.3f s (%.0f steps/s); compile %.1f ms (%d thread%s: IR %.1f, optimise %.1f, "
           "machine code %.1f ms of CPU%s)%s; %s\n",
           m->name, res->steps_run, resumed, res->seconds,
           (double)res->steps_run / (res->seconds > 0 ? res->seconds : 1e-9),
           jt->total_ms, jt->threads, jt->threads == 1 ? "" : "s", jt->codegen_ms, jt->optimize_ms, jt->machine_ms,
           cached, kernels, plan->why);
}
