/*
 * Split virtqueues, device side (virtio 1.x, section 2.7): walk the
 * driver's descriptor chains, publish used entries, and decide when
 * either side must be told, with or without EVENT_IDX.  See virtio.h.
 */
#include <errno.h>
#include <stdint.h>

#include <lkl/linux/virtio_ring.h>

#include "virtio.h"

static uint16_t load16(const uint16_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static int event_idx(const struct virtq *q)
{
	return virtio_has(q->dev, LKL_VIRTIO_RING_F_EVENT_IDX);
}

/* The driver's used_event, after the avail ring (spec 2.7.10). */
static uint16_t *used_event(struct virtq *q)
{
	return &q->avail->ring[q->num];
}

/* Our avail_event, after the used ring. */
static uint16_t *avail_event(struct virtq *q)
{
	return (uint16_t *)&q->used->ring[q->num];
}

/* Has the index moved past event since old?  (spec 2.7.10) */
static int need_event(uint16_t event, uint16_t new_idx, uint16_t old)
{
	return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old);
}

uint16_t virtq_pending(struct virtq *q)
{
	if (!q->ready)
		return 0;
	/* Acquire: the ring entries below idx are complete once we see it. */
	return load16(&q->avail->idx) - q->last_avail;
}

int virtq_map_chain(struct virtq *q, uint16_t ahead, int want_write,
		    struct iovec *iov, int max, struct virtq_chain *chain)
{
	const struct lkl_vring_desc *table = q->desc;
	uint32_t table_num = q->num, steps = 0, i;
	uint16_t head;
	int n = 0;

	head = q->avail->ring[(uint16_t)(q->last_avail + ahead) & (q->num - 1)];
	chain->head = head;
	if (head >= q->num)
		return -EIO;
	chain->len = 0;
	i = head;

	for (;;) {
		const struct lkl_vring_desc *d = &table[i];
		uint16_t flags = d->flags;

		if (flags & LKL_VRING_DESC_F_INDIRECT) {
			/* Only from the main table, and never chained on. */
			if (table != q->desc || (flags & LKL_VRING_DESC_F_NEXT) ||
			    d->len < sizeof(*d) || d->len % sizeof(*d))
				return -EIO;
			table = (const void *)(uintptr_t)d->addr;
			table_num = d->len / sizeof(*d);
			i = 0;
			steps = 0;
			continue;
		}
		if (!!(flags & LKL_VRING_DESC_F_WRITE) != !!want_write)
			return -EIO;
		if (d->len) {
			if (n == max)
				return -ENOSPC;
			iov[n].iov_base = (void *)(uintptr_t)d->addr;
			iov[n].iov_len = d->len;
			chain->len += d->len;
			n++;
		}
		if (!(flags & LKL_VRING_DESC_F_NEXT))
			break;
		i = d->next;
		/* A chain longer than its table loops. */
		if (i >= table_num || ++steps >= table_num)
			return -EIO;
	}
	chain->iov = iov;
	chain->niov = n;
	return 0;
}

void virtq_push_used(struct virtq *q, uint16_t head, uint32_t len)
{
	struct lkl_vring_used_elem *e;

	e = &q->used->ring[q->used_idx & (q->num - 1)];
	e->id = head;
	e->len = len;
	q->used_idx++;
}

int virtq_publish(struct virtq *q)
{
	uint16_t old = q->signalled_used;
	int valid = q->signalled_valid;

	__atomic_store_n(&q->used->idx, q->used_idx, __ATOMIC_RELEASE);
	/* Order the idx store before reading the driver's wishes. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);

	if (!event_idx(q))
		return !(load16(&q->avail->flags) &
			 LKL_VRING_AVAIL_F_NO_INTERRUPT);

	q->signalled_used = q->used_idx;
	q->signalled_valid = 1;
	return !valid || need_event(load16(used_event(q)), q->used_idx, old);
}

uint16_t virtq_want_notify(struct virtq *q, int on, uint16_t seen)
{
	if (!q->ready)
		return 0;
	if (event_idx(q)) {
		/*
		 * Notify us once the driver adds past what we have seen: the
		 * driver kicks only when its new avail index passes this one,
		 * so entries it added before are no reason to kick.
		 */
		if (on)
			__atomic_store_n(avail_event(q),
					 (uint16_t)(q->last_avail + seen),
					 __ATOMIC_RELAXED);
	} else if (on) {
		__atomic_fetch_and(&q->used->flags,
				   (uint16_t)~LKL_VRING_USED_F_NO_NOTIFY,
				   __ATOMIC_RELAXED);
	} else {
		__atomic_fetch_or(&q->used->flags, LKL_VRING_USED_F_NO_NOTIFY,
				  __ATOMIC_RELAXED);
	}
	/* Order the store before re-reading avail->idx (spec 2.7.13.3). */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return virtq_pending(q) - seen;
}
