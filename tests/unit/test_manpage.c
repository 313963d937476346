/* mtugate.conf(5) against the code: every key of conf/conf.c's CONF_KEY list
 * and of policy/parse.c's group_keys has an entry in its section, and every
 * default conf/mtugate.conf shows (test_conf ties those to conf_defaults) is
 * the one the entry names. Run from the repo root. */
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/t.h"

#define MAN "man/mtugate.conf.5"

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t cap = 0;

	if (!f)
		return NULL;
	if (getdelim(&buf, &cap, '\0', f) < 0) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	return buf;
}

/* The man page's lines from the one starting with `from` up to the next
 * line starting with `stop` (or the end); NULL if `from` is not there. */
static char *man_part(const char *man, const char *from, const char *stop)
{
	size_t n = strlen(from);
	const char *p = man, *end;

	while (p && strncmp(p, from, n) != 0) {
		p = strchr(p, '\n');
		p = p ? p + 1 : NULL;
	}
	if (!p)
		return NULL;
	end = strchr(p, '\n');
	while (end && strncmp(end + 1, stop, strlen(stop)) != 0)
		end = strchr(end + 1, '\n');
	return strndup(p, end ? (size_t)(end - p) : strlen(p));
}

/* The text of `key`'s .TP entry in `part`, roff fonts and quotes dropped,
 * "\-" as "-", lines joined by spaces; NULL if no entry names it. */
static char *man_entry(const char *part, const char *key)
{
	const char *p = part;
	size_t kn = strlen(key);

	while ((p = strstr(p, "\n.TP\n")) != NULL) {
		const char *head = p + 5, *end = strstr(head, "\n.TP\n");
		const char *eol = strchr(head, '\n');
		bool named = false;

		/* The head line is ".B key" or ".BR a \", \" b": key as a word. */
		if (strncmp(head, ".B", 2) == 0 && eol)
			for (const char *q = head; (q = strstr(q, key)) && q < eol; q += kn)
				if (!isalnum((unsigned char)q[-1]) && q[-1] != '_' &&
				    !isalnum((unsigned char)q[kn]) && q[kn] != '_')
					named = true;
		if (named) {
			size_t len = end ? (size_t)(end - head) : strlen(head);
			char *out = malloc(len + 1), *o = out;

			for (size_t i = 0; i < len; i++) {
				if ((i == 0 || head[i - 1] == '\n') && head[i] == '.') {
					while (i < len && head[i] != ' ' && head[i] != '\n')
						i++;	/* the macro */
					if (i < len && head[i] == ' ')
						continue;
				}
				if (head[i] == '\\' && i + 1 < len && head[i + 1] == '-') {
					*o++ = '-';
					i++;
				} else if (head[i] != '"') {
					*o++ = head[i] == '\n' ? ' ' : head[i];
				}
			}
			*o = '\0';
			return out;
		}
		p = head - 1;
	}
	return NULL;
}

/* Does the entry name `value` as its default? */
static bool names_default(const char *entry, const char *value)
{
	char want[512];
	const char *p;

	if (!*value)
		return strstr(entry, "Default: empty") || strstr(entry, "Default: none") ||
		       strstr(entry, "Empty or 0: the default");
	snprintf(want, sizeof(want), "Default: %s", value);
	for (p = entry; (p = strstr(p, want)) != NULL; p++)
		if (!isalnum((unsigned char)p[strlen(want)]))
			return true;
	snprintf(want, sizeof(want), "%s (the default)", value);
	if (strstr(entry, want))
		return true;
	/* "Defaults: 32 and 64." for an entry of two keys. */
	p = strstr(entry, "Defaults: ");
	return p && strstr(p, value) && strstr(p, value) < p + 40;
}

/* Every CONF_KEY(section, name, ...) of conf/conf.c is in its section. */
static int check_conf_keys(const char *man, const char *src)
{
	int n = 0;

	for (const char *p = src; (p = strstr(p, "\tCONF_KEY(")) != NULL; p++) {
		char sec[32], key[64], head[48];
		char *part, *entry;

		if (sscanf(p, "\tCONF_KEY(%31[a-z_], %63[a-z_0-9],", sec, key) != 2)
			continue;
		if (strcmp(key, "addr") == 0)	/* the file says "address" */
			snprintf(key, sizeof(key), "address");
		snprintf(head, sizeof(head), ".SS [%s]", sec);
		part = man_part(man, head, ".S");
		entry = part ? man_entry(part, key) : NULL;
		if (!entry)
			fprintf(stderr, "%s: no entry for [%s] %s\n", MAN, sec, key);
		CHECK(entry != NULL);
		free(entry);
		free(part);
		n++;
	}
	return n;
}

/* Every name in policy/parse.c's group_keys is in GROUP FILES. */
static int check_group_keys(const char *man, const char *src)
{
	const char *p = strstr(src, "group_keys[] = {");
	const char *end = p ? strstr(p, "};") : NULL;
	char *part = man_part(man, ".SH GROUP FILES", ".SH");
	int n = 0;

	CHECK(end != NULL);
	CHECK(part != NULL);
	if (!end || !part)
		return 0;
	for (p = strchr(p, '"'); p && p < end; p = strchr(p + 1, '"')) {
		const char *q = strchr(p + 1, '"');
		char key[64];
		char *entry;

		snprintf(key, sizeof(key), "%.*s", (int)(q - p - 1), p + 1);
		entry = man_entry(part, key);
		if (!entry)
			fprintf(stderr, "%s: no group entry for %s\n", MAN, key);
		CHECK(entry != NULL);
		free(entry);
		p = q;
		n++;
	}
	free(part);
	return n;
}

/* Every "key = value" of conf/mtugate.conf is its entry's default. */
static int check_defaults(const char *man, const char *conf)
{
	char sec[32] = "", head[48];
	int n = 0;

	for (const char *p = conf; *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : p + strlen(p)) {
		char key[64], buf[256] = "", *value = buf, *part, *entry;
		size_t len;

		/* "%[^\n;]" after " = " would skip an empty value's newline. */
		if (sscanf(p, "[%31[a-z]]", sec) == 1 || *p == ';' || *p == '#' ||
		    sscanf(p, "%63[a-z_0-9] =%255[^\n;]", key, buf) < 1)
			continue;
		value += strspn(value, " \t");
		len = strlen(value);
		while (len && isspace((unsigned char)value[len - 1]))
			value[--len] = '\0';
		if (strcmp(key, "address") == 0)	/* an example, there is no default */
			continue;
		snprintf(head, sizeof(head), ".SS [%s]", sec);
		part = man_part(man, head, ".S");
		entry = part ? man_entry(part, key) : NULL;
		if (!entry || !names_default(entry, value))
			fprintf(stderr, "%s: [%s] %s: default '%s' not named\n", MAN, sec, key, value);
		CHECK(entry && names_default(entry, value));
		free(entry);
		free(part);
		n++;
	}
	return n;
}

int main(void)
{
	char *man = slurp(MAN), *conf_c = slurp("conf/conf.c");
	char *parse_c = slurp("policy/parse.c"), *conf = slurp("conf/mtugate.conf");

	CHECK(man && conf_c && parse_c && conf);
	if (man && conf_c && parse_c && conf) {
		CHECK(check_conf_keys(man, conf_c) >= 36);
		CHECK(check_group_keys(man, parse_c) >= 12);
		CHECK(check_defaults(man, conf) >= 34);
	}
	free(man);
	free(conf_c);
	free(parse_c);
	free(conf);
	return t_done("test_manpage");
}
