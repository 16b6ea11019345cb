/* Daemon configuration: defaults, file parsing, printing.
 *
 * The format is a tiny INI dialect (docs/internal-spec.md). Every error names
 * FILE:LINE, what is wrong and what would be accepted, because a daemon that
 * refuses to start with a vague message is worse than one with no config. */
#include "daemon/config.h"

#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
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
    int percent; /* written and printed with a '%' */
} limit_key_t;

#define LIMIT(field, lo, hi, text) \
    { #field, offsetof(shoal_config_limits_t, field), lo, hi, text, 0 }
#define LIMIT_PERCENT(field, lo, hi, text) \
    { #field, offsetof(shoal_config_limits_t, field), lo, hi, text, 1 }

static const limit_key_t limit_keys[] = {
    LIMIT(processes, 1, 4096, "registered processes at once"),
    LIMIT(publishers, 1, 65536, "publisher ports at once"),
    LIMIT(subscribers, 1, 65536, "subscriber ports at once"),
    LIMIT(servers, 1, 65536, "server ports at once"),
    LIMIT(clients, 1, 65536, "client ports at once"),
    LIMIT(services, 1, 65536, "distinct topic/service names"),
    LIMIT(chunks_per_port, 1, 65536, "chunks one port may hold (loaned or taken, not released)"),
    LIMIT(waitsets_per_process, 1, 64, "waitsets one process may have at once"),
    LIMIT_PERCENT(memory_share, 1, 100, "of physical memory the management segment may take"),
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
    cfg->limits.memory_share = 50;
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
            /* a message echoes the file's text: when it does not fit, its middle goes,
             * so the "(how to fix it)" at the end always stays */
            char msg[8192];
            va_list ap;
            va_start(ap, fmt);
            int m = vsnprintf(msg, sizeof msg, fmt, ap);
            va_end(ap);
            size_t room = p->errlen - (size_t)n;
            size_t len = m < 0 ? 0 : (size_t)m < sizeof msg ? (size_t)m : sizeof msg - 1;
            if (len < room) {
                memcpy(p->err + n, msg, len + 1);
            } else if (room > 64) {
                size_t tail = room / 2, head = room - tail - 6; /* " ... " + NUL */
                memcpy(p->err + n, msg, head);
                memcpy(p->err + n + head, " ... ", 5);
                memcpy(p->err + n + head + 5, msg + len - (tail - 1), tail - 1);
                p->err[n + head + 5 + tail - 1] = '\0';
            } else {
                memcpy(p->err + n, msg, room - 1);
                p->err[n + room - 1] = '\0';
            }
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

enum { SEC_NONE = 0, SEC_LIMITS, SEC_POOLS, SEC_ACCESS, SEC_RULE };

typedef struct parse_state {
    int section;
    unsigned section_line[4]; /* where [limits]/[pools]/[access] started; 0 = not seen */
    unsigned key_line[LIMIT_KEY_COUNT];
    unsigned pool_line[SHOAL_CONFIG_MAX_POOLS];
    uint32_t pool_count;
    shoal_config_pool_t pools[SHOAL_CONFIG_MAX_POOLS];
} parse_state_t;

/* [access.topic "PATTERN"] / [access.service "PATTERN"]: `s` points after
 * "[access."; the pattern is a double-quoted string where \" and \\ stand
 * for " and \. */
static int parse_rule_section(parser_t *p, parse_state_t *st, shoal_config_t *cfg, char *s) {
    uint8_t type;
    if (strncmp(s, "topic", 5) == 0 && !isalnum((unsigned char)s[5]) && s[5] != '_') {
        type = SHOAL_RULE_TOPIC;
        s += 5;
    } else if (strncmp(s, "service", 7) == 0 && !isalnum((unsigned char)s[7]) && s[7] != '_') {
        type = SHOAL_RULE_SERVICE;
        s += 7;
    } else {
        return fail(p, "unknown section [access.%.40s (write [access.topic \"PATTERN\"] or "
                       "[access.service \"PATTERN\"])",
                    s);
    }
    const char *kind = type == SHOAL_RULE_TOPIC ? "topic" : "service";
    while (*s == ' ' || *s == '\t') s++;
    if (*s != '"')
        return fail(p, "[access.%s needs a quoted pattern (write [access.%s \"camera/*\"])", kind,
                    kind);
    char pat[SHOAL_ACCESS_PATTERN_MAX];
    size_t n = 0;
    for (s++;; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '\0')
            return fail(p, "the pattern of [access.%s has no closing '\"' (write [access.%s "
                           "\"PATTERN\"], with \\\" for a quote inside it)",
                        kind, kind);
        if (c == '"') break;
        if (c == '\\' && (s[1] == '"' || s[1] == '\\')) c = (unsigned char)*++s;
        if (c < 0x20 || c == 0x7f)
            return fail(p, "the pattern of [access.%s contains a control character (topic and "
                           "service names are printable text)",
                        kind);
        if (n + 1 >= sizeof pat)
            return fail(p, "the pattern of [access.%s is longer than %d characters (the longest "
                           "topic or service name; shorten it, '*' matches any run of characters)",
                        kind, SHOAL_ACCESS_PATTERN_MAX - 1);
        pat[n++] = (char)c;
    }
    pat[n] = '\0';
    if (!n) return fail(p, "the pattern of [access.%s is empty (write \"*\" to match every name)", kind);
    char *rest = trim(s + 1);
    if (*rest != ']')
        return fail(p, "expected ']' after the pattern of [access.%s \"%s\" (write [access.%s "
                       "\"%s\"])",
                    kind, pat, kind, pat);
    rest = trim(rest + 1);
    if (*rest)
        return fail(p, "unexpected '%.40s' after section header [access.%s \"%s\"] (put nothing but a "
                       "comment after it)",
                    rest, kind, pat);
    shoal_config_access_t *a = &cfg->access;
    for (uint32_t i = 0; i < a->rule_count; i++)
        if (a->rules[i].type == type && strcmp(a->rules[i].pattern, pat) == 0)
            return fail(p, "section [access.%s \"%s\"] appears twice, first on line %u (merge them "
                           "into one)",
                        kind, pat, a->rules[i].line);
    if (a->rule_count == SHOAL_ACCESS_MAX_RULES)
        return fail(p, "too many [access.topic] and [access.service] sections (at most %d; use "
                       "patterns that cover several names)",
                    SHOAL_ACCESS_MAX_RULES);
    shoal_access_rule_t *r = &a->rules[a->rule_count++];
    memset(r, 0, sizeof *r);
    r->type = type;
    r->line = p->line;
    memcpy(r->pattern, pat, n + 1);
    st->section = SEC_RULE;
    return 0;
}

static int parse_section(parser_t *p, parse_state_t *st, shoal_config_t *cfg, char *s) {
    if (strncmp(s, "[access.", 8) == 0) return parse_rule_section(p, st, cfg, s + 8);
    char *close = strchr(s, ']');
    if (!close)
        return fail(p, "section header '%.40s' has no closing ']' (write [limits], [pools] or [access])", s);
    *close = '\0';
    char *rest = trim(close + 1);
    char *name = trim(s + 1);
    if (*rest)
        return fail(p, "unexpected '%.40s' after section header [%.40s] (put nothing but a comment after it)",
                    rest, name);
    int sec;
    if (strcmp(name, "limits") == 0) sec = SEC_LIMITS;
    else if (strcmp(name, "pools") == 0) sec = SEC_POOLS;
    else if (strcmp(name, "access") == 0) sec = SEC_ACCESS;
    else
        return fail(p, "unknown section [%s] (known: [limits], [pools], [access], "
                       "[access.topic \"PATTERN\"], [access.service \"PATTERN\"])",
                    name);
    if (st->section_line[sec])
        return fail(p, "section [%s] appears twice, first on line %u (merge them into one)", name,
                    st->section_line[sec]);
    st->section = sec;
    st->section_line[sec] = p->line;
    if (sec == SEC_ACCESS) cfg->access.line = p->line;
    return 0;
}

/* ---- [access] lists --------------------------------------------------------- */

/* What a list is, for messages: "[access] users", "publish of [access.topic \"x\"]". */
typedef struct list_ctx {
    const char *what;  /* "users", "groups", "socket_group", or a rule key */
    const char *in;    /* "[access] users" or "publish of [access.topic \"cam/x\"]" */
    int rule;          /* entries may be users or @groups */
    int group_only;    /* [access] groups, socket_group */
} list_ctx_t;

/* A user or group name as useradd/groupadd accept them (and the '$' of
 * machine accounts); a name of digits only is taken as a number. */
static int valid_account_name(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n >= SHOAL_ACCESS_NAME_MAX || s[0] == '-') return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (isalnum(c) || c == '_' || c == '.' || c == '-') continue;
        if (c == '$' && i == n - 1) continue;
        return 0;
    }
    return 1;
}

