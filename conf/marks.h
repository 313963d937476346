/* Which bits of the packet and connection mark mtugate uses, and for what.
 * The default layout is the one mtugate has always printed; `[queues]
 * mark_mask` moves every bit into a range the administrator sets aside (a
 * firewall whose policy routing already marks packets, mwan3's 0x3f00 say).
 * Pure: no I/O. */
#ifndef MTUGATE_CONF_MARKS_H
#define MTUGATE_CONF_MARKS_H

#include <stdint.h>

/* Bits a mask must hold: the DTLS path's four flags, the proxy bit, the
 * resume bit and at least one bit of tag. */
#define MARKS_MIN_BITS 7

struct marks {
	/* DTLS decisions (clamp/dtls.h): a decided packet or connection carries
	 * tag within tag_mask, plus the flags that apply. */
	uint32_t tag, tag_mask;
	uint32_t decided, normalize, blocked, reject;
	uint32_t proxy;		/* TPROXY intake: routed to the local table */
	uint32_t done;		/* NF_REPEAT: decided, skip mtugate's chains */
};

/* 0x4d540000/0xffff0000 tag, flags 0x1 0x2 0x4 0x8, proxy 0x100, done 0x200. */
void marks_default(struct marks *m);
/* The layout within mask: from its lowest set bit up decided, normalize,
 * blocked, reject, proxy, done, and every bit left is the tag (all set).
 * 0 or a mask of fewer than MARKS_MIN_BITS bits: -EINVAL, m untouched. */
int marks_from_mask(struct marks *m, uint32_t mask);
/* Every bit the layout uses. */
uint32_t marks_all(const struct marks *m);
/* The bits a DTLS decision owns: tag_mask and the four flags. */
uint32_t marks_dtls_mask(const struct marks *m);
/* A mark in clamp/dtls.h's terms (DTLS_MARK_*, as dtls_decide() returns it)
 * in this layout's bits. */
uint32_t marks_dtls(const struct marks *m, uint32_t dtls_mark);
/* The mark to hand to the kernel for a packet that carried old: a decision's
 * bits replace the DTLS bits only; 0 leaves old as it is. */
uint32_t marks_dtls_apply(const struct marks *m, uint32_t old, uint32_t dtls_mark);

#endif
