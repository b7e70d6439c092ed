//! The peak resident memory of a child process, read from outside at the moment it exits.
//!
//! `ru_maxrss` from `wait4` is not that figure for a child of a large process: Linux
//! records, at `exec`, the high-water mark of the memory the process had *before* it (for
//! a `vfork`-style spawn, the parent's own; after a `fork`, a copy of it), and reports the
//! larger of that and the new program's peak. The benchmark process holds whole homes in
//! memory, so its children's `ru_maxrss` showed the benchmark's size, not theirs.
//!
//! So the child is started traced (`PTRACE_TRACEME` before its `exec`) with
//! `PTRACE_O_TRACEEXIT`: it stops once as it exits, its memory still mapped, and its
//! `VmHWM` (the high-water mark of the new program's own address space) is read from
//! `/proc/<pid>/status` before it is let go. Signals it receives on the way are passed on.
//! The child is killed if this process dies first (`PTRACE_O_EXITKILL`).

use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::{Duration, Instant};

/// How a traced child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TracedExit {
    /// Spawn to reaping.
    pub wall: Duration,
    /// Raw wait status.
    pub status: libc::c_int,
    /// `VmHWM` at its exit, KiB (`None` if the exit stop was not seen).
    pub peak_rss_kb: Option<u64>,
}

impl TracedExit {
    pub fn success(&self) -> bool {
        libc::WIFEXITED(self.status) && libc::WEXITSTATUS(self.status) == 0
    }
}

/// Runs `cmd` to its end and reads its peak RSS as it exits.
pub fn run_traced(mut cmd: Command) -> Result<TracedExit, String> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    // SAFETY: the closure runs in the child between fork and exec and only makes one
    // async-signal-safe system call.
    unsafe {
        cmd.pre_exec(|| {
            let rc = libc::ptrace(
                libc::PTRACE_TRACEME,
                0,
                std::ptr::null_mut::<libc::c_void>(),
                std::ptr::null_mut::<libc::c_void>(),
            );
            if rc == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let started = Instant::now();
    let child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {program}: {e}"))?;
    let pid = child.id() as libc::pid_t;
    // The first stop is the SIGTRAP of its exec.
    let status = wait(pid)?;
    if !libc::WIFSTOPPED(status) {
        return Err(format!(
            "{program} did not stop at its exec (wait status {status})"
        ));
    }
    let options = libc::PTRACE_O_TRACEEXIT | libc::PTRACE_O_EXITKILL;
    ptrace(libc::PTRACE_SETOPTIONS, pid, options as usize)?;
    ptrace(libc::PTRACE_CONT, pid, 0)?;
    let mut peak_rss_kb = None;
    loop {
        let status = wait(pid)?;
        if libc::WIFEXITED(status) || libc::WIFSIGNALED(status) {
            return Ok(TracedExit {
                wall: started.elapsed(),
                status,
                peak_rss_kb,
            });
        }
        if !libc::WIFSTOPPED(status) {
            continue;
        }
        let exit_event = libc::SIGTRAP | (libc::PTRACE_EVENT_EXIT << 8);
        let forward = if status >> 8 == exit_event {
            peak_rss_kb = vm_hwm_kb(pid);
            0
        } else {
            libc::WSTOPSIG(status) as usize
        };
        ptrace(libc::PTRACE_CONT, pid, forward)?;
    }
}

/// `waitpid` for `pid`, retried on `EINTR`.
fn wait(pid: libc::pid_t) -> Result<libc::c_int, String> {
    loop {
        let mut status: libc::c_int = 0;
        // SAFETY: `pid` is our own child and `status` a live local.
        let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
        if rc == pid {
            return Ok(status);
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(format!("cannot wait for process {pid}: {err}"));
        }
    }
}

/// A `ptrace` request on our stopped tracee whose `data` is `data`.
fn ptrace(request: libc::c_uint, pid: libc::pid_t, data: usize) -> Result<(), String> {
    // SAFETY: `pid` is our tracee, stopped; these requests take no pointer arguments.
    let rc = unsafe {
        libc::ptrace(
            request,
            pid,
            std::ptr::null_mut::<libc::c_void>(),
            data as *mut libc::c_void,
        )
    };
    if rc == -1 {
        return Err(format!(
            "ptrace request {request} on process {pid}: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// `VmHWM` of `pid` in KiB.
fn vm_hwm_kb(pid: libc::pid_t) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dd(megabytes: usize) -> Command {
        let mut cmd = Command::new("dd");
        cmd.args([
            "if=/dev/zero",
            "of=/dev/null",
            &format!("bs={megabytes}M"),
            "count=1",
        ])
        .stderr(std::process::Stdio::null());
        cmd
    }

    #[test]
    fn a_childs_own_peak_is_read_at_its_exit() {
        // dd reads its whole block into one buffer: its peak is at least the block.
        let big = run_traced(dd(96)).unwrap();
        assert!(big.success(), "{big:?}");
        let kb = big.peak_rss_kb.expect("the exit stop was seen");
        assert!(kb >= 96 * 1024, "{kb} KiB");
        let small = run_traced(dd(1)).unwrap();
        assert!(small.peak_rss_kb.unwrap() < 48 * 1024, "{small:?}");
    }

    #[test]
    fn the_parents_memory_is_not_counted_where_wait4_counts_it() {
        // This process touches 256 MiB; a child spawned now inherits that high-water mark
        // in `ru_maxrss`, but not in the traced figure.
        let ballast = vec![1u8; 256 << 20];
        let traced = run_traced(dd(1)).unwrap();
        let mut child = dd(1).spawn().unwrap();
        let pid = child.id() as libc::pid_t;
        let mut status = 0;
        // SAFETY: an all-zero rusage is valid; `pid` is our unreaped child.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        assert_eq!(unsafe { libc::wait4(pid, &mut status, 0, &mut usage) }, pid);
        let _ = child.try_wait();
        std::hint::black_box(&ballast);
        assert!(
            usage.ru_maxrss > 200 * 1024,
            "wait4 counts the parent's memory"
        );
        assert!(traced.peak_rss_kb.unwrap() < 48 * 1024, "{traced:?}");
    }

    #[test]
    fn a_failing_child_is_reported_as_such() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "exit 3"]);
        let exit = run_traced(cmd).unwrap();
        assert!(!exit.success());
        assert_eq!(libc::WEXITSTATUS(exit.status), 3);
        assert!(exit.peak_rss_kb.is_some());
    }
}
