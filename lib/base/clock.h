/* clock.h: the two clocks the daemons use: wall time (what carbon timestamps
 * and decisions carry) and monotonic time (latency and timeouts). */
#ifndef SS_CLOCK_H
#define SS_CLOCK_H
#include <stdint.h>

int64_t ss_wall_ms(void);  /* CLOCK_REALTIME, milliseconds since the epoch */
int64_t ss_mono_us(void);  /* CLOCK_MONOTONIC, microseconds */

#endif
