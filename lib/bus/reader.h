/* reader.h: a plain blocking reader over whole topics (assign, no group,
 * no commits) for sparkscalectl and tests. Not for the daemon loop. */
#ifndef SS_BUS_READER_H
#define SS_BUS_READER_H

#include <stddef.h>
#include <stdint.h>

#include "lib/base/str.h"


typedef struct ss_bus_reader ss_bus_reader;

typedef struct ss_bus_record {
    const char *topic;         /* valid until the next ss_bus_reader_next */
    int32_t partition;
    int64_t offset;
    const void *key;
    size_t key_len;
    const void *payload;
    size_t len;
    int64_t timestamp_ms;      /* -1 unknown */
} ss_bus_record;

/* A plain consumer (no group membership, nothing committed) assigned to
 * every partition of the given topics, from the beginning or the end. It
 * reads with isolation.level=read_committed: records of open or aborted
 * transactions are never returned (props may override).
 * props (may be NULL) are passed to librdkafka. Blocks up to timeout_ms for
 * the topics' metadata. A topic that does not exist is skipped with a
 * warning; -ENOENT (err names one) if none of them exists.
 * On success *out is the caller's, to close with ss_bus_reader_close. */
int ss_bus_reader_open(const char *brokers, const char *const *topics, size_t ntopics,
                       int from_beginning, const ss_kv *props, size_t nprops, int timeout_ms,
                       ss_bus_reader **out, char *err, size_t errlen);

/* Waits up to timeout_ms (blocking: for CLIs and tests, not the daemon loop).
 * Returns 1 with *rec filled, 0 on timeout, SS_BUS_READER_CAUGHT_UP when
 * every partition has reached its end with nothing newer read since, or a
 * negative error (message in err). */
#define SS_BUS_READER_CAUGHT_UP 2
int ss_bus_reader_next(ss_bus_reader *r, int timeout_ms, ss_bus_record *rec, char *err,
                       size_t errlen);
void ss_bus_reader_close(ss_bus_reader *r);

#endif
