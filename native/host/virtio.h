/*
 * The device side of virtio-mmio (version 2, "modern") with split
 * virtqueues.  A device model (virtio_net.c) embeds a struct virtio_dev,
 * fills in its identity, features and queues, and gets callbacks for
 * config-space access, queue notifications and status changes.
 *
 * Register accesses arrive on kernel threads that hold the kernel CPU:
 * nothing here sleeps.  Ring memory is the kernel's RAM, and kernel
 * "physical" addresses are host addresses, so rings and buffers are
 * used in place.  Virtio 1.x is little-endian and so is every host this
 * runs on (checked at compile time in virtio_mmio.c).
 */
#ifndef LKL_HOST_VIRTIO_H
#define LKL_HOST_VIRTIO_H

#include <pthread.h>
#include <stdint.h>
#include <sys/uio.h>

#include <lkl/linux/virtio_ring.h>

/* The register window each device registers. */
#define VIRTIO_MMIO_WINDOW	0x200

struct virtio_dev;

struct virtq {
	/* Set by the driver before QueueReady; fixed while ready. */
	uint32_t num;
	uint64_t desc_addr, avail_addr, used_addr;
	int ready;

	struct lkl_vring_desc *desc;
	struct lkl_vring_avail *avail;
	struct lkl_vring_used *used;

	/*
	 * Device-private progress, guarded by lock: the next avail entry
	 * to take, the used index we publish, and the used index at our
	 * last interrupt (for EVENT_IDX).
	 */
	uint16_t last_avail;
	uint16_t used_idx;
	uint16_t signalled_used;
	int signalled_valid;

	/* Held by whichever thread walks this queue (poller or kernel). */
	pthread_mutex_t lock;
	struct virtio_dev *dev;
};

struct virtio_dev_ops {
	/* Config space (offset from 0x100); out of range reads as zero. */
	void (*config_read)(struct virtio_dev *dev, int offset, void *value,
			    int size);
	/* The driver wrote QueueNotify for queue qidx. */
	void (*notify)(struct virtio_dev *dev, int qidx);
	/* FEATURES_OK is being set: return 0 to accept the driver's set. */
	int (*check_features)(struct virtio_dev *dev);
	/* DRIVER_OK was set: the queues are live. */
	void (*start)(struct virtio_dev *dev);
	/* Status 0 was written; the queues are already stopped. */
	void (*reset)(struct virtio_dev *dev);
};

struct virtio_dev {
	uint32_t device_id;
	uint64_t device_features;
	uint64_t driver_features;	/* what the driver acked */
	const struct virtio_dev_ops *ops;

	struct virtq *queues;
	int nqueues;
	uint32_t queue_num_max;

	/* Registers. */
	uint32_t status;
	uint32_t int_status;		/* atomic: read by the IRQ handler */
	uint32_t config_gen;
	uint32_t dev_features_sel, drv_features_sel, queue_sel;

	/* From virtio_dev_register. */
	void *base;
	int irq;
};

/* Register the window and allocate an IRQ; 0 or -errno. */
int virtio_dev_register(struct virtio_dev *dev);
void virtio_dev_unregister(struct virtio_dev *dev);

/* 1 if the driver acked feature bit (only meaningful after FEATURES_OK). */
static inline int virtio_has(const struct virtio_dev *dev, int bit)
{
	return (dev->driver_features >> bit) & 1;
}

/* 1 while the driver has set DRIVER_OK and not reset. */
int virtio_dev_live(const struct virtio_dev *dev);

/*
 * Raise the device's interrupt for reason (VIRTIO_MMIO_INT_VRING or
 * _CONFIG).  May run the kernel's handler on the calling thread, so the
 * caller must hold no queue lock.
 */
void virtio_dev_interrupt(struct virtio_dev *dev, uint32_t reason);

/* ---- split virtqueue, device side: call with q->lock held ---------------- */

/* A descriptor chain taken (or peeked) from the avail ring. */
struct virtq_chain {
	uint16_t head;
	uint32_t len;		/* total bytes in the chain */
	int niov;
	struct iovec *iov;	/* points into the caller's array */
};

/* Entries the driver has made available that we have not taken. */
uint16_t virtq_pending(struct virtq *q);

/*
 * Map the chain at avail position last_avail + ahead into iov (at most
 * max entries).  want_write selects device-writable (RX) or readable
 * (TX) buffers; a chain of the other kind, a loop or a bad index makes
 * it fail with -EIO.  -ENOSPC if iov is too short.
 */
int virtq_map_chain(struct virtq *q, uint16_t ahead, int want_write,
		    struct iovec *iov, int max, struct virtq_chain *chain);

/* Put a chain on the used ring (not yet visible: see virtq_publish). */
void virtq_push_used(struct virtq *q, uint16_t head, uint32_t len);

/* Make pushed used entries visible; returns 1 if an interrupt is due. */
int virtq_publish(struct virtq *q);

/*
 * Ask for (on=1) or waive (on=0) a notification when the driver adds
 * buffers past the seen ones: the caller has looked at seen entries past
 * last_avail (too few to use yet).  Returns how many entries are pending
 * past those after the change: if any, the caller must look again
 * instead of waiting for a notification that may never come.
 */
uint16_t virtq_want_notify(struct virtq *q, int on, uint16_t seen);

#endif
