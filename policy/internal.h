/* Private layout of struct policy, shared by compile.c, lookup.c and reload.c only. */
#ifndef MTUGATE_POLICY_INTERNAL_H
#define MTUGATE_POLICY_INTERNAL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct group;

/* A 128-bit address as two host-order halves, compared hi first. */
struct u128 {
	uint64_t hi, lo;
};

/*
 * One prefix table flattened into sorted, disjoint ranges that cover the
 * whole address space: range i runs from key[i] up to key[i+1]-1 and maps to
 * group grp[i] (-1: none). key[0] is always 0, so a lookup is one binary
 * search for the last key <= addr.
 */
struct ptable {
	uint32_t *v4key;
	int32_t *v4grp;
	size_t n4;
	struct u128 *v6key;
	int32_t *v6grp;
	size_t n6;
};

struct policy {
	atomic_uint refs;	/* the creator's (then the box's) plus one per holder */
	struct group *groups;	/* in the order given (groups.d name order) */
	size_t n;
	struct ptable pool, clients;
	uint32_t *by_name;	/* group indices sorted by name */
	uint32_t *by_auth;	/* group indices with an auth_group, sorted by it */
	size_t nauth;
};

/* Builds t from every group's pools (clients when use_clients): the longest
 * prefix wins, and among identical prefixes the earlier group. 0 or -ENOMEM. */
int ptable_build(struct ptable *t, const struct group *groups, size_t n, int use_clients);
void ptable_free(struct ptable *t);

/* Frees p and everything it owns, whatever its reference count. */
void policy_destroy(struct policy *p);

#endif
