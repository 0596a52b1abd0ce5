/* clock.c: wall and monotonic clocks, and a settable wall clock for replays. */
#include "lib/base/clock.h"
#include <time.h>

/* > 0: the wall clock stands at this value (ss_wall_set_virtual). */
static int64_t virtual_wall_ms;

int64_t ss_wall_ms(void)
{
    if (virtual_wall_ms > 0)
        return virtual_wall_ms;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void ss_wall_set_virtual(int64_t ms)
{
    virtual_wall_ms = ms > 0 ? ms : 0;
}

int64_t ss_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t ss_thread_cpu_us(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0)
        return 0;
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}
