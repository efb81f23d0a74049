//! Pieces shared by `benches/scale.rs`, `benches/startup.rs` and
//! `benches/scan_memory.rs`.
#![allow(dead_code, reason = "each bench uses a different subset")]

/// Whether this is a smoke run (`-- --test`, or not run by `cargo bench`):
/// small sizes, no measurement.
pub fn smoke() -> bool {
    let args: Vec<String> = std::env::args().collect();
    args.iter().any(|a| a == "--test") || !args.iter().any(|a| a == "--bench")
}

/// The name of the benches' topic number `t`.
pub fn topic(t: u32) -> String {
    format!("events-{t}")
}

/// The `/proc/self/status` fields `names` (such as `"VmRSS:"`), in MiB;
/// 0 for a field the kernel does not report.
pub fn status_mib<const N: usize>(names: [&str; N]) -> [f64; N] {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    names.map(|name| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    })
}
