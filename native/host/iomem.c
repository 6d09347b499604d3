/* Memory-mapped I/O regions of host devices: see iomem.h. */
#include <stddef.h>
#include <stdint.h>

#include "iomem.h"

#define IOMEM_SLOTS	64
/* Slot n is the window [(n + 1) << IOMEM_SHIFT, +1 << IOMEM_SHIFT). */
#define IOMEM_SHIFT	24

/*
 * A slot is claimed first, then filled, then published by its ops (a
 * release store): whoever sees the ops (an acquire load) sees the size
 * and data they go with.
 */
struct region {
	int claimed;
	int size;
	void *data;
	const struct lkl_iomem_ops *ops;	/* NULL: not (yet) in use */
};

static struct region regions[IOMEM_SLOTS];

void *lkl_iomem_register(int size, const struct lkl_iomem_ops *ops,
			 void *data)
{
	int i;

	if (size <= 0 || size > (1 << IOMEM_SHIFT) || !ops)
		return NULL;
	for (i = 0; i < IOMEM_SLOTS; i++) {
		struct region *r = &regions[i];

		if (__atomic_exchange_n(&r->claimed, 1, __ATOMIC_ACQUIRE))
			continue;
		r->size = size;
		r->data = data;
		__atomic_store_n(&r->ops, ops, __ATOMIC_RELEASE);
		return (void *)((uintptr_t)(i + 1) << IOMEM_SHIFT);
	}
	return NULL;
}

void lkl_iomem_unregister(void *base)
{
	uintptr_t slot = ((uintptr_t)base >> IOMEM_SHIFT) - 1;
	struct region *r;

	if (slot >= IOMEM_SLOTS)
		return;
	r = &regions[slot];
	__atomic_store_n(&r->ops, NULL, __ATOMIC_RELEASE);
	r->size = 0;
	r->data = NULL;
	__atomic_store_n(&r->claimed, 0, __ATOMIC_RELEASE);
}

/* The region's ops (NULL: none there), its data and the offset in it. */
static const struct lkl_iomem_ops *lookup(uintptr_t addr, int size,
					  void **data, int *offset)
{
	uintptr_t slot = (addr >> IOMEM_SHIFT) - 1;
	const struct lkl_iomem_ops *ops;
	struct region *r;

	if (slot >= IOMEM_SLOTS)
		return NULL;
	r = &regions[slot];
	ops = __atomic_load_n(&r->ops, __ATOMIC_ACQUIRE);
	*offset = addr & ((1UL << IOMEM_SHIFT) - 1);
	if (!ops || size <= 0 || *offset + size > r->size)
		return NULL;
	*data = r->data;
	return ops;
}

void *lkl_iomem_map(long addr, int size)
{
	void *data;
	int offset;

	if (!lookup((uintptr_t)addr, size, &data, &offset))
		return NULL;
	return (void *)addr;
}

int lkl_iomem_access(const volatile void *addr, void *value, int size,
		     int write)
{
	const struct lkl_iomem_ops *ops;
	void *data;
	int offset;

	ops = lookup((uintptr_t)addr, size, &data, &offset);
	if (!ops)
		return -1;
	if (write)
		return ops->write(data, offset, value, size);
	return ops->read(data, offset, value, size);
}
