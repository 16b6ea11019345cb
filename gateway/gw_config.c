/* shoal-gateway configuration. The same INI dialect as shoald's file
 * (docs/configuration.md): every mistake names FILE:LINE, what is wrong and
 * what would be accepted, and the gateway does not start. */
#include "gw_config.h"

#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define KIB 1024ULL
#define MIB (1024ULL * KIB)
#define GIB (1024ULL * MIB)

void gw_config_defaults(gw_config_t *c) {
    memset(c, 0, sizeof *c);
    c->max_sample = 64 * MIB;
    c->rcvbuf = 4 * MIB;
    snprintf(c->source, sizeof c->source, "(built-in defaults)");
}

int gw_valid_id(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n >= GW_ID_MAX) return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-' && s[i] != '.') return 0;
    return 1;
}

typedef struct parser {
    const char *path;
    unsigned line;
    char *err;
    size_t errlen;
} parser_t;

__attribute__((format(printf, 2, 3))) static int fail(parser_t *p, const char *fmt, ...) {
    int n = p->line ? snprintf(p->err, p->errlen, "%s:%u: ", p->path, p->line)
                    : snprintf(p->err, p->errlen, "%s: ", p->path);
    if (n >= 0 && (size_t)n < p->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static char *trim(char *s) {
    while (isspace((unsigned char)*s)) s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1])) s[--n] = '\0';
    return s;
}

/* Strict unsigned decimal with an optional K/M/G (KiB..) suffix when `sized`. */
static int parse_num(const char *s, int sized, uint64_t *out) {
    uint64_t v = 0, mult = 1;
    if (!isdigit((unsigned char)*s)) return -1;
    for (; isdigit((unsigned char)*s); s++) {
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10) return -1;
        v = v * 10 + d;
    }
    while (*s == ' ') s++;
    if (*s && sized) {
        switch (toupper((unsigned char)*s)) {
        case 'K': mult = KIB; break;
        case 'M': mult = MIB; break;
        case 'G': mult = GIB; break;
        default: return -1;
        }
        s++;
        if ((s[0] == 'i' || s[0] == 'I') && (s[1] == 'b' || s[1] == 'B')) s += 2;
    }
    if (*s) return -1;
    if (v > UINT64_MAX / mult) return -1;
    *out = v * mult;
    return 0;
}

static void format_size(uint64_t v, char *buf, size_t len) {
    if (v && v % GIB == 0) snprintf(buf, len, "%lluG", (unsigned long long)(v / GIB));
    else if (v && v % MIB == 0) snprintf(buf, len, "%lluM", (unsigned long long)(v / MIB));
    else if (v && v % KIB == 0) snprintf(buf, len, "%lluK", (unsigned long long)(v / KIB));
    else snprintf(buf, len, "%llu", (unsigned long long)v);
}

static int valid_glob(const char *g) {
    size_t n = strlen(g);
    if (n == 0 || n >= GW_GLOB_MAX) return 0;
    for (size_t i = 0; i < n; i++)
        if (!isgraph((unsigned char)g[i]) || g[i] == ',' || g[i] == '=') return 0;
    return 1;
}

enum { SEC_NONE, SEC_GATEWAY, SEC_EXPORT, SEC_IMPORT, SEC_SERVICES, SEC_COUNT };
static const char *const sec_names[SEC_COUNT] = {"", "gateway", "export", "import", "services"};

static const char *const gateway_keys[] = {"id", "dds_domain", "cyclonedds_uri", "max_sample", "rcvbuf"};
#define GATEWAY_KEYS (sizeof gateway_keys / sizeof gateway_keys[0])

typedef struct state {
    int section;
    unsigned section_line[SEC_COUNT];
    unsigned gateway_line[GATEWAY_KEYS];
    unsigned services_line[2];
} state_t;

