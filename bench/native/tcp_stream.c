/*
 * TCP_STREAM with netperf's semantics: one connection, the sender calls
 * send() with a fixed message size for a time (or byte) bound, the
 * receiver reads until EOF.  Throughput is what the receiver got over
 * the time from its first byte to EOF.  Each role prints one JSON object
 * with bytes, seconds, Gbit/s, the process's CPU seconds (getrusage over
 * the transfer), retransmits and the kernel's SNMP counter deltas; the
 * lkl roles add the device's counters and the average frame sizes that
 * show whether large segments travelled.
 *
 *   tcp_stream host-sink ADDR PORT [opts]          host-stack receiver
 *   tcp_stream host-send ADDR PORT [opts]          host-stack sender
 *   tcp_stream lkl-sink  ADDR PORT BACKEND --ip CIDR [lkl opts] [opts]
 *   tcp_stream lkl-send  ADDR PORT BACKEND --ip CIDR [lkl opts] [opts]
 *   tcp_stream lkl-pair  ADDR PORT --ip CIDR --peer-ip CIDR [lkl opts] [opts]
 *         two kernels over the pipe backend: lkl_netdev_pipe_pair, the
 *         receiver (ADDR is its address, CIDR) in a child process that
 *         gets one end, the sender here with the other
 *
 *   BACKEND: --tap IFNAME | --pipe-fd FD
 *   opts: --msg BYTES (send size, 1 KiB..64 KiB; default 16384)
 *         --recv-size BYTES (default 131072)
 *         --seconds S (default 3), --bytes N (default: no bound; the
 *         sender stops at whichever comes first)
 *         --hash: send a deterministic stream and print its SHA-256
 *         (the receiver hashes what it got)
 *         --sync: print "ready pid=N" when set up, wait for a line on
 *         stdin before sending, and after the result wait for EOF on
 *         stdin before exiting (so a driver can read /proc/PID)
 *   lkl opts: --offload NONE|CHECKSUM|LARGE_SEGMENTS|BIG_PACKETS|0xHEX
 *         --gso on|off --gro on|off --tso on|off --tx-csum on|off
 *         --rx-csum on|off (the kernel's own ethtool switches)
 *         --mode shadow|direct --nohz-off --pin CPU --mem SIZE (256M)
 *         --busy-poll US --queue N --mtu N
 *         --sysctl NAME=VALUE (dotted name; repeatable)
 *         --zerocopy kernel|heap: the lkl sender sends with MSG_ZEROCOPY
 *         (SO_ZEROCOPY set) from a buffer mapped inside the kernel (its
 *         pages are referenced: no copy) or from host heap memory (the
 *         arch copies it, completions say COPIED); completions are
 *         drained from the error queue and counted
 * Every loop is bounded: the sender by --seconds, every wait by a
 * socket timeout, the --sync waits by an alarm.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <lkl/lkl.h>
#include <lkl/netdev.h>
#include <lkl/linux/ethtool.h>
#include <lkl/linux/tcp.h>
#include <lkl/linux/time_types.h>
#include <lkl/linux/time.h>
#include <lkl/linux/errqueue.h>
#include <lkl/linux/socket_abi.h>
#include <lkl/linux/mman.h>
#include <lkl/asm-generic/socket.h>
#include <lkl/asm-generic/poll.h>

#include "../../tests/native/net_util.h"

#define SEED		0x5eed5eedULL
#define MAX_MSG		(64 << 10)
#define MAX_COUNTERS	512
#define WAIT_S		20	/* the longest any single wait may take */

struct opts {
	size_t msg, recv_size;
	double seconds;
	uint64_t bytes;
	int hash, sync, threads;
	const char *zerocopy;	/* NULL, "kernel" or "heap" */
	/* lkl */
	const char *tap, *cidr, *peer_cidr, *mode, *mem, *offload_name;
	int pipe_fd, pin, nohz_off, busy_poll, queue, mtu, direct_rx;
	uint64_t offload;
	const char *sysctl[8];	/* "net.ipv4.tcp_rmem=4096 131072 6291456" */
	int nsysctl;
	/* Kernel ethtool switches: -1 leaves the driver's default. */
	int gso, gro, tso, tx_csum, rx_csum;
};

/* ---- a stack: host sockets or lkl syscalls ------------------------------ */

struct stack {
	const char *name;
	long (*send)(long fd, const void *buf, size_t len);
	long (*recv)(long fd, void *buf, size_t len);
	/* Read a file of the stack's /proc into buf; length or -errno. */
	long (*read_proc)(const char *path, char *buf, size_t len);
	long (*retrans)(long fd);
};

static long host_send(long fd, const void *buf, size_t len)
{
	long n = send(fd, buf, len, 0);

	return n < 0 ? -errno : n;
}

static long host_recv(long fd, void *buf, size_t len)
{
	long n = recv(fd, buf, len, 0);

	return n < 0 ? -errno : n;
}

static long host_read_proc(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY);
	long n, done = 0;

	if (fd < 0)
		return -errno;
	while (done < (long)len - 1 && (n = read(fd, buf + done, len - 1 - done)) > 0)
		done += n;
	close(fd);
	buf[done] = 0;
	return done;
}

static long host_retrans(long fd)
{
	struct tcp_info ti;
	socklen_t l = sizeof(ti);

	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &l) < 0)
		return -1;
	return ti.tcpi_total_retrans;
}

static long lkl_send(long fd, const void *buf, size_t len)
{
	return sys(LKL__NR_sendto, fd, (long)buf, len, 0, 0, 0);
}

