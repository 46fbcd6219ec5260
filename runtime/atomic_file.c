/* Crash-safe writes: a locked temporary beside the target, fsync, rename, fsync of the
 * directory; and the removal of temporaries that killed writers left behind.
 *
 * A live writer holds a POSIX write lock on its temporary from creation to rename, so a
 * temporary nobody holds locked was left by a dead process.  The creator checks, once it holds
 * its lock, that its name still points to its file: if a cleaner took the lock first and removed
 * it (in the instant between mkstemp and the lock), the creator starts over with a new name. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atomic_file.h"
#include "report.h"

static const char SUFFIX[] = ".tmp-";
enum { SUFFIX_LEN = sizeof SUFFIX - 1, RANDOM_LEN = 6 };

/* The directory of path ("." for a bare name) into a new string; *base points into path. */
static char *dir_of(const char *path, const char **base)
{
    const char *slash = strrchr(path, '/');
    *base = slash ? slash + 1 : path;
    if (!slash)
        return strdup(".");
    size_t n = slash == path ? 1 : (size_t)(slash - path);
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, path, n);
        d[n] = '\0';
    }
    return d;
}

static bool lock_file(int fd, bool wait)
{
    struct flock l = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
    int r;
    while ((r = fcntl(fd, wait ? F_SETLKW : F_SETLK, &l)) != 0 && errno == EINTR)
        continue;
    return r == 0;
}

