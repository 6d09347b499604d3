/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Output of a relocatable link ("ld -r"): boundary symbols are defined
 * inside output sections so that they stay section-relative and move
 * with their sections when liblkl.a is finally linked.
 */
#include <asm/vmlinux.lds.h>
#include <asm/thread_info.h>
#include <asm/page.h>
#include <asm/cache.h>

OUTPUT_FORMAT(CONFIG_OUTPUT_FORMAT)

jiffies = jiffies_64;

SECTIONS
{
	.text : {
		_stext = .;
		_text = .;
		text = .;
		TEXT_TEXT
		SCHED_TEXT
		LOCK_TEXT
		IRQENTRY_TEXT
		SOFTIRQENTRY_TEXT
		_etext = .;
	}

	.init.text : {
		__init_begin = .;
		_sinittext = .;
		INIT_TEXT
		_einittext = .;
	}

	RO_DATA(PAGE_SIZE)

	.data : {
		_sdata = .;
		INIT_TASK_DATA(THREAD_SIZE)
		NOSAVE_DATA
		PAGE_ALIGNED_DATA(PAGE_SIZE)
		CACHELINE_ALIGNED_DATA(L1_CACHE_BYTES)
		READ_MOSTLY_DATA(L1_CACHE_BYTES)
		DATA_DATA
		CONSTRUCTORS
		_edata = .;
	}

	.init.data : {
		INIT_DATA
		INIT_SETUP(16)
		INIT_CALLS
		CON_INITCALL
		INIT_RAM_FS
		__init_end = .;
	}

	PERCPU_SECTION(L1_CACHE_BYTES)

	EXCEPTION_TABLE(16)

	.bss : {
		__bss_start = .;
		*(.bss..page_aligned)
		*(.dynbss)
		*(BSS_MAIN)
		*(COMMON)
		__bss_stop = .;
		_end = .;
	}

	STABS_DEBUG
	DWARF_DEBUG
	ELF_DETAILS

	DISCARDS
}
