//! Dropping root after the sockets are bound (`user:` / `group:`).
//!
//! Started as root with `user:` set, `sekisho dns` binds its sockets and opens its query log,
//! then switches to that user: supplementary groups are replaced by the one group (`group:`,
//! default the user's primary group), then `setgid`, then `setuid` (glibc applies both to every
//! thread). Afterwards it checks that root cannot be regained. Started as another user, `user:`
//! is ignored with a warning. A SIGHUP reload then reads the config and lists as that user.

use std::ffi::{CStr, CString};

/// A user and group to run as, resolved from names (or numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunAs {
    /// User ID.
    pub uid: u32,
    /// Group ID.
    pub gid: u32,
}

/// Resolves `user` (a name or a number) and `group` (a name or number; default the user's
/// primary group). Returns a message naming what was not found.
pub fn lookup(user: &str, group: Option<&str>) -> Result<RunAs, String> {
    let (uid, primary) = match passwd(user) {
        Some(p) => p,
        None => match user.parse::<u32>() {
            Ok(n) => (n, n),
            Err(_) => return Err(format!("unknown user '{user}'")),
        },
    };
    let gid = match group {
        None => primary,
        Some(g) => match group_id(g) {
            Some(id) => id,
            None => g
                .parse::<u32>()
                .map_err(|_| format!("unknown group '{g}'"))?,
        },
    };
    Ok(RunAs { uid, gid })
}

fn passwd(name: &str) -> Option<(u32, u32)> {
    let c = CString::new(name).ok()?;
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: an all-zero passwd is a valid "empty" value; getpwnam_r fills it.
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut out: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call; `buf` outlives the use of `pw`.
    let rc =
        unsafe { libc::getpwnam_r(c.as_ptr(), &mut pw, buf.as_mut_ptr(), buf.len(), &mut out) };
    (rc == 0 && !out.is_null()).then_some((pw.pw_uid, pw.pw_gid))
}

fn group_id(name: &str) -> Option<u32> {
    let c = CString::new(name).ok()?;
    let mut buf = vec![0 as libc::c_char; 64 * 1024];
    // SAFETY: as in `passwd`.
    let mut gr: libc::group = unsafe { std::mem::zeroed() };
    let mut out: *mut libc::group = std::ptr::null_mut();
    // SAFETY: as in `passwd`.
    let rc =
        unsafe { libc::getgrnam_r(c.as_ptr(), &mut gr, buf.as_mut_ptr(), buf.len(), &mut out) };
    (rc == 0 && !out.is_null()).then_some(gr.gr_gid)
}

/// True when running as root (effective UID 0).
pub fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Switches the whole process to `to` and checks that root is gone.
pub fn drop_to(to: RunAs) -> std::io::Result<()> {
    let err = |what: &str| {
        let e = std::io::Error::last_os_error();
        std::io::Error::new(e.kind(), format!("{what}: {e}"))
    };
    let gid = to.gid as libc::gid_t;
    // SAFETY: plain syscalls with valid arguments.
    unsafe {
        if libc::setgroups(1, &gid) != 0 {
            return Err(err("setgroups"));
        }
        if libc::setgid(gid) != 0 {
            return Err(err("setgid"));
        }
        if libc::setuid(to.uid as libc::uid_t) != 0 {
            return Err(err("setuid"));
        }
        if to.uid != 0 && (libc::setuid(0) == 0 || libc::geteuid() == 0) {
            return Err(std::io::Error::other("root could be regained after setuid"));
        }
    }
    Ok(())
}

/// The name of the user `uid`, for messages.
pub fn user_name(uid: u32) -> String {
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: as in `passwd`.
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut out: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: as in `passwd`.
    let rc = unsafe { libc::getpwuid_r(uid, &mut pw, buf.as_mut_ptr(), buf.len(), &mut out) };
    if rc == 0 && !out.is_null() && !pw.pw_name.is_null() {
        // SAFETY: pw_name is a NUL-terminated string inside `buf`.
        return unsafe { CStr::from_ptr(pw.pw_name) }
            .to_string_lossy()
            .into_owned();
    }
    uid.to_string()
}

/// Raises the soft open-file limit to the hard limit (sockets: TCP clients and upstream
/// queries each hold one); returns the new soft limit.
pub fn raise_nofile() -> u64 {
    // SAFETY: getrlimit/setrlimit with a valid struct.
    unsafe {
        let mut r: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) != 0 {
            return 0;
        }
        if r.rlim_cur < r.rlim_max {
            let want = libc::rlimit {
                rlim_cur: r.rlim_max,
                rlim_max: r.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &want) == 0 {
                return want.rlim_cur as u64;
            }
        }
        r.rlim_cur as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_and_numbers_resolve_unknown_names_do_not() {
        assert_eq!(lookup("root", None).unwrap(), RunAs { uid: 0, gid: 0 });
        assert_eq!(
            lookup("12345", Some("54321")).unwrap(),
            RunAs {
                uid: 12345,
                gid: 54321
            }
        );
        assert!(lookup("no-such-user-sekisho", None)
            .unwrap_err()
            .contains("unknown user 'no-such-user-sekisho'"));
        assert!(lookup("root", Some("no-such-group-sekisho"))
            .unwrap_err()
            .contains("unknown group"));
    }
}
