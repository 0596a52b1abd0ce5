/* test_policy_sim.c: replays tests/fixtures/policy/trace.txt through
 * policy_evaluate on a modelled Spark standalone cluster, second by second. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"

#define MAX_APPS 8
#define MAX_T 4096
#define MAX_SEGS 16
#define MAX_WORKERS 512
#define MAX_EXEC 1024
#define NOT_SEEN (-1)

#define W_S 60        /* scale-down window of the simulated cluster */
#define OSC_MAX_RESIZES 2
#define PLATEAU_MAX_RESIZES 4

typedef struct trace {
    int napps;
    char ids[MAX_APPS][64];
    int n;                        /* seconds */
    int target[MAX_T][MAX_APPS];  /* NOT_SEEN = '-' */
    int outage[MAX_T];
    int seg[MAX_T];
    int nsegs;
    char seg_name[MAX_SEGS][32];
} trace;

static trace tr;

static FILE *open_fixture(void)
{
    const char *rel = "tests/fixtures/policy/trace.txt";
    char path[1024];
    const char *src = getenv("SS_SOURCE_DIR");
    if (src) {
        snprintf(path, sizeof(path), "%s/%s", src, rel);
        FILE *f = fopen(path, "r");
        if (f)
            return f;
    }
    /* __FILE__ is .../tests/unit/test_policy_sim.c under CMake */
    snprintf(path, sizeof(path), "%s", __FILE__);
    char *cut = strstr(path, "tests/unit/");
    if (cut) {
        snprintf(cut, sizeof(path) - (size_t)(cut - path), "%s", rel);
        FILE *f = fopen(path, "r");
        if (f)
            return f;
    }
    return fopen(rel, "r");
}

static void load_trace(void)
{
    FILE *f = open_fixture();
    assert_non_null(f);
    memset(&tr, 0, sizeof(tr));
    int seg = -1;
    char line[512];
    while (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\r\n")] = 0;
        if (line[0] == '#' || line[0] == 0)
            continue;
        char *save = NULL;
        char *tok = strtok_r(line, " ", &save);
        if (strcmp(tok, "apps") == 0) {
            while ((tok = strtok_r(NULL, " ", &save)) && tr.napps < MAX_APPS)
                snprintf(tr.ids[tr.napps++], sizeof(tr.ids[0]), "%s", tok);
            continue;
        }
        if (strcmp(tok, "segment") == 0) {
            tok = strtok_r(NULL, " ", &save);
            assert_non_null(tok);
            assert_true(tr.nsegs < MAX_SEGS);
            seg = tr.nsegs++;
            snprintf(tr.seg_name[seg], sizeof(tr.seg_name[0]), "%s", tok);
            continue;
        }
        assert_true(tr.n < MAX_T);
        assert_int_equal(atoi(tok), tr.n);   /* one line per second, in order */
        for (int a = 0; a < tr.napps; a++) {
            tok = strtok_r(NULL, " ", &save);
            assert_non_null(tok);
            tr.target[tr.n][a] = strcmp(tok, "-") == 0 ? NOT_SEEN : atoi(tok);
        }
        tok = strtok_r(NULL, " ", &save);
        tr.outage[tr.n] = tok && strcmp(tok, "!") == 0;
        tr.seg[tr.n] = seg;
        tr.n++;
    }
    fclose(f);
    assert_true(tr.napps > 0 && tr.n > 0);
}

static int seg_index(const char *name)
{
    for (int i = 0; i < tr.nsegs; i++)
        if (strcmp(tr.seg_name[i], name) == 0)
            return i;
    fail_msg("segment %s missing from the trace", name);
    return -1;
}

/* ---- the modelled cluster ---- */

typedef struct cluster {
    int e;                          /* executors per worker */
    int idle_timeout_s;             /* executorIdleTimeout */
    int alive[MAX_WORKERS];
    int execs[MAX_WORKERS];         /* executors on each worker */
    int nalive;
    int running[MAX_APPS];
    int placed[MAX_APPS][MAX_EXEC]; /* worker of each executor, LIFO */
    int over_since[MAX_APPS];       /* second the target fell below running; -1 */
    int busy_removed;               /* busy workers the resize would have killed */
} cluster;

