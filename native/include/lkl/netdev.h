/*
 * lkl: virtio-net devices for the library kernel.
 *
 * A device is a virtio-mmio virtio-net device served by the host process;
 * the kernel's own virtio_net driver drives it.  Its frames go to a
 * backend: a TAP device, an AF_PACKET socket on an existing interface,
 * or a pipe (a socket) to another process, typically another kernel.
 *
 *	struct lkl_netdev_backend *be;
 *	struct lkl_netdev *dev;
 *	struct lkl_netdev_config cfg = { .offload = LKL_NETDEV_LARGE_SEGMENTS };
 *	char frag[128];
 *
 *	lkl_netdev_tap_create("tap0", &be);
 *	lkl_netdev_create(be, &cfg, &dev);	// dev owns be from here
 *	lkl_netdev_cmdline(dev, frag, sizeof(frag));
 *	lkl_start_kernel(&lkl_host_ops, frag);	// or lkl_netdev_attach()
 *	...  lkl_netdev_ifindex(dev) ...
 *	lkl_sys_halt();
 *	lkl_netdev_free(dev);
 *
 * Functions return 0 (or a count) on success and a negative errno on
 * failure.
 */
#ifndef LKL_NETDEV_H
#define LKL_NETDEV_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Offloads: virtio-net feature bits, by the spec's bit numbers. */
#define LKL_NETDEV_CSUM		(1ULL << 0)	/* kernel may send partial csums */
#define LKL_NETDEV_GUEST_CSUM	(1ULL << 1)	/* kernel takes partial csums */
#define LKL_NETDEV_GUEST_TSO4	(1ULL << 7)	/* kernel takes TCPv4 super-frames */
#define LKL_NETDEV_GUEST_TSO6	(1ULL << 8)
#define LKL_NETDEV_HOST_TSO4	(1ULL << 11)	/* kernel may send them */
#define LKL_NETDEV_HOST_TSO6	(1ULL << 12)
#define LKL_NETDEV_MRG_RXBUF	(1ULL << 15)	/* mergeable receive buffers */

#define LKL_NETDEV_OFFLOAD_MASK						\
	(LKL_NETDEV_CSUM | LKL_NETDEV_GUEST_CSUM | LKL_NETDEV_GUEST_TSO4 | \
	 LKL_NETDEV_GUEST_TSO6 | LKL_NETDEV_HOST_TSO4 |			\
	 LKL_NETDEV_HOST_TSO6 | LKL_NETDEV_MRG_RXBUF)

/* Presets. */
#define LKL_NETDEV_NONE		0ULL
#define LKL_NETDEV_CHECKSUM	(LKL_NETDEV_CSUM | LKL_NETDEV_GUEST_CSUM)
#define LKL_NETDEV_LARGE_SEGMENTS					\
	(LKL_NETDEV_CHECKSUM | LKL_NETDEV_GUEST_TSO4 |			\
	 LKL_NETDEV_GUEST_TSO6 | LKL_NETDEV_HOST_TSO4 |			\
	 LKL_NETDEV_HOST_TSO6 | LKL_NETDEV_MRG_RXBUF)
/* Large segments without MRG_RXBUF: the driver's "big packets" mode. */
#define LKL_NETDEV_BIG_PACKETS	(LKL_NETDEV_LARGE_SEGMENTS & ~LKL_NETDEV_MRG_RXBUF)

struct lkl_netdev_backend;
struct lkl_netdev;

/* ---- backends ------------------------------------------------------------- */

/*
 * Open the TAP device ifname, creating it if it does not exist (needs
 * CAP_NET_ADMIN).  Carries every offload.
 */
int lkl_netdev_tap_create(const char *ifname, struct lkl_netdev_backend **be);

/*
 * An AF_PACKET socket on the existing interface ifname (needs
 * CAP_NET_RAW), in promiscuous mode.  Carries every offload.
 */
int lkl_netdev_raw_create(const char *ifname, struct lkl_netdev_backend **be);

/*
 * A pipe to another process: frames, each with its virtio-net header,
 * over a socket.  rx_fd and tx_fd are usually the same socket: a
 * SOCK_SEQPACKET (or SOCK_DGRAM) socket carries one frame per message;
 * anything else (a stream socket, or a pair of pipe(2) ends) carries
 * frames with a 4-byte length in front.  The backend owns the fds.
 * Carries every offload; needs no privilege.
 */
int lkl_netdev_pipe_create(int rx_fd, int tx_fd,
			   struct lkl_netdev_backend **be);

/* A connected SOCK_SEQPACKET pair for two pipe backends (no CLOEXEC). */
int lkl_netdev_pipe_pair(int fds[2]);

