//! A child that shares the spawner's memory while the spawner waits (`clone(CLONE_VM |
//! CLONE_VFORK)`, as `posix_spawn` makes its child), and a fork whose child is the caller's
//! parent's (`CLONE_PARENT`): together they let a short-lived intermediate join a node's user
//! namespace and make the node's init as the spawner's own child, without copying the
//! spawner's page tables for the intermediate or tearing them down when it ends.
//!
//! The rules for code that runs in the shared-memory child are on [`run`].

use nix::errno::Errno;
use nix::unistd::{ForkResult, Pid};

use super::NodeError;

/// Bytes of the intermediate's stack; the init it forks runs its whole life on its copy.
/// Pages are only backed once touched.
const STACK_SIZE: usize = 8 << 20;

/// A stack for [`run`], with an inaccessible page below it: running off its end is a fault,
/// never a write into other memory.
pub struct Stack {
    base: std::ptr::NonNull<libc::c_void>,
    len: usize,
}

impl Stack {
    pub fn new() -> Result<Self, NodeError> {
        let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
            .ok()
            .flatten()
            .and_then(|p| usize::try_from(p).ok())
            .unwrap_or(4096);
        let len = STACK_SIZE + page;
        // SAFETY: a new private anonymous mapping, placed by the kernel, aliases nothing.
        let base = unsafe {
            nix::sys::mman::mmap_anonymous(
                None,
                std::num::NonZeroUsize::new(len).ok_or_else(|| stack_error(Errno::EINVAL))?,
                nix::sys::mman::ProtFlags::PROT_READ | nix::sys::mman::ProtFlags::PROT_WRITE,
                nix::sys::mman::MapFlags::MAP_PRIVATE
                    | nix::sys::mman::MapFlags::MAP_NORESERVE
                    | nix::sys::mman::MapFlags::MAP_STACK,
            )
        }
        .map_err(stack_error)?;
        let stack = Stack { base, len };
        // SAFETY: the first page of the mapping just made; nothing points into it.
        unsafe { nix::sys::mman::mprotect(base, page, nix::sys::mman::ProtFlags::PROT_NONE) }
            .map_err(stack_error)?;
        Ok(stack)
    }

    /// The top of the stack, aligned to 16 bytes as the ABI wants.
    fn top(&mut self) -> *mut libc::c_void {
        let end = self.base.as_ptr() as usize + self.len;
        (end - end % 16) as *mut libc::c_void
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, used by no child any more (`run` returns only
        // once its child has ended).
        let _ = unsafe { nix::sys::mman::munmap(self.base, self.len) };
    }
}

fn stack_error(e: Errno) -> NodeError {
    NodeError::sys("map the intermediate's stack", e)
}

/// Runs `body` in a child that shares this process's memory, on `stack`, and returns once the
/// child has ended (and is reaped). The caller must be single-threaded.
///
/// This process is suspended meanwhile, so the child has its memory to itself, but all it
/// changes stays changed: `body` may read what this process owns and write answers into it,
/// and must free only what it allocated itself. Its descriptor table, credentials and
/// namespaces are its own (a copy), as for a forked child. A panic in `body` ends the child.
pub fn run(stack: &mut Stack, body: &mut dyn FnMut()) -> Result<(), NodeError> {
    let pid = spawn(stack, body)?;
    loop {
        match nix::sys::wait::waitpid(pid, None) {
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(NodeError::sys("wait for the intermediate", e)),
            Ok(_) => return Ok(()),
        }
    }
}

/// Runs `body` as [`run`] does, but returns as soon as the child has executed a program or
/// ended (as `vfork` does), with its PID: the caller waits for it. The same rules hold for
/// `body`, which ends the child by executing a program or with `_exit`.
pub fn spawn(stack: &mut Stack, body: &mut dyn FnMut()) -> Result<Pid, NodeError> {
    let mut body: &mut dyn FnMut() = body;
    let arg: *mut &mut dyn FnMut() = &mut body;
    let flags = libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD;
    // SAFETY: `trampoline` runs on `stack`, which no one else uses while the child runs on it
    // (this process is suspended until the child executes a program or ends, and `stack` is
    // borrowed mutably until then); `arg` points to `body`, alive on this frame until then;
    // the child ends with `_exit`, which runs no handler of this process.
    let pid = unsafe { libc::clone(trampoline, stack.top(), flags, arg.cast()) };
    if pid < 0 {
        return Err(NodeError::sys(
            "start a child",
            std::io::Error::last_os_error(),
        ));
    }
    Ok(Pid::from_raw(pid))
}

extern "C" fn trampoline(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `run` passes a pointer to a `&mut dyn FnMut()` that outlives this child.
    let body = unsafe { &mut *arg.cast::<&mut dyn FnMut()>() };
    let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body));
    // SAFETY: `_exit` ends the child at once, without running this process's exit handlers
    // or flushing its buffers (which are the parent's).
    unsafe { libc::_exit(if ran.is_ok() { 0 } else { 1 }) }
}

