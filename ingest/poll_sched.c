/* poll_sched.c: result classes, poll timing and HA rounds of the pollers.
 * Pure: no clock, no I/O; randomness comes from the caller's state. */
#include "ingest/poll_sched.h"

#include "lib/http/client.h"

static const char *const result_names[POLL_RESULT_COUNT] = {
    [POLL_OK] = "ok",
    [POLL_TIMEOUT] = "timeout",
    [POLL_CONNECT] = "connect",
    [POLL_DNS] = "dns",
    [POLL_TLS] = "tls",
    [POLL_HTTP_3XX] = "http_3xx",
    [POLL_HTTP_4XX] = "http_4xx",
    [POLL_HTTP_5XX] = "http_5xx",
    [POLL_TOO_LARGE] = "too_large",
    [POLL_PROTOCOL] = "protocol",
    [POLL_BAD_JSON] = "bad_json",
    [POLL_STANDBY] = "standby",
    [POLL_RECOVERING] = "recovering",
    [POLL_PARTIAL] = "partial",
    [POLL_READ_FAILED] = "read_failed",
    [POLL_NO_MBEANS] = "no_mbeans",
    [POLL_ERROR] = "error",
};

const char *poll_result_name(poll_result r)
{
    return (unsigned)r < POLL_RESULT_COUNT ? result_names[r] : "?";
}

poll_result poll_classify_http(int http_result, int status)
{
    switch (http_result) {
    case SS_HTTP_RES_OK:
        if (status >= 200 && status < 300)
            return POLL_OK;
        if (status >= 300 && status < 400)
            return POLL_HTTP_3XX;
        if (status >= 400 && status < 500)
            return POLL_HTTP_4XX;
        if (status >= 500 && status < 600)
            return POLL_HTTP_5XX;
        return POLL_PROTOCOL;   /* 1xx as final status, or nonsense */
    case SS_HTTP_RES_TIMEOUT:   return POLL_TIMEOUT;
    case SS_HTTP_RES_CONNECT:   return POLL_CONNECT;
    case SS_HTTP_RES_DNS:       return POLL_DNS;
    case SS_HTTP_RES_TLS:       return POLL_TLS;
    case SS_HTTP_RES_TOO_LARGE: return POLL_TOO_LARGE;
    case SS_HTTP_RES_PROTOCOL:  return POLL_PROTOCOL;
    default:                    return POLL_ERROR;
    }
}

int poll_result_backs_off(poll_result r)
{
    switch (r) {
    case POLL_OK:
    case POLL_PARTIAL:
    case POLL_STANDBY:
    case POLL_RECOVERING:
    case POLL_NO_MBEANS:
        return 0;
    default:
        return 1;
    }
}

int64_t poll_first_delay_ms(size_t index, size_t n, int64_t period_ms)
{
    if (n == 0 || period_ms <= 0 || index >= n)
        return 0;
    /* index * period / n without overflow for any realistic n and period. */
    return (int64_t)((double)index * (double)period_ms / (double)n);
}

static uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s ? *s : 0x9e3779b97f4a7c15ull;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

int64_t poll_backoff_ms(int64_t period_ms, int64_t max_ms, unsigned failures, uint64_t *rng)
{
    if (period_ms < 1)
        period_ms = 1;
    if (failures <= 1)
        return period_ms;
    int64_t cap = max_ms > period_ms ? max_ms : period_ms;
    int64_t d = period_ms;
    for (unsigned i = 1; i < failures && d < cap; i++)
        d = d > cap / 2 ? cap : d * 2;
    if (d > cap)
        d = cap;
    int64_t lo = d / 2 > period_ms ? d / 2 : period_ms;
    if (lo >= d)
        return d;
    return lo + (int64_t)(xorshift(rng) % (uint64_t)(d - lo + 1));
}

void poll_ha_init(poll_ha *h, unsigned n)
{
    *h = (poll_ha){ .n = n ? n : 1, .outcome = POLL_OK };
}

unsigned poll_ha_begin(poll_ha *h)
{
    h->current = h->preferred;
    h->asked = 0;
    h->standby = h->recovering = 0;
    h->first = POLL_OK;
    return h->current;
}

int poll_ha_answer(poll_ha *h, poll_result r, unsigned *next)
{
    if (h->asked++ == 0)
        h->first = r;
    if (r == POLL_OK) {
        h->preferred = h->current;
        h->outcome = POLL_OK;
        return 0;
    }
    h->standby += r == POLL_STANDBY;
    h->recovering += r == POLL_RECOVERING;
    if (h->asked < h->n) {
        /* The others in configuration order, starting after the preferred. */
        h->current = (h->current + 1) % h->n;
        *next = h->current;
        return 1;
    }
    h->outcome = h->standby ? POLL_STANDBY : h->recovering ? POLL_RECOVERING : h->first;
    return 0;
}
