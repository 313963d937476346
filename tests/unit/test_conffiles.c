/* Walks tests/conf/: every bad fixture fails with exactly the lines of its
 * .expect file, every good one loads without a word. Run from the repo root. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "conf/conf.h"
#include "conf/diag.h"
#include "policy/policy.h"
#include "tests/unit/t.h"

#define ROOT "tests/conf"

enum kind { DAEMON, GROUP, GROUPDIR };

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t cap = 0;
	ssize_t n;

	if (!f)
		return NULL;
	n = getdelim(&buf, &cap, '\0', f);
	fclose(f);
	if (n < 0) {
		free(buf);
		return strdup("");
	}
	return buf;
}

static char *joined(const struct diag *d)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	diag_print(d, f);
	fclose(f);
	return out;
}

/* Loads one fixture; returns the loader's result, errors in d. */
static int load(enum kind k, const char *path, struct diag *d)
{
	struct conf c;
	struct group g;
	struct policy *p;
	int rc;

	switch (k) {
	case DAEMON:
		return conf_load(&c, path, d);
	case GROUP:
		rc = group_parse_file(&g, path, d);
		group_release(&g);
		return rc;
	case GROUPDIR:
		p = policy_load_dir(path, d);
		policy_free(p);
		return p ? 0 : -1;
	}
	return -1;
}

static void check_good(enum kind k, const char *path)
{
	struct diag d = { 0 };
	int rc = load(k, path, &d);

	CHECK_INT(rc, 0);
	CHECK_INT(diag_count(&d), 0);
	if (rc || diag_count(&d)) {
		fprintf(stderr, "%s: expected to load cleanly, got:\n", path);
		diag_print(&d, stderr);
	}
	diag_free(&d);
}

static void check_bad(enum kind k, const char *path, const char *expect_path)
{
	struct diag d = { 0 };
	int rc = load(k, path, &d);
	char *want = slurp(expect_path), *got = joined(&d);

	CHECK_INT(rc, -1);
	CHECK(want != NULL);
	CHECK(diag_count(&d) > 0);
	if (want) {
		CHECK_STR(got, want);
		if (strcmp(got, want))
			fprintf(stderr, "%s: expected:\n%s--- got:\n%s", path, want, got);
	}
	free(want);
	free(got);
	diag_free(&d);
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

static bool ends_with(const char *s, const char *tail)
{
	size_t n = strlen(s), t = strlen(tail);

	return n > t && !strcmp(s + n - t, tail);
}

/* One folder of fixtures; returns how many it checked. */
static int walk(enum kind k, const char *dir)
{
	struct dirent **list;
	int n = scandir(dir, &list, NULL, by_name), checked = 0;

	CHECK(n > 0);
	for (int i = 0; i < n; i++) {
		const char *name = list[i]->d_name;
		char path[512], expect[512];
		struct stat st;
		size_t stem;

		snprintf(path, sizeof(path), "%s/%s", dir, name);
		if (name[0] == '.' || stat(path, &st) < 0)
			goto next;
		if (ends_with(name, ".expect")) {
			/* No orphans: every .expect names a fixture that exists. */
			stem = strlen(path) - strlen(".expect");
			snprintf(expect, sizeof(expect), "%.*s%s", (int)stem, path,
				 k == GROUPDIR ? "" : ".conf");
			CHECK(stat(expect, &st) == 0);
			goto next;
		}
		if (k == GROUPDIR ? !S_ISDIR(st.st_mode) : !ends_with(name, ".conf"))
			goto next;
		stem = strlen(path) - (k == GROUPDIR ? 0 : strlen(".conf"));
		snprintf(expect, sizeof(expect), "%.*s.expect", (int)stem, path);
		if (!strncmp(name, "good-", 5)) {
			check_good(k, path);
			checked++;
		} else if (!strncmp(name, "bad-", 4)) {
			check_bad(k, path, expect);
			checked++;
		} else {
			fprintf(stderr, "%s: fixture names start with good- or bad-\n", path);
			CHECK(0);
		}
next:
		free(list[i]);
	}
	free(list);
	return checked;
}

int main(void)
{
	CHECK(walk(DAEMON, ROOT "/daemon") >= 10);
	CHECK(walk(GROUP, ROOT "/groups") >= 12);
	CHECK(walk(GROUPDIR, ROOT "/groupdirs") >= 4);
	/* The shipped examples are good fixtures too. */
	check_good(DAEMON, "conf/mtugate.conf");
	check_good(DAEMON, "conf/examples/udp-blocked/mtugate.conf");
	check_good(DAEMON, "conf/examples/cscuh61321/mtugate.conf");
	check_good(GROUPDIR, "conf/examples/udp-blocked/groups.d");
	check_good(GROUPDIR, "conf/examples/cscuh61321/groups.d");
	return t_done("test_conffiles");
}
