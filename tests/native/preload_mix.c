/*
 * Under the preload library: host fds (a pipe) and kernel sockets in one
 * epoll set, in poll and in select, with the program's own, unmodified
 * calls; and the fd API around them (dup, fcntl, ioctl, sendfile,
 * ESPIPE, EOPNOTSUPP, a blocking recv on another thread).
 *
 * Prints "listening PORT" and waits for a line on stdin, so the test can
 * check the host's stack does not have that port.
 */
#define _GNU_SOURCE
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/sendfile.h>
#include <sys/stat.h>

#include "preload_util.h"

static int epoll_ready(int ep, int timeout_ms, int *fds, int max)
{
	struct epoll_event ev[8];
	int n = epoll_wait(ep, ev, 8, timeout_ms), i;

	CHECK(n >= 0, "epoll_wait");
	for (i = 0; i < n && i < max; i++)
		fds[i] = ev[i].data.fd;
	return n;
}

/* Wait (bounded) until fd polls with events. */
static void wait_poll(int fd, short events)
{
	struct pollfd p = { .fd = fd, .events = events };

	CHECK(poll(&p, 1, 5000) == 1 && (p.revents & events), "poll %d", fd);
}

static void test_epoll(int c, int s, int pipefd[2])
{
	struct epoll_event ev = { .events = EPOLLIN };
	int ep = epoll_create1(EPOLL_CLOEXEC), fds[8], n;
	char buf[64];

	CHECK(ep >= 0, "epoll_create1");
	ev.data.fd = s;
	CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev) == 0, "add socket");
	ev.data.fd = pipefd[0];
	CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, pipefd[0], &ev) == 0, "add pipe");
	CHECK(epoll_ready(ep, 0, fds, 8) == 0, "nothing ready yet");

	CHECK(write(pipefd[1], "p", 1) == 1, "pipe write");
	n = epoll_ready(ep, 5000, fds, 8);
	CHECK(n == 1 && fds[0] == pipefd[0], "only the pipe: %d", n);
	CHECK(read(pipefd[0], buf, 1) == 1, "pipe read");

	CHECK(send(c, "hello", 5, 0) == 5, "send");
	n = epoll_ready(ep, 5000, fds, 8);
	CHECK(n == 1 && fds[0] == s, "only the socket: %d", n);
	CHECK(recv(s, buf, sizeof(buf), 0) == 5, "recv");
	CHECK(epoll_ready(ep, 0, fds, 8) == 0, "drained: nothing ready");

	/* Both at once. */
	CHECK(write(pipefd[1], "p", 1) == 1 && send(c, "x", 1, 0) == 1, "both");
	{
		double end = now_s() + 5;
		int seen = 0;

		while (seen != 3 && now_s() < end) {
			n = epoll_ready(ep, 1000, fds, 8);
			for (int i = 0; i < n; i++)
				seen |= fds[i] == s ? 1 : fds[i] == pipefd[0] ? 2 : 0;
		}
		CHECK(seen == 3, "both ready: %d", seen);
	}
	CHECK(read(pipefd[0], buf, 1) == 1 && recv(s, buf, 1, 0) == 1, "drain");

	/* Edge triggered: one event per arrival. */
	ev.events = EPOLLIN | EPOLLET;
	ev.data.fd = s;
	CHECK(epoll_ctl(ep, EPOLL_CTL_MOD, s, &ev) == 0, "mod ET");
	CHECK(send(c, "ab", 2, 0) == 2, "send");
	CHECK(epoll_ready(ep, 5000, fds, 8) == 1 && fds[0] == s, "ET event");
	CHECK(epoll_ready(ep, 0, fds, 8) == 0, "ET: no second event");
	CHECK(recv(s, buf, sizeof(buf), 0) == 2, "recv");
	CHECK(send(c, "c", 1, 0) == 1, "send");
	CHECK(epoll_ready(ep, 5000, fds, 8) == 1 && fds[0] == s, "new edge");
	CHECK(recv(s, buf, sizeof(buf), 0) == 1, "recv");
	close(ep);
	PASS("epoll");
}

