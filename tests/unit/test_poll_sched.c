/* test_poll_sched.c: the pollers' arithmetic: results by reason, first polls
 * spread over the period, the backoff schedule and its jitter, HA rounds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "ingest/poll_sched.h"
#include "lib/http/client.h"

static void test_classify(void **state)
{
    (void)state;
    assert_int_equal(poll_classify_http(SS_HTTP_RES_OK, 200), POLL_OK);
    assert_int_equal(poll_classify_http(SS_HTTP_RES_OK, 204), POLL_OK);
    assert_int_equal(poll_classify_http(SS_HTTP_RES_OK, 302), POLL_HTTP_3XX);
    assert_int_equal(poll_classify_http(SS_HTTP_RES_OK, 401), POLL_HTTP_4XX);
    assert_int_equal(poll_classify_http(SS_HTTP_RES_OK, 404), POLL_HTTP_4XX);
    assert_int_equal(poll_classify_http(SS_HTTP_RES_OK, 503), POLL_HTTP_5XX);
    assert_int_equal(poll_classify_http(SS_HTTP_RES_OK, 100), POLL_PROTOCOL);
    assert_int_equal(poll_classify_http(SS_HTTP_RES_TIMEOUT, 0), POLL_TIMEOUT);
    assert_int_equal(poll_classify_http(SS_HTTP_RES_CONNECT, 0), POLL_CONNECT);
    assert_int_equal(poll_classify_http(SS_HTTP_RES_DNS, 0), POLL_DNS);
    assert_int_equal(poll_classify_http(SS_HTTP_RES_TLS, 0), POLL_TLS);
    assert_int_equal(poll_classify_http(SS_HTTP_RES_TOO_LARGE, 200), POLL_TOO_LARGE);
    assert_int_equal(poll_classify_http(SS_HTTP_RES_PROTOCOL, 0), POLL_PROTOCOL);
    assert_int_equal(poll_classify_http(SS_HTTP_RES_OTHER, 0), POLL_ERROR);
    assert_int_equal(poll_classify_http(SS_HTTP_RES_CANCELLED, 0), POLL_ERROR);
    /* Every result has a distinct, stable name. */
    for (int i = 0; i < POLL_RESULT_COUNT; i++) {
        assert_string_not_equal(poll_result_name((poll_result)i), "?");
        for (int k = 0; k < i; k++)
            assert_string_not_equal(poll_result_name((poll_result)i), poll_result_name((poll_result)k));
    }
    assert_string_equal(poll_result_name(POLL_HTTP_5XX), "http_5xx");
    assert_string_equal(poll_result_name(POLL_RESULT_COUNT), "?");
    /* The master is up in STANDBY and the driver in NO_MBEANS: no backoff. */
    assert_false(poll_result_backs_off(POLL_OK));
    assert_false(poll_result_backs_off(POLL_PARTIAL));
    assert_false(poll_result_backs_off(POLL_STANDBY));
    assert_false(poll_result_backs_off(POLL_RECOVERING));
    assert_false(poll_result_backs_off(POLL_NO_MBEANS));
    assert_true(poll_result_backs_off(POLL_TIMEOUT));
    assert_true(poll_result_backs_off(POLL_BAD_JSON));
    assert_true(poll_result_backs_off(POLL_HTTP_5XX));
    assert_true(poll_result_backs_off(POLL_READ_FAILED));
}

/* 1,000 clusters polled every 5 s: one first poll every 5 ms, all within
 * the first period, none at the same millisecond. */
static void test_first_delay_spread(void **state)
{
    (void)state;
    int64_t prev = -1;
    for (size_t i = 0; i < 1000; i++) {
        int64_t d = poll_first_delay_ms(i, 1000, 5000);
        assert_true(d >= 0 && d < 5000);
        assert_true(d > prev);
        prev = d;
    }
    assert_int_equal(poll_first_delay_ms(0, 1000, 5000), 0);
    assert_int_equal(poll_first_delay_ms(500, 1000, 5000), 2500);
    assert_int_equal(poll_first_delay_ms(0, 0, 5000), 0);
    assert_int_equal(poll_first_delay_ms(3, 2, 5000), 0);
    /* Large counts do not overflow. */
    assert_int_equal(poll_first_delay_ms(99999, 100000, 3600000), 3599964);
}

/* Normal period while it works and after one failure; then doubling with
 * jitter in [d/2, d] (never below the period), capped at max_backoff. */
