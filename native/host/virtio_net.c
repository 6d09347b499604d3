/*
 * The virtio-net device model (virtio 1.x, section 5.1) behind the
 * kernel's unmodified virtio_net driver: one RX and one TX queue, the
 * 12-byte v1 header, checksum and TSO offloads, mergeable receive
 * buffers and the driver's "big packets" chains.
 *
 * Threads: transmit runs inline when the driver kicks the TX queue (on a
 * kernel thread; backends never block), unless the backend pushed back,
 * in which case the device's poller thread finishes it once the backend
 * is writable.  The poller moves frames from the backend into the RX
 * ring; with direct_rx a thread whose direct syscall sleeps does that
 * itself while it waits (serve_rx, serve.h).  Each queue has a lock; nobody calls into the kernel (raises an
 * interrupt) while holding one, because the interrupt may run the
 * driver on the calling thread and the driver may kick a queue.
 *
 * Copies of the payload between an application's buffer and a TAP:
 *
 *   lkl -> host (transmit)
 *   1. kernel net/ipv4/tcp.c:tcp_sendmsg_locked: the application's
 *      buffer into the skb (checksummed on the way without CSUM).
 *      drivers/net/virtio_net.c:xmit_skb puts the skb's own memory on
 *      the ring, and tx_one() below hands those buffers to the backend
 *      as they are (net_tap.c:tap_tx writev): no copy in this library.
 *   2. host kernel tun_get_user: the ring buffers into a host skb (the
 *      writev itself).
 *   3. the host application's recv().
 *   With MSG_ZEROCOPY (SO_ZEROCOPY set) copy 1 depends on the buffer:
 *   from memory mapped inside the kernel (Kernel.alloc_buffer, an mmap
 *   by a kernel task) TCP references its pages (nommu GUP) and they go
 *   to the ring as they are: 2 copies in all, both in the host kernel;
 *   from host memory (no struct page) arch/lkl/kernel/zerocopy.c copies
 *   it into kernel pages instead: 3, as without, completion COPIED.
 *
 *   host -> lkl (receive)
 *   1. the host application's send().
 *   2. host kernel tun_put_user: the host skb straight into the
 *      driver's posted buffers (rx_batch() maps them, net_tap.c:tap_rx
 *      readv's into them): no copy in this library.
 *   3. kernel drivers/net/virtio_net.c:page_to_skb copies at most 128
 *      bytes of headers into the skb head (mergeable and big-packet
 *      buffers); small buffers become the skb (build_skb), no copy.
 *   4. kernel net/ipv4/tcp.c:tcp_recvmsg: the skb into the application's
 *      buffer.  With lkl_recv_zerocopy (Socket.recv_zerocopy) this copy
 *      disappears: arch/lkl/kernel/zerocopy_rx.c hands out the skb's own
 *      data (kernel memory is host memory) and holds the skb until
 *      lkl_zerocopy_release: 3 copies in all, 2 in the host kernel.
 *
 * The payload is never copied here on the TAP path: only the 12-byte
 * header (tx_one, rx_publish) and, if the first buffer is shorter than
 * NET_PEEK_LEN, the headers net_rx_check() reads (rx_batch).  Extra
 * copies remain where they buy something: a super-frame from a raw or
 * pipe backend for a driver without TSO is gathered in the bounce buffer
 * and cut into segments (rx_batch, rx_segment, rx_copy_in: three), and
 * the stream-socket pipe frames through a buffer (net_pipe.c:stream_rx).
 * Frames that fit the driver's buffers never touch the bounce buffer.
 * The kernel's own copies (tcp_sendmsg, tcp_recvmsg) are where the copy
 * time goes; they run the host's memcpy (arch/lkl/kernel/string.c).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <lkl/lkl.h>
#include <lkl/netdev.h>
#include <lkl/linux/virtio_config.h>
#include <lkl/linux/virtio_ids.h>
#include <lkl/linux/virtio_mmio.h>
#include <lkl/linux/virtio_net.h>
#include <lkl/linux/virtio_ring.h>

#include "net_backend.h"
#include "net_offload.h"
#include "virtio.h"
#include "net_ifindex.h"
#include "serve.h"
#include "capture.h"

#define RXQ		0
#define TXQ		1
#define DEFAULT_QUEUE	256
#define MAX_QUEUE	1024
/* Frames moved per interrupt; the driver's NAPI budget is 64. */
#define RX_BATCH	64
#define MAX_IOV		256
_Static_assert(MAX_IOV + 1 <= NET_FRAME_MAX_IOV, "backends take a frame's iov");
/* The largest frame the driver can take: a 64 KiB TCP super-frame. */
#define GSO_FRAME_MAX	(65535 + ETH_HDR_LEN + 4)
#define VNET_HDR_LEN	((int)sizeof(vnet_hdr_t))
#define CMDLINE_ID_BASE	1000
/*
 * With mergeable buffers and TSO the device waits until the driver has
 * posted room for a 64 KiB frame, but the driver (6.12 virtnet_receive)
 * posts more only once over min(64, ring)/2 entries are free: a ring
 * smaller than this never gets there (ring 64: 32 posted buffers of
 * 1518 bytes), and receive stops for good.
 */
#define MRG_TSO_MIN_QUEUE	128

#define STAT_ADD(dev, field, n) \
	__atomic_fetch_add(&(dev)->stats.field, (n), __ATOMIC_RELAXED)

/* What the poller waits on; its lock, because a spinning server changes it. */
struct poll_set {
	int epfd;
	pthread_mutex_t lock;
	uint32_t rx_events, tx_events;	/* what is registered now */
	int rx_quiet;		/* a serving thread busy polls: leave RX to it */
	uint64_t quiet_until_us;	/* ... and it left: until then, all the same */
};

