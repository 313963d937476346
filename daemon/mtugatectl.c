/* mtugatectl: talks to mtugated's control socket, and prints the rules a
 * configuration needs. Commands dispatch through one table (wg.c, occtl). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "conf/conf.h"
#include "conf/diag.h"
#include "conf/deploy.h"
#include "conf/rulehold.h"
#include "conf/rules.h"
#include "daemon/check.h"
#include "daemon/sessview.h"
#include "daemon/stats.h"
#include "daemon/strbuf.h"
#include "policy/policy.h"

#ifndef MTUGATE_VERSION
#define MTUGATE_VERSION "unknown"
#endif
#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif
#ifndef RUNSTATEDIR
#define RUNSTATEDIR "/run"
#endif

#define CTLC_TIMEOUT_MS 10000

struct ctlc {
	const char *conf;	/* -c */
	char sock[108];		/* -s, or from the configuration */
};

/* One "key<TAB>value" line of a reply; pointers into the reply buffer. */
struct ctlc_kv {
	const char *key, *val;
};

struct ctlc_reply {
	struct strbuf raw;
	struct ctlc_kv *kv;
	size_t n;
};

static void ctlc_reply_free(struct ctlc_reply *r)
{
	strbuf_free(&r->raw);
	free(r->kv);
}

static int ctlc_connect(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		fprintf(stderr, "mtugatectl: socket path too long: %s\n", path);
		return -1;
	}
	strcpy(sun.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		int e = errno;

		fprintf(stderr, "mtugatectl: cannot connect to %s: %s%s\n", path, strerror(e),
			e == ENOENT || e == ECONNREFUSED ? " (is mtugated running?)" : "");
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static bool ctlc_complete(const struct strbuf *b)
{
	return (b->len == 1 && b->buf[0] == '\n') ||
	       (b->len >= 2 && b->buf[b->len - 1] == '\n' && b->buf[b->len - 2] == '\n');
}

/* Split the reply into lines; the empty line that ends it is not one. */
static int ctlc_split(struct ctlc_reply *r)
{
	char *p = r->raw.buf, *end = r->raw.buf + r->raw.len;
	size_t cap = 0;

	while (p < end && *p != '\n') {
		char *nl = memchr(p, '\n', (size_t)(end - p)), *tab;

		if (!nl)
			break;
		*nl = '\0';
		if (r->n == cap) {
			struct ctlc_kv *kv;

			cap = cap ? cap * 2 : 64;
			kv = realloc(r->kv, cap * sizeof(*kv));
			if (!kv)
				return -1;
			r->kv = kv;
		}
		tab = strchr(p, '\t');
		if (tab)
			*tab = '\0';
		r->kv[r->n].key = p;
		r->kv[r->n++].val = tab ? tab + 1 : "";
		p = nl + 1;
	}
	return 0;
}

/* Send one command, read the whole reply. 0, or -1 after saying why. */
static int ctlc_request(const struct ctlc *x, const char *cmd, struct ctlc_reply *r)
{
	struct strbuf req = { 0 };
	char buf[65536];
	int fd = ctlc_connect(x->sock), rc = -1;
	size_t off = 0;

	memset(r, 0, sizeof(*r));
	if (fd < 0)
		return -1;
	strbuf_printf(&req, "%s\n", cmd);
	while (off < req.len) {
		ssize_t n = send(fd, req.buf + off, req.len - off, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fprintf(stderr, "mtugatectl: %s: %s\n", x->sock, strerror(errno));
			goto out;
		}
		off += (size_t)n;
	}
	while (!ctlc_complete(&r->raw)) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (poll(&pfd, 1, CTLC_TIMEOUT_MS) == 0) {
			fprintf(stderr, "mtugatectl: %s: no reply within %d s\n", x->sock,
				CTLC_TIMEOUT_MS / 1000);
			goto out;
		}
		n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			fprintf(stderr, "mtugatectl: %s: %s\n", x->sock,
				n < 0 ? strerror(errno) : "connection closed before the reply ended");
			goto out;
		}
		strbuf_append(&r->raw, buf, (size_t)n);
		if (r->raw.oom)
			goto out;
	}
	if (ctlc_split(r) < 0)
		goto out;
	rc = 0;
	for (size_t i = 0; i < r->n; i++) {
		if (strncmp(r->kv[i].key, "error=", 6) == 0) {
			fprintf(stderr, "mtugatectl: %s: %s (%s)\n", cmd, r->kv[i].val, r->kv[i].key + 6);
			rc = -1;
		}
	}
out:
	strbuf_free(&req);
	close(fd);
	if (rc < 0)
		ctlc_reply_free(r);
	return rc;
}

/* "OWNER.NAME.FIELD" (owner "group" or "queue"): NAME may itself hold dots,
 * FIELD never does. */
static bool ctlc_row_key(const char *key, const char *owner, const char **name, size_t *nlen,
			 const char **field)
{
	size_t olen = strlen(owner);
	const char *dot;

	if (strncmp(key, owner, olen) != 0 || key[olen] != '.')
		return false;
	key += olen + 1;
	dot = strrchr(key, '.');
	if (!dot || dot == key)
		return false;
	*name = key;
	*nlen = (size_t)(dot - key);
	*field = dot + 1;
	return true;
}

/* Rows of one owner's counters: [first, last) in the reply, one row per owner. */
struct ctlc_row {
	const char *name;
	size_t nlen, first, last;
};

/* One owner's part of the stats reply: its rows, in reply order. */
struct ctlc_rows {
	const char *owner;
	struct ctlc_row *row;
	size_t n;
};

