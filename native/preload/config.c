/*
 * The preload library's configuration: environment variables, then a
 * JSON file (LKL_CONFIG or upstream's LKL_HIJACK_CONFIG_FILE) whose
 * keys override them.  The table of names is in README.md ("Unmodified
 * programs on the lkl stack").  Every value is checked here, before the
 * kernel boots.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <lkl/netdev.h>

#include "preload.h"

struct cfg_ctx {
	struct preload_config *cfg;
	char *err;
	size_t errlen;
	/* Upstream's split spellings, joined at the end. */
	char ip4[64], mask4[8], ip6[64], mask6[8];
};

static int fail(struct cfg_ctx *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->err, c->errlen, fmt, ap);
	va_end(ap);
	return -1;
}

static int copy(struct cfg_ctx *c, const char *name, char *dst, size_t len,
		const char *v)
{
	if (strlen(v) >= len)
		return fail(c, "%s: value too long: %s", name, v);
	strcpy(dst, v);
	return 0;
}

static int is_ip(const char *s)
{
	unsigned char buf[16];

	return inet_pton(AF_INET, s, buf) == 1 ||
	       inet_pton(AF_INET6, s, buf) == 1;
}

static int check_cidr(const char *s)
{
	char buf[64], *slash, *end;
	long prefix;

	if (strlen(s) >= sizeof(buf))
		return 0;
	strcpy(buf, s);
	slash = strchr(buf, '/');
	if (!slash)
		return 0;
	*slash = 0;
	prefix = strtol(slash + 1, &end, 10);
	if (end == slash + 1 || *end || prefix < 0)
		return 0;
	if (strchr(buf, ':'))
		return is_ip(buf) && prefix <= 128;
	return is_ip(buf) && prefix <= 32;
}

static int set_offload(struct cfg_ctx *c, const char *name, const char *v)
{
	static const struct { const char *name; uint64_t bits; } presets[] = {
		{ "NONE", LKL_NETDEV_NONE },
		{ "CHECKSUM", LKL_NETDEV_CHECKSUM },
		{ "LARGE_SEGMENTS", LKL_NETDEV_LARGE_SEGMENTS },
		{ "BIG_PACKETS", LKL_NETDEV_BIG_PACKETS },
	};
	char *end;
	unsigned long long bits;
	size_t i;

	for (i = 0; i < sizeof(presets) / sizeof(presets[0]); i++)
		if (!strcasecmp(v, presets[i].name)) {
			c->cfg->offload = presets[i].bits;
			c->cfg->has_offload = 1;
			return 0;
		}
	errno = 0;
	bits = strtoull(v, &end, 0);
	if (!*v || *end || errno || (bits & ~LKL_NETDEV_OFFLOAD_MASK))
		return fail(c, "%s: not a preset (NONE, CHECKSUM, "
			    "LARGE_SEGMENTS, BIG_PACKETS) nor offload bits "
			    "within 0x%llx: %s", name,
			    (unsigned long long)LKL_NETDEV_OFFLOAD_MASK, v);
	c->cfg->offload = bits;
	c->cfg->has_offload = 1;
	return 0;
}

static int set_list(struct cfg_ctx *c, const char *name, const char *v,
		    char (*dst)[64], int max, int *n, int (*ok)(const char *))
{
	char buf[1024], *tok, *save;

	if (strlen(v) >= sizeof(buf))
		return fail(c, "%s: value too long", name);
	strcpy(buf, v);
	for (tok = strtok_r(buf, ", ", &save); tok;
	     tok = strtok_r(NULL, ", ", &save)) {
		if (*n >= max)
			return fail(c, "%s: more than %d entries", name, max);
		if (!ok(tok) || strlen(tok) >= 64)
			return fail(c, "%s: not valid: %s", name, tok);
		strcpy(dst[(*n)++], tok);
	}
	return 0;
}

static int set_nic(struct cfg_ctx *c, const char *name, const char *v)
{
	const char *colon = strchr(v, ':');

	if (!colon || colon == v || !colon[1] ||
	    (strncmp(v, "tap:", 4) && strncmp(v, "raw:", 4)) ||
	    strlen(colon + 1) >= 16)
		return fail(c, "%s: expected tap:NAME or raw:IFNAME: %s", name,
			    v);
	memcpy(c->cfg->nic_type, v, 3);
	c->cfg->nic_type[3] = 0;
	strcpy(c->cfg->nic_name, colon + 1);
	return 0;
}

