/*
 * TCP_RR with netperf's semantics: one connection, one byte each way,
 * one transaction outstanding, no think time.  Reports transactions per
 * second, the round trip (mean, p50, p99, in µs) and what a transaction
 * costs (CPU µs of the process, each of its threads by name, context
 * switches, and the lkl device's counters) as one JSON object.
 *
 *   tcp_rr server ADDR PORT [--cpu C]          host-stack responder
 *   tcp_rr host ADDR PORT [opts]               host-stack requester
 *   tcp_rr lkl ADDR PORT --tap IF --ip CIDR [lkl opts] [opts]
 *                                              requester on lkl over TAP
 *   tcp_rr lkl-pair ADDR PORT --ip CIDR --peer-ip CIDR [lkl opts] [opts]
 *           [--peer-cpu C]
 *           two kernels over the pipe backend (lkl_netdev_pipe_pair): the
 *           responder (ADDR, --ip) in a child process, the requester
 *           (--peer-ip) here; no host TCP at all
 *   lkl opts: [--mode shadow|direct] [--pin CPU] [--busy-poll US]
 *             [--nohz-off] [--direct-rx]
 *   opts: --count N (default 100000), --seconds S (default 5): whichever
 *         ends first; 1000 warm-up transactions are not counted.
 *         --cpu C: confine the process (every thread) to host CPU C.
 *
 * A responder prints one JSON line too when the requester closes: its
 * echoes and its CPU per echo, counted from accept to close.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <lkl/lkl.h>
#include <lkl/netdev.h>

/* The tests' helpers: boot, syscall shorthands, interface set-up. */
#include "../../tests/native/net_util.h"

#define WARMUP 1000
#define MAX_THREADS 64

struct opts {
	const char *tap, *cidr, *peer_cidr, *mode;
	int pin, nohz_off, cpu, peer_cpu;
	struct lkl_netdev_config cfg;
	long count;
	double seconds;
};

static struct lkl_netdev *dev;

/* One transaction over a connected socket: send a byte, read it back. */
typedef int (*rr_fn)(long fd);

static int host_rr(long fd)
{
	char c = 'x';

	if (send(fd, &c, 1, 0) != 1)
		return -1;
	return recv(fd, &c, 1, 0) == 1 ? 0 : -1;
}

