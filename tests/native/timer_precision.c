/*
 * How close the kernel's timers come to what was asked, in host time:
 * a 1 ms nanosleep (an hrtimer), a 1 ms SO_RCVTIMEO (a jiffies timeout:
 * rounded up to the tick), and TCP's retransmission timeout with
 * net.ipv4.tcp_rto_min_us=5000 over loopback made lossy by netem (the
 * RTO timer is in jiffies too).  Prints each sample set's median and max
 * in microseconds as "name median max" lines; tests/test_timers.py
 * holds the limits.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include <lkl/asm-generic/socket.h>
#include <lkl/linux/in.h>
#include <lkl/linux/pkt_sched.h>
#include <lkl/linux/tcp.h>
#include <lkl/linux/time_types.h>

#include "net_util.h"
#include "test_util.h"

#define SAMPLES 21

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void report(const char *name, uint64_t *ns, int n)
{
	qsort(ns, n, sizeof(ns[0]), cmp_u64);
	printf("%s %.1f %.1f\n", name, ns[n / 2] / 1e3, ns[n - 1] / 1e3);
}

static void measure_nanosleep(void)
{
	struct lkl__kernel_timespec ts = { 0, 1000000 };
	uint64_t ns[SAMPLES], t0;
	int i;

	for (i = 0; i < SAMPLES; i++) {
		t0 = test_now_ns();
		CHECK_OK(sys(LKL__NR_nanosleep, (long)&ts, 0));
		ns[i] = test_now_ns() - t0;
	}
	report("nanosleep_1ms", ns, SAMPLES);
}

static void measure_rcvtimeo(void)
{
	struct lkl__kernel_sock_timeval tv = { 0, 1000 };
	long fd = CHECK_OK(sys(LKL__NR_socket, LKL_AF_INET, LKL_SOCK_DGRAM, 0));
	uint64_t ns[SAMPLES], t0;
	char buf[8];
	long r;
	int i;

	CHECK_OK(sys(LKL__NR_setsockopt, fd, LKL_SOL_SOCKET,
		     LKL_SO_RCVTIMEO_NEW, (long)&tv, sizeof(tv)));
	for (i = 0; i < SAMPLES; i++) {
		t0 = test_now_ns();
		r = sys(LKL__NR_recvfrom, fd, (long)buf, sizeof(buf), 0, 0, 0);
		ns[i] = test_now_ns() - t0;
		CHECK(r == -LKL_EAGAIN, "recv with nothing sent: %ld", r);
	}
	sys(LKL__NR_close, fd);
	report("rcvtimeo_1ms", ns, SAMPLES);
}

/* Every packet on lo lost (netem loss 100%), or lo back to normal. */
static void lo_loss(int lose)
{
	struct {
		struct lkl_nlmsghdr nh;
		struct lkl_tcmsg tcm;
		struct lkl_rtattr kind;
		char kind_name[8];
		struct lkl_rtattr opt;
		struct lkl_tc_netem_qopt qopt;
	} req;

	memset(&req, 0, sizeof(req));
	req.nh.nlmsg_type = lose ? LKL_RTM_NEWQDISC : LKL_RTM_DELQDISC;
	req.nh.nlmsg_flags = LKL_NLM_F_REQUEST | LKL_NLM_F_ACK |
			     (lose ? LKL_NLM_F_CREATE | LKL_NLM_F_REPLACE : 0);
	req.tcm.tcm_family = LKL_AF_UNSPEC;
	req.tcm.tcm_ifindex = 1;
	req.tcm.tcm_parent = LKL_TC_H_ROOT;
	req.kind.rta_type = LKL_TCA_KIND;
	req.kind.rta_len = LKL_RTA_LENGTH(sizeof(req.kind_name));
	strcpy(req.kind_name, "netem");
	req.opt.rta_type = LKL_TCA_OPTIONS;
	req.opt.rta_len = LKL_RTA_LENGTH(sizeof(req.qopt));
	req.qopt.limit = 1000;
	req.qopt.loss = ~0U;
	req.nh.nlmsg_len = sizeof(req);
	CHECK(net_rtnl(&req, req.nh.nlmsg_len) == 0, "netem on lo (%d)", lose);
}

static void write_file(const char *path, const char *val)
{
	long fd = CHECK_OK(sys(LKL__NR_openat, LKL_AT_FDCWD, (long)path,
			       LKL_O_WRONLY));

	CHECK_OK(sys(LKL__NR_write, fd, (long)val, strlen(val)));
	sys(LKL__NR_close, fd);
}

/* From a lost segment's send to its first retransmission. */
static void measure_rto(void)
{
	uint64_t ns[SAMPLES];
	int i;

	write_file("/proc/sys/net/ipv4/tcp_rto_min_us", "5000");
	for (i = 0; i < SAMPLES; i++) {
		long lfd = net_listen("127.0.0.1", 9200 + i);
		long c = net_connect("127.0.0.1", 9200 + i);
		long s = CHECK_OK(sys(LKL__NR_accept, lfd, 0, 0));
		struct lkl_tcp_info ti;
		int len;
		uint64_t t0, deadline;

		/* A few round trips for an RTT estimate, then the loss. */
		for (len = 0; len < 4; len++) {
			char b = 'x';

			net_send_all(c, &b, 1);
			CHECK_OK(sys(LKL__NR_recvfrom, s, (long)&b, 1, 0, 0, 0));
		}
		lo_loss(1);
		t0 = test_now_ns();
		net_send_all(c, "y", 1);
		deadline = t0 + 2000000000ULL;
		do {
			len = sizeof(ti);
			CHECK_OK(sys(LKL__NR_getsockopt, c, LKL_IPPROTO_TCP,
				     LKL_TCP_INFO, (long)&ti, (long)&len));
		} while (ti.tcpi_total_retrans == 0 && test_now_ns() < deadline);
		ns[i] = test_now_ns() - t0;
		CHECK(ti.tcpi_total_retrans > 0, "no retransmission in 2 s");
		lo_loss(0);
		sys(LKL__NR_close, c);
		sys(LKL__NR_close, s);
		sys(LKL__NR_close, lfd);
	}
	report("tcp_rto_min_5ms", ns, SAMPLES);
}

int main(void)
{
	test_boot("");
	test_lo_up();
	measure_nanosleep();
	measure_rcvtimeo();
	measure_rto();
	lkl_sys_halt();
	return 0;
}