static size_t ctlc_rows(const struct ctlc_reply *r, const char *owner, struct ctlc_row *rows)
{
	size_t i, n = 0;

	for (i = 0; i < r->n; i++) {
		const char *name, *field;
		size_t nlen;

		if (!ctlc_row_key(r->kv[i].key, owner, &name, &nlen, &field))
			continue;
		if (n && rows[n - 1].last == i && rows[n - 1].nlen == nlen &&
		    memcmp(rows[n - 1].name, name, nlen) == 0) {
			rows[n - 1].last++;
			continue;
		}
		rows[n++] = (struct ctlc_row){ name, nlen, i, i + 1 };
	}
	return n;
}

/* The value of FIELD in row, or NULL when the row has none. */
static const char *ctlc_find(const struct ctlc_reply *r, const struct ctlc_rows *s,
			     const struct ctlc_row *row, const char *field)
{
	for (size_t i = row->first; i < row->last; i++) {
		const char *name, *f;
		size_t nlen;

		if (ctlc_row_key(r->kv[i].key, s->owner, &name, &nlen, &f) && strcmp(f, field) == 0)
			return r->kv[i].val;
	}
	return NULL;
}

static const char *ctlc_field(const struct ctlc_reply *r, const struct ctlc_rows *s,
			      const struct ctlc_row *row, const char *field)
{
	const char *v = ctlc_find(r, s, row, field);

	return v ? v : "0";
}

/* The FIELD of a key known to belong to s. */
static const char *ctlc_field_name(const struct ctlc_rows *s, const char *key)
{
	const char *name, *f = "";
	size_t nlen;

	ctlc_row_key(key, s->owner, &name, &nlen, &f);
	return f;
}

static const char *ctlc_get(const struct ctlc_reply *r, const char *key)
{
	for (size_t i = 0; i < r->n; i++)
		if (strcmp(r->kv[i].key, key) == 0)
			return r->kv[i].val;
	return "0";
}

static bool ctlc_has(const struct ctlc_reply *r, const char *key)
{
	for (size_t i = 0; i < r->n; i++)
		if (strcmp(r->kv[i].key, key) == 0)
			return true;
	return false;
}

