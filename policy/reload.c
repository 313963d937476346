/* Publication of the policy: one pointer behind a mutex, a reference count per policy. */
#include "policy/policy.h"
#include "policy/internal.h"

#include <pthread.h>
#include <stdlib.h>

struct policy_box {
	pthread_mutex_t lock;	/* held only to read or swap cur and take a reference */
	struct policy *cur;	/* the box owns one reference */
};

struct policy_box *policy_box_new(struct policy *initial)
{
	struct policy_box *b = calloc(1, sizeof(*b));

	if (!b)
		return NULL;
	if (pthread_mutex_init(&b->lock, NULL)) {
		free(b);
		return NULL;
	}
	b->cur = initial;
	return b;
}

/* Taking the reference under the lock closes the race with a swap that would
 * otherwise drop the last reference between our load and our increment. */
struct policy *policy_hold(struct policy_box *b)
{
	struct policy *p;

	pthread_mutex_lock(&b->lock);
	p = b->cur;
	atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
	pthread_mutex_unlock(&b->lock);
	return p;
}

void policy_release(struct policy *p)
{
	if (!p)
		return;
	/* acq_rel: every reader's accesses happen before the free. */
	if (atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) == 1)
		policy_destroy(p);
}

/* A policy starts with one reference, its creator's: dropping it frees a
 * policy never published, and hands a published one over to its readers. */
void policy_free(struct policy *p)
{
	policy_release(p);
}

void policy_box_swap(struct policy_box *b, struct policy *np)
{
	struct policy *old;

	pthread_mutex_lock(&b->lock);
	old = b->cur;
	b->cur = np;
	pthread_mutex_unlock(&b->lock);
	policy_release(old);
}

void policy_box_free(struct policy_box *b)
{
	if (!b)
		return;
	policy_release(b->cur);
	pthread_mutex_destroy(&b->lock);
	free(b);
}
