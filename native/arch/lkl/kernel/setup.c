// SPDX-License-Identifier: GPL-2.0
/*
 * Boot and halt.
 *
 * lkl_start_kernel() runs start_kernel() on a new host thread, which
 * becomes the idle task, and returns once the init process is ready to
 * serve syscalls.  lkl_sys_halt() powers the kernel off and reaps every
 * host thread it made.  A halted kernel cannot boot again in the same
 * process: its static data is spent.
 */
#include <linux/init.h>
#include <linux/kernel.h>
#include <linux/start_kernel.h>
#include <linux/memblock.h>
#include <linux/mm.h>
#include <linux/binfmts.h>
#include <linux/fs.h>
#include <linux/file.h>
#include <linux/panic_notifier.h>
#include <linux/pm.h>
#include <linux/reboot.h>
#include <linux/string.h>
#include <linux/task_work.h>
#include <linux/init_syscalls.h>
#include <asm/setup.h>
#include <asm/lkl.h>

struct lkl_host_ops *lkl_ops;
unsigned long memory_start, memory_end;
void *empty_zero_page;

static void *ram_base;
static unsigned long ram_size;
static unsigned long mem_size = 64UL << 20;

enum kernel_state { KERNEL_OFF, KERNEL_BOOTING, KERNEL_RUNNING,
		    KERNEL_HALTING, KERNEL_HALTED };
static int kernel_state = KERNEL_OFF;

static struct lkl_sem *boot_sem;
static struct lkl_sem *halt_sem;
static lkl_thread_t boot_thread;

int lkl_is_running(void)
{
	return __atomic_load_n(&kernel_state, __ATOMIC_SEQ_CST) ==
		KERNEL_RUNNING;
}

static int __init parse_mem(char *p)
{
	mem_size = memparse(p, &p);
	return 0;
}
early_param("mem", parse_mem);

static int host_panic(struct notifier_block *nb, unsigned long event,
		      void *buf)
{
	if (lkl_ops->panic)
		lkl_ops->panic();
	return NOTIFY_DONE;
}

static struct notifier_block panic_nb = { .notifier_call = host_panic };

void __init setup_arch(char **cmdline_p)
{
	unsigned long max_zone_pfn[MAX_NR_ZONES] = { 0 };
	/* Aligned to the largest buddy block, so pfn 0 of RAM starts one. */
	unsigned long align = PAGE_SIZE << MAX_PAGE_ORDER;

	*cmdline_p = boot_command_line;
	parse_early_param();
	atomic_notifier_chain_register(&panic_notifier_list, &panic_nb);
	pm_power_off = lkl_machine_stop;

	mem_size = max(PAGE_ALIGN(mem_size), 16UL << 20);
	ram_size = mem_size + align;
	ram_base = lkl_ops->ram_alloc(ram_size);
	if (!ram_base)
		panic("lkl: cannot allocate %lu bytes of RAM\n", ram_size);
	memory_start = ALIGN((unsigned long)ram_base, align);
	memory_end = memory_start + mem_size;

	memblock_add(memory_start, mem_size);
	min_low_pfn = PFN_UP(memory_start);
	max_low_pfn = PFN_DOWN(memory_end);
	max_pfn = max_low_pfn;
	max_mapnr = max_pfn - min_low_pfn;
	high_memory = (void *)memory_end;

	empty_zero_page = memblock_alloc(PAGE_SIZE, PAGE_SIZE);
	if (!empty_zero_page)
		panic("lkl: no zero page\n");

	max_zone_pfn[ZONE_NORMAL] = max_pfn;
	free_area_init(max_zone_pfn);
}

void __init mem_init(void)
{
	memblock_free_all();
}

/* Init sections live in the host's image, not in our RAM: keep them. */
void free_initmem(void)
{
}

/*
 * The init process "executes" /init through this format: it gets an mm
 * and a clean exec state, then returns to the kernel instead of to user
 * space, where it serves the host (syscalls.c).
 */
#define INIT_MAGIC "\177LKLinit\n"

static int load_init(struct linux_binprm *bprm)
{
	int ret;

	if (memcmp(bprm->buf, INIT_MAGIC, sizeof(INIT_MAGIC) - 1))
		return -ENOEXEC;
	ret = begin_new_exec(bprm);
	if (ret)
		return ret;
	setup_new_exec(bprm);
	finalize_exec(bprm);
	return 0;
}

static struct linux_binfmt init_format = {
	.module		= THIS_MODULE,
	.load_binary	= load_init,
};

/*
 * A boot mount that fails leaves the kernel up, but without what its
 * users read first (/proc, /sys): say so on the console, loudly.
 */