/*
 * How long the poller keeps standing aside after a busy-polling thread
 * went back to its task: it usually comes back (request/response) and
 * finds what arrived meanwhile.  Also the longest a frame waits when it
 * does not come back; the poller looks this often while it stands aside.
 */
#define QUIET_GRACE_US	1000

struct lkl_netdev {
	struct virtio_dev vdev;
	struct virtq queues[2];
	struct lkl_netdev_backend *be;

	uint64_t offered;		/* offload bits offered */
	struct lkl_virtio_net_config config;
	int attached;		/* hot-added by lkl_netdev_attach */
	int in_cmdline;		/* its fragment was made: attached once booted */
	int ifindex;

	lkl_thread_t poller;
	int evfd;			/* wakes the poller */
	int poll_epfd;			/* what the poller waits on */
	struct poll_set ps;
	struct lkl_host_server server;	/* RX on sleeping syscall threads */
	int serving;			/* server offered (lkl_host_set_server) */
	int stop;
	int busy_poll_us;
	int rx_waiting;			/* no room in the RX ring: wait for a kick */
	int tx_blocked;			/* the backend pushed back (TX lock) */
	int be_dead;			/* the backend hung up */
	int poller_dead;		/* the poller failed: nobody waits for TX */

	/* Poller-only RX state. */
	struct iovec rx_iov[MAX_IOV];
	struct virtq_chain rx_chain[MAX_IOV];
	uint8_t *bounce;		/* a super-frame being segmented */
	uint8_t *segment;		/* one segment of it */

	/* Kernel-thread TX state (TX lock). */
	struct iovec tx_iov[MAX_IOV];

	struct lkl_netdev_stats stats;
	struct lkl_capture *capture;	/* set under both queue locks */
};

static struct lkl_netdev *to_net(struct virtio_dev *vdev)
{
	return (struct lkl_netdev *)vdev;
}

static void wake_poller(struct lkl_netdev *dev)
{
	uint64_t one = 1;
	ssize_t r = write(dev->evfd, &one, sizeof(one));

	(void)r;	/* a full counter still wakes it */
}

static uint64_t negotiated(const struct lkl_netdev *dev)
{
	return dev->vdev.driver_features & LKL_NETDEV_OFFLOAD_MASK;
}

static int has(const struct lkl_netdev *dev, int bit)
{
	return virtio_has(&dev->vdev, bit);
}

/* ---- receive (poller thread, RX lock) ---------------------------------- */

/* Buffer space (header included) the largest acceptable frame needs. */
static size_t rx_need(struct lkl_netdev *dev)
{
	size_t mtu = dev->config.mtu > 1500 ? dev->config.mtu : 1500;

	if (has(dev, LKL_VIRTIO_NET_F_GUEST_TSO4) ||
	    has(dev, LKL_VIRTIO_NET_F_GUEST_TSO6))
		return VNET_HDR_LEN + GSO_FRAME_MAX;
	return VNET_HDR_LEN + mtu + ETH_HDR_LEN + 4;
}

/*
 * Peek at buffers for one frame of up to need bytes: one chain, or with
 * mergeable buffers as many as it takes.  *seen is what was pending.
 * Returns the chain count, 0 if the driver must post more first, -errno
 * for a broken chain.
 */
static int rx_gather(struct lkl_netdev *dev, struct virtq *q, size_t need,
		     uint16_t *seen, int *iovcnt, size_t *room)
{
	uint16_t pending = virtq_pending(q), i;
	int mergeable = has(dev, LKL_VIRTIO_NET_F_MRG_RXBUF);
	int n = 0, err, iov_full = 0;

	*seen = pending;
	*iovcnt = 0;
	*room = 0;
	for (i = 0; i < pending && *room < need; i++) {
		struct virtq_chain *c = &dev->rx_chain[n];

		err = virtq_map_chain(q, i, 1, dev->rx_iov + *iovcnt,
				      MAX_IOV - *iovcnt, c);
		if (err == -ENOSPC && n) {
			iov_full = 1;
			break;
		}
		if (err)
			return err;
		*iovcnt += c->niov;
		*room += c->len;
		n++;
		if (!mergeable)
			return c->len >= VNET_HDR_LEN ? n : -EIO;
	}
	/* Short of a whole frame: wait for more, unless that cannot help. */
	if (*room < need && pending < q->num && !iov_full)
		return 0;
	return *room >= (size_t)VNET_HDR_LEN ? n : 0;
}

/*
 * Hand a frame of len bytes (header included), which fills the gathered
 * buffers from the start, to the driver.
 */
static void rx_publish(struct lkl_netdev *dev, struct virtq *q,
		       vnet_hdr_t *hdr, size_t len, int iovcnt, int nchains)
{
	size_t left = len;
	int n = 0;

	while (left && n < nchains) {
		struct virtq_chain *c = &dev->rx_chain[n++];
		size_t used = left < c->len ? left : c->len;

		virtq_push_used(q, c->head, used);
		left -= used;
	}
	hdr->num_buffers = n;
	buf_to_iov(dev->rx_iov, iovcnt, hdr, VNET_HDR_LEN);
	q->last_avail += n;
	STAT_ADD(dev, rx_packets, 1);
	STAT_ADD(dev, rx_bytes, len - VNET_HDR_LEN);
}

static void rx_drop(struct lkl_netdev *dev, int malformed, int oversize)
{
	STAT_ADD(dev, rx_dropped, 1);
	if (malformed)
		STAT_ADD(dev, rx_malformed, 1);
	if (oversize)
		STAT_ADD(dev, rx_oversize, 1);
}

/*
 * Copy a frame (from the bounce buffer, or a segment made from it) into
 * fresh buffers and hand it over.  -ENOBUFS if it does not fit.
 */