static void resize(cluster *c, int want)
{
    for (int i = 0; c->nalive < want && i < MAX_WORKERS; i++)
        if (!c->alive[i]) {
            c->alive[i] = 1;
            c->execs[i] = 0;
            c->nalive++;
        }
    /* the actuator removes idle workers only, newest first */
    for (int i = MAX_WORKERS - 1; c->nalive > want && i >= 0; i--)
        if (c->alive[i] && c->execs[i] == 0) {
            c->alive[i] = 0;
            c->nalive--;
        }
    if (c->nalive > want)
        c->busy_removed += c->nalive - want;
}

/* Dynamic allocation keeps an executor until it has been idle for
 * spark.dynamicAllocation.executorIdleTimeout (60 s by default): a target
 * that drops leaves the executors running that long; a finished app's
 * executors go at once. */
static void set_running(cluster *c, int app, int want, int now_s, int finished)
{
    if (!finished && c->running[app] > want) {
        if (c->over_since[app] < 0)
            c->over_since[app] = now_s;
        if (now_s - c->over_since[app] < c->idle_timeout_s)
            return;
    }
    c->over_since[app] = -1;
    while (c->running[app] > want) {
        int w = c->placed[app][--c->running[app]];
        c->execs[w]--;
    }
    /* spark.deploy.spreadOut (the default): the least loaded worker first */
    while (c->running[app] < want && c->running[app] < MAX_EXEC) {
        int best = -1;
        for (int i = 0; i < MAX_WORKERS; i++)
            if (c->alive[i] && c->execs[i] < c->e && (best < 0 || c->execs[i] < c->execs[best]))
                best = i;
        if (best < 0)
            return;
        c->execs[best]++;
        c->placed[app][c->running[app]++] = best;
    }
}

static int busy_workers(const cluster *c)
{
    int n = 0;
    for (int i = 0; i < MAX_WORKERS; i++)
        n += c->alive[i] && c->execs[i] > 0;
    return n;
}

/* ---- the replay ---- */

typedef struct run {
    int desired[MAX_T];
    int current[MAX_T];
    int busy[MAX_T];
    int rec[MAX_T];
    int64_t demand[MAX_T];
    policy_reason reason[MAX_T];
    int below_busy;
    int busy_removed;
    int64_t worker_seconds;
    int static_size;
} run;

static run rr;

/* master != 0: a Spark master is polled every 5 s, and its answer shows
 * which apps have ended (a finished app leaves its activeapps at once). */
