/*
 * A stream pipe backend that cannot write a whole frame at once keeps
 * its tail and sends it as soon as the socket is writable again, not
 * with the next frame (which, at the end of a burst, may be a TCP
 * retransmission much later).  The kernel sends one 8000-byte UDP
 * broadcast into a stream socket whose send buffer takes less; this
 * program reads the other end and must get the whole frame.
 */
#define _GNU_SOURCE
#include <poll.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <lkl/netdev.h>
#include <lkl/asm-generic/fcntl.h>
#include <lkl/linux/fcntl.h>

#include "net_util.h"

#define PAYLOAD		8000
#define FRAME_LEN	(14 + 20 + 8 + PAYLOAD)

static struct lkl_netdev *dev;

static void write_sysctl(const char *path, const char *value)
{
	long fd = CHECK_OK(sys(LKL__NR_openat, LKL_AT_FDCWD, (long)path,
			       LKL_O_WRONLY, 0));

	CHECK_OK(sys(LKL__NR_write, fd, (long)value, strlen(value)));
	sys(LKL__NR_close, fd);
}

/* Read one length-prefixed message from the stream, up to deadline. */
static size_t read_frame(int fd, uint8_t *buf, size_t cap, uint64_t deadline)
{
	size_t have = 0, want = 4;

	while (have < want) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int64_t left = (int64_t)(deadline - test_now_ns()) / 1000000;
		ssize_t n;

		if (left <= 0 || poll(&p, 1, left) <= 0)
			return 0;
		n = read(fd, buf + have, want - have);
		if (n <= 0)
			return 0;
		have += n;
		if (have == 4 && want == 4) {
			want = 4 + (buf[0] | buf[1] << 8 | buf[2] << 16 |
				    (uint32_t)buf[3] << 24);
			CHECK(want <= cap, "message of %zu bytes", want);
		}
	}
	return have - 4;
}

int main(void)
{
	struct lkl_netdev_config cfg = { .offload = LKL_NETDEV_NONE,
					 .mtu = 9000 };
	struct lkl_netdev_backend *be;
	struct lkl_netdev_stats st;
	static uint8_t buf[16384], payload[PAYLOAD];
	struct net_addr to;
	int fds[2], ifindex, one = 1, small = 1, found = 0, queued = 0;
	uint64_t deadline;
	long udp;
	char frag[128];

	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0, "socketpair");
	CHECK_OK(lkl_netdev_pipe_create(fds[0], fds[0], &be));
	/* After create, which asks for a large buffer: the smallest there is. */
	CHECK(setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &small,
			 sizeof(small)) == 0, "SO_SNDBUF");
	CHECK_OK(lkl_netdev_create(be, &cfg, &dev));
	CHECK(lkl_netdev_cmdline(dev, frag, sizeof(frag)) > 0, "cmdline");
	test_boot(frag);
	/* Nothing else may go out meanwhile and carry the tail along. */
	write_sysctl("/proc/sys/net/ipv6/conf/all/disable_ipv6", "1");
	ifindex = CHECK_OK(lkl_netdev_ifindex(dev));
	net_if_set_mtu(ifindex, 9000);
	net_if_up(ifindex);
	net_if_add_cidr(ifindex, "10.200.8.2/24");

	udp = CHECK_OK(sys(LKL__NR_socket, LKL_AF_INET, LKL_SOCK_DGRAM, 0));
	CHECK_OK(sys(LKL__NR_setsockopt, udp, LKL_SOL_SOCKET, LKL_SO_BROADCAST,
		     (long)&one, sizeof(one)));
	net_parse_addr("10.200.8.255", 9, &to);
	memset(payload, 'u', sizeof(payload));
	CHECK(sys(LKL__NR_sendto, udp, (long)payload, sizeof(payload), 0,
		  (long)&to.v4, to.len) == PAYLOAD, "sendto");

	/* What the socket took of the frame: less than all of it. */
	deadline = test_now_ns() + 15000000000ULL;	/* generous: a loaded host */
	while (ioctl(fds[1], FIONREAD, &queued) == 0 && !queued &&
	       test_now_ns() < deadline)
		usleep(1000);
	CHECK(queued > 0 && queued < 4 + 12 + FRAME_LEN,
	      "%d bytes queued: the frame was not cut, nothing to test", queued);

	while (!found) {
		size_t n = read_frame(fds[1], buf, sizeof(buf), deadline);

		CHECK(n, "no whole frame within 15 s: its tail stayed behind");
		found = n == 12 + FRAME_LEN && buf[4 + 12 + 12] == 0x08 &&
			buf[4 + 12 + 13] == 0x00;
	}
	PASS("a frame's tail goes out once the socket is writable");
	lkl_netdev_get_stats(dev, &st);
	CHECK(st.tx_errors == 0, "tx_errors %llu", (unsigned long long)st.tx_errors);

	CHECK_OK(lkl_sys_halt());
	CHECK_OK(lkl_netdev_free(dev));
	close(fds[1]);
	PASS("halt and free");
	return 0;
}