static int parse_id_entry(parser_t *p, const list_ctx_t *lc, const char *e, shoal_access_id_t *out) {
    memset(out, 0, sizeof *out);
    int group = lc->group_only;
    if (*e == '@') {
        if (!lc->rule) {
            if (lc->group_only)
                return fail(p, "'%s' in %s: write group names without '@' here (%s = %s)", e,
                            lc->in, lc->what, e + 1);
            return fail(p, "'%s' in %s: groups go in their own key (groups = %s)", e, lc->in,
                        e + 1);
        }
        group = 1;
        e++;
    }
    const char *noun = group ? "group" : "user";
    const char *idn = group ? "gid" : "uid";
    if (isdigit((unsigned char)*e)) {
        uint64_t v;
        num_status_t ns = parse_count(e, &v);
        if (ns == NUM_BAD_SUFFIX)
            return fail(p, "'%s' in %s is neither a %s name nor a numeric %s (names start with "
                           "a letter or '_')",
                        e, lc->in, noun, idn);
        if (ns != NUM_OK || v >= 0xffffffffULL)
            return fail(p, "%s %s in %s is out of range (allowed 0..4294967294)", idn, e,
                        lc->in);
        out->numeric = 1;
        out->id = (uint32_t)v;
    } else if (!valid_account_name(e)) {
        return fail(p, "'%s' in %s is not a valid %s name (letters, digits, '_', '.', '-', at "
                       "most %d characters, or a numeric %s%s; separate entries with ',')",
                    e, lc->in, noun, SHOAL_ACCESS_NAME_MAX - 1, idn,
                    lc->rule ? "; groups are written @name" : "");
    }
    out->group = (uint8_t)group;
    /* a number is kept as its decimal form: "0...01" longer than the name field
     * would otherwise be cut to another id when printed */
    if (out->numeric)
        snprintf(out->name, sizeof out->name, "%u", out->id);
    else
        snprintf(out->name, sizeof out->name, "%s", e);
    return 0;
}