static void replay_with(const policy_conf *conf, int restart_at, int idle_timeout_s, int master)
{
    static cluster c;
    memset(&c, 0, sizeof(c));
    memset(&rr, 0, sizeof(rr));
    c.e = 2;
    c.idle_timeout_s = idle_timeout_s;
    for (int a = 0; a < MAX_APPS; a++)
        c.over_since[a] = -1;
    policy_app apps[MAX_APPS];
    int seen[MAX_APPS] = {0};
    memset(apps, 0, sizeof(apps));
    policy_input in;
    memset(&in, 0, sizeof(in));
    in.conf = conf;
    in.worker_cores = 4;
    in.worker_memory_mb = 8192;
    in.executor_cores = 2;
    in.executor_memory_mb = 4096;
    in.apps = apps;
    const int64_t t0 = 1795253400000LL;
    policy_state st;
    policy_state_init(&st, t0);
    policy_result res;
    int64_t last_data = 0;
    int desired = conf->min_workers;

    for (int t = 0; t < tr.n; t++) {
        int64_t now = t0 + (int64_t)t * 1000;
        resize(&c, desired);
        int64_t sum = 0;
        for (int a = 0; a < tr.napps; a++) {
            int v = tr.target[t][a];
            if (v == NOT_SEEN) {
                if (!tr.outage[t])
                    set_running(&c, a, 0, t, 1);   /* finished or not started */
                if (master && seen[a] && !tr.outage[t] && t % 5 == 0)
                    apps[a].ended = 1;
                continue;
            }
            if (!seen[a]) {
                seen[a] = 1;
                apps[a].id = tr.ids[a];
                apps[a].start_ms = policy_app_start_ms(tr.ids[a], now);
                apps[a].max_needed_executors = -1;
                in.napps = (size_t)a + 1;
            }
            apps[a].target_executors = v;
            apps[a].last_seen_ms = now;
            set_running(&c, a, v, t, 0);
            apps[a].all_executors = c.running[a];   /* numberAllExecutors */
            sum += v;
        }
        /* the master feed reports every second unless the whole feed is out */
        if (!tr.outage[t])
            last_data = now;
        if (t == restart_at) {
            policy_state_init(&st, now);   /* the daemon restarts: store empty */
            last_data = 0;
        }
        int need = (int)((sum + c.e - 1) / c.e) + conf->idle_workers;
        if (need > conf->max_workers)
            need = conf->max_workers;
        if (need > rr.static_size)
            rr.static_size = need;

        in.current_workers = c.nalive;
        in.busy_workers = busy_workers(&c);
        in.last_data_ms = last_data;
        in.now_ms = now;
        assert_int_equal(policy_evaluate(&in, &st, &res), 0);
        assert_true(res.desired >= 0);
        if (res.desired < in.busy_workers)
            rr.below_busy++;
        rr.desired[t] = res.desired;
        rr.current[t] = c.nalive;
        rr.busy[t] = in.busy_workers;
        rr.rec[t] = res.recommendation;
        rr.demand[t] = res.demand_executors;
        rr.reason[t] = res.reason;
        if (getenv("SS_SIM_TRACE"))
            print_message("t=%d cur=%d busy=%d demand=%lld rec=%d -> %d %s\n", t, c.nalive,
                          in.busy_workers, (long long)res.demand_executors,
                          res.recommendation, res.desired, res.reason_text);
        rr.worker_seconds += c.nalive;
        desired = res.desired;
    }
    rr.busy_removed = c.busy_removed;
}

static void replay(const policy_conf *conf, int restart_at, int idle_timeout_s)
{
    replay_with(conf, restart_at, idle_timeout_s, 0);
}

static policy_conf sim_conf(policy_idle_mode mode)
{
    policy_conf conf;
    memset(&conf, 0, sizeof(conf));
    conf.idle_mode = mode;
    conf.min_workers = 1;
    conf.max_workers = 40;
    conf.idle_workers = 1;
    conf.scale_down_window_s = W_S;
    conf.stale_after_s = 30;
    conf.app_expiry_s = 120;
    conf.tolerance_executors = 1;
    return conf;
}

static int resizes_in(int seg)
{
    int n = 0;
    for (int t = 0; t < tr.n; t++)
        if (tr.seg[t] == seg && rr.desired[t] != rr.current[t])
            n++;
    return n;
}

/* Replays the trace and checks the bars. idle_timeout_s is Spark's
 * executorIdleTimeout: 60 s (the default) lets executors outlive short dips,
 * so busy workers mask them; a short one makes busy follow the demand and
 * leaves the oscillation to the window alone. */
