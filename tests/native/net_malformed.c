/*
 * Malformed input from a backend is dropped and counted, never crashes:
 * a kernel on a pipe backend whose other end this program holds gets
 * runts, bad headers, lying super-frames and oversize frames, then
 * proves it is alive by answering ARP and ICMP echo (whose checksum the
 * device finishes, as the driver took no offloads), and gets a TCP
 * super-frame that the device must cut into segments.
 */
#define _GNU_SOURCE
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <lkl/netdev.h>
#include <lkl/linux/virtio_net.h>

#include "frame_util.h"
#include "net_util.h"

static const uint8_t kmac[6] = { 0x02, 0, 0, 0, 7, 2 };
static const uint8_t hmac[6] = { 0x02, 0, 0, 0, 7, 1 };
static const uint8_t kip[4] = { 10, 200, 7, 2 };
static const uint8_t hip[4] = { 10, 200, 7, 1 };

static int peer;			/* our end of the pipe */
static struct lkl_netdev *dev;

struct msg {
	struct lkl_virtio_net_hdr_v1 h;
	uint8_t f[70000];
};

static size_t eth(uint8_t *f, uint16_t type)
{
	return frame_eth(f, kmac, hmac, type);
}

/* An IPv4 header for proto with payload bytes after it. */
static size_t ipv4(uint8_t *p, int proto, size_t payload)
{
	return frame_ipv4(p, hip, kip, proto, payload);
}

static void send_msg(struct msg *m, size_t flen)
{
	CHECK(send(peer, m, sizeof(m->h) + flen, 0) ==
	      (ssize_t)(sizeof(m->h) + flen), "send to the pipe");
}

/* Wait up to ms for a frame from the kernel; returns its length or 0. */
static size_t recv_msg(struct msg *m, int ms)
{
	struct pollfd p = { .fd = peer, .events = POLLIN };
	ssize_t n;

	if (poll(&p, 1, ms) <= 0)
		return 0;
	n = recv(peer, m, sizeof(*m), 0);
	return n > (ssize_t)sizeof(m->h) ? n - sizeof(m->h) : 0;
}

/*
 * The device's counters once cond (over st) holds, or after 5 s: the
 * poller works through what we sent at its own pace.
 */
#define STATS_WHEN(st, cond)						\
	do {								\
		uint64_t __end = test_now_ns() + 5000000000ULL;		\
									\
		for (;;) {						\
			lkl_netdev_get_stats(dev, &(st));		\
			if ((cond) || test_now_ns() > __end)		\
				break;					\
			usleep(1000);					\
		}							\
	} while (0)

/* A TCP segment to a closed port: payload bytes, optionally as GSO. */
static size_t tcp_frame(struct msg *m, size_t payload, int gso_size)
{
	uint8_t *ip, *tcp;
	size_t off;
	uint32_t sum;

	memset(m, 0, sizeof(m->h));
	off = eth(m->f, 0x0800);
	ip = m->f + off;
	off += ipv4(ip, 6, 20 + payload);
	tcp = m->f + off;
	memset(tcp, 0, 20);
	put16(tcp, 40000);
	put16(tcp + 2, 9);		/* discard: nobody listens */
	tcp[7] = 1;			/* seq 1 */
	tcp[12] = 5 << 4;
	tcp[13] = 0x18;			/* PSH|ACK */
	put16(tcp + 14, 65535);
	memset(tcp + 20, 'x', payload);
	/* Partial checksum: the pseudo-header sum, as a sender leaves it. */
	sum = csum(ip + 12, 8, 0) + 6 + 20 + payload;
	put16(tcp + 16, csum(NULL, 0, sum));
	m->h.flags = LKL_VIRTIO_NET_HDR_F_NEEDS_CSUM;
	m->h.csum_start = off;
	m->h.csum_offset = 16;
	if (gso_size) {
		m->h.gso_type = LKL_VIRTIO_NET_HDR_GSO_TCPV4;
		m->h.gso_size = gso_size;
		m->h.hdr_len = off + 20;
	}
	return off + 20 + payload;
}

static void inject_malformed(struct msg *m, int *count)
{
	size_t len;

	/* A runt: shorter than an Ethernet header. */
	memset(m, 0, sizeof(*m));
	send_msg(m, 10);
	/* Nothing but a header, and not even a whole header. */
	send_msg(m, 0);
	CHECK(send(peer, m, 5, 0) == 5, "short message");
	/* Header flags nobody defined. */
	len = tcp_frame(m, 100, 0);
	m->h.flags = 0x80;
	send_msg(m, len);
	/* A checksum asked for past the end of the frame. */
	len = tcp_frame(m, 100, 0);
	m->h.csum_start = len - 1;
	send_msg(m, len);
	/* Super-frames that lie: TCPv6 on IPv4, size 0, UDP, wrong offset. */
	len = tcp_frame(m, 3000, 1000);
	m->h.gso_type = LKL_VIRTIO_NET_HDR_GSO_TCPV6;
	send_msg(m, len);
	len = tcp_frame(m, 3000, 1000);
	m->h.gso_size = 0;
	send_msg(m, len);
	len = tcp_frame(m, 3000, 1000);
	m->h.gso_type = LKL_VIRTIO_NET_HDR_GSO_UDP;
	send_msg(m, len);
	len = tcp_frame(m, 3000, 1000);
	m->h.csum_start += 4;
	send_msg(m, len);
	len = tcp_frame(m, 3000, 1000);
	m->h.flags = 0;
	send_msg(m, len);
	*count = 10;
}

