/*
 * The pipe backend: frames to and from another process, typically a
 * second kernel's pipe backend, with no privilege.  Each frame travels
 * with its 12-byte virtio-net header, so every offload crosses as is and
 * the receiving device finishes what its driver did not accept.
 *
 * On a SOCK_SEQPACKET or SOCK_DGRAM socket a message is one frame.  On
 * anything else (stream sockets, pipe(2) pairs) a frame is preceded by
 * its length (header included) as 4 little-endian bytes.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <lkl/netdev.h>

#include "net_backend.h"

#define PIPE_MAX_IOV	(2 + NET_FRAME_MAX_IOV)
/* A 64 KiB super-frame with its headers, and the vnet header. */
#define PIPE_MAX_MSG	(sizeof(vnet_hdr_t) + 65536 + 256)
#define PIPE_SOCKBUF	(4 << 20)

struct pipe_be {
	struct lkl_netdev_backend be;
	int stream;
	/* Stream mode: bytes read but not yet returned ... */
	uint8_t *in;
	size_t in_off, in_len;
	/* ... and the unsent tail of the last frame. */
	uint8_t *out;
	size_t out_off, out_len;
};

static struct pipe_be *to_pipe(struct lkl_netdev_backend *be)
{
	return (struct pipe_be *)be;
}

/* ---- message mode --------------------------------------------------------- */

static ssize_t msg_tx(struct pipe_be *p, const vnet_hdr_t *hdr,
		      const struct iovec *iov, int iovcnt)
{
	struct iovec v[PIPE_MAX_IOV];
	struct msghdr msg = { .msg_iov = v };
	ssize_t n;
	int cnt;

	cnt = iov_prepend(v, PIPE_MAX_IOV, hdr, sizeof(*hdr), iov, iovcnt);
	if (cnt < 0)
		return cnt;
	msg.msg_iovlen = cnt;
	n = sendmsg(p->be.tx_fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (n < 0)
		return -errno;
	return n - sizeof(*hdr);
}

static ssize_t msg_rx(struct pipe_be *p, vnet_hdr_t *hdr,
		      const struct iovec *iov, int iovcnt)
{
	struct iovec v[PIPE_MAX_IOV];
	struct msghdr msg = { .msg_iov = v };
	size_t room;
	ssize_t n;
	int cnt;

	cnt = iov_prepend_cut(v, PIPE_MAX_IOV, hdr, sizeof(*hdr), iov, iovcnt);
	room = iov_length(v + 1, cnt - 1);
	msg.msg_iovlen = cnt;
	n = recvmsg(p->be.rx_fd, &msg, MSG_DONTWAIT | MSG_TRUNC);
	if (n < 0)
		return -errno;
	if (n == 0)
		return -ENOTCONN;	/* the peer closed */
	if (n < (ssize_t)sizeof(*hdr))
		return -EBADMSG;	/* one bad message, not a broken pipe */
	n -= sizeof(*hdr);
	return (size_t)n > room ? -EMSGSIZE : n;
}

/* ---- stream mode ---------------------------------------------------------- */

static int flush_out(struct pipe_be *p)
{
	while (p->out_off < p->out_len) {
		ssize_t n = write(p->be.tx_fd, p->out + p->out_off,
				  p->out_len - p->out_off);

		if (n < 0)
			return -errno;
		p->out_off += n;
	}
	p->out_off = p->out_len = 0;
	return 0;
}

static ssize_t stream_tx(struct pipe_be *p, const vnet_hdr_t *hdr,
			 const struct iovec *iov, int iovcnt)
{
	struct iovec v[PIPE_MAX_IOV], rest[PIPE_MAX_IOV];
	size_t flen = iov_length(iov, iovcnt), total;
	uint8_t len_le[4];
	uint32_t msg_len = sizeof(*hdr) + flen;
	ssize_t n;
	int i, err;

	err = flush_out(p);
	if (err)
		return err;
	if (msg_len > PIPE_MAX_MSG || iovcnt + 2 > PIPE_MAX_IOV)
		return -EMSGSIZE;

	for (i = 0; i < 4; i++)
		len_le[i] = msg_len >> (8 * i);
	v[0].iov_base = len_le;
	v[0].iov_len = 4;
	v[1].iov_base = (void *)hdr;
	v[1].iov_len = sizeof(*hdr);
	memcpy(v + 2, iov, iovcnt * sizeof(*iov));
	total = 4 + msg_len;

	n = writev(p->be.tx_fd, v, iovcnt + 2);
	if (n < 0)
		return -errno;
	/* Keep the rest (flushed by pipe_flush): never half a frame sent. */
	if ((size_t)n < total) {
		int cnt = iov_skip(rest, v, iovcnt + 2, n);

		p->out_off = 0;
		p->out_len = iov_to_buf(p->out, total - n, rest, cnt);
	}
	return flen;
}

static ssize_t stream_rx(struct pipe_be *p, vnet_hdr_t *hdr,
			 const struct iovec *iov, int iovcnt)
{
	const size_t cap = 2 * (4 + PIPE_MAX_MSG);

	for (;;) {
		uint8_t *m = p->in + p->in_off;
		size_t have = p->in_len - p->in_off;
		ssize_t n;

		if (have >= 4) {
			uint32_t len = m[0] | m[1] << 8 | m[2] << 16 |
				       (uint32_t)m[3] << 24;
			size_t flen;

			/* A stream that lost its framing cannot recover. */
			if (len < sizeof(*hdr) || len > PIPE_MAX_MSG)
				return -EPROTO;
			if (have >= 4 + len) {
				flen = len - sizeof(*hdr);
				memcpy(hdr, m + 4, sizeof(*hdr));
				p->in_off += 4 + len;
				if (flen > iov_length(iov, iovcnt))
					return -EMSGSIZE;
				buf_to_iov(iov, iovcnt, m + 4 + sizeof(*hdr),
					   flen);
				return flen;
			}
		}
		/* Make room at the end for at least one whole message. */
		if (p->in_off && cap - p->in_len < 4 + PIPE_MAX_MSG) {
			memmove(p->in, m, have);
			p->in_off = 0;
			p->in_len = have;
		}
		n = read(p->be.rx_fd, p->in + p->in_len, cap - p->in_len);
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ENOTCONN;
		p->in_len += n;
	}
}

/* ---- ops -------------------------------------------------------------------- */

static ssize_t pipe_tx(struct lkl_netdev_backend *be, const vnet_hdr_t *hdr,
		       const struct iovec *iov, int iovcnt)
{
	struct pipe_be *p = to_pipe(be);

	return p->stream ? stream_tx(p, hdr, iov, iovcnt) :
			   msg_tx(p, hdr, iov, iovcnt);
}

static ssize_t pipe_rx(struct lkl_netdev_backend *be, vnet_hdr_t *hdr,
		       const struct iovec *iov, int iovcnt)
{
	struct pipe_be *p = to_pipe(be);

	return p->stream ? stream_rx(p, hdr, iov, iovcnt) :
			   msg_rx(p, hdr, iov, iovcnt);
}

static int pipe_flush(struct lkl_netdev_backend *be)
{
	struct pipe_be *p = to_pipe(be);

	return p->stream ? flush_out(p) : 0;
}

static void pipe_free(struct lkl_netdev_backend *be)
{
	struct pipe_be *p = to_pipe(be);

	close(p->be.rx_fd);
	if (p->be.tx_fd != p->be.rx_fd)
		close(p->be.tx_fd);
	free(p->in);
	free(p->out);
	free(p);
}

static const struct net_backend_ops pipe_ops = {
	.tx = pipe_tx,
	.flush = pipe_flush,
	.rx = pipe_rx,
	.free = pipe_free,
};

static int is_message_socket(int fd)
{
	int type;
	socklen_t len = sizeof(type);

	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0)
		return 0;
	return type == SOCK_SEQPACKET || type == SOCK_DGRAM;
}

