/* Daemon configuration: defaults, file parsing, printing.
 *
 * The format is a tiny INI dialect (docs/internal-spec.md). Every error names
 * FILE:LINE, what is wrong and what would be accepted, because a daemon that
 * refuses to start with a vague message is worse than one with no config. */
#include "daemon/config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#define KIB 1024ULL
#define MIB (1024ULL * KIB)
#define GIB (1024ULL * MIB)
#define MAX_CHUNK_SIZE (64ULL * GIB)
#define MAX_CHUNK_COUNT 16777216U

/* ---- limits table: one row per key, so parse, validate and print agree ---- */

typedef struct limit_key {
    const char *name;
    size_t offset; /* into shoal_config_limits_t */
    uint32_t min, max;
    const char *comment;
} limit_key_t;

#define LIMIT(field, lo, hi, text) \
    { #field, offsetof(shoal_config_limits_t, field), lo, hi, text }

static const limit_key_t limit_keys[] = {
    LIMIT(processes, 1, 4096, "registered processes at once"),
    LIMIT(publishers, 1, 65536, "publisher ports at once"),
    LIMIT(subscribers, 1, 65536, "subscriber ports at once"),
    LIMIT(servers, 1, 65536, "server ports at once"),
    LIMIT(clients, 1, 65536, "client ports at once"),
    LIMIT(services, 1, 65536, "distinct topic/service names"),
    LIMIT(chunks_per_port, 1, 65536, "chunks one port may hold (loaned or taken, not released)"),
    LIMIT(waitsets_per_process, 1, 64, "waitsets one process may have at once"),
    LIMIT(queue_capacity, 1, 65536, "default and maximum receive-queue capacity per port"),
    /* upper bound checked against queue_capacity after the whole file is read */
    LIMIT(history, 0, 65536, "max history a publisher may keep (<= queue_capacity)"),
};
#define LIMIT_KEY_COUNT (sizeof limit_keys / sizeof limit_keys[0])
#define HISTORY_INDEX (LIMIT_KEY_COUNT - 1)
#define QUEUE_CAPACITY_INDEX (LIMIT_KEY_COUNT - 2)

static uint32_t *limit_field(shoal_config_limits_t *l, const limit_key_t *k) {
    return (uint32_t *)((char *)l + k->offset);
}

static uint32_t limit_value(const shoal_config_limits_t *l, const limit_key_t *k) {
    return *(const uint32_t *)((const char *)l + k->offset);
}

void shoal_config_defaults(shoal_config_t *cfg) {
    static const shoal_config_pool_t pools[] = {
        {64, 4096}, {1 * KIB, 1024}, {16 * KIB, 256}, {256 * KIB, 64}, {1 * MIB, 32}, {16 * MIB, 8},
    };
    memset(cfg, 0, sizeof *cfg);
    cfg->limits.processes = 128;
    cfg->limits.publishers = 1024;
    cfg->limits.subscribers = 1024;
    cfg->limits.servers = 1024;
    cfg->limits.clients = 1024;
    cfg->limits.services = 1024;
    cfg->limits.chunks_per_port = 64;
    cfg->limits.queue_capacity = 256;
    cfg->limits.history = 16;
    cfg->limits.waitsets_per_process = 64;
    cfg->pool_count = (uint32_t)(sizeof pools / sizeof pools[0]);
    memcpy(cfg->pools, pools, sizeof pools);
    snprintf(cfg->source, sizeof cfg->source, "%s", "(built-in defaults)");
}

/* ---- numbers ---------------------------------------------------------------- */

typedef enum num_status {
    NUM_OK = 0,
    NUM_EMPTY,
    NUM_NOT_A_NUMBER, /* does not start with a digit */
    NUM_OVERFLOW,     /* does not fit 64 bits */
    NUM_BAD_SUFFIX,   /* digits followed by something we do not know */
} num_status_t;

/* Strict unsigned decimal: no sign, no spaces, no hex; `end` gets the rest. */
static num_status_t parse_digits(const char *s, uint64_t *out, const char **end) {
    uint64_t v = 0;
    if (!isdigit((unsigned char)*s)) return NUM_NOT_A_NUMBER;
    for (; isdigit((unsigned char)*s); s++) {
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10) return NUM_OVERFLOW;
        v = v * 10 + d;
    }
    *out = v;
    *end = s;
    return NUM_OK;
}

