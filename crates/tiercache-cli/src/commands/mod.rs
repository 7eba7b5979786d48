//! The four commands, one module each.

pub mod cleanup;
pub mod inspect;
pub mod status;
pub mod warm;

use std::io::Write;

/// Writes to stdout. A reader that went away (`tiercache cache-status --json | head`) is not an
/// error worth a word: the output was for it alone.
pub fn emit(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

/// Prints a line unless `--quiet`.
macro_rules! say {
    ($global:expr, $($arg:tt)*) => {
        if !$global.quiet {
            $crate::commands::emit(&format!("{}\n", format_args!($($arg)*)));
        }
    };
}
pub(crate) use say;