static long lkl_recv(long fd, void *buf, size_t len)
{
	return sys(LKL__NR_recvfrom, fd, (long)buf, len, 0, 0, 0);
}

static long lkl_read_proc(const char *path, char *buf, size_t len)
{
	long fd = sys(LKL__NR_openat, -100, (long)path, 0, 0), n, done = 0;

	if (fd < 0)
		return fd;
	while (done < (long)len - 1 &&
	       (n = sys(LKL__NR_read, fd, (long)(buf + done), len - 1 - done)) > 0)
		done += n;
	sys(LKL__NR_close, fd);
	buf[done] = 0;
	return done;
}

static long lkl_retrans(long fd)
{
	struct lkl_tcp_info ti;
	int l = sizeof(ti);

	if (sys(LKL__NR_getsockopt, fd, LKL_IPPROTO_TCP, LKL_TCP_INFO, (long)&ti,
		(long)&l) < 0)
		return -1;
	return ti.tcpi_total_retrans;
}

static const struct stack host_stack = {
	"host", host_send, host_recv, host_read_proc, host_retrans,
};
static const struct stack lkl_stack = {
	"lkl", lkl_send, lkl_recv, lkl_read_proc, lkl_retrans,
};

/* ---- SNMP counters: "Group: names" / "Group: values" line pairs --------- */

struct counters {
	int n;
	char name[MAX_COUNTERS][64];
	long long val[MAX_COUNTERS];
};

static void parse_pairs(struct counters *c, char *text)
{
	char *save, *names = strtok_r(text, "\n", &save), *values;

	while (names && (values = strtok_r(NULL, "\n", &save))) {
		char *gn = strchr(names, ':'), *sn, *sv, *n, *v;
		size_t glen = gn ? (size_t)(gn - names) : 0;

		if (!gn || strncmp(names, values, glen + 1))
			break;
		n = strtok_r(gn + 1, " ", &sn);
		v = strtok_r(values + glen + 1, " ", &sv);
		for (; n && v && c->n < MAX_COUNTERS;
		     n = strtok_r(NULL, " ", &sn), v = strtok_r(NULL, " ", &sv)) {
			snprintf(c->name[c->n], sizeof(c->name[0]), "%.*s.%s",
				 (int)glen, names, n);
			c->val[c->n++] = atoll(v);
		}
		names = strtok_r(NULL, "\n", &save);
	}
}

static void read_counters(const struct stack *st, struct counters *c)
{
	static char buf[32768];

	c->n = 0;
	if (st->read_proc("/proc/net/snmp", buf, sizeof(buf)) > 0)
		parse_pairs(c, buf);
	if (st->read_proc("/proc/net/netstat", buf, sizeof(buf)) > 0)
		parse_pairs(c, buf);
}

static long long counter(const struct counters *c, const char *name)
{
	int i;

	for (i = 0; i < c->n; i++)
		if (!strcmp(c->name[i], name))
			return c->val[i];
	return 0;
}

/* The TCP and TcpExt counters that moved, as a JSON object. */
static void print_counter_deltas(const struct counters *a,
				 const struct counters *b)
{
	const char *sep = "";
	int i;

	printf("\"snmp\": {");
	for (i = 0; i < b->n; i++) {
		long long d = b->val[i] - counter(a, b->name[i]);

		if (!d || (strncmp(b->name[i], "Tcp", 3) &&
			   strncmp(b->name[i], "Ip.", 3)))
			continue;
		/* Gauges, not counters. */
		if (!strcmp(b->name[i], "Tcp.CurrEstab"))
			continue;
		printf("%s\"%s\": %lld", sep, b->name[i], d);
		sep = ", ";
	}
	printf("}");
}

/* ---- the lkl side ---------------------------------------------------------- */

static struct lkl_netdev *dev;
static int ifindex;

static void quiet(const char *s, int n)
{
}

static long ethtool(uint32_t cmd, uint32_t *data)
{
	struct lkl_ethtool_value ev = { .cmd = cmd, .data = *data };
	struct lkl_ifreq ifr;
	long ret;

	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_ifru.ifru_data = &ev;
	ret = net_if_ioctl(ifindex, LKL_SIOCETHTOOL, &ifr);
	*data = ev.data;
	return ret;
}

/* A switch the driver does not let change stays as it is (reported). */
static void ethtool_set(uint32_t cmd, const char *what, int on)
{
	uint32_t v = on;
	long ret;

	if (on < 0)
		return;
	ret = ethtool(cmd, &v);
	CHECK(ret == 0 || ret == -LKL_EOPNOTSUPP, "ethtool %s %s: %ld", what,
	      on ? "on" : "off", ret);
}

static int ethtool_get(uint32_t cmd)
{
	uint32_t v = 0;

	return ethtool(cmd, &v) == 0 ? (int)v : -1;
}

/*
 * The order matters: checksum first (turning it off drops TSO), then
 * TSO, then the software GSO/GRO switches.
 */
static void set_kernel_offloads(const struct opts *o)
{
	ethtool_set(LKL_ETHTOOL_STXCSUM, "tx-csum", o->tx_csum);
	ethtool_set(LKL_ETHTOOL_SRXCSUM, "rx-csum", o->rx_csum);
	ethtool_set(LKL_ETHTOOL_STSO, "tso", o->tso);
	ethtool_set(LKL_ETHTOOL_SGSO, "gso", o->gso);
	ethtool_set(LKL_ETHTOOL_SGRO, "gro", o->gro);
}

