/*
 * The kernel's TCP/IP stack on its own loopback: TCP over 127.0.0.1 and
 * ::1 (16 MiB echoed, SHA-256 checked on both ends) and a UDP round trip.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <string.h>

#include <lkl/linux/socket_abi.h>
#include <lkl/linux/in.h>
#include <lkl/linux/in6.h>
#include <lkl/linux/errno.h>

#include "net_util.h"

#define TRANSFER	(16 << 20)
#define CHUNK		(64 << 10)

struct echo_server {
	long listener;
	uint8_t digest[32];
};

/* Accept one connection, hash everything it sends and send it back. */
static void *echo_server(void *arg)
{
	struct echo_server *srv = arg;
	static char buf[CHUNK];
	struct sha256 h;
	long conn, n;

	conn = CHECK_OK(sys(LKL__NR_accept4, srv->listener, 0, 0, 0));
	sha256_init(&h);
	while ((n = sys(LKL__NR_read, conn, (long)buf, sizeof(buf))) > 0) {
		long off = 0;

		sha256_update(&h, buf, n);
		while (off < n)
			off += CHECK_OK(sys(LKL__NR_write, conn, (long)buf + off,
					    n - off));
	}
	CHECK(n == 0, "server read: %ld", n);
	sha256_final(&h, srv->digest);
	sys(LKL__NR_close, conn);
	return NULL;
}

struct reader {
	long fd;
	uint8_t digest[32];
	long total;
};

static void *echo_reader(void *arg)
{
	struct reader *r = arg;
	static char buf[CHUNK];
	struct sha256 h;
	long n;

	sha256_init(&h);
	while ((n = sys(LKL__NR_read, r->fd, (long)buf, sizeof(buf))) > 0) {
		sha256_update(&h, buf, n);
		r->total += n;
	}
	CHECK(n == 0, "client read: %ld", n);
	sha256_final(&h, r->digest);
	return NULL;
}

static void tcp_echo(int family, const char *name)
{
	struct net_addr a = net_loopback_addr(family, 7000 + family);
	struct echo_server srv;
	struct reader rd = { 0 };
	static char buf[CHUNK];
	uint8_t sent_digest[32];
	struct sha256 h;
	pthread_t st, rt;
	uint64_t seed = 12345;
	long fd, sent = 0;
	uint64_t t0;

	srv.listener = CHECK_OK(sys(LKL__NR_socket, family, LKL_SOCK_STREAM, 0));
	CHECK_OK(sys(LKL__NR_bind, srv.listener, (long)&a, a.len));
	CHECK_OK(sys(LKL__NR_listen, srv.listener, 8));
	pthread_create(&st, NULL, echo_server, &srv);

	fd = CHECK_OK(sys(LKL__NR_socket, family, LKL_SOCK_STREAM, 0));
	CHECK_OK(sys(LKL__NR_connect, fd, (long)&a, a.len));
	rd.fd = fd;
	pthread_create(&rt, NULL, echo_reader, &rd);

	t0 = test_now_ns();
	sha256_init(&h);
	while (sent < TRANSFER) {
		long off = 0;

		test_fill(buf, sizeof(buf), &seed);
		sha256_update(&h, buf, sizeof(buf));
		while (off < (long)sizeof(buf))
			off += CHECK_OK(sys(LKL__NR_write, fd, (long)buf + off,
					    sizeof(buf) - off));
		sent += sizeof(buf);
	}
	sha256_final(&h, sent_digest);
	CHECK_OK(sys(LKL__NR_shutdown, fd, 1 /* SHUT_WR */));
	pthread_join(rt, NULL);
	pthread_join(st, NULL);

	CHECK(rd.total == TRANSFER, "echoed %ld of %d bytes", rd.total, TRANSFER);
	CHECK(!memcmp(sent_digest, srv.digest, 32), "server's SHA-256 differs");
	CHECK(!memcmp(sent_digest, rd.digest, 32), "echoed SHA-256 differs");
	sys(LKL__NR_close, fd);
	sys(LKL__NR_close, srv.listener);
	printf("ok tcp %s (16 MiB echoed in %.0f ms)\n", name,
	       (test_now_ns() - t0) / 1e6);
}

static void udp_round_trip(void)
{
	struct net_addr a = net_loopback_addr(LKL_AF_INET, 9000), b = net_loopback_addr(LKL_AF_INET, 9001);
	struct lkl_sockaddr_in from;
	int fromlen = sizeof(from);
	char buf[64];
	long s1, s2, n;

	s1 = CHECK_OK(sys(LKL__NR_socket, LKL_AF_INET, LKL_SOCK_DGRAM, 0));
	s2 = CHECK_OK(sys(LKL__NR_socket, LKL_AF_INET, LKL_SOCK_DGRAM, 0));
	CHECK_OK(sys(LKL__NR_bind, s1, (long)&a, a.len));
	CHECK_OK(sys(LKL__NR_bind, s2, (long)&b, b.len));
	CHECK(sys(LKL__NR_sendto, s1, (long)"ping", 4, 0, (long)&b, b.len) == 4, "sendto");
	n = sys(LKL__NR_recvfrom, s2, (long)buf, sizeof(buf), 0, (long)&from, (long)&fromlen);
	CHECK(n == 4 && !memcmp(buf, "ping", 4), "recvfrom %ld", n);
	CHECK(__builtin_bswap16(from.sin_port) == 9000, "source port");
	CHECK(sys(LKL__NR_sendto, s2, (long)"pong", 4, 0, (long)&from, fromlen) == 4, "reply");
	n = sys(LKL__NR_recvfrom, s1, (long)buf, sizeof(buf), 0, 0, 0);
	CHECK(n == 4 && !memcmp(buf, "pong", 4), "reply received %ld", n);
	sys(LKL__NR_close, s1);
	sys(LKL__NR_close, s2);
	PASS("udp");
}

int main(void)
{
	test_boot(NULL);
	test_lo_up();
	PASS("lo up");
	tcp_echo(LKL_AF_INET, "127.0.0.1");
	tcp_echo(LKL_AF_INET6, "::1");
	udp_round_trip();
	CHECK(lkl_sys_halt() == 0, "halt");
	PASS("halt");
	return 0;
}
