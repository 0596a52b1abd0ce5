/* cli.h: the command line both daemons share: --config FILE,
 * --check-config, --log-level LEVEL, --help, --version; loading the
 * configuration (the file, or the embedded defaults) and applying the
 * log level. Messages go to stderr prefixed with the program's name. */
#ifndef SS_CLI_H
#define SS_CLI_H

#include <stdio.h>

#include "lib/config/config.h"

#define SS_VERSION "0.1.0"

typedef struct ss_cli {
    const char *prog;          /* "sparkscaled", "sparkscale-actuator" */
    const char *config_path;   /* NULL = the embedded defaults */
    const char *log_level;     /* NULL = the configuration's */
    int check;                 /* --check-config */
} ss_cli;

/* Parses argv into cli (prog set by the caller). Returns -1 to go on, else
 * the exit status: 0 after --help or --version, 2 on a usage error. */
int ss_cli_parse(ss_cli *cli, int argc, char **argv, void (*usage)(FILE *out));

/* The configuration, or NULL after saying why (exit status 1). */
ss_config *ss_cli_load(const ss_cli *cli);

/* With --check-config: prints the configuration, says it is valid, frees
 * it and returns 0. Otherwise applies the log level (2 and cfg freed if it
 * is unknown), ignores SIGPIPE and returns -1 to go on. */
int ss_cli_setup(const ss_cli *cli, ss_config *cfg);

#endif
