/* main.c: sparkscalectl, the operator tool: dispatches to its subcommands. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/base/log.h"
#include "tools/sparkscalectl/ctl.h"

static const char usage_text[] =
    "usage: sparkscalectl audit --brokers LIST [options]   (sparkscalectl audit --help)\n"
    "       sparkscalectl replay --config FILE --input RECORDING [options]\n"
    "                                                      (sparkscalectl replay --help)\n"
    "       sparkscalectl --help\n"
    "\n"
    "audit:  print the decision bus decoded, one record per line.\n"
    "replay: a recording of sparkscaled (ingest.record), or a policy trace, through\n"
    "        the policy of a configuration; table, chart, and worker-seconds against\n"
    "        a static cluster and the Oshinko rule.\n";

void ctl_usage_error(const char *usage, const char *fmt, const char *arg)
{
    fprintf(stderr, "sparkscalectl: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n\n%s", usage);
    exit(2);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    /* Warnings (a missing topic, brokers refusing connections) go to stderr. */
    ss_log_set_level(SS_LOG_WARN);
    if (argc < 2) {
        fprintf(stderr, "%s", usage_text);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        fputs(usage_text, stdout);
        return 0;
    }
    if (strcmp(argv[1], "audit") == 0)
        return ctl_audit(argc - 1, argv + 1);
    if (strcmp(argv[1], "replay") == 0)
        return ctl_replay(argc - 1, argv + 1);
    ctl_usage_error(usage_text, "unknown command '%s'", argv[1]);
}