/// Forks a child whose parent is this process's parent (`CLONE_PARENT`): the spawner's, when
/// called in [`run`]'s child. Otherwise as `fork`; the child continues on its copy of the
/// current stack.
pub fn fork_sibling() -> Result<ForkResult, Errno> {
    let flags = (libc::CLONE_PARENT | libc::SIGCHLD) as libc::c_ulong;
    // SAFETY: clone with no new stack is fork with flags: the child gets a copy of this
    // process's memory and returns here with 0. The process is single-threaded (the caller
    // of `run` must be, and its child is a process of its own), so the child's copy holds
    // no lock another thread held.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_clone,
            flags,
            0usize,
            std::ptr::null_mut::<libc::c_int>(),
            std::ptr::null_mut::<libc::c_int>(),
            0usize,
        )
    };
    match rc {
        0 => Ok(ForkResult::Child),
        pid if pid > 0 => Ok(ForkResult::Parent {
            child: Pid::from_raw(pid as libc::pid_t),
        }),
        _ => Err(Errno::last()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::wait::{waitpid, WaitStatus};

    #[test]
    fn the_child_writes_into_our_memory_and_its_fork_is_our_child() {
        let mut stack = Stack::new().expect("stack");
        let mut child_pid = 0;
        let mut sibling = None;
        let mut body = || {
            child_pid = std::process::id();
            match fork_sibling() {
                // SAFETY: `_exit` ends the forked child at once.
                Ok(ForkResult::Child) => unsafe { libc::_exit(7) },
                Ok(ForkResult::Parent { child }) => sibling = Some(child),
                Err(_) => {}
            }
        };
        run(&mut stack, &mut body).expect("run");
        assert_ne!(child_pid, 0, "the child's write is seen here");
        assert_ne!(child_pid, std::process::id(), "by a process of its own");
        let sibling = sibling.expect("the child forked");
        // Only a parent may wait for a process.
        assert_eq!(waitpid(sibling, None), Ok(WaitStatus::Exited(sibling, 7)));
    }

    #[test]
    fn spawn_returns_once_the_child_runs_its_program() {
        use std::ffi::CString;
        use std::io::Write;
        let (read, write) = nix::unistd::pipe().expect("pipe");
        let argv: Vec<CString> = ["sh", "-c", "read line; exit 5"]
            .iter()
            .map(|a| CString::new(*a).expect("no NUL"))
            .collect();
        let sh = CString::new("/bin/sh").expect("no NUL");
        let mut stack = Stack::new().expect("stack");
        let mut body = || {
            // The program waits for a line on its standard input, the pipe.
            if nix::unistd::dup2_stdin(&read).is_ok() {
                let _ = nix::unistd::execv(&sh, &argv);
            }
            // SAFETY: `_exit` ends the child at once.
            unsafe { libc::_exit(127) }
        };
        let pid = spawn(&mut stack, &mut body).expect("spawn");
        drop(stack);
        drop(read);
        // Back here while the program still runs: it waits for the line.
        assert_eq!(
            waitpid(pid, Some(nix::sys::wait::WaitPidFlag::WNOHANG)),
            Ok(WaitStatus::StillAlive)
        );
        let mut write = std::fs::File::from(write);
        write.write_all(b"go\n").expect("write the line");
        assert_eq!(waitpid(pid, None), Ok(WaitStatus::Exited(pid, 5)));
    }
}
