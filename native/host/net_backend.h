/*
 * What a virtio-net device needs from the thing that carries its frames
 * (TAP, AF_PACKET socket, pipe to another kernel).
 *
 * Every frame crosses this interface as a virtio-net v1 header plus an
 * Ethernet frame; a backend that carries no header makes one up (all
 * zero) on receive and drops it on transmit.  All I/O is non-blocking:
 * rx and tx return -EAGAIN when they would wait, and the device polls
 * the backend's fds.
 */
#ifndef LKL_HOST_NET_BACKEND_H
#define LKL_HOST_NET_BACKEND_H

#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <lkl/linux/virtio_net.h>

#include "iov.h"

typedef struct lkl_virtio_net_hdr_v1 vnet_hdr_t;

struct lkl_netdev_backend;

struct net_backend_ops {
	/*
	 * The device is about to offer the offload bits in offered to the
	 * driver (before the kernel sees the device).  Optional.
	 */
	int (*prepare)(struct lkl_netdev_backend *be, uint64_t offered);
	/*
	 * The driver settled on negotiated: the backend may now hand us
	 * only what the driver accepts (e.g. TUNSETOFFLOAD).  Optional;
	 * must not block (called on a kernel thread).
	 */
	int (*set_offload)(struct lkl_netdev_backend *be, uint64_t negotiated);
	/*
	 * Send one frame: hdr, then the frame in iov.  Returns the frame
	 * length, -EAGAIN, or another -errno (the frame is lost).
	 */
	ssize_t (*tx)(struct lkl_netdev_backend *be, const vnet_hdr_t *hdr,
		      const struct iovec *iov, int iovcnt);
	/*
	 * Optional, for a backend that may keep the tail of a frame it
	 * took (a stream pipe): write out what it keeps.  Returns 0 once
	 * nothing is left, -EAGAIN while something is (the device then
	 * waits for tx_fd to be writable and calls again), or another
	 * -errno (the tail is lost).  Called after every tx.
	 */
	int (*flush)(struct lkl_netdev_backend *be);
	/*
	 * Receive one frame: its header into *hdr, the frame into iov.
	 * Returns the frame length, -EAGAIN, -EMSGSIZE if the frame did
	 * not fit in iov (or in the entries of iov the backend can take),
	 * -EBADMSG if it came without a whole header, or another -errno.
	 * -EMSGSIZE and -EBADMSG always mean the frame was consumed and is
	 * lost: the next call reads the next frame.
	 */
	ssize_t (*rx)(struct lkl_netdev_backend *be, vnet_hdr_t *hdr,
		      const struct iovec *iov, int iovcnt);
	void (*free)(struct lkl_netdev_backend *be);
};

struct lkl_netdev_backend {
	const struct net_backend_ops *ops;
	/* Offload feature bits this backend can carry. */
	uint64_t offloads;
	/* Poll for POLLIN on rx_fd and POLLOUT on tx_fd. */
	int rx_fd, tx_fd;
	/* Set by the device that owns it. */
	int in_use;
};

/*
 * The most iov entries a device passes to rx or tx: a ring's worth of
 * buffers and its bounce buffer (virtio_net.c).  Backends take at least
 * this many besides their own headers.
 */
#define NET_FRAME_MAX_IOV	(256 + 1)

#endif
