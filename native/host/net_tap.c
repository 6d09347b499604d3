/*
 * The TAP backend: frames go to and from a host TAP interface.
 *
 * With any offload offered the TAP carries a 12-byte virtio-net header
 * (IFF_VNET_HDR, TUNSETVNETHDRSZ) and TUNSETOFFLOAD tells the host what
 * the kernel's driver accepted, so the host only hands us partial
 * checksums and super-frames the driver takes.  Without offloads the
 * TAP carries bare frames.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <lkl/netdev.h>

#include "net_backend.h"

#define TAP_MAX_IOV	(1 + NET_FRAME_MAX_IOV)

struct tap {
	struct lkl_netdev_backend be;
	int fd;
	int vnet;		/* the fd carries virtio-net headers */
	char name[IFNAMSIZ];
	/* Catches the tail of a frame too long for the buffers given. */
	uint8_t spill[64];
};

static struct tap *to_tap(struct lkl_netdev_backend *be)
{
	return (struct tap *)be;
}

/*
 * An existing multi-queue device refuses a single-queue attach (EINVAL):
 * attach one more queue then, so that several kernels can share one
 * device, a queue each (lkl.proxy's workers).
 */
static int tap_attach(int fd, struct ifreq *ifr)
{
	if (ioctl(fd, TUNSETIFF, ifr) == 0)
		return 0;
	if (errno != EINVAL)
		return -1;
	ifr->ifr_flags |= IFF_MULTI_QUEUE;
	return ioctl(fd, TUNSETIFF, ifr);
}

static int tap_open(const char *name, int vnet)
{
	struct ifreq ifr;
	int fd, hdr_sz = sizeof(vnet_hdr_t);

	fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | (vnet ? IFF_VNET_HDR : 0);
	strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
	if (tap_attach(fd, &ifr) < 0 ||
	    (vnet && ioctl(fd, TUNSETVNETHDRSZ, &hdr_sz) < 0)) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

/*
 * IFF_VNET_HDR is fixed when an fd attaches, so switching means attaching
 * again; keep the interface (and its host configuration) alive meanwhile.
 */
static int tap_reattach(struct tap *t, int vnet)
{
	struct ifreq ifr;
	int persist, fd;

	memset(&ifr, 0, sizeof(ifr));
	if (ioctl(t->fd, TUNGETIFF, &ifr) < 0)
		return -errno;
	persist = ifr.ifr_flags & IFF_PERSIST;
	if (!persist && ioctl(t->fd, TUNSETPERSIST, 1) < 0)
		return -errno;
	close(t->fd);
	fd = tap_open(t->name, vnet);
	if (fd < 0) {
		/* Get the interface back as it was, or have no fd at all. */
		int old = tap_open(t->name, t->vnet);

		if (old >= 0 && !persist)
			ioctl(old, TUNSETPERSIST, 0);
		t->fd = t->be.rx_fd = t->be.tx_fd = old < 0 ? -1 : old;
		return fd;
	}
	if (!persist)
		ioctl(fd, TUNSETPERSIST, 0);
	t->fd = t->be.rx_fd = t->be.tx_fd = fd;
	t->vnet = vnet;
	return 0;
}

static int tap_prepare(struct lkl_netdev_backend *be, uint64_t offered)
{
	struct tap *t = to_tap(be);
	int want = (offered & LKL_NETDEV_OFFLOAD_MASK) != 0;

	return want == t->vnet ? 0 : tap_reattach(t, want);
}

static int tap_set_offload(struct lkl_netdev_backend *be, uint64_t neg)
{
	struct tap *t = to_tap(be);
	unsigned int flags = 0;

	/* TUN_F_TSO* count only with TUN_F_CSUM, as GUEST_TSO* need GUEST_CSUM. */
	if (neg & LKL_NETDEV_GUEST_CSUM) {
		flags |= TUN_F_CSUM;
		if (neg & LKL_NETDEV_GUEST_TSO4)
			flags |= TUN_F_TSO4;
		if (neg & LKL_NETDEV_GUEST_TSO6)
			flags |= TUN_F_TSO6;
	}
	if (!t->vnet && flags)
		return -EINVAL;
	/*
	 * Also without headers: a persistent TAP keeps the offloads its last
	 * user set, and super-frames or partial checksums would then reach
	 * a reader that cannot tell.
	 */
	return ioctl(t->fd, TUNSETOFFLOAD, flags) < 0 ? -errno : 0;
}

static ssize_t tap_tx(struct lkl_netdev_backend *be, const vnet_hdr_t *hdr,
		      const struct iovec *iov, int iovcnt)
{
	struct tap *t = to_tap(be);
	struct iovec v[TAP_MAX_IOV];
	ssize_t n;
	int cnt;

	if (t->vnet) {
		cnt = iov_prepend(v, TAP_MAX_IOV, hdr, sizeof(*hdr), iov,
				  iovcnt);
		if (cnt < 0)
			return cnt;
		n = writev(t->fd, v, cnt);
	} else {
		n = writev(t->fd, iov, iovcnt);
	}
	if (n < 0)
		return -errno;
	return t->vnet ? n - (ssize_t)sizeof(*hdr) : n;
}

static ssize_t tap_rx(struct lkl_netdev_backend *be, vnet_hdr_t *hdr,
		      const struct iovec *iov, int iovcnt)
{
	struct tap *t = to_tap(be);
	struct iovec v[TAP_MAX_IOV + 1];
	size_t room;
	ssize_t n;
	int cnt;

	if (t->vnet) {
		cnt = iov_prepend_cut(v, TAP_MAX_IOV, hdr, sizeof(*hdr), iov,
				      iovcnt);
		room = iov_length(v + 1, cnt - 1);
	} else {
		memset(hdr, 0, sizeof(*hdr));
		cnt = iovcnt < TAP_MAX_IOV ? iovcnt : TAP_MAX_IOV;
		memcpy(v, iov, cnt * sizeof(*iov));
		room = iov_length(v, cnt);
	}
	/* A read cuts a long frame to fit: anything here means it was cut. */
	v[cnt].iov_base = t->spill;
	v[cnt].iov_len = sizeof(t->spill);
	n = readv(t->fd, v, cnt + 1);
	if (n < 0)
		return -errno;
	if (t->vnet) {
		if (n < (ssize_t)sizeof(*hdr))
			return -EBADMSG;
		n -= sizeof(*hdr);
	}
	return (size_t)n > room ? -EMSGSIZE : n;
}

static void tap_free(struct lkl_netdev_backend *be)
{
	struct tap *t = to_tap(be);

	if (t->fd >= 0)
		close(t->fd);
	free(t);
}

static const struct net_backend_ops tap_ops = {
	.prepare = tap_prepare,
	.set_offload = tap_set_offload,
	.tx = tap_tx,
	.rx = tap_rx,
	.free = tap_free,
};

int lkl_netdev_tap_create(const char *ifname, struct lkl_netdev_backend **be)
{
	struct tap *t;

	if (!ifname || strlen(ifname) >= IFNAMSIZ)
		return -EINVAL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	strcpy(t->name, ifname);
	/* Offloads are what the device usually offers: start that way. */
	t->vnet = 1;
	t->fd = tap_open(ifname, 1);
	if (t->fd < 0) {
		int err = t->fd;

		free(t);
		return err;
	}
	t->be.ops = &tap_ops;
	t->be.offloads = LKL_NETDEV_OFFLOAD_MASK;
	t->be.rx_fd = t->be.tx_fd = t->fd;
	*be = &t->be;
	return 0;
}
