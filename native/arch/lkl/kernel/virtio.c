// SPDX-License-Identifier: GPL-2.0
/*
 * Devices the host attaches after boot: a virtio-mmio platform device
 * over a register window the host serves (native/host/virtio_mmio.c).
 * Registering runs on the caller's shadow (syscalls.c), in process
 * context, so the driver probes before the call returns.
 */
#include <linux/kernel.h>
#include <linux/err.h>
#include <linux/ioport.h>
#include <linux/irq.h>
#include <linux/platform_device.h>
#include <asm/lkl.h>

/* args: base, size, irq. */
long lkl_virtio_mmio_register(long *args)
{
	struct resource res[] = {
		DEFINE_RES_MEM((unsigned long)args[0], args[1]),
		DEFINE_RES_IRQ(args[2]),
	};
	struct platform_device *pdev;

	/* AUTO: never clashes with devices named on the command line. */
	pdev = platform_device_register_resndata(NULL, "virtio-mmio",
						 PLATFORM_DEVID_AUTO, res,
						 ARRAY_SIZE(res), NULL, 0);
	return PTR_ERR_OR_ZERO(pdev);
}

/*
 * Attach a virtio-mmio device whose registers the host serves at base
 * (an lkl_iomem cookie) and whose interrupt is irq.
 */
long lkl_virtio_mmio_add(unsigned long base, long size, long irq)
{
	long args[6] = { (long)base, size, irq };

	if (!lkl_is_running())
		return -ENODEV;
	if (!size || irq <= 0 || irq >= NR_IRQS)
		return -EINVAL;
	return lkl_shadow_call(lkl_virtio_mmio_register, args);
}
