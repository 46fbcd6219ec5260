/* Placing stages on the ranks of an MPI job (dnic_plan_groups, runtime/sched.c): contiguous
 * groups, every rank at least one stage, the busiest with the least work; and the progress hook
 * of dnic_parallel_for (runtime/parallel.c), which a run over MPI uses to move its messages:
 * called before and between the parts of a product, the parts covering it once. */
#include <criterion/criterion.h>

#include "dnic/program.h"

/* A program with one step block per stage of the given costs (nothing else is read). */
static dnic_program with_costs(dnic_block_desc *blocks, const double *cost, int S)
{
    for (int k = 0; k < S; k++)
        blocks[k] = (dnic_block_desc){.name = "step", .stage = k, .phase = DNIC_PHASE_STEP, .cost = cost[k]};
    return (dnic_program){.blocks = blocks, .nblocks = S, .nstages = S};
}

Test(plan_groups, balanced_contiguous_groups)
{
    dnic_block_desc b[8];
    const double cost[4] = {100, 100, 100, 100};
    dnic_program p = with_costs(b, cost, 4);
    int first[5];
    dnic_plan_groups(&p, 2, first);
    cr_expect(first[0] == 0 && first[1] == 2 && first[2] == 4, "4 equal stages on 2 ranks: 0-1 and 2-3, got %d %d %d",
              first[0], first[1], first[2]);
}

Test(plan_groups, every_rank_gets_a_stage)
{
    /* one stage far costlier than the rest: the cheapest split would leave ranks idle */
    dnic_block_desc b[8];
    const double cost[5] = {1, 1, 1, 1, 1000};
    dnic_program p = with_costs(b, cost, 5);
    int first[6];
    dnic_plan_groups(&p, 5, first);
    for (int r = 0; r < 5; r++)
        cr_expect(first[r + 1] == first[r] + 1, "rank %d runs stages %d..%d", r, first[r], first[r + 1] - 1);
    dnic_plan_groups(&p, 3, first);
    cr_expect(first[0] == 0 && first[3] == 5, "the groups cover the stages");
    for (int r = 0; r < 3; r++)
        cr_expect(first[r + 1] > first[r], "rank %d of 3 has a stage", r);
    cr_expect(first[2] == 4, "the costly stage is alone: %d", first[2]);
}

static int calls;
static long long covered[100];

static void hook(void)
{
    calls++;
}

static void mark(void *ctx, long long lo, long long hi)
{
    (void)ctx;
    for (long long i = lo; i < hi; i++)
        covered[i]++;
}

Test(plan_groups, progress_hook_between_parts)
{
    dnic_parallel_set_threads(1);
    dnic_parallel_set_progress(hook);
    dnic_parallel_for(mark, NULL, 100);
    dnic_parallel_set_progress(NULL);
    for (int i = 0; i < 100; i++)
        cr_expect(covered[i] == 1, "index %d covered %lld times", i, covered[i]);
    cr_expect(calls >= 2, "the hook ran before and between the parts (%d calls)", calls);
    int before = calls;
    dnic_parallel_for(mark, NULL, 100);
    cr_expect(calls == before, "no hook once it is removed");
}
