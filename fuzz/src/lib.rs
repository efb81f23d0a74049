//! Helpers shared by the fuzz targets: a scratch directory and a partition
//! config with small segments.

use std::path::{Path, PathBuf};

use moldau::PartitionConfig;

/// A scratch directory for `target` in this process: under
/// `MOLDAU_FUZZ_SCRATCH` (set by `run.sh`, which removes it afterwards), else
/// in memory where possible (fsyncs cost nothing there).
pub fn scratch(target: &str) -> PathBuf {
    let shm = Path::new("/dev/shm");
    let root = match std::env::var_os("MOLDAU_FUZZ_SCRATCH") {
        Some(dir) => PathBuf::from(dir),
        None if shm.is_dir() => shm.to_path_buf(),
        None => std::env::temp_dir(),
    };
    root.join(format!("moldau-fuzz-{target}-{}", std::process::id()))
}

/// Small segments and a dense index, so small inputs roll and index.
pub fn config() -> PartitionConfig {
    PartitionConfig {
        segment_bytes: 4096,
        index_interval_bytes: 128,
        max_record_bytes: 4096,
        ..PartitionConfig::default()
    }
}
