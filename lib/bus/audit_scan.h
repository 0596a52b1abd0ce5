/* audit_scan.h: reads the tail of audit partitions (read_committed) to find
 * which decisions already have an audit record. Blocking: for the
 * consumer's worker threads and tests, never the loop. Internal to lib/bus. */
#ifndef SS_BUS_AUDIT_SCAN_H
#define SS_BUS_AUDIT_SCAN_H

#include <stddef.h>
#include <stdint.h>

#include "lib/bus/conf.h"
#include "lib/bus/record.h"

typedef struct ss_audit_scanner ss_audit_scanner;

/* What to look for: audit records of decisions of decision_partition with
 * offset >= min_decision_offset, in audit_partition from offset from
 * (RD_KAFKA_OFFSET_BEGINNING = -2 allowed). */
typedef struct ss_audit_scan_req {
    int32_t audit_partition;
    int64_t from;
    const char *decision_topic;   /* records naming another topic do not match */
    int32_t decision_partition;
    int64_t min_decision_offset;
} ss_audit_scan_req;

/* Called for each matching record, in audit order per audit partition;
 * r is borrowed for the call. */
typedef void (*ss_audit_scan_fn)(void *arg, size_t req, const ss_actuation_result *r);

/* A plain consumer (no group, read_committed) on bootstrap with bc's
 * properties. Returns NULL with err set. */
ss_audit_scanner *ss_audit_scanner_new(const ss_bus_conf *bc, const char *bootstrap, char *err,
                                       size_t errlen);

/* Scans topic for the n requests until every audit partition involved is
 * read to its end (the last stable offset), calling fn for matches. ends
 * (n entries, may be NULL) receive the end offset of each request's audit
 * partition. Returns 0, -ETIMEDOUT after timeout_ms, -EIO with err set. */
int ss_audit_scan(ss_audit_scanner *s, const char *topic, const ss_audit_scan_req *reqs, size_t n,
                  int timeout_ms, ss_audit_scan_fn fn, void *arg, int64_t *ends, char *err,
                  size_t errlen);

void ss_audit_scanner_free(ss_audit_scanner *s);

#endif