static bool ctlc_is_number(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

static void ctlc_json_str(const char *s, size_t len)
{
	putchar('"');
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static void ctlc_json_val(const char *v)
{
	if (ctlc_is_number(v))
		fputs(v, stdout);
	else
		ctlc_json_str(v, strlen(v));
}

/* "OWNERs": {"NAME": {"FIELD": value, ...}, ...} */
static void ctlc_json_rows(const struct ctlc_reply *r, const struct ctlc_rows *s)
{
	size_t i, k;

	printf("\"%ss\": {", s->owner);
	for (i = 0; i < s->n; i++) {
		const struct ctlc_row *row = &s->row[i];

		printf("%s\n  ", i ? "," : "");
		ctlc_json_str(row->name, row->nlen);
		printf(": {");
		for (k = row->first; k < row->last; k++) {
			const char *f = ctlc_field_name(s, r->kv[k].key);

			printf("%s", k > row->first ? ", " : "");
			ctlc_json_str(f, strlen(f));
			printf(": ");
			ctlc_json_val(r->kv[k].val);
		}
		printf("}");
	}
	printf("}");
}

/* The "prefix.name" counters as one JSON object of names. */
static void ctlc_json_prefixed(const struct ctlc_reply *r, const char *prefix)
{
	const char *sep = "";
	size_t i, n = strlen(prefix);

	printf("{");
	for (i = 0; i < r->n; i++) {
		if (strncmp(r->kv[i].key, prefix, n) != 0)
			continue;
		printf("%s", sep);
		ctlc_json_str(r->kv[i].key + n, strlen(r->kv[i].key + n));
		printf(": ");
		ctlc_json_val(r->kv[i].val);
		sep = ", ";
	}
	printf("}");
}

static void ctlc_stats_json(const struct ctlc_reply *r, const struct ctlc_rows *q,
			    const struct ctlc_rows *g)
{
	printf("{\"uptime_s\": ");
	ctlc_json_val(ctlc_get(r, "uptime_s"));
	printf(", \"version\": ");
	ctlc_json_str(ctlc_get(r, "version"), strlen(ctlc_get(r, "version")));
	printf(", \"config_last_reload_successful\": %s, \"config_loaded_s\": %s",
	       ctlc_get(r, "config_last_reload_successful"), ctlc_get(r, "config_loaded_s"));
	/* null until the daemon had its first look at the ruleset */
	printf(",\n \"rules_ok\": %s, \"rules_problem\": ", !ctlc_has(r, "rules_ok") ? "null" :
	       strcmp(ctlc_get(r, "rules_ok"), "1") ? "false" : "true");
	if (ctlc_has(r, "rules_problem"))
		ctlc_json_str(ctlc_get(r, "rules_problem"), strlen(ctlc_get(r, "rules_problem")));
	else
		printf("null");
	printf(",\n \"packets\": ");
	ctlc_json_prefixed(r, "packets.");
	printf(",\n \"proxy\": ");
	ctlc_json_prefixed(r, "proxy.");
	printf(",\n \"proxy_tls\": ");
	ctlc_json_prefixed(r, "proxy_tls.");
	printf(",\n ");
	ctlc_json_rows(r, q);
	printf(",\n ");
	ctlc_json_rows(r, g);
	printf("}\n");
}

/* Label values escape backslash, quote and newline (exposition format). */
static void ctlc_prom_label(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\\' || s[i] == '"')
			printf("\\%c", s[i]);
		else if (s[i] == '\n')
			printf("\\n");
		else
			putchar(s[i]);
	}
}

/* The kernel's numbers for a queue (daemon/nfqproc.h): metrics of their own. */
static const struct {
	const char *field, *metric, *type, *help;
} ctlc_kernel_fields[] = {
	{ "backlog", "mtugate_queue_backlog", "gauge",
	  "Packets waiting in the kernel's queue for a verdict." },
	{ "kernel_dropped", "mtugate_queue_kernel_dropped_total", "counter",
	  "Packets the kernel dropped because the queue was full (fail_open = no)." },
	{ "user_dropped", "mtugate_queue_user_dropped_total", "counter",
	  "Packets the kernel dropped because the daemon's socket was full (fail_open = no)." },
};

static bool ctlc_kernel_field(const char *f)
{
	for (size_t i = 0; i < sizeof(ctlc_kernel_fields) / sizeof(ctlc_kernel_fields[0]); i++)
		if (strcmp(f, ctlc_kernel_fields[i].field) == 0)
			return true;
	return false;
}

/* {queue="N",kind="K"} and, given one, the outcome label. */
static void ctlc_prom_queue_labels(const struct ctlc_reply *r, const struct ctlc_rows *q,
				   const struct ctlc_row *row, const char *outcome)
{
	const char *kind = ctlc_field(r, q, row, "kind");

	printf("{queue=\"");
	ctlc_prom_label(row->name, row->nlen);
	printf("\",kind=\"");
	ctlc_prom_label(kind, strlen(kind));
	if (outcome)
		printf("\",outcome=\"%s", outcome);
	printf("\"}");
}

/* One metric for every queue: the packet outcome is a label, as in mtugate_packets_total. */
static void ctlc_prom_queues(const struct ctlc_reply *r, const struct ctlc_rows *q)
{
	size_t i, k;

	if (!q->n)
		return;
	printf("# HELP mtugate_queue_packets_total Packets handled on one NFQUEUE, by outcome.\n"
	       "# TYPE mtugate_queue_packets_total counter\n");
	for (i = 0; i < q->n; i++) {
		const struct ctlc_row *row = &q->row[i];

		for (k = row->first; k < row->last; k++) {
			const char *f = ctlc_field_name(q, r->kv[k].key);

			if (strcmp(f, "kind") == 0 || strcmp(f, "portid") == 0 || ctlc_kernel_field(f))
				continue;
			printf("mtugate_queue_packets_total");
			ctlc_prom_queue_labels(r, q, row, f);
			printf(" %s\n", r->kv[k].val);
		}
	}
	for (k = 0; k < sizeof(ctlc_kernel_fields) / sizeof(ctlc_kernel_fields[0]); k++) {
		bool head = false;

		for (i = 0; i < q->n; i++) {
			const char *v = ctlc_find(r, q, &q->row[i], ctlc_kernel_fields[k].field);

			if (!v)
				continue;	/* the kernel had no row for this queue */
			if (!head)
				printf("# HELP %s %s\n# TYPE %s %s\n", ctlc_kernel_fields[k].metric,
				       ctlc_kernel_fields[k].help, ctlc_kernel_fields[k].metric,
				       ctlc_kernel_fields[k].type);
			head = true;
			printf("%s", ctlc_kernel_fields[k].metric);
			ctlc_prom_queue_labels(r, q, &q->row[i], NULL);
			printf(" %s\n", v);
		}
	}
}

static void ctlc_prom_gauge(const char *name, const char *help, const char *labels,
			    const char *val)
{
	printf("# HELP %s %s\n# TYPE %s gauge\n%s%s %s\n", name, help, name, name, labels, val);
}

static void ctlc_stats_prom(const struct ctlc_reply *r, const struct ctlc_rows *q,
			    const struct ctlc_rows *g)
{
	size_t i, k;
	const char *v = ctlc_get(r, "version");

	/* Written only when the daemon answered: the textfile goes with it (--textfile). */
	ctlc_prom_gauge("mtugate_up", "1 while mtugated answers on its control socket.", "", "1");
	printf("# HELP mtugate_build_info The running mtugated's version as a label; always 1.\n"
	       "# TYPE mtugate_build_info gauge\nmtugate_build_info{version=\"");
	ctlc_prom_label(v, strlen(v));
	printf("\"} 1\n");
	ctlc_prom_gauge("mtugate_config_last_reload_successful",
			"1 when the last configuration load (start or reload) succeeded, 0 when it"
			" failed and the previous policy stayed in force.", "",
			ctlc_get(r, "config_last_reload_successful"));
	ctlc_prom_gauge("mtugate_config_last_reload_success_timestamp_seconds",
			"When the configuration in force was loaded, in Unix seconds.", "",
			ctlc_get(r, "config_loaded_s"));
	ctlc_prom_gauge("mtugate_uptime_seconds", "Seconds since mtugated started.", "",
			ctlc_get(r, "uptime_s"));
	if (ctlc_has(r, "rules_ok"))
		ctlc_prom_gauge("mtugate_rules_ok", "1 while mtugate's rules are loaded as this"
				" configuration prints them; 0 when a firewall reload flushed them, a"
				" chain lost its jump, or they are another configuration's.", "",
				ctlc_get(r, "rules_ok"));
	printf("# HELP mtugate_packets_total Packets the kernel queued to mtugated, counted by"
	       " outcome (see mtugatectl(8)).\n"
	       "# TYPE mtugate_packets_total counter\n");
	for (i = 0; i < r->n; i++)
		if (strncmp(r->kv[i].key, "packets.", 8) == 0)
			printf("mtugate_packets_total{outcome=\"%s\"} %s\n", r->kv[i].key + 8, r->kv[i].val);
	printf("# HELP mtugate_proxy_closed_total Connections the TLS proxy closed or refused before"
	       " they became tunnels, by reason (see mtugatectl(8)).\n"
	       "# TYPE mtugate_proxy_closed_total counter\n");
	for (i = 0; i < r->n; i++)
		if (strncmp(r->kv[i].key, "proxy.", 6) == 0)
			printf("mtugate_proxy_closed_total{reason=\"%s\"} %s\n", r->kv[i].key + 6, r->kv[i].val);
	for (i = 0; i < r->n; i++)
		if (strncmp(r->kv[i].key, "proxy_tls.", 10) == 0)
			printf("# HELP mtugate_proxy_tls_%s_total %s\n"
			       "# TYPE mtugate_proxy_tls_%s_total counter\nmtugate_proxy_tls_%s_total %s\n",
			       r->kv[i].key + 10, stats_proxy_tls_help(r->kv[i].key + 10),
			       r->kv[i].key + 10, r->kv[i].key + 10, r->kv[i].val);
	ctlc_prom_queues(r, q);
	if (!g->n)
		return;
	/* One metric per counter of the first group, one sample per group. */
	for (k = g->row[0].first; k < g->row[0].last; k++) {
		const char *f = ctlc_field_name(g, r->kv[k].key), *help = stats_group_help(f);
		/* Counters end in _total; a gauge (tunnels open now) does not. */
		bool gauge = strcmp(f, "sessions_active") == 0;
		const char *sfx = gauge ? "" : "_total";

		if (help)
			printf("# HELP mtugate_group_%s%s %s\n", f, sfx, help);
		printf("# TYPE mtugate_group_%s%s %s\n", f, sfx, gauge ? "gauge" : "counter");
		for (i = 0; i < g->n; i++) {
			printf("mtugate_group_%s%s{group=\"", f, sfx);
			ctlc_prom_label(g->row[i].name, g->row[i].nlen);
			printf("\"} %s\n", ctlc_field(r, g, &g->row[i], f));
		}
	}
}

static int ctlc_width(const char *s, int min)
{
	int n = (int)strlen(s);

	return n > min ? n : min;
}

/* A column as wide as its heading or its widest value (at least 8). */
static int ctlc_column_width(const struct ctlc_reply *r, const struct ctlc_rows *s, const char *f)
{
	int w = ctlc_width(f, 8);

	for (size_t i = 0; i < s->n; i++)
		w = ctlc_width(ctlc_field(r, s, &s->row[i], f), w);
	return w;
}

/* A heading line with the fields of the first row, then one line per row. */
/* Fields for scripts, not people: a queue's netlink port (mtugatectl check);
 * and a would_* counter of mode = observe that is 0 in every group (none
 * observes, or nothing would have changed), to keep the table narrow. */
static bool ctlc_table_hidden(const struct ctlc_reply *r, const struct ctlc_rows *s, const char *f)
{
	if (strncmp(f, "would_", 6) == 0) {
		for (size_t i = 0; i < s->n; i++)
			if (strcmp(ctlc_field(r, s, &s->row[i], f), "0") != 0)
				return false;
		return true;
	}
	return strcmp(f, "portid") == 0;
}

static void ctlc_table_rows(const struct ctlc_reply *r, const struct ctlc_rows *s)
{
	const struct ctlc_row *first = &s->row[0];
	int namew = (int)strlen(s->owner), *w;
	size_t i, k, ncol;

	if (!s->n)
		return;
	ncol = first->last - first->first;
	if (!(w = calloc(ncol ? ncol : 1, sizeof(*w))))
		return;
	for (i = 0; i < s->n; i++)
		if ((int)s->row[i].nlen > namew)
			namew = (int)s->row[i].nlen;
	printf("\n%-*s", namew, s->owner);
	for (k = 0; k < ncol; k++) {
		const char *f = ctlc_field_name(s, r->kv[first->first + k].key);

		if (ctlc_table_hidden(r, s, f))
			continue;
		w[k] = ctlc_column_width(r, s, f);
		printf(" %*s", w[k], f);
	}
	printf("\n");
	for (i = 0; i < s->n; i++) {
		printf("%-*.*s", namew, (int)s->row[i].nlen, s->row[i].name);
		for (k = 0; k < ncol; k++) {
			const char *f = ctlc_field_name(s, r->kv[first->first + k].key);

			if (!ctlc_table_hidden(r, s, f))
				printf(" %*s", w[k], ctlc_field(r, s, &s->row[i], f));
		}
		printf("\n");
	}
	free(w);
}

/* The "name.field" counters on one line: "name field=N field=N". */
static void ctlc_table_line(const struct ctlc_reply *r, const char *name)
{
	size_t i, n = strlen(name);
	bool any = false;

	for (i = 0; i < r->n; i++)
		if (strncmp(r->kv[i].key, name, n) == 0 && r->kv[i].key[n] == '.') {
			printf("%s %s=%s", any ? "" : name, r->kv[i].key + n + 1, r->kv[i].val);
			any = true;
		}
	if (any)
		printf("\n");
}

static void ctlc_stats_table(const struct ctlc_reply *r, const struct ctlc_rows *q,
			     const struct ctlc_rows *g)
{
	size_t i;

	printf("uptime %s s\n", ctlc_get(r, "uptime_s"));
	if (ctlc_has(r, "rules_ok"))
		printf("rules %s%s\n", strcmp(ctlc_get(r, "rules_ok"), "1") ? "NOT OK: " : "ok",
		       ctlc_has(r, "rules_problem") ? ctlc_get(r, "rules_problem") : "");
	printf("\n");
	for (i = 0; i < r->n; i++)
		if (strncmp(r->kv[i].key, "packets.", 8) == 0)
			printf("%*s ", ctlc_width(r->kv[i].val, (int)strlen(r->kv[i].key + 8)),
			       r->kv[i].key + 8);
	printf("\n");
	for (i = 0; i < r->n; i++)
		if (strncmp(r->kv[i].key, "packets.", 8) == 0)
			printf("%*s ", ctlc_width(r->kv[i].key + 8, (int)strlen(r->kv[i].val)),
			       r->kv[i].val);
	printf("\n");
	/* The proxy's closes before a tunnel, one line: "proxy not_diverted=0 ...",
	 * and its TLS: "proxy_tls handshakes=0 resumed=0 ..." */
	ctlc_table_line(r, "proxy");
	ctlc_table_line(r, "proxy_tls");
	ctlc_table_rows(r, q);
	ctlc_table_rows(r, g);
}

/* Print to path atomically (a temporary file renamed over it, mode 0644 for
 * node_exporter's user): a scrape never reads half a file. */
static int ctlc_textfile_begin(const char *path, char *tmp, size_t cap, int *saved)
{
	int fd;

	if ((size_t)snprintf(tmp, cap, "%s.%ld.tmp", path, (long)getpid()) >= cap)
		return -1;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		fprintf(stderr, "mtugatectl: %s: %s\n", tmp, strerror(errno));
		return -1;
	}
	fflush(stdout);
	*saved = dup(1);
	dup2(fd, 1);
	close(fd);
	return 0;
}

