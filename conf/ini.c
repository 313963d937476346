/* The only iniparser user. iniparser 4.1 gives values but no line numbers,
 * keeps the last of duplicate keys silently and mixes up ':' in names, so
 * every file is also scanned here, with iniparser's own line grammar, into a
 * section/key -> line index. */
#include "conf/ini.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <iniparser.h>

#include "conf/diag.h"

/* iniparser 4.1 reads lines into 1024 bytes and fails beyond. */
#define INI_LINE_MAX 1000
#define INI_NAME_MAX 64

struct ini_sect {
	char *name;
	int line;
};

struct ini {
	char *path;
	struct ini_key *keys;
	size_t nkeys, capkeys;
	struct ini_sect *sects;
	size_t nsects, capsects;
};

enum ini_line { INI_EMPTY, INI_SECTION, INI_VALUE, INI_ERROR };

/* Scanner state across lines. */
struct ini_scan {
	struct ini *ini;
	struct diag *d;
	const char *cur;	/* current section name; NULL before any */
	bool bad_section;	/* the current section header was invalid */
	bool oom;
};

static char *ini_strip(char *s)
{
	size_t n;

	while (isspace((unsigned char)*s))
		s++;
	n = strlen(s);
	while (n && isspace((unsigned char)s[n - 1]))
		s[--n] = '\0';
	return s;
}

static void ini_lower(char *s)
{
	for (; *s; s++)
		*s = (char)tolower((unsigned char)*s);
}

/*
 * One logical line, classified as iniparser_line() does: the same sscanf
 * patterns, so values match what iniparser stores. a and b hold at least
 * strlen(s) + 1 bytes. On INI_SECTION a is the name, on INI_VALUE a is the
 * key and b the value (both stripped, key lowercased).
 */
static enum ini_line ini_classify(char *s, char *a, char *b, char **key, char **value)
{
	size_t len = strlen(s);

	*key = *value = NULL;
	if (len == 0 || s[0] == '#' || s[0] == ';')
		return INI_EMPTY;
	if (s[0] == '[' && s[len - 1] == ']') {
		memcpy(a, s + 1, len - 2);
		a[len - 2] = '\0';
		*key = ini_strip(a);
		ini_lower(*key);
		return INI_SECTION;
	}
	if (sscanf(s, "%[^=] = \"%[^\"]\"", a, b) == 2 || sscanf(s, "%[^=] = '%[^\']'", a, b) == 2) {
		*value = b;
	} else if (sscanf(s, "%[^=] = %[^;#]", a, b) == 2) {
		*value = ini_strip(b);
		if (!strcmp(*value, "\"\"") || !strcmp(*value, "''"))
			**value = '\0';
	} else if (sscanf(s, "%[^=] = %[;#]", a, b) == 2 || sscanf(s, "%[^=] %[=]", a, b) == 2) {
		b[0] = '\0';
		*value = b;
	} else {
		return INI_ERROR;
	}
	*key = ini_strip(a);
	ini_lower(*key);
	return **key ? INI_VALUE : INI_ERROR;
}

static struct ini_sect *ini_find_sect(const struct ini *ini, const char *name)
{
	for (size_t i = 0; i < ini->nsects; i++)
		if (!strcmp(ini->sects[i].name, name))
			return &ini->sects[i];
	return NULL;
}

static struct ini_key *ini_find_key(const struct ini *ini, const char *section, const char *key)
{
	for (size_t i = 0; i < ini->nkeys; i++)
		if (!strcmp(ini->keys[i].section, section) && !strcmp(ini->keys[i].key, key))
			return &ini->keys[i];
	return NULL;
}

static bool ini_name_ok(struct ini_scan *sc, int line, const char *what, const char *name)
{
	/* iniparser stores "section:key": a ':' would make two names collide. */
	if (strchr(name, ':')) {
		diag_add(sc->d, sc->ini->path, line, "':' is not allowed in a %s name ('%s')", what,
			 name);
		return false;
	}
	if (strchr(name, '[') || strchr(name, ']')) {
		diag_add(sc->d, sc->ini->path, line, "invalid %s name '%s'", what, name);
		return false;
	}
	return true;
}