static void test_poll_and_writability(int c, int s, int pipefd[2])
{
	struct pollfd p[3] = {
		{ .fd = s, .events = POLLIN },
		{ .fd = pipefd[0], .events = POLLIN },
		{ .fd = c, .events = POLLOUT },
	};
	static char big[65536];
	long sent = 0, got = 0;
	ssize_t n;
	int flags;

	CHECK(poll(p, 3, 0) == 1 && p[2].revents == POLLOUT, "only c writable");
	CHECK(send(c, "z", 1, 0) == 1, "send");
	CHECK(poll(p, 2, 5000) == 1 && p[0].revents == POLLIN, "s readable");
	CHECK(recv(s, big, 1, 0) == 1, "recv");

	/* Fill the kernel's buffers: c stops being writable on the host. */
	flags = fcntl(c, F_GETFL);
	CHECK(flags >= 0 && fcntl(c, F_SETFL, flags | O_NONBLOCK) == 0, "nb");
	CHECK((fcntl(c, F_GETFL) & O_NONBLOCK) != 0, "O_NONBLOCK kept");
	for (;;) {
		n = send(c, big, sizeof(big), 0);
		if (n < 0) {
			CHECK(errno == EAGAIN, "send until EAGAIN");
			break;
		}
		sent += n;
		CHECK(sent < (1L << 30), "send never blocks");
	}
	CHECK(poll(&p[2], 1, 0) == 0, "c not writable when full");
	while (got < sent) {
		wait_poll(s, POLLIN);
		n = recv(s, big, sizeof(big), 0);
		CHECK(n > 0, "recv");
		got += n;
	}
	wait_poll(c, POLLOUT);
	CHECK(fcntl(c, F_SETFL, flags) == 0, "blocking again");
	printf("filled %ld bytes\n", sent);
	PASS("poll");
}

static void test_select(int c, int s, int pipefd[2])
{
	fd_set r;
	struct timeval tv = { 0, 0 };
	int maxfd = (s > pipefd[0] ? s : pipefd[0]) + 1;
	char ch;

	FD_ZERO(&r);
	FD_SET(s, &r);
	FD_SET(pipefd[0], &r);
	CHECK(select(maxfd, &r, NULL, NULL, &tv) == 0, "nothing ready");
	CHECK(send(c, "s", 1, 0) == 1, "send");
	FD_ZERO(&r);
	FD_SET(s, &r);
	FD_SET(pipefd[0], &r);
	tv.tv_sec = 5;
	CHECK(select(maxfd, &r, NULL, NULL, &tv) == 1 && FD_ISSET(s, &r),
	      "socket readable");
	CHECK(recv(s, &ch, 1, 0) == 1, "recv");
	CHECK(write(pipefd[1], "p", 1) == 1, "pipe");
	FD_ZERO(&r);
	FD_SET(s, &r);
	FD_SET(pipefd[0], &r);
	tv.tv_sec = 5;
	CHECK(select(maxfd, &r, NULL, NULL, &tv) == 1 &&
	      FD_ISSET(pipefd[0], &r), "pipe readable");
	CHECK(read(pipefd[0], &ch, 1) == 1, "read");
	PASS("select");
}

