/* SPDX-License-Identifier: GPL-2.0 */
#include <asm/syscall_table_64.h>