static void print_kernel_offloads(void)
{
	printf("\"kernel_offloads\": {\"tx_csum\": %d, \"rx_csum\": %d, "
	       "\"sg\": %d, \"tso\": %d, \"gso\": %d, \"gro\": %d}",
	       ethtool_get(LKL_ETHTOOL_GTXCSUM), ethtool_get(LKL_ETHTOOL_GRXCSUM),
	       ethtool_get(LKL_ETHTOOL_GSG), ethtool_get(LKL_ETHTOOL_GTSO),
	       ethtool_get(LKL_ETHTOOL_GGSO), ethtool_get(LKL_ETHTOOL_GGRO));
}

static uint64_t parse_offload(const char *s)
{
	static const struct { const char *name; uint64_t bits; } presets[] = {
		{ "NONE", LKL_NETDEV_NONE },
		{ "CHECKSUM", LKL_NETDEV_CHECKSUM },
		{ "LARGE_SEGMENTS", LKL_NETDEV_LARGE_SEGMENTS },
		{ "BIG_PACKETS", LKL_NETDEV_BIG_PACKETS },
	};
	size_t i;

	for (i = 0; i < sizeof(presets) / sizeof(presets[0]); i++)
		if (!strcasecmp(s, presets[i].name))
			return presets[i].bits;
	CHECK(!strncmp(s, "0x", 2), "unknown offload %s", s);
	return strtoull(s, NULL, 16);
}

/* Write (value != NULL) or read a sysctl by its dotted name. */
static long lkl_sysctl(const char *name, const char *value, char *out,
		       size_t len)
{
	char path[128], *p;
	long fd, ret;

	snprintf(path, sizeof(path), "/proc/sys/%s", name);
	for (p = path + 10; *p; p++)
		if (*p == '.')
			*p = '/';
	if (!value)
		return lkl_read_proc(path, out, len);
	fd = sys(LKL__NR_openat, -100, (long)path, 1 /* O_WRONLY */, 0);
	if (fd < 0)
		return fd;
	ret = sys(LKL__NR_write, fd, (long)value, strlen(value));
	sys(LKL__NR_close, fd);
	return ret;
}

static void print_sysctl(const char *name)
{
	char buf[128], *p;
	long n = lkl_sysctl(name, NULL, buf, sizeof(buf));

	while (n > 0 && buf[n - 1] == '\n')
		buf[--n] = 0;
	for (p = buf; n > 0 && *p; p++)
		if (*p == '\t')
			*p = ' ';
	printf(", \"%s\": \"%s\"", name, n > 0 ? buf : "?");
}

static void lkl_setup(const struct opts *o, int pipe_fd)
{
	struct lkl_netdev_config cfg = {
		.offload = o->offload,
		.busy_poll_us = o->busy_poll,
		.direct_rx = o->direct_rx,
		.queue_size = o->queue,
		.mtu = o->mtu,
	};
	struct lkl_netdev_backend *be;
	char cmdline[512], frag[128];

	if (o->pin >= 0)
		CHECK(lkl_host_set_pin_cpu(o->pin) == 0, "pin to %d", o->pin);
	if (pipe_fd >= 0)
		CHECK_OK(lkl_netdev_pipe_create(pipe_fd, pipe_fd, &be));
	else
		CHECK_OK(lkl_netdev_tap_create(o->tap, &be));
	CHECK_OK(lkl_netdev_create(be, &cfg, &dev));
	CHECK(lkl_netdev_cmdline(dev, frag, sizeof(frag)) > 0, "cmdline");
	snprintf(cmdline, sizeof(cmdline), "mem=%s lkl.syscall_mode=%s %s %s",
		 o->mem, o->mode, o->nohz_off ? "nohz=off" : "", frag);
	lkl_host_ops.print = quiet;
	CHECK(lkl_start_kernel(&lkl_host_ops, cmdline) == 0, "boot: %s", cmdline);
	ifindex = lkl_netdev_ifindex(dev);
	CHECK(ifindex > 0, "ifindex %d", ifindex);
	test_lo_up();
	for (int i = 0; i < o->nsysctl; i++) {
		const char *eq = strchr(o->sysctl[i], '=');
		char name[96];

		CHECK(eq && eq - o->sysctl[i] < (long)sizeof(name),
		      "bad --sysctl %s", o->sysctl[i]);
		snprintf(name, sizeof(name), "%.*s", (int)(eq - o->sysctl[i]),
			 o->sysctl[i]);
		CHECK(lkl_sysctl(name, eq + 1, NULL, 0) >= 0, "sysctl %s",
		      o->sysctl[i]);
	}
	set_kernel_offloads(o);
	net_if_up(ifindex);
	net_if_add_cidr(ifindex, o->cidr);
}

/* The kernel's interface counters from its /proc/net/dev. */
struct ifcounters {
	unsigned long long rx_bytes, rx_packets, tx_bytes, tx_packets;
};

static void read_proc_net_dev(struct ifcounters *c)
{
	static char buf[8192];
	char name[LKL_IFNAMSIZ + 2], *line;
	unsigned long long v[16];

	memset(c, 0, sizeof(*c));
	net_ifname(ifindex, name);
	strcat(name, ":");
	if (lkl_read_proc("/proc/net/dev", buf, sizeof(buf)) <= 0)
		return;
	for (line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
		char *p = line + strspn(line, " ");

		if (strncmp(p, name, strlen(name)))
			continue;
		if (sscanf(p + strlen(name),
			   "%llu %llu %llu %llu %llu %llu %llu %llu %llu %llu",
			   &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7],
			   &v[8], &v[9]) == 10) {
			c->rx_bytes = v[0];
			c->rx_packets = v[1];
			c->tx_bytes = v[8];
			c->tx_packets = v[9];
		}
	}
}

