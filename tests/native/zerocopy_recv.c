/*
 * Zero-copy TCP receive from C (lkl_recv_zerocopy, lkl_zerocopy_release):
 * 16 MiB over 127.0.0.1 and ::1 read in place (SHA-256 on both ends),
 * tokens held across reads and released out of order, partial reads mixed
 * with read(), EOF, EAGAIN, misuse, release after close, halt with a
 * token held.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <string.h>

#include <lkl/linux/socket_abi.h>
#include <lkl/linux/in.h>
#include <lkl/linux/in6.h>
#include <lkl/linux/errno.h>
#include <lkl/linux/time_types.h>

#include "net_util.h"

#define TRANSFER	(16 << 20)
#define CHUNK		(64 << 10)
#define HOLD		4

/* A connected pair: *cli and *srv (the accepted end). */
static void tcp_pair(int family, int port, long *cli, long *srv)
{
	struct lkl__kernel_sock_timeval rcvtimeo = { .tv_sec = 10 };
	int big = 4 << 20;

	net_loopback_pair(family, port, cli, srv);
	/*
	 * Room to hold a few reads while asking for more: held bytes stay
	 * charged, and the window closes once less than a segment (64 KiB
	 * on loopback) is free.
	 */
	CHECK_OK(sys(LKL__NR_setsockopt, *srv, LKL_SOL_SOCKET, LKL_SO_RCVBUFFORCE,
		     (long)&big, sizeof(big)));
	/* No read may hang the test. */
	CHECK_OK(sys(LKL__NR_setsockopt, *srv, LKL_SOL_SOCKET,
		     LKL_SO_RCVTIMEO_NEW, (long)&rcvtimeo, sizeof(rcvtimeo)));
}

struct writer {
	long fd;
	uint8_t digest[32];
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	static char buf[CHUNK];
	uint64_t seed = 777;
	struct sha256 h;
	long sent = 0;

	sha256_init(&h);
	while (sent < TRANSFER) {
		long off = 0;

		test_fill(buf, sizeof(buf), &seed);
		sha256_update(&h, buf, sizeof(buf));
		while (off < (long)sizeof(buf))
			off += CHECK_OK(sys(LKL__NR_write, w->fd, (long)buf + off,
					    sizeof(buf) - off));
		sent += sizeof(buf);
	}
	sha256_final(&h, w->digest);
	CHECK_OK(sys(LKL__NR_shutdown, w->fd, 1 /* SHUT_WR */));
	return NULL;
}

static void stream(int family, const char *name)
{
	struct lkl_zc_seg segs[16];
	unsigned long held[HOLD] = { 0 };
	struct writer w;
	struct sha256 h;
	uint8_t digest[32];
	long cli, srv, n, total = 0, calls = 0, nsegs = 0;
	pthread_t t;
	int i, k = 0;

	tcp_pair(family, 7100 + family, &cli, &srv);
	w.fd = cli;
	pthread_create(&t, NULL, writer_main, &w);
	sha256_init(&h);
	for (;;) {
		unsigned long token = 1, sum = 0;

		n = lkl_recv_zerocopy(srv, segs, 16, CHUNK, 0, &token);
		if (n == -LKL_EAGAIN) {
			static char tcp[4096];

			test_read_kernel_file(family == LKL_AF_INET ?
					      "/proc/net/tcp" : "/proc/net/tcp6",
					      tcp, sizeof(tcp));
			CHECK(0, "stalled after %ld bytes:\n%s", total, tcp);
		}
		if (n == 0) {
			CHECK(token == 0, "a token at EOF");
			break;
		}
		CHECK_OK(n);
		for (i = 0; i < 16 && sum < (unsigned long)n; i++) {
			CHECK(segs[i].len > 0, "empty segment");
			sha256_update(&h, (void *)segs[i].addr, segs[i].len);
			sum += segs[i].len;
			nsegs++;
		}
		CHECK(sum == (unsigned long)n, "segments add up to %lu of %ld",
		      sum, n);
		total += n;
		calls++;
		/* Hold the last HOLD reads; release the oldest-but-one first. */
		if (held[k])
			CHECK_OK(lkl_zerocopy_release(held[k]));
		held[k] = token;
		k = (k + 3) % HOLD;
	}
	for (i = 0; i < HOLD; i++)
		if (held[i])
			CHECK_OK(lkl_zerocopy_release(held[i]));
	CHECK(lkl_zerocopy_release(held[0]) == -LKL_EINVAL,
	      "a second release");
	pthread_join(t, NULL);
	sha256_final(&h, digest);
	CHECK(total == TRANSFER, "received %ld of %d bytes", total, TRANSFER);
	CHECK(!memcmp(digest, w.digest, 32), "SHA-256 differs");
	sys(LKL__NR_close, cli);
	sys(LKL__NR_close, srv);
	printf("ok zerocopy %s (16 MiB in %ld calls, %ld segments)\n", name,
	       calls, nsegs);
}

