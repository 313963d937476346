/* INI files with a line index: iniparser for values, our own scan for FILE:LINE. */
#ifndef MTUGATE_CONF_INI_H
#define MTUGATE_CONF_INI_H

#include <stdbool.h>
#include <stddef.h>

struct diag;
struct ini;

/* One "key = value" line. section is "" for a key before any section. */
struct ini_key {
	const char *section;
	const char *key;
	const char *value;
	int line;
};

/* A section and the keys a schema allows in it (NULL-terminated). */
struct ini_schema {
	const char *section;
	const char *const *keys;
};

/* Read path. Syntax errors, duplicate keys and sections, keys outside any
 * section and ':' in names go to d as FILE:LINE (FILE as given); the lines
 * that parsed stay readable so callers can report their errors too. NULL
 * only when the file cannot be read ("FILE: cannot open: ..."). Section and
 * key names are lowercased, as iniparser does. */
struct ini *ini_open(const char *path, struct diag *d);
void ini_close(struct ini *ini);
const char *ini_path(const struct ini *ini);

/* The value of section/key (both lowercase) and its line, or NULL (line 0). */
const char *ini_get(const struct ini *ini, const char *section, const char *key, int *line);
/* The line of "[section]", 0 when absent. */
int ini_section_line(const struct ini *ini, const char *section);
/* Every key in file order. */
size_t ini_count(const struct ini *ini);
const struct ini_key *ini_key_at(const struct ini *ini, size_t i);

/* Report every section and key the schema does not know, with "did you mean"
 * for a close name or the section a key belongs in. Returns errors added. */
size_t ini_check_schema(const struct ini *ini, const struct ini_schema *schema, size_t n,
			struct diag *d);

/* Move every message of from (all about path) into d in line order, stable,
 * whole-file messages last; from is left empty. */
void ini_diag_move(struct diag *d, struct diag *from, const char *path);

/* Value helpers, pure. */
/* Decimal in min..max: 0, -EINVAL (not a number) or -ERANGE. */
int ini_parse_uint(const char *s, unsigned min, unsigned max, unsigned *out);
/* yes/no/true/false/on/off/1/0, any case: 0 or -EINVAL. */
int ini_parse_bool(const char *s, bool *out);
/* Index of s (any case) in the NULL-terminated choices, or -1. */
int ini_parse_choice(const char *s, const char *const *choices);
/* Next comma-separated item of *s, trimmed, into buf: 1 (an item, maybe
 * empty), 0 at the end (*s is then NULL), -ENAMETOOLONG when it does not fit.
 * "" is one empty item: callers decide what an empty value means. */
int ini_list_next(const char **s, char *buf, size_t size);
/* Edit distance (adjacent transpositions count once), capped at cap + 1. */
unsigned ini_distance(const char *a, const char *b, unsigned cap);

#endif
