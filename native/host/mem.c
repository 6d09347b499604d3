/*
 * Host memory: small allocations for the kernel port's host-side records,
 * and the kernel's RAM (kernel/setup.c), mapped lazily.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <sys/mman.h>

#include "posix.h"

void *host_mem_alloc(unsigned long size)
{
	return malloc(size);
}

void host_mem_free(void *p)
{
	free(p);
}

/*
 * Untouched RAM costs nothing: pages become resident as the kernel uses
 * them.  Page frame numbers are host addresses / 4 KiB, and at boot the
 * kernel walks every pfn below its RAM as a hole: at the usual mmap
 * addresses (0x7f...) that walk alone takes ~40 ms.  So ask for a low
 * address first (64 GiB and up: above any brk heap, below the mmap area),
 * and take whatever the kernel gives if those are all in use.
 */
void *host_ram_alloc(unsigned long size)
{
	const int prot = PROT_READ | PROT_WRITE;
	const int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;
	unsigned long hint;
	void *p;

	for (hint = 64UL << 30; hint <= 1024UL << 30; hint += 64UL << 30) {
		p = mmap((void *)hint, size, prot, flags | MAP_FIXED_NOREPLACE,
			 -1, 0);
		if (p == (void *)hint)
			return p;
		if (p != MAP_FAILED)
			munmap(p, size);
	}
	p = mmap(NULL, size, prot, flags, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

void host_ram_free(void *p, unsigned long size)
{
	munmap(p, size);
}