int main(void)
{
	struct lkl_netdev_config cfg = { .offload = LKL_NETDEV_NONE,
					 .has_mac = 1 };
	struct lkl_netdev_backend *be;
	struct lkl_netdev_stats st0, st;
	static struct msg m;
	int fds[2], ifindex, count, i, arp = 0, echo = 0, rst = 0;
	char frag[128];
	size_t len;

	memcpy(cfg.mac, kmac, 6);
	CHECK_OK(lkl_netdev_pipe_pair(fds));
	peer = fds[1];
	CHECK_OK(lkl_netdev_pipe_create(fds[0], fds[0], &be));
	CHECK_OK(lkl_netdev_create(be, &cfg, &dev));
	CHECK(lkl_netdev_cmdline(dev, frag, sizeof(frag)) > 0, "cmdline");
	test_boot(frag);
	ifindex = CHECK_OK(lkl_netdev_ifindex(dev));
	net_if_up(ifindex);
	net_if_add_cidr(ifindex, "10.200.7.2/24");
	lkl_netdev_get_stats(dev, &st0);

	inject_malformed(&m, &count);
	/* Larger than any buffer the driver posts. */
	memset(&m, 0, sizeof(m));
	eth(m.f, 0x0800);
	send_msg(&m, 66000);
	/* Every frame sent is dropped: count + 1 drops is all of them. */
	STATS_WHEN(st, st.rx_dropped - st0.rx_dropped >= (uint64_t)count + 1);
	CHECK(st.rx_malformed - st0.rx_malformed == (uint64_t)count,
	      "malformed %llu, want %d",
	      (unsigned long long)(st.rx_malformed - st0.rx_malformed), count);
	CHECK(st.rx_oversize - st0.rx_oversize == 1, "oversize %llu",
	      (unsigned long long)(st.rx_oversize - st0.rx_oversize));
	CHECK(st.rx_dropped - st0.rx_dropped == (uint64_t)count + 1,
	      "dropped %llu", (unsigned long long)(st.rx_dropped - st0.rx_dropped));
	CHECK(st.rx_packets == st0.rx_packets, "a bad frame got through");
	PASS("malformed frames dropped and counted");

	/* Alive: answer an ARP request for its address. */
	memset(&m, 0, sizeof(m));
	len = eth(m.f, 0x0806);
	memset(m.f, 0xff, 6);
	memcpy(m.f + len, "\x00\x01\x08\x00\x06\x04\x00\x01", 8);
	memcpy(m.f + len + 8, hmac, 6);
	memcpy(m.f + len + 14, hip, 4);
	memcpy(m.f + len + 24, kip, 4);
	send_msg(&m, len + 28);
	/* ICMP echo with a partial checksum: the device must finish it. */
	memset(&m, 0, sizeof(m));
	len = eth(m.f, 0x0800);
	len += ipv4(m.f + len, 1, 8 + 32);
	m.f[len] = 8;
	put16(m.f + len + 4, 0x4242);
	memset(m.f + len + 8, 'p', 32);
	m.h.flags = LKL_VIRTIO_NET_HDR_F_NEEDS_CSUM;
	m.h.csum_start = len;
	m.h.csum_offset = 2;
	send_msg(&m, len + 40);
	/* A 3000-byte super-frame: three segments, refused by RST (GRO may
	 * merge them again on the way up, so one RST or more). */
	send_msg(&m, tcp_frame(&m, 3000, 1000));

	for (i = 0; i < 50 && !(arp && echo && rst); i++) {
		size_t n = recv_msg(&m, 100);
		uint8_t *p = m.f + 14;

		if (n < 14)
			continue;
		if (m.f[12] == 0x08 && m.f[13] == 0x06 && p[7] == 2)
			arp = 1;
		if (m.f[12] == 0x08 && m.f[13] == 0x06 && p[7] == 1) {
			/* The kernel asks for our MAC: answer. */
			memcpy(p + 18, p + 8, 10);
			memcpy(p + 8, hmac, 6);
			memcpy(p + 14, hip, 4);
			p[7] = 2;
			memcpy(m.f, m.f + 6, 6);
			memcpy(m.f + 6, hmac, 6);
			memset(&m.h, 0, sizeof(m.h));
			send_msg(&m, 42);
		}
		if (m.f[12] == 0x08 && m.f[13] == 0x00 && p[9] == 1 &&
		    p[20] == 0 && csum(p + 20, n - 34, 0) == 0xffff)
			echo = 1;
		if (m.f[12] == 0x08 && m.f[13] == 0x00 && p[9] == 6 &&
		    (p[33] & 0x04))
			rst++;
	}
	CHECK(arp, "no ARP reply");
	CHECK(echo, "no echo reply (checksum not finished?)");
	PASS("still answers ARP and echo");
	STATS_WHEN(st, st.rx_sw_gso - st0.rx_sw_gso >= 1);
	CHECK(st.rx_sw_csum - st0.rx_sw_csum >= 1, "no software checksum");
	CHECK(st.rx_sw_gso - st0.rx_sw_gso == 1, "no software segmentation");
	CHECK(rst >= 1, "no reset for the segments");
	CHECK(st.rx_packets - st0.rx_packets >= 5, "%llu frames handed over",
	      (unsigned long long)(st.rx_packets - st0.rx_packets));
	PASS("super-frame segmented for a driver without TSO");

	CHECK_OK(lkl_sys_halt());
	CHECK_OK(lkl_netdev_free(dev));
	close(peer);
	PASS("halt and free");
	return 0;
}
