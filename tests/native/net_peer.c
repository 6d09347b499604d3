/*
 * One kernel with one virtio-net device, driven from the command line,
 * for the network tests (tests/test_native_net.py):
 *
 *   net_peer BACKEND [options] [command ...]
 *
 * BACKEND: --tap NAME | --raw IFNAME | --pipe-fd FD
 * options: --offload none|checksum|large|big|0xHEX  --mac XX:..  --mtu N
 *          --ip A/P (IPv4 or IPv6, repeatable)  --hotadd  --queue N
 *          --busy-poll US  --kmtu N (MTU set in the kernel)
 *          --cmdline STR (more kernel command line)
 *          --no-hash (throughput: tcp-send repeats one buffer, no hashes)
 *          --direct-rx (direct mode: sleeping syscalls receive frames)
 * commands, run in order:
 *   features                 print offered/negotiated bits
 *   sleep MS
 *   wait                     until a line (or EOF) on stdin
 *   tcp-sink ADDR PORT       accept one connection, read to EOF, print hash
 *   tcp-send ADDR PORT BYTES connect, send BYTES deterministic bytes
 *   udp-echo ADDR PORT N     echo N datagrams back to their sender
 *   udp-send ADDR PORT N SIZE send N datagrams, count the echoes (1 s)
 *   halt-sending ADDR PORT MS  send from a thread, halt the kernel after MS
 *   stats                    print the device counters
 *   ipstats                  print the kernel's IP counters (/proc/net/snmp)
 * Each step prints one line; Python reads them.  Every loop is bounded.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lkl/netdev.h>
#include <lkl/asm-generic/errno.h>
#include <lkl/asm-generic/socket.h>
#include <lkl/linux/time_types.h>

#include "net_util.h"

#define CHUNK		(256 << 10)
#define SEED		0x1234abcdULL

static struct lkl_netdev *dev;
static int ifindex;
/* Throughput runs: no hashing, one buffer sent over and over. */
static int no_hash;

static uint64_t parse_offload(const char *s)
{
	if (!strcmp(s, "none"))
		return LKL_NETDEV_NONE;
	if (!strcmp(s, "checksum"))
		return LKL_NETDEV_CHECKSUM;
	if (!strcmp(s, "large"))
		return LKL_NETDEV_LARGE_SEGMENTS;
	if (!strcmp(s, "big"))
		return LKL_NETDEV_BIG_PACKETS;
	return strtoull(s, NULL, 0);
}

/* The counters "stats" prints, in its order: name=value each. */
#define STAT(field) { #field, offsetof(struct lkl_netdev_stats, field) }
static const struct {
	const char *name;
	size_t offset;
} stat_fields[] = {
	STAT(rx_packets), STAT(rx_bytes), STAT(tx_packets), STAT(tx_bytes),
	STAT(rx_dropped), STAT(rx_malformed), STAT(rx_oversize),
	STAT(rx_errors), STAT(tx_dropped), STAT(tx_errors), STAT(rx_sw_csum),
	STAT(rx_sw_gso), STAT(irqs), STAT(kicks), STAT(rx_direct),
	STAT(poll_errors), STAT(poller_rx_wakeups), STAT(busy_polls),
	STAT(busy_poll_hits), STAT(busy_poll_ns),
};
#undef STAT

static void print_stats(void)
{
	struct lkl_netdev_stats st;
	char line[1024] = "stats";
	size_t i, len = strlen(line);

	lkl_netdev_get_stats(dev, &st);
	for (i = 0; i < sizeof(stat_fields) / sizeof(stat_fields[0]); i++) {
		uint64_t v;

		memcpy(&v, (const char *)&st + stat_fields[i].offset, sizeof(v));
		len += snprintf(line + len, sizeof(line) - len, " %s=%llu",
				stat_fields[i].name, (unsigned long long)v);
	}
	printf("%s\n", line);	/* one call: no other thread's output inside */
}

static void set_timeout(long fd, int opt, int sec)
{
	struct lkl__kernel_sock_timeval tv = { .tv_sec = sec };

	CHECK_OK(sys(LKL__NR_setsockopt, fd, LKL_SOL_SOCKET, opt, (long)&tv,
		     sizeof(tv)));
}