static int rx_copy_in(struct lkl_netdev *dev, struct virtq *q,
		      vnet_hdr_t *hdr, const uint8_t *data, size_t len)
{
	struct iovec frame[MAX_IOV];
	int iovcnt, n, fcnt;
	uint16_t seen;
	size_t room;

	n = rx_gather(dev, q, VNET_HDR_LEN + len, &seen, &iovcnt, &room);
	if (n <= 0 || room < VNET_HDR_LEN + len)
		return -ENOBUFS;
	fcnt = iov_skip(frame, dev->rx_iov, iovcnt, VNET_HDR_LEN);
	buf_to_iov(frame, fcnt, data, len);
	rx_publish(dev, q, hdr, VNET_HDR_LEN + len, iovcnt, n);
	return 0;
}

struct emit_ctx {
	struct lkl_netdev *dev;
	struct virtq *q;
};

static int rx_emit_segment(void *arg, const uint8_t *seg, size_t len)
{
	struct emit_ctx *e = arg;
	vnet_hdr_t hdr = { 0 };

	/* Checksums are complete: say so if the driver listens. */
	if (has(e->dev, LKL_VIRTIO_NET_F_GUEST_CSUM))
		hdr.flags = LKL_VIRTIO_NET_HDR_F_DATA_VALID;
	if (rx_copy_in(e->dev, e->q, &hdr, seg, len)) {
		rx_drop(e->dev, 0, 0);
		return -ENOBUFS;
	}
	return 0;
}

/* Cut a super-frame in dev->bounce for a driver without that TSO. */
static int rx_segment(struct lkl_netdev *dev, struct virtq *q,
		      vnet_hdr_t *hdr, size_t len)
{
	struct emit_ctx e = { dev, q };

	if (!net_gso_segment(hdr, dev->bounce, len, dev->segment,
			     VNET_HDR_LEN + GSO_FRAME_MAX, rx_emit_segment, &e)) {
		rx_drop(dev, 0, 0);
		return 0;
	}
	STAT_ADD(dev, rx_sw_gso, 1);
	return 1;
}

/*
 * Whether the bounce buffer catches what overflows the driver's buffers:
 * when the driver takes no super-frames but the backend cannot be told
 * (raw, pipe), a frame may be far larger than any buffer it posts.
 * Frames that fit (all of them, unless the peer sends super-frames)
 * land in the driver's buffers directly.
 */
static int rx_via_bounce(struct lkl_netdev *dev)
{
	return !dev->be->ops->set_offload &&
	       !has(dev, LKL_VIRTIO_NET_F_GUEST_TSO4) &&
	       !has(dev, LKL_VIRTIO_NET_F_GUEST_TSO6);
}

static int fatal_rx_error(int err)
{
	return err == -ENOTCONN || err == -EPIPE || err == -EBADF ||
	       err == -EBADFD || err == -ENODEV || err == -ENXIO ||
	       err == -EPROTO;
}

/*
 * Move frames from the backend into the RX ring, up to one batch.
 * Returns 1 if there may be more to do at once, 0 if the backend is
 * empty or the ring is full.  *irq is set if the driver wants to know.
 */
static int rx_batch(struct lkl_netdev *dev, int *irq)
{
	struct virtq *q = &dev->queues[RXQ];
	struct iovec frame[MAX_IOV + 1];
	uint8_t head_copy[NET_PEEK_LEN];
	int done = 0, pushed = 0, more = 0, bounce;
	size_t need = rx_need(dev);

	pthread_mutex_lock(&q->lock);
	if (!q->ready || !virtio_dev_live(&dev->vdev))
		goto out;
	dev->rx_waiting = 0;
	bounce = rx_via_bounce(dev);
	virtq_want_notify(q, 0, 0);

	while (done < RX_BATCH) {
		enum rx_verdict v;
		vnet_hdr_t hdr;
		int iovcnt, fcnt, nchains, overflow;
		uint16_t seen;
		size_t room, hl;
		ssize_t len;
		const uint8_t *head;

		nchains = rx_gather(dev, q, need, &seen, &iovcnt, &room);
		if (nchains < 0) {
			/* A broken chain from the driver: stop using the queue. */
			STAT_ADD(dev, rx_errors, 1);
			q->ready = 0;
			break;
		}
		if (nchains == 0) {
			/*
			 * Too few buffers for a whole frame: wait for more.
			 * rx_waiting first: a kick that follows the request
			 * sees it (net_notify) and wakes the poller.
			 */
			__atomic_store_n(&dev->rx_waiting, 1, __ATOMIC_SEQ_CST);
			if (virtq_want_notify(q, 1, seen)) {
				dev->rx_waiting = 0;
				continue;
			}
			break;
		}
		fcnt = iov_skip(frame, dev->rx_iov, iovcnt, VNET_HDR_LEN);
		room -= VNET_HDR_LEN;
		if (bounce) {
			frame[fcnt].iov_base = dev->bounce;
			frame[fcnt++].iov_len = GSO_FRAME_MAX;
		}
		len = dev->be->ops->rx(dev->be, &hdr, frame, fcnt);
		if (len == -EAGAIN || len == -EINTR)
			break;
		done++;
		if (len == -EMSGSIZE || len == -EBADMSG) {
			rx_drop(dev, len == -EBADMSG, len == -EMSGSIZE);
			continue;
		}
		if (len < 0) {
			STAT_ADD(dev, rx_errors, 1);
			STAT_ADD(dev, rx_dropped, 1);
			if (fatal_rx_error(len)) {
				dev->be_dead = 1;
				break;
			}
			continue;
		}
		if (__builtin_expect(dev->capture != NULL, 0))
			capture_frame(dev->capture, frame, fcnt, len);

		/* The headers to check: in place when the first buffer has them. */
		hl = len < NET_PEEK_LEN ? len : NET_PEEK_LEN;
		head = frame[0].iov_base;
		if (frame[0].iov_len < hl) {
			iov_to_buf(head_copy, hl, frame, fcnt);
			head = head_copy;
		}
		v = net_rx_check(&hdr, head, hl, len,
				 dev->vdev.driver_features);
		overflow = (size_t)len > room;
		if (v == RX_MALFORMED) {
			rx_drop(dev, 1, 0);
			continue;
		}
		if (v == RX_SW_CSUM) {
			net_csum_finish(&hdr, frame, fcnt, len);
			STAT_ADD(dev, rx_sw_csum, 1);
		}
		if (v == RX_SW_GSO) {
			/*
			 * The segments reuse the buffers the frame sits in:
			 * gather it in the bounce buffer, behind the part
			 * the driver's buffers took if it overflowed there.
			 */
			if (overflow) {
				memmove(dev->bounce + room, dev->bounce,
					len - room);
				iov_to_buf(dev->bounce, room, frame, fcnt - 1);
			} else {
				iov_to_buf(dev->bounce, len, frame, fcnt);
			}
			pushed |= rx_segment(dev, q, &hdr, len);
			continue;
		}
		if (overflow) {
			rx_drop(dev, 0, 1);
			continue;
		}
		rx_publish(dev, q, &hdr, VNET_HDR_LEN + len, iovcnt, nchains);
		pushed = 1;
	}
	more = done == RX_BATCH;
	if (pushed)
		*irq = virtq_publish(q);
out:
	pthread_mutex_unlock(&q->lock);
	return more;
}

