/*
 * The backends' receive contract (native/host/net_backend.h), tested on
 * the backends' own code with no kernel: each is given a socket pair
 * end as its fd.  -EMSGSIZE and -EBADMSG mean the frame was consumed,
 * so the next call reads the next frame, also when the device passes
 * more buffers than the backend can take; a short header is -EBADMSG.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* The host code under test, compiled in: its functions are static. */
#if __has_include("iov.c")
#include "iov.c"
#endif
#include "net_backend.c"
#include "net_pipe.c"
#include "net_raw.c"
#include "net_tap.c"

#include "test_util.h"

#define MANY	300	/* more iov entries than any backend takes */

static uint8_t one_byte[MANY];
static struct iovec many[MANY];

static void send_frame(int fd, size_t len, int fill, int with_hdr)
{
	static uint8_t buf[2048];
	size_t hl = with_hdr ? sizeof(vnet_hdr_t) : 0;

	memset(buf, 0, hl);
	memset(buf + hl, fill, len);
	CHECK(send(fd, buf, hl + len, 0) == (ssize_t)(hl + len), "send");
}

/* A frame too long for MANY one-byte buffers, then a short one. */
static void check_too_many_buffers(const char *name,
				   struct lkl_netdev_backend *be, int peer,
				   int with_hdr)
{
	uint8_t big[2048];
	struct iovec one = { big, sizeof(big) };
	vnet_hdr_t hdr;
	ssize_t n;
	int i;

	for (i = 0; i < MANY; i++)
		many[i] = (struct iovec){ one_byte + i, 1 };
	send_frame(peer, 1000, 'a', with_hdr);
	send_frame(peer, 50, 'b', with_hdr);
	n = be->ops->rx(be, &hdr, many, MANY);
	CHECK(n == -EMSGSIZE, "%s: %d buffers for 1000 bytes: %zd", name, MANY, n);
	n = be->ops->rx(be, &hdr, &one, 1);
	CHECK(n == 50 && big[0] == 'b', "%s: after -EMSGSIZE the next read "
	      "got %zd bytes of '%c', not the next frame", name, n, big[0]);
	n = be->ops->rx(be, &hdr, &one, 1);
	CHECK(n == -EAGAIN, "%s: then nothing: %zd", name, n);
}

static void check_short_header(const char *name, struct lkl_netdev_backend *be,
			       int peer)
{
	uint8_t big[2048];
	struct iovec one = { big, sizeof(big) };
	vnet_hdr_t hdr;
	ssize_t n;

	CHECK(send(peer, "short", 5, 0) == 5, "send");
	n = be->ops->rx(be, &hdr, &one, 1);
	CHECK(n == -EBADMSG, "%s: a 5-byte message: %zd", name, n);
	n = be->ops->rx(be, &hdr, &one, 1);
	CHECK(n == -EAGAIN, "%s: consumed: %zd", name, n);
}

static void pair(int fds[2])
{
	CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0, fds) == 0,
	      "socketpair");
}

int main(void)
{
	struct lkl_netdev_backend *be;
	struct tap tap;
	struct raw raw;
	int fds[2];

	setvbuf(stdout, NULL, _IONBF, 0);

	pair(fds);
	CHECK(lkl_netdev_pipe_create(fds[0], fds[0], &be) == 0, "pipe backend");
	check_too_many_buffers("pipe", be, fds[1], 1);
	check_short_header("pipe", be, fds[1]);
	be->ops->free(be);
	close(fds[1]);
	PASS("pipe backend");

	/* A TAP fd is a message fd: a socket stands in for /dev/net/tun. */
	pair(fds);
	memset(&tap, 0, sizeof(tap));
	tap.fd = tap.be.rx_fd = tap.be.tx_fd = fds[0];
	tap.vnet = 1;
	tap.be.ops = &tap_ops;
	check_too_many_buffers("tap", &tap.be, fds[1], 1);
	check_short_header("tap", &tap.be, fds[1]);
	tap.vnet = 0;
	check_too_many_buffers("tap without headers", &tap.be, fds[1], 0);
	close(fds[0]);
	close(fds[1]);
	PASS("tap backend");

	pair(fds);
	memset(&raw, 0, sizeof(raw));
	raw.fd = raw.be.rx_fd = raw.be.tx_fd = fds[0];
	raw.hdr_len = sizeof(vnet_hdr_t);
	raw.be.ops = &raw_ops;
	check_too_many_buffers("raw", &raw.be, fds[1], 1);
	check_short_header("raw", &raw.be, fds[1]);
	close(fds[0]);
	close(fds[1]);
	PASS("raw backend");
	return 0;
}