/* The line a transfer ends with: "<what> bytes=N sha256=HEX gbps=G". */
static void print_transfer(const char *what, struct sha256 *h, uint64_t bytes,
			   uint64_t t0)
{
	uint8_t d[32];
	char hex[65];

	sha256_final(h, d);
	net_hex(d, hex);
	printf("%s bytes=%llu sha256=%s gbps=%.3f\n", what,
	       (unsigned long long)bytes, hex,
	       bytes * 8.0 / (test_now_ns() - t0));
}

static void tcp_sink(const char *addr, int port)
{
	static char buf[CHUNK];
	long lfd = net_listen(addr, port), fd, n;
	uint64_t bytes = 0, t0;
	struct sha256 h;

	printf("listening\n");
	fd = CHECK_OK(sys(LKL__NR_accept4, lfd, 0, 0, 0));
	/* A stalled transfer fails the test instead of hanging it. */
	set_timeout(fd, LKL_SO_RCVTIMEO_NEW, 20);
	sha256_init(&h);
	t0 = test_now_ns();
	while ((n = CHECK_OK(sys(LKL__NR_recvfrom, fd, (long)buf, sizeof(buf),
				 0, 0, 0))) > 0) {
		if (!no_hash)
			sha256_update(&h, buf, n);
		bytes += n;
	}
	print_transfer("sink", &h, bytes, t0);
	sys(LKL__NR_close, fd);
	sys(LKL__NR_close, lfd);
}

static void tcp_send(const char *addr, int port, uint64_t total)
{
	static char buf[CHUNK];
	long fd = net_connect(addr, port);
	uint64_t seed = SEED, sent = 0, t0;
	struct sha256 h;

	set_timeout(fd, LKL_SO_SNDTIMEO_NEW, 20);
	sha256_init(&h);
	t0 = test_now_ns();
	if (no_hash)
		test_fill(buf, CHUNK, &seed);
	while (sent < total) {
		size_t n = total - sent < CHUNK ? total - sent : CHUNK;

		if (!no_hash) {
			test_fill(buf, n, &seed);
			sha256_update(&h, buf, n);
		}
		net_send_all(fd, buf, n);
		sent += n;
	}
	CHECK_OK(sys(LKL__NR_shutdown, fd, 1));
	/* Wait for the peer's close so every byte is acknowledged. */
	set_timeout(fd, LKL_SO_RCVTIMEO_NEW, 20);
	while (CHECK_OK(sys(LKL__NR_recvfrom, fd, (long)buf, sizeof(buf), 0,
			    0, 0)) > 0)
		;
	print_transfer("sent", &h, sent, t0);
	sys(LKL__NR_close, fd);
}

static long udp_socket(const char *addr, int port, struct net_addr *a)
{
	long fd;

	CHECK(net_parse_addr(addr, port, a) == 0, "bad address %s", addr);
	fd = CHECK_OK(sys(LKL__NR_socket, a->family, LKL_SOCK_DGRAM, 0));
	set_timeout(fd, LKL_SO_RCVTIMEO_NEW, 1);
	return fd;
}

static void udp_echo(const char *addr, int port, int count)
{
	static char buf[65536];
	struct net_addr a, from;
	long fd = udp_socket(addr, port, &a), n;
	int i, echoed = 0;

	set_timeout(fd, LKL_SO_RCVTIMEO_NEW, 10);
	CHECK_OK(sys(LKL__NR_bind, fd, (long)&a, a.len));
	printf("listening\n");
	for (i = 0; i < count; i++) {
		int flen = sizeof(from.v6);

		n = sys(LKL__NR_recvfrom, fd, (long)buf, sizeof(buf), 0,
			(long)&from, (long)&flen);
		if (n < 0)
			break;
		CHECK_OK(sys(LKL__NR_sendto, fd, (long)buf, n, 0, (long)&from,
			     flen));
		echoed++;
	}
	printf("echoed %d\n", echoed);
	sys(LKL__NR_close, fd);
}