static void ini_add_section(struct ini_scan *sc, int line, const char *name)
{
	struct ini *ini = sc->ini;
	struct ini_sect *old;

	sc->bad_section = true;
	if (!*name) {
		diag_add(sc->d, ini->path, line, "empty section name");
		return;
	}
	if (!ini_name_ok(sc, line, "section", name))
		return;
	sc->bad_section = false;
	old = ini_find_sect(ini, name);
	if (old) {
		/* Keys of the repeated section still count, for duplicate checks. */
		diag_add(sc->d, ini->path, line, "duplicate section [%s] (first at line %d)", name,
			 old->line);
		sc->cur = old->name;
		return;
	}
	if (ini->nsects == ini->capsects) {
		size_t ncap = ini->capsects ? 2 * ini->capsects : 8;
		struct ini_sect *nv = realloc(ini->sects, ncap * sizeof(*nv));

		if (!nv)
			goto oom;
		ini->sects = nv;
		ini->capsects = ncap;
	}
	ini->sects[ini->nsects].name = strdup(name);
	if (!ini->sects[ini->nsects].name)
		goto oom;
	ini->sects[ini->nsects].line = line;
	sc->cur = ini->sects[ini->nsects++].name;
	return;
oom:
	sc->oom = true;
}

static void ini_add_key(struct ini_scan *sc, int line, const char *key, const char *value)
{
	struct ini *ini = sc->ini;
	struct ini_key *old, *k;

	if (sc->bad_section)
		return;
	if (!sc->cur) {
		diag_add(sc->d, ini->path, line, "key '%s' outside any section", key);
		return;
	}
	if (!ini_name_ok(sc, line, "key", key))
		return;
	old = ini_find_key(ini, sc->cur, key);
	if (old) {
		diag_add(sc->d, ini->path, line, "duplicate key '%s' in [%s] (first at line %d)", key,
			 sc->cur, old->line);
		return;
	}
	if (ini->nkeys == ini->capkeys) {
		size_t ncap = ini->capkeys ? 2 * ini->capkeys : 16;
		struct ini_key *nv = realloc(ini->keys, ncap * sizeof(*nv));

		if (!nv) {
			sc->oom = true;
			return;
		}
		ini->keys = nv;
		ini->capkeys = ncap;
	}
	k = &ini->keys[ini->nkeys];
	k->section = sc->cur;
	k->key = strdup(key);
	k->value = strdup(value);
	k->line = line;
	if (!k->key || !k->value) {
		free((char *)k->key);
		free((char *)k->value);
		sc->oom = true;
		return;
	}
	ini->nkeys++;
}

static void ini_scan_line(struct ini_scan *sc, int line, char *text)
{
	char *s = ini_strip(text);
	size_t len = strlen(s);
	char *a = malloc(len + 1), *b = malloc(len + 1);
	char *key, *value;

	if (!a || !b) {
		sc->oom = true;
		goto out;
	}
	switch (ini_classify(s, a, b, &key, &value)) {
	case INI_EMPTY:
		break;
	case INI_SECTION:
		ini_add_section(sc, line, key);
		break;
	case INI_VALUE:
		ini_add_key(sc, line, key, value);
		break;
	case INI_ERROR:
		diag_add(sc->d, sc->ini->path, line,
			 "syntax error: expected '[section]' or 'key = value'");
		break;
	}
out:
	free(a);
	free(b);
}

/* Physical lines -> logical ones: a trailing backslash continues the line
 * with the next one, as in iniparser. Logical lines carry their first line. */