static void check_replay_conf(int idle_timeout_s, policy_conf conf, int master)
{
    load_trace();
    print_message("executorIdleTimeout %d s, W %d s, idle over %s, idle release %d s%s\n",
                  idle_timeout_s, W_S,
                  conf.idle_mode == POLICY_IDLE_OVER_NEED ? "need: max(N + I, A)"
                                                          : "busy: max(N, A) + I",
                  conf.idle_release_s, master ? ", master polled" : "");
    replay_with(&conf, -1, idle_timeout_s, master);

    /* 1. never below busy, and so never a busy worker removed */
    print_message("evaluations %d, desired < busy: %d, busy workers removed: %d\n", tr.n,
                  rr.below_busy, rr.busy_removed);
    assert_int_equal(rr.below_busy, 0);
    assert_int_equal(rr.busy_removed, 0);

    /* 2. worker-seconds against a static cluster sized for the peak */
    double ratio = (double)rr.worker_seconds / ((double)rr.static_size * tr.n);
    print_message("worker-seconds %lld vs static %d x %d s = %lld: ratio %.3f (bar 0.60)\n",
                  (long long)rr.worker_seconds, rr.static_size, tr.n,
                  (long long)rr.static_size * tr.n, ratio);
    assert_true(ratio <= 0.60);

    /* 3. after a lasting drop the size settles within W */
    int events = 0;
    for (int t = 1; t < tr.n; t++) {
        if (rr.rec[t] >= rr.rec[t - 1])
            continue;
        int end = t + W_S + 5;
        if (end >= tr.n)
            break;
        int hi = 0, lasting = 1;
        for (int s = t; s <= end; s++) {
            if (rr.rec[s] > rr.rec[t])
                lasting = 0;
            if (rr.rec[s] > hi)
                hi = rr.rec[s];
        }
        if (!lasting)
            continue;
        int last_change = t;
        for (int s = t; s <= end; s++)
            if (rr.desired[s] != rr.current[s])
                last_change = s;
        print_message("drop at %4d s: rec %d -> %d, desired %d -> %d, settled after %d s\n", t,
                      rr.rec[t - 1], rr.rec[t], rr.desired[t - 1], rr.desired[end],
                      last_change - t);
        assert_true(last_change - t <= W_S + 2);   /* one bucket + one evaluation */
        /* down to the new level; tolerance may keep ceil(tol / E) more */
        assert_true(rr.desired[end] <= hi + (conf.tolerance_executors + 1) / 2);
        events++;
    }
    assert_true(events >= 2);

    /* 4. an oscillation faster than W barely resizes */
    int osc = resizes_in(seg_index("oscillation"));
    int plateau = resizes_in(seg_index("plateau"));
    print_message("resizes: oscillation %d (bar %d), plateau with jitter %d (bar %d)\n", osc,
                  OSC_MAX_RESIZES, plateau, PLATEAU_MAX_RESIZES);
    assert_true(osc <= OSC_MAX_RESIZES);
    assert_true(plateau <= PLATEAU_MAX_RESIZES);

    /* 5. the outage held the size */
    int stale = 0;
    for (int t = 1; t < tr.n; t++) {
        if (rr.reason[t] != POLICY_R_HOLD_STALE)
            continue;
        stale++;
        assert_int_equal(rr.desired[t], rr.current[t]);
    }
    print_message("stale holds during the outage: %d\n", stale);
    assert_true(stale >= 10);
}

static void check_replay(int idle_timeout_s, policy_idle_mode mode)
{
    check_replay_conf(idle_timeout_s, sim_conf(mode), 0);
}

/* The defaults of issue 13: idle over need, ended apps out at once (the
 * master is polled), and an idle cluster released without the window. */
static policy_conf new_default_conf(void)
{
    policy_conf conf = sim_conf(POLICY_IDLE_OVER_NEED);
    conf.idle_release_s = 5;
    return conf;
}

/* Spark's defaults and the original rule (README, "The decision"). */
static void test_replay_spark_default(void **unused)
{
    (void)unused;
    check_replay(60, POLICY_IDLE_OVER_BUSY);
}

/* Executors released after 2 s idle: busy workers follow the dips, and the
 * oscillation is left to the window. Idle over need: see the next test. */
static void test_replay_fast_release(void **unused)
{
    (void)unused;
    check_replay(2, POLICY_IDLE_OVER_NEED);
}

/* The new defaults, with Spark's executorIdleTimeout and with a fast one:
 * the same bars (the window still absorbs the oscillation, the outage
 * holds), and fewer worker-seconds than the original rule. */
static void test_replay_new_default(void **unused)
{
    (void)unused;
    load_trace();
    policy_conf old_conf = sim_conf(POLICY_IDLE_OVER_BUSY);
    replay(&old_conf, -1, 60);
    int64_t old_ws = rr.worker_seconds;
    check_replay_conf(60, new_default_conf(), 1);
    print_message("worker-seconds: new defaults %lld, original rule %lld\n",
                  (long long)rr.worker_seconds, (long long)old_ws);
    assert_true(rr.worker_seconds * 10 < old_ws * 8);   /* at least 20% fewer */
    check_replay_conf(2, new_default_conf(), 1);
}

