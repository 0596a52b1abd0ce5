/* app.c: what one Spark app contributes to a decision: its demand, whether
 * it still counts, and its start time (the FIFO key) read from its id. */
#include "policy/policy.h"

#include <errno.h>

int policy_app_demand_now(const policy_conf *conf, const policy_app *app)
{
    int d = app->target_executors > 0 ? app->target_executors : 0;
    /* Target already follows minExecutors and maxExecutors; the backlog
     * gauge only ever raises it, so an idle app keeps its minimum. */
    if (conf->demand == POLICY_DEMAND_MAX_NEEDED && app->max_needed_executors > d)
        d = app->max_needed_executors;
    return d;
}

int policy_app_demand(const policy_conf *conf, const policy_app *app)
{
    int d = policy_app_demand_now(conf, app);
    /* Spark's ExecutorAllocationManager raises its target by to-add each
     * second of backlog and doubles to-add after a step it took whole; at
     * its cap (max-needed, or maxExecutors, which no gauge shows) to-add
     * falls back to 1. So to-add > 1 says the next step is coming: ask for
     * it now, the workers start while Spark waits. A step that maxExecutors
     * cuts is asked for once, and held like any demand for the window. */
    if (conf->demand == POLICY_DEMAND_RAMP && app->executors_to_add > 1 &&
        app->max_needed_executors > d) {
        long next = (long)d + app->executors_to_add;
        d = next < app->max_needed_executors ? (int)next : app->max_needed_executors;
    }
    return d;
}

int policy_app_active(const policy_conf *conf, const policy_app *app, int64_t now_ms)
{
    if (app->ended)
        return 0;
    if (conf->app_expiry_s <= 0)
        return 1;
    return now_ms - app->last_seen_ms <= (int64_t)conf->app_expiry_s * 1000;
}

int policy_executors_per_worker(int worker_cores, int worker_memory_mb,
                                int executor_cores, int executor_memory_mb)
{
    if (worker_cores <= 0 || worker_memory_mb <= 0 || executor_cores <= 0 ||
        executor_memory_mb <= 0)
        return -EINVAL;
    int by_cores = worker_cores / executor_cores;
    int by_memory = worker_memory_mb / executor_memory_mb;
    int e = by_cores < by_memory ? by_cores : by_memory;
    return e >= 1 ? e : -EDOM;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
 * days_from_civil). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Reads exactly n digits at s. */
static int digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!is_digit(s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

static int days_in_month(int y, int m)
{
    static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : dim[m - 1];
}

/* Spark standalone Master.newApplicationId:
 * "app-%s-%04d".format(new SimpleDateFormat("yyyyMMddHHmmss").format(submitDate), n) */
static int parse_standalone(const char *s, int64_t *out)
{
    int y, mo, d, h, mi, se;
    if (digits(s, 4, &y) || digits(s + 4, 2, &mo) || digits(s + 6, 2, &d) ||
        digits(s + 8, 2, &h) || digits(s + 10, 2, &mi) || digits(s + 12, 2, &se))
        return -1;
    if (s[14] != '-' || !is_digit(s[15]))
        return -1;
    for (const char *p = s + 15; *p; p++)
        if (!is_digit(*p))
            return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 ||
        se > 60)
        return -1;
    int64_t secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se;
    *out = secs * 1000;
    return 0;
}

/* SparkContext in local mode: "local-" + System.currentTimeMillis. */
static int parse_local(const char *s, int64_t *out)
{
    int64_t v = 0;
    int n = 0;
    for (; s[n]; n++) {
        if (!is_digit(s[n]) || n >= 18)
            return -1;
        v = v * 10 + (s[n] - '0');
    }
    if (n == 0)
        return -1;
    *out = v;
    return 0;
}

int64_t policy_app_start_ms(const char *app_id, int64_t fallback)
{
    int64_t ms;
    if (!app_id)
        return fallback;
    if (app_id[0] == 'a' && app_id[1] == 'p' && app_id[2] == 'p' && app_id[3] == '-')
        return parse_standalone(app_id + 4, &ms) == 0 ? ms : fallback;
    if (app_id[0] == 'l' && app_id[1] == 'o' && app_id[2] == 'c' && app_id[3] == 'a' &&
        app_id[4] == 'l' && app_id[5] == '-')
        return parse_local(app_id + 6, &ms) == 0 ? ms : fallback;
    return fallback;
}