/* ---- transmit (kernel thread on a kick, or poller; TX lock) ------------ */

/*
 * Write out what the backend kept of the last frame (a stream pipe's
 * tail).  -EAGAIN while some is left: wait for the backend to be
 * writable before the next frame.
 */
static int tx_flush(struct lkl_netdev *dev)
{
	int err;

	if (!dev->be->ops->flush)
		return 0;
	err = dev->be->ops->flush(dev->be);
	if (err == -EAGAIN && !__atomic_load_n(&dev->poller_dead,
					       __ATOMIC_ACQUIRE))
		return -EAGAIN;
	if (err)
		STAT_ADD(dev, tx_errors, 1);	/* the tail is lost */
	return 0;
}

enum tx_result { TX_DONE, TX_BLOCKED, TX_DONE_TAIL_KEPT };

static enum tx_result tx_one(struct lkl_netdev *dev, struct virtq_chain *c)
{
	struct iovec frame[MAX_IOV];
	vnet_hdr_t hdr;
	size_t flen;
	ssize_t r;
	int fcnt;

	if (c->len < VNET_HDR_LEN + ETH_HDR_LEN) {
		STAT_ADD(dev, tx_dropped, 1);
		STAT_ADD(dev, tx_errors, 1);
		return TX_DONE;
	}
	iov_to_buf(&hdr, VNET_HDR_LEN, c->iov, c->niov);
	fcnt = iov_skip(frame, c->iov, c->niov, VNET_HDR_LEN);
	flen = c->len - VNET_HDR_LEN;
	r = dev->be->ops->tx(dev->be, &hdr, frame, fcnt);
	/* Without a poller nobody would wait for the backend: drop. */
	if ((r == -EAGAIN || r == -EWOULDBLOCK) &&
	    !__atomic_load_n(&dev->poller_dead, __ATOMIC_ACQUIRE))
		return TX_BLOCKED;
	if (r < 0) {
		STAT_ADD(dev, tx_dropped, 1);
		STAT_ADD(dev, tx_errors, 1);
		return TX_DONE;
	}
	STAT_ADD(dev, tx_packets, 1);
	STAT_ADD(dev, tx_bytes, flen);
	if (__builtin_expect(dev->capture != NULL, 0))
		capture_frame(dev->capture, frame, fcnt, flen);
	return tx_flush(dev) ? TX_DONE_TAIL_KEPT : TX_DONE;
}

/* Send everything the driver queued.  Returns 1 if an interrupt is due. */
static int tx_drain(struct lkl_netdev *dev)
{
	struct virtq *q = &dev->queues[TXQ];
	int pushed = 0, blocked = 0;

	if (!q->ready)
		return 0;
	do {
		while (!blocked && virtq_pending(q)) {
			struct virtq_chain c;
			enum tx_result r;

			if (virtq_map_chain(q, 0, 0, dev->tx_iov, MAX_IOV, &c)) {
				/* A broken ring: stop using it until a reset. */
				STAT_ADD(dev, tx_errors, 1);
				q->ready = 0;
				return pushed && virtq_publish(q);
			}
			r = tx_one(dev, &c);
			if (r == TX_BLOCKED) {
				blocked = 1;
				break;
			}
			virtq_push_used(q, c.head, 0);
			q->last_avail++;
			pushed = 1;
			/* The frame's tail waits for the backend: so do the rest. */
			blocked = r == TX_DONE_TAIL_KEPT;
		}
	} while (!blocked && virtq_want_notify(q, 1, 0));

	if (blocked) {
		__atomic_store_n(&dev->tx_blocked, 1, __ATOMIC_RELEASE);
		wake_poller(dev);	/* to wait for EPOLLOUT */
	}
	return pushed && virtq_publish(q);
}

static void tx_kick(struct lkl_netdev *dev)
{
	struct virtq *q = &dev->queues[TXQ];
	int irq = 0;

	pthread_mutex_lock(&q->lock);
	if (!dev->tx_blocked)
		irq = tx_drain(dev);
	pthread_mutex_unlock(&q->lock);
	if (irq) {
		STAT_ADD(dev, irqs, 1);
		virtio_dev_interrupt(&dev->vdev, LKL_VIRTIO_MMIO_INT_VRING);
	}
}

