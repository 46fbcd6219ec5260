/* Report formatting shared by `dnic --run` and the emitted objects' helpers. */
#ifndef DNIC_REPORT_H
#define DNIC_REPORT_H

#include <stddef.h>

/* Formats v as Python 2's str(float) does ("%.12g", with ".0" added to integral values), so
 * report lines read exactly like the seeds'. */
void dnic_format_py2(char *buf, size_t size, double v);

#endif
