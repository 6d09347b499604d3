/*
 * virtio-mmio version 2 registers, device side: see virtio.h.  The
 * kernel's drivers/virtio/virtio_mmio.c is the other end.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include <lkl/lkl.h>
#include <lkl/linux/virtio_config.h>
#include <lkl/linux/virtio_mmio.h>

#include "iomem.h"
#include "virtio.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
	       "virtio 1.x rings are little-endian and used in place");

#define MMIO_MAGIC	0x74726976	/* "virt" */
#define MMIO_VENDOR	0x004c4b4c	/* "LKL" */

static uint32_t load32(const uint32_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

int virtio_dev_live(const struct virtio_dev *dev)
{
	uint32_t s = load32(&dev->status);

	return (s & LKL_VIRTIO_CONFIG_S_DRIVER_OK) &&
	       !(s & LKL_VIRTIO_CONFIG_S_FAILED);
}

void virtio_dev_interrupt(struct virtio_dev *dev, uint32_t reason)
{
	__atomic_fetch_or(&dev->int_status, reason, __ATOMIC_SEQ_CST);
	/* No kernel (not booted, or halted): nobody to tell. */
	if (lkl_is_running())
		lkl_trigger_irq(dev->irq);
}

static struct virtq *selected(struct virtio_dev *dev)
{
	if (dev->queue_sel >= (uint32_t)dev->nqueues)
		return NULL;
	return &dev->queues[dev->queue_sel];
}

/* The queue's rings are now the driver's; stop touching them. */
static void queue_stop(struct virtq *q)
{
	pthread_mutex_lock(&q->lock);
	q->ready = 0;
	q->num = 0;
	q->desc_addr = q->avail_addr = q->used_addr = 0;
	q->desc = NULL;
	q->avail = NULL;
	q->used = NULL;
	q->last_avail = q->used_idx = q->signalled_used = 0;
	q->signalled_valid = 0;
	pthread_mutex_unlock(&q->lock);
}

static void queue_start(struct virtq *q)
{
	pthread_mutex_lock(&q->lock);
	q->desc = (void *)(uintptr_t)q->desc_addr;
	q->avail = (void *)(uintptr_t)q->avail_addr;
	q->used = (void *)(uintptr_t)q->used_addr;
	/* The driver may restart a queue whose used ring it kept. */
	q->used_idx = q->used->idx;
	q->last_avail = q->used_idx;
	q->signalled_valid = 0;
	q->ready = 1;
	pthread_mutex_unlock(&q->lock);
}

static void device_reset(struct virtio_dev *dev)
{
	int i;

	/* Taking each lock waits out a poller that is inside a ring. */
	for (i = 0; i < dev->nqueues; i++)
		queue_stop(&dev->queues[i]);
	dev->driver_features = 0;
	dev->dev_features_sel = dev->drv_features_sel = dev->queue_sel = 0;
	__atomic_store_n(&dev->int_status, 0, __ATOMIC_SEQ_CST);
	__atomic_store_n(&dev->status, 0, __ATOMIC_SEQ_CST);
	if (dev->ops->reset)
		dev->ops->reset(dev);
}

static void write_status(struct virtio_dev *dev, uint32_t val)
{
	uint32_t old = dev->status;

	if (val == 0) {
		device_reset(dev);
		return;
	}
	if ((val & LKL_VIRTIO_CONFIG_S_FEATURES_OK) &&
	    !(old & LKL_VIRTIO_CONFIG_S_FEATURES_OK)) {
		/* Refuse by leaving the bit clear; the driver reads it back. */
		if ((dev->driver_features & ~dev->device_features) ||
		    !virtio_has(dev, LKL_VIRTIO_F_VERSION_1) ||
		    (dev->ops->check_features && dev->ops->check_features(dev)))
			val &= ~LKL_VIRTIO_CONFIG_S_FEATURES_OK;
	}
	__atomic_store_n(&dev->status, val, __ATOMIC_SEQ_CST);
	if ((val & LKL_VIRTIO_CONFIG_S_DRIVER_OK) &&
	    !(old & LKL_VIRTIO_CONFIG_S_DRIVER_OK) && dev->ops->start)
		dev->ops->start(dev);
}

static void set_half(uint64_t *v, uint32_t sel, uint32_t val)
{
	if (sel > 1)
		return;
	*v &= ~(0xffffffffULL << (32 * sel));
	*v |= (uint64_t)val << (32 * sel);
}

static int mmio_read(void *data, int offset, void *value, int size)
{
	struct virtio_dev *dev = data;
	struct virtq *q;
	uint32_t v = 0;

	if (offset >= LKL_VIRTIO_MMIO_CONFIG) {
		memset(value, 0, size);
		dev->ops->config_read(dev, offset - LKL_VIRTIO_MMIO_CONFIG,
				      value, size);
		return 0;
	}
	if (size != 4)
		return -EINVAL;

	switch (offset) {
	case LKL_VIRTIO_MMIO_MAGIC_VALUE:
		v = MMIO_MAGIC;
		break;
	case LKL_VIRTIO_MMIO_VERSION:
		v = 2;
		break;
	case LKL_VIRTIO_MMIO_DEVICE_ID:
		v = dev->device_id;
		break;
	case LKL_VIRTIO_MMIO_VENDOR_ID:
		v = MMIO_VENDOR;
		break;
	case LKL_VIRTIO_MMIO_DEVICE_FEATURES:
		if (dev->dev_features_sel < 2)
			v = dev->device_features >> (32 * dev->dev_features_sel);
		break;
	case LKL_VIRTIO_MMIO_QUEUE_NUM_MAX:
		v = selected(dev) ? dev->queue_num_max : 0;
		break;
	case LKL_VIRTIO_MMIO_QUEUE_READY:
		q = selected(dev);
		v = q ? q->ready : 0;
		break;
	case LKL_VIRTIO_MMIO_INTERRUPT_STATUS:
		v = load32(&dev->int_status);
		break;
	case LKL_VIRTIO_MMIO_STATUS:
		v = load32(&dev->status);
		break;
	case LKL_VIRTIO_MMIO_SHM_LEN_LOW:
	case LKL_VIRTIO_MMIO_SHM_LEN_HIGH:
		v = 0xffffffff;		/* no shared memory regions */
		break;
	case LKL_VIRTIO_MMIO_CONFIG_GENERATION:
		v = load32(&dev->config_gen);
		break;
	}
	*(uint32_t *)value = v;
	return 0;
}

static void write_queue_addr(struct virtq *q, int offset, uint32_t v)
{
	switch (offset) {
	case LKL_VIRTIO_MMIO_QUEUE_DESC_LOW:
	case LKL_VIRTIO_MMIO_QUEUE_DESC_HIGH:
		set_half(&q->desc_addr, offset == LKL_VIRTIO_MMIO_QUEUE_DESC_HIGH,
			 v);
		break;
	case LKL_VIRTIO_MMIO_QUEUE_AVAIL_LOW:
	case LKL_VIRTIO_MMIO_QUEUE_AVAIL_HIGH:
		set_half(&q->avail_addr,
			 offset == LKL_VIRTIO_MMIO_QUEUE_AVAIL_HIGH, v);
		break;
	case LKL_VIRTIO_MMIO_QUEUE_USED_LOW:
	case LKL_VIRTIO_MMIO_QUEUE_USED_HIGH:
		set_half(&q->used_addr, offset == LKL_VIRTIO_MMIO_QUEUE_USED_HIGH,
			 v);
		break;
	}
}

static int mmio_write(void *data, int offset, const void *value, int size)
{
	struct virtio_dev *dev = data;
	struct virtq *q;
	uint32_t v;

	if (offset >= LKL_VIRTIO_MMIO_CONFIG)
		return 0;	/* virtio-net config is read-only */
	if (size != 4)
		return -EINVAL;
	v = *(const uint32_t *)value;

	switch (offset) {
	case LKL_VIRTIO_MMIO_DEVICE_FEATURES_SEL:
		dev->dev_features_sel = v;
		break;
	case LKL_VIRTIO_MMIO_DRIVER_FEATURES:
		if (!(dev->status & LKL_VIRTIO_CONFIG_S_FEATURES_OK))
			set_half(&dev->driver_features, dev->drv_features_sel,
				 v);
		break;
	case LKL_VIRTIO_MMIO_DRIVER_FEATURES_SEL:
		dev->drv_features_sel = v;
		break;
	case LKL_VIRTIO_MMIO_QUEUE_SEL:
		dev->queue_sel = v;
		break;
	case LKL_VIRTIO_MMIO_QUEUE_NUM:
		q = selected(dev);
		/* Split rings need a power of two (spec 2.7). */
		if (q && !q->ready && v && v <= dev->queue_num_max &&
		    !(v & (v - 1)))
			q->num = v;
		break;
	case LKL_VIRTIO_MMIO_QUEUE_READY:
		q = selected(dev);
		if (!q)
			break;
		if (v && !q->ready && q->num && q->desc_addr &&
		    q->avail_addr && q->used_addr)
			queue_start(q);
		else if (!v && q->ready)
			queue_stop(q);
		break;
	case LKL_VIRTIO_MMIO_QUEUE_DESC_LOW:
	case LKL_VIRTIO_MMIO_QUEUE_DESC_HIGH:
	case LKL_VIRTIO_MMIO_QUEUE_AVAIL_LOW:
	case LKL_VIRTIO_MMIO_QUEUE_AVAIL_HIGH:
	case LKL_VIRTIO_MMIO_QUEUE_USED_LOW:
	case LKL_VIRTIO_MMIO_QUEUE_USED_HIGH:
		q = selected(dev);
		if (q && !q->ready)
			write_queue_addr(q, offset, v);
		break;
	case LKL_VIRTIO_MMIO_QUEUE_NOTIFY:
		if (v < (uint32_t)dev->nqueues && virtio_dev_live(dev))
			dev->ops->notify(dev, v);
		break;
	case LKL_VIRTIO_MMIO_INTERRUPT_ACK:
		__atomic_fetch_and(&dev->int_status, ~v, __ATOMIC_SEQ_CST);
		break;
	case LKL_VIRTIO_MMIO_STATUS:
		write_status(dev, v);
		break;
	}
	return 0;
}

static const struct lkl_iomem_ops mmio_ops = {
	.read = mmio_read,
	.write = mmio_write,
};

int virtio_dev_register(struct virtio_dev *dev)
{
	int i;

	for (i = 0; i < dev->nqueues; i++) {
		pthread_mutex_init(&dev->queues[i].lock, NULL);
		dev->queues[i].dev = dev;
	}
	dev->irq = lkl_get_free_irq("virtio");
	if (dev->irq < 0)
		return dev->irq;
	dev->base = lkl_iomem_register(VIRTIO_MMIO_WINDOW, &mmio_ops, dev);
	if (!dev->base) {
		lkl_put_irq(dev->irq, "virtio");
		return -ENOSPC;
	}
	return 0;
}

void virtio_dev_unregister(struct virtio_dev *dev)
{
	int i;

	if (dev->base)
		lkl_iomem_unregister(dev->base);
	if (dev->irq > 0)
		lkl_put_irq(dev->irq, "virtio");
	dev->base = NULL;
	dev->irq = 0;
	for (i = 0; i < dev->nqueues; i++)
		pthread_mutex_destroy(&dev->queues[i].lock);
}
