/* conf/marks: the default mark layout, a layout from [queues] mark_mask, and
 * DTLS decisions mapped into it. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "clamp/dtls.h"
#include "clamp/nfq.h"
#include "conf/marks.h"
#include "conf/rules.h"
#include "tests/unit/t.h"

#define T DTLS_MARK_TAG
#define D DTLS_MARK_DECIDED
#define N DTLS_MARK_NORMALIZE
#define B DTLS_MARK_BLOCKED
#define R DTLS_MARK_REJECT

static int popcount(uint32_t v)
{
	int n = 0;

	for (; v; v &= v - 1)
		n++;
	return n;
}

/* The default is what mtugate printed before mark_mask existed. */
static void test_default(void)
{
	struct marks m;

	marks_default(&m);
	CHECK_INT(m.tag, 0x4d540000u);
	CHECK_INT(m.tag_mask, 0xffff0000u);
	CHECK_INT(m.decided | m.normalize | m.blocked | m.reject, 0xfu);
	CHECK_INT(m.proxy, RULES_PROXY_MARK);
	CHECK_INT(m.done, NFQ_DONE_MARK);
	CHECK_INT(marks_dtls_mask(&m), DTLS_MARK_MASK);
	CHECK_INT(marks_all(&m), 0xffff030fu);
	/* The identity on dtls_decide()'s marks. */
	for (uint32_t f = 0; f < 16; f++)
		CHECK_INT(marks_dtls(&m, T | f), T | f);
	CHECK_INT(marks_dtls_apply(&m, 0, T | D | N), 0x4d540003u);
	CHECK_INT(marks_dtls_apply(&m, 0x0000ff00u, T | D), 0x4d54ff01u);
	CHECK_INT(marks_dtls_apply(&m, 0x1234fff7u, T | D | B), 0x4d54fff5u);
	CHECK_INT(marks_dtls_apply(&m, 0x0000ff00u, 0), 0x0000ff00u);
}

/* mwan3 owns 0x3f00: mtugate moved to 0x7f0000. */
static void test_mask(void)
{
	struct marks m, before;

	CHECK_INT(marks_from_mask(&m, 0x7f0000), 0);
	CHECK_INT(m.decided, 0x10000);
	CHECK_INT(m.normalize, 0x20000);
	CHECK_INT(m.blocked, 0x40000);
	CHECK_INT(m.reject, 0x80000);
	CHECK_INT(m.proxy, 0x100000);
	CHECK_INT(m.done, 0x200000);
	CHECK_INT(m.tag, 0x400000);
	CHECK_INT(m.tag_mask, 0x400000);
	CHECK_INT(marks_all(&m), 0x7f0000);
	CHECK_INT(marks_dtls(&m, T | D | B | R), 0x4d0000);
	CHECK_INT(marks_dtls(&m, T | D | N), 0x430000);
	CHECK_INT(marks_dtls(&m, 0), 0);
	CHECK_INT(marks_dtls_apply(&m, 0x3f00, T | D | N), 0x433f00);
	CHECK_INT(marks_dtls_apply(&m, 0xffffffffu, T | D), 0xfff1ffffu);
	CHECK_INT(marks_dtls_apply(&m, 0x4f3f00, 0), 0x4f3f00);

	/* Not contiguous, the top bit included; the bits left over are the tag. */
	CHECK_INT(marks_from_mask(&m, 0x80000000u | 0x0f000000u | 0x3u | 0x100u), 0);
	CHECK_INT(m.decided, 0x1);
	CHECK_INT(m.normalize, 0x2);
	CHECK_INT(m.blocked, 0x100);
	CHECK_INT(m.reject, 0x01000000);
	CHECK_INT(m.proxy, 0x02000000);
	CHECK_INT(m.done, 0x04000000);
	CHECK_INT(m.tag_mask, 0x88000000u);
	CHECK_INT(m.tag, 0x88000000u);

	/* Too few bits: refused, the layout untouched. */
	marks_default(&before);
	m = before;
	CHECK_INT(marks_from_mask(&m, 0x3f00), -EINVAL);
	CHECK_INT(marks_from_mask(&m, 0), -EINVAL);
	CHECK_INT(marks_from_mask(&m, 0x1), -EINVAL);
	CHECK_MEM(&m, &before, sizeof(m));
}

/* Any mask of 7 or more bits: every role one bit (the tag at least one),
 * all disjoint, all inside the mask, covering it. */
static void test_random_masks(void)
{
	uint32_t x = 0x9e3779b9u;
	int tried = 0, refused = 0;

	for (int i = 0; i < 20000; i++) {
		struct marks m;
		uint32_t mask;

		x ^= x << 13, x ^= x >> 17, x ^= x << 5;
		mask = x & (i & 1 ? x >> 3 : 0xffffffffu);
		if (marks_from_mask(&m, mask) < 0) {
			if (popcount(mask) >= MARKS_MIN_BITS) {
				CHECK_INT(mask, 0);	/* refused a mask wide enough */
				return;
			}
			refused++;
			continue;
		}
		tried++;
		uint32_t one[] = { m.decided, m.normalize, m.blocked, m.reject, m.proxy, m.done };
		uint32_t seen = m.tag_mask;
		bool ok = m.tag == m.tag_mask && m.tag_mask && (m.tag_mask & ~mask) == 0;

		for (size_t k = 0; k < 6; k++) {
			ok = ok && popcount(one[k]) == 1 && !(one[k] & seen) && (one[k] & mask);
			seen |= one[k];
		}
		ok = ok && seen == mask && marks_all(&m) == mask;
		/* An applied decision never touches a bit outside the DTLS bits. */
		ok = ok && (marks_dtls_apply(&m, x, T | D | N | B | R) & ~marks_dtls_mask(&m)) ==
			   (x & ~marks_dtls_mask(&m));
		if (!ok) {
			CHECK_INT(mask, 0);	/* names the mask that failed */
			return;
		}
	}
	CHECK(tried > 10000);
	CHECK(refused > 100);	/* the narrow masks were tried too */
}

int main(void)
{
	test_default();
	test_mask();
	test_random_masks();
	return t_done("test_marks");
}
