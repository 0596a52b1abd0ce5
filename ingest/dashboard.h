/* dashboard.h: the status page served at / (ingest/dashboard.html), its
 * bytes embedded into sparkscaled at build time by ingest/embed.cmake. */
#ifndef SS_DASHBOARD_H
#define SS_DASHBOARD_H

#include <stddef.h>

extern const unsigned char ss_dashboard_html[];  /* NUL-terminated */
extern const size_t ss_dashboard_html_len;        /* without the NUL */

#endif
