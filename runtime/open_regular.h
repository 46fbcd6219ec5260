/* Opening a file to read that must be a regular file: a FIFO, a device or a directory given
 * where dnic expects a file is refused at once, without blocking in open() (a FIFO with no
 * writer) or reading forever (/dev/zero).
 *
 *     const char *why;
 *     FILE *f = dnic_open_regular("w.st", &why);
 *     if (!f) printf("cannot open 'w.st': %s\n", why);
 */
#ifndef DNIC_OPEN_REGULAR_H
#define DNIC_OPEN_REGULAR_H

#include <stdio.h>

/* The open file (binary, reading), or NULL with *why: strerror's text or "not a regular file". */
FILE *dnic_open_regular(const char *path, const char **why);

#endif