static int set_int(struct cfg_ctx *c, const char *name, const char *v,
		   int lo, int hi, int *dst)
{
	char *end;
	long n = strtol(v, &end, 0);

	if (!*v || *end || n < lo || n > hi)
		return fail(c, "%s: expected a number in %d..%d: %s", name, lo,
			    hi, v);
	*dst = (int)n;
	return 0;
}

static int set_mac(struct cfg_ctx *c, const char *name, const char *v)
{
	unsigned int b[6];
	int i, used = 0;

	if (sscanf(v, "%x:%x:%x:%x:%x:%x%n", &b[0], &b[1], &b[2], &b[3], &b[4],
		   &b[5], &used) != 6 || v[used])
		return fail(c, "%s: expected aa:bb:cc:dd:ee:ff: %s", name, v);
	for (i = 0; i < 6; i++) {
		if (b[i] > 255)
			return fail(c, "%s: bad byte in %s", name, v);
		c->cfg->mac[i] = b[i];
	}
	c->cfg->has_mac = 1;
	return 0;
}

static int check_sysctl(struct cfg_ctx *c, const char *name, const char *v)
{
	char buf[1024], *tok, *save;

	if (copy(c, name, c->cfg->sysctl, sizeof(c->cfg->sysctl), v))
		return -1;
	strcpy(buf, v);
	for (tok = strtok_r(buf, ";", &save); tok;
	     tok = strtok_r(NULL, ";", &save))
		if (!strchr(tok, '=') || *tok == '=')
			return fail(c, "%s: expected key=value;...: %s", name,
				    tok);
	return 0;
}

static int ok_cidr(const char *s) { return check_cidr(s); }
static int ok_ip(const char *s) { return is_ip(s); }

/* One setting, by name; both our names and upstream's.  1: unknown. */
static int set(struct cfg_ctx *c, const char *name, const char *v)
{
	struct preload_config *cfg = c->cfg;

	if (!strcmp(name, "memory")) {
		char *end;
		unsigned long long n = strtoull(v, &end, 10);

		if (end == v || n == 0 || (*end && strchr("kKmMgG", *end) == NULL)
		    || (*end && end[1]))
			return fail(c, "LKL_MEMORY: expected e.g. 128M: %s", v);
		return copy(c, name, cfg->memory, sizeof(cfg->memory), v);
	}
	if (!strcmp(name, "syscall_mode")) {
		if (strcmp(v, "shadow") && strcmp(v, "direct"))
			return fail(c, "LKL_SYSCALL_MODE: shadow or direct: %s",
				    v);
		return copy(c, name, cfg->syscall_mode,
			    sizeof(cfg->syscall_mode), v);
	}
	if (!strcmp(name, "nic"))
		return set_nic(c, "LKL_NIC", v);
	if (!strcmp(name, "address"))
		return set_list(c, "LKL_ADDRESS", v, cfg->addrs,
				PRELOAD_MAX_ADDRS, &cfg->naddrs, ok_cidr);
	if (!strcmp(name, "gateway") || !strcmp(name, "gateway6")) {
		int n = 0, i;
		char list[2][64];

		if (set_list(c, "LKL_GATEWAY", v, list, 2, &n, ok_ip))
			return -1;
		for (i = 0; i < n; i++)
			strcpy(strchr(list[i], ':') ? cfg->gateway6 :
			       cfg->gateway4, list[i]);
		return 0;
	}
	if (!strcmp(name, "offload"))
		return set_offload(c, "LKL_OFFLOAD", v);
	if (!strcmp(name, "mtu"))
		return set_int(c, "LKL_MTU", v, 68, 65535, &cfg->mtu);
	if (!strcmp(name, "mac"))
		return set_mac(c, "LKL_MAC", v);
	if (!strcmp(name, "sysctl"))
		return check_sysctl(c, "LKL_SYSCTL", v);
	if (!strcmp(name, "nameserver"))
		return set_list(c, "LKL_NAMESERVER", v, cfg->nameservers,
				PRELOAD_MAX_NS, &cfg->nns, ok_ip);
	if (!strcmp(name, "cmdline") || !strcmp(name, "boot_cmdline"))
		return copy(c, "LKL_CMDLINE", cfg->cmdline,
			    sizeof(cfg->cmdline), v);
	if (!strcmp(name, "control")) {
		const char *q;

		for (q = v; *q; q++)
			if (!isalnum((unsigned char)*q) && !strchr("._-", *q))
				break;
		if (!*v || *q || strlen(v) > 64)
			return fail(c, "LKL_CONTROL: a name of letters, digits, "
				    "'.', '_' and '-' (at most 64): %s", v);
		return copy(c, "LKL_CONTROL", cfg->control,
			    sizeof(cfg->control), v);
	}
	if (!strcmp(name, "debug")) {
		cfg->debug = strtol(v, NULL, 0) != 0 || !strcmp(v, "true");
		return 0;
	}
	/* Upstream's interface spellings. */
	if (!strcmp(name, "type")) {
		if (strcmp(v, "tap") && strcmp(v, "raw"))
			return fail(c, "LKL_HIJACK_NET_IFTYPE: tap or raw: %s",
				    v);
		strcpy(cfg->nic_type, v);
		return 0;
	}
	if (!strcmp(name, "param"))
		return copy(c, "LKL_HIJACK_NET_IFPARAMS", cfg->nic_name,
			    16, v);
	if (!strcmp(name, "ip"))
		return copy(c, "LKL_HIJACK_NET_IP", c->ip4, sizeof(c->ip4), v);
	if (!strcmp(name, "masklen"))
		return copy(c, "LKL_HIJACK_NET_NETMASK_LEN", c->mask4,
			    sizeof(c->mask4), v);
	if (!strcmp(name, "ipv6"))
		return copy(c, "LKL_HIJACK_NET_IPV6", c->ip6, sizeof(c->ip6), v);
	if (!strcmp(name, "masklen6"))
		return copy(c, "LKL_HIJACK_NET_NETMASK6_LEN", c->mask6,
			    sizeof(c->mask6), v);
	return 1;
}