static int parse_rule(parser_t *p, gw_rule_t *r, const char *glob, char *val, const char *sec) {
    memset(r, 0, sizeof *r);
    if (!valid_glob(glob))
        return fail(p, "'%s' in [%s] is not a topic name or glob (1..%d printable characters, no "
                       "spaces, ',' or '='; e.g. 'camera/*')",
                    glob, sec, GW_GLOB_MAX - 1);
    snprintf(r->glob, sizeof r->glob, "%s", glob);
    r->policy = GW_DROP_OLDEST;
    r->depth = 16;
    r->timeout_ms = 1000;
    r->line = p->line;
    int seen_depth = 0;
    for (char *save = NULL, *tok = strtok_r(val, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
        char *eq = strchr(tok, '=');
        if (!strcmp(tok, "default")) continue;
        if (!eq)
            return fail(p, "option '%s' of '%s' has no value (write name=value: policy=, depth=, "
                           "history=, reliability=, timeout=)",
                        tok, glob);
        *eq = '\0';
        const char *k = tok, *v = eq + 1;
        uint64_t n;
        if (!strcmp(k, "policy")) {
            if (!strcmp(v, "drop_oldest")) r->policy = GW_DROP_OLDEST;
            else if (!strcmp(v, "reject")) r->policy = GW_REJECT;
            else if (!strcmp(v, "wait")) r->policy = GW_WAIT;
            else return fail(p, "policy '%s' of '%s' is unknown (drop_oldest, reject or wait)", v, glob);
        } else if (!strcmp(k, "depth")) {
            if (parse_num(v, 0, &n) || n < 1 || n > 65536)
                return fail(p, "depth '%s' of '%s' is not a whole number 1..65536", v, glob);
            r->depth = (uint32_t)n;
            seen_depth = 1;
        } else if (!strcmp(k, "history")) {
            if (parse_num(v, 0, &n) || n > 65536)
                return fail(p, "history '%s' of '%s' is not a whole number 0..65536", v, glob);
            r->history = (uint32_t)n;
        } else if (!strcmp(k, "reliability")) {
            if (!strcmp(v, "reliable")) r->best_effort = 0;
            else if (!strcmp(v, "best_effort")) r->best_effort = 1;
            else return fail(p, "reliability '%s' of '%s' is unknown (reliable or best_effort)", v, glob);
        } else if (!strcmp(k, "timeout")) {
            if (parse_num(v, 0, &n) || n > 3600000)
                return fail(p, "timeout '%s' of '%s' is not a whole number of milliseconds 0..3600000",
                            v, glob);
            r->timeout_ms = (int64_t)n;
        } else {
            return fail(p, "unknown option '%s' of '%s' in [%s] (known: policy, depth, history, "
                           "reliability, timeout)",
                        k, glob, sec);
        }
    }
    if (r->history > r->depth) {
        if (seen_depth)
            return fail(p, "history %u of '%s' exceeds its depth %u (raise depth)", r->history, glob,
                        r->depth);
        r->depth = r->history;
    }
    return 0;
}

static int parse_globs(parser_t *p, char (*globs)[GW_GLOB_MAX], uint32_t *count, char *val,
                       const char *key) {
    *count = 0;
    for (char *save = NULL, *tok = strtok_r(val, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *g = trim(tok);
        if (!valid_glob(g))
            return fail(p, "'%s' in services.%s is not a service name or glob (1..%d printable "
                           "characters, no spaces; separate several with ',')",
                        g, key, GW_GLOB_MAX - 1);
        if (*count == GW_MAX_RULES)
            return fail(p, "services.%s has more than %d globs (merge some with '*')", key, GW_MAX_RULES);
        snprintf(globs[(*count)++], GW_GLOB_MAX, "%s", g);
    }
    if (*count == 0) return fail(p, "services.%s is empty (give service names or globs, or drop the line)", key);
    return 0;
}

static int parse_gateway_key(parser_t *p, state_t *st, gw_config_t *c, const char *key, char *val) {
    size_t i;
    for (i = 0; i < GATEWAY_KEYS; i++)
        if (!strcmp(key, gateway_keys[i])) break;
    if (i == GATEWAY_KEYS)
        return fail(p, "unknown key '%s' in [gateway] (known: id, dds_domain, cyclonedds_uri, "
                       "max_sample, rcvbuf)",
                    key);
    if (st->gateway_line[i])
        return fail(p, "duplicate key '%s' in [gateway], already set on line %u (keep one of them)",
                    key, st->gateway_line[i]);
    st->gateway_line[i] = p->line;
    uint64_t n;
    switch (i) {
    case 0:
        if (!gw_valid_id(val))
            return fail(p, "gateway id '%s' is invalid (1..%d of A-Z a-z 0-9 _ - .; unique per host)",
                        val, GW_ID_MAX - 1);
        snprintf(c->id, sizeof c->id, "%s", val);
        break;
    case 1:
        /* DDS domain ids map to UDP ports; 232 is the highest that works */
        if (parse_num(val, 0, &n) || n > 232)
            return fail(p, "dds_domain '%s' is not a whole number 0..232", val);
        c->dds_domain = (uint32_t)n;
        break;
    case 2:
        if (strlen(val) >= sizeof c->cyclonedds_uri)
            return fail(p, "cyclonedds_uri is longer than %zu characters (point to a file with file://)",
                        sizeof c->cyclonedds_uri - 1);
        snprintf(c->cyclonedds_uri, sizeof c->cyclonedds_uri, "%s", val);
        break;
    case 3:
        if (parse_num(val, 1, &n) || n < 4 * KIB || n > 1 * GIB)
            return fail(p, "max_sample '%s' is not a size 4K..1G (bytes with K, M or G)", val);
        c->max_sample = n;
        break;
    case 4:
        if (parse_num(val, 1, &n) || n < 64 * KIB || n > 2 * GIB)
            return fail(p, "rcvbuf '%s' is not a size 64K..2G (bytes with K, M or G)", val);
        c->rcvbuf = n;
        break;
    }
    return 0;
}

static int parse_section(parser_t *p, state_t *st, char *s) {
    char *close = strchr(s, ']');
    if (!close) return fail(p, "section header '%s' has no closing ']'", s);
    *close = '\0';
    char *rest = trim(close + 1);
    char *name = trim(s + 1);
    if (*rest) return fail(p, "unexpected '%s' after section header [%s]", rest, name);
    int sec;
    for (sec = 1; sec < SEC_COUNT; sec++)
        if (!strcmp(name, sec_names[sec])) break;
    if (sec == SEC_COUNT)
        return fail(p, "unknown section [%s] (known: [gateway], [export], [import], [services])", name);
    if (st->section_line[sec])
        return fail(p, "section [%s] appears twice, first on line %u (merge them into one)", name,
                    st->section_line[sec]);
    st->section = sec;
    st->section_line[sec] = p->line;
    return 0;
}

int gw_config_parse(gw_config_t *c, const char *name, const char *text, char *err, size_t errlen) {
    parser_t p = {name, 0, err, errlen};
    state_t st;
    memset(&st, 0, sizeof st);
    snprintf(c->source, sizeof c->source, "%s", name);
    const char *cur = text;
    while (*cur) {
        const char *nl = strchr(cur, '\n');
        size_t len = nl ? (size_t)(nl - cur) : strlen(cur);
        p.line++;
        char buf[2048];
        if (len >= sizeof buf) return fail(&p, "line is longer than %zu characters", sizeof buf - 1);
        memcpy(buf, cur, len);
        buf[len] = '\0';
        cur = nl ? nl + 1 : cur + len;
        for (size_t i = 0; i < len; i++)
            if (buf[i] == '\0' || (iscntrl((unsigned char)buf[i]) && buf[i] != '\t' && buf[i] != '\r'))
                return fail(&p, "control character 0x%02x in the line (is this a text file?)",
                            (unsigned char)buf[i]);
        /* a '#' starts a comment, except inside cyclonedds_uri's XML */
        char *hash = strstr(buf, " #");
        if (buf[0] == '#') buf[0] = '\0';
        else if (hash) *hash = '\0';
        char *s = trim(buf);
        if (!*s) continue;
        if (*s == '[') {
            if (parse_section(&p, &st, s)) return -1;
            continue;
        }
        char *eq = strchr(s, '=');
        if (!eq) return fail(&p, "expected 'key = value' or a [section], got '%s'", s);
        *eq = '\0';
        char *key = trim(s), *val = trim(eq + 1);
        if (!*key) return fail(&p, "missing key before '='");
        switch (st.section) {
        case SEC_NONE:
            return fail(&p, "key '%s' before any section (put it under [gateway], [export], [import] "
                            "or [services])",
                        key);
        case SEC_GATEWAY:
            if (parse_gateway_key(&p, &st, c, key, val)) return -1;
            break;
        case SEC_EXPORT:
        case SEC_IMPORT: {
            gw_rule_t *rules = st.section == SEC_EXPORT ? c->exports : c->imports;
            uint32_t *n = st.section == SEC_EXPORT ? &c->export_count : &c->import_count;
            for (uint32_t i = 0; i < *n; i++)
                if (!strcmp(rules[i].glob, key))
                    return fail(&p, "'%s' appears twice in [%s], first on line %u", key,
                                sec_names[st.section], rules[i].line);
            if (*n == GW_MAX_RULES)
                return fail(&p, "more than %d lines in [%s] (merge some with '*')", GW_MAX_RULES,
                            sec_names[st.section]);
            if (parse_rule(&p, &rules[*n], key, val, sec_names[st.section])) return -1;
            (*n)++;
            break;
        }
        case SEC_SERVICES: {
            int which = !strcmp(key, "export") ? 0 : !strcmp(key, "import") ? 1 : -1;
            if (which < 0)
                return fail(&p, "unknown key '%s' in [services] (known: export, import)", key);
            if (st.services_line[which])
                return fail(&p, "duplicate key '%s' in [services], already set on line %u (list "
                                "every glob on one line, separated by ',')",
                            key, st.services_line[which]);
            st.services_line[which] = p.line;
            if (which == 0 ? parse_globs(&p, c->service_exports, &c->service_export_count, val, key)
                           : parse_globs(&p, c->service_imports, &c->service_import_count, val, key))
                return -1;
            break;
        }
        }
    }
    p.line = 0;
    if (!c->id[0])
        return fail(&p, "[gateway] id is missing (every gateway needs an id unique among the hosts, "
                        "e.g. 'id = robot1')");
    return 0;
}

int gw_config_load(gw_config_t *c, const char *path, char *err, size_t errlen) {
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open the configuration: %s", path, strerror(errno));
        return -1;
    }
    char *text = NULL;
    size_t cap = 0, len = 0;
    for (;;) {
        if (len + 4096 + 1 > cap) {
            if (cap >= (1u << 20)) {
                fclose(f);
                free(text);
                snprintf(err, errlen, "%s: larger than 1 MiB; is this the right file?", path);
                return -1;
            }
            cap = cap ? cap * 2 : 8192;
            char *t = realloc(text, cap);
            if (!t) {
                fclose(f);
                free(text);
                snprintf(err, errlen, "%s: out of memory", path);
                return -1;
            }
            text = t;
        }
        size_t n = fread(text + len, 1, cap - len - 1, f);
        len += n;
        if (n == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(text);
        snprintf(err, errlen, "%s: read error", path);
        return -1;
    }
    text[len] = '\0';
    if (strlen(text) != len) {
        free(text);
        snprintf(err, errlen, "%s: contains a NUL byte (is this a text file?)", path);
        return -1;
    }
    int rc = gw_config_parse(c, path, text, err, errlen);
    free(text);
    return rc;
}

static const char *policy_name(gw_policy_t p) {
    return p == GW_REJECT ? "reject" : p == GW_WAIT ? "wait" : "drop_oldest";
}

static void print_rules(const gw_rule_t *r, uint32_t n, FILE *out) {
    for (uint32_t i = 0; i < n; i++)
        fprintf(out, "%s = policy=%s depth=%u history=%u reliability=%s timeout=%lld\n", r[i].glob,
                policy_name(r[i].policy), r[i].depth, r[i].history,
                r[i].best_effort ? "best_effort" : "reliable", (long long)r[i].timeout_ms);
}

void gw_config_print(const gw_config_t *c, FILE *out) {
    char ms[32], rb[32];
    format_size(c->max_sample, ms, sizeof ms);
    format_size(c->rcvbuf, rb, sizeof rb);
    fprintf(out, "# shoal-gateway configuration (source: %s)\n\n[gateway]\n", c->source);
    fprintf(out, "id = %s\ndds_domain = %u\n", c->id, c->dds_domain);
    if (c->cyclonedds_uri[0]) fprintf(out, "cyclonedds_uri = %s\n", c->cyclonedds_uri);
    fprintf(out, "max_sample = %s   # larger samples travel in fragments\n", ms);
    fprintf(out, "rcvbuf = %s       # socket receive buffer; needs net.core.rmem_max >= it\n", rb);
    fprintf(out, "\n[export]   # shoal topics sent to DDS topic shoal/<name>\n");
    print_rules(c->exports, c->export_count, out);
    fprintf(out, "\n[import]   # DDS topics shoal/<name> published here\n");
    print_rules(c->imports, c->import_count, out);
    if (c->service_export_count || c->service_import_count) {
        fprintf(out, "\n[services]\n");
        for (int w = 0; w < 2; w++) {
            uint32_t n = w ? c->service_import_count : c->service_export_count;
            if (!n) continue;
            fprintf(out, "%s = ", w ? "import" : "export");
            for (uint32_t i = 0; i < n; i++)
                fprintf(out, "%s%s", i ? ", " : "", w ? c->service_imports[i] : c->service_exports[i]);
            fprintf(out, "\n");
        }
    }
}

const gw_rule_t *gw_rule_match(const gw_rule_t *rules, uint32_t n, const char *name) {
    for (uint32_t i = 0; i < n; i++)
        if (fnmatch(rules[i].glob, name, 0) == 0) return &rules[i];
    return NULL;
}

int gw_glob_match(char (*globs)[GW_GLOB_MAX], uint32_t n, const char *name) {
    for (uint32_t i = 0; i < n; i++)
        if (fnmatch(globs[i], name, 0) == 0) return 1;
    return 0;
}
