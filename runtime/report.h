/* Message formatting shared by the runtime: report numbers and file errors. */
#ifndef DNIC_REPORT_H
#define DNIC_REPORT_H

#include <stddef.h>

/* Formats v as Python 2's str(float) does ("%.12g", with ".0" added to integral values), so
 * report lines read exactly like the seeds'. */
void dnic_format_py2(char *buf, size_t size, double v);

#include "dnic/program.h"

/* Formats a file error into err (when err is not NULL) and returns DNIC_ERR_IO: the one way the
 * runtime's readers and writers say what went wrong and where. */
dnic_status dnic_io_error(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
