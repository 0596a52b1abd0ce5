/* recorder.h: what sparkscaled ingests, written to a file with its arrival
 * time (ingest.record), for sparkscalectl replay. Off unless configured;
 * bounded by rotation. Single-threaded (the loop); no libuv. */
#ifndef SS_RECORDER_H
#define SS_RECORDER_H

#include <stddef.h>
#include <stdint.h>

/* The recording is text, one record a line, fields separated by one space:
 *   # sparkscale recording v1 ...            a comment (written at each open)
 *   <arrival_ms> c <peer> <carbon line>      a carbon line the pipeline took
 *                                            (path decoded to a configured
 *                                            cluster, sender admitted); peer
 *                                            is the sender's address or "-"
 *   <arrival_ms> m <cluster> <json>          a Spark master's /json/ answer
 *   <arrival_ms> j <cluster> <json>          a Jolokia bulk answer
 * arrival_ms is sparkscaled's wall clock when the data was read, so a replay
 * sees the same ages, staleness and skew checks. Line breaks inside an
 * answer become spaces (JSON whitespace). */
#define SS_RECORDING_MAGIC "# sparkscale recording v1"

typedef struct ss_recorder ss_recorder;

typedef struct ss_recorder_stats {
    uint64_t records;             /* lines written since start */
    uint64_t bytes;               /* bytes written since start */
    uint64_t rotations;
    uint64_t errors;              /* write failures (recording then stops) */
} ss_recorder_stats;

/* Opens path for appending (created 0600 when missing) and writes the
 * header comment. When the file reaches max_bytes it is renamed to
 * path + ".1" (replacing an older one) and a new one is started, so the
 * recording holds at most about 2 * max_bytes. cluster_names (n entries)
 * are borrowed and must outlive the recorder. Returns NULL with a message
 * naming the path and the reason in err. */
ss_recorder *ss_recorder_open(const char *path, uint64_t max_bytes,
                              const char *const *cluster_names, size_t n, char *err,
                              size_t errlen);

/* Flushes and closes; NULL is a no-op. */
void ss_recorder_close(ss_recorder *r);

/* One carbon line (len bytes, no newline) from peer (NULL = "-"). */
void ss_recorder_carbon(ss_recorder *r, int64_t arrival_ms, const char *peer, const char *line,
                        size_t len);

/* One HTTP answer body of cluster index c: kind 'm' (master) or 'j' (Jolokia). */
void ss_recorder_answer(ss_recorder *r, char kind, int64_t arrival_ms, int c, const char *body,
                        size_t len);

/* Pushes buffered records to the file (call about once a second). */
void ss_recorder_flush(ss_recorder *r);

void ss_recorder_get_stats(const ss_recorder *r, ss_recorder_stats *out);

#endif