static void semantics(void)
{
	struct lkl_zc_seg segs[4];
	unsigned long token, t1, t2;
	char buf[64];
	long cli, srv, udp, n;

	tcp_pair(LKL_AF_INET, 7200, &cli, &srv);

	/* Nothing queued: EAGAIN without waiting. */
	n = lkl_recv_zerocopy(srv, segs, 4, 100, LKL_MSG_DONTWAIT, &token);
	CHECK(n == -LKL_EAGAIN, "empty queue: %ld", n);

	/* Partial reads: read(3), zero copy 4 (a clone), read the rest. */
	CHECK(sys(LKL__NR_write, cli, (long)"abcdefghij", 10) == 10, "write");
	CHECK(sys(LKL__NR_read, srv, (long)buf, 3) == 3, "read 3");
	n = lkl_recv_zerocopy(srv, segs, 4, 4, 0, &t1);
	CHECK(n == 4 && !memcmp((void *)segs[0].addr, "defg", 4),
	      "zero copy after a read: %ld", n);
	CHECK(sys(LKL__NR_read, srv, (long)buf, sizeof(buf)) == 3 &&
	      !memcmp(buf, "hij", 3), "read after zero copy");
	CHECK(!memcmp((void *)segs[0].addr, "defg", 4), "held bytes changed");
	PASS("partial reads mixed with read()");

	/* Held, then both sockets closed: the release is still fine. */
	CHECK(sys(LKL__NR_write, cli, (long)"xyz", 3) == 3, "write");
	n = lkl_recv_zerocopy(srv, segs, 4, 100, 0, &t2);
	CHECK(n == 3 && !memcmp((void *)segs[0].addr, "xyz", 3), "xyz: %ld", n);
	sys(LKL__NR_close, cli);
	n = lkl_recv_zerocopy(srv, segs, 4, 100, 0, &token);
	CHECK(n == 0 && token == 0, "EOF: %ld", n);
	sys(LKL__NR_close, srv);
	CHECK_OK(lkl_zerocopy_release(t2));
	CHECK_OK(lkl_zerocopy_release(t1));
	PASS("EOF, release after close, in any order");

	/* Misuse. */
	CHECK(lkl_zerocopy_release(t1) == -LKL_EINVAL, "double release");
	CHECK(lkl_zerocopy_release(0) == -LKL_EINVAL, "token 0");
	CHECK(lkl_zerocopy_release(~0UL) == -LKL_EINVAL, "bad token");
	udp = CHECK_OK(sys(LKL__NR_socket, LKL_AF_INET, LKL_SOCK_DGRAM, 0));
	n = lkl_recv_zerocopy(udp, segs, 4, 100, 0, &token);
	CHECK(n == -LKL_EINVAL, "UDP: %ld", n);
	n = lkl_recv_zerocopy(udp, segs, 0, 100, 0, &token);
	CHECK(n == -LKL_EINVAL, "no segments: %ld", n);
	sys(LKL__NR_close, udp);
	n = lkl_recv_zerocopy(udp, segs, 4, 100, 0, &token);
	CHECK(n == -LKL_EBADF, "closed fd: %ld", n);
	n = CHECK_OK(sys(LKL__NR_socket, LKL_AF_INET, LKL_SOCK_STREAM, 0));
	CHECK(lkl_recv_zerocopy(n, segs, 4, 100, 0, &token) == -LKL_ENOTCONN,
	      "unconnected");
	CHECK(lkl_recv_zerocopy(n, segs, 4, 100, LKL_MSG_PEEK, &token) ==
	      -LKL_EINVAL, "MSG_PEEK");
	CHECK(lkl_recv_zerocopy(n, (void *)8, 4, 100, 0, &token) == -LKL_EFAULT,
	      "bad segment array");
	sys(LKL__NR_close, n);
	PASS("misuse: EINVAL, EBADF, ENOTCONN, EFAULT");
}

/* A token still held when the kernel halts. */
static void halt_holding(void)
{
	struct lkl_zc_seg segs[4];
	unsigned long token;
	long cli, srv;

	tcp_pair(LKL_AF_INET, 7300, &cli, &srv);
	CHECK(sys(LKL__NR_write, cli, (long)"held", 4) == 4, "write");
	CHECK(lkl_recv_zerocopy(srv, segs, 4, 100, 0, &token) == 4, "held");
	CHECK(lkl_sys_halt() == 0, "halt");
	CHECK(lkl_zerocopy_release(token) == -LKL_ENODEV, "release after halt");
	PASS("halt with a token held");
}

int main(void)
{
	test_boot(NULL);
	test_lo_up();
	stream(LKL_AF_INET, "127.0.0.1");
	stream(LKL_AF_INET6, "::1");
	semantics();
	CHECK(!strstr(test_console, "WARNING") && !strstr(test_console, "BUG"),
	      "kernel warnings:\n%s", test_console);
	PASS("no kernel warnings");
	halt_holding();
	return 0;
}
