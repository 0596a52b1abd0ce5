/* poll_master.h: what one answer of a Spark standalone master's GET /json/
 * does in sparkscaled. Decoded by lib/spark/master_json.h; an ALIVE
 * master's state replaces its cluster's in the master view and marks the
 * cluster dirty when what the decider reads changed. No I/O: the poller
 * (poller.h) hands the body over. */
#ifndef SS_POLL_MASTER_H
#define SS_POLL_MASTER_H

#include <stddef.h>
#include <stdint.h>

#include "ingest/master_view.h"
#include "ingest/poll_sched.h"
#include "ingest/store.h"

/* The URL to GET for a configured master web UI URL: base + "json/" (with a
 * slash between), or base itself when it already ends in /json or /json/.
 * Returns a malloc'd string (caller frees), NULL when out of memory. */
char *poll_master_url(const char *base);

/* Judges one 2xx answer (body, len bytes) of cluster c's master at url
 * (borrowed; must outlive mv). Returns
 *   POLL_OK          ALIVE: the state is in mv, fetched at now_ms; cluster c
 *                    is marked dirty in store when the ALIVE, busy or idle
 *                    workers changed or the previous state was older than
 *                    max_age_ms (the decider had stopped using it);
 *   POLL_STANDBY     a STANDBY master (or a status this decoder does not know);
 *   POLL_RECOVERING  RECOVERING or COMPLETING_RECOVERY: its workers are not
 *                    all back yet, so its counts would be wrong;
 *   POLL_BAD_JSON    not a master's answer (message in err);
 *   POLL_ERROR       out of memory.
 * Only an ALIVE answer changes mv. */
poll_result poll_master_answer(ss_master_view *mv, ss_store *store, int c, const char *url,
                               const char *body, size_t len, int64_t now_ms,
                               int64_t max_age_ms, char *err, size_t errlen);

#endif