static void tx_resume(struct lkl_netdev *dev)
{
	struct virtq *q = &dev->queues[TXQ];
	int irq;

	pthread_mutex_lock(&q->lock);
	dev->tx_blocked = 0;
	/* The last frame's tail first: it may still not go out. */
	if (tx_flush(dev)) {
		__atomic_store_n(&dev->tx_blocked, 1, __ATOMIC_RELEASE);
		irq = 0;
	} else {
		irq = tx_drain(dev);
	}
	pthread_mutex_unlock(&q->lock);
	if (irq) {
		STAT_ADD(dev, irqs, 1);
		virtio_dev_interrupt(&dev->vdev, LKL_VIRTIO_MMIO_INT_VRING);
	}
}

/* ---- the poller thread ------------------------------------------------- */

static unsigned long long now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000ULL + ts.tv_nsec / 1000;
}

static void drain_eventfd(struct lkl_netdev *dev)
{
	uint64_t v;
	ssize_t r = read(dev->evfd, &v, sizeof(v));

	(void)r;
}

/* One round of work; returns 1 if there may be more at once. */
static int poll_work(struct lkl_netdev *dev)
{
	int irq = 0, more = 0;

	if (!virtio_dev_live(&dev->vdev))
		return 0;
	if (!dev->be_dead)
		more = rx_batch(dev, &irq);
	if (irq) {
		STAT_ADD(dev, irqs, 1);
		virtio_dev_interrupt(&dev->vdev, LKL_VIRTIO_MMIO_INT_VRING);
	}
	if (__atomic_load_n(&dev->tx_blocked, __ATOMIC_ACQUIRE))
		tx_resume(dev);
	return more;
}

/*
 * The poller waits in epoll: on its eventfd always, on the backend for
 * reading unless the driver must post buffers first, and for writing
 * while TX is blocked.  The backend entry is exclusive, so that while a
 * sleeping syscall thread serves this device (serve.h) the host wakes
 * that thread instead of the poller.  Exclusive entries cannot be
 * modified: a change is a delete and an add (at the tail of the fd's
 * wait queue, behind the serving entry, as it must be).
 */
enum { EP_EVENTFD, EP_RX, EP_TX };

/* 0, or -errno if the poller can no longer wait for fd. */
static int poll_set_fd(struct poll_set *ps, int fd, uint32_t *cur,
		       uint32_t want, uint32_t tag)
{
	struct epoll_event ev = { .data.u32 = tag };
	int err = 0;

	if (want == *cur)
		return 0;
	if (*cur)
		epoll_ctl(ps->epfd, EPOLL_CTL_DEL, fd, NULL);
	ev.events = want | EPOLLEXCLUSIVE;
	if (want && epoll_ctl(ps->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		err = -errno;
		want = 0;
	}
	*cur = want;
	return err;
}

static int poll_set_update(struct lkl_netdev *dev, struct poll_set *ps)
{
	int live = virtio_dev_live(&dev->vdev), err;
	uint32_t rx = live && !dev->be_dead &&
		!__atomic_load_n(&dev->rx_waiting, __ATOMIC_RELAXED) ? EPOLLIN : 0;
	uint32_t tx = live && __atomic_load_n(&dev->tx_blocked, __ATOMIC_ACQUIRE) ?
		EPOLLOUT : 0;

	pthread_mutex_lock(&ps->lock);
	if (ps->rx_quiet)
		rx = 0;
	if (dev->be->rx_fd == dev->be->tx_fd)
		err = poll_set_fd(ps, dev->be->rx_fd, &ps->rx_events, rx | tx,
				  EP_RX);
	else
		err = poll_set_fd(ps, dev->be->rx_fd, &ps->rx_events, rx, EP_RX) ?:
		      poll_set_fd(ps, dev->be->tx_fd, &ps->tx_events, tx, EP_TX);
	pthread_mutex_unlock(&ps->lock);
	return err;
}

/*
 * The poller cannot wait any more (epoll failed: a bug, or its fd was
 * closed under it).  Never silently: count it, say so, and stop the
 * device for good, so that nothing waits for a poller that is gone:
 * receive stops, and transmit drops what it cannot send at once,
 * starting with what waits now.
 */
static void poller_failed(struct lkl_netdev *dev, const char *what, int err)
{
	struct virtq *q = &dev->queues[TXQ];
	int irq;

	STAT_ADD(dev, poll_errors, 1);
	fprintf(stderr, "lkl: netdev %p: poller: %s failed: %s; the device "
		"stops receiving and drops what it cannot send\n",
		(void *)dev->vdev.base, what, strerror(err));
	__atomic_store_n(&dev->poller_dead, 1, __ATOMIC_RELEASE);
	dev->be_dead = 1;
	pthread_mutex_lock(&q->lock);
	dev->tx_blocked = 0;
	irq = tx_drain(dev);
	pthread_mutex_unlock(&q->lock);
	if (irq) {
		STAT_ADD(dev, irqs, 1);
		virtio_dev_interrupt(&dev->vdev, LKL_VIRTIO_MMIO_INT_VRING);
	}
}

static int poller_quiet_check(struct lkl_netdev *dev);

static void poller_main(void *arg)
{
	struct lkl_netdev *dev = arg;
	struct poll_set *ps = &dev->ps;
	struct epoll_event ev[3];

	/* Named for top -H and the benchmarks' per-thread CPU. */
	pthread_setname_np(pthread_self(), "lkl-netpoll");
	while (!__atomic_load_n(&dev->stop, __ATOMIC_ACQUIRE)) {
		/* With direct_rx the serving thread spins, not the poller. */
		int busy = __atomic_load_n(&dev->serving, __ATOMIC_RELAXED) ? 0 :
			__atomic_load_n(&dev->busy_poll_us, __ATOMIC_RELAXED);
		int n, i;

		int timeout;

		if (poll_work(dev))
			continue;
		timeout = poller_quiet_check(dev);
		n = poll_set_update(dev, ps);
		if (n) {
			poller_failed(dev, "epoll_ctl", -n);
			break;
		}
		if (busy > 0 && (ps->rx_events || ps->tx_events)) {
			/* Spin on the backend before paying for a wakeup. */
			unsigned long long end = now_us() + busy;

			while (!(n = epoll_wait(ps->epfd, ev, 3, 0)) &&
			       now_us() < end &&
			       !__atomic_load_n(&dev->stop, __ATOMIC_ACQUIRE))
				;
		}
		if (!n)
			n = epoll_wait(ps->epfd, ev, 3, timeout);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			poller_failed(dev, "epoll_wait", errno);
			break;
		}
		for (i = 0; i < n; i++) {
			if (ev[i].data.u32 == EP_RX && (ev[i].events & EPOLLIN))
				STAT_ADD(dev, poller_rx_wakeups, 1);
			if (ev[i].data.u32 == EP_EVENTFD)
				drain_eventfd(dev);
			/* Hung up with nothing to read: stop polling it. */
			else if (ev[i].data.u32 == EP_RX &&
				 (ev[i].events & (EPOLLHUP | EPOLLERR)) &&
				 !(ev[i].events & EPOLLIN))
				dev->be_dead = 1;
		}
	}
}

