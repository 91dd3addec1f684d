//! A process's footprint read from `/proc`: resident memory now and at its peak
//! (`VmRSS`, `VmHWM` in `/proc/PID/status`) and CPU time used (`utime + stime` in
//! `/proc/PID/stat`). Reads only; a process that has gone reads as `None`.

use std::time::Duration;

/// Clock ticks per second of `/proc/PID/stat` times: `USER_HZ`, fixed at 100 in Linux's ABI.
const TICKS_PER_SECOND: u64 = 100;

/// Resident memory of a process, in KiB.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Memory {
    /// Resident now (`VmRSS`).
    pub rss_kib: u64,
    /// Peak resident over the process's life (`VmHWM`).
    pub hwm_kib: u64,
}

impl Memory {
    /// `VmRSS` in MiB.
    #[must_use]
    pub fn rss_mib(&self) -> f64 {
        kib_to_mib(self.rss_kib)
    }

    /// `VmHWM` in MiB.
    #[must_use]
    pub fn hwm_mib(&self) -> f64 {
        kib_to_mib(self.hwm_kib)
    }
}

fn kib_to_mib(kib: u64) -> f64 {
    f64::from(u32::try_from(kib).unwrap_or(u32::MAX)) / 1024.0
}

/// The memory of process `pid`.
#[must_use]
pub fn memory(pid: u32) -> Option<Memory> {
    parse_status(&std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?)
}

/// The CPU time (user + system) process `pid` has used.
#[must_use]
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let ticks = parse_stat_ticks(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)?;
    Some(Duration::from_millis(ticks * 1000 / TICKS_PER_SECOND))
}

/// `VmRSS` and `VmHWM` from the text of `/proc/PID/status`.
#[must_use]
pub fn parse_status(text: &str) -> Option<Memory> {
    let field = |name: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kib| kib.parse::<u64>().ok())
    };
    Some(Memory {
        rss_kib: field("VmRSS:")?,
        hwm_kib: field("VmHWM:")?,
    })
}

/// `utime + stime` in ticks from the text of `/proc/PID/stat` (fields 14 and 15; the command
/// name, field 2, is parenthesised and may hold spaces, so fields are counted after its `)`).
#[must_use]
pub fn parse_stat_ticks(text: &str) -> Option<u64> {
    let (_, after_name) = text.rsplit_once(')')?;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]
    use super::*;

    #[test]
    fn status_yields_current_and_peak_resident_memory() {
        let text = "Name:\tkubelift-operator\nVmPeak:\t 900000 kB\nVmHWM:\t   51200 kB\n\
                    VmRSS:\t   40960 kB\nThreads:\t3\n";
        let memory = parse_status(text).unwrap();
        assert_eq!(memory.rss_kib, 40_960);
        assert_eq!(memory.hwm_kib, 51_200);
        assert!((memory.hwm_mib() - 50.0).abs() < f64::EPSILON);
    }

    #[test]
    fn stat_ticks_are_user_plus_system_even_with_spaces_in_the_name() {
        let text = "4242 (kubelift helper) S 1 4242 4242 0 -1 4194560 300 0 0 0 \
                    17 5 0 0 20 0 3 0 1000 1000000 900 18446744073709551615";
        assert_eq!(parse_stat_ticks(text), Some(22));
    }

    #[test]
    fn the_benchmark_process_reads_its_own_footprint() {
        let me = std::process::id();
        assert!(memory(me).is_some_and(|m| m.rss_kib > 0 && m.hwm_kib >= m.rss_kib));
        assert!(cpu_time(me).is_some());
    }
}
