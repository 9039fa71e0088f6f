//! Dropping root after the queues are bound, keeping only what verdicts and rejects need.
//!
//! nfnetlink checks CAP_NET_ADMIN on every message, verdicts included, so switching to a user
//! with no capabilities would stop the firewall. [`drop_to`] keeps the capabilities across
//! `setuid` (`PR_SET_KEEPCAPS`), then narrows the thread's sets to CAP_NET_ADMIN and
//! CAP_NET_RAW. Capabilities are per thread: call it on the thread that then starts the
//! workers (they inherit its sets); threads started before lose every capability at
//! `setuid` (glibc applies the uid change to all threads), which the signal and metrics
//! threads do not need.

const CAP_NET_ADMIN: u32 = 12;
const CAP_NET_RAW: u32 = 13;
/// `_LINUX_CAPABILITY_VERSION_3`: two 32-bit words per set.
const CAP_V3: u32 = 0x2008_0522;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

fn os_err(what: &str) -> std::io::Error {
    let e = std::io::Error::last_os_error();
    std::io::Error::new(e.kind(), format!("{what}: {e}"))
}

/// Switches the process to `uid`/`gid` (supplementary groups: just `gid`), keeping
/// CAP_NET_ADMIN and CAP_NET_RAW on the calling thread; checks that root is gone.
pub fn drop_to(uid: u32, gid: u32) -> std::io::Result<()> {
    let g = gid as libc::gid_t;
    // SAFETY: plain syscalls with valid arguments and pointers to live locals.
    unsafe {
        if libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0 {
            return Err(os_err("prctl(PR_SET_KEEPCAPS)"));
        }
        if libc::setgroups(1, &g) != 0 {
            return Err(os_err("setgroups"));
        }
        if libc::setgid(g) != 0 {
            return Err(os_err("setgid"));
        }
        if libc::setuid(uid as libc::uid_t) != 0 {
            return Err(os_err("setuid"));
        }
        let keep = (1u32 << CAP_NET_ADMIN) | (1u32 << CAP_NET_RAW);
        let mut hdr = CapHeader {
            version: CAP_V3,
            pid: 0,
        };
        let data = [
            CapData {
                effective: keep,
                permitted: keep,
                inheritable: 0,
            },
            CapData::default(),
        ];
        if libc::syscall(libc::SYS_capset, &mut hdr as *mut CapHeader, data.as_ptr()) != 0 {
            return Err(os_err("capset(CAP_NET_ADMIN, CAP_NET_RAW)"));
        }
        if libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0) != 0 {
            return Err(os_err("prctl(PR_SET_KEEPCAPS)"));
        }
        if uid != 0 && (libc::setuid(0) == 0 || libc::geteuid() == 0) {
            return Err(std::io::Error::other("root could be regained after setuid"));
        }
    }
    Ok(())
}
