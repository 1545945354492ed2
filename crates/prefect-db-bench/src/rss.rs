//! Peak resident memory (`VmHWM` of `/proc/<pid>/status`), in MiB.

/// The peak RSS of this process so far, in MiB (`None` where `/proc` is not available).
pub fn peak_rss_mb() -> Option<f64> {
    read_hwm("/proc/self/status")
}

/// The peak RSS of process `pid` so far, in MiB (`None` once it has exited).
pub fn peak_rss_mb_of(pid: u32) -> Option<f64> {
    read_hwm(&format!("/proc/{pid}/status"))
}

fn read_hwm(path: &str) -> Option<f64> {
    let text = std::fs::read_to_string(path).ok()?;
    let line = text.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}