/* "alice, @video, 1001" into ids[max]; '*' sets *anyone. */
static int parse_id_list(parser_t *p, const list_ctx_t *lc, char *val, shoal_access_id_t *ids,
                         uint32_t max, uint32_t *count, uint8_t *anyone) {
    *count = 0;
    *anyone = 0;
    for (char *e = val;;) {
        char *comma = strchr(e, ',');
        if (comma) *comma = '\0';
        char *t = trim(e);
        if (!*t)
            return fail(p, "empty entry in %s (remove the extra ',')", lc->in);
        if (strcmp(t, "*") == 0) {
            if (lc->group_only)
                return fail(p, "'*' in %s: name one group here (%s)", lc->in,
                            lc->what[0] == 's' ? "or remove the key" : "or write users = * to admit every uid");
            *anyone = 1;
        } else {
            if (*count == max)
                return fail(p, "more than %u entries in %s (at most %u; put the users in a "
                               "group and list the group)",
                            max, lc->in, max);
            shoal_access_id_t *id = &ids[*count];
            if (parse_id_entry(p, lc, t, id) != 0) return -1;
            for (uint32_t i = 0; i < *count; i++)
                if (ids[i].group == id->group && strcmp(ids[i].name, id->name) == 0)
                    return fail(p, "'%s' appears twice in %s (keep one)", t, lc->in);
            (*count)++;
        }
        if (!comma) break;
        e = comma + 1;
    }
    if (*anyone && *count)
        return fail(p, "'*' in %s already matches everyone (remove the other entries, or the '*')",
                    lc->in);
    return 0;
}

const char *shoal_access_key(uint8_t type, int which) {
    static const char *const keys[2][2] = {{"publish", "subscribe"}, {"serve", "call"}};
    return keys[type ? 1 : 0][which ? 1 : 0];
}

static int parse_access_key(parser_t *p, shoal_config_t *cfg, const char *key, char *val) {
    shoal_config_access_t *a = &cfg->access;
    char in[64];
    snprintf(in, sizeof in, "[access] %s", key);
    list_ctx_t lc = {key, in, 0, 0};
    if (strcmp(key, "users") == 0 || strcmp(key, "groups") == 0) {
        shoal_access_list_t *l = key[0] == 'u' ? &a->users : &a->groups;
        if (l->line)
            return fail(p, "duplicate key '%s' in [access], already set on line %u (keep one of "
                           "them, entries separated by ',')",
                        key, l->line);
        lc.group_only = key[0] == 'g';
        if (parse_id_list(p, &lc, val, l->ids, SHOAL_ACCESS_MAX_IDS, &l->count, &l->anyone) != 0)
            return -1;
        l->line = p->line;
        return 0;
    }
    if (strcmp(key, "socket_group") == 0) {
        if (a->socket_group_line)
            return fail(p, "duplicate key 'socket_group' in [access], already set on line %u "
                           "(keep one of them)",
                        a->socket_group_line);
        lc.group_only = 1;
        uint32_t n;
        uint8_t any;
        shoal_access_id_t one[1];
        if (strchr(val, ','))
            return fail(p, "socket_group = %s names more than one group (the runtime directory and "
                           "socket have one group: name one)",
                        val);
        if (parse_id_list(p, &lc, val, one, 1, &n, &any) != 0) return -1;
        a->socket_group = one[0];
        a->socket_group_line = p->line;
        return 0;
    }
    const char *hint = "";
    if (!strcmp(key, "publish") || !strcmp(key, "subscribe") || !strcmp(key, "serve") ||
        !strcmp(key, "call"))
        hint = "; rules go in [access.topic \"PATTERN\"] or [access.service \"PATTERN\"] sections";
    else if (edit_distance(key, "users") <= 2) hint = "; did you mean 'users'?";
    else if (edit_distance(key, "groups") <= 2) hint = "; did you mean 'groups'?";
    else if (edit_distance(key, "socket_group") <= 3) hint = "; did you mean 'socket_group'?";
    return fail(p, "unknown key '%s' in [access] (known: users, groups, socket_group%s)", key, hint);
}

