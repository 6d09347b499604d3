/*
 * Boot and halt.  The constructor reads the configuration, boots the
 * kernel with the NIC attached, brings lo and the NIC up and sets
 * addresses, routes and sysctls, all before the program's main runs;
 * anything wrong ends the process with a message and exit status 2, so
 * a program never runs on a half-configured kernel.  With LKL_CONTROL
 * the kernel is served to this user's tools (python -m lkl attach NAME)
 * once it is configured.  The destructor stops serving and halts it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lkl/control.h>
#include <lkl/lkl.h>
#include <lkl/netdev.h>

#include "preload.h"

int preload_running;
struct preload_config preload_cfg;

static struct lkl_host_ops ops;
static struct lkl_netdev *nic;

static void quiet_print(const char *str, int len)
{
	/* The kernel's console: only with LKL_DEBUG. */
}

static void loud_print(const char *str, int len)
{
	fwrite(str, 1, len, stderr);
}

static void __attribute__((noreturn, format(printf, 1, 2)))
die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "lkl-preload: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	_exit(2);
}

static void drop_preload_env(void)
{
	/*
	 * Programs this one runs would boot kernels of their own on the
	 * same NIC: they run on the host's stack unless LKL_KEEP_PRELOAD=1.
	 */
	unsetenv("LD_PRELOAD");
}

static int make_nic(const struct preload_config *cfg)
{
	struct lkl_netdev_backend *be;
	struct lkl_netdev_config nc;
	int ret;

	if (!strcmp(cfg->nic_type, "tap"))
		ret = lkl_netdev_tap_create(cfg->nic_name, &be);
	else
		ret = lkl_netdev_raw_create(cfg->nic_name, &be);
	if (ret < 0)
		die("LKL_NIC=%s:%s: %s", cfg->nic_type, cfg->nic_name,
		    strerror(-ret));
	memset(&nc, 0, sizeof(nc));
	nc.offload = cfg->has_offload ? cfg->offload : LKL_NETDEV_NONE;
	nc.mtu = cfg->mtu;
	nc.has_mac = cfg->has_mac;
	memcpy(nc.mac, cfg->mac, 6);
	ret = lkl_netdev_create(be, &nc, &nic);
	if (ret < 0)
		die("LKL_NIC=%s:%s: device: %s", cfg->nic_type, cfg->nic_name,
		    strerror(-ret));
	return 0;
}

static void configure(const struct preload_config *cfg)
{
	char buf[1024], *tok, *save, *eq;
	int ifindex, ret, i;

	ret = netconf_if_up(1);
	if (ret < 0)
		die("lo up: %s", strerror(-ret));
	if (nic) {
		ifindex = lkl_netdev_ifindex(nic);
		if (ifindex < 0)
			die("NIC: no interface index: %s", strerror(-ifindex));
		if (cfg->mtu) {
			ret = netconf_if_mtu(ifindex, cfg->mtu);
			if (ret < 0)
				die("LKL_MTU=%d: %s", cfg->mtu, strerror(-ret));
		}
		ret = netconf_if_up(ifindex);
		if (ret < 0)
			die("NIC up: %s", strerror(-ret));
		for (i = 0; i < cfg->naddrs; i++) {
			ret = netconf_add_cidr(ifindex, cfg->addrs[i]);
			if (ret < 0)
				die("LKL_ADDRESS %s: %s", cfg->addrs[i],
				    strerror(-ret));
		}
		if (cfg->gateway4[0] &&
		    (ret = netconf_add_gateway(cfg->gateway4)) < 0)
			die("LKL_GATEWAY %s: %s", cfg->gateway4, strerror(-ret));
		if (cfg->gateway6[0] &&
		    (ret = netconf_add_gateway(cfg->gateway6)) < 0)
			die("LKL_GATEWAY %s: %s", cfg->gateway6, strerror(-ret));
	}
	snprintf(buf, sizeof(buf), "%s", cfg->sysctl);
	for (tok = strtok_r(buf, ";", &save); tok;
	     tok = strtok_r(NULL, ";", &save)) {
		eq = strchr(tok, '=');
		*eq = 0;
		ret = netconf_sysctl(tok, eq + 1);
		if (ret < 0)
			die("LKL_SYSCTL %s=%s: %s", tok, eq + 1, strerror(-ret));
	}
}

static void __attribute__((constructor)) preload_boot(void)
{
	char err[512], cmdline[1024];
	int len, ret;

	if (preload_config_read(&preload_cfg, err, sizeof(err)) < 0)
		die("%s", err);
	if (!preload_cfg.keep_preload)
		drop_preload_env();
	if (preload_cfg.nic_type[0])
		make_nic(&preload_cfg);
	len = snprintf(cmdline, sizeof(cmdline), "mem=%s", preload_cfg.memory);
	if (preload_cfg.syscall_mode[0])
		len += snprintf(cmdline + len, sizeof(cmdline) - len,
				" lkl.syscall_mode=%s",
				preload_cfg.syscall_mode);
	if (preload_cfg.cmdline[0])
		len += snprintf(cmdline + len, sizeof(cmdline) - len, " %s",
				preload_cfg.cmdline);
	if (nic) {
		cmdline[len++] = ' ';
		ret = lkl_netdev_cmdline(nic, cmdline + len,
					 sizeof(cmdline) - len);
		if (ret < 0)
			die("kernel command line too long");
	}
	ops = lkl_host_ops;
	ops.print = preload_cfg.debug ? loud_print : quiet_print;
	ret = lkl_start_kernel(&ops, cmdline);
	if (ret < 0)
		die("boot (%s): %s", cmdline, strerror(-ret));
	preload_running = 1;
	configure(&preload_cfg);
	ret = fdmap_init();
	if (ret < 0)
		die("readiness poller: %s", strerror(-ret));
	if (preload_cfg.control[0]) {
		/* ip, ss, tcpdump... through python -m lkl attach NAME. */
		if (nic && (ret = lkl_control_add_netdev(nic)) < 0)
			die("LKL_CONTROL: the NIC: %s", strerror(-ret));
		ret = lkl_control_start(preload_cfg.control);
		if (ret < 0)
			die("LKL_CONTROL=%s: %s", preload_cfg.control,
			    strerror(-ret));
	}
}

static void __attribute__((destructor)) preload_halt(void)
{
	if (!preload_running || preload_forked)
		return;
	preload_running = 0;
	if (preload_cfg.control[0])
		lkl_control_stop();
	lkl_sys_halt();
	fdmap_fini();
	/* The device's poller is gone with the kernel; the process ends. */
}