/* Whether `name` is "<base>.tmp-" and six characters of mkstemp's alphabet. */
static bool is_temp_of(const char *name, const char *base)
{
    size_t bl = strlen(base);
    if (strlen(name) != bl + SUFFIX_LEN + RANDOM_LEN || strncmp(name, base, bl) || strncmp(name + bl, SUFFIX, SUFFIX_LEN))
        return false;
    for (const char *c = name + bl + SUFFIX_LEN; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9')))
            return false;
    return true;
}

bool dnic_make_dirs(const char *dir)
{
    char *path = strdup(dir);
    if (!path)
        return false;
    bool ok = true;
    for (char *s = path + 1; *s && ok; s++)
        if (*s == '/') {
            *s = '\0';
            ok = mkdir(path, 0755) == 0 || errno == EEXIST;
            *s = '/';
        }
    ok = ok && (mkdir(path, 0755) == 0 || errno == EEXIST);
    int e = errno;
    free(path);
    errno = e;
    return ok;
}

int dnic_atomic_clean(const char *path)
{
    const char *base;
    char *dir = dir_of(path, &base);
    DIR *dp = dir && *base ? opendir(dir) : NULL;
    int removed = 0;
    if (!dp) {
        free(dir);
        return 0;
    }
    size_t dl = strlen(dir);
    struct dirent *e;
    while ((e = readdir(dp)) != NULL) {
        if (!is_temp_of(e->d_name, base))
            continue;
        char *full = malloc(dl + strlen(e->d_name) + 2);
        if (!full)
            break;
        sprintf(full, "%s/%s", dir, e->d_name);
        /* O_NONBLOCK: a FIFO of that name must not hang us (it is then left alone) */
        int fd = open(full, O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        struct stat st;
        if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && lock_file(fd, false)) {
            /* removed while we hold the lock, so a creator that locks after us sees it gone */
            removed += unlink(full) == 0;
        }
        if (fd >= 0)
            close(fd);
        free(full);
    }
    closedir(dp);
    free(dir);
    return removed;
}

static void finish(dnic_atomic_file *a, bool remove)
{
    if (a->f)
        fclose(a->f);
    if (remove && a->tmp)
        unlink(a->tmp);
    free(a->tmp);
    free(a->path);
    *a = (dnic_atomic_file){0};
}

dnic_status dnic_atomic_open(dnic_atomic_file *a, const char *path, char *err, size_t errlen)
{
    *a = (dnic_atomic_file){0};
    dnic_atomic_clean(path);
    size_t n = strlen(path) + SUFFIX_LEN + RANDOM_LEN + 1;
    a->path = strdup(path);
    a->tmp = malloc(n);
    if (!a->path || !a->tmp) {
        finish(a, false);
        return dnic_io_error(err, errlen, "cannot write '%s': out of memory", path);
    }
    mode_t mask = umask(0);
    umask(mask);
    for (int attempt = 0; attempt < 100; attempt++) {
        snprintf(a->tmp, n, "%s%sXXXXXX", path, SUFFIX);
        int fd = mkstemp(a->tmp);
        if (fd < 0)
            break;
        struct stat mine, named;
        bool held = lock_file(fd, true) && fstat(fd, &mine) == 0;
        if (held && (stat(a->tmp, &named) != 0 || named.st_ino != mine.st_ino || named.st_dev != mine.st_dev)) {
            close(fd); /* a cleaner removed it before we locked it: another name */
            continue;
        }
        if (held && fchmod(fd, 0666 & ~mask) == 0 && (a->f = fdopen(fd, "wb")) != NULL)
            return DNIC_OK;
        int e = errno;
        close(fd);
        unlink(a->tmp);
        errno = e;
        break;
    }
    dnic_status s = dnic_io_error(err, errlen, "cannot write '%s': %s", path, strerror(errno ? errno : EIO));
    free(a->tmp);
    a->tmp = NULL;
    finish(a, false);
    return s;
}

dnic_status dnic_atomic_sync(dnic_atomic_file *a, char *err, size_t errlen)
{
    if (a->synced)
        return DNIC_OK;
    errno = 0;
    bool ok = a->f && fflush(a->f) == 0 && !ferror(a->f) && fsync(fileno(a->f)) == 0;
    if (ok) {
        a->synced = true;
        return DNIC_OK;
    }
    int e = errno;
    struct stat st;
    if (!e && a->f && fstat(fileno(a->f), &st) == 0 && pwrite(fileno(a->f), "", 1, st.st_size) < 0)
        e = errno; /* an earlier fwrite failed and its errno is gone: ask the disk again (the temporary goes anyway) */
    dnic_status s = dnic_io_error(err, errlen, "cannot write '%s': %s", a->path ? a->path : "?", strerror(e ? e : EIO));
    finish(a, true);
    return s;
}

/* The crash test's hook (dnic_atomic_test_kill): which commit of this process dies, and where. */
static atomic_long kill_commit, commits;
static atomic_int kill_stage;

void dnic_atomic_test_kill(long commit, int stage)
{
    atomic_store(&kill_stage, stage);
    atomic_store(&kill_commit, commit);
}

static void maybe_die(bool chosen, int stage)
{
    if (chosen && atomic_load(&kill_stage) == stage)
        raise(SIGKILL);
}

/* Makes a rename in path's directory durable. */
static void sync_dir(const char *path)
{
    const char *base;
    char *dir = dir_of(path, &base);
    int fd = dir ? open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    free(dir);
}

dnic_status dnic_atomic_commit(dnic_atomic_file *a, char *err, size_t errlen)
{
    long k = atomic_load(&kill_commit);
    bool die = k > 0 && atomic_fetch_add(&commits, 1) + 1 == k;
    maybe_die(die, 0); /* the temporary holds what stdio has flushed so far */
    dnic_status s = dnic_atomic_sync(a, err, errlen);
    if (s != DNIC_OK)
        return s;
    maybe_die(die, 1); /* complete and synced, not renamed */
    if (rename(a->tmp, a->path) != 0) {
        s = dnic_io_error(err, errlen, "cannot write '%s': %s", a->path, strerror(errno));
        finish(a, true);
        return s;
    }
    maybe_die(die, 2); /* renamed, the directory not synced */
    sync_dir(a->path);
    finish(a, false); /* closing releases the lock, after the rename */
    return DNIC_OK;
}

void dnic_atomic_discard(dnic_atomic_file *a)
{
    finish(a, true);
}