static int parse_rule_key(parser_t *p, shoal_config_t *cfg, const char *key, char *val) {
    shoal_access_rule_t *r = &cfg->access.rules[cfg->access.rule_count - 1];
    const char *kind = r->type == SHOAL_RULE_TOPIC ? "topic" : "service";
    int which = -1;
    for (int w = 0; w < 2; w++)
        if (strcmp(key, shoal_access_key(r->type, w)) == 0) which = w;
    if (which < 0) {
        for (int w = 0; w < 2; w++)
            if (strcmp(key, shoal_access_key((uint8_t)!r->type, w)) == 0)
                return fail(p, "'%s' in [access.%s \"%s\"]: a %s section takes %s and %s ('%s' "
                               "belongs in an [access.%s \"PATTERN\"] section)",
                            key, kind, r->pattern, kind, shoal_access_key(r->type, 0),
                            shoal_access_key(r->type, 1), key, r->type ? "topic" : "service");
        return fail(p, "unknown key '%s' in [access.%s \"%s\"] (known: %s, %s)", key, kind,
                    r->pattern, shoal_access_key(r->type, 0), shoal_access_key(r->type, 1));
    }
    shoal_access_rule_list_t *l = &r->allow[which];
    if (l->line)
        return fail(p, "duplicate key '%s' in [access.%s \"%s\"], already set on line %u (keep one "
                       "of them, entries separated by ',')",
                    key, kind, r->pattern, l->line);
    char in[SHOAL_ACCESS_PATTERN_MAX + 48];
    snprintf(in, sizeof in, "%s of [access.%s \"%s\"]", key, kind, r->pattern);
    list_ctx_t lc = {key, in, 1, 0};
    if (parse_id_list(p, &lc, val, l->ids, SHOAL_ACCESS_RULE_IDS, &l->count, &l->anyone) != 0)
        return -1;
    l->line = p->line;
    return 0;
}

