//! `compile` and `install` end to end. The kernel tests need no privilege (no_new_privs makes
//! an unprivileged filter legal) and load the filter into a thread of their own: a filter
//! binds the thread that installs it and what it starts, never its siblings, so the test
//! harness stays unfiltered.

use std::io;
use std::path::PathBuf;

use super::*;

/// Runs `f` in a new thread under `filter`.
fn under<T: Send + 'static>(filter: Filter, f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(move || {
        install(&filter).unwrap();
        f()
    })
    .join()
    .unwrap()
}

/// The errno of a raw system call's result, or `Ok` with its value.
fn sys(rc: libc::c_long) -> Result<libc::c_long, i32> {
    if rc == -1 {
        Err(io::Error::last_os_error().raw_os_error().unwrap_or(0))
    } else {
        Ok(rc)
    }
}

/// A profile file named `sc-…` in the temp dir, removed on drop.
struct TempProfile(PathBuf);

impl TempProfile {
    fn new(tag: &str, json: &str) -> Self {
        let path = std::env::temp_dir().join(format!("sc-{tag}-{}.json", std::process::id()));
        std::fs::write(&path, json).unwrap();
        TempProfile(path)
    }
}

impl Drop for TempProfile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn unconfined_installs_nothing() {
    assert!(compile(&Seccomp::Unconfined).unwrap().is_none());
}

#[test]
fn default_compiles() {
    let filter = compile(&Seccomp::Default).unwrap().unwrap();
    assert!(filter.programs.iter().all(|p| !p.is_empty()));
}

#[test]
fn missing_profile_error_names_the_file() {
    let path = PathBuf::from("/nonexistent/sc-profile.json");
    let msg = compile(&Seccomp::Profile(path.clone()))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("/nonexistent/sc-profile.json"), "{msg}");
    assert!(check_profile_file(&path).is_err());
}

