/* poll_sched.h: the arithmetic of sparkscaled's HTTP pollers, apart from
 * any I/O: how one poll ended (by reason), when an endpoint polls next
 * (first polls spread over the period, exponential backoff with jitter
 * after failures) and which of a cluster's HA masters a round uses. */
#ifndef SS_POLL_SCHED_H
#define SS_POLL_SCHED_H

#include <stddef.h>
#include <stdint.h>

/* How one request of a poller ended. Stable names: they label
 * sparkscale_poll_requests_total{result=...}. */
typedef enum poll_result {
    POLL_OK = 0,          /* answer used (master ALIVE; Jolokia: every read answered) */
    POLL_TIMEOUT,         /* connect or whole-request timeout */
    POLL_CONNECT,         /* refused, unreachable */
    POLL_DNS,             /* name did not resolve */
    POLL_TLS,             /* handshake or certificate */
    POLL_HTTP_3XX,        /* redirects are not followed */
    POLL_HTTP_4XX,
    POLL_HTTP_5XX,
    POLL_TOO_LARGE,       /* body over poll.max_response_kb */
    POLL_PROTOCOL,        /* no reply, a cut reply or not HTTP */
    POLL_BAD_JSON,        /* not JSON, truncated, or JSON of another shape */
    POLL_STANDBY,         /* master answered, but as a STANDBY */
    POLL_RECOVERING,      /* master answered while RECOVERING its state */
    POLL_PARTIAL,         /* Jolokia: some reads of the bulk failed, others answered */
    POLL_READ_FAILED,     /* Jolokia: every read failed (errors inside an HTTP 200) */
    POLL_NO_MBEANS,       /* Jolokia: no ExecutorAllocationManager MBean registered */
    POLL_ERROR,           /* anything else (out of memory, unreadable token file) */
    POLL_RESULT_COUNT
} poll_result;

/* "ok", "timeout", ...; "?" when out of range. */
const char *poll_result_name(poll_result r);

/* A finished HTTP exchange as a result: http_result is an ss_http_result
 * (lib/http/client.h), status the HTTP status when one arrived. RES_OK with
 * 200..299 gives POLL_OK: the caller then judges the body. */
poll_result poll_classify_http(int http_result, int status);

/* Non-zero for results that back off: the endpoint did not answer usefully.
 * STANDBY, RECOVERING (the master is up, a failover is in progress) and
 * Jolokia's NO_MBEANS (the driver is up, its metrics are not registered
 * yet) keep the normal period, as do OK and PARTIAL. */
int poll_result_backs_off(poll_result r);

/* Delay of endpoint index's first poll (0 <= index < n): the n endpoints
 * spread evenly over one period, so many clusters never fire together. */
int64_t poll_first_delay_ms(size_t index, size_t n, int64_t period_ms);

/* Delay until the next poll after failures consecutive failed polls
 * (0 = the last one succeeded): the period for 0 and 1, then
 * d = period * 2^(failures-1) capped at max(max_ms, period), drawn
 * uniformly in [max(d/2, period), d] (jitter, so endpoints that failed
 * together do not retry together). *rng is a xorshift state (non-zero). */
int64_t poll_backoff_ms(int64_t period_ms, int64_t max_ms, unsigned failures, uint64_t *rng);

/* One round over a cluster's master URLs (HA: one ALIVE master, others
 * STANDBY). A round asks the URL that was ALIVE last time first, then the
 * others in configuration order, and stops at the first ALIVE answer. */
typedef struct poll_ha {
    unsigned n;           /* URLs, >= 1 */
    unsigned preferred;   /* the one a round starts with */
    unsigned current;     /* the one being asked */
    unsigned asked;       /* URLs asked this round */
    poll_result first;    /* result of the round's first URL */
    int standby, recovering;   /* answers of that kind this round */
    poll_result outcome;  /* of the last finished round */
} poll_ha;

void poll_ha_init(poll_ha *h, unsigned n);

/* Starts a round: returns the index to ask first. */
unsigned poll_ha_begin(poll_ha *h);

/* Records the current URL's result. Returns 1 with *next set when the round
 * goes on with another URL, 0 when it is over: then h->outcome is POLL_OK
 * (that URL is ALIVE and becomes the preferred one), else POLL_STANDBY if a
 * master answered STANDBY, else POLL_RECOVERING if one was recovering, else
 * the first URL's failure. */
int poll_ha_answer(poll_ha *h, poll_result r, unsigned *next);

#endif