static int parse_limit(parser_t *p, parse_state_t *st, shoal_config_limits_t *lim, const char *key,
                       char *val) {
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
    const char *pct = k->percent ? "%" : "";
    size_t vlen = strlen(val);
    if (k->percent && vlen && val[vlen - 1] == '%') {
        val[vlen - 1] = '\0';
        val = trim(val);
    }
    num_status_t ns = parse_count(val, &v);
    if (ns != NUM_OK)
        return fail(p, "value '%s%s' of limits.%s %s (write a whole number %u..%u%s)", val, pct,
                    key, num_problem(ns), k->min, k->max, pct);
    if (v < k->min || v > k->max)
        return fail(p, "limits.%s = %llu%s is out of range (allowed %u..%u%s)", key,
                    (unsigned long long)v, pct, k->min, k->max, pct);
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
    /* a '#' inside the quoted pattern of a section header is part of it */
    int quoted = 0;
    char *first = line;
    while (isspace((unsigned char)*first)) first++;
    for (char *c = line; *c; c++) {
        if (*first != '[') {
            if (*c == '#') {
                *c = '\0';
                break;
            }
            continue;
        }
        if (*c == '\\' && quoted && c[1]) c++;
        else if (*c == '"') quoted = !quoted;
        else if (*c == '#' && !quoted) {
            *c = '\0';
            break;
        }
    }
    char *s = trim(line);
    if (!*s) return 0;
    if (*s == '[') return parse_section(p, st, cfg, s);
    char *eq = strchr(s, '=');
    if (!eq) return fail(p, "expected 'key = value', found '%s' (add '=' and a value)", s);
    *eq = '\0';
    char *key = trim(s), *val = trim(eq + 1);
    if (!*key) return fail(p, "missing key before '=' (write 'key = value')");
    if (st->section == SEC_NONE)
        return fail(p, "key '%s' outside any section (put it under [limits], [pools] or [access])", key);
    if (strchr(val, '='))
        return fail(p, "more than one '=' in '%s = %s' (write one 'key = value' per line)", key, val);
    if (st->section == SEC_ACCESS || st->section == SEC_RULE) {
        if (!*val)
            return fail(p, "empty value for '%s' (write '%s = NAME, @GROUP, ...', or '*' for "
                           "everyone)",
                        key, key);
        return st->section == SEC_ACCESS ? parse_access_key(p, cfg, key, val)
                                         : parse_rule_key(p, cfg, key, val);
    }
    const char *where = st->section == SEC_LIMITS ? "limits" : "pools";
    if (!*val) return fail(p, "empty value for '%s' in [%s] (write '%s = <number>')", key, where, key);
    if (st->section == SEC_LIMITS) return parse_limit(p, st, &cfg->limits, key, val);
    return parse_pool(p, st, key, val);
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
    if (rc == 0 && tmp->access.line && !tmp->access.users.line && !tmp->access.groups.line) {
        p->line = tmp->access.line;
        rc = fail(p, "section [access] admits nobody besides shoald's own uid and root (add "
                     "'users = NAME, ...' or 'groups = NAME, ...', or remove the section)");
    }
    for (uint32_t i = 0; rc == 0 && i < tmp->access.rule_count; i++) {
        const shoal_access_rule_t *r = &tmp->access.rules[i];
        if (r->allow[0].line || r->allow[1].line) continue;
        p->line = r->line;
        rc = fail(p, "section [access.%s \"%s\"] sets neither %s nor %s (add one, e.g. '%s = "
                     "@GROUP', or remove the section)",
                  r->type ? "service" : "topic", r->pattern, shoal_access_key(r->type, 0),
                  shoal_access_key(r->type, 1), shoal_access_key(r->type, 0));
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
            memcpy(tmp->pool_line, st->pool_line, sizeof st->pool_line);
            /* sort by chunk size, keeping each pool's line with it */
            for (uint32_t i = 1; i < tmp->pool_count; i++)
                for (uint32_t j = i; j > 0 && tmp->pools[j - 1].chunk_size > tmp->pools[j].chunk_size; j--) {
                    shoal_config_pool_t t = tmp->pools[j];
                    tmp->pools[j] = tmp->pools[j - 1];
                    tmp->pools[j - 1] = t;
                    unsigned l = tmp->pool_line[j];
                    tmp->pool_line[j] = tmp->pool_line[j - 1];
                    tmp->pool_line[j - 1] = l;
                }
        }
        for (size_t i = 0; i < LIMIT_KEY_COUNT; i++)
            *limit_field(&tmp->limit_line, &limit_keys[i]) = st->key_line[i];
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

/* ---- [access] names -------------------------------------------------------------- */

/* 0 found, 1 no such name, -1 lookup failed (errno). */
static int lookup_id(const shoal_access_id_t *e, uint32_t *out) {
    size_t len = 16384;
    for (;;) {
        char *buf = malloc(len);
        if (!buf) return errno = ENOMEM, -1;
        int rc;
        if (e->group) {
            struct group g, *res = NULL;
            rc = getgrnam_r(e->name, &g, buf, len, &res);
            if (rc == 0 && res) *out = (uint32_t)g.gr_gid;
            else if (rc == 0) rc = -2;
        } else {
            struct passwd pw, *res = NULL;
            rc = getpwnam_r(e->name, &pw, buf, len, &res);
            if (rc == 0 && res) *out = (uint32_t)pw.pw_uid;
            else if (rc == 0) rc = -2;
        }
        free(buf);
        if (rc == ERANGE && len < (1u << 24)) {
            len *= 4;
            continue;
        }
        if (rc == -2 || rc == ENOENT || rc == ESRCH || rc == EBADF || rc == EPERM) return 1;
        if (rc) return errno = rc, -1;
        return 0;
    }
}

static int resolve_entry(parser_t *p, shoal_access_id_t *e, unsigned line, const char *in) {
    if (e->numeric) return 0;
    int r = lookup_id(e, &e->id);
    if (r == 0) return 0;
    p->line = line;
    const char *noun = e->group ? "group" : "user";
    if (r > 0)
        return fail(p, "unknown %s '%s' in %s (no such %s in the %s database; fix the name, "
                       "create the %s, or write a numeric %s)",
                    noun, e->name, in, noun, e->group ? "group" : "passwd", noun,
                    e->group ? "gid" : "uid");
    return fail(p, "cannot look up %s '%s' in %s: %s (check /etc/nsswitch.conf and the %s "
                   "database, or write a numeric %s)",
                noun, e->name, in, strerror(errno), e->group ? "group" : "passwd",
                e->group ? "gid" : "uid");
}

int shoal_config_resolve_access(shoal_config_t *cfg, char *err, size_t errlen) {
    parser_t p = {cfg->source, 0, err, errlen};
    if (err && errlen) err[0] = '\0';
    shoal_config_access_t *a = &cfg->access;
    for (uint32_t i = 0; i < a->users.count; i++)
        if (resolve_entry(&p, &a->users.ids[i], a->users.line, "[access] users") != 0) return -1;
    for (uint32_t i = 0; i < a->groups.count; i++)
        if (resolve_entry(&p, &a->groups.ids[i], a->groups.line, "[access] groups") != 0)
            return -1;
    if (a->socket_group_line &&
        resolve_entry(&p, &a->socket_group, a->socket_group_line, "[access] socket_group") != 0)
        return -1;
    for (uint32_t i = 0; i < a->rule_count; i++) {
        shoal_access_rule_t *r = &a->rules[i];
        for (int w = 0; w < 2; w++)
            for (uint32_t k = 0; k < r->allow[w].count; k++) {
                char in[SHOAL_ACCESS_PATTERN_MAX + 48];
                snprintf(in, sizeof in, "%s of [access.%s \"%s\"]", shoal_access_key(r->type, w),
                         r->type ? "service" : "topic", r->pattern);
                if (resolve_entry(&p, &r->allow[w].ids[k], r->allow[w].line, in) != 0) return -1;
            }
    }
    a->resolved = 1;
    return 0;
}

/* ---- printing ----------------------------------------------------------------- */

static void print_ids(FILE *out, const char *key, uint8_t anyone, const shoal_access_id_t *ids,
                      uint32_t count, int rule, int resolved) {
    char line[4096];
    size_t used = 0;
    line[0] = '\0';
    used += (size_t)snprintf(line, sizeof line, "%s = ", key);
    if (anyone) used += (size_t)snprintf(line + used, sizeof line - used, "*");
    for (uint32_t i = 0; i < count && used < sizeof line; i++)
        used += (size_t)snprintf(line + used, sizeof line - used, "%s%s%s", i ? ", " : "",
                                 rule && ids[i].group ? "@" : "", ids[i].name);
    fprintf(out, "%s", line);
    uint32_t named = 0;
    for (uint32_t i = 0; i < count; i++) named += !ids[i].numeric;
    if (resolved && named) {
        fprintf(out, "%*s #", used < 26 ? (int)(26 - used) : 0, "");
        for (uint32_t i = 0; i < count; i++)
            if (!ids[i].numeric)
                fprintf(out, " %s=%s %u", ids[i].name, ids[i].group ? "gid" : "uid", ids[i].id);
        if (anyone) fprintf(out, " everyone");
    }
    fprintf(out, "\n");
}

static void print_access(const shoal_config_t *cfg, FILE *out) {
    const shoal_config_access_t *a = &cfg->access;
    if (a->line) {
        fprintf(out, "\n[access]\n# who may use the domain besides shoald's own uid and root\n");
        if (a->users.line)
            print_ids(out, "users", a->users.anyone, a->users.ids, a->users.count, 0, a->resolved);
        if (a->groups.line)
            print_ids(out, "groups", 0, a->groups.ids, a->groups.count, 0, a->resolved);
        if (a->socket_group_line)
            print_ids(out, "socket_group", 0, &a->socket_group, 1, 0, a->resolved);
    }
    for (uint32_t i = 0; i < a->rule_count; i++) {
        const shoal_access_rule_t *r = &a->rules[i];
        fprintf(out, "\n[access.%s \"", r->type ? "service" : "topic");
        for (const char *c = r->pattern; *c; c++) {
            if (*c == '"' || *c == '\\') fputc('\\', out);
            fputc(*c, out);
        }
        fprintf(out, "\"]\n");
        for (int w = 0; w < 2; w++)
            if (r->allow[w].line)
                print_ids(out, shoal_access_key(r->type, w), r->allow[w].anyone, r->allow[w].ids,
                          r->allow[w].count, 1, a->resolved);
    }
}


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
        snprintf(kv, sizeof kv, "%s = %u%s", k->name, limit_value(&cfg->limits, k),
                 k->percent ? "%" : "");
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
    /* what it costs: payload is address space, the management segment memory */
    shoal_config_cost_t c;
    char mgmt[32], stride[32];
    if (shoal_config_cost(cfg, &c) == 0) {
        format_bytes(c.payload_bytes, bytes, sizeof bytes);
        format_bytes(c.mgmt_bytes, mgmt, sizeof mgmt);
        format_bytes(c.port_stride, stride, sizeof stride);
        fprintf(out, "# payload segments: %s of address space in every process, backed as chunks are written\n",
                bytes);
        fprintf(out, "# management segment: %s of memory (%zu bytes per chunk, %s per port slot)\n",
                mgmt, sizeof(shm_chunk_t), stride);
    }
    print_access(cfg, out);
}

