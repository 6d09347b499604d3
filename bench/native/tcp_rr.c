/*
 * TCP_RR with netperf's semantics: one connection, one byte each way,
 * one transaction outstanding, no think time.  Reports transactions per
 * second and the round trip (mean, p50, p99, in µs) as one JSON object.
 *
 *   tcp_rr server ADDR PORT                    host-stack responder
 *   tcp_rr host ADDR PORT [opts]               host-stack requester
 *   tcp_rr lkl ADDR PORT --tap IF --ip CIDR [--mode shadow|direct]
 *           [--pin CPU] [--busy-poll US] [--nohz-off] [opts]
 *                                              requester on lkl over TAP
 *   opts: --count N (default 100000), --seconds S (default 5): whichever
 *         ends first; 1000 warm-up transactions are not counted.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <lkl/lkl.h>
#include <lkl/netdev.h>

/* The tests' helpers: boot, syscall shorthands, interface set-up. */
#include "../../tests/native/net_util.h"

#define WARMUP 1000

/* One transaction over a connected socket: send a byte, read it back. */
typedef int (*rr_fn)(long fd);

static int host_rr(long fd)
{
	char c = 'x';

	if (send(fd, &c, 1, 0) != 1)
		return -1;
	return recv(fd, &c, 1, 0) == 1 ? 0 : -1;
}

static int lkl_rr(long fd)
{
	char c = 'x';

	if (sys(LKL__NR_sendto, fd, (long)&c, 1, 0, 0, 0) != 1)
		return -1;
	return sys(LKL__NR_recvfrom, fd, (long)&c, 1, 0, 0, 0) == 1 ? 0 : -1;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void measure(const char *stack, long fd, rr_fn rr, long count,
		    double seconds, const char *extra_json)
{
	uint64_t *lat = malloc(count * sizeof(*lat));
	uint64_t start, deadline, sum = 0;
	long i, n = 0;

	for (i = 0; i < WARMUP; i++)
		CHECK(rr(fd) == 0, "warm-up transaction %ld", i);
	start = test_now_ns();
	deadline = start + (uint64_t)(seconds * 1e9);
	while (n < count) {
		uint64_t t0 = test_now_ns();

		CHECK(rr(fd) == 0, "transaction %ld", n);
		lat[n++] = test_now_ns() - t0;
		if (lat[n - 1] + t0 > deadline)
			break;
	}
	for (i = 0; i < n; i++)
		sum += lat[i];
	qsort(lat, n, sizeof(*lat), cmp_u64);
	printf("{\"stack\": \"%s\", \"transactions\": %ld, \"elapsed_s\": %.3f, "
	       "\"tps\": %.0f, \"rtt_mean_us\": %.2f, \"rtt_p50_us\": %.2f, "
	       "\"rtt_p99_us\": %.2f%s}\n", stack, n, (test_now_ns() - start) / 1e9,
	       n / ((test_now_ns() - start) / 1e9), sum / 1e3 / n, lat[n / 2] / 1e3,
	       lat[n * 99 / 100] / 1e3, extra_json);
	free(lat);
}

static int server(const char *addr, int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	int one = 1, s, c;
	char buf[64];
	ssize_t n;

	inet_pton(AF_INET, addr, &a.sin_addr);
	s = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	CHECK(bind(s, (void *)&a, sizeof(a)) == 0, "bind %s:%d", addr, port);
	CHECK(listen(s, 1) == 0, "listen");
	printf("listening\n");
	fflush(stdout);
	c = accept(s, NULL, NULL);
	setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/* Echo until the requester closes: a single connection, as netperf. */
	while ((n = recv(c, buf, sizeof(buf), 0)) > 0)
		if (send(c, buf, n, 0) != n)
			break;
	close(c);
	close(s);
	return 0;
}

static int host_client(const char *addr, int port, long count, double seconds)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	int one = 1, s = socket(AF_INET, SOCK_STREAM, 0);

	inet_pton(AF_INET, addr, &a.sin_addr);
	CHECK(connect(s, (void *)&a, sizeof(a)) == 0, "connect %s:%d", addr, port);
	setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	measure("host", s, host_rr, count, seconds, "");
	close(s);
	return 0;
}