static void udp_send(const char *addr, int port, int count, int size)
{
	static char buf[65536], back[65536];
	struct net_addr a;
	long fd = udp_socket(addr, port, &a), n;
	uint64_t seed = SEED;
	int i, ok = 0;

	for (i = 0; i < count; i++) {
		test_fill(buf, size, &seed);
		CHECK_OK(sys(LKL__NR_sendto, fd, (long)buf, size, 0, (long)&a,
			     a.len));
		n = sys(LKL__NR_recvfrom, fd, (long)back, sizeof(back), 0, 0, 0);
		if (n == size && !memcmp(buf, back, size))
			ok++;
	}
	printf("udp ok=%d of %d\n", ok, count);
	sys(LKL__NR_close, fd);
}

struct sender {
	const char *addr;
	int port;
	volatile uint64_t sent;
};

static void *halt_sender(void *arg)
{
	static char buf[CHUNK];
	struct sender *s = arg;
	long fd = net_connect(s->addr, s->port);
	uint64_t seed = SEED;
	int i;

	/* Bounded: ends on the first error, which halting causes. */
	for (i = 0; i < 100000; i++) {
		long n;

		test_fill(buf, 4096, &seed);
		n = sys(LKL__NR_sendto, fd, (long)buf, sizeof(buf), 0, 0, 0);
		if (n <= 0)
			break;
		s->sent += n;
	}
	return NULL;
}

static void halt_sending(const char *addr, int port, int ms)
{
	struct sender s = { addr, port, 0 };
	pthread_t t;
	uint64_t t0;
	long ret;

	pthread_create(&t, NULL, halt_sender, &s);
	usleep(ms * 1000);
	t0 = test_now_ns();
	ret = lkl_sys_halt();
	printf("halted ret=%ld ms=%.1f sent=%llu\n", ret,
	       (test_now_ns() - t0) / 1e6, (unsigned long long)s.sent);
	pthread_join(t, NULL);
	print_stats();
	CHECK(lkl_netdev_free(dev) == 0, "free after halt");
	dev = NULL;
	printf("freed\n");
}

/* The kernel's own IP counters: "ipstats InHdrErrors=N ...". */
static void print_ip_stats(void)
{
	char buf[4096], *names, *values, *n, *v, *sn, *sv;
	long fd, len;

	fd = CHECK_OK(sys(LKL__NR_openat, -100, (long)"/proc/net/snmp", 0, 0));
	len = CHECK_OK(sys(LKL__NR_read, fd, (long)buf, sizeof(buf) - 1));
	sys(LKL__NR_close, fd);
	buf[len] = 0;
	/* The first two lines are "Ip: names..." and "Ip: values...". */
	names = strtok_r(buf, "\n", &sn);
	values = strtok_r(NULL, "\n", &sn);
	CHECK(names && values, "short /proc/net/snmp");
	printf("ipstats");
	n = strtok_r(names + 3, " ", &sn);
	v = strtok_r(values + 3, " ", &sv);
	for (; n && v; n = strtok_r(NULL, " ", &sn), v = strtok_r(NULL, " ", &sv))
		printf(" %s=%s", n, v);
	printf("\n");
}

static void wait_stdin(void)
{
	char line[64];

	if (!fgets(line, sizeof(line), stdin))
		return;
}

static int parse_mac(const char *s, unsigned char mac[6])
{
	return sscanf(s, "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &mac[0], &mac[1],
		      &mac[2], &mac[3], &mac[4], &mac[5]) == 6 ? 0 : -1;
}

