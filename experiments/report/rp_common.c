/* experiments/report/rp_common: see rp_common.h. */
#include "experiments/report/rp_common.h"

#include <stdlib.h>

#include "core/dg_file.h"

cJSON *rp_read_json(const char *path, dg_err *err) {
    char *text;
    if (dg_read_text(path, "JSON", &text, err) != 0) return NULL;
    cJSON *j = cJSON_Parse(text);
    free(text);
    if (!j) dg_fail(err, "%s: not valid JSON", path);
    return j;
}