struct lkl_snapshot {
	struct lkl_netdev_stats dev;
	struct ifcounters kdev;
};

static void lkl_snap(struct lkl_snapshot *s)
{
	lkl_netdev_get_stats(dev, &s->dev);
	read_proc_net_dev(&s->kdev);
}

static double ratio(double a, double b)
{
	return b ? a / b : 0;
}

static void print_lkl_report(const struct opts *o, const struct lkl_snapshot *a,
			     const struct lkl_snapshot *b,
			     const struct counters *ca, const struct counters *cb)
{
	const struct lkl_netdev_stats *x = &a->dev, *y = &b->dev;
	double rxp = y->rx_packets - x->rx_packets, rxb = y->rx_bytes - x->rx_bytes;
	double txp = y->tx_packets - x->tx_packets, txb = y->tx_bytes - x->tx_bytes;
	double irqs = y->irqs - x->irqs, kicks = y->kicks - x->kicks;
	double insegs = counter(cb, "Tcp.InSegs") - counter(ca, "Tcp.InSegs");
	double outsegs = counter(cb, "Tcp.OutSegs") - counter(ca, "Tcp.OutSegs");

#define D(f) (unsigned long long)(y->f - x->f)
	printf(", \"lkl\": {\"mode\": \"%s\", \"nohz_off\": %s, \"mem\": \"%s\", "
	       "\"pin_cpu\": %d, \"busy_poll_us\": %d, \"direct_rx\": %s, "
	       "\"offload\": \"%s\", "
	       "\"offered\": \"0x%llx\", \"negotiated\": \"0x%llx\", ",
	       o->mode, o->nohz_off ? "true" : "false", o->mem, o->pin,
	       o->busy_poll, o->direct_rx ? "true" : "false", o->offload_name,
	       (unsigned long long)lkl_netdev_offered(dev),
	       (unsigned long long)lkl_netdev_negotiated(dev));
	print_kernel_offloads();
	print_sysctl("net.ipv4.tcp_rmem");
	print_sysctl("net.ipv4.tcp_wmem");
	printf("}, \"device\": {\"rx_packets\": %llu, \"rx_bytes\": %llu, "
	       "\"tx_packets\": %llu, \"tx_bytes\": %llu, \"rx_dropped\": %llu, "
	       "\"rx_oversize\": %llu, \"rx_malformed\": %llu, "
	       "\"tx_dropped\": %llu, \"rx_sw_csum\": %llu, \"rx_sw_gso\": %llu, "
	       "\"irqs\": %llu, \"kicks\": %llu}",
	       D(rx_packets), D(rx_bytes), D(tx_packets), D(tx_bytes),
	       D(rx_dropped), D(rx_oversize), D(rx_malformed), D(tx_dropped),
	       D(rx_sw_csum), D(rx_sw_gso), D(irqs), D(kicks));
#undef D
	printf(", \"proc_net_dev\": {\"rx_packets\": %llu, \"rx_bytes\": %llu, "
	       "\"tx_packets\": %llu, \"tx_bytes\": %llu}",
	       b->kdev.rx_packets - a->kdev.rx_packets,
	       b->kdev.rx_bytes - a->kdev.rx_bytes,
	       b->kdev.tx_packets - a->kdev.tx_packets,
	       b->kdev.tx_bytes - a->kdev.tx_bytes);
	/*
	 * Frame sizes as the device saw them (Ethernet, no vnet header):
	 * above the MTU only as TSO super-frames (tx) or host GSO ones (rx).
	 * InSegs counts one per skb the kernel's TCP took in, after GRO;
	 * OutSegs counts MSS-sized segments, so out_segs_per_frame is the
	 * TSO factor.
	 */
	printf(", \"derived\": {\"avg_rx_frame\": %.0f, \"avg_tx_frame\": %.0f, "
	       "\"rx_frames_per_irq\": %.2f, \"tx_frames_per_kick\": %.2f, "
	       "\"tcp_in_segs\": %.0f, \"tcp_out_segs\": %.0f, "
	       "\"rx_frames_per_tcp_in_seg\": %.2f, "
	       "\"tcp_out_segs_per_tx_frame\": %.2f}",
	       ratio(rxb, rxp), ratio(txb, txp), ratio(rxp, irqs),
	       ratio(txp, kicks), insegs, outsegs, ratio(rxp, insegs),
	       ratio(outsegs, txp));
}

/* ---- per-thread CPU (--threads): who does the work ---------------------- */

#define MAX_THREADS	64

struct tstat {
	int tid;
	char comm[20];
	double cpu_s;
	long vcsw, ivcsw;
	int last_cpu;
};

static int read_threads(struct tstat *t)
{
	static char buf[2048];
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	int n = 0;

	while (d && (e = readdir(d)) && n < MAX_THREADS) {
		char path[300], *p, *q;
		long hz = sysconf(_SC_CLK_TCK);
		unsigned long long ut, st;
		int i;

		if (e->d_name[0] == '.')
			continue;
		t[n].tid = atoi(e->d_name);
		snprintf(path, sizeof(path), "/proc/self/task/%s/stat", e->d_name);
		if (host_read_proc(path, buf, sizeof(buf)) <= 0)
			continue;
		p = strchr(buf, '(');
		q = strrchr(buf, ')');
		if (!p || !q)
			continue;
		snprintf(t[n].comm, sizeof(t[n].comm), "%.*s", (int)(q - p - 1), p + 1);
		/* Fields after the name: state is field 3, utime 14, cpu 39. */
		for (p = q + 2, i = 3; i < 14 && p; i++)
			p = strchr(p, ' ') ? strchr(p, ' ') + 1 : NULL;
		if (!p || sscanf(p, "%llu %llu", &ut, &st) != 2)
			continue;
		t[n].cpu_s = (double)(ut + st) / hz;
		for (; i < 39 && p; i++)
			p = strchr(p, ' ') ? strchr(p, ' ') + 1 : NULL;
		t[n].last_cpu = p ? atoi(p) : -1;
		snprintf(path, sizeof(path), "/proc/self/task/%s/status", e->d_name);
		if (host_read_proc(path, buf, sizeof(buf)) <= 0)
			continue;
		p = strstr(buf, "voluntary_ctxt_switches:");
		t[n].vcsw = p ? atol(p + 24) : 0;
		p = strstr(buf, "nonvoluntary_ctxt_switches:");
		t[n].ivcsw = p ? atol(p + 27) : 0;
		n++;
	}
	if (d)
		closedir(d);
	return n;
}