static num_status_t parse_size_status(const char *text, uint64_t *out) {
    const char *p = text, *rest;
    uint64_t v, mult = 1;
    while (isspace((unsigned char)*p)) p++;
    if (!*p) return NUM_EMPTY;
    num_status_t st = parse_digits(p, &v, &rest);
    if (st != NUM_OK) return st;
    while (*rest == ' ' || *rest == '\t') rest++; /* "1 M" is fine */
    if (*rest) {
        switch (toupper((unsigned char)*rest)) {
        case 'K': mult = KIB; break;
        case 'M': mult = MIB; break;
        case 'G': mult = GIB; break;
        default: return NUM_BAD_SUFFIX;
        }
        rest++;
        /* K or KiB only; "KB" is refused because it could mean 1000 */
        if ((rest[0] == 'i' || rest[0] == 'I') && (rest[1] == 'b' || rest[1] == 'B')) rest += 2;
    }
    while (isspace((unsigned char)*rest)) rest++;
    if (*rest) return NUM_BAD_SUFFIX;
    if (v > UINT64_MAX / mult) return NUM_OVERFLOW;
    *out = v * mult;
    return NUM_OK;
}

int shoal_config_parse_size(const char *text, uint64_t *out) {
    uint64_t v;
    if (!text || !out) return -1;
    if (parse_size_status(text, &v) != NUM_OK) return -1;
    *out = v;
    return 0;
}

/* Plain count: digits only (limits and chunk counts take no suffixes). */
static num_status_t parse_count(const char *s, uint64_t *out) {
    const char *end;
    if (!*s) return NUM_EMPTY;
    num_status_t st = parse_digits(s, out, &end);
    if (st != NUM_OK) return st;
    return *end ? NUM_BAD_SUFFIX : NUM_OK;
}

/* Largest of G/M/K that divides exactly, so printing round-trips. */
static void format_size(uint64_t v, char *buf, size_t len) {
    if (v && v % GIB == 0) snprintf(buf, len, "%lluG", (unsigned long long)(v / GIB));
    else if (v && v % MIB == 0) snprintf(buf, len, "%lluM", (unsigned long long)(v / MIB));
    else if (v && v % KIB == 0) snprintf(buf, len, "%lluK", (unsigned long long)(v / KIB));
    else snprintf(buf, len, "%llu", (unsigned long long)v);
}

/* Human total for comments: "4 MiB", "1.5 GiB". */
static void format_bytes(uint64_t v, char *buf, size_t len) {
    static const char *units[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    double d = (double)v;
    unsigned u = 0;
    while (d >= 1024.0 && u + 1 < sizeof units / sizeof units[0]) {
        d /= 1024.0;
        u++;
    }
    if (u == 0) snprintf(buf, len, "%llu bytes", (unsigned long long)v);
    else if (d == (double)(uint64_t)d) snprintf(buf, len, "%llu %s", (unsigned long long)d, units[u]);
    else snprintf(buf, len, "%.1f %s", d, units[u]);
}

/* ---- parser ------------------------------------------------------------------ */

typedef struct parser {
    const char *path;
    unsigned line;
    char *err;
    size_t errlen;
} parser_t;

__attribute__((format(printf, 2, 3))) static int fail(parser_t *p, const char *fmt, ...) {
    if (p->err && p->errlen) {
        int n = p->line ? snprintf(p->err, p->errlen, "%s:%u: ", p->path, p->line)
                        : snprintf(p->err, p->errlen, "%s: ", p->path);
        if (n >= 0 && (size_t)n < p->errlen) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
            va_end(ap);
        }
    }
    return -1;
}

static char *trim(char *s) {
    while (isspace((unsigned char)*s)) s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1])) s[--n] = '\0';
    return s;
}