int main(int argc, char **argv)
{
	struct lkl_netdev_config cfg = { 0 };
	struct lkl_netdev_backend *be = NULL;
	const char *ips[4], *extra = "";
	int nips = 0, hotadd = 0, kmtu = 0, i = 1, err;
	char frag[128], cmdline[256];

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (; i < argc && !strncmp(argv[i], "--", 2); i++) {
		const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : "";

		if (!strcmp(o, "--hotadd") || !strcmp(o, "--no-hash")) {
			*(o[2] == 'h' ? &hotadd : &no_hash) = 1;
			continue;
		}
		if (!strcmp(o, "--direct-rx")) {
			cfg.direct_rx = 1;
			continue;
		}
		i++;
		if (!strcmp(o, "--tap"))
			err = lkl_netdev_tap_create(v, &be);
		else if (!strcmp(o, "--raw"))
			err = lkl_netdev_raw_create(v, &be);
		else if (!strcmp(o, "--pipe-fd"))
			err = lkl_netdev_pipe_create(atoi(v), atoi(v), &be);
		else if (!strcmp(o, "--offload"))
			err = (cfg.offload = parse_offload(v), 0);
		else if (!strcmp(o, "--mac"))
			err = parse_mac(v, cfg.mac), cfg.has_mac = 1;
		else if (!strcmp(o, "--mtu"))
			err = (cfg.mtu = atoi(v), 0);
		else if (!strcmp(o, "--kmtu"))
			err = (kmtu = atoi(v), 0);
		else if (!strcmp(o, "--queue"))
			err = (cfg.queue_size = atoi(v), 0);
		else if (!strcmp(o, "--busy-poll"))
			err = (cfg.busy_poll_us = atoi(v), 0);
		else if (!strcmp(o, "--cmdline"))
			err = (extra = v, 0);
		else if (!strcmp(o, "--ip") && nips < 4)
			err = (ips[nips++] = v, 0);
		else
			err = -1;
		CHECK(err == 0, "option %s %s: %d (%s)", o, v, err,
		      lkl_strerror(err));
	}
	CHECK(be != NULL, "no backend given");
	err = lkl_netdev_create(be, &cfg, &dev);
	CHECK(err == 0, "lkl_netdev_create: %s", lkl_strerror(err));

	if (hotadd) {
		test_boot(extra);
		CHECK_OK(lkl_netdev_attach(dev));
	} else {
		CHECK(lkl_netdev_cmdline(dev, frag, sizeof(frag)) > 0, "cmdline");
		snprintf(cmdline, sizeof(cmdline), "%s %s", frag, extra);
		test_boot(cmdline);
	}
	ifindex = lkl_netdev_ifindex(dev);
	CHECK(ifindex > 0, "ifindex: %d (%s)", ifindex, lkl_strerror(ifindex));
	test_lo_up();
	if (kmtu)
		net_if_set_mtu(ifindex, kmtu);
	net_if_up(ifindex);
	for (int k = 0; k < nips; k++)
		net_if_add_cidr(ifindex, ips[k]);
	printf("up ifindex=%d\n", ifindex);

	for (; i < argc; i++) {
		const char *c = argv[i];

#define ARG(k) (i + (k) < argc ? argv[i + (k)] : "0")
		if (!strcmp(c, "features")) {
			printf("features offered=0x%llx negotiated=0x%llx "
			       "all=0x%llx\n",
			       (unsigned long long)lkl_netdev_offered(dev),
			       (unsigned long long)lkl_netdev_negotiated(dev),
			       (unsigned long long)lkl_netdev_features(dev));
		} else if (!strcmp(c, "sleep")) {
			usleep(atoi(ARG(1)) * 1000);
			i += 1;
		} else if (!strcmp(c, "wait")) {
			wait_stdin();
			printf("resumed\n");
		} else if (!strcmp(c, "tcp-sink")) {
			tcp_sink(ARG(1), atoi(ARG(2)));
			i += 2;
		} else if (!strcmp(c, "tcp-send")) {
			tcp_send(ARG(1), atoi(ARG(2)), strtoull(ARG(3), NULL, 0));
			i += 3;
		} else if (!strcmp(c, "udp-echo")) {
			udp_echo(ARG(1), atoi(ARG(2)), atoi(ARG(3)));
			i += 3;
		} else if (!strcmp(c, "udp-send")) {
			udp_send(ARG(1), atoi(ARG(2)), atoi(ARG(3)), atoi(ARG(4)));
			i += 4;
		} else if (!strcmp(c, "halt-sending")) {
			halt_sending(ARG(1), atoi(ARG(2)), atoi(ARG(3)));
			return 0;
		} else if (!strcmp(c, "stats")) {
			print_stats();
		} else if (!strcmp(c, "ipstats")) {
			print_ip_stats();
		} else {
			CHECK(0, "unknown command %s", c);
		}
	}
	print_stats();
	CHECK_OK(lkl_sys_halt());
	CHECK(lkl_netdev_free(dev) == 0, "free");
	printf("done\n");
	return 0;
}
