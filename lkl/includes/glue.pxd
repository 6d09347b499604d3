# The extension's own C side (lkl/_glue.c).
from libc.stdint cimport uint64_t

cdef extern from "_glue.h" nogil:
    int glue_boot(const char *cmdline, int pin_cpu)
    long glue_halt()
    void glue_mark_forked()
    int glue_forked()
    long glue_syscall(long nr, long *params)

    uint64_t glue_console_copy(uint64_t start, char **text, uint64_t *length)
    uint64_t glue_console_wait(uint64_t offset, double timeout)
    int glue_console_closed()

    int glue_watch_add(int kfd, int *slot, unsigned *gen, int *hostfd)
    void glue_watch_refresh(int slot, unsigned gen)
    unsigned glue_watch_seq(int slot, unsigned gen)
    void glue_watch_settle(int slot, unsigned gen, unsigned seq, int drained)
    int glue_watch_shown(int slot, unsigned gen)
    void glue_watch_del(int slot, unsigned gen)
    int glue_poller_error()
    unsigned long glue_poller_failures()
    int glue_poller_break()
    enum:
        GLUE_READ
        GLUE_WRITE

    struct glue_const:
        const char *name
        long value

    const glue_const glue_constants[]
    const glue_const glue_internal_constants[]
    const glue_const glue_syscall_numbers[]
    int glue_syscall_mode()