static int ctlc_textfile_end(const char *path, const char *tmp, int saved)
{
	bool ok = fflush(stdout) == 0 && !ferror(stdout) && fsync(1) == 0;

	dup2(saved, 1);
	close(saved);
	if (!ok || rename(tmp, path) < 0) {
		fprintf(stderr, "mtugatectl: %s: %s\n", path, strerror(errno));
		unlink(tmp);
		return 1;
	}
	return 0;
}

static int ctlc_stats(struct ctlc *x, int argc, char **argv)
{
	enum { TABLE, JSON, PROM } fmt = TABLE;
	struct ctlc_rows q = { .owner = "queue" }, g = { .owner = "group" };
	struct ctlc_reply r;
	struct ctlc_row *rows;
	const char *textfile = NULL;
	char tmp[4096];
	int saved = -1, rc = 0;

	if (argc == 3 && strcmp(argv[1], "--textfile") == 0) {
		textfile = argv[2];
		fmt = PROM;
	} else if (argc > 2 || (argc == 2 && strcmp(argv[1], "--json") &&
				strcmp(argv[1], "--prometheus"))) {
		fprintf(stderr, "usage: mtugatectl stats [--json | --prometheus | --textfile FILE]\n");
		return 2;
	} else if (argc == 2) {
		fmt = strcmp(argv[1], "--json") == 0 ? JSON : PROM;
	}
	if (ctlc_request(x, "stats", &r) < 0) {
		/* No daemon, no numbers: stale ones must never look live. */
		if (textfile && unlink(textfile) < 0 && errno != ENOENT)
			fprintf(stderr, "mtugatectl: %s: %s\n", textfile, strerror(errno));
		return 1;
	}
	rows = calloc(r.n + 1, sizeof(*rows));
	if (!rows || (textfile && ctlc_textfile_begin(textfile, tmp, sizeof(tmp), &saved) < 0)) {
		free(rows);
		ctlc_reply_free(&r);
		return 1;
	}
	/* A row starts at a reply line of its own: r.n rows hold both owners. */
	q.row = rows;
	q.n = ctlc_rows(&r, q.owner, q.row);
	g.row = rows + q.n;
	g.n = ctlc_rows(&r, g.owner, g.row);
	if (fmt == JSON)
		ctlc_stats_json(&r, &q, &g);
	else if (fmt == PROM)
		ctlc_stats_prom(&r, &q, &g);
	else
		ctlc_stats_table(&r, &q, &g);
	if (textfile)
		rc = ctlc_textfile_end(textfile, tmp, saved);
	free(rows);
	ctlc_reply_free(&r);
	return rc;
}