/* Why idle_mode exists: with executor churn, max(N, A) + I ratchets. Each
 * relaunch spreads executors over the idle worker (Spark picks the workers
 * with the most free cores first), A becomes the whole cluster and I is
 * added again. The growth stops at one worker per executor plus I, and no
 * busy worker is ever at risk; this pins down that bound. */
static void test_over_busy_ratchet_is_bounded(void **unused)
{
    (void)unused;
    load_trace();
    policy_conf conf = sim_conf(POLICY_IDLE_OVER_BUSY);
    replay(&conf, -1, 2);
    int seg = seg_index("oscillation");
    int peak_exec = 0, peak_desired = 0;
    for (int t = 0; t < tr.n; t++) {
        if (tr.seg[t] != seg)
            continue;
        if (rr.demand[t] > peak_exec)
            peak_exec = (int)rr.demand[t];
        if (rr.desired[t] > peak_desired)
            peak_desired = rr.desired[t];
    }
    int osc = resizes_in(seg);
    print_message("idle over busy, executorIdleTimeout 2 s: oscillation resizes %d, peak %d "
                  "workers for %d executors (need %d + %d idle)\n", osc, peak_desired, peak_exec,
                  (peak_exec + 1) / 2, conf.idle_workers);
    assert_int_equal(rr.below_busy, 0);
    assert_int_equal(rr.busy_removed, 0);
    assert_true(peak_desired <= peak_exec + conf.idle_workers);
}

/* Same trace with a daemon restart 10 s before the plain run first shrinks
 * after the burst: nothing shrinks for a window after the restart, then it
 * does, and the run still never goes below busy. */
static void test_replay_restart(void **unused)
{
    (void)unused;
    load_trace();
    policy_conf conf = sim_conf(POLICY_IDLE_OVER_BUSY);
    replay(&conf, -1, 60);
    int burst = -1, first_shrink = -1;
    for (int t = 0; t < tr.n && burst < 0; t++)
        if (tr.seg[t] == seg_index("burst"))
            burst = t;
    for (int t = burst; t < tr.n && first_shrink < 0; t++)
        if (rr.desired[t] < rr.current[t])
            first_shrink = t;
    assert_true(burst > 0 && first_shrink > burst + 10);
    int at = first_shrink - 10;

    replay(&conf, at, 60);
    assert_int_equal(rr.reason[at], POLICY_R_HOLD_NO_DATA);
    for (int t = at; t < at + W_S - 1; t++)
        assert_true(rr.desired[t] >= rr.current[t]);
    int shrank = -1;
    for (int t = at + W_S - 1; t <= at + W_S + 2 && shrank < 0; t++)
        if (rr.desired[t] < rr.current[t])
            shrank = t;
    print_message("plain run first shrinks at %d s; restart at %d s holds %d workers, "
                  "first shrink at %d s\n", first_shrink, at, rr.current[at], shrank);
    assert_true(shrank > 0);
    assert_int_equal(rr.below_busy, 0);
    assert_int_equal(rr.busy_removed, 0);
}

/* The restart test again under the new defaults: the idle release never
 * beats restart safety. */
static void test_replay_restart_new_default(void **unused)
{
    (void)unused;
    load_trace();
    policy_conf conf = new_default_conf();
    for (int at = 380; at <= 940; at += 40) {
        replay_with(&conf, at, 60, 1);
        for (int t = at; t < at + W_S - 1 && t < tr.n; t++)
            if (rr.desired[t] < rr.current[t])
                fail_msg("restart at %d s: shrank at %d s (%d -> %d)", at, t, rr.current[t],
                         rr.desired[t]);
        assert_int_equal(rr.below_busy, 0);
        assert_int_equal(rr.busy_removed, 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replay_spark_default),
        cmocka_unit_test(test_replay_new_default),
        cmocka_unit_test(test_replay_restart_new_default),
        cmocka_unit_test(test_replay_fast_release),
        cmocka_unit_test(test_over_busy_ratchet_is_bounded),
        cmocka_unit_test(test_replay_restart),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
