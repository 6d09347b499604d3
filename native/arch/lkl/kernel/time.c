// SPDX-License-Identifier: GPL-2.0
/*
 * Time from the host: a nanosecond clocksource and one one-shot clock
 * event device backed by a single host timer (one host thread, reused
 * for every expiry).  Whether the tick stops when idle is the kernel's
 * own choice ("nohz=" on the command line).
 */
#include <linux/clocksource.h>
#include <linux/clockchips.h>
#include <linux/interrupt.h>
#include <linux/delay.h>
#include <linux/sched/clock.h>
#include <linux/timekeeping.h>
#include <asm/lkl.h>

static struct lkl_timer *host_timer;
static int timer_irq;

u64 sched_clock(void)
{
	return lkl_ops->time();
}

static u64 clock_read(struct clocksource *cs)
{
	return lkl_ops->time();
}

static struct clocksource host_clocksource = {
	.name	= "lkl",
	.rating	= 499,
	.read	= clock_read,
	.flags	= CLOCK_SOURCE_IS_CONTINUOUS | CLOCK_SOURCE_VALID_FOR_HRES,
	.mask	= CLOCKSOURCE_MASK(64),
};

static int timer_set_next_event(unsigned long delta,
				struct clock_event_device *evt)
{
	return lkl_ops->timer_set_oneshot(host_timer, delta);
}

static int host_timer_shutdown(struct clock_event_device *evt)
{
	lkl_ops->timer_cancel(host_timer);
	return 0;
}

static struct clock_event_device host_clockevent = {
	.name			= "lkl",
	.features		= CLOCK_EVT_FEAT_ONESHOT,
	.set_next_event		= timer_set_next_event,
	.set_state_shutdown	= host_timer_shutdown,
	.set_state_oneshot_stopped = host_timer_shutdown,
	.rating			= 499,
};

static irqreturn_t timer_interrupt(int irq, void *dev_id)
{
	struct clock_event_device *evt = dev_id;

	evt->event_handler(evt);
	return IRQ_HANDLED;
}

/* Runs on the host timer thread. */
static void host_timer_expired(void *arg)
{
	lkl_trigger_irq(timer_irq);
}

void __init time_init(void)
{
	int ret;

	ret = clocksource_register_hz(&host_clocksource, NSEC_PER_SEC);
	if (ret)
		panic("lkl: cannot register clocksource: %d\n", ret);

	host_timer = lkl_ops->timer_alloc(host_timer_expired, NULL);
	if (!host_timer)
		panic("lkl: cannot allocate the host timer\n");

	timer_irq = lkl_get_free_irq("timer");
	if (timer_irq < 0)
		panic("lkl: no IRQ for the timer\n");
	ret = request_irq(timer_irq, timer_interrupt, IRQF_TIMER, "timer",
			  &host_clockevent);
	if (ret)
		panic("lkl: cannot request the timer IRQ: %d\n", ret);

	host_clockevent.cpumask = cpumask_of(0);
	host_clockevent.irq = timer_irq;
	/* A 1 GHz device: deltas are host nanoseconds. */
	clockevents_config_and_register(&host_clockevent, NSEC_PER_SEC, 1000,
					ULONG_MAX);
}

/* Halt: no more expiries, and the timer thread is joined. */
void lkl_time_stop(void)
{
	if (host_timer)
		lkl_ops->timer_free(host_timer);
	host_timer = NULL;
}

/* Delays are no loop to calibrate: they spin on the host clock. */
void calibrate_delay(void)
{
	loops_per_jiffy = NSEC_PER_SEC / HZ;
}

void __ndelay(unsigned long nsecs)
{
	u64 end = lkl_ops->time() + nsecs;

	while (lkl_ops->time() < end)
		cpu_relax();
}

void __udelay(unsigned long usecs)
{
	__ndelay(usecs * NSEC_PER_USEC);
}

void __delay(unsigned long loops)
{
	__ndelay(loops);
}