static const struct { const char *env, *name; } env_names[] = {
	{ "LKL_MEMORY", "memory" },
	{ "LKL_SYSCALL_MODE", "syscall_mode" },
	{ "LKL_NIC", "nic" },
	{ "LKL_ADDRESS", "address" },
	{ "LKL_GATEWAY", "gateway" },
	{ "LKL_OFFLOAD", "offload" },
	{ "LKL_MTU", "mtu" },
	{ "LKL_MAC", "mac" },
	{ "LKL_SYSCTL", "sysctl" },
	{ "LKL_NAMESERVER", "nameserver" },
	{ "LKL_CMDLINE", "cmdline" },
	{ "LKL_DEBUG", "debug" },
	{ "LKL_CONTROL", "control" },
	/* Upstream's hijack library (tools/lkl/lib/config.c). */
	{ "LKL_HIJACK_NET_IFTYPE", "type" },
	{ "LKL_HIJACK_NET_IFPARAMS", "param" },
	{ "LKL_HIJACK_NET_IP", "ip" },
	{ "LKL_HIJACK_NET_NETMASK_LEN", "masklen" },
	{ "LKL_HIJACK_NET_IPV6", "ipv6" },
	{ "LKL_HIJACK_NET_NETMASK6_LEN", "masklen6" },
	{ "LKL_HIJACK_NET_GATEWAY", "gateway" },
	{ "LKL_HIJACK_NET_GATEWAY6", "gateway6" },
	{ "LKL_HIJACK_NET_MTU", "mtu" },
	{ "LKL_HIJACK_NET_MAC", "mac" },
	{ "LKL_HIJACK_OFFLOAD", "offload" },
	{ "LKL_HIJACK_SYSCTL", "sysctl" },
	{ "LKL_HIJACK_BOOT_CMDLINE", "boot_cmdline" },
	{ "LKL_HIJACK_DEBUG", "debug" },
};

/* ---- a small JSON reader: objects of strings, numbers, booleans -------------- */

struct json {
	const char *p;
	struct cfg_ctx *c;
};

static void ws(struct json *j)
{
	while (isspace((unsigned char)*j->p))
		j->p++;
}

/* A string (escapes \" \\ \/ \n \t only) or a bare scalar into out. */
static int scalar(struct json *j, char *out, size_t len)
{
	size_t n = 0;

	ws(j);
	if (*j->p == '"') {
		j->p++;
		while (*j->p && *j->p != '"') {
			char ch = *j->p++;

			if (ch == '\\') {
				ch = *j->p++;
				ch = ch == 'n' ? '\n' : ch == 't' ? '\t' : ch;
				if (!ch)
					break;
			}
			if (n + 1 >= len)
				return fail(j->c, "LKL_CONFIG: string too long");
			out[n++] = ch;
		}
		if (*j->p != '"')
			return fail(j->c, "LKL_CONFIG: unterminated string");
		j->p++;
	} else {
		while (*j->p && (isalnum((unsigned char)*j->p) ||
				 strchr("+-.", *j->p))) {
			if (n + 1 >= len)
				return fail(j->c, "LKL_CONFIG: value too long");
			out[n++] = *j->p++;
		}
		if (!n)
			return fail(j->c, "LKL_CONFIG: expected a value at "
				    "\"%.20s\"", j->p);
		out[n] = 0;
		if (!strcmp(out, "false") || !strcmp(out, "null"))
			strcpy(out, "0");
		else if (!strcmp(out, "true"))
			strcpy(out, "1");
		return 0;
	}
	out[n] = 0;
	return 0;
}

