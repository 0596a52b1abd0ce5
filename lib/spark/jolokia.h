/* jolokia.h: builds Jolokia bulk read requests and decodes their answers into
 * (Dropwizard registry name, attribute, number) samples. Pure: no I/O.
 * Protocol: Jolokia 2.x (protocol 8.x) JSON over HTTP; shapes in tests/fixtures/jolokia/. */
#ifndef SS_SPARK_JOLOKIA_H
#define SS_SPARK_JOLOKIA_H

#include <stddef.h>
#include <stdint.h>

/* The MBean patterns for a driver's ExecutorAllocationManager. Spark 3 names
 * MBeans metrics:name=<registry name>,type=gauges|counters. Spark 2 has no
 * type key, and neither has Spark 3 when the name needs quoting (a
 * spark.metrics.namespace with , = : or "): Dropwizard then falls back to
 * metrics:name="<quoted>" alone. The type-less pattern matches only those. */
#define SS_JOLOKIA_EAM_GAUGES   "metrics:name=*.driver.ExecutorAllocationManager.executors.*,type=gauges"
#define SS_JOLOKIA_EAM_COUNTERS "metrics:name=*.driver.ExecutorAllocationManager.executors.*,type=counters"
#define SS_JOLOKIA_EAM_UNTYPED  "metrics:name=*.driver.ExecutorAllocationManager.executors.*"

/* Hard bounds. */
#define SS_JOLOKIA_MAX_INPUT    (64u << 20)   /* bytes of a response */
#define SS_JOLOKIA_MAX_ITEMS    4096          /* requests in one bulk */
#define SS_JOLOKIA_MAX_SAMPLES  100000        /* samples in one item */
#define SS_JOLOKIA_MAX_NAME     4096          /* bytes of an ObjectName or a key value */
#define SS_JOLOKIA_MAX_TEXT     1024          /* error texts are cut to this */

typedef struct ss_jolokia_read {
    const char *mbean;        /* ObjectName or pattern */
    const char *attribute;    /* e.g. "Value"; NULL: every attribute */
    int ignore_errors;        /* adds "config":{"ignoreErrors":true}: without it one MBean
                                 whose attribute throws fails the whole pattern read (500) */
} ss_jolokia_read;

/* Builds the bulk body: a JSON array with one {"type":"read","mbean":..,
 * "attribute":..[,"config":{"ignoreErrors":true}]} per read, in order. On success returns 0 and *out is a
 * NUL-terminated string the caller frees with free(); *out_len (if not NULL)
 * is its length. Returns -EINVAL (n == 0, n > SS_JOLOKIA_MAX_ITEMS, a NULL or
 * non-UTF-8 mbean), or -ENOMEM. */
int ss_jolokia_build_read(const ss_jolokia_read *reads, size_t n, char **out, size_t *out_len);

typedef struct ss_jolokia_sample {
    char *mbean;              /* the ObjectName as Jolokia gave it */
    char *name;               /* its name= value, unquoted: the registry name,
                                 "<namespace>.driver.ExecutorAllocationManager.executors.<gauge>" */
    char *type;               /* its type= value ("gauges", "counters"), NULL when absent */
    char *attribute;          /* "Value", "Count", ... */
    int is_int;               /* value came as a JSON integer (ivalue exact) */
    int64_t ivalue;
    double value;             /* always set, finite */
} ss_jolokia_sample;

typedef struct ss_jolokia_item {
    int status;               /* the item's own status: 200, or 4xx/5xx (HTTP may still be 200) */
    char *error_type;         /* on failure: e.g. "javax.management.InstanceNotFoundException"; else NULL */
    char *error;              /* on failure: Jolokia's message (cut to SS_JOLOKIA_MAX_TEXT); else NULL */
    char *request_mbean;      /* the request's mbean as echoed back, NULL if absent */
    int64_t timestamp_s;      /* epoch s, -1 when absent */
    ss_jolokia_sample *samples;
    size_t nsamples;
    size_t skipped;           /* values dropped: null (Jolokia's NaN/Infinity), strings,
                                 ignoreErrors error objects, unparsable or over-long names */
} ss_jolokia_item;

typedef struct ss_jolokia_result {
    ss_jolokia_item *items;   /* in request order (samples within an item: in no set order) */
    size_t nitems;
} ss_jolokia_result;

/* Decodes a bulk answer (a JSON array), or a single answer / a whole-request
 * error (one JSON object: one item). A read of one MBean and one attribute
 * gives "value": n, named after the request; a pattern read gives
 * {"<ObjectName>": {"<attribute>": n}} even for a single match; a read of
 * several attributes gives {"<attribute>": n}. On success returns 0 and
 * *out belongs to the caller (ss_jolokia_result_free). Errors (*out NULL, a
 * message in err when not NULL): -EINVAL, -E2BIG (input or item count over
 * the bounds), -EBADMSG (not JSON: e.g. Jolokia's text/plain 400 page),
 * -EPROTO (JSON of another shape: an item without a numeric status),
 * -ENOMEM. A failed item is not an error of the call: check each status. */
int ss_jolokia_parse(const char *json, size_t len, ss_jolokia_result **out, char *err, size_t errlen);

void ss_jolokia_result_free(ss_jolokia_result *r);

/* Splits an ObjectName "domain:k=v,k2=\"quoted\"" (len bytes, not NUL-terminated)
 * and returns the unquoted value of key (JMX quoting: \" \\ \* \? \n inside
 * "..."), malloc'd (caller frees), or NULL if the key is absent, the name is
 * malformed (a NUL byte included) or over SS_JOLOKIA_MAX_NAME bytes, or memory
 * ran out. */
char *ss_jolokia_objectname_key(const char *objectname, size_t len, const char *key);

#endif