/* Threads that used at least 10 ms between the two snapshots. */
static void print_thread_deltas(const struct tstat *a, int na,
				const struct tstat *b, int nb)
{
	const char *sep = "";
	int i, j;

	printf(", \"threads\": [");
	for (i = 0; i < nb; i++) {
		struct tstat z = { 0 };
		const struct tstat *o = &z;

		for (j = 0; j < na; j++)
			if (a[j].tid == b[i].tid)
				o = &a[j];
		if (b[i].cpu_s - o->cpu_s < 0.01)
			continue;
		printf("%s{\"tid\": %d, \"name\": \"%s\", \"cpu_s\": %.2f, "
		       "\"vcsw\": %ld, \"ivcsw\": %ld, \"last_cpu\": %d}", sep,
		       b[i].tid, b[i].comm, b[i].cpu_s - o->cpu_s,
		       b[i].vcsw - o->vcsw, b[i].ivcsw - o->ivcsw, b[i].last_cpu);
		sep = ", ";
	}
	printf("]");
}

/* ---- the transfer ---------------------------------------------------------- */

static double cpu_seconds(const struct rusage *r, int sys_part)
{
	const struct timeval *t = sys_part ? &r->ru_stime : &r->ru_utime;

	return t->tv_sec + t->tv_usec / 1e6;
}

static void sync_wait_line(const struct opts *o)
{
	char c;

	if (!o->sync)
		return;
	alarm(120);
	while (read(0, &c, 1) == 1 && c != '\n')
		;
	alarm(0);
}

static void sync_wait_eof(const struct opts *o)
{
	char c;

	if (!o->sync)
		return;
	alarm(120);
	while (read(0, &c, 1) > 0)
		;
	alarm(0);
}

struct result {
	const char *role;
	uint64_t bytes;
	double seconds;
	struct rusage ru0, ru1;
	long retrans;
	char sha[65];
	/* MSG_ZEROCOPY: sends covered by completions, of them reported copied */
	uint64_t zc_done, zc_copied, zc_enobufs;
};

static void print_result(const struct result *r, const struct opts *o,
			 const struct stack *st)
{
	double us = cpu_seconds(&r->ru1, 0) - cpu_seconds(&r->ru0, 0);
	double ss = cpu_seconds(&r->ru1, 1) - cpu_seconds(&r->ru0, 1);

	printf("{\"role\": \"%s\", \"stack\": \"%s\", \"msg_size\": %zu, "
	       "\"bytes\": %llu, \"seconds\": %.4f, \"gbps\": %.3f, "
	       "\"cpu_user_s\": %.3f, \"cpu_sys_s\": %.3f, \"cpu_s\": %.3f, "
	       "\"cpu_s_per_gb\": %.3f, \"tcpi_total_retrans\": %ld",
	       r->role, st->name, o->msg, (unsigned long long)r->bytes,
	       r->seconds, r->seconds ? r->bytes * 8 / r->seconds / 1e9 : 0,
	       us, ss, us + ss, r->bytes ? (us + ss) / (r->bytes / 1e9) : 0,
	       r->retrans);
	if (o->hash)
		printf(", \"sha256\": \"%s\"", r->sha);
	if (o->zerocopy)
		printf(", \"zerocopy\": \"%s\", \"zc_completed\": %llu, "
		       "\"zc_copied\": %llu, \"zc_enobufs\": %llu", o->zerocopy,
		       (unsigned long long)r->zc_done,
		       (unsigned long long)r->zc_copied,
		       (unsigned long long)r->zc_enobufs);
}

static void sink(const struct stack *st, long fd, const struct opts *o,
		 struct result *r)
{
	char *buf = malloc(o->recv_size);
	uint64_t t0 = 0, t1;
	struct sha256 h;
	uint8_t d[32];
	long n;

	sha256_init(&h);
	getrusage(RUSAGE_SELF, &r->ru0);
	while ((n = st->recv(fd, buf, o->recv_size)) > 0) {
		if (!t0)
			t0 = test_now_ns();
		if (o->hash)
			sha256_update(&h, buf, n);
		r->bytes += n;
	}
	CHECK(n == 0, "recv: %ld (%s)", n, strerror(-n));
	t1 = test_now_ns();
	getrusage(RUSAGE_SELF, &r->ru1);
	r->seconds = t0 ? (t1 - t0) / 1e9 : 0;
	r->retrans = st->retrans(fd);
	sha256_final(&h, d);
	net_hex(d, r->sha);
	free(buf);
}

/*
 * Drain MSG_ZEROCOPY completions from fd's error queue; with wait, first
 * wait (bounded) until one is there.  Counts sends covered and copied.
 */
