//! Process figures from `/proc/self` (Linux; elsewhere they are left out): CPU seconds,
//! resident and virtual memory, open and maximum file descriptors, as the standard
//! `process_*` metrics of Prometheus client libraries.

/// What `/proc/self` says about this process.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProcessStats {
    /// User plus system CPU time, seconds.
    pub cpu_seconds: f64,
    /// Resident set size, bytes.
    pub resident_bytes: u64,
    /// Virtual memory size, bytes.
    pub virtual_bytes: u64,
    /// Open file descriptors.
    pub open_fds: u64,
    /// The soft open-file limit.
    pub max_fds: Option<u64>,
}

/// Clock ticks per second of `/proc/<pid>/stat` times (`sysconf(_SC_CLK_TCK)`: 100 on every
/// Linux architecture in use).
const TICKS: f64 = 100.0;

/// Reads the figures; `None` where `/proc/self` is not there.
pub fn read() -> Option<ProcessStats> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let mut s = parse_stat(&stat)?;
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        s.resident_bytes = status_kib(&status, "VmRSS:").unwrap_or(0) * 1024;
    }
    s.open_fds = std::fs::read_dir("/proc/self/fd").map(|d| d.count() as u64).unwrap_or(0);
    s.max_fds = std::fs::read_to_string("/proc/self/limits").ok().and_then(|l| max_open_files(&l));
    Some(s)
}

/// `/proc/self/stat`: fields after the `(comm)` (which may hold spaces): utime is the 14th field
/// of the line, stime the 15th, vsize the 23rd (proc(5)).
fn parse_stat(stat: &str) -> Option<ProcessStats> {
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state): field n is f[n - 3].
    let num = |n: usize| f.get(n - 3).and_then(|v| v.parse::<u64>().ok());
    let cpu = (num(14)? + num(15)?) as f64 / TICKS;
    Some(ProcessStats { cpu_seconds: cpu, virtual_bytes: num(23)?, ..ProcessStats::default() })
}

fn status_kib(status: &str, key: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(key))?;
    line.get(key.len()..)?.split_whitespace().next()?.parse().ok()
}

fn max_open_files(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.get("Max open files".len()..)?.split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_formats() {
        let stat = "4242 (tong zheng) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 9 0 100 123456789 2000 ...";
        let s = parse_stat(stat).unwrap();
        assert!((s.cpu_seconds - 3.0).abs() < 1e-9, "{s:?}");
        assert_eq!(s.virtual_bytes, 123_456_789);
        assert_eq!(status_kib("Name:\tx\nVmRSS:\t  2048 kB\n", "VmRSS:"), Some(2048));
        let limits = "Limit Soft Limit Hard Limit Units\nMax open files            20000                20000                files\n";
        assert_eq!(max_open_files(limits), Some(20000));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn reads_this_process() {
        let s = read().unwrap();
        assert!(s.resident_bytes > 0 && s.virtual_bytes >= s.resident_bytes && s.open_fds > 0, "{s:?}");
    }
}