static void quiet(const char *s, int n)
{
}

static int lkl_client(int argc, char **argv, const char *addr, int port,
		      long count, double seconds)
{
	const char *tap = NULL, *cidr = NULL, *mode = "shadow";
	struct lkl_netdev_config cfg = { .offload = LKL_NETDEV_NONE };
	struct lkl_netdev_backend *be;
	struct lkl_netdev *dev;
	char cmdline[512], frag[128], extra[256];
	int pin = -1, nohz_off = 0, one = 1, i;
	long fd;

	for (i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--tap") && i + 1 < argc)
			tap = argv[++i];
		else if (!strcmp(argv[i], "--ip") && i + 1 < argc)
			cidr = argv[++i];
		else if (!strcmp(argv[i], "--mode") && i + 1 < argc)
			mode = argv[++i];
		else if (!strcmp(argv[i], "--pin") && i + 1 < argc)
			pin = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--busy-poll") && i + 1 < argc)
			cfg.busy_poll_us = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--nohz-off"))
			nohz_off = 1;
		else if (!strcmp(argv[i], "--direct-rx"))
			cfg.direct_rx = 1;
	}
	CHECK(tap && cidr, "lkl mode needs --tap and --ip");

	if (pin >= 0)
		CHECK(lkl_host_set_pin_cpu(pin) == 0, "pin to %d", pin);
	CHECK_OK(lkl_netdev_tap_create(tap, &be));
	CHECK_OK(lkl_netdev_create(be, &cfg, &dev));
	CHECK(lkl_netdev_cmdline(dev, frag, sizeof(frag)) > 0, "cmdline");
	snprintf(cmdline, sizeof(cmdline), "mem=64M lkl.syscall_mode=%s %s %s",
		 mode, nohz_off ? "nohz=off" : "", frag);
	lkl_host_ops.print = quiet;
	CHECK(lkl_start_kernel(&lkl_host_ops, cmdline) == 0, "boot");
	net_if_up(lkl_netdev_ifindex(dev));
	net_if_add_cidr(lkl_netdev_ifindex(dev), cidr);

	fd = net_connect(addr, port);
	CHECK_OK(sys(LKL__NR_setsockopt, fd, LKL_IPPROTO_TCP, 1 /* TCP_NODELAY */,
		     (long)&one, sizeof(one)));
	snprintf(extra, sizeof(extra), ", \"mode\": \"%s\", \"pin_cpu\": %d, "
		 "\"busy_poll_us\": %d, \"nohz_off\": %s, \"direct_rx\": %s",
		 mode, pin, cfg.busy_poll_us, nohz_off ? "true" : "false",
		 cfg.direct_rx ? "true" : "false");
	measure("lkl", fd, lkl_rr, count, seconds, extra);
	sys(LKL__NR_close, fd);
	CHECK(lkl_sys_halt() == 0, "halt");
	lkl_netdev_free(dev);
	return 0;
}

int main(int argc, char **argv)
{
	long count = 100000;
	double seconds = 5;
	int i;

	if (argc < 4) {
		fprintf(stderr, "usage: see the comment at the top of tcp_rr.c\n");
		return 2;
	}
	for (i = 4; i < argc; i++) {
		if (!strcmp(argv[i], "--count") && i + 1 < argc)
			count = atol(argv[++i]);
		else if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
			seconds = atof(argv[++i]);
	}
	if (!strcmp(argv[1], "server"))
		return server(argv[2], atoi(argv[3]));
	if (!strcmp(argv[1], "host"))
		return host_client(argv[2], atoi(argv[3]), count, seconds);
	if (!strcmp(argv[1], "lkl"))
		return lkl_client(argc - 4, argv + 4, argv[2], atoi(argv[3]),
				  count, seconds);
	fprintf(stderr, "unknown role %s\n", argv[1]);
	return 2;
}
