/* experiments/report/rp_common: small readers the reports share. */
#ifndef RP_COMMON_H
#define RP_COMMON_H

#include <cjson/cJSON.h>

#include "core/dg_err.h"

/* Parse a JSON file; NULL with the path in err if it is missing or not JSON. Free with cJSON_Delete. */
cJSON *rp_read_json(const char *path, dg_err *err);

#endif