static void test_backoff_schedule(void **state)
{
    (void)state;
    uint64_t rng = 42;
    const int64_t p = 5000, max = 60000;
    assert_int_equal(poll_backoff_ms(p, max, 0, &rng), p);
    assert_int_equal(poll_backoff_ms(p, max, 1, &rng), p);
    for (int round = 0; round < 200; round++) {
        int64_t d2 = poll_backoff_ms(p, max, 2, &rng);
        assert_true(d2 >= 5000 && d2 <= 10000);
        int64_t d3 = poll_backoff_ms(p, max, 3, &rng);
        assert_true(d3 >= 10000 && d3 <= 20000);
        int64_t d4 = poll_backoff_ms(p, max, 4, &rng);
        assert_true(d4 >= 20000 && d4 <= 40000);
        int64_t d5 = poll_backoff_ms(p, max, 5, &rng);
        assert_true(d5 >= 30000 && d5 <= 60000);   /* capped: d = 60 s */
        int64_t dn = poll_backoff_ms(p, max, 4000000000u, &rng);
        assert_true(dn >= 30000 && dn <= 60000);
    }
    /* Jitter: repeated draws differ (endpoints that failed together spread). */
    int64_t seen[8];
    int distinct = 0;
    for (int i = 0; i < 8; i++) {
        seen[i] = poll_backoff_ms(p, max, 6, &rng);
        int dup = 0;
        for (int k = 0; k < i; k++)
            dup |= seen[k] == seen[i];
        distinct += !dup;
    }
    assert_true(distinct >= 6);
    /* A max below the period never polls faster than the period. */
    assert_int_equal(poll_backoff_ms(p, 1000, 7, &rng), p);
    /* A zero rng state still works. */
    uint64_t zero = 0;
    int64_t d = poll_backoff_ms(p, max, 3, &zero);
    assert_true(d >= 10000 && d <= 20000);
}

/* HA: the first ALIVE answer ends the round and is asked first next time;
 * STANDBY ones are skipped; the outcome of a round without an ALIVE master
 * says why. */
static void test_ha_rounds(void **state)
{
    (void)state;
    poll_ha h;
    unsigned next;
    poll_ha_init(&h, 3);
    /* Round 1: 0 STANDBY, 1 refused, 2 ALIVE. */
    assert_int_equal(poll_ha_begin(&h), 0);
    assert_int_equal(poll_ha_answer(&h, POLL_STANDBY, &next), 1);
    assert_int_equal(next, 1);
    assert_int_equal(poll_ha_answer(&h, POLL_CONNECT, &next), 1);
    assert_int_equal(next, 2);
    assert_int_equal(poll_ha_answer(&h, POLL_OK, &next), 0);
    assert_int_equal(h.outcome, POLL_OK);
    /* Round 2 starts at the ALIVE one: one request. */
    assert_int_equal(poll_ha_begin(&h), 2);
    assert_int_equal(poll_ha_answer(&h, POLL_OK, &next), 0);
    assert_int_equal(h.outcome, POLL_OK);
    /* Round 3: failover: 2 is STANDBY now, 0 took over. */
    assert_int_equal(poll_ha_begin(&h), 2);
    assert_int_equal(poll_ha_answer(&h, POLL_STANDBY, &next), 1);
    assert_int_equal(next, 0);
    assert_int_equal(poll_ha_answer(&h, POLL_OK, &next), 0);
    assert_int_equal(h.preferred, 0);
    /* Round 4: none ALIVE, one STANDBY: standby (no backoff). */
    assert_int_equal(poll_ha_begin(&h), 0);
    assert_int_equal(poll_ha_answer(&h, POLL_TIMEOUT, &next), 1);
    assert_int_equal(poll_ha_answer(&h, POLL_STANDBY, &next), 1);
    assert_int_equal(poll_ha_answer(&h, POLL_CONNECT, &next), 0);
    assert_int_equal(h.outcome, POLL_STANDBY);
    assert_int_equal(h.preferred, 0);   /* unchanged without an ALIVE answer */
    /* Round 5: recovering and failures: recovering. */
    poll_ha_begin(&h);
    poll_ha_answer(&h, POLL_RECOVERING, &next);
    poll_ha_answer(&h, POLL_CONNECT, &next);
    assert_int_equal(poll_ha_answer(&h, POLL_CONNECT, &next), 0);
    assert_int_equal(h.outcome, POLL_RECOVERING);
    /* Round 6: all fail: the first URL's failure. */
    poll_ha_begin(&h);
    poll_ha_answer(&h, POLL_DNS, &next);
    poll_ha_answer(&h, POLL_TIMEOUT, &next);
    assert_int_equal(poll_ha_answer(&h, POLL_CONNECT, &next), 0);
    assert_int_equal(h.outcome, POLL_DNS);

    /* One URL: one request per round. */
    poll_ha_init(&h, 1);
    assert_int_equal(poll_ha_begin(&h), 0);
    assert_int_equal(poll_ha_answer(&h, POLL_STANDBY, &next), 0);
    assert_int_equal(h.outcome, POLL_STANDBY);
    assert_int_equal(poll_ha_begin(&h), 0);
    assert_int_equal(poll_ha_answer(&h, POLL_HTTP_5XX, &next), 0);
    assert_int_equal(h.outcome, POLL_HTTP_5XX);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classify),
        cmocka_unit_test(test_first_delay_spread),
        cmocka_unit_test(test_backoff_schedule),
        cmocka_unit_test(test_ha_rounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