static void __init boot_mount(const char *fs, const char *dir, umode_t mode,
			      const char *opts)
{
	int err = init_mkdir(dir, mode);

	if (err && err != -EEXIST)
		pr_err("lkl: cannot create %s for %s: error %d\n", dir, fs, err);
	err = init_mount(fs, dir, fs, 0, (void *)opts);
	if (err)
		pr_err("lkl: cannot mount %s on %s: error %d\n", fs, dir, err);
}

static int __init create_init(void)
{
	struct file *file;
	loff_t pos = 0;
	ssize_t n;

	/* What every user reaches for first: counters and knobs. */
	boot_mount("proc", "/proc", 0555, NULL);
	boot_mount("sysfs", "/sys", 0555, NULL);
	boot_mount("tmpfs", "/tmp", 01777, "mode=1777");

	register_binfmt(&init_format);
	file = filp_open("/init", O_CREAT | O_WRONLY | O_TRUNC, 0700);
	if (IS_ERR(file))
		return PTR_ERR(file);
	n = kernel_write(file, INIT_MAGIC, sizeof(INIT_MAGIC) - 1, &pos);
	fput(file);
	/* The init process closes files on return to "user space". */
	task_work_run();
	return n < 0 ? n : 0;
}
late_initcall(create_init);

/* Called by the init process once it serves syscalls. */
void lkl_boot_complete(void)
{
	__atomic_store_n(&kernel_state, KERNEL_RUNNING, __ATOMIC_SEQ_CST);
	lkl_ops->sem_up(boot_sem);
}

/*
 * Power off, from the reboot syscall.  This thread keeps the CPU and
 * leaves: no kernel code runs again, and the halting host thread can
 * take everything down.
 */
void lkl_machine_stop(void)
{
	lkl_cpu_shutdown();
	lkl_ops->sem_up(halt_sem);
	lkl_ops->thread_exit();
}

void machine_halt(void)
{
	lkl_machine_stop();
}

void machine_power_off(void)
{
	lkl_machine_stop();
}

void machine_restart(char *cmd)
{
	lkl_machine_stop();
}

/* Init sections are never freed here, so boot code may use them. */
static void __ref boot_main(void *arg)
{
	start_kernel();
}

static void free_boot_resources(void)
{
	if (boot_sem)
		lkl_ops->sem_free(boot_sem);
	if (halt_sem)
		lkl_ops->sem_free(halt_sem);
	boot_sem = halt_sem = NULL;
}

int __ref lkl_start_kernel(struct lkl_host_ops *ops, const char *cmdline)
{
	int expected = KERNEL_OFF;
	int ret;

	if (!ops)
		return -EINVAL;
	if (!__atomic_compare_exchange_n(&kernel_state, &expected,
					 KERNEL_BOOTING, false,
					 __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
		return expected == KERNEL_HALTED ? -EALREADY : -EBUSY;

	lkl_ops = ops;
	strscpy(boot_command_line, cmdline ? cmdline : "", COMMAND_LINE_SIZE);

	ret = -ENOMEM;
	boot_sem = ops->sem_alloc(0);
	halt_sem = ops->sem_alloc(0);
	if (!boot_sem || !halt_sem)
		goto fail;
	ret = lkl_cpu_init();
	if (ret)
		goto fail;
	ret = lkl_syscalls_init();
	if (ret)
		goto fail;
	ret = lkl_threads_init_boot(0);
	if (ret)
		goto fail_syscalls;

	boot_thread = ops->thread_create(boot_main, NULL);
	if (!boot_thread) {
		ret = -EAGAIN;
		goto fail_threads;
	}
	init_task.thread.host_thread = boot_thread;

	ops->sem_down(boot_sem);
	return 0;

fail_threads:
	lkl_threads_cleanup();
fail_syscalls:
	lkl_syscalls_cleanup();
fail:
	free_boot_resources();
	__atomic_store_n(&kernel_state, KERNEL_OFF, __ATOMIC_SEQ_CST);
	return ret;
}

long lkl_sys_halt(void)
{
	int expected = KERNEL_RUNNING;
	long ret;

	if (!__atomic_compare_exchange_n(&kernel_state, &expected,
					 KERNEL_HALTING, false,
					 __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
		return -ENODEV;

	ret = lkl_syscalls_power_off(halt_sem);
	if (ret < 0) {
		__atomic_store_n(&kernel_state, KERNEL_RUNNING,
				 __ATOMIC_SEQ_CST);
		return ret;
	}

	/* The kernel is stopped for good; take its host side down. */
	lkl_syscalls_cancel_all();
	lkl_cpu_release_waiters();
	lkl_time_stop();
	lkl_threads_stop_all();
	lkl_ops->thread_join(boot_thread);
	boot_thread = 0;
	lkl_threads_cleanup();
	lkl_ops->ram_free(ram_base, ram_size);
	ram_base = NULL;
	free_boot_resources();
	__atomic_store_n(&kernel_state, KERNEL_HALTED, __ATOMIC_SEQ_CST);
	return 0;
}
