/* clock.h: the clocks the daemons use: wall time (what carbon timestamps
 * and decisions carry), monotonic time (latency and timeouts) and the loop
 * thread's CPU time (how long a loop turn worked). */
#ifndef SS_CLOCK_H
#define SS_CLOCK_H
#include <stdint.h>

int64_t ss_wall_ms(void);  /* CLOCK_REALTIME, milliseconds since the epoch */
int64_t ss_mono_us(void);  /* CLOCK_MONOTONIC, microseconds */
int64_t ss_thread_cpu_us(void);  /* CPU time of the calling thread, microseconds */

/* Stops the wall clock at ms (> 0) for the whole process, or lets it run
 * again (0). For single-threaded replays and tests only: sparkscalectl
 * replay steps the store and the decider through recorded time with it. */
void ss_wall_set_virtual(int64_t ms);

#endif