/* Replies printed as they come, one "key value" per line, aligned. */
static int ctlc_plain(struct ctlc *x, const char *cmd, int argc)
{
	struct ctlc_reply r;
	int w = 0;
	size_t i;

	if (argc > 1) {
		fprintf(stderr, "usage: mtugatectl %s\n", cmd);
		return 2;
	}
	if (ctlc_request(x, cmd, &r) < 0)
		return 1;
	for (i = 0; i < r.n; i++)
		w = ctlc_width(r.kv[i].key, w);
	for (i = 0; i < r.n; i++)
		printf("%-*s  %s\n", w, r.kv[i].key, r.kv[i].val);
	ctlc_reply_free(&r);
	return 0;
}

static int ctlc_groups(struct ctlc *x, int argc, char **argv)
{
	(void)argv;
	return ctlc_plain(x, "groups", argc);
}

/* A table for people, one JSON object per tunnel for scripts. */
static int ctlc_sessions(struct ctlc *x, int argc, char **argv)
{
	bool json = argc == 2 && strcmp(argv[1], "--json") == 0;
	struct strbuf out = { 0 };
	struct sessview *v = NULL;
	struct ctlc_reply r;
	size_t i, n = 0;
	int rc;

	if (argc > 2 || (argc == 2 && !json)) {
		fprintf(stderr, "usage: mtugatectl sessions [--json]\n");
		return 2;
	}
	if (ctlc_request(x, "sessions", &r) < 0)
		return 1;
	if (r.n && !(v = calloc(r.n, sizeof(*v)))) {
		ctlc_reply_free(&r);
		return 1;
	}
	for (i = 0; i < r.n; i++) {
		if (strcmp(r.kv[i].key, "session"))
			continue;
		if (sessview_parse(r.kv[i].val, &v[n]) < 0)
			fprintf(stderr, "mtugatectl: a session line not understood: %s\n", r.kv[i].val);
		else
			n++;
	}
	if (json) {
		strbuf_printf(&out, "[");
		for (i = 0; i < n; i++) {
			strbuf_printf(&out, "%s\n ", i ? "," : "");
			sessview_json(&v[i], &out);
		}
		strbuf_printf(&out, "%s]\n", n ? "\n" : "");
	} else {
		sessview_table(v, n, (int64_t)time(NULL), &out);
	}
	rc = out.oom ? 1 : 0;
	fwrite(out.buf, 1, out.len, stdout);
	strbuf_free(&out);
	free(v);
	ctlc_reply_free(&r);
	return rc;
}

