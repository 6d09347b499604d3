/*
 * When epoll fails under the device (here: its epoll fds are replaced by
 * /dev/null, so epoll_wait returns EINVAL), nothing fails silently or
 * spins.  A direct syscall's thread serving the device (direct_rx) logs,
 * counts, and waits on its semaphore instead: its call still completes,
 * through the poller, and it burns no CPU meanwhile.  The device's
 * poller logs, counts and stops the device, and transmit goes on (or
 * drops) instead of waiting for it; halt and free still work.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <lkl/netdev.h>
#include <lkl/linux/virtio_net.h>

#include "frame_util.h"
#include "net_util.h"

static const uint8_t kmac[6] = { 0x02, 0, 0, 0, 6, 2 };
static const uint8_t hmac[6] = { 0x02, 0, 0, 0, 6, 1 };
static const uint8_t kip[4] = { 10, 200, 6, 2 };
static const uint8_t hip[4] = { 10, 200, 6, 1 };

static struct lkl_netdev *dev;
static long udp;
static long got = -1;

/* This process's epoll fds, lowest first; returns how many. */
static int epoll_fds(int *out, int max)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0, i, j;

	CHECK(d != NULL, "opendir /proc/self/fd");
	while ((e = readdir(d)) && n < max) {
		char path[300], link[64];
		ssize_t k;

		snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
		k = readlink(path, link, sizeof(link) - 1);
		if (k > 0 && (link[k] = 0, !strcmp(link, "anon_inode:[eventpoll]")))
			out[n++] = atoi(e->d_name);
	}
	closedir(d);
	for (i = 0; i < n; i++)
		for (j = i + 1; j < n; j++)
			if (out[j] < out[i]) {
				int t = out[i];

				out[i] = out[j];
				out[j] = t;
			}
	return n;
}

static void break_epoll(int fd)
{
	int null = open("/dev/null", O_RDONLY | O_CLOEXEC);

	CHECK(null >= 0 && dup2(null, fd) == fd, "dup2 over fd %d", fd);
	close(null);
}

static struct lkl_netdev_stats stats_when_poll_errors(uint64_t want)
{
	uint64_t end = test_now_ns() + 5000000000ULL;
	struct lkl_netdev_stats st;

	do {
		lkl_netdev_get_stats(dev, &st);
		if (st.poll_errors >= want)
			break;
		usleep(1000);
	} while (test_now_ns() < end);
	return st;
}

/* CPU time of thread t so far. */
static double cpu_seconds(pthread_t t)
{
	struct timespec ts;
	clockid_t clock;

	CHECK(pthread_getcpuclockid(t, &clock) == 0, "thread CPU clock");
	clock_gettime(clock, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void *in_recv(void *arg)
{
	char buf[64];

	got = sys(LKL__NR_recvfrom, udp, (long)buf, sizeof(buf), 0, 0, 0);
	return NULL;
}

/* A UDP datagram from the host side to the kernel's port 7000. */
static void send_udp(int peer)
{
	struct {
		struct lkl_virtio_net_hdr_v1 h;
		uint8_t f[128];
	} m;
	size_t off;

	memset(&m, 0, sizeof(m));
	off = frame_eth(m.f, kmac, hmac, 0x0800);
	off += frame_ipv4(m.f + off, hip, kip, 17, 8 + 5);
	put16(m.f + off, 40000);
	put16(m.f + off + 2, 7000);
	put16(m.f + off + 4, 8 + 5);	/* checksum 0: none, for IPv4 */
	memcpy(m.f + off + 8, "hello", 5);
	off += 8 + 5;
	CHECK(send(peer, &m, sizeof(m.h) + off, 0) ==
	      (ssize_t)(sizeof(m.h) + off), "send to the pipe");
}

int main(void)
{
	struct lkl_netdev_config cfg = { .offload = LKL_NETDEV_NONE,
					 .has_mac = 1, .direct_rx = 1 };
	struct lkl_netdev_backend *be;
	struct lkl_netdev_stats st;
	struct net_addr a;
	int fds[2], ep[4], ifindex, one = 1;
	double cpu;
	pthread_t t;
	char frag[128];
	uint64_t tx0, deadline;

	memcpy(cfg.mac, kmac, 6);
	CHECK_OK(lkl_netdev_pipe_pair(fds));
	CHECK_OK(lkl_netdev_pipe_create(fds[0], fds[0], &be));
	CHECK_OK(lkl_netdev_create(be, &cfg, &dev));
	CHECK(lkl_netdev_cmdline(dev, frag, sizeof(frag)) > 0, "cmdline");
	strncat(frag, " lkl.syscall_mode=direct", sizeof(frag) - strlen(frag) - 1);
	test_boot(frag);
	ifindex = CHECK_OK(lkl_netdev_ifindex(dev));
	net_if_up(ifindex);
	net_if_add_cidr(ifindex, "10.200.6.2/24");
	udp = CHECK_OK(sys(LKL__NR_socket, LKL_AF_INET, LKL_SOCK_DGRAM, 0));
	net_parse_addr("10.200.6.2", 7000, &a);
	CHECK_OK(sys(LKL__NR_bind, udp, (long)&a.v4, a.len));
	/* The poller's epoll, then the serving threads' (made later). */
	CHECK(epoll_fds(ep, 4) == 2, "want the device's two epoll fds");

	/* A thread sleeping in recv would serve the device: it cannot. */
	break_epoll(ep[1]);
	pthread_create(&t, NULL, in_recv, NULL);
	st = stats_when_poll_errors(1);
	CHECK(st.poll_errors == 1, "serving failure counted %llu",
	      (unsigned long long)st.poll_errors);
	/* Asleep on its semaphore, it uses no CPU (spinning, it would). */
	cpu = cpu_seconds(t);
	usleep(200000);		/* a window to measure, not to synchronise */
	cpu = cpu_seconds(t) - cpu;
	CHECK(cpu < 0.005, "%.3f s of CPU in 0.2 s while its call waits", cpu);
	send_udp(fds[1]);
	pthread_join(t, NULL);
	CHECK(got == 5, "recv after the serving failure: %ld", got);
	PASS("a serving thread whose epoll fails waits, counted, and its call completes");

	/* Now the poller's own epoll. */
	break_epoll(ep[0]);
	lkl_netdev_set_busy_poll(dev, 0);	/* wakes the poller */
	st = stats_when_poll_errors(2);
	CHECK(st.poll_errors == 2, "poller failure counted %llu",
	      (unsigned long long)st.poll_errors);
	tx0 = st.tx_packets;
	CHECK_OK(sys(LKL__NR_setsockopt, udp, LKL_SOL_SOCKET, LKL_SO_BROADCAST,
		     (long)&one, sizeof(one)));
	net_parse_addr("10.200.6.255", 9, &a);
	CHECK(sys(LKL__NR_sendto, udp, (long)"x", 1, 0, (long)&a.v4, a.len) == 1,
	      "sendto after the poller failed");
	deadline = test_now_ns() + 5000000000ULL;
	do
		lkl_netdev_get_stats(dev, &st);
	while (st.tx_packets == tx0 && test_now_ns() < deadline &&
	       !usleep(1000));
	CHECK(st.tx_packets == tx0 + 1, "transmit after the poller failed");
	PASS("a failed poller is counted and transmit does not wait for it");

	CHECK_OK(lkl_sys_halt());
	CHECK_OK(lkl_netdev_free(dev));
	close(fds[1]);
	PASS("halt and free");
	return 0;
}