static int object(struct json *j, int depth);

/* "sysctl": {"net.ipv4.tcp_congestion_control": "bbr", ...} */
static int sysctl_object(struct json *j)
{
	char joined[1024] = "", k[256], v[256];

	j->p++;
	for (;;) {
		ws(j);
		if (*j->p == '}') {
			j->p++;
			break;
		}
		if (*j->p != '"' || scalar(j, k, sizeof(k)))
			return fail(j->c, "LKL_CONFIG: sysctl: expected a key");
		ws(j);
		if (*j->p != ':')
			return fail(j->c, "LKL_CONFIG: sysctl: expected :");
		j->p++;
		if (scalar(j, v, sizeof(v)))
			return -1;
		if (strlen(joined) + strlen(k) + strlen(v) + 3 > sizeof(joined))
			return fail(j->c, "LKL_CONFIG: sysctl: too long");
		if (joined[0])
			strcat(joined, ";");
		strcat(joined, k);
		strcat(joined, "=");
		strcat(joined, v);
		ws(j);
		if (*j->p == ',')
			j->p++;
		else if (*j->p != '}')
			return fail(j->c, "LKL_CONFIG: sysctl: expected , or }");
	}
	return joined[0] ? set(j->c, "sysctl", joined) : 0;
}

/* A value for key: scalar, array of scalars (joined by ','), object. */
static int value(struct json *j, const char *key, int depth)
{
	char v[1024], item[256];
	int r;

	ws(j);
	if (*j->p == '{' && !strcmp(key, "sysctl"))
		return sysctl_object(j);
	if (*j->p == '{') {
		if (strcmp(key, "interfaces") && depth > 0)
			return fail(j->c, "LKL_CONFIG: unexpected object at %s",
				    key);
		return object(j, depth + 1);
	}
	if (*j->p == '[') {
		j->p++;
		v[0] = 0;
		ws(j);
		if (*j->p == ']') {
			j->p++;
			return 0;
		}
		for (;;) {
			ws(j);
			if (*j->p == '{') {
				/* "interfaces": [ {...} ]: one NIC. */
				if (object(j, depth + 1))
					return -1;
			} else {
				if (scalar(j, item, sizeof(item)))
					return -1;
				if (strlen(v) + strlen(item) + 2 > sizeof(v))
					return fail(j->c, "LKL_CONFIG: %s too "
						    "long", key);
				if (v[0])
					strcat(v, !strcmp(key, "sysctl") ?
					       ";" : ",");
				strcat(v, item);
			}
			ws(j);
			if (*j->p == ',') {
				j->p++;
				continue;
			}
			if (*j->p != ']')
				return fail(j->c, "LKL_CONFIG: expected ] "
					    "after %s", key);
			j->p++;
			break;
		}
		if (!v[0])
			return 0;
	} else if (scalar(j, v, sizeof(v))) {
		return -1;
	}
	r = set(j->c, key, v);
	if (r > 0)
		return fail(j->c, "LKL_CONFIG: unknown key \"%s\"", key);
	return r;
}

static int object(struct json *j, int depth)
{
	char key[64];

	ws(j);
	if (*j->p != '{')
		return fail(j->c, "LKL_CONFIG: expected {");
	j->p++;
	ws(j);
	if (*j->p == '}') {
		j->p++;
		return 0;
	}
	for (;;) {
		ws(j);
		if (*j->p != '"' || scalar(j, key, sizeof(key)))
			return fail(j->c, "LKL_CONFIG: expected a key at "
				    "\"%.20s\"", j->p);
		ws(j);
		if (*j->p != ':')
			return fail(j->c, "LKL_CONFIG: expected : after %s",
				    key);
		j->p++;
		if (value(j, key, depth))
			return -1;
		ws(j);
		if (*j->p == ',') {
			j->p++;
			continue;
		}
		if (*j->p != '}')
			return fail(j->c, "LKL_CONFIG: expected } or , after "
				    "%s", key);
		j->p++;
		return 0;
	}
}

