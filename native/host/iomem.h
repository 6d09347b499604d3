/*
 * Memory-mapped I/O regions of host devices (virtio-mmio).  A region is
 * named by a cookie address that encodes its slot; the kernel's readl()
 * and writel() on it reach the region's handler.
 */
#ifndef LKL_HOST_IOMEM_H
#define LKL_HOST_IOMEM_H

#include <stdint.h>

struct lkl_iomem_ops {
	int (*read)(void *data, int offset, void *value, int size);
	int (*write)(void *data, int offset, const void *value, int size);
};

/* Register a region; returns its cookie address, or NULL when full. */
void *lkl_iomem_register(int size, const struct lkl_iomem_ops *ops,
			 void *data);
void lkl_iomem_unregister(void *base);

/* host_ops entries. */
void *lkl_iomem_map(long addr, int size);
int lkl_iomem_access(const volatile void *addr, void *value, int size,
		     int write);

#endif
