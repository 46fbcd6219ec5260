/* Crash-safe file writes: every file dnic writes goes through here.  The bytes go to
 * "PATH.tmp-XXXXXX" beside PATH, are flushed to disk (fsync) and renamed over PATH, and the
 * rename is made durable (fsync of the directory); a reader sees the old file or the new one,
 * never half of one.  Opening also removes the temporaries of PATH that a killed writer left
 * (no live writer holds their lock), so they never accumulate.
 *
 *     dnic_atomic_file a;
 *     char err[256];
 *     if (dnic_atomic_open(&a, "w.st", err, sizeof err) != DNIC_OK) return puts(err);
 *     fwrite(buf, 1, n, a.f);
 *     if (dnic_atomic_commit(&a, err, sizeof err) != DNIC_OK) puts(err);  // or dnic_atomic_discard(&a)
 */
#ifndef DNIC_ATOMIC_FILE_H
#define DNIC_ATOMIC_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "dnic/program.h"

/* Ownership: the struct owns f, tmp and path until dnic_atomic_commit or dnic_atomic_discard,
 * which free them (both may be called on a zeroed or already finished struct). */
typedef struct dnic_atomic_file {
    FILE *f;      /* write the contents here */
    char *tmp;    /* the temporary's name, NULL once finished */
    char *path;   /* the target */
    bool synced;  /* dnic_atomic_sync has flushed everything to disk */
} dnic_atomic_file;

/* Removes the stale temporaries of `path`, then creates and locks a new one (mode 0666 less
 * the umask, as fopen would). */
dnic_status dnic_atomic_open(dnic_atomic_file *a, const char *path, char *err, size_t errlen);
/* Flushes the contents to disk but keeps the temporary (and its lock) until commit: to write
 * several files and rename them all at the end.  On failure the temporary is removed. */
dnic_status dnic_atomic_sync(dnic_atomic_file *a, char *err, size_t errlen);
/* Syncs (if not done), renames over the target and syncs the directory.  On failure the
 * temporary is removed and the target left as it was. */
dnic_status dnic_atomic_commit(dnic_atomic_file *a, char *err, size_t errlen);
/* Closes and removes the temporary; the target is left as it was. */
void dnic_atomic_discard(dnic_atomic_file *a);

/* mkdir -p: creates dir and its missing parents (mode 0755); false with errno set. */
bool dnic_make_dirs(const char *dir);

/* Removes the temporaries "PATH.tmp-??????" of `path` that no live writer holds; returns how
 * many were removed. */
int dnic_atomic_clean(const char *path);

/* For the crash-safety test only (tests/e2e/crash.sh, through DNIC_TEST_KILL_AT=N:STAGE): the
 * process's N-th commit (from 1) kills the process with SIGKILL at STAGE: 0 before its data is
 * flushed, 1 when synced but not renamed, 2 after the rename. */
void dnic_atomic_test_kill(long commit, int stage);

#endif
