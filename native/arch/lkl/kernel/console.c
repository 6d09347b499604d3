// SPDX-License-Identifier: GPL-2.0
/* Kernel messages go to the host's print callback. */
#include <linux/console.h>
#include <linux/init.h>
#include <asm/lkl.h>

static void host_console_write(struct console *con, const char *str,
			       unsigned int len)
{
	if (lkl_ops->print)
		lkl_ops->print(str, len);
}

static struct console host_console = {
	.name	= "lkl",
	.write	= host_console_write,
	/* Replay what was logged before the console existed (the banner). */
	.flags	= CON_PRINTBUFFER | CON_ENABLED,
	.index	= -1,
};

static int __init host_console_init(void)
{
	register_console(&host_console);
	return 0;
}
console_initcall(host_console_init);
