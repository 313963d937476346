/* daemon/nfqproc: the kernel's NFQUEUE table, /proc/net/netfilter/nfnetlink_queue. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/nfqproc.h"
#include "tests/unit/t.h"

static void test_parse(void)
{
	/* As the kernel prints it ("%5u %6u %5u %1u %5u %5u %5u %8u %2d\n"), with
	 * lines that are not: too few or too many fields, letters, a number past
	 * 32 bits, an empty line, and a last line without its newline. */
	static const char text[] =
		"    0  31337     2 2 65535     0     0       42  1\n"
		"    2 4294967295 0 2 65535     7     8 4294967295  1\n"
		"    3  1 2 3 4 5 6 7\n"
		"    4  1 2 3 4 5 6 7 8 9\n"
		"    5  1 2 3 4 5 6 x  1\n"
		"    6  1 2 3 4 5 6 4294967296  1\n"
		"\n"
		"65535     9   100 2 65535     1     2      300  1";
	struct nfqproc_row rows[8];
	size_t n = nfqproc_parse(text, sizeof(text) - 1, rows, 8);

	CHECK_INT(n, 3);
	CHECK_INT(rows[0].queue, 0);
	CHECK_INT(rows[0].portid, 31337);
	CHECK_INT(rows[0].backlog, 2);
	CHECK_INT(rows[0].dropped, 0);
	CHECK_INT(rows[0].id_sequence, 42);
	CHECK_INT(rows[1].queue, 2);
	CHECK_INT(rows[1].portid, 4294967295u);
	CHECK_INT(rows[1].dropped, 7);
	CHECK_INT(rows[1].user_dropped, 8);
	CHECK_INT(rows[1].id_sequence, 4294967295u);
	CHECK_INT(rows[2].queue, 65535);
	CHECK_INT(rows[2].backlog, 100);
	CHECK(nfqproc_find(rows, n, 2) == &rows[1]);
	CHECK(nfqproc_find(rows, n, 3) == NULL);
	/* At most max rows. */
	CHECK_INT(nfqproc_parse(text, sizeof(text) - 1, rows, 1), 1);
	CHECK_INT(nfqproc_parse("", 0, rows, 8), 0);
	CHECK_INT(nfqproc_parse("\n\n\n", 3, rows, 8), 0);
}

static void test_read(void)
{
	char path[] = "/tmp/test_nfqproc.XXXXXX";
	struct nfqproc_row rows[4];
	int fd = mkstemp(path);
	static const char line[] = "    7   4242    19 2 65535     0     0     1000  1\n";

	CHECK(fd >= 0);
	CHECK_INT(write(fd, line, sizeof(line) - 1), (long long)(sizeof(line) - 1));
	close(fd);
	fd = nfqproc_open(path);
	CHECK(fd >= 0);
	CHECK_INT(nfqproc_read(fd, rows, 4), 1);
	CHECK_INT(rows[0].queue, 7);
	CHECK_INT(rows[0].backlog, 19);
	/* Read again: from the start each time. */
	CHECK_INT(nfqproc_read(fd, rows, 4), 1);
	CHECK_INT(rows[0].id_sequence, 1000);
	close(fd);
	unlink(path);
	CHECK_INT(nfqproc_open(path), -2);	/* ENOENT */
	CHECK_INT(nfqproc_read(-1, rows, 4), -9);	/* EBADF */
}

int main(void)
{
	test_parse();
	test_read();
	return t_done("test_nfqproc");
}