/* ---- receiving on a sleeping syscall's thread (serve.h) ---------------- */

static int serve_rx(void *arg)
{
	struct lkl_netdev *dev = arg;

	STAT_ADD(dev, rx_direct, 1);
	while (poll_work(dev))
		;
	/* No room in the ring, or no backend: the poller waits for that. */
	return !dev->rx_waiting && !dev->be_dead;
}

/*
 * A serving thread busy polls (on 1): while it is not asleep in its
 * epoll, a frame would wake the poller, whose exclusive entry comes next,
 * only for the two to race for it.  So the poller stops waiting for
 * frames, and keeps off them for QUIET_GRACE_US after the thread went
 * back to its task (on 0): the thread usually comes back within that and
 * finds what came meanwhile, and no epoll change is made per transaction.
 * The poller takes over again when the grace is over with no thread
 * serving (poller_quiet_check), or at once (on -1) if the thread stopped
 * serving because the device needs the poller.
 */
static void serve_quiet(void *arg, int on)
{
	struct lkl_netdev *dev = arg;
	int change;

	pthread_mutex_lock(&dev->ps.lock);
	if (on) {
		change = dev->ps.rx_quiet != (on > 0);
		dev->ps.rx_quiet = on > 0;
	} else {
		change = 0;	/* aside a while longer */
		dev->ps.quiet_until_us = now_us() + QUIET_GRACE_US;
	}
	pthread_mutex_unlock(&dev->ps.lock);
	if (!change)
		return;
	/*
	 * Aside: its RX entry goes now (the poller cannot be woken for
	 * frames any more), and the poller must learn that it now waits
	 * with a timeout, to take receive back after the grace.  Back (-1):
	 * it waits for frames again.  Only on a change: not per transaction.
	 */
	if (on > 0)
		poll_set_update(dev, &dev->ps);
	wake_poller(dev);
}

/*
 * The poller, standing aside: take receive back once the grace after
 * the last busy poll is over and no thread serves, or busy polling was
 * turned off.  Returns the epoll_wait timeout: -1 when it is not aside.
 */
static int poller_quiet_check(struct lkl_netdev *dev)
{
	struct poll_set *ps = &dev->ps;
	int timeout = -1;

	pthread_mutex_lock(&ps->lock);
	if (ps->rx_quiet) {
		if (__atomic_load_n(&dev->server.spin_max_us, __ATOMIC_RELAXED) &&
		    (__atomic_load_n(&dev->server.busy, __ATOMIC_ACQUIRE) ||
		     now_us() < ps->quiet_until_us))
			timeout = (QUIET_GRACE_US + 999) / 1000;
		else
			ps->rx_quiet = 0;
	}
	pthread_mutex_unlock(&ps->lock);
	return timeout;
}

/* The serving epoll: made before the poller's, so its entry comes first. */
static int server_init(struct lkl_netdev *dev)
{
	struct epoll_event wake = { .events = EPOLLIN,
				    .data.u32 = LKL_SERVE_WAKE };
	struct epoll_event rx = { .events = EPOLLIN | EPOLLEXCLUSIVE,
				  .data.u32 = LKL_SERVE_WORK };
	struct lkl_host_server *srv = &dev->server;

	srv->serve = serve_rx;
	srv->quiet = serve_quiet;
	srv->arg = dev;
	srv->spin_max_us = dev->busy_poll_us;
	srv->epfd = epoll_create1(EPOLL_CLOEXEC);
	srv->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (srv->epfd < 0 || srv->wake_fd < 0 ||
	    epoll_ctl(srv->epfd, EPOLL_CTL_ADD, srv->wake_fd, &wake) < 0 ||
	    epoll_ctl(srv->epfd, EPOLL_CTL_ADD, dev->be->rx_fd, &rx) < 0)
		return -errno;
	return 0;
}

/* ---- virtio device callbacks ------------------------------------------ */

static void net_config_read(struct virtio_dev *vdev, int offset, void *value,
			    int size)
{
	struct lkl_netdev *dev = to_net(vdev);

	if (offset >= 0 && offset + size <= (int)sizeof(dev->config))
		memcpy(value, (uint8_t *)&dev->config + offset, size);
}

