/* clock.h: the two clocks the daemons use: wall time (what carbon timestamps
 * and decisions carry) and monotonic time (latency and timeouts). */
#ifndef SS_CLOCK_H
#define SS_CLOCK_H
#include <stdint.h>

int64_t ss_wall_ms(void);  /* CLOCK_REALTIME, milliseconds since the epoch */
int64_t ss_mono_us(void);  /* CLOCK_MONOTONIC, microseconds */

/* Stops the wall clock at ms (> 0) for the whole process, or lets it run
 * again (0). For single-threaded replays and tests only: sparkscalectl
 * replay steps the store and the decider through recorded time with it. */
void ss_wall_set_virtual(int64_t ms);

#endif
