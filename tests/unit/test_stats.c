/* daemon/stats: every group counter has a HELP sentence (Prometheus readers
 * see no man page), and the configuration-load record. */
#include <stdbool.h>
#include <string.h>
#include <time.h>

#include "daemon/stats.h"
#include "tests/unit/t.h"

int main(void)
{
	struct stats s;
	time_t t0 = time(NULL);

#define HAS_HELP(f) do { const char *h_ = stats_group_help(#f); \
	CHECK(h_ && strlen(h_) > 20 && h_[strlen(h_) - 1] == '.'); \
	if (!h_) fprintf(stderr, "group counter %s has no HELP sentence in daemon/stats.c\n", #f); \
	} while (0);
	STATS_GROUP_FIELDS(HAS_HELP)
#undef HAS_HELP
	CHECK(stats_group_help("no_such_counter") == NULL);

	stats_init(&s);
	CHECK_INT(atomic_load(&s.config_ok), 1);
	CHECK(atomic_load(&s.config_loaded) >= t0 && atomic_load(&s.config_loaded) <= time(NULL));
	stats_config_loaded(&s, false);
	CHECK_INT(atomic_load(&s.config_ok), 0);
	CHECK(atomic_load(&s.config_loaded) >= t0);	/* the policy in force is still the old one */
	atomic_store(&s.config_loaded, 5);
	stats_config_loaded(&s, true);
	CHECK_INT(atomic_load(&s.config_ok), 1);
	CHECK(atomic_load(&s.config_loaded) >= t0);
	stats_destroy(&s);
	return t_done("test_stats");
}