static void test_fd_api(int lfd, int port, int c, int s)
{
	char buf[256], path[] = "/tmp/preload_mix_XXXXXX";
	int d, d2, avail = -1, one = 1, sv[2], tmp;
	off_t off = 0;
	long total;

	/* dup: the copy is the same kernel socket, after the original's close. */
	d = dup(s);
	CHECK(d >= 0 && d != s, "dup");
	CHECK(send(c, "dup", 3, 0) == 3, "send");
	wait_poll(d, POLLIN);
	CHECK(ioctl(d, FIONREAD, &avail) == 0 && avail == 3, "FIONREAD %d",
	      avail);
	CHECK(read(d, buf, sizeof(buf)) == 3, "read via dup");
	d2 = fcntl(d, F_DUPFD_CLOEXEC, 100);
	CHECK(d2 >= 100, "F_DUPFD_CLOEXEC");
	CHECK(fcntl(d2, F_GETFD) == FD_CLOEXEC, "cloexec on the host fd");
	close(d);
	CHECK(write(d2, "back", 4) == 4, "write via F_DUPFD copy");
	wait_poll(c, POLLIN);
	CHECK(recv(c, buf, sizeof(buf), 0) == 4, "recv");
	/* dup2 over a host fd makes it the socket; over it again, a host fd. */
	tmp = open("/dev/null", O_RDONLY);
	CHECK(tmp >= 0 && dup2(d2, tmp) == tmp, "dup2");
	CHECK(send(tmp, "2", 1, 0) == 1, "send via dup2 copy");
	CHECK(dup2(0, tmp) == tmp, "dup2 back");
	CHECK(send(tmp, "x", 1, 0) < 0 && errno == ENOTSOCK,
	      "host fd again: ENOTSOCK");
	close(tmp);
	close(d2);
	wait_poll(c, POLLIN);
	CHECK(recv(c, buf, sizeof(buf), 0) == 1, "recv");

	/* FIONBIO sets the kernel's O_NONBLOCK. */
	CHECK(ioctl(s, FIONBIO, &one) == 0, "FIONBIO");
	CHECK(recv(s, buf, 1, 0) < 0 && errno == EAGAIN, "EAGAIN");
	one = 0;
	CHECK(ioctl(s, FIONBIO, &one) == 0, "FIONBIO off");

	CHECK(pread(s, buf, 1, 0) < 0 && errno == ESPIPE, "pread: ESPIPE");
	CHECK(lseek(s, 0, SEEK_SET) < 0 && errno == ESPIPE, "lseek: ESPIPE");
	CHECK(socketpair(AF_INET, SOCK_STREAM, 0, sv) < 0 &&
	      errno == EOPNOTSUPP, "socketpair(AF_INET): EOPNOTSUPP");
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0, "AF_UNIX pair");
	CHECK(write(sv[0], "u", 1) == 1 && read(sv[1], buf, 1) == 1,
	      "AF_UNIX stays on the host");
	close(sv[0]);
	close(sv[1]);

	/* sendfile from a host file to a kernel socket. */
	tmp = mkstemp(path);
	CHECK(tmp >= 0, "mkstemp");
	unlink(path);
	for (int i = 0; i < 1000; i++)
		CHECK(write(tmp, "0123456789", 10) == 10, "file");
	total = 0;
	while (total < 10000) {
		ssize_t n = sendfile(c, tmp, &off, 10000 - total);

		CHECK(n > 0, "sendfile");
		total += n;
	}
	CHECK(off == 10000, "offset advanced: %ld", (long)off);
	for (total = 0; total < 10000;) {
		ssize_t n = recv(s, buf, sizeof(buf), 0);

		CHECK(n > 0 && !memcmp(buf, "0123456789" + (total % 10),
				       1) , "sendfile bytes");
		total += n;
	}
	close(tmp);
	(void)lfd;
	(void)port;
	PASS("fd_api");
}

/* A refused non-blocking connect: POLLOUT, then SO_ERROR, as on Linux. */
static void test_refused_connect(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a), len = sizeof(int);
	int holder, fd, err = 0;

	/*
	 * A port bound but not listening: connects are refused, and no
	 * socket can take it as its own source port (no self-connect).
	 */
	holder = socket(AF_INET, SOCK_STREAM, 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK(holder >= 0 && bind(holder, (struct sockaddr *)&a, sizeof(a)) == 0,
	      "bind");
	CHECK(getsockname(holder, (struct sockaddr *)&a, &alen) == 0, "name");
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	CHECK(fd >= 0, "socket");
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0 &&
	    errno == ECONNREFUSED) {
		err = ECONNREFUSED;	/* refused at once: nothing pending */
	} else {
		CHECK(errno == EINPROGRESS, "connect in progress");
		wait_poll(fd, POLLOUT);
		CHECK(getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0,
		      "SO_ERROR");
	}
	CHECK(err == ECONNREFUSED, "refused: %d", err);
	close(fd);
	close(holder);
	PASS("refused_connect");
}