static void net_notify(struct virtio_dev *vdev, int qidx)
{
	struct lkl_netdev *dev = to_net(vdev);

	STAT_ADD(dev, kicks, 1);
	if (qidx == TXQ)
		tx_kick(dev);
	else if (__atomic_load_n(&dev->rx_waiting, __ATOMIC_SEQ_CST))
		wake_poller(dev);	/* the buffers it waits for */
}

static int net_check_features(struct virtio_dev *vdev)
{
	struct lkl_netdev *dev = to_net(vdev);

	if (!dev->be->ops->set_offload)
		return 0;
	return dev->be->ops->set_offload(dev->be, negotiated(dev));
}

static void net_start(struct virtio_dev *vdev)
{
	wake_poller(to_net(vdev));
}

static void net_reset(struct virtio_dev *vdev)
{
	struct lkl_netdev *dev = to_net(vdev);

	__atomic_store_n(&dev->tx_blocked, 0, __ATOMIC_RELEASE);
	dev->rx_waiting = 0;
	wake_poller(dev);
}

static const struct virtio_dev_ops net_ops = {
	.config_read = net_config_read,
	.notify = net_notify,
	.check_features = net_check_features,
	.start = net_start,
	.reset = net_reset,
};

/* ---- public API -------------------------------------------------------- */

/* The spec's dependencies (5.1.3.1): TSO needs the matching checksum. */
static uint64_t offload_fixup(uint64_t o)
{
	if (!(o & LKL_NETDEV_CSUM))
		o &= ~(LKL_NETDEV_HOST_TSO4 | LKL_NETDEV_HOST_TSO6);
	if (!(o & LKL_NETDEV_GUEST_CSUM))
		o &= ~(LKL_NETDEV_GUEST_TSO4 | LKL_NETDEV_GUEST_TSO6);
	return o;
}

static void net_destroy(struct lkl_netdev *dev)
{
	if (dev->poller) {
		__atomic_store_n(&dev->stop, 1, __ATOMIC_RELEASE);
		wake_poller(dev);
		lkl_host_ops.thread_join(dev->poller);
	}
	if (dev->serving)
		lkl_host_set_server(NULL);
	virtio_dev_unregister(&dev->vdev);
	if (dev->evfd >= 0)
		close(dev->evfd);
	if (dev->poll_epfd >= 0)
		close(dev->poll_epfd);
	if (dev->server.epfd >= 0)
		close(dev->server.epfd);
	if (dev->server.wake_fd >= 0)
		close(dev->server.wake_fd);
	if (dev->be) {
		dev->be->in_use = 0;
		dev->be->ops->free(dev->be);
	}
	free(dev->bounce);
	free(dev->segment);
	free(dev);
}

int lkl_netdev_create(struct lkl_netdev_backend *be,
		      const struct lkl_netdev_config *cfg,
		      struct lkl_netdev **out)
{
	struct lkl_netdev *dev;
	int qsize = cfg->queue_size ? cfg->queue_size : DEFAULT_QUEUE;
	int err;

	if (!be || be->in_use)
		return -EINVAL;
	if (qsize < 2 || qsize > MAX_QUEUE || (qsize & (qsize - 1)) ||
	    cfg->mtu < 0 || (cfg->mtu && (cfg->mtu < 68 || cfg->mtu > 65535))) {
		lkl_netdev_backend_free(be);
		return -EINVAL;
	}
	dev = calloc(1, sizeof(*dev));
	if (!dev) {
		lkl_netdev_backend_free(be);
		return -ENOMEM;
	}
	dev->be = be;
	be->in_use = 1;
	dev->evfd = -1;
	dev->poll_epfd = -1;
	pthread_mutex_init(&dev->ps.lock, NULL);
	dev->server.epfd = -1;
	dev->server.wake_fd = -1;
	dev->ifindex = -1;
	dev->busy_poll_us = cfg->busy_poll_us;

	dev->offered = offload_fixup(cfg->offload & LKL_NETDEV_OFFLOAD_MASK &
				     be->offloads);
	dev->vdev.device_id = LKL_VIRTIO_ID_NET;
	dev->vdev.device_features = dev->offered |
		1ULL << LKL_VIRTIO_F_VERSION_1 |
		1ULL << LKL_VIRTIO_RING_F_EVENT_IDX |
		1ULL << LKL_VIRTIO_RING_F_INDIRECT_DESC |
		1ULL << LKL_VIRTIO_NET_F_STATUS;
	dev->config.status = LKL_VIRTIO_NET_S_LINK_UP;
	if (cfg->has_mac) {
		dev->vdev.device_features |= 1ULL << LKL_VIRTIO_NET_F_MAC;
		memcpy(dev->config.mac, cfg->mac, 6);
	}
	if (cfg->mtu) {
		dev->vdev.device_features |= 1ULL << LKL_VIRTIO_NET_F_MTU;
		dev->config.mtu = cfg->mtu;
	}
	dev->vdev.ops = &net_ops;
	dev->vdev.queues = dev->queues;
	dev->vdev.nqueues = 2;
	dev->vdev.queue_num_max = qsize;

