/* Memory-mapped I/O regions of host devices: see iomem.h. */
#include <stddef.h>
#include <stdint.h>

#include "iomem.h"

#define IOMEM_SLOTS	64
/* Slot n is the window [(n + 1) << IOMEM_SHIFT, +1 << IOMEM_SHIFT). */
#define IOMEM_SHIFT	24

struct region {
	int size;
	const struct lkl_iomem_ops *ops;
	void *data;
};

static struct region regions[IOMEM_SLOTS];

void *lkl_iomem_register(int size, const struct lkl_iomem_ops *ops,
			 void *data)
{
	int i;

	if (size <= 0 || size > (1 << IOMEM_SHIFT))
		return NULL;
	for (i = 0; i < IOMEM_SLOTS; i++) {
		const struct lkl_iomem_ops *none = NULL;

		if (__atomic_compare_exchange_n(&regions[i].ops, &none, ops,
						0, __ATOMIC_SEQ_CST,
						__ATOMIC_SEQ_CST)) {
			regions[i].size = size;
			regions[i].data = data;
			return (void *)((uintptr_t)(i + 1) << IOMEM_SHIFT);
		}
	}
	return NULL;
}

void lkl_iomem_unregister(void *base)
{
	uintptr_t slot = ((uintptr_t)base >> IOMEM_SHIFT) - 1;

	if (slot < IOMEM_SLOTS) {
		regions[slot].size = 0;
		regions[slot].data = NULL;
		__atomic_store_n(&regions[slot].ops, NULL, __ATOMIC_SEQ_CST);
	}
}

static struct region *lookup(uintptr_t addr, int *offset)
{
	uintptr_t slot = (addr >> IOMEM_SHIFT) - 1;

	if (slot >= IOMEM_SLOTS || !regions[slot].ops)
		return NULL;
	*offset = addr & ((1UL << IOMEM_SHIFT) - 1);
	if (*offset >= regions[slot].size)
		return NULL;
	return &regions[slot];
}

void *lkl_iomem_map(long addr, int size)
{
	int offset;
	struct region *r = lookup((uintptr_t)addr, &offset);

	if (!r || offset + size > r->size)
		return NULL;
	return (void *)addr;
}

int lkl_iomem_access(const volatile void *addr, void *value, int size,
		     int write)
{
	int offset;
	struct region *r = lookup((uintptr_t)addr, &offset);

	if (!r)
		return -1;
	if (write)
		return r->ops->write(r->data, offset, value, size);
	return r->ops->read(r->data, offset, value, size);
}