static void zc_drain(long fd, int wait, struct result *r)
{
	char control[256];
	struct lkl_user_msghdr msg;
	struct lkl_cmsghdr *cm;
	struct lkl_sock_extended_err *ee;
	long n;

	if (wait) {
		struct lkl_pollfd pfd = { .fd = fd, .events = 0 };

		n = sys(LKL__NR_ppoll, (long)&pfd, 1,
			(long)&(struct lkl__kernel_timespec){ WAIT_S, 0 }, 0, 0);
		CHECK(n == 1, "no zerocopy completion in %d s: %ld", WAIT_S, n);
	}
	for (;;) {
		memset(&msg, 0, sizeof(msg));
		msg.msg_control = control;
		msg.msg_controllen = sizeof(control);
		n = sys(LKL__NR_recvmsg, fd, (long)&msg,
			LKL_MSG_ERRQUEUE | LKL_MSG_DONTWAIT);
		if (n == -LKL_EAGAIN)
			return;
		CHECK(n >= 0, "recvmsg(MSG_ERRQUEUE): %ld", n);
		cm = (struct lkl_cmsghdr *)control;
		CHECK(msg.msg_controllen >= sizeof(*cm) + sizeof(*ee),
		      "short error-queue message");
		ee = (struct lkl_sock_extended_err *)(cm + 1);
		CHECK(ee->ee_origin == LKL_SO_EE_ORIGIN_ZEROCOPY && !ee->ee_errno,
		      "error-queue message origin %d errno %d", ee->ee_origin,
		      ee->ee_errno);
		r->zc_done += ee->ee_data - ee->ee_info + 1;
		if (ee->ee_code & LKL_SO_EE_CODE_ZEROCOPY_COPIED)
			r->zc_copied += ee->ee_data - ee->ee_info + 1;
	}
}

static long zc_send(long fd, const void *buf, size_t len, struct result *r)
{
	long n;

	while ((n = sys(LKL__NR_sendto, fd, (long)buf, len, LKL_MSG_ZEROCOPY,
			0, 0)) == -LKL_ENOBUFS) {
		r->zc_enobufs++;	/* too many notifications pending */
		zc_drain(fd, 1, r);
	}
	return n;
}

static void sender(const struct stack *st, long fd, const struct opts *o,
		   struct result *r)
{
	static char heap_buf[MAX_MSG];
	char *buf = heap_buf;
	uint64_t sends = 0;
	uint64_t seed = SEED, t0, deadline, limit = o->bytes ? o->bytes : ~0ULL;
	struct sha256 h;
	uint8_t d[32];
	long n;

	sha256_init(&h);
	if (o->zerocopy) {
		CHECK(st == &lkl_stack && !o->hash, "--zerocopy: lkl sender, no --hash");
		CHECK_OK(sys(LKL__NR_setsockopt, fd, LKL_SOL_SOCKET, LKL_SO_ZEROCOPY,
			     (long)&(int){ 1 }, sizeof(int), 0));
		if (!strcmp(o->zerocopy, "kernel")) {
			long a = sys(LKL__NR_mmap, 0, MAX_MSG,
				     LKL_PROT_READ | LKL_PROT_WRITE,
				     LKL_MAP_PRIVATE | LKL_MAP_ANONYMOUS, -1, 0);

			CHECK(a > 0 || a < -4095, "mmap in the kernel: %ld", a);
			buf = (char *)a;
		} else {
			CHECK(!strcmp(o->zerocopy, "heap"), "--zerocopy kernel|heap");
		}
	}
	test_fill(buf, MAX_MSG, &seed);
	getrusage(RUSAGE_SELF, &r->ru0);
	t0 = test_now_ns();
	deadline = t0 + (uint64_t)(o->seconds * 1e9);
	while (r->bytes < limit && test_now_ns() < deadline) {
		size_t len = limit - r->bytes < o->msg ? limit - r->bytes : o->msg;
		size_t done = 0;

		if (o->hash) {
			test_fill(buf, len, &seed);
			sha256_update(&h, buf, len);
		}
		while (done < len) {
			n = o->zerocopy ? zc_send(fd, buf + done, len - done, r) :
					  st->send(fd, buf + done, len - done);
			CHECK(n > 0, "send: %ld (%s)", n, strerror(-n));
			done += n;
			sends++;
		}
		r->bytes += len;
		if (o->zerocopy && !(sends & 15))
			zc_drain(fd, 0, r);
	}
	/* Done once the receiver has everything: it closes on EOF. */
	if (st == &lkl_stack)
		sys(LKL__NR_shutdown, fd, 1);	/* SHUT_WR */
	else
		shutdown(fd, SHUT_WR);
	while ((n = st->recv(fd, heap_buf, sizeof(heap_buf))) > 0)
		;
	CHECK(n == 0, "waiting for the receiver's close: %ld (%s)", n,
	      strerror(-n));
	r->seconds = (test_now_ns() - t0) / 1e9;
	getrusage(RUSAGE_SELF, &r->ru1);
	r->retrans = st->retrans(fd);
	/* Everything is acknowledged: every completion is due. */
	while (o->zerocopy && r->zc_done < sends)
		zc_drain(fd, 1, r);
	sha256_final(&h, d);
	net_hex(d, r->sha);
}

/* ---- sockets ---------------------------------------------------------------- */