	err = -EINVAL;
	if ((dev->offered & LKL_NETDEV_MRG_RXBUF) &&
	    (dev->offered & (LKL_NETDEV_GUEST_TSO4 | LKL_NETDEV_GUEST_TSO6)) &&
	    qsize < MRG_TSO_MIN_QUEUE)
		goto fail;
	err = -ENOMEM;
	dev->bounce = malloc(VNET_HDR_LEN + GSO_FRAME_MAX);
	dev->segment = malloc(VNET_HDR_LEN + GSO_FRAME_MAX);
	if (!dev->bounce || !dev->segment)
		goto fail;
	dev->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (dev->evfd < 0) {
		err = -errno;
		goto fail;
	}
	dev->poll_epfd = epoll_create1(EPOLL_CLOEXEC);
	dev->ps.epfd = dev->poll_epfd;
	if (dev->poll_epfd < 0 ||
	    epoll_ctl(dev->poll_epfd, EPOLL_CTL_ADD, dev->evfd,
		      &(struct epoll_event){ .events = EPOLLIN,
					     .data.u32 = EP_EVENTFD }) < 0) {
		err = -errno;
		goto fail;
	}
	if (be->ops->prepare) {
		err = be->ops->prepare(be, dev->offered);
		if (err)
			goto fail;
	}
	/* After prepare, which may reopen the backend's fd. */
	if (cfg->direct_rx) {
		err = server_init(dev);
		if (err)
			goto fail;
	}
	err = virtio_dev_register(&dev->vdev);
	if (err)
		goto fail;
	dev->poller = lkl_host_ops.thread_create(poller_main, dev);
	if (!dev->poller) {
		err = -EAGAIN;
		goto fail;
	}
	if (cfg->direct_rx) {
		lkl_host_set_server(&dev->server);
		__atomic_store_n(&dev->serving, 1, __ATOMIC_RELAXED);
	}
	*out = dev;
	return 0;

fail:
	net_destroy(dev);
	return err;
}

int netdev_set_capture(struct lkl_netdev *dev, struct lkl_capture *old,
		       struct lkl_capture *cap)
{
	int r = -EBUSY;

	pthread_mutex_lock(&dev->queues[RXQ].lock);
	pthread_mutex_lock(&dev->queues[TXQ].lock);
	if (dev->capture == old) {
		dev->capture = cap;
		r = 0;
	}
	pthread_mutex_unlock(&dev->queues[TXQ].lock);
	pthread_mutex_unlock(&dev->queues[RXQ].lock);
	return r;
}

static int cmdline_id(const struct lkl_netdev *dev)
{
	/* Apart from the ids lkl_virtio_mmio_add hands out (0, 1, ...). */
	return CMDLINE_ID_BASE + (int)((uintptr_t)dev->vdev.base >> 24);
}

int lkl_netdev_cmdline(struct lkl_netdev *dev, char *buf, size_t len)
{
	int n;

	n = snprintf(buf, len, "virtio_mmio.device=%d@0x%lx:%d:%d",
		     VIRTIO_MMIO_WINDOW, (unsigned long)dev->vdev.base,
		     dev->vdev.irq, cmdline_id(dev));
	if (n < 0 || (size_t)n >= len)
		return -ENOSPC;
	dev->in_cmdline = 1;
	return n;
}

/*
 * A device whose fragment was made is attached only if the kernel booted
 * with it: after a failed boot it is still free to attach.
 */
static int is_attached(const struct lkl_netdev *dev)
{
	return dev->attached || (dev->in_cmdline && lkl_is_running());
}

int lkl_netdev_attach(struct lkl_netdev *dev)
{
	long ret;

	if (is_attached(dev))
		return -EALREADY;
	ret = lkl_virtio_mmio_add((unsigned long)dev->vdev.base,
				  VIRTIO_MMIO_WINDOW, dev->vdev.irq);
	if (ret == 0)
		dev->attached = 1;
	return ret;
}

int lkl_netdev_ifindex(struct lkl_netdev *dev)
{
	if (dev->ifindex < 0 && is_attached(dev))
		dev->ifindex = net_find_ifindex((unsigned long)dev->vdev.base);
	return dev->ifindex;
}

uint64_t lkl_netdev_offered(const struct lkl_netdev *dev)
{
	return dev->offered;
}

uint64_t lkl_netdev_negotiated(const struct lkl_netdev *dev)
{
	return negotiated(dev);
}

uint64_t lkl_netdev_features(const struct lkl_netdev *dev)
{
	return dev->vdev.driver_features;
}

void lkl_netdev_get_stats(const struct lkl_netdev *dev,
			  struct lkl_netdev_stats *st)
{
	const uint64_t *src = (const uint64_t *)&dev->stats;
	uint64_t *dst = (uint64_t *)st;
	size_t i;

	for (i = 0; i < sizeof(*st) / sizeof(uint64_t); i++)
		dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
	st->poll_errors += __atomic_load_n(&dev->server.errors,
					   __ATOMIC_RELAXED);
	st->busy_polls += __atomic_load_n(&dev->server.spins, __ATOMIC_RELAXED);
	st->busy_poll_hits += __atomic_load_n(&dev->server.spin_hits,
					      __ATOMIC_RELAXED);
	st->busy_poll_ns += __atomic_load_n(&dev->server.spin_total_ns,
					    __ATOMIC_RELAXED);
}

void lkl_netdev_set_link(struct lkl_netdev *dev, int up)
{
	dev->config.status = up ? LKL_VIRTIO_NET_S_LINK_UP : 0;
	__atomic_fetch_add(&dev->vdev.config_gen, 1, __ATOMIC_SEQ_CST);
	if (virtio_dev_live(&dev->vdev))
		virtio_dev_interrupt(&dev->vdev, LKL_VIRTIO_MMIO_INT_CONFIG);
}

void lkl_netdev_set_busy_poll(struct lkl_netdev *dev, int us)
{
	if (us < 0)
		us = 0;
	__atomic_store_n(&dev->busy_poll_us, us, __ATOMIC_RELAXED);
	__atomic_store_n(&dev->server.spin_max_us, us, __ATOMIC_RELAXED);
	wake_poller(dev);
}

int lkl_netdev_free(struct lkl_netdev *dev)
{
	if (!dev)
		return 0;
	if (is_attached(dev) && lkl_is_running())
		return -EBUSY;
	net_destroy(dev);
	return 0;
}