#[test]
fn check_profile_file_names_file_and_key() {
    let f = TempProfile::new(
        "check",
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/x.sock"}"#,
    );
    let msg = check_profile_file(&f.0).unwrap_err();
    assert!(msg.contains(&*f.0.to_string_lossy()), "{msg}");
    assert!(msg.contains("listenerPath"), "{msg}");
    let ok = TempProfile::new("check-ok", r#"{"defaultAction": "SCMP_ACT_ALLOW"}"#);
    assert_eq!(check_profile_file(&ok.0), Ok(()));
}

#[test]
fn default_denies_escapes_and_allows_ordinary_calls() {
    let filter = compile(&Seccomp::Default).unwrap().unwrap();
    let pid = std::process::id() as libc::pid_t;
    under(filter, move || {
        // SAFETY: raw system calls with integer or null pointer arguments only; none of them
        // can succeed in a way that changes more than this thread.
        unsafe {
            // keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0)
            assert_eq!(
                sys(libc::syscall(libc::SYS_keyctl, 0, -3, 0)),
                Err(libc::EPERM)
            );
            assert_eq!(
                sys(libc::unshare(libc::CLONE_NEWNS).into()),
                Err(libc::EPERM)
            );
            assert_eq!(
                sys(libc::unshare(libc::CLONE_NEWUSER).into()),
                Err(libc::EPERM)
            );
            // No namespace flag: allowed.
            assert_eq!(sys(libc::unshare(0).into()), Ok(0));
            // CLONE_THREAD without CLONE_SIGHAND would be EINVAL from the kernel, so the
            // clone cannot succeed whatever the filter does.
            let flags = (libc::CLONE_NEWNET | libc::CLONE_THREAD) as libc::c_ulong;
            assert_eq!(
                sys(libc::syscall(libc::SYS_clone, flags, 0, 0, 0, 0)),
                Err(libc::EPERM)
            );
            assert_eq!(
                sys(libc::syscall(libc::SYS_clone3, 0, 0)),
                Err(libc::ENOSYS)
            );
            assert_eq!(
                sys(libc::syscall(libc::SYS_mount, 0, 0, 0, 0, 0)),
                Err(libc::EPERM)
            );
            assert_eq!(sys(libc::syscall(libc::SYS_setns, -1, 0)), Err(libc::EPERM));
            assert_eq!(sys(libc::syscall(libc::SYS_bpf, 0, 0, 0)), Err(libc::EPERM));
            // READ_IMPLIES_EXEC is refused, a query is not.
            assert_eq!(
                sys(libc::syscall(libc::SYS_personality, 0x0400000)),
                Err(libc::EPERM)
            );
            assert!(sys(libc::syscall(libc::SYS_personality, 0xffff_ffffu64)).is_ok());
            // Typing into a terminal: refused before the kernel looks at the descriptor, also
            // with high bits set in the request (the kernel reads it as 32 bits); other
            // requests reach the kernel, which has no fd 12345.
            let byte = b'x';
            for request in [
                u64::from(libc::TIOCSTI as u32),
                u64::from(libc::TIOCSTI as u32) | 1 << 32,
                u64::from(libc::TIOCLINUX as u32),
            ] {
                assert_eq!(
                    sys(libc::syscall(
                        libc::SYS_ioctl,
                        12345,
                        request,
                        &byte as *const u8
                    )),
                    Err(libc::EPERM),
                    "ioctl {request:#x}"
                );
            }
            assert_eq!(
                sys(libc::syscall(libc::SYS_ioctl, 12345, libc::TIOCGWINSZ, 0)),
                Err(libc::EBADF)
            );
            #[cfg(target_arch = "x86_64")]
            {
                // keyctl through the x32 ABI (bit 30 set in the number).
                let x32_keyctl = libc::SYS_keyctl | 0x4000_0000;
                assert_eq!(sys(libc::syscall(x32_keyctl, 0, -3, 0)), Err(libc::ENOSYS));
            }
            assert_eq!(libc::getpid(), pid);
        }
        // An ordinary socket, as ping or a routing daemon opens.
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        assert!(udp.local_addr().is_ok());
    });
}

#[test]
fn profile_denies_exactly_its_rules() {
    let f = TempProfile::new(
        "deny",
        r#"{
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"],
            "syscalls": [
                {"names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": 95},
                {"names": ["dup"], "action": "SCMP_ACT_ERRNO", "errnoRet": 77,
                 "args": [{"index": 0, "value": 12345, "op": "SCMP_CMP_EQ"}]}
            ]
        }"#,
    );
    let filter = compile(&Seccomp::Profile(f.0.clone())).unwrap().unwrap();
    let pid = std::process::id() as libc::pid_t;
    under(filter, move || {
        let mut buf = [0u8; 4096];
        // SAFETY: getcwd writes at most `buf.len()` bytes into `buf`; the other calls take
        // integers only.
        unsafe {
            assert_eq!(
                sys(libc::syscall(libc::SYS_getcwd, buf.as_mut_ptr(), buf.len())),
                Err(95)
            );
            assert_eq!(sys(libc::dup(12345).into()), Err(77));
            // Other arguments reach the kernel, which has no fd 12346.
            assert_eq!(sys(libc::dup(12346).into()), Err(libc::EBADF));
            assert_eq!(libc::getpid(), pid);
        }
    });
    // The harness thread has no filter.
    assert!(std::env::current_dir().is_ok());
}

#[test]
fn filter_survives_exec() {
    use std::os::unix::process::CommandExt;
    let filter = compile(&Seccomp::Default).unwrap().unwrap();
    let count = filter.programs.len();
    let mut cmd = std::process::Command::new("/bin/cat");
    cmd.arg("/proc/self/status");
    // SAFETY: runs in the forked child before exec; `install` does not allocate and only
    // calls prctl and seccomp (the error path allocates, which is tolerable in a test).
    unsafe {
        cmd.pre_exec(move || install(&filter).map_err(io::Error::other));
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success());
    let status = String::from_utf8_lossy(&out.stdout);
    assert!(status.contains("NoNewPrivs:\t1"), "{status}");
    assert!(status.contains("Seccomp:\t2"), "{status}");
    assert!(
        status.contains(&format!("Seccomp_filters:\t{count}")),
        "{status}"
    );
}