static void host_timeouts(int fd)
{
	struct timeval tv = { .tv_sec = WAIT_S };

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

static void lkl_timeouts(long fd)
{
	struct lkl__kernel_sock_timeval tv = { .tv_sec = WAIT_S };

	CHECK_OK(sys(LKL__NR_setsockopt, fd, LKL_SOL_SOCKET,
		     LKL_SO_RCVTIMEO_NEW, (long)&tv, sizeof(tv)));
	CHECK_OK(sys(LKL__NR_setsockopt, fd, LKL_SOL_SOCKET,
		     LKL_SO_SNDTIMEO_NEW, (long)&tv, sizeof(tv)));
}

static struct sockaddr_in host_addr(const char *addr, int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };

	CHECK(inet_pton(AF_INET, addr, &a.sin_addr) == 1, "bad address %s", addr);
	return a;
}

static long host_listen_accept(const char *addr, int port)
{
	struct sockaddr_in a = host_addr(addr, port);
	int one = 1, s = socket(AF_INET, SOCK_STREAM, 0), c;

	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	CHECK(bind(s, (void *)&a, sizeof(a)) == 0, "bind %s:%d: %m", addr, port);
	CHECK(listen(s, 1) == 0, "listen: %m");
	host_timeouts(s);
	printf("ready pid=%d\n", getpid());
	c = accept(s, NULL, NULL);
	CHECK(c >= 0, "accept: %m");
	host_timeouts(c);
	close(s);
	return c;
}

static long host_connect(const char *addr, int port)
{
	struct sockaddr_in a = host_addr(addr, port);
	int tries, s = -1;

	/* The receiver may still be getting ready: retry a refusal. */
	for (tries = 0; tries < 100; tries++) {
		s = socket(AF_INET, SOCK_STREAM, 0);
		if (connect(s, (void *)&a, sizeof(a)) == 0)
			break;
		CHECK(errno == ECONNREFUSED, "connect %s:%d: %m", addr, port);
		close(s);
		s = -1;
		usleep(50000);
	}
	CHECK(s >= 0, "connect %s:%d: refused for 5 s", addr, port);
	host_timeouts(s);
	return s;
}

/* lkl-pair: the receiver tells the sender it listens (-1: no pair). */
static int pair_ready_w = -1, pair_ready_r = -1;

static long lkl_listen_accept(const char *addr, int port)
{
	long lfd = net_listen(addr, port), fd;

	lkl_timeouts(lfd);
	printf("ready pid=%d\n", getpid());
	if (pair_ready_w >= 0) {
		CHECK(write(pair_ready_w, "r", 1) == 1, "ready pipe: %m");
		close(pair_ready_w);
	}
	fd = CHECK_OK(sys(LKL__NR_accept4, lfd, 0, 0, 0));
	lkl_timeouts(fd);
	sys(LKL__NR_close, lfd);
	return fd;
}

/* ---- roles ------------------------------------------------------------------ */

static void run(const char *role, const char *addr, int port,
		const struct opts *o, int pipe_fd)
{
	int is_lkl = !strncmp(role, "lkl", 3), is_sink = strstr(role, "sink") != NULL;
	const struct stack *st = is_lkl ? &lkl_stack : &host_stack;
	struct result r = { .role = is_sink ? "receiver" : "sender" };
	struct lkl_snapshot la, lb;
	static struct tstat ta[MAX_THREADS], tb[MAX_THREADS];
	int na = 0, nb = 0;
	struct counters *ca = calloc(1, sizeof(*ca)), *cb = calloc(1, sizeof(*cb));
	long fd;

	if (is_lkl)
		lkl_setup(o, pipe_fd);
	/* After boot: the kernel's host threads would inherit the name. */
	pthread_setname_np(pthread_self(), "app");
	if (is_sink) {
		fd = is_lkl ? lkl_listen_accept(addr, port) :
			      host_listen_accept(addr, port);
	} else {
		printf("ready pid=%d\n", getpid());
		sync_wait_line(o);
		if (pair_ready_r >= 0) {
			struct pollfd pfd = { .fd = pair_ready_r, .events = POLLIN };
			char c;

			/* Connect once the peer kernel can answer at once. */
			CHECK(poll(&pfd, 1, 60000) == 1 &&
			      read(pair_ready_r, &c, 1) == 1, "peer never listened");
			close(pair_ready_r);
		}
		if (is_lkl) {
			fd = net_connect(addr, port);
			lkl_timeouts(fd);
		} else {
			fd = host_connect(addr, port);
		}
	}
	read_counters(st, ca);
	if (is_lkl)
		lkl_snap(&la);
	if (o->threads)
		na = read_threads(ta);
	(is_sink ? sink : sender)(st, fd, o, &r);
	if (o->threads)
		nb = read_threads(tb);
	if (is_lkl)
		lkl_snap(&lb);
	read_counters(st, cb);
	print_result(&r, o, st);
	printf(", \"retransmits\": %lld, ",
	       counter(cb, "Tcp.RetransSegs") - counter(ca, "Tcp.RetransSegs"));
	print_counter_deltas(ca, cb);
	if (is_lkl)
		print_lkl_report(o, &la, &lb, ca, cb);
	if (o->threads)
		print_thread_deltas(ta, na, tb, nb);
	printf("}\n");
	fflush(stdout);

	if (is_lkl)
		sys(LKL__NR_close, fd);
	else
		close(fd);
	sync_wait_eof(o);
	if (is_lkl) {
		CHECK(lkl_sys_halt() == 0, "halt");
		lkl_netdev_free(dev);
	}
	free(ca);
	free(cb);
}

/*
 * Two kernels over the pipe backend: the receiver in a child process
 * with one end of lkl_netdev_pipe_pair, the sender here with the other.
 * Both print their lines to the same stdout and see the same stdin.
 */