static void ini_scan_file(struct ini_scan *sc, FILE *f)
{
	char *raw = NULL, *acc = NULL;
	size_t cap = 0, acclen = 0;
	ssize_t n;
	int lineno = 0, accline = 0;

	while ((n = getline(&raw, &cap, f)) >= 0) {
		size_t len = (size_t)n;
		char *nacc;

		lineno++;
		if (memchr(raw, '\0', len)) {
			diag_add(sc->d, sc->ini->path, lineno, "NUL byte in line");
			goto drop;
		}
		while (len && isspace((unsigned char)raw[len - 1]))
			len--;
		raw[len] = '\0';
		if (!acc)
			accline = lineno;
		if (acclen + len > INI_LINE_MAX) {
			diag_add(sc->d, sc->ini->path, lineno, "line too long (over %d characters)",
				 INI_LINE_MAX);
			goto drop;
		}
		nacc = realloc(acc, acclen + len + 1);
		if (!nacc) {
			sc->oom = true;
			goto drop;
		}
		acc = nacc;
		memcpy(acc + acclen, raw, len + 1);
		acclen += len;
		if (acclen && acc[acclen - 1] == '\\') {
			acc[--acclen] = '\0';
			continue;
		}
		ini_scan_line(sc, accline, acc);
drop:
		free(acc);
		acc = NULL;
		acclen = 0;
	}
	if (acc)
		ini_scan_line(sc, accline, acc);
	free(acc);
	free(raw);
}

static int ini_silent(const char *fmt, ...)
{
	(void)fmt;
	return 0;
}

/* Values from iniparser itself, for files our scan found clean. */
static void ini_take_values(struct ini *ini)
{
	dictionary *dict;

	/* The callback is process-wide; ours reports syntax errors already. */
	iniparser_set_error_callback(ini_silent);
	dict = iniparser_load(ini->path);
	if (!dict)
		return;
	for (size_t i = 0; i < ini->nkeys; i++) {
		struct ini_key *k = &ini->keys[i];
		char *entry = NULL;
		const char *v;
		char *copy;

		if (asprintf(&entry, "%s:%s", k->section, k->key) < 0)
			break;
		v = iniparser_getstring(dict, entry, NULL);
		free(entry);
		if (!v || !strcmp(v, k->value))
			continue;
		copy = strdup(v);
		if (!copy)
			break;
		free((char *)k->value);
		k->value = copy;
	}
	iniparser_freedict(dict);
}

struct ini *ini_open(const char *path, struct diag *d)
{
	struct ini_scan sc = { .d = d };
	struct ini *ini;
	size_t before = diag_count(d);
	FILE *f = fopen(path, "re");

	if (!f) {
		diag_add(d, path, 0, "cannot open: %s", strerror(errno));
		return NULL;
	}
	ini = calloc(1, sizeof(*ini));
	if (!ini || !(ini->path = strdup(path))) {
		free(ini);
		fclose(f);
		diag_add(d, path, 0, "out of memory");
		return NULL;
	}
	sc.ini = ini;
	ini_scan_file(&sc, f);
	if (ferror(f))
		diag_add(d, path, 0, "read error: %s", strerror(errno));
	fclose(f);
	if (sc.oom)
		diag_add(d, path, 0, "out of memory");
	if (diag_count(d) == before)
		ini_take_values(ini);
	return ini;
}

void ini_close(struct ini *ini)
{
	if (!ini)
		return;
	for (size_t i = 0; i < ini->nkeys; i++) {
		free((char *)ini->keys[i].key);
		free((char *)ini->keys[i].value);
	}
	for (size_t i = 0; i < ini->nsects; i++)
		free(ini->sects[i].name);
	free(ini->keys);
	free(ini->sects);
	free(ini->path);
	free(ini);
}

const char *ini_path(const struct ini *ini)
{
	return ini->path;
}

const char *ini_get(const struct ini *ini, const char *section, const char *key, int *line)
{
	const struct ini_key *k = ini_find_key(ini, section, key);

	if (line)
		*line = k ? k->line : 0;
	return k ? k->value : NULL;
}

int ini_section_line(const struct ini *ini, const char *section)
{
	const struct ini_sect *s = ini_find_sect(ini, section);

	return s ? s->line : 0;
}

size_t ini_count(const struct ini *ini)
{
	return ini->nkeys;
}

const struct ini_key *ini_key_at(const struct ini *ini, size_t i)
{
	return i < ini->nkeys ? &ini->keys[i] : NULL;
}