static int ctlc_ping(struct ctlc *x, int argc, char **argv)
{
	(void)argv;
	return ctlc_plain(x, "ping", argc);
}

static int ctlc_version(struct ctlc *x, int argc, char **argv)
{
	(void)argv;
	return ctlc_plain(x, "version", argc);
}

static int ctlc_reload(struct ctlc *x, int argc, char **argv)
{
	struct ctlc_reply r;
	int rc = 1;
	bool rules = false;
	size_t i;

	(void)argv;
	if (argc > 1) {
		fprintf(stderr, "usage: mtugatectl reload\n");
		return 2;
	}
	if (ctlc_request(x, "reload", &r) < 0)
		return 1;
	for (i = 0; i < r.n; i++) {
		if (strcmp(r.kv[i].key, "result") == 0 && strcmp(r.kv[i].val, "ok") == 0)
			rc = 0;
		else if (strcmp(r.kv[i].key, "rules") == 0 && strcmp(r.kv[i].val, "changed") == 0)
			rules = true;
		else if (strcmp(r.kv[i].key, "error") == 0)
			fprintf(stderr, "%s\n", r.kv[i].val);
	}
	if (rc == 0)
		printf("reload: ok\n%s", rules ? "reload: the firewall rules this configuration needs"
			" have changed: re-apply them (mtugatectl rules)\n" : "");
	else
		fprintf(stderr, "mtugatectl: reload failed: the running policy stays in force\n");
	ctlc_reply_free(&r);
	return rc;
}

/* conntrackd's Address Ignore: the node's own addresses, read here (the
 * printer is pure), and those given with --ignore (the virtual addresses
 * keepalived moves, while this node is the backup). */
#define CTLC_IGNORE_MAX 256