static volatile sig_atomic_t sigpipes;

static void on_sigpipe(int sig)
{
	(void)sig;
	sigpipes++;
}

/* EPIPE raises the host's SIGPIPE, as on Linux; MSG_NOSIGNAL does not. */
static void test_sigpipe(int lfd, int port)
{
	struct sigaction sa = { .sa_handler = on_sigpipe };
	char buf[1024] = { 0 };
	int c, s, i, got = 0;

	sigaction(SIGPIPE, &sa, NULL);
	tcp_pair(lfd, port, &c, &s);
	CHECK(shutdown(c, SHUT_WR) == 0, "shutdown");
	for (i = 0; i < 100 && !got; i++)
		if (send(c, buf, sizeof(buf), 0) < 0) {
			CHECK(errno == EPIPE, "EPIPE after SHUT_WR");
			got = 1;
		}
	CHECK(got && sigpipes == 1, "one SIGPIPE: %d", (int)sigpipes);
	CHECK(send(c, buf, 1, MSG_NOSIGNAL) < 0 && errno == EPIPE, "EPIPE");
	CHECK(sigpipes == 1, "no SIGPIPE with MSG_NOSIGNAL");
	CHECK(write(c, buf, 1) < 0 && errno == EPIPE && sigpipes == 2,
	      "write: EPIPE and SIGPIPE");
	close(c);
	close(s);
	signal(SIGPIPE, SIG_DFL);
	PASS("sigpipe");
}

struct reader {
	int fd;
	char buf[16];
	ssize_t n;
};

static void *blocking_reader(void *arg)
{
	struct reader *r = arg;

	r->n = recv(r->fd, r->buf, sizeof(r->buf), MSG_WAITALL);
	return NULL;
}

static void test_threads(int c, int s)
{
	struct reader r = { .fd = s };
	pthread_t t;

	CHECK(pthread_create(&t, NULL, blocking_reader, &r) == 0, "thread");
	CHECK(send(c, "0123456789abcdef", 16, 0) == 16, "send");
	pthread_join(t, NULL);
	CHECK(r.n == 16 && !memcmp(r.buf, "0123456789abcdef", 16),
	      "blocking recv on another thread: %zd", r.n);
	PASS("threads");
}

int main(void)
{
	int lfd, port, c, s, pipefd[2];
	char line[16];
	struct stat st;

	setvbuf(stdout, NULL, _IOLBF, 0);
	lfd = tcp_listener(&port);
	printf("listening %d\n", port);
	CHECK(fgets(line, sizeof(line), stdin) != NULL, "go line");
	tcp_pair(lfd, port, &c, &s);
	/* Kernel sockets are real host fds: fstat works, numbers are unique. */
	CHECK(fstat(s, &st) == 0 && S_ISSOCK(st.st_mode), "fstat");
	CHECK(pipe(pipefd) == 0, "pipe");
	CHECK(c != s && s != pipefd[0] && c != pipefd[1], "distinct fds");

	test_epoll(c, s, pipefd);
	test_poll_and_writability(c, s, pipefd);
	test_select(c, s, pipefd);
	test_fd_api(lfd, port, c, s);
	test_threads(c, s);
	test_refused_connect();
	test_sigpipe(lfd, port);
	close(c);
	{
		char ch;

		wait_poll(s, POLLIN);
		CHECK(recv(s, &ch, 1, 0) == 0, "EOF after the peer's close");
	}
	close(s);
	close(lfd);
	printf("done\n");
	return 0;
}