/* ---- cost of a config on a machine ------------------------------------------------ */

void shoal_config_layout_params(const shoal_config_t *cfg, shm_layout_params_t *lp) {
    memset(lp, 0, sizeof *lp);
    lp->pool_count = cfg->pool_count <= SHM_MAX_POOLS ? cfg->pool_count : SHM_MAX_POOLS;
    for (uint32_t i = 0; i < lp->pool_count; i++) {
        lp->chunk_size[i] = cfg->pools[i].chunk_size;
        lp->chunk_count[i] = cfg->pools[i].chunk_count;
    }
    lp->processes = cfg->limits.processes;
    lp->services = cfg->limits.services;
    lp->chunks_per_port = cfg->limits.chunks_per_port;
    lp->queue_capacity = cfg->limits.queue_capacity;
    lp->history_max = cfg->limits.history;
    lp->waitsets_per_process = cfg->limits.waitsets_per_process;
    lp->kind_limit[SHOAL_PORT_PUBLISHER] = cfg->limits.publishers;
    lp->kind_limit[SHOAL_PORT_SUBSCRIBER] = cfg->limits.subscribers;
    lp->kind_limit[SHOAL_PORT_CLIENT] = cfg->limits.clients;
    lp->kind_limit[SHOAL_PORT_SERVER] = cfg->limits.servers;
}

static uint64_t sat_add(uint64_t a, uint64_t b, int *overflow) {
    if (a > UINT64_MAX - b) {
        *overflow = 1;
        return UINT64_MAX;
    }
    return a + b;
}

int shoal_config_cost(const shoal_config_t *cfg, shoal_config_cost_t *c) {
    memset(c, 0, sizeof *c);
    shm_layout_params_t lp;
    shm_header_t h;
    shoal_config_layout_params(cfg, &lp);
    if (shm_layout(&lp, &h) != 0) {
        c->overflow = 1;
        c->mgmt_bytes = UINT64_MAX;
    } else {
        c->mgmt_bytes = h.mgmt_size;
        c->chunk_total = h.chunk_total;
        c->chunk_headers = (uint64_t)h.chunk_total * sizeof(shm_chunk_t);
        c->port_slots = h.port_slots;
        c->port_stride = h.port_stride;
        c->port_bytes = (uint64_t)h.port_slots * h.port_stride;
    }
    /* the same sizes shm_init gives the payload segments */
    for (uint32_t i = 0; i < lp.pool_count; i++) {
        uint64_t stride = shm_pool_stride(lp.chunk_size[i]), seg;
        if (stride < lp.chunk_size[i] || (lp.chunk_count[i] && stride > (UINT64_MAX - 4095) / lp.chunk_count[i])) {
            c->overflow = 1;
            seg = UINT64_MAX;
        } else {
            seg = (stride * lp.chunk_count[i] + 4095) / 4096 * 4096;
        }
        c->pool_bytes[i] = seg;
        c->payload_bytes = sat_add(c->payload_bytes, seg, &c->overflow);
    }
    return c->overflow ? -1 : 0;
}

void shoal_machine_probe(shoal_machine_t *m) {
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    m->phys_bytes = pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page : 0;
    /* 47 bits is what mmap hands out without an explicit high hint */
    m->addr_bytes = sizeof(void *) >= 8 ? 1ULL << 47 : 3ULL << 30;
    struct rlimit rl;
    m->rlimit_as = getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY
                       ? (uint64_t)rl.rlim_cur
                       : UINT64_MAX;
}

