/* ctl.h: the parts of sparkscalectl: subcommands and record printing. */
#ifndef SS_CTL_H
#define SS_CTL_H

#include "lib/bus/reader.h"
#include "lib/bus/record.h"

/* Prints one record (text line, or JSON object when json != 0) to stdout. */
void ctl_print_error(int json, const ss_bus_record *rec, const char *what, int rc);
void ctl_print_decision(int json, const ss_bus_record *rec, const ss_decision *d);
void ctl_print_result(int json, const ss_bus_record *rec, const ss_actuation_result *r);

/* Prints "sparkscalectl: <fmt with arg>", the usage, and exits 2. */
void ctl_usage_error(const char *usage, const char *fmt, const char *arg)
    __attribute__((noreturn));

/* Subcommands: argv[0] is the subcommand's name. Return the exit status. */
int ctl_audit(int argc, char **argv);
int ctl_replay(int argc, char **argv);

#endif