unsigned ini_distance(const char *a, const char *b, unsigned cap)
{
	/* Three rows of optimal string alignment distance: enough for names. */
	unsigned rows[3][INI_NAME_MAX + 1];
	size_t la = strlen(a), lb = strlen(b);
	unsigned *pp = rows[0], *p = rows[1], *c = rows[2];

	if (la > INI_NAME_MAX || lb > INI_NAME_MAX)
		return cap + 1;
	if ((la > lb ? la - lb : lb - la) > cap)
		return cap + 1;
	for (size_t j = 0; j <= lb; j++)
		p[j] = (unsigned)j;
	for (size_t i = 1; i <= la; i++) {
		unsigned *t;

		c[0] = (unsigned)i;
		for (size_t j = 1; j <= lb; j++) {
			unsigned cost = a[i - 1] != b[j - 1];
			unsigned v = p[j - 1] + cost;

			if (p[j] + 1 < v)
				v = p[j] + 1;
			if (c[j - 1] + 1 < v)
				v = c[j - 1] + 1;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
			    pp[j - 2] + 1 < v)
				v = pp[j - 2] + 1;
			c[j] = v;
		}
		t = pp;
		pp = p;
		p = c;
		c = t;
	}
	return p[lb] > cap ? cap + 1 : p[lb];
}

/* Close enough to suggest: at most two edits, and fewer than the name has. */
static bool ini_close_name(const char *typed, const char *known, unsigned *best)
{
	unsigned dist = ini_distance(typed, known, 2);

	if (dist > 2 || dist >= strlen(typed) || dist >= *best)
		return false;
	*best = dist;
	return true;
}

static const struct ini_schema *ini_schema_find(const struct ini_schema *schema, size_t n,
						const char *section)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(schema[i].section, section))
			return &schema[i];
	return NULL;
}

static bool ini_schema_has(const struct ini_schema *s, const char *key)
{
	for (const char *const *k = s->keys; *k; k++)
		if (!strcmp(*k, key))
			return true;
	return false;
}

static void ini_unknown_section(const struct ini *ini, const struct ini_sect *sect,
				const struct ini_schema *schema, size_t n, struct diag *d)
{
	const char *guess = NULL;
	unsigned best = 3;
	char list[256] = "";
	size_t used = 0;

	for (size_t i = 0; i < n; i++)
		if (ini_close_name(sect->name, schema[i].section, &best))
			guess = schema[i].section;
	if (guess) {
		diag_add(d, ini->path, sect->line, "unknown section [%s]; did you mean [%s]?",
			 sect->name, guess);
		return;
	}
	for (size_t i = 0; i < n && used < sizeof(list); i++) {
		int w = snprintf(list + used, sizeof(list) - used, "%s[%s]",
				 i == 0 ? "" : i + 1 == n ? " or " : ", ", schema[i].section);

		if (w > 0)
			used += (size_t)w;
	}
	diag_add(d, ini->path, sect->line, "unknown section [%s]; expected %s", sect->name, list);
}

static void ini_unknown_key(const struct ini *ini, const struct ini_key *k,
			    const struct ini_schema *schema, size_t n, struct diag *d)
{
	const struct ini_schema *own = ini_schema_find(schema, n, k->section), *where = NULL;
	const char *guess = NULL;
	unsigned best = 3;

	for (size_t i = 0; i < n; i++)
		if (&schema[i] != own && ini_schema_has(&schema[i], k->key)) {
			diag_add(d, ini->path, k->line, "unknown key '%s' in [%s]; it belongs in [%s]",
				 k->key, k->section, schema[i].section);
			return;
		}
	/* A close name in the key's own section wins over one elsewhere. */
	for (const char *const *c = own->keys; *c; c++)
		if (ini_close_name(k->key, *c, &best))
			guess = *c;
	for (size_t i = 0; i < n && !guess; i++)
		for (const char *const *c = schema[i].keys; *c; c++)
			if (&schema[i] != own && ini_close_name(k->key, *c, &best)) {
				guess = *c;
				where = &schema[i];
			}
	if (!guess)
		diag_add(d, ini->path, k->line, "unknown key '%s' in [%s]", k->key, k->section);
	else if (!where)
		diag_add(d, ini->path, k->line, "unknown key '%s' in [%s]; did you mean '%s'?",
			 k->key, k->section, guess);
	else
		diag_add(d, ini->path, k->line,
			 "unknown key '%s' in [%s]; did you mean '%s' in [%s]?", k->key,
			 k->section, guess, where->section);
}

size_t ini_check_schema(const struct ini *ini, const struct ini_schema *schema, size_t n,
			struct diag *d)
{
	size_t before = diag_count(d);

