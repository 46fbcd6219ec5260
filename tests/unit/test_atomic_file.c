/* runtime/atomic_file.c: a commit replaces the target whole, a discard or a failure leaves it
 * as it was, and opening removes the temporaries dead writers left but not a live writer's. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "atomic_file.h"

static char dir[64];

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/dnic-atomic-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

static char *at(const char *name)
{
    static char buf[4][128];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

static void put(const char *p, const char *text)
{
    FILE *f = fopen(p, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
}

static char *slurp(const char *p)
{
    static char buf[256];
    FILE *f = fopen(p, "r");
    if (!f)
        return NULL;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* The number of entries in dir (besides . and ..). */
static int entries(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "ls -A %s | wc -l", dir);
    FILE *p = popen(cmd, "r");
    int n = -1;
    cr_assert_eq(fscanf(p, "%d", &n), 1);
    pclose(p);
    return n;
}

TestSuite(atomic_file, .init = setup, .fini = teardown);

Test(atomic_file, commit_replaces_the_target_and_leaves_nothing_else)
{
    put(at("w"), "old");
    dnic_atomic_file a;
    char err[256];
    cr_assert_eq(dnic_atomic_open(&a, at("w"), err, sizeof err), DNIC_OK, "%s", err);
    fputs("new", a.f);
    cr_assert_str_eq(slurp(at("w")), "old");
    cr_assert_eq(entries(), 2); /* the target and the temporary */
    cr_assert_eq(dnic_atomic_commit(&a, err, sizeof err), DNIC_OK, "%s", err);
    cr_assert_str_eq(slurp(at("w")), "new");
    cr_assert_eq(entries(), 1);
    cr_assert_null(a.tmp);
}

Test(atomic_file, discard_keeps_the_old_file)
{
    put(at("w"), "old");
    dnic_atomic_file a;
    char err[256];
    cr_assert_eq(dnic_atomic_open(&a, at("w"), err, sizeof err), DNIC_OK, "%s", err);
    fputs("half", a.f);
    dnic_atomic_discard(&a);
    dnic_atomic_discard(&a); /* twice is harmless */
    cr_assert_str_eq(slurp(at("w")), "old");
    cr_assert_eq(entries(), 1);
}

Test(atomic_file, a_missing_directory_is_named)
{
    dnic_atomic_file a;
    char err[256], want[256];
    cr_assert_neq(dnic_atomic_open(&a, at("no/w"), err, sizeof err), DNIC_OK);
    snprintf(want, sizeof want, "cannot write '%s': No such file or directory", at("no/w"));
    cr_assert_str_eq(err, want);
}

Test(atomic_file, stale_temporaries_of_the_target_are_removed)
{
    put(at("w.st.tmp-abcDE9"), "dead");
    put(at("w.st.tmp-000000"), "dead");
    put(at("w.st.tmp-abc"), "not ours: too short");
    put(at("w.st.tmp-abcdefg"), "not ours: too long");
    put(at("w.st.tmp-ab_def"), "not ours: not mkstemp's alphabet");
    put(at("v.st.tmp-abcdef"), "another target's");
    cr_assert_eq(mkfifo(at("w.st.tmp-fifo00"), 0600), 0); /* not a file: left alone, and no hang */
    cr_assert_eq(dnic_atomic_clean(at("w.st")), 2);
    cr_assert_null(slurp(at("w.st.tmp-abcDE9")));
    cr_assert_null(slurp(at("w.st.tmp-000000")));
    cr_assert_eq(entries(), 5);
    /* and opening cleans too */
    put(at("w.st.tmp-zzzzzz"), "dead");
    dnic_atomic_file a;
    char err[256];
    cr_assert_eq(dnic_atomic_open(&a, at("w.st"), err, sizeof err), DNIC_OK, "%s", err);
    cr_assert_null(slurp(at("w.st.tmp-zzzzzz")));
    cr_assert_eq(dnic_atomic_commit(&a, err, sizeof err), DNIC_OK, "%s", err);
    cr_assert_eq(entries(), 6);
}

Test(atomic_file, a_live_writers_temporary_is_left_alone)
{
    /* another process holds a temporary locked, as a writer does until its rename */
    int ready[2], done[2];
    cr_assert_eq(pipe(ready), 0);
    cr_assert_eq(pipe(done), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        dnic_atomic_file a;
        char err[256], c = 0;
        if (dnic_atomic_open(&a, at("w"), err, sizeof err) != DNIC_OK)
            _exit(1);
        fputs("live", a.f);
        (void)!write(ready[1], "x", 1);
        (void)!read(done[0], &c, 1);
        _exit(dnic_atomic_commit(&a, err, sizeof err) == DNIC_OK ? 0 : 2);
    }
    char c;
    cr_assert_eq(read(ready[0], &c, 1), 1);
    cr_assert_eq(dnic_atomic_clean(at("w")), 0);
    cr_assert_eq(entries(), 1);
    cr_assert_eq(write(done[1], "x", 1), 1);
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the writer's commit failed");
    cr_assert_str_eq(slurp(at("w")), "live");
    cr_assert_eq(entries(), 1);
}

Test(atomic_file, a_killed_writers_temporary_goes_at_the_next_write)
{
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        dnic_atomic_file a;
        char err[256];
        if (dnic_atomic_open(&a, at("w"), err, sizeof err) != DNIC_OK)
            _exit(1);
        fputs("never", a.f);
        fflush(a.f);
        raise(SIGKILL);
    }
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFSIGNALED(status));
    cr_assert_eq(entries(), 1); /* the temporary the killed writer left */
    dnic_atomic_file a;
    char err[256];
    cr_assert_eq(dnic_atomic_open(&a, at("w"), err, sizeof err), DNIC_OK, "%s", err);
    fputs("next", a.f);
    cr_assert_eq(dnic_atomic_commit(&a, err, sizeof err), DNIC_OK, "%s", err);
    cr_assert_str_eq(slurp(at("w")), "next");
    cr_assert_eq(entries(), 1);
}
