/* Number formatting for report lines, matching the seeds' Python 2 output. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "report.h"

void dnic_format_py2(char *buf, size_t size, double v)
{
    if (isnan(v)) {
        snprintf(buf, size, "nan");
        return;
    }
    if (isinf(v)) {
        snprintf(buf, size, v > 0 ? "inf" : "-inf");
        return;
    }
    snprintf(buf, size, "%.12g", v);
    if (!strpbrk(buf, ".e"))
        strncat(buf, ".0", size - strlen(buf) - 1);
}
