//! A small tmpfs mounted for a test (needs root), unmounted on drop.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard};

/// Held from mounting to unmounting: tests that mount run one at a time.
/// `mount` and `umount` are forked children, and a child forked while
/// another test has a log open holds a copy of its lock file's descriptor
/// (and so its `flock`) until it execs, so that test's reopen could find
/// its own directory `Locked`.
static SERIAL: Mutex<()> = Mutex::new(());

/// A mounted tmpfs; dropping it unmounts it.
pub struct Mount(PathBuf, MutexGuard<'static, ()>);

impl Mount {
    /// Mounts a tmpfs of `size` (as `mount -o size=`, e.g. `4m`) on `dir`;
    /// `None` if that is not possible here (not root, no `mount`).
    pub fn tmpfs(dir: &Path, size: &str) -> Option<Mount> {
        // A test that failed while holding it poisoned it; the mount is still free.
        let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .stderr(std::process::Stdio::null())
            .status()
            .ok()?;
        status.success().then(|| Mount(dir.to_path_buf(), serial))
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        // Nothing to do about a failed unmount in a drop but say so.
        if let Err(e) = Command::new("umount").arg(&self.0).status() {
            eprintln!("umount {}: {e}", self.0.display());
        }
    }
}
