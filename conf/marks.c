#include "conf/marks.h"

#include <errno.h>

#include "clamp/dtls.h"
#include "clamp/nfq.h"
#include "conf/rules.h"

void marks_default(struct marks *m)
{
	*m = (struct marks){
		.tag = DTLS_MARK_TAG,
		.tag_mask = DTLS_MARK_TAG_MASK,
		.decided = DTLS_MARK_DECIDED,
		.normalize = DTLS_MARK_NORMALIZE,
		.blocked = DTLS_MARK_BLOCKED,
		.reject = DTLS_MARK_REJECT,
		.proxy = RULES_PROXY_MARK,
		.done = NFQ_DONE_MARK,
	};
}

int marks_from_mask(struct marks *m, uint32_t mask)
{
	struct marks out = { 0 };
	uint32_t *obits[] = { &out.decided, &out.normalize, &out.blocked, &out.reject,
			      &out.proxy, &out.done };
	uint32_t left = mask;
	int n = 0;

	for (uint32_t b = left; b; b &= b - 1)
		n++;
	if (n < MARKS_MIN_BITS)
		return -EINVAL;
	for (size_t i = 0; i < sizeof(obits) / sizeof(obits[0]); i++) {
		*obits[i] = left & -left;	/* the lowest bit left */
		left &= left - 1;
	}
	out.tag = out.tag_mask = left;
	*m = out;
	return 0;
}

uint32_t marks_all(const struct marks *m)
{
	return marks_dtls_mask(m) | m->proxy | m->done;
}

uint32_t marks_dtls_mask(const struct marks *m)
{
	return m->tag_mask | m->decided | m->normalize | m->blocked | m->reject;
}

uint32_t marks_dtls(const struct marks *m, uint32_t dtls_mark)
{
	uint32_t out = 0;

	if ((dtls_mark & DTLS_MARK_TAG_MASK) == DTLS_MARK_TAG)
		out |= m->tag;
	if (dtls_mark & DTLS_MARK_DECIDED)
		out |= m->decided;
	if (dtls_mark & DTLS_MARK_NORMALIZE)
		out |= m->normalize;
	if (dtls_mark & DTLS_MARK_BLOCKED)
		out |= m->blocked;
	if (dtls_mark & DTLS_MARK_REJECT)
		out |= m->reject;
	return out;
}

uint32_t marks_dtls_apply(const struct marks *m, uint32_t old, uint32_t dtls_mark)
{
	if (dtls_mark == 0)
		return old;
	return (old & ~marks_dtls_mask(m)) | marks_dtls(m, dtls_mark);
}