/* Edit distance, capped, for "did you mean" hints on misspelled keys. */
static unsigned edit_distance(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    unsigned row[64];
    if (la >= 63 || lb >= 63) return 99;
    for (size_t j = 0; j <= lb; j++) row[j] = (unsigned)j;
    for (size_t i = 1; i <= la; i++) {
        unsigned diag = row[0];
        row[0] = (unsigned)i;
        for (size_t j = 1; j <= lb; j++) {
            unsigned up = row[j];
            unsigned cost = tolower((unsigned char)a[i - 1]) == tolower((unsigned char)b[j - 1]) ? 0 : 1;
            unsigned best = diag + cost;
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

static void known_keys(char *buf, size_t len) {
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < LIMIT_KEY_COUNT && used < len; i++) {
        int n = snprintf(buf + used, len - used, "%s%s", i ? ", " : "", limit_keys[i].name);
        if (n < 0) break;
        used += (size_t)n;
    }
}

static const char *num_problem(num_status_t st) {
    switch (st) {
    case NUM_EMPTY: return "is empty";
    case NUM_NOT_A_NUMBER: return "is not a number";
    case NUM_OVERFLOW: return "is too large";
    case NUM_BAD_SUFFIX: return "has trailing characters";
    default: return "is invalid";
    }
}

enum { SEC_NONE = 0, SEC_LIMITS, SEC_POOLS };

typedef struct parse_state {
    int section;
    unsigned section_line[3]; /* where [limits]/[pools] started; 0 = not seen */
    unsigned key_line[LIMIT_KEY_COUNT];
    unsigned pool_line[SHOAL_CONFIG_MAX_POOLS];
    uint32_t pool_count;
    shoal_config_pool_t pools[SHOAL_CONFIG_MAX_POOLS];
} parse_state_t;

static int parse_section(parser_t *p, parse_state_t *st, char *s) {
    char *close = strchr(s, ']');
    if (!close)
        return fail(p, "section header '%s' has no closing ']' (write [limits] or [pools])", s);
    *close = '\0';
    char *rest = trim(close + 1);
    char *name = trim(s + 1);
    if (*rest)
        return fail(p, "unexpected '%s' after section header [%s] (put nothing but a comment after it)",
                    rest, name);
    int sec;
    if (strcmp(name, "limits") == 0) sec = SEC_LIMITS;
    else if (strcmp(name, "pools") == 0) sec = SEC_POOLS;
    else return fail(p, "unknown section [%s] (known: [limits], [pools])", name);
    if (st->section_line[sec])
        return fail(p, "section [%s] appears twice, first on line %u (merge them into one)", name,
                    st->section_line[sec]);
    st->section = sec;
    st->section_line[sec] = p->line;
    return 0;
}

static int parse_limit(parser_t *p, parse_state_t *st, shoal_config_limits_t *lim, const char *key,
                       const char *val) {
    size_t i;
    for (i = 0; i < LIMIT_KEY_COUNT; i++)
        if (strcmp(key, limit_keys[i].name) == 0) break;
    if (i == LIMIT_KEY_COUNT) {
        char known[256];
        known_keys(known, sizeof known);
        for (size_t j = 0; j < LIMIT_KEY_COUNT; j++)
            if (edit_distance(key, limit_keys[j].name) <= 2)
                return fail(p, "unknown key '%s' in [limits] (did you mean '%s'? known: %s)", key,
                            limit_keys[j].name, known);
        return fail(p, "unknown key '%s' in [limits] (known: %s)", key, known);
    }
    const limit_key_t *k = &limit_keys[i];
    if (st->key_line[i])
        return fail(p, "duplicate key '%s' in [limits], already set on line %u (keep one of them)",
                    key, st->key_line[i]);
    uint64_t v;
    num_status_t ns = parse_count(val, &v);
    if (ns != NUM_OK)
        return fail(p, "value '%s' of limits.%s %s (write a whole number %u..%u)", val, key,
                    num_problem(ns), k->min, k->max);
    if (v < k->min || v > k->max)
        return fail(p, "limits.%s = %llu is out of range (allowed %u..%u)", key,
                    (unsigned long long)v, k->min, k->max);
    *limit_field(lim, k) = (uint32_t)v;
    st->key_line[i] = p->line;
    return 0;
}

static int parse_pool(parser_t *p, parse_state_t *st, const char *key, const char *val) {
    uint64_t size, count;
    num_status_t ns = parse_size_status(key, &size);
    if (ns == NUM_OVERFLOW || (ns == NUM_OK && size > MAX_CHUNK_SIZE))
        return fail(p, "pool chunk size '%s' is too large (allowed 1..64G)", key);
    if (ns != NUM_OK)
        return fail(p, "pool chunk size '%s' %s (write bytes, optionally with K, M or G, e.g. 4K = 128)",
                    key, num_problem(ns));
    if (size == 0) return fail(p, "pool chunk size is 0 (allowed 1..64G)");
    for (uint32_t i = 0; i < st->pool_count; i++)
        if (st->pools[i].chunk_size == size)
            return fail(p, "duplicate pool chunk size '%s' (%llu bytes), already defined on line %u "
                           "(add the counts into one line)",
                        key, (unsigned long long)size, st->pool_line[i]);
    ns = parse_count(val, &count);
    if (ns != NUM_OK)
        return fail(p, "chunk count '%s' of pool %s %s (write a whole number 1..%u)", val, key,
                    num_problem(ns), MAX_CHUNK_COUNT);
    if (count < 1 || count > MAX_CHUNK_COUNT)
        return fail(p, "chunk count %llu of pool %s is out of range (allowed 1..%u)",
                    (unsigned long long)count, key, MAX_CHUNK_COUNT);
    if (st->pool_count == SHOAL_CONFIG_MAX_POOLS)
        return fail(p, "too many pools (at most %d chunk sizes)", SHOAL_CONFIG_MAX_POOLS);
    st->pools[st->pool_count].chunk_size = size;
    st->pools[st->pool_count].chunk_count = (uint32_t)count;
    st->pool_line[st->pool_count] = p->line;
    st->pool_count++;
    return 0;
}

static int parse_line(parser_t *p, parse_state_t *st, shoal_config_t *cfg, char *line) {
    char *hash = strchr(line, '#');
    if (hash) *hash = '\0';
    char *s = trim(line);
    if (!*s) return 0;
    if (*s == '[') return parse_section(p, st, s);
    char *eq = strchr(s, '=');
    if (!eq) return fail(p, "expected 'key = value', found '%s' (add '=' and a value)", s);
    *eq = '\0';
    char *key = trim(s), *val = trim(eq + 1);
    if (!*key) return fail(p, "missing key before '=' (write 'key = value')");
    if (st->section == SEC_NONE)
        return fail(p, "key '%s' outside any section (put it under [limits] or [pools])", key);
    const char *where = st->section == SEC_LIMITS ? "limits" : "pools";
    if (!*val) return fail(p, "empty value for '%s' in [%s] (write '%s = <number>')", key, where, key);
    if (strchr(val, '='))
        return fail(p, "more than one '=' in '%s = %s' (write one 'key = value' per line)", key, val);
    if (st->section == SEC_LIMITS) return parse_limit(p, st, &cfg->limits, key, val);
    return parse_pool(p, st, key, val);
}

static int cmp_pool(const void *a, const void *b) {
    const shoal_config_pool_t *x = a, *y = b;
    return (x->chunk_size > y->chunk_size) - (x->chunk_size < y->chunk_size);
}

/* Lines come from a file (getline) or from a buffer, with the same result:
 * each line with its '\n', so a NUL byte inside a line is seen as one. */
typedef struct line_src {
    FILE *f;
    const char *buf;
    size_t len, pos;
} line_src_t;

static ssize_t next_line(line_src_t *src, char **line, size_t *cap) {
    if (src->f) return getline(line, cap, src->f);
    if (src->pos >= src->len) return -1;
    const char *start = src->buf + src->pos;
    const char *nl = memchr(start, '\n', src->len - src->pos);
    size_t n = nl ? (size_t)(nl - start) + 1 : src->len - src->pos;
    if (n >= SSIZE_MAX) return -1;
    if (!*line || *cap < n + 1) {
        char *grown = realloc(*line, n + 1);
        if (!grown) return -1;
        *line = grown;
        *cap = n + 1;
    }
    memcpy(*line, start, n);
    (*line)[n] = '\0';
    src->pos += n;
    return (ssize_t)n;
}

/* Parses every line of `src` into a copy of the defaults; *cfg is written
 * only on success. */
static int parse_source(shoal_config_t *cfg, parser_t *p, line_src_t *src) {
    /* parse into a copy so a failed load leaves *cfg untouched */
    shoal_config_t *tmp = malloc(sizeof *tmp);
    parse_state_t *st = calloc(1, sizeof *st);
    if (!tmp || !st) {
        free(tmp);
        free(st);
        return fail(p, "out of memory reading the config file (free memory and retry)");
    }
    shoal_config_defaults(tmp);

    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int rc = 0;
    errno = 0;
    while (rc == 0 && (n = next_line(src, &line, &cap)) >= 0) {
        p->line++;
        char *s = line;
        if (p->line == 1 && (size_t)n >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) s += 3; /* UTF-8 BOM */
        if (strlen(line) != (size_t)n) {
            rc = fail(p, "line contains a NUL byte (the config must be a text file)");
            break;
        }
        rc = parse_line(p, st, tmp, s);
    }
    if (rc == 0 && (src->f ? ferror(src->f) : src->pos < src->len)) {
        p->line = 0;
        rc = fail(p, "read error: %s (check the file)", strerror(errno ? errno : ENOMEM));
    }
    free(line);

    if (rc == 0 && st->section_line[SEC_POOLS] && st->pool_count == 0) {
        p->line = st->section_line[SEC_POOLS];
        rc = fail(p, "section [pools] defines no pools (add lines like '1K = 1024', or remove "
                     "the section to keep the default pools)");
    }
    if (rc == 0 && tmp->limits.history > tmp->limits.queue_capacity) {
        /* blame the key the user wrote; history wins if both were written */
        p->line = st->key_line[HISTORY_INDEX] ? st->key_line[HISTORY_INDEX]
                                              : st->key_line[QUEUE_CAPACITY_INDEX];
        rc = fail(p, "limits.history = %u exceeds limits.queue_capacity = %u (allowed 0..%u; "
                     "lower history or raise queue_capacity)",
                  tmp->limits.history, tmp->limits.queue_capacity, tmp->limits.queue_capacity);
    }
    if (rc == 0) {
        if (st->pool_count) {
            memcpy(tmp->pools, st->pools, sizeof st->pools);
            tmp->pool_count = st->pool_count;
            memset(tmp->pools + tmp->pool_count, 0,
                   sizeof(shoal_config_pool_t) * (SHOAL_CONFIG_MAX_POOLS - tmp->pool_count));
            qsort(tmp->pools, tmp->pool_count, sizeof tmp->pools[0], cmp_pool);
        }
        snprintf(tmp->source, sizeof tmp->source, "%s", p->path);
        memcpy(cfg, tmp, sizeof *cfg);
    }
    free(st);
    free(tmp);
    return rc;
}

int shoal_config_load(shoal_config_t *cfg, const char *path, char *err, size_t errlen) {
    parser_t p = {path ? path : "(null)", 0, err, errlen};
    if (err && errlen) err[0] = '\0';
    if (!cfg || !path || !*path) return fail(&p, "no config file given (pass a path)");

    FILE *f = fopen(path, "r");
    if (!f) return fail(&p, "cannot open config file: %s (check the path and its permissions)",
                        strerror(errno));
    line_src_t src = {.f = f};
    int rc = parse_source(cfg, &p, &src);
    fclose(f);
    return rc;
}

int shoal_config_parse(shoal_config_t *cfg, const char *name, const char *text, size_t len,
                       char *err, size_t errlen) {
    parser_t p = {name && *name ? name : "(config)", 0, err, errlen};
    if (err && errlen) err[0] = '\0';
    if (!cfg || (!text && len)) return fail(&p, "no config text given (pass a buffer)");
    line_src_t src = {.buf = text, .len = len};
    return parse_source(cfg, &p, &src);
}

/* ---- printing ----------------------------------------------------------------- */

void shoal_config_print(const shoal_config_t *cfg, FILE *out) {
    char src[sizeof cfg->source];
    /* a newline in the path would end the comment and break re-parsing */
    snprintf(src, sizeof src, "%s", cfg->source);
    for (char *c = src; *c; c++)
        if (iscntrl((unsigned char)*c)) *c = '?';

    fprintf(out, "# shoal daemon configuration (source: %s)\n", src);
    fprintf(out, "# comments start with '#'; sizes take K, M, G suffixes (powers of 1024)\n\n");
    fprintf(out, "[limits]\n");
    for (size_t i = 0; i < LIMIT_KEY_COUNT; i++) {
        const limit_key_t *k = &limit_keys[i];
        char kv[64];
        snprintf(kv, sizeof kv, "%s = %u", k->name, limit_value(&cfg->limits, k));
        fprintf(out, "%-26s # %s\n", kv, k->comment);
    }
    fprintf(out, "\n[pools]\n# chunk size = number of chunks\n");
    uint64_t total = 0;
    for (uint32_t i = 0; i < cfg->pool_count && i < SHOAL_CONFIG_MAX_POOLS; i++) {
        const shoal_config_pool_t *pl = &cfg->pools[i];
        char size[32], kv[64], bytes[32];
        uint64_t pool_bytes = pl->chunk_size * pl->chunk_count;
        format_size(pl->chunk_size, size, sizeof size);
        format_bytes(pool_bytes, bytes, sizeof bytes);
        snprintf(kv, sizeof kv, "%s = %u", size, pl->chunk_count);
        fprintf(out, "%-26s # %s of payload\n", kv, bytes);
        total = total + pool_bytes < total ? UINT64_MAX : total + pool_bytes; /* saturate: a comment only */
    }
    char bytes[32];
    format_bytes(total, bytes, sizeof bytes);
    fprintf(out, "# total payload: %s\n", bytes);
}