static int lkl_pair(const char *addr, int port, struct opts *o)
{
	int fds[2], ready[2], status;
	pid_t child;

	CHECK_OK(lkl_netdev_pipe_pair(fds));
	CHECK(pipe(ready) == 0, "pipe: %m");
	fflush(stdout);
	child = fork();
	CHECK(child >= 0, "fork: %m");
	if (child == 0) {
		close(fds[0]);
		close(ready[0]);
		pair_ready_w = ready[1];
		run("lkl-sink", addr, port, o, fds[1]);
		exit(0);
	}
	close(fds[1]);
	close(ready[1]);
	pair_ready_r = ready[0];
	o->cidr = o->peer_cidr;
	run("lkl-send", addr, port, o, fds[0]);
	CHECK(waitpid(child, &status, 0) == child, "waitpid: %m");
	return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

static int on_off(const char *v)
{
	CHECK(!strcmp(v, "on") || !strcmp(v, "off"), "on|off, not %s", v);
	return !strcmp(v, "on");
}

static uint64_t parse_size(const char *s)
{
	char *end;
	uint64_t v = strtoull(s, &end, 0);

	if (*end == 'K' || *end == 'k')
		v <<= 10;
	else if (*end == 'M' || *end == 'm')
		v <<= 20;
	else if (*end == 'G' || *end == 'g')
		v <<= 30;
	return v;
}

int main(int argc, char **argv)
{
	struct opts o = {
		.msg = 16384, .recv_size = 128 << 10, .seconds = 3,
		.mode = "shadow", .mem = "256M", .offload_name = "NONE",
		.pipe_fd = -1, .pin = -1,
		.gso = -1, .gro = -1, .tso = -1, .tx_csum = -1, .rx_csum = -1,
	};
	const char *role, *addr;
	int port, i;

	if (argc < 4) {
		fprintf(stderr, "usage: see the comment at the top of tcp_stream.c\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	role = argv[1];
	addr = argv[2];
	port = atoi(argv[3]);
	for (i = 4; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : "";

		if (!strcmp(a, "--hash")) {
			o.hash = 1;
			continue;
		}
		if (!strcmp(a, "--sync")) {
			o.sync = 1;
			continue;
		}
		if (!strcmp(a, "--threads")) {
			o.threads = 1;
			continue;
		}
		if (!strcmp(a, "--nohz-off")) {
			o.nohz_off = 1;
			continue;
		}
		if (!strcmp(a, "--direct-rx")) {
			o.direct_rx = 1;
			continue;
		}
		CHECK(i + 1 < argc, "%s needs a value", a);
		i++;
		if (!strcmp(a, "--msg"))
			o.msg = parse_size(v);
		else if (!strcmp(a, "--recv-size"))
			o.recv_size = parse_size(v);
		else if (!strcmp(a, "--seconds"))
			o.seconds = atof(v);
		else if (!strcmp(a, "--bytes"))
			o.bytes = parse_size(v);
		else if (!strcmp(a, "--tap"))
			o.tap = v;
		else if (!strcmp(a, "--pipe-fd"))
			o.pipe_fd = atoi(v);
		else if (!strcmp(a, "--ip"))
			o.cidr = v;
		else if (!strcmp(a, "--peer-ip"))
			o.peer_cidr = v;
		else if (!strcmp(a, "--offload"))
			o.offload = parse_offload(o.offload_name = v);
		else if (!strcmp(a, "--mode"))
			o.mode = v;
		else if (!strcmp(a, "--zerocopy"))
			o.zerocopy = v;
		else if (!strcmp(a, "--mem"))
			o.mem = v;
		else if (!strcmp(a, "--pin"))
			o.pin = atoi(v);
		else if (!strcmp(a, "--busy-poll"))
			o.busy_poll = atoi(v);
		else if (!strcmp(a, "--queue"))
			o.queue = atoi(v);
		else if (!strcmp(a, "--mtu"))
			o.mtu = atoi(v);
		else if (!strcmp(a, "--gso"))
			o.gso = on_off(v);
		else if (!strcmp(a, "--gro"))
			o.gro = on_off(v);
		else if (!strcmp(a, "--tso"))
			o.tso = on_off(v);
		else if (!strcmp(a, "--tx-csum"))
			o.tx_csum = on_off(v);
		else if (!strcmp(a, "--rx-csum"))
			o.rx_csum = on_off(v);
		else if (!strcmp(a, "--sysctl") && o.nsysctl < 8)
			o.sysctl[o.nsysctl++] = v;
		else
			CHECK(0, "unknown option %s", a);
	}
	CHECK(o.msg >= 1 && o.msg <= MAX_MSG, "--msg must be 1..%d", MAX_MSG);
	CHECK(o.recv_size >= 1 && o.seconds > 0 && o.seconds <= 600,
	      "bad --recv-size or --seconds");
	signal(SIGPIPE, SIG_IGN);

	if (!strcmp(role, "host-sink") || !strcmp(role, "host-send")) {
		run(role, addr, port, &o, -1);
		return 0;
	}
	if (!strcmp(role, "lkl-sink") || !strcmp(role, "lkl-send")) {
		CHECK(o.cidr && (o.tap || o.pipe_fd >= 0),
		      "%s needs --ip and --tap or --pipe-fd", role);
		run(role, addr, port, &o, o.pipe_fd);
		return 0;
	}
	if (!strcmp(role, "lkl-pair")) {
		CHECK(o.cidr && o.peer_cidr, "lkl-pair needs --ip and --peer-ip");
		return lkl_pair(addr, port, &o);
	}
	fprintf(stderr, "unknown role %s\n", role);
	return 2;
}