static int read_json(struct cfg_ctx *c, const char *path)
{
	char text[16384];
	struct json j = { text, c };
	FILE *f = fopen(path, "r");
	size_t n;

	if (!f)
		return fail(c, "LKL_CONFIG: %s: %s", path, strerror(errno));
	n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	if (n == sizeof(text) - 1)
		return fail(c, "LKL_CONFIG: %s: larger than %zu bytes", path,
			    sizeof(text) - 1);
	text[n] = 0;
	if (object(&j, 0))
		return -1;
	ws(&j);
	if (*j.p)
		return fail(c, "LKL_CONFIG: %s: text after the object", path);
	return 0;
}

/* The host's nameservers, from /etc/resolv.conf (the default). */
static void host_nameservers(struct preload_config *cfg)
{
	char line[256], addr[64];
	FILE *f = fopen("/etc/resolv.conf", "r");

	if (!f)
		return;
	while (cfg->nns < PRELOAD_MAX_NS && fgets(line, sizeof(line), f))
		if (sscanf(line, " nameserver %63s", addr) == 1 && is_ip(addr))
			strcpy(cfg->nameservers[cfg->nns++], addr);
	fclose(f);
}

int preload_config_read(struct preload_config *cfg, char *err, size_t errlen)
{
	struct cfg_ctx c = { .cfg = cfg, .err = err, .errlen = errlen };
	const char *v, *path;
	char cidr[80];
	size_t i;

	memset(cfg, 0, sizeof(*cfg));
	strcpy(cfg->memory, "128M");
	for (i = 0; i < sizeof(env_names) / sizeof(env_names[0]); i++) {
		v = getenv(env_names[i].env);
		if (v && *v && set(&c, env_names[i].name, v)) {
			/* Name the variable the user wrote. */
			char msg[512];

			snprintf(msg, sizeof(msg), "%s", err);
			if (strncmp(msg, env_names[i].env,
				    strlen(env_names[i].env)))
				snprintf(err, errlen, "%s: %s",
					 env_names[i].env, msg);
			return -1;
		}
	}
	/* An upstream setting we do not have must not be dropped silently. */
	for (char **e = environ; *e; e++) {
		size_t len = strcspn(*e, "=");

		if (strncmp(*e, "LKL_HIJACK_", 11) || !(*e)[len + 1])
			continue;
		for (i = 0; i < sizeof(env_names) / sizeof(env_names[0]); i++)
			if (strlen(env_names[i].env) == len &&
			    !strncmp(*e, env_names[i].env, len))
				break;
		if (i == sizeof(env_names) / sizeof(env_names[0]) &&
		    strncmp(*e, "LKL_HIJACK_CONFIG_FILE=", 23))
			return fail(&c, "%.*s: not supported by this library",
				    (int)len, *e);
	}
	path = getenv("LKL_CONFIG");
	if (!path || !*path)
		path = getenv("LKL_HIJACK_CONFIG_FILE");
	if (path && *path && read_json(&c, path))
		return -1;
	if (c.ip4[0]) {
		snprintf(cidr, sizeof(cidr), "%s/%s", c.ip4,
			 c.mask4[0] ? c.mask4 : "24");
		if (set_list(&c, "LKL_HIJACK_NET_IP", cidr, cfg->addrs,
			     PRELOAD_MAX_ADDRS, &cfg->naddrs, ok_cidr))
			return -1;
	}
	if (c.ip6[0]) {
		snprintf(cidr, sizeof(cidr), "%s/%s", c.ip6,
			 c.mask6[0] ? c.mask6 : "64");
		if (set_list(&c, "LKL_HIJACK_NET_IPV6", cidr, cfg->addrs,
			     PRELOAD_MAX_ADDRS, &cfg->naddrs, ok_cidr))
			return -1;
	}
	if (cfg->nic_type[0] && !cfg->nic_name[0])
		return fail(&c, "LKL_NIC: no interface name");
	if (!cfg->nic_type[0] && (cfg->naddrs || cfg->gateway4[0] ||
				  cfg->gateway6[0] || cfg->has_offload ||
				  cfg->mtu || cfg->has_mac))
		return fail(&c, "LKL_ADDRESS, LKL_GATEWAY, LKL_OFFLOAD, "
			    "LKL_MTU and LKL_MAC need a NIC (LKL_NIC=tap:NAME "
			    "or raw:IFNAME)");
	cfg->keep_preload = getenv("LKL_KEEP_PRELOAD") &&
			    !strcmp(getenv("LKL_KEEP_PRELOAD"), "1");
	if (!cfg->nns)
		host_nameservers(cfg);
	return 0;
}
