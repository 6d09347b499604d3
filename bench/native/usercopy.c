/*
 * The guarded user copy (native/host/fault.c: one `rep movsb` under a
 * fault fixup) beside glibc's memcpy, which the kernel's user copies used
 * before, for the sizes syscalls copy: best of 5 runs of a tight loop,
 * ns per copy.  Prints one JSON object.
 *
 *   usercopy
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <time.h>

/* The routine itself, not the library's (whose symbols are local). */
#include "../../native/host/fault.c"

static unsigned long long now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000000000ULL + t.tv_nsec;
}

static char dst[1 << 17], src[1 << 17];

int main(void)
{
	static const size_t sizes[] = { 8, 64, 512, 1448, 4096, 16384, 65536 };
	unsigned int s;
	int r;

	printf("{\"unit\": \"ns per copy\", \"rows\": [");
	for (s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		size_t n = sizes[s];
		long i, iters = (long)(2e8 / (n + 64));
		double best_m = 1e18, best_g = 1e18;

		for (r = 0; r < 5; r++) {
			unsigned long long t0 = now();
			double m, g;

			for (i = 0; i < iters; i++) {
				memcpy(dst + (i & 64), src, n);
				__asm__ volatile("" : : "r"(dst) : "memory");
			}
			m = (double)(now() - t0) / iters;
			t0 = now();
			for (i = 0; i < iters; i++) {
				host_user_copy(dst + (i & 64), src, n);
				__asm__ volatile("" : : "r"(dst) : "memory");
			}
			g = (double)(now() - t0) / iters;
			best_m = m < best_m ? m : best_m;
			best_g = g < best_g ? g : best_g;
		}
		printf("%s{\"bytes\": %zu, \"memcpy_ns\": %.1f, \"guarded_ns\": %.1f, "
		       "\"ratio\": %.2f}", s ? ", " : "", n, best_m, best_g,
		       best_g / best_m);
	}
	printf("]}\n");
	return 0;
}
