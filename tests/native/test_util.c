/* Helpers for the C tests: see test_util.h. */
#define _GNU_SOURCE
#include <dirent.h>
#include <string.h>
#include <time.h>

#include <lkl/linux/socket_abi.h>
#include <lkl/linux/if.h>
#include <lkl/linux/sockios.h>
#include <lkl/linux/fcntl.h>

#include "test_util.h"

char test_console[1 << 16];
size_t test_console_len;

static void capture_console(const char *str, int len)
{
	size_t room = sizeof(test_console) - 1 - test_console_len;
	size_t n = (size_t)len < room ? (size_t)len : room;

	memcpy(test_console + test_console_len, str, n);
	test_console_len += n;
	if (getenv("LKL_TEST_CONSOLE"))
		fwrite(str, 1, len, stderr);
}

void test_boot(const char *extra_cmdline)
{
	char cmdline[512];
	int ret;

	setvbuf(stdout, NULL, _IONBF, 0);
	/* LKL_TEST_CMDLINE: e.g. "lkl.syscall_mode=direct", set by the suite. */
	snprintf(cmdline, sizeof(cmdline), "mem=64M %s %s",
		 getenv("LKL_TEST_CMDLINE") ? getenv("LKL_TEST_CMDLINE") : "",
		 extra_cmdline ? extra_cmdline : "");
	lkl_host_ops.print = capture_console;
	ret = lkl_start_kernel(&lkl_host_ops, cmdline);
	CHECK(ret == 0, "lkl_start_kernel: %d (%s)", ret, lkl_strerror(ret));
}

int test_host_threads(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	int n = 0;

	CHECK(d != NULL, "opendir /proc/self/task");
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

long test_read_kernel_file(const char *path, char *buf, size_t len)
{
	long fd, n;

	fd = CHECK_OK(sys(LKL__NR_openat, LKL_AT_FDCWD, (long)path,
			  LKL_O_RDONLY));
	n = CHECK_OK(sys(LKL__NR_read, fd, (long)buf, len - 1));
	buf[n] = 0;
	sys(LKL__NR_close, fd);
	return n;
}

void test_lo_up(void)
{
	struct lkl_ifreq ifr;
	long fd = CHECK_OK(sys(LKL__NR_socket, LKL_AF_INET, LKL_SOCK_DGRAM, 0));

	memset(&ifr, 0, sizeof(ifr));
	strcpy(ifr.ifr_ifrn.ifrn_name, "lo");
	CHECK_OK(sys(LKL__NR_ioctl, fd, LKL_SIOCGIFFLAGS, (long)&ifr));
	ifr.ifr_ifru.ifru_flags |= LKL_IFF_UP;
	CHECK_OK(sys(LKL__NR_ioctl, fd, LKL_SIOCSIFFLAGS, (long)&ifr));
	CHECK_OK(sys(LKL__NR_close, fd));
}

uint64_t test_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

void test_fill(void *buf, size_t len, uint64_t *seed)
{
	uint8_t *p = buf;
	size_t i;

	/* xorshift64*: fast, and both ends can regenerate the stream. */
	for (i = 0; i < len; i++) {
		if ((i & 7) == 0) {
			*seed ^= *seed >> 12;
			*seed ^= *seed << 25;
			*seed ^= *seed >> 27;
		}
		p[i] = (uint8_t)((*seed * 0x2545F4914F6CDD1DULL) >> ((i & 7) * 8));
	}
}

/* ---- SHA-256 (FIPS 180-4) ---------------------------------------------- */

static const uint32_t k256[64] = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1,
	0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
	0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
	0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
	0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
	0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
	0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
	0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
	0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
	0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
	0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha256_block(struct sha256 *s, const uint8_t *p)
{
	uint32_t w[64], a, b, c, d, e, f, g, h;
	int i;

	for (i = 0; i < 16; i++)
		w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
		       (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
	for (i = 16; i < 64; i++) {
		uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
		uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);

		w[i] = w[i - 16] + s0 + w[i - 7] + s1;
	}
	a = s->h[0]; b = s->h[1]; c = s->h[2]; d = s->h[3];
	e = s->h[4]; f = s->h[5]; g = s->h[6]; h = s->h[7];
	for (i = 0; i < 64; i++) {
		uint32_t t1 = h + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) +
			      ((e & f) ^ (~e & g)) + k256[i] + w[i];
		uint32_t t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) +
			      ((a & b) ^ (a & c) ^ (b & c));

		h = g; g = f; f = e; e = d + t1;
		d = c; c = b; b = a; a = t1 + t2;
	}
	s->h[0] += a; s->h[1] += b; s->h[2] += c; s->h[3] += d;
	s->h[4] += e; s->h[5] += f; s->h[6] += g; s->h[7] += h;
}

void sha256_init(struct sha256 *s)
{
	static const uint32_t iv[8] = {
		0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
		0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
	};

	memcpy(s->h, iv, sizeof(iv));
	s->len = 0;
	s->fill = 0;
}

void sha256_update(struct sha256 *s, const void *data, size_t len)
{
	const uint8_t *p = data;

	s->len += len;
	while (len) {
		size_t n = 64 - s->fill;

		if (n > len)
			n = len;
		memcpy(s->buf + s->fill, p, n);
		s->fill += n;
		p += n;
		len -= n;
		if (s->fill == 64) {
			sha256_block(s, s->buf);
			s->fill = 0;
		}
	}
}

void sha256_final(struct sha256 *s, uint8_t out[32])
{
	uint64_t bits = s->len * 8;
	uint8_t pad = 0x80;
	int i;

	sha256_update(s, &pad, 1);
	pad = 0;
	while (s->fill != 56)
		sha256_update(s, &pad, 1);
	for (i = 7; i >= 0; i--) {
		uint8_t b = bits >> (i * 8);

		sha256_update(s, &b, 1);
	}
	for (i = 0; i < 8; i++) {
		out[4 * i] = s->h[i] >> 24;
		out[4 * i + 1] = s->h[i] >> 16;
		out[4 * i + 2] = s->h[i] >> 8;
		out[4 * i + 3] = s->h[i];
	}
}