static int lkl_rr(long fd)
{
	char c = 'x';

	if (sys(LKL__NR_sendto, fd, (long)&c, 1, 0, 0, 0) != 1)
		return -1;
	return sys(LKL__NR_recvfrom, fd, (long)&c, 1, 0, 0, 0) == 1 ? 0 : -1;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* ---- what a transaction costs --------------------------------------------- */

struct cost {
	double cpu_s;			/* user + system, every thread */
	long nvcsw, nivcsw;
	int nthreads;
	struct { int tid; char name[32]; uint64_t run_ns; long vcs; } t[MAX_THREADS];
	struct lkl_netdev_stats st;
};

static void cost_read(struct cost *c)
{
	struct rusage ru;
	DIR *d;
	struct dirent *e;

	getrusage(RUSAGE_SELF, &ru);
	c->cpu_s = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
		   ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
	c->nvcsw = ru.ru_nvcsw;
	c->nivcsw = ru.ru_nivcsw;
	c->nthreads = 0;
	/* Per thread: schedstat's first field, time on a CPU in ns. */
	d = opendir("/proc/self/task");
	while (d && (e = readdir(d)) && c->nthreads < MAX_THREADS) {
		char path[96];
		unsigned long long ns;
		FILE *f;
		int tid = atoi(e->d_name), k = c->nthreads;

		if (tid <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%d/schedstat", tid);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fscanf(f, "%llu", &ns) != 1)
			ns = 0;
		fclose(f);
		snprintf(path, sizeof(path), "/proc/self/task/%d/comm", tid);
		f = fopen(path, "r");
		c->t[k].name[0] = 0;
		if (f) {
			if (fgets(c->t[k].name, sizeof(c->t[k].name), f))
				c->t[k].name[strcspn(c->t[k].name, "\n")] = 0;
			fclose(f);
		}
		c->t[k].tid = tid;
		c->t[k].run_ns = ns;
		c->t[k].vcs = 0;
		snprintf(path, sizeof(path), "/proc/self/task/%d/status", tid);
		f = fopen(path, "r");
		if (f) {
			char line[128];

			while (fgets(line, sizeof(line), f))
				if (sscanf(line, "voluntary_ctxt_switches: %ld",
					   &c->t[k].vcs) == 1)
					break;
			fclose(f);
		}
		c->nthreads++;
	}
	if (d)
		closedir(d);
	if (dev)
		lkl_netdev_get_stats(dev, &c->st);
}

/* ", \"cpu_us_per_tx\": ..." etc. for n transactions between a and b. */
static void cost_json(const struct cost *a, const struct cost *b, long n,
		      char *out, size_t len)
{
	char names[MAX_THREADS][32];
	double per[MAX_THREADS], vcs[MAX_THREADS];
	int nn = 0, i, j;
	size_t o;

	o = snprintf(out, len, ", \"cpu_us_per_tx\": %.2f, \"nvcsw_per_tx\": %.3f, "
		     "\"nivcsw_per_tx\": %.3f, \"thread_cpu_us_per_tx\": {",
		     (b->cpu_s - a->cpu_s) * 1e6 / n,
		     (double)(b->nvcsw - a->nvcsw) / n,
		     (double)(b->nivcsw - a->nivcsw) / n);
	/* Summed by thread name (the kernel's threads share names). */
	for (i = 0; i < b->nthreads; i++) {
		uint64_t before = 0;
		long vbefore = 0;

		for (j = 0; j < a->nthreads; j++)
			if (a->t[j].tid == b->t[i].tid) {
				before = a->t[j].run_ns;
				vbefore = a->t[j].vcs;
			}
		for (j = 0; j < nn && strcmp(names[j], b->t[i].name); j++)
			;
		if (j == nn) {
			snprintf(names[nn], sizeof(names[nn]), "%s", b->t[i].name);
			vcs[nn] = 0;
			per[nn++] = 0;
		}
		per[j] += (b->t[i].run_ns - before) / 1e3 / n;
		vcs[j] += (double)(b->t[i].vcs - vbefore) / n;
	}
	for (i = 0; i < nn && o < len; i++)
		if (per[i] >= 0.005)
			o += snprintf(out + o, len - o, "%s\"%s\": %.2f",
				      out[o - 1] == '{' ? "" : ", ", names[i], per[i]);
	if (o < len)
		o += snprintf(out + o, len - o, "}, \"thread_vcs_per_tx\": {");
	for (i = 0; i < nn && o < len; i++)
		if (vcs[i] >= 0.005)
			o += snprintf(out + o, len - o, "%s\"%s\": %.3f",
				      out[o - 1] == '{' ? "" : ", ", names[i], vcs[i]);
	if (o < len)
		o += snprintf(out + o, len - o, "}");
	if (dev && o < len) {
#define PER(f) ((double)(b->st.f - a->st.f) / n)
		o += snprintf(out + o, len - o, ", \"netdev_per_tx\": {"
			      "\"rx_packets\": %.3f, \"rx_direct\": %.3f, "
			      "\"irqs\": %.3f, \"kicks\": %.3f, "
			      "\"poller_rx_wakeups\": %.3f, \"busy_polls\": %.3f, "
			      "\"busy_poll_hits\": %.3f, \"busy_poll_us\": %.2f}",
			      PER(rx_packets), PER(rx_direct), PER(irqs), PER(kicks),
			      PER(poller_rx_wakeups), PER(busy_polls),
			      PER(busy_poll_hits), PER(busy_poll_ns) / 1e3);
#undef PER
	}
}

static void measure(const char *stack, long fd, rr_fn rr, const struct opts *o,
		    const char *extra_json)
{
	uint64_t *lat = malloc(o->count * sizeof(*lat));
	uint64_t start, deadline, sum = 0, end;
	static struct cost ca, cb;
	static char costs[2048];
	long i, n = 0, slow = 0;

	for (i = 0; i < WARMUP; i++)
		CHECK(rr(fd) == 0, "warm-up transaction %ld", i);
	cost_read(&ca);
	start = test_now_ns();
	deadline = start + (uint64_t)(o->seconds * 1e9);
	while (n < o->count) {
		uint64_t t0 = test_now_ns();

		CHECK(rr(fd) == 0, "transaction %ld", n);
		lat[n++] = test_now_ns() - t0;
		if (lat[n - 1] + t0 > deadline)
			break;
	}
	end = test_now_ns();
	cost_read(&cb);
	cost_json(&ca, &cb, n, costs, sizeof(costs));
	for (i = 0; i < n; i++)
		sum += lat[i];
	qsort(lat, n, sizeof(*lat), cmp_u64);
	/* The tail: transactions over twice the median (a tick, a preemption). */
	for (i = n - 1; i >= 0 && lat[i] > 2 * lat[n / 2]; i--)
		slow++;
	printf("{\"stack\": \"%s\", \"transactions\": %ld, \"elapsed_s\": %.3f, "
	       "\"tps\": %.0f, \"rtt_mean_us\": %.2f, \"rtt_p50_us\": %.2f, "
	       "\"rtt_p90_us\": %.2f, \"rtt_p99_us\": %.2f, \"rtt_p999_us\": %.2f, "
	       "\"over_2x_p50_pct\": %.2f%s%s}\n", stack, n,
	       (end - start) / 1e9, n / ((end - start) / 1e9), sum / 1e3 / n,
	       lat[n / 2] / 1e3, lat[n * 90 / 100] / 1e3, lat[n * 99 / 100] / 1e3,
	       lat[n * 999 / 1000] / 1e3, 100.0 * slow / n, costs, extra_json);
	fflush(stdout);
	free(lat);
}

static void confine(int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	CHECK(sched_setaffinity(0, sizeof(set), &set) == 0, "cpu %d: %m", cpu);
}

/* ---- responders -------------------------------------------------------------- */

/* The responder's line: echoes and their cost, accept to close. */
static void echo_report(const char *stack, long echoes, const struct cost *a,
			const struct cost *b)
{
	static char costs[2048];

	cost_json(a, b, echoes ? echoes : 1, costs, sizeof(costs));
	printf("{\"role\": \"server\", \"stack\": \"%s\", \"echoes\": %ld%s}\n",
	       stack, echoes, costs);
	fflush(stdout);
}

static int server(const char *addr, int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	static struct cost ca, cb;
	int one = 1, s, c;
	long echoes = 0;
	char buf[64];
	ssize_t n;

	inet_pton(AF_INET, addr, &a.sin_addr);
	s = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	CHECK(bind(s, (void *)&a, sizeof(a)) == 0, "bind %s:%d", addr, port);
	CHECK(listen(s, 1) == 0, "listen");
	printf("listening\n");
	fflush(stdout);
	c = accept(s, NULL, NULL);
	setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	cost_read(&ca);
	/* Echo until the requester closes: a single connection, as netperf. */
	while ((n = recv(c, buf, sizeof(buf), 0)) > 0) {
		if (send(c, buf, n, 0) != n)
			break;
		echoes++;
	}
	cost_read(&cb);
	echo_report("host", echoes, &ca, &cb);
	close(c);
	close(s);
	return 0;
}

static void lkl_nodelay(long fd)
{
	int one = 1;

	CHECK_OK(sys(LKL__NR_setsockopt, fd, LKL_IPPROTO_TCP, 1 /* TCP_NODELAY */,
		     (long)&one, sizeof(one)));
}

/* The pair's responder: listens, says so on ready_w, echoes. */
static void lkl_server(const char *addr, int port, int ready_w)
{
	static struct cost ca, cb;
	long lfd = net_listen(addr, port), fd, echoes = 0, n;
	char buf[64];

	CHECK(write(ready_w, "r", 1) == 1, "ready pipe: %m");
	close(ready_w);
	fd = CHECK_OK(sys(LKL__NR_accept4, lfd, 0, 0, 0));
	sys(LKL__NR_close, lfd);
	lkl_nodelay(fd);
	cost_read(&ca);
	while ((n = sys(LKL__NR_recvfrom, fd, (long)buf, sizeof(buf), 0, 0, 0)) > 0) {
		if (sys(LKL__NR_sendto, fd, (long)buf, n, 0, 0, 0) != n)
			break;
		echoes++;
	}
	cost_read(&cb);
	echo_report("lkl", echoes, &ca, &cb);
	sys(LKL__NR_close, fd);
}

/* ---- requesters -------------------------------------------------------------- */

static int host_client(const char *addr, int port, const struct opts *o)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	int one = 1, s;
	char extra[64];

	confine(o->cpu);
	s = socket(AF_INET, SOCK_STREAM, 0);
	inet_pton(AF_INET, addr, &a.sin_addr);
	CHECK(connect(s, (void *)&a, sizeof(a)) == 0, "connect %s:%d", addr, port);
	setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	snprintf(extra, sizeof(extra), ", \"cpu_set\": %d", o->cpu);
	measure("host", s, host_rr, o, extra);
	close(s);
	return 0;
}

static void quiet(const char *s, int n)
{
}

/* Boot with one device on backend be, address cidr. */
static void lkl_boot(const struct opts *o, struct lkl_netdev_backend *be,
		     const char *cidr)
{
	char cmdline[512], frag[128];

	if (o->pin >= 0)
		CHECK(lkl_host_set_pin_cpu(o->pin) == 0, "pin to %d", o->pin);
	CHECK_OK(lkl_netdev_create(be, &o->cfg, &dev));
	CHECK(lkl_netdev_cmdline(dev, frag, sizeof(frag)) > 0, "cmdline");
	snprintf(cmdline, sizeof(cmdline), "mem=64M lkl.syscall_mode=%s %s %s",
		 o->mode, o->nohz_off ? "nohz=off" : "", frag);
	lkl_host_ops.print = quiet;
	CHECK(lkl_start_kernel(&lkl_host_ops, cmdline) == 0, "boot");
	net_if_up(lkl_netdev_ifindex(dev));
	net_if_add_cidr(lkl_netdev_ifindex(dev), cidr);
}

static void lkl_halt(void)
{
	CHECK(lkl_sys_halt() == 0, "halt");
	lkl_netdev_free(dev);
	dev = NULL;
}

static void lkl_measure(const char *addr, int port, const struct opts *o,
			const char *backend)
{
	char extra[320];
	long fd;

	fd = net_connect(addr, port);
	lkl_nodelay(fd);
	snprintf(extra, sizeof(extra), ", \"backend\": \"%s\", \"mode\": \"%s\", "
		 "\"pin_cpu\": %d, \"cpu_set\": %d, \"peer_cpu\": %d, "
		 "\"busy_poll_us\": %d, \"nohz_off\": %s, \"direct_rx\": %s",
		 backend, o->mode, o->pin, o->cpu, o->peer_cpu, o->cfg.busy_poll_us,
		 o->nohz_off ? "true" : "false", o->cfg.direct_rx ? "true" : "false");
	measure("lkl", fd, lkl_rr, o, extra);
	sys(LKL__NR_close, fd);
}

static int lkl_client(const char *addr, int port, const struct opts *o)
{
	struct lkl_netdev_backend *be;

	CHECK(o->tap && o->cidr, "lkl mode needs --tap and --ip");
	confine(o->cpu);
	CHECK_OK(lkl_netdev_tap_create(o->tap, &be));
	lkl_boot(o, be, o->cidr);
	lkl_measure(addr, port, o, "tap");
	lkl_halt();
	return 0;
}

/*
 * Two kernels over the pipe backend: the responder in a child process
 * with one end of lkl_netdev_pipe_pair, the requester here with the
 * other.  Both print their lines to the same stdout.
 */
static int lkl_pair(const char *addr, int port, struct opts *o)
{
	struct lkl_netdev_backend *be;
	int fds[2], ready[2], status;
	struct opts peer = *o;
	pid_t child;
	char c;

	CHECK(o->cidr && o->peer_cidr, "lkl-pair needs --ip and --peer-ip");
	CHECK_OK(lkl_netdev_pipe_pair(fds));
	CHECK(pipe(ready) == 0, "pipe: %m");
	fflush(stdout);
	child = fork();
	CHECK(child >= 0, "fork: %m");
	if (child == 0) {
		close(fds[0]);
		close(ready[0]);
		if (o->peer_cpu >= 0) {
			confine(o->peer_cpu);
			peer.pin = peer.pin >= 0 ? o->peer_cpu : -1;
		} else {
			confine(o->cpu);
		}
		CHECK_OK(lkl_netdev_pipe_create(fds[1], fds[1], &be));
		lkl_boot(&peer, be, o->cidr);
		lkl_server(addr, port, ready[1]);
		lkl_halt();
		exit(0);
	}
	close(fds[1]);
	close(ready[1]);
	confine(o->cpu);
	CHECK_OK(lkl_netdev_pipe_create(fds[0], fds[0], &be));
	lkl_boot(o, be, o->peer_cidr);
	CHECK(read(ready[0], &c, 1) == 1, "the responder never listened");
	close(ready[0]);
	lkl_measure(addr, port, o, "pipe");
	lkl_halt();
	CHECK(waitpid(child, &status, 0) == child, "waitpid: %m");
	return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

int main(int argc, char **argv)
{
	struct opts o = {
		.mode = "shadow", .pin = -1, .cpu = -1, .peer_cpu = -1,
		.cfg = { .offload = LKL_NETDEV_NONE },
		.count = 100000, .seconds = 5,
	};
	int i;

	if (argc < 4) {
		fprintf(stderr, "usage: see the comment at the top of tcp_rr.c\n");
		return 2;
	}
	for (i = 4; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--nohz-off"))
			o.nohz_off = 1;
		else if (!strcmp(a, "--direct-rx"))
			o.cfg.direct_rx = 1;
		else if (!v)
			CHECK(0, "%s needs a value", a);
		else if (!strcmp(a, "--count"))
			o.count = atol(argv[++i]);
		else if (!strcmp(a, "--seconds"))
			o.seconds = atof(argv[++i]);
		else if (!strcmp(a, "--tap"))
			o.tap = argv[++i];
		else if (!strcmp(a, "--ip"))
			o.cidr = argv[++i];
		else if (!strcmp(a, "--peer-ip"))
			o.peer_cidr = argv[++i];
		else if (!strcmp(a, "--mode"))
			o.mode = argv[++i];
		else if (!strcmp(a, "--pin"))
			o.pin = atoi(argv[++i]);
		else if (!strcmp(a, "--cpu"))
			o.cpu = atoi(argv[++i]);
		else if (!strcmp(a, "--peer-cpu"))
			o.peer_cpu = atoi(argv[++i]);
		else if (!strcmp(a, "--busy-poll"))
			o.cfg.busy_poll_us = atoi(argv[++i]);
		else
			CHECK(0, "unknown option %s", a);
	}
	CHECK(o.count > 0 && o.seconds > 0, "--count and --seconds must be > 0");
	if (!strcmp(argv[1], "server")) {
		confine(o.cpu);
		return server(argv[2], atoi(argv[3]));
	}
	if (!strcmp(argv[1], "host"))
		return host_client(argv[2], atoi(argv[3]), &o);
	if (!strcmp(argv[1], "lkl"))
		return lkl_client(argv[2], atoi(argv[3]), &o);
	if (!strcmp(argv[1], "lkl-pair"))
		return lkl_pair(argv[2], atoi(argv[3]), &o);
	fprintf(stderr, "unknown role %s\n", argv[1]);
	return 2;
}