static void set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl >= 0)
		fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

int lkl_netdev_pipe_create(int rx_fd, int tx_fd,
			   struct lkl_netdev_backend **be)
{
	int buf = PIPE_SOCKBUF;
	struct pipe_be *p;

	if (rx_fd < 0 || tx_fd < 0 || fcntl(rx_fd, F_GETFD) < 0 ||
	    fcntl(tx_fd, F_GETFD) < 0)
		return -EBADF;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->stream = !(is_message_socket(rx_fd) && is_message_socket(tx_fd));
	if (p->stream) {
		p->in = malloc(2 * (4 + PIPE_MAX_MSG));
		p->out = malloc(4 + PIPE_MAX_MSG);
		if (!p->in || !p->out) {
			free(p->in);
			free(p->out);
			free(p);
			return -ENOMEM;
		}
	}
	set_nonblock(rx_fd);
	set_nonblock(tx_fd);
	/* Room for a burst of super-frames; capped by wmem_max unprivileged. */
	if (setsockopt(tx_fd, SOL_SOCKET, SO_SNDBUFFORCE, &buf, sizeof(buf)) < 0)
		setsockopt(tx_fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
	p->be.ops = &pipe_ops;
	p->be.offloads = LKL_NETDEV_OFFLOAD_MASK;
	p->be.rx_fd = rx_fd;
	p->be.tx_fd = tx_fd;
	*be = &p->be;
	return 0;
}

int lkl_netdev_pipe_pair(int fds[2])
{
	return socketpair(AF_UNIX, SOCK_SEQPACKET, 0, fds) < 0 ? -errno : 0;
}
