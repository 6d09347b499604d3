/*
 * Helpers for the C tests: boot with the console captured, checks that
 * print what failed, syscall shorthands and SHA-256.
 */
#ifndef LKL_TEST_UTIL_H
#define LKL_TEST_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <lkl/lkl.h>
#include <lkl/asm/unistd.h>

/* Fail the program with a message naming the check and its source line. */
#define CHECK(cond, ...)						\
	do {								\
		if (!(cond)) {						\
			fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__,	\
				__LINE__, #cond);			\
			fprintf(stderr, __VA_ARGS__);			\
			fprintf(stderr, "\n");				\
			exit(1);					\
		}							\
	} while (0)

#define CHECK_OK(expr)							\
	({								\
		long __r = (expr);					\
		CHECK(__r >= 0, "%s -> %ld (%s)", #expr, __r,		\
		      lkl_strerror((int)__r));				\
		__r;							\
	})

#define PASS(name) printf("ok %s\n", name)

/* Variadic syscall: sys(LKL__NR_x, a, b, ...). */
#define sys(nr, ...) test_syscall(nr, (long[6]){ __VA_ARGS__ })
static inline long test_syscall(long nr, long *args)
{
	return lkl_syscall(nr, args);
}

/* Boot with "mem=64M <extra>" and the console kept in test_console. */
void test_boot(const char *extra_cmdline);
extern char test_console[1 << 16];
extern size_t test_console_len;

/* Number of host threads of this process (entries of /proc/self/task). */
int test_host_threads(void);

/*
 * Read up to len - 1 bytes of the kernel's file path into buf, NUL
 * terminated; returns the count.  The test fails if it cannot.
 */
long test_read_kernel_file(const char *path, char *buf, size_t len);

/* Bring the kernel's loopback interface up. */
void test_lo_up(void);

struct sha256 {
	uint32_t h[8];
	uint64_t len;
	uint8_t buf[64];
	size_t fill;
};

void sha256_init(struct sha256 *s);
void sha256_update(struct sha256 *s, const void *data, size_t len);
void sha256_final(struct sha256 *s, uint8_t out[32]);

/* Deterministic pseudo-random bytes: the same seed gives the same stream. */
void test_fill(void *buf, size_t len, uint64_t *seed);

uint64_t test_now_ns(void);

#endif
