/* digits-report: one self-contained HTML page for a run, an ensemble or an augmentation policy
 * (experiments/report/report_cli.h). */
#include <stdio.h>

#include "core/dg_cli.h"
#include "experiments/report/report_cli.h"

int main(int argc, char **argv) {
    dg_stage_init("digits-report", argv);
    rp_report_cli_opts o;
    dg_err err = {{0}};
    int rc = rp_report_cli_parse(argc, argv, &o, &err);
    if (rc == 0 && o.help) {
        rp_report_cli_usage(stdout);
        return 0;
    }
    if (rc == 0) rc = rp_report_cli_run(&o, &err);
    return dg_cli_exit("digits-report", rc, &err);
}
