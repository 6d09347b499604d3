/*
 * The raw backend: an AF_PACKET socket on an existing interface.
 *
 * The socket always carries a virtio-net header (PACKET_VNET_HDR): frames
 * that the host's own stack hands to a veth or loopback-like interface
 * keep partial checksums and super-frames, and without the header the
 * device could not tell.  The device finishes such frames for a driver
 * that did not accept the offload (net_offload.c).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <lkl/netdev.h>

#include "net_backend.h"

#ifndef PACKET_VNET_HDR_SZ
#define PACKET_VNET_HDR_SZ	24	/* Linux 6.2 */
#endif
#ifndef PACKET_IGNORE_OUTGOING
#define PACKET_IGNORE_OUTGOING	23
#endif

#define RAW_MAX_IOV	(1 + NET_FRAME_MAX_IOV)
/* Bursts from a 10 Gbit/s veth outrun the default socket buffers. */
#define RAW_SOCKBUF	(4 << 20)

struct raw {
	struct lkl_netdev_backend be;
	int fd;
	size_t hdr_len;		/* 12, or 10 on kernels before 6.2 */
};

static ssize_t raw_tx(struct lkl_netdev_backend *be, const vnet_hdr_t *hdr,
		      const struct iovec *iov, int iovcnt)
{
	struct raw *r = (struct raw *)be;
	struct iovec v[RAW_MAX_IOV];
	struct msghdr msg = { .msg_iov = v };
	ssize_t n;
	int cnt;

	cnt = iov_prepend(v, RAW_MAX_IOV, hdr, r->hdr_len, iov, iovcnt);
	if (cnt < 0)
		return cnt;
	msg.msg_iovlen = cnt;
	n = sendmsg(r->fd, &msg, MSG_DONTWAIT);
	if (n < 0)
		return errno == ENOBUFS ? -EAGAIN : -errno;
	return n - r->hdr_len;
}

static ssize_t raw_rx(struct lkl_netdev_backend *be, vnet_hdr_t *hdr,
		      const struct iovec *iov, int iovcnt)
{
	struct raw *r = (struct raw *)be;
	struct iovec v[RAW_MAX_IOV];
	struct sockaddr_ll from;
	struct msghdr msg = {
		.msg_name = &from,
		.msg_namelen = sizeof(from),
		.msg_iov = v,
	};
	size_t room;
	ssize_t n;
	int cnt;

	memset(hdr, 0, sizeof(*hdr));
	cnt = iov_prepend_cut(v, RAW_MAX_IOV, hdr, r->hdr_len, iov, iovcnt);
	room = iov_length(v + 1, cnt - 1);
	msg.msg_iovlen = cnt;
	for (;;) {
		/* Only an AF_PACKET peer fills in the address. */
		memset(&from, 0, sizeof(from));
		msg.msg_namelen = sizeof(from);
		n = recvmsg(r->fd, &msg, MSG_DONTWAIT | MSG_TRUNC);
		if (n < 0)
			return -errno;
		/* Our own transmissions, where the kernel ignores the option. */
		if (from.sll_pkttype != PACKET_OUTGOING)
			break;
	}
	if (n < (ssize_t)r->hdr_len)
		return -EBADMSG;
	n -= r->hdr_len;
	return (size_t)n > room ? -EMSGSIZE : n;
}

static void raw_free(struct lkl_netdev_backend *be)
{
	struct raw *r = (struct raw *)be;

	close(r->fd);
	free(r);
}

static const struct net_backend_ops raw_ops = {
	.tx = raw_tx,
	.rx = raw_rx,
	.free = raw_free,
};

static int raw_setup(struct raw *r, int ifindex)
{
	struct sockaddr_ll addr = {
		.sll_family = AF_PACKET,
		.sll_protocol = htons(ETH_P_ALL),
		.sll_ifindex = ifindex,
	};
	struct packet_mreq mr = {
		.mr_ifindex = ifindex,
		.mr_type = PACKET_MR_PROMISC,
	};
	int one = 1, sz = sizeof(vnet_hdr_t), buf = RAW_SOCKBUF;

	r->hdr_len = sizeof(vnet_hdr_t);
	if (setsockopt(r->fd, SOL_PACKET, PACKET_VNET_HDR_SZ, &sz,
		       sizeof(sz)) < 0) {
		if (setsockopt(r->fd, SOL_PACKET, PACKET_VNET_HDR, &one,
			       sizeof(one)) < 0)
			return -errno;
		r->hdr_len = 10;	/* struct virtio_net_hdr */
	}
	/* Best effort: older kernels lack it, and raw_rx filters anyway. */
	setsockopt(r->fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one,
		   sizeof(one));
	if (setsockopt(r->fd, SOL_SOCKET, SO_RCVBUFFORCE, &buf,
		       sizeof(buf)) < 0)
		setsockopt(r->fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
	if (setsockopt(r->fd, SOL_SOCKET, SO_SNDBUFFORCE, &buf,
		       sizeof(buf)) < 0)
		setsockopt(r->fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
	if (bind(r->fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
		return -errno;
	/* The kernel's MAC is not the interface's: take every frame. */
	if (setsockopt(r->fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr,
		       sizeof(mr)) < 0)
		return -errno;
	return 0;
}

int lkl_netdev_raw_create(const char *ifname, struct lkl_netdev_backend **be)
{
	struct raw *r;
	int ifindex, err;

	if (!ifname)
		return -EINVAL;
	ifindex = if_nametoindex(ifname);
	if (!ifindex)
		return -ENODEV;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	/* Protocol 0 receives nothing until bind names the interface. */
	r->fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (r->fd < 0) {
		err = -errno;
		free(r);
		return err;
	}
	err = raw_setup(r, ifindex);
	if (err) {
		close(r->fd);
		free(r);
		return err;
	}
	r->be.ops = &raw_ops;
	r->be.offloads = LKL_NETDEV_OFFLOAD_MASK;
	r->be.rx_fd = r->be.tx_fd = r->fd;
	*be = &r->be;
	return 0;
}