__attribute__((format(printf, 4, 5))) static void append(char *buf, size_t len, size_t *used,
                                                        const char *fmt, ...) {
    if (*used >= len) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + *used, len - *used, fmt, ap);
    va_end(ap);
    if (n > 0) *used = *used + (size_t)n < len ? *used + (size_t)n : len;
}

/* "1.0 GiB (1073741824 bytes)", or "more than 16 EiB" when it overflowed */
static const char *figure(uint64_t v, char *buf, size_t len) {
    char h[32];
    if (v == UINT64_MAX) return snprintf(buf, len, "more than 16 EiB (the sum overflows 64 bits)"), buf;
    format_bytes(v, h, sizeof h);
    snprintf(buf, len, "%s (%llu bytes)", h, (unsigned long long)v);
    return buf;
}

/* Pools by `bytes[i]` (largest first, then by line): the top few, as
 * "64G = 16777216 (line 9, 1.0 EiB), ... and N more [pools] lines".
 * Returns the first pool's index. */
static uint32_t list_pools(const shoal_config_t *cfg, const uint64_t *bytes, char *buf, size_t len,
                           size_t *used) {
    uint32_t order[SHOAL_CONFIG_MAX_POOLS], n = cfg->pool_count;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t j = i;
        for (; j > 0; j--) {
            uint32_t o = order[j - 1];
            if (bytes[o] > bytes[i] || (bytes[o] == bytes[i] && cfg->pool_line[o] <= cfg->pool_line[i]))
                break;
            order[j] = o;
        }
        order[j] = i;
    }
    const uint32_t shown = n < 3 ? n : 3;
    for (uint32_t k = 0; k < shown; k++) {
        const shoal_config_pool_t *pl = &cfg->pools[order[k]];
        char size[32], b[32], line[32] = "default";
        format_size(pl->chunk_size, size, sizeof size);
        format_bytes(bytes[order[k]], b, sizeof b);
        if (cfg->pool_line[order[k]]) snprintf(line, sizeof line, "line %u", cfg->pool_line[order[k]]);
        append(buf, len, used, "%s'%s = %u' (%s, %s)", k ? ", " : "", size, pl->chunk_count, line,
               bytes[order[k]] == UINT64_MAX ? "more than 16 EiB" : b);
    }
    if (n > shown) append(buf, len, used, " and %u more [pools] lines", n - shown);
    return n ? order[0] : 0;
}

