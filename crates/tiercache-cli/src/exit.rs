//! Every exit code of `tiercache`, in one place: the monitoring-plugin convention (0 ok, 1 warning,
//! 2 critical, 3 unknown) that `cache-status` answers by, which the other commands share.

use tiercache_widgets::HealthLevel;

/// How a run ended. `--help` and docs/OPERATIONS.md ("Exit codes") list the same table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Exit {
    /// 0: done; cache-status: healthy.
    Ok = 0,
    /// 1: cache-status: warning; warm-cache and cache-cleanup: something failed, or the user
    /// declined; inspect: the key is not in L2.
    Warning = 1,
    /// 2: cache-status: critical.
    Critical = 2,
    /// 3: Redis unreachable; cache-status: also no node has stored a snapshot to judge by.
    Unknown = 3,
    /// 64 (`EX_USAGE`): bad input — a flag, widget type, range, URL or variable — or `--force`
    /// without `--yes` and without a terminal to confirm on.
    Usage = 64,
}

impl Exit {
    /// The code of a health level.
    pub fn of_level(level: HealthLevel) -> Exit {
        match level {
            HealthLevel::Healthy => Exit::Ok,
            HealthLevel::Warning => Exit::Warning,
            HealthLevel::Critical => Exit::Critical,
        }
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(exit: Exit) -> Self {
        // Every discriminant above is below 256.
        std::process::ExitCode::from(exit as u8)
    }
}
