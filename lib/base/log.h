/* log.h: leveled logging to stderr, one line per event, with a UTC timestamp;
 * when stderr is the systemd journal's stream (JOURNAL_STREAM), with the
 * journal's <priority> prefix instead. Safe to call from any thread (one
 * fprintf per line). */
#ifndef SS_LOG_H
#define SS_LOG_H

typedef enum ss_log_level { SS_LOG_DEBUG, SS_LOG_INFO, SS_LOG_WARN, SS_LOG_ERROR } ss_log_level;

void ss_log_set_level(ss_log_level level);
ss_log_level ss_log_get_level(void);
/* Parses "debug"|"info"|"warn"|"error"; returns -1 if unknown. */
int ss_log_parse_level(const char *name);
void ss_log(ss_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define ss_debug(...) ss_log(SS_LOG_DEBUG, __VA_ARGS__)
#define ss_info(...)  ss_log(SS_LOG_INFO, __VA_ARGS__)
#define ss_warn(...)  ss_log(SS_LOG_WARN, __VA_ARGS__)
#define ss_error(...) ss_log(SS_LOG_ERROR, __VA_ARGS__)

#endif