int shoal_config_check_machine(const shoal_config_t *cfg, const shoal_machine_t *m, char *err,
                               size_t errlen) {
    parser_t p = {cfg->source, 0, err, errlen};
    if (err && errlen) err[0] = '\0';
    shoal_config_cost_t c;
    shoal_config_cost(cfg, &c);
    const shoal_config_limits_t *l = &cfg->limits;

    /* address space: every process maps the management and all payload segments */
    int as_over = 0;
    uint64_t as_need = sat_add(c.payload_bytes, c.mgmt_bytes, &as_over);
    uint64_t as_base = m->addr_bytes < m->rlimit_as ? m->addr_bytes : m->rlimit_as;
    uint64_t as_allowed = as_base - as_base / 4; /* the rest for code, heap, stacks, sanitizers */
    int as_bad = c.overflow || as_over || as_need > as_allowed;

    uint64_t mem_allowed = m->phys_bytes / 100 * l->memory_share + m->phys_bytes % 100 * l->memory_share / 100;
    int mem_bad = m->phys_bytes && c.mgmt_bytes > mem_allowed;

    char text[1536], a[96], b[96], d[96];
    size_t used = 0;
    text[0] = '\0';
    if (mem_bad) {
        /* bytes that scale with each key: the dominating one is where to act */
        shm_layout_params_t lp;
        shm_header_t h;
        shoal_config_layout_params(cfg, &lp);
        memset(&h, 0, sizeof h);
        (void)shm_layout(&lp, &h);
        uint64_t svc = (uint64_t)l->services * h.service_stride;
        uint64_t waits = (uint64_t)l->processes * l->waitsets_per_process * sizeof(shm_waitset_word_t);
        uint64_t recv_tables = (uint64_t)l->services * h.receivers_per_service * 4;
        uint32_t recv_key = l->subscribers >= l->servers ? 1 : 3; /* sizes the receiver lists */
        enum { WHY_NONE, WHY_PORTS, WHY_RECEIVERS, WHY_SERVICES };
        struct {
            const char *key;
            uint32_t value;
            unsigned line;
            uint64_t bytes;
            int why; /* what to say about where the bytes go */
        } keys[] = {
            {"publishers", l->publishers, cfg->limit_line.publishers, l->publishers * c.port_stride, WHY_PORTS},
            {"subscribers", l->subscribers, cfg->limit_line.subscribers,
             l->subscribers * c.port_stride + (recv_key == 1 ? recv_tables : 0), WHY_PORTS},
            {"clients", l->clients, cfg->limit_line.clients, l->clients * c.port_stride, WHY_PORTS},
            {"servers", l->servers, cfg->limit_line.servers,
             l->servers * c.port_stride + (recv_key == 3 ? recv_tables : 0), WHY_PORTS},
            {"queue_capacity", l->queue_capacity, cfg->limit_line.queue_capacity,
             (uint64_t)c.port_slots * h.queue_cells * sizeof(shm_queue_cell_t), WHY_PORTS},
            {"chunks_per_port", l->chunks_per_port, cfg->limit_line.chunks_per_port,
             (uint64_t)c.port_slots * l->chunks_per_port * 8, WHY_PORTS},
            {"history", l->history, cfg->limit_line.history, (uint64_t)c.port_slots * l->history * 8, WHY_PORTS},
            {"processes", l->processes, cfg->limit_line.processes,
             (uint64_t)l->processes * sizeof(shm_process_t) + waits, WHY_NONE},
            {"waitsets_per_process", l->waitsets_per_process, cfg->limit_line.waitsets_per_process, waits,
             WHY_NONE},
            {"services", l->services, cfg->limit_line.services, svc, WHY_SERVICES},
        };
        if (recv_tables > c.port_bytes) keys[recv_key].why = WHY_RECEIVERS;
        size_t top = 0;
        for (size_t i = 1; i < sizeof keys / sizeof keys[0]; i++)
            if (keys[i].bytes > keys[top].bytes) top = i;
        char phys[32], slot[32], ch[32], pt[32], rest[32];
        format_bytes(m->phys_bytes, phys, sizeof phys);
        format_bytes(c.chunk_headers, ch, sizeof ch);
        format_bytes(c.port_bytes, pt, sizeof pt);
        format_bytes(c.mgmt_bytes - c.chunk_headers - c.port_bytes, rest, sizeof rest);
        format_bytes(c.port_stride, slot, sizeof slot);
        append(text, sizeof text, &used,
               "the management segment needs %s of memory (chunk headers are written at "
               "start, tables as they are used), more than limits.memory_share = %u%% of the "
               "%s of physical memory allows: %s (chunk headers %s, port slots %s, process "
               "and service tables %s)",
               figure(c.mgmt_bytes, a, sizeof a), l->memory_share, phys,
               figure(mem_allowed, b, sizeof b), ch, pt, rest);
        if (c.chunk_headers >= keys[top].bytes) {
            append(text, sizeof text, &used,
                   "; the chunk headers (%zu bytes for each of %llu chunks, all written at start) "
                   "come from ",
                   sizeof(shm_chunk_t), (unsigned long long)c.chunk_total);
            uint64_t hb[SHOAL_CONFIG_MAX_POOLS];
            for (uint32_t i = 0; i < cfg->pool_count; i++)
                hb[i] = (uint64_t)cfg->pools[i].chunk_count * sizeof(shm_chunk_t);
            p.line = cfg->pool_line[list_pools(cfg, hb, text, sizeof text, &used)];
            append(text, sizeof text, &used,
                   " (lower the chunk counts in [pools], or raise limits.memory_share if this "
                   "machine can give shoal that much memory)");
        } else {
            format_bytes(keys[top].bytes, ch, sizeof ch);
            p.line = keys[top].line;
            append(text, sizeof text, &used, "; limits.%s = %u (%s) accounts for %s of it",
                   keys[top].key, keys[top].value, keys[top].line ? "set here" : "the default", ch);
            if (keys[top].why == WHY_PORTS)
                append(text, sizeof text, &used,
                       " (%u port slots of %s each: struct, queue cells, held table, history)",
                       c.port_slots, slot);
            else if (keys[top].why == WHY_RECEIVERS || keys[top].why == WHY_SERVICES)
                append(text, sizeof text, &used,
                       " (each of the limits.services = %u names keeps room for %u receivers, "
                       "the larger of limits.subscribers and limits.servers, 4 bytes each)",
                       l->services, h.receivers_per_service);
            append(text, sizeof text, &used,
                   " (lower limits.%s, or raise limits.memory_share if this machine can give "
                   "shoal that much memory)",
                   keys[top].key);
        }
        if (as_bad)
            append(text, sizeof text, &used,
                   "; the payload segments, %s, also exceed the %s a process can map",
                   figure(c.payload_bytes, a, sizeof a), figure(as_allowed, b, sizeof b));
        return fail(&p, "%s", text);
    }
    if (as_bad) {
        int by_rlimit = m->rlimit_as < m->addr_bytes;
        char base[32], mg[32];
        format_bytes(as_base, base, sizeof base);
        format_bytes(c.mgmt_bytes, mg, sizeof mg);
        append(text, sizeof text, &used,
               "the segments need %s of address space in every process that uses shoal "
               "(each maps every payload segment and the %s management segment), more than "
               "the %s it can map (3/4 of %s %s; the rest is left for the program); the "
               "largest payload segments: ",
               figure(as_need, a, sizeof a), mg, figure(as_allowed, d, sizeof d),
               by_rlimit ? "RLIMIT_AS," : "the user address space,", base);
        p.line = cfg->pool_line[list_pools(cfg, c.pool_bytes, text, sizeof text, &used)];
        append(text, sizeof text, &used, " (lower the chunk counts or chunk sizes in [pools]%s)",
               by_rlimit ? ", or raise RLIMIT_AS (ulimit -v)" : "");
        return fail(&p, "%s", text);
    }
    return 0;
}