static size_t ctlc_own_addrs(struct ipaddr *out, size_t cap)
{
	struct ifaddrs *ifa, *i;
	size_t n = 0;

	if (getifaddrs(&ifa) < 0)
		return 0;
	for (i = ifa; i && n < cap; i = i->ifa_next) {
		if (!i->ifa_addr || (i->ifa_addr->sa_family != AF_INET && i->ifa_addr->sa_family != AF_INET6))
			continue;
		memset(&out[n], 0, sizeof(out[n]));
		out[n].family = (uint8_t)i->ifa_addr->sa_family;
		if (out[n].family == AF_INET)
			memcpy(out[n].addr, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, 4);
		else
			memcpy(out[n].addr, &((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr, 16);
		n++;
	}
	freeifaddrs(ifa);
	return n;
}

static int ctlc_rules(struct ctlc *x, int argc, char **argv)
{
	const char *what = NULL;
	struct diag d = { 0 };
	struct strbuf out = { 0 };
	struct policy *p = NULL;
	struct conf c;
	int hooks = 1, rc = 1, i;
	bool hold = false;

	struct ipaddr ign[CTLC_IGNORE_MAX];
	size_t nign = 0;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--no-hooks") == 0)
			hooks = 0;
		else if (strcmp(argv[i], "--hold") == 0)
			hold = true;
		else if (!strcmp(argv[i], "--ignore") && i + 1 < argc && nign < CTLC_IGNORE_MAX &&
			 addr_parse(&ign[nign], argv[i + 1]) == 0)
			i++, nign++;
		else if (!what && (!strcmp(argv[i], "--iptables") || !strcmp(argv[i], "--ip6tables") ||
				   !strcmp(argv[i], "--nft") || !strcmp(argv[i], "--routes") ||
				   !strcmp(argv[i], "--hooks") || !strcmp(argv[i], "--ipset") ||
				   !strcmp(argv[i], "--digest") || !strcmp(argv[i], "--conntrackd")))
			what = argv[i];
		else
			what = "";
	}
	if (!what || !*what || (nign && strcmp(what, "--conntrackd")) ||
	    (hold && strcmp(what, "--iptables") && strcmp(what, "--ip6tables") &&
	     strcmp(what, "--nft") && strcmp(what, "--hooks"))) {
		fprintf(stderr, "usage: mtugatectl rules --iptables | --ip6tables [--no-hooks]"
			" | --ipset | --nft | --routes | --hooks | --digest"
			" | --conntrackd [--ignore ADDRESS]...\n"
			"       mtugatectl rules --hold --iptables | --ip6tables [--no-hooks]"
			" | --nft | --hooks\n");
		return 2;
	}
	conf_defaults(&c);
	if (conf_load(&c, x->conf, &d) < 0)
		goto out;
	if (!hold && strcmp(what, "--routes") && strcmp(what, "--hooks") && strcmp(what, "--ipset") &&
	    strcmp(what, "--conntrackd") && !(p = policy_load_dir(c.daemon.groups_dir, &d)))
		goto out;
	if (hold) {
		/* What a draining proxy needs once the rules above are unhooked. */
		if (!strcmp(what, "--iptables"))
			rulehold_iptables(&c, AF_INET, hooks, &out);
		else if (!strcmp(what, "--ip6tables"))
			rulehold_iptables(&c, AF_INET6, hooks, &out);
		else if (!strcmp(what, "--nft"))
			rulehold_nft(&c, &out);
		else
			rulehold_hooks(&c, &out);
	} else if (!strcmp(what, "--digest")) {
		/* What the rules unit records, for the daemon to tell stale rules. */
		struct deploy_expect *ipt = calloc(2, sizeof(*ipt));
		uint64_t h = 0;

		if (ipt && deploy_expect_conf(ipt, ipt + 1, &h, &c, p) == 0)
			strbuf_printf(&out, "%016llx\n", (unsigned long long)h);
		else
			out.oom = true;
		free(ipt);
	} else if (!strcmp(what, "--iptables"))
		rules_iptables(&c, p, AF_INET, hooks, &out);
	else if (!strcmp(what, "--ip6tables"))
		rules_iptables(&c, p, AF_INET6, hooks, &out);
	else if (!strcmp(what, "--nft"))
		rules_nft(&c, p, &out);
	else if (!strcmp(what, "--routes"))
		rules_routes(&c, &out);
	else if (!strcmp(what, "--ipset"))
		rules_ipset(&c, &out);
	else if (!strcmp(what, "--conntrackd")) {
		nign += ctlc_own_addrs(ign + nign, CTLC_IGNORE_MAX - nign);
		rules_conntrackd(&c, ign, nign, &out);
	} else
		rules_hooks(&c, &out);
	if (out.oom) {
		fprintf(stderr, "mtugatectl: out of memory\n");
		goto out;
	}
	if (out.len)
		fwrite(out.buf, 1, out.len, stdout);
	rc = fflush(stdout) == 0 ? 0 : 1;
out:
	diag_print(&d, stderr);
	diag_free(&d);
	policy_free(p);
	strbuf_free(&out);
	return rc;
}

struct ctlc_cmd {
	const char *name;
	int (*fn)(struct ctlc *x, int argc, char **argv);
	const char *help;
};

/* The groups' "group.NAME.FIELD" counters that tell whether a group has
 * tunnels and whether its pool's SYNs reach the mss queue. */
static void ctlc_check_use(const struct ctlc_reply *r, const struct policy *p, struct check_use *use)
{
	/* dtls_port_rewritten flows are counted in dtls_relayed too. */
	static const char *const tunnels[] = { "sessions", "dtls_relayed", "dtls_blocked", NULL };
	static const char *const syns[] = { "mss_rewritten", "mss_inserted", "mss_unchanged", NULL };

	for (size_t i = 0; i < r->n; i++) {
		const char *k = r->kv[i].key, *field = strrchr(k, '.');
		unsigned long long v;

		if (strncmp(k, "group.", 6) || !field || sscanf(r->kv[i].val, "%llu", &v) != 1)
			continue;
		for (size_t g = 0; g < policy_count(p); g++) {
			const char *name = policy_group(p, g)->name;
			size_t len = strlen(name);

			if ((size_t)(field - k) != 6 + len || strncmp(k + 6, name, len))
				continue;
			for (const char *const *f = tunnels; *f; f++)
				use[g].tunnels += strcmp(field + 1, *f) ? 0 : v;
			for (const char *const *f = syns; *f; f++)
				use[g].syns += strcmp(field + 1, *f) ? 0 : v;
		}
	}
}

/* The groups whose headend asked for a client certificate: each
 * "group.NAME.upstream_cert_requested" above 0, and what the proxy-wide
 * count has beyond them (connections of no group) as group "". */
static void ctlc_check_certreq(struct check_env *e, const struct ctlc_reply *r)
{
	unsigned long long total = 0, grouped = 0, v;
	const size_t max = sizeof(e->certreq) / sizeof(e->certreq[0]);
	const char *f = ".upstream_cert_requested";
	size_t i, kl, fl = strlen(f);

	for (i = 0; r && i < r->n; i++) {
		kl = strlen(r->kv[i].key);
		if (sscanf(r->kv[i].val, "%llu", &v) != 1 || !v)
			continue;
		if (!strcmp(r->kv[i].key, "proxy_tls.upstream_cert_requested"))
			total = v;
		else if (!strncmp(r->kv[i].key, "group.", 6) && kl > 6 + fl &&
			 !strcmp(r->kv[i].key + kl - fl, f) && e->ncertreq < max) {
			snprintf(e->certreq[e->ncertreq].group, sizeof(e->certreq[0].group), "%.*s",
				 (int)(kl - 6 - fl), r->kv[i].key + 6);
			e->certreq[e->ncertreq++].n = v;
			grouped += v;
		}
	}
	if (total > grouped && e->ncertreq < max)
		e->certreq[e->ncertreq++] = (struct check_certreq){ "", total - grouped };
}

/* The deployment against the configuration (daemon/check.c): exit 0 when
 * every check passed, 1 otherwise. */
static int ctlc_check(struct ctlc *x, int argc, char **argv)
{
	struct diag d = { 0 };
	struct policy *p = NULL;
	struct check_use *use = NULL;
	struct ctlc_reply r;
	struct conf c;
	char self[4096];
	ssize_t n;
	int rc = 1;

	(void)argv;
	if (argc != 1) {
		fprintf(stderr, "usage: mtugatectl check\n");
		return 2;
	}
	conf_defaults(&c);
	if (conf_load(&c, x->conf, &d) < 0 || !(p = policy_load_dir(c.daemon.groups_dir, &d))) {
		diag_print(&d, stderr);
		printf("PROBLEM  the configuration has errors (above)\n         fix: mtugated -t -c %s\n",
		       x->conf);
		goto out;
	}
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	self[n > 0 ? n : 0] = '\0';
	printf("ok       configuration %s: %zu group(s)\n", c.path, policy_count(p));
	struct check_env e = { .conf = &c, .policy = p, .self = self, .out = stdout,
			       .daemon_answers = ctlc_request(x, "stats", &r) == 0 };
	/* The daemon's queues: "queue.N.portid" lines. */
	for (size_t i = 0; e.daemon_answers && i < r.n; i++) {
		unsigned num, port;
		char tail[8];

		if (e.nqueues < sizeof(e.queues) / sizeof(e.queues[0]) &&
		    sscanf(r.kv[i].key, "queue.%u.%7s", &num, tail) == 2 && !strcmp(tail, "portid") &&
		    sscanf(r.kv[i].val, "%u", &port) == 1)
			e.queues[e.nqueues++] = (struct check_queue){ num, port };
	}
	if (e.daemon_answers && (use = calloc(policy_count(p) + 1, sizeof(*use)))) {
		ctlc_check_use(&r, p, use);
		e.use = use;
	}
	ctlc_check_certreq(&e, e.daemon_answers ? &r : NULL);
	if (e.daemon_answers)
		ctlc_reply_free(&r);
	rc = check_run(&e) ? 1 : 0;
	free(use);
out:
	diag_free(&d);
	policy_free(p);
	return rc;
}

static const struct ctlc_cmd ctlc_cmds[] = {
	{ "stats", ctlc_stats, "stats [--json | --prometheus | --textfile FILE]   counters, per group, per queue and in total" },
	{ "groups", ctlc_groups, "groups                          the policy in force, as the daemon compiled it" },
	{ "sessions", ctlc_sessions, "sessions [--json]               proxied tunnels: user, group, client, MTUs, DTLS state, reconnects, bytes" },
	{ "rules", ctlc_rules, "rules [--hold] --iptables | --ip6tables [--no-hooks] | --ipset | --nft | --routes | --hooks | --digest\n"
	  "      | --conntrackd [--ignore ADDRESS]...\n"
	  "                                  what this configuration needs, read from the config\n"
	  "                                  file (no daemon needed)" },
	{ "check", ctlc_check, "check                           the running deployment against the configuration" },
	{ "reload", ctlc_reload, "reload                          as SIGHUP, and report the result" },
	{ "ping", ctlc_ping, "ping                            check that mtugated answers" },
	{ "version", ctlc_version, "version                         the running daemon's version (-V: this program's)" },
};

static void ctlc_usage(FILE *f)
{
	size_t i;

	fprintf(f, "usage: mtugatectl [-s SOCKET] [-c FILE] COMMAND\n"
		"  -s, --socket SOCKET  control socket (default: control_socket of FILE, else %s)\n"
		"  -c, --config FILE    configuration (default %s)\n"
		"  -V, --version        print the version\n"
		"  -h, --help           this text (also: mtugatectl help)\n"
		"commands:\n", RUNSTATEDIR "/mtugate/mtugate.sock", SYSCONFDIR "/mtugate/mtugate.conf");
	for (i = 0; i < sizeof(ctlc_cmds) / sizeof(ctlc_cmds[0]); i++)
		fprintf(f, "  %s\n", ctlc_cmds[i].help);
}

/* No -s: the configuration's control_socket if it can be read, else the default. */
static void ctlc_default_socket(struct ctlc *x)
{
	struct diag d = { 0 };
	struct conf c;

	snprintf(x->sock, sizeof(x->sock), "%s", RUNSTATEDIR "/mtugate/mtugate.sock");
	if (access(x->conf, R_OK) < 0)
		return;
	conf_defaults(&c);
	if (conf_load(&c, x->conf, &d) == 0 && c.daemon.control_socket[0])
		snprintf(x->sock, sizeof(x->sock), "%s", c.daemon.control_socket);
	diag_free(&d);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct ctlc x = { .conf = SYSCONFDIR "/mtugate/mtugate.conf" };
	const char *sock = NULL;
	size_t i;
	int o;

	while ((o = getopt_long(argc, argv, "+s:c:hV", opts, NULL)) != -1) {
		switch (o) {
		case 's':
			sock = optarg;
			break;
		case 'c':
			x.conf = optarg;
			break;
		case 'h':
			ctlc_usage(stdout);
			return 0;
		case 'V':
			printf("mtugatectl %s\n", MTUGATE_VERSION);
			return 0;
		default:
			ctlc_usage(stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		ctlc_usage(stderr);
		return 2;
	}
	if (!strcmp(argv[optind], "help") || !strcmp(argv[optind], "--help")) {
		ctlc_usage(stdout);
		return 0;
	}
	for (i = 0; i < sizeof(ctlc_cmds) / sizeof(ctlc_cmds[0]); i++) {
		if (strcmp(argv[optind], ctlc_cmds[i].name))
			continue;
		if (sock) {
			if (strlen(sock) >= sizeof(x.sock)) {
				fprintf(stderr, "mtugatectl: socket path too long: %s\n", sock);
				return 1;
			}
			strcpy(x.sock, sock);
		} else if (strcmp(ctlc_cmds[i].name, "rules")) {
			ctlc_default_socket(&x);
		}
		return ctlc_cmds[i].fn(&x, argc - optind, argv + optind);
	}
	fprintf(stderr, "mtugatectl: unknown command '%s'\n", argv[optind]);
	ctlc_usage(stderr);
	return 2;
}
