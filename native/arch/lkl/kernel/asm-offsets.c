// SPDX-License-Identifier: GPL-2.0
/* No assembly needs structure offsets. */