	/* Sections and keys interleave by line so messages come out in file order. */
	for (size_t s = 0, k = 0; s < ini->nsects || k < ini->nkeys;) {
		if (s < ini->nsects && (k == ini->nkeys || ini->sects[s].line < ini->keys[k].line)) {
			if (!ini_schema_find(schema, n, ini->sects[s].name))
				ini_unknown_section(ini, &ini->sects[s], schema, n, d);
			s++;
			continue;
		}
		const struct ini_schema *own = ini_schema_find(schema, n, ini->keys[k].section);

		/* Keys of an unknown section were covered by the section's error. */
		if (own && !ini_schema_has(own, ini->keys[k].key))
			ini_unknown_key(ini, &ini->keys[k], schema, n, d);
		k++;
	}
	return diag_count(d) - before;
}

/* The line of a "PATH:LINE: ..." message; whole-file ones sort last. */
static long ini_diag_line(const char *msg, size_t plen)
{
	char *end;
	long line;

	if (!msg || strlen(msg) <= plen || msg[plen] != ':' || !isdigit((unsigned char)msg[plen + 1]))
		return -1;
	line = strtol(msg + plen + 1, &end, 10);
	return *end == ':' ? line : -1;
}

void ini_diag_move(struct diag *d, struct diag *from, const char *path)
{
	size_t plen = strlen(path), n = from->n < from->cap ? from->n : from->cap;

	/* Insertion sort: stable, and a file has few errors. */
	for (size_t i = 1; i < n; i++) {
		char *m = from->msgs[i];
		long key = ini_diag_line(m, plen);
		size_t j = i;

		if (key < 0)
			key = __LONG_MAX__;
		for (; j > 0; j--) {
			long prev = ini_diag_line(from->msgs[j - 1], plen);

			if ((prev < 0 ? __LONG_MAX__ : prev) <= key)
				break;
			from->msgs[j] = from->msgs[j - 1];
		}
		from->msgs[j] = m;
	}
	/* Re-adding "PATH:LINE: text" as (path, LINE, text) gives the same string. */
	for (size_t i = 0; i < from->n; i++) {
		const char *m = i < n ? from->msgs[i] : NULL;
		long line = ini_diag_line(m, plen);
		const char *text = m ? strchr(m + plen + (line >= 0), ':') : NULL;

		if (!m || strncmp(m, path, plen) || !text || text[1] != ' ')
			diag_add(d, path, 0, "%s", m ? m : "out of memory");
		else
			diag_add(d, path, line >= 0 ? (int)line : 0, "%s", text + 2);
	}
	diag_free(from);
}

int ini_parse_uint(const char *s, unsigned min, unsigned max, unsigned *out)
{
	unsigned long long v = 0;

	if (!s || !*s)
		return -EINVAL;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return -EINVAL;
		if (v <= 0xffffffffULL)
			v = v * 10 + (unsigned)(*p - '0');
	}
	if (v < min || v > max)
		return -ERANGE;
	*out = (unsigned)v;
	return 0;
}

int ini_parse_bool(const char *s, bool *out)
{
	static const char *const words[] = { "no", "false", "off", "0",
					     "yes", "true", "on", "1", NULL };
	int i = ini_parse_choice(s, words);

	if (i < 0)
		return -EINVAL;
	*out = i >= 4;
	return 0;
}

int ini_parse_choice(const char *s, const char *const *choices)
{
	for (int i = 0; s && choices[i]; i++)
		if (!strcasecmp(s, choices[i]))
			return i;
	return -1;
}

int ini_list_next(const char **s, char *buf, size_t size)
{
	const char *p = *s, *end, *comma;
	size_t len;

	if (!p)
		return 0;
	comma = strchr(p, ',');
	end = comma ? comma : p + strlen(p);
	*s = comma ? comma + 1 : NULL;
	while (p < end && isspace((unsigned char)*p))
		p++;
	while (end > p && isspace((unsigned char)end[-1]))
		end--;
	len = (size_t)(end - p);
	if (len >= size)
		return -ENAMETOOLONG;
	memcpy(buf, p, len);
	buf[len] = '\0';
	return 1;
}
