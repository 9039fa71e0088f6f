//! Waking a worker blocked in the queue's `recv`: a signal handler installed without
//! `SA_RESTART`, so the blocked `recv` returns `EINTR` and the worker looks at its timers,
//! reloads and the stop flag. (The worker blocks in `recv` on the netlink socket rather than
//! in `poll` with a timeout: one system call per packet on the busy path.)

/// The wake-up signal (SIGUSR1 is `sekisho run`'s "write the rate-limit tables").
const WAKE: libc::c_int = libc::SIGUSR2;

extern "C" fn on_wake(_: libc::c_int) {}

/// Installs the no-op handler (no `SA_RESTART`).
pub(crate) fn install() -> std::io::Result<()> {
    // SAFETY: a plain sigaction call with a zeroed struct, an empty mask and a handler that
    // does nothing (async-signal-safe).
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_wake as extern "C" fn(libc::c_int) as usize;
        libc::sigemptyset(&mut sa.sa_mask);
        sa.sa_flags = 0;
        if libc::sigaction(WAKE, &sa, std::ptr::null_mut()) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Sends the wake-up signal to each thread (errors, e.g. a thread that just ended, are
/// harmless).
pub(crate) fn wake(threads: &[libc::pthread_t]) {
    for &t in threads {
        // SAFETY: `t` comes from a live scoped JoinHandle; the thread may have returned but
        // is not joined yet, so the id is still valid.
        unsafe {
            libc::pthread_kill(t, WAKE);
        }
    }
}
