/* What a run prints on stdout: a report line per report in the seeds' format (Python 2's
 * float printing) and the closing summary of time, speed, compilation and schedule. */
#include <math.h>
#include <string.h>

#include "cli.h"
#include "codegen.h"
#include "report.h"

/* A run that learns nothing says so once (issue 17): from the second report line on, a test
 * (else validation) accuracy within 1 point of chance, or a loss that moved by less than 1e-6
 * of itself since the previous line.  Each warning says what to try. */
static void warn_if_stuck(cli_reporter *rp, const dnic_report *r, const dnic_report *sum)
{
    const dnic_model *m = rp->m;
    int width = m->layers[m->out].out;
    /* chance: one class in `width` for softmax; one output right or wrong for the others */
    double chance = m->loss == DNIC_LOSS_SOFTMAX_CE ? 1.0 / width : width == 1 ? 0.5 : -1;
    bool has_acc = r->has_test || r->has_validation;
    double acc = r->has_test ? r->test_accuracy : r->val_accuracy;
    const char *grad = m->train.grad_mean ? "another train.lr"
                                          : "train.grad = mean (by default the gradients are summed over the batch, "
                                            "so a PyTorch-style lr is batch times too large), or another train.lr";
    double loss = sum->examples > 0 ? sum->loss / (double)sum->examples : sum->loss;
    if (rp->lines > 0 && rp->d && !rp->warned_chance && has_acc && chance > 0 && fabs(acc - chance) <= 0.01) {
        rp->warned_chance = true;
        dnic_warning(rp->d, (dnic_span){0},
                     "%s accuracy %.2f%% is at chance (%.2f%%) at Iter:%lld: the model is not learning; try %s",
                     r->has_test ? "test" : "validation", 100 * acc, 100 * chance, r->iter, grad);
    }
    if (rp->lines > 0 && rp->d && !rp->warned_still && (loss != 0 || rp->last_loss != 0) &&
        fabs(loss - rp->last_loss) <= 1e-6 * fabs(rp->last_loss)) {
        rp->warned_still = true;
        dnic_warning(rp->d, (dnic_span){0},
                     "the loss changed by less than 1e-6 of itself since the previous report (Iter:%lld): "
                     "training has stalled; try %s",
                     r->iter, grad);
    }
    rp->last_loss = loss;
    rp->lines++;
}

/* Iter:999 Loss:380.142015668 Synthetic Loss:1694.16764408 [h1:... h2:...].  The loss and the
 * synthetic losses are the pass's sums with loss.report_per = sum (the seeds'), otherwise the
 * means per example (the sums divided by the examples they cover); the log gets the same. */
void cli_print_report(void *user, const dnic_report *sum)
{
    cli_reporter *rp = user;
    const dnic_model *m = rp->m;
    char num[64];
    dnic_report mean = *sum;
    mean.elapsed += rp->elapsed_before;
    double sg[sum->nsg > 0 ? sum->nsg : 1];
    if (!m->report_sum && sum->examples > 0) {
        mean.loss = sum->loss / (double)sum->examples;
        for (int s = 0; s < sum->nsg; s++)
            sg[s] = sum->sg_loss[s] / (double)sum->examples;
        mean.sg_loss = sg;
    }
    const dnic_report *r = &mean;
    /* train.warmup: the period in which the layers switched to synthetic gradients says so first */
    long long first = sum->step - sum->examples / m->train.batch, w = m->train.warmup;
    if (w > 0 && m->nsgs > 0 && first <= w && w < sum->step)
        printf("# warm-up over: steps 1 to %lld learnt by backpropagation, the layers learn from synthetic "
               "gradients from step %lld on\n", w, w + 1);
    dnic_format_py2(num, sizeof num, r->loss);
    printf("Iter:%lld Loss:%s", r->iter, num);
    if (r->nsg > 0) {
        /* by default the gradient module nearest the loss (a synthetic input's loss is another thing) */
        int shown = r->nsg - 1;
        while (shown > 0 && m->sgs[shown].input)
            shown--;
        if (m->train.report_sg >= 0)
            shown = m->train.report_sg;
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
    if (r->has_test && m->data.curriculum > 0) /* what the curriculum's threshold is about */
        printf(" wrong bits:%.4g", r->test_errors);
    if (r->probe)
        cli_probe_print(stdout, m, r, m->report_sum);
    putchar('\n');
    fflush(stdout);
    cli_log_row(rp->log, r);
    warn_if_stuck(rp, r, sum);
}

/* # seed_dni: 100000 steps in 1.234 s (81037 steps/s); compile 12.3 ms (...); <plan.why>, e.g.
 * "4.1e+05 flops per step are too few to pay for hand-offs: sequential".  "kernels on N threads"
 * only when some product was split over the pool (codegen.c splits only large ones). */
void cli_print_summary(const dnic_model *m, const dnic_ir *ir, const dnic_train_result *res, const dnic_jit_times *jt,
                       const cli_data_times *dt, const dnic_sched_plan *plan)
{
    char cached[64] = "", kernels[64] = "", resumed[64] = "", truegrad[96] = "", warm[96] = "", data[96];
    snprintf(data, sizeof data, "; data %.1f ms (%.1f ms of CPU", dt->ms, dt->cpu_ms);
    if (dt->cached > 0)
        snprintf(data + strlen(data), sizeof data - strlen(data), "; %d file%s from the cache", dt->cached,
                 dt->cached == 1 ? "" : "s");
    snprintf(data + strlen(data), sizeof data - strlen(data), ")");
    double truecost = dnic_ir_true_cost(ir, -1, NULL), total = 0;
    for (int b = 0; b < ir->nblocks; b++)
        total += !DNIC_PHASE_TRAINS(ir->blocks[b].phase) ? 0 : dnic_ir_block_cost(ir, b);
    if (truecost > 0) /* target = true or mix past a later SG module */
        snprintf(truegrad, sizeof truegrad, "; true gradients %.2g of the step's %.2g flops", truecost, total);
    if (res->steps_run != res->steps) /* resumed: the rate counts only this process's steps */
        snprintf(resumed, sizeof resumed, " (resumed after step %lld)", res->steps - res->steps_run);
    /* the warm-up steps this process ran (a resumed run's first steps may have been them) */
    long long done = res->steps - res->steps_run, w = (m->train.warmup < res->steps ? m->train.warmup : res->steps) - done;
    if (m->train.warmup > 0 && m->nsgs > 0 && w > 0)
        snprintf(warm, sizeof warm, " (the first %lld by backpropagation: warm-up)", w);
    if (dnic_parallel_threads() > 1 && dnic_parallel_splits() > 0)
        snprintf(kernels, sizeof kernels, "; kernels on %d threads", dnic_parallel_threads());
    if (jt->cached > 0)
        snprintf(cached, sizeof cached, "; %d of %d parts from the cache", jt->cached, jt->parts);
    printf("# %s: %lld steps%s%s in %.3f s (%.0f steps/s); compile %.1f ms (%d thread%s: IR %.1f, optimise %.1f, "
           "machine code %.1f ms of CPU%s)%s%s%s; %s\n",
           m->name, res->steps_run, warm, resumed, res->seconds,
           (double)res->steps_run / (res->seconds > 0 ? res->seconds : 1e-9),
           jt->total_ms, jt->threads, jt->threads == 1 ? "" : "s", jt->codegen_ms, jt->optimize_ms, jt->machine_ms,
           cached, data, kernels, truegrad, plan->why);
}