/* The offload bits be can carry. */
uint64_t lkl_netdev_backend_offloads(const struct lkl_netdev_backend *be);

/* Close a backend that no device owns. */
void lkl_netdev_backend_free(struct lkl_netdev_backend *be);

/* ---- devices ---------------------------------------------------------------- */

struct lkl_netdev_config {
	uint64_t offload;	/* LKL_NETDEV_* bits asked for */
	int has_mac;		/* 0: the kernel picks a random MAC */
	unsigned char mac[6];
	int mtu;		/* 0: no MTU advice (the kernel uses 1500) */
	int queue_size;		/* ring entries, power of two; 0: 256 */
	/*
	 * Busy polling, at most this many µs per wait (0: off).  With
	 * direct_rx the thread that serves the device spins on the backend
	 * before it sleeps, only while traffic is recent (adaptive, see
	 * serve.h); without it the device's poller spins this long.
	 */
	int busy_poll_us;
	/*
	 * Direct syscall mode: a thread whose syscall sleeps receives this
	 * device's frames itself instead of a poller thread waking it (one
	 * device per process; the first that asks).
	 */
	int direct_rx;
};

/*
 * Make a device on backend be, which it owns from now on (also on
 * failure).  The offered offloads are cfg->offload limited to what be
 * carries and to the spec's dependencies (TSO needs checksumming).
 */
int lkl_netdev_create(struct lkl_netdev_backend *be,
		      const struct lkl_netdev_config *cfg,
		      struct lkl_netdev **dev);

/*
 * Attach before boot: write the kernel command line fragment
 * ("virtio_mmio.device=...") to append for this device into buf.
 * Returns its length, or -ENOSPC if len is too small.
 */
int lkl_netdev_cmdline(struct lkl_netdev *dev, char *buf, size_t len);

/* Attach to the running kernel; its driver probes before this returns. */
int lkl_netdev_attach(struct lkl_netdev *dev);

/*
 * The kernel's interface index of the device (looked up through the
 * kernel's /proc and /sys), after it was probed.
 */
int lkl_netdev_ifindex(struct lkl_netdev *dev);

/* Offload bits offered to the driver, and those it accepted. */
uint64_t lkl_netdev_offered(const struct lkl_netdev *dev);
uint64_t lkl_netdev_negotiated(const struct lkl_netdev *dev);
/* Every virtio feature bit the driver accepted (transport bits too). */
uint64_t lkl_netdev_features(const struct lkl_netdev *dev);

/* The device's own counters. */
struct lkl_netdev_stats {
	uint64_t rx_packets, rx_bytes;	/* handed to the kernel */
	uint64_t tx_packets, tx_bytes;	/* handed to the backend */
	uint64_t rx_dropped;		/* every frame lost on receive */
	uint64_t rx_malformed;		/* short, bad header, lying GSO */
	uint64_t rx_oversize;		/* larger than the kernel's buffers */
	uint64_t rx_errors;		/* backend read errors */
	uint64_t tx_dropped;		/* every frame lost on transmit */
	uint64_t tx_errors;		/* backend write errors, bad chains */
	uint64_t rx_sw_csum;		/* checksums completed for the kernel */
	uint64_t rx_sw_gso;		/* super-frames segmented for it */
	uint64_t irqs;			/* interrupts raised */
	uint64_t kicks;			/* queue notifications received */
	uint64_t rx_direct;		/* receives on a sleeping syscall's thread */
	/*
	 * epoll failures of the device's poller or of a thread serving it
	 * (logged on stderr).  A failed poller stops: the device receives
	 * no more and drops what it cannot send at once.
	 */
	uint64_t poll_errors;
	/* The poller woke with the backend readable. */
	uint64_t poller_rx_wakeups;
	/* Busy polls by a serving thread, those that found work, their time. */
	uint64_t busy_polls, busy_poll_hits, busy_poll_ns;
};

void lkl_netdev_get_stats(const struct lkl_netdev *dev,
			  struct lkl_netdev_stats *st);

/* Link state seen by the kernel (config-change interrupt). */
void lkl_netdev_set_link(struct lkl_netdev *dev, int up);

/* Change busy_poll_us (0: sleep at once). */
void lkl_netdev_set_busy_poll(struct lkl_netdev *dev, int us);

/*
 * Stop the poller and free the device and its backend.  Only while no
 * kernel runs (before boot or after lkl_sys_halt): -EBUSY otherwise.
 */
int lkl_netdev_free(struct lkl_netdev *dev);

#ifdef __cplusplus
}
#endif

#endif
