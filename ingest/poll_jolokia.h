/* poll_jolokia.h: what sparkscaled asks a Spark driver's Jolokia agent and
 * what it does with the answer: one bulk read of the driver's
 * ExecutorAllocationManager gauges and counters (Spark 3 and Spark 2 MBean
 * names), decoded by lib/spark/jolokia.h; each sample named as its carbon
 * path would be (carbon/spark_path.h) and stored through pipeline_put, so
 * nothing downstream can tell a Jolokia app from a carbon one. No I/O. */
#ifndef SS_POLL_JOLOKIA_H
#define SS_POLL_JOLOKIA_H

#include <stddef.h>
#include <stdint.h>

#include "ingest/pipeline.h"
#include "ingest/poll_sched.h"

/* The bulk request body every poll sends: four pattern reads, with
 * ignoreErrors (one gauge that throws must not hide the others):
 *   metrics:name=*.driver.ExecutorAllocationManager.executors.*,type=gauges    Value
 *   ...,type=counters                                                          Count
 *   metrics:name=*.driver.ExecutorAllocationManager.executors.*   (no type)   Value, Count
 * The type-less pair matches Spark 2, and Spark 3 names that needed quoting.
 * On success *out is malloc'd (caller frees) and 0 is returned. */
int poll_jolokia_body(char **out, size_t *len);

/* The URL to POST for a configured agent URL: as is, or with "/jolokia/"
 * when it has no path ("http://driver:8778"). malloc'd; NULL = no memory. */
char *poll_jolokia_url(const char *base);

typedef struct poll_jolokia_counts {
    size_t reads_ok;          /* reads answered with status 200 */
    size_t reads_absent;      /* 404 InstanceNotFound: no MBean matches that pattern */
    size_t reads_failed;      /* any other inner status */
    size_t samples;           /* numbers read */
    size_t stored;            /* samples the store took (pipeline_put >= 0) */
    size_t skipped;           /* names that are not ExecutorAllocationManager paths,
                                 values the decoder dropped, store rejections */
} poll_jolokia_counts;

/* Judges one 2xx answer (body, len bytes) of a driver of cluster c: stores
 * its samples (timestamped with the read's own timestamp, else now) through
 * pipe and fills *counts. Returns
 *   POLL_OK           every read answered or matched nothing, samples stored;
 *   POLL_PARTIAL      some reads failed, the others' samples are stored;
 *   POLL_READ_FAILED  every read that matched something failed;
 *   POLL_NO_MBEANS    no pattern matched: the driver has not registered its
 *                     ExecutorAllocationManager (not started yet, dynamic
 *                     allocation off, or no JmxSink);
 *   POLL_BAD_JSON     not a Jolokia answer (message in err);
 *   POLL_ERROR        out of memory.
 * err gets the first failed read's error when there is one. */
poll_result poll_jolokia_answer(ss_pipeline *pipe, int c, const char *body, size_t len,
                                poll_jolokia_counts *counts, char *err, size_t errlen);

#endif
