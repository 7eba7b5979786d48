//! [`ScratchDatabase`]: a database file of a test's own.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// A path for a SQLite database file of its own in the system's temporary directory, unique within
/// the process; the file and the WAL files beside it (`-wal`, `-shm`) are removed when dropped.
///
/// ```
/// let db = tiercache_testkit::ScratchDatabase::new("doc");
/// assert!(db.path().to_string_lossy().contains("doc"));
/// ```
#[derive(Debug)]
pub struct ScratchDatabase(PathBuf);

impl ScratchDatabase {
    /// A fresh path whose file name starts with `prefix`; nothing is created.
    pub fn new(prefix: &str) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        ScratchDatabase(std::env::temp_dir().join(format!(
            "{prefix}-{}-{}.sqlite",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        )))
    }

    /// The database file's path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut path = self.0.clone().into_os_string();
            path.push(suffix);
            // Absent when the test never opened it, or SQLite removed the WAL files itself.
            let _ = std::fs::remove_file(path);
        }
    }
}
