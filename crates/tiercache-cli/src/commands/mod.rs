//! The four commands, one module each.

pub mod cleanup;
pub mod inspect;
pub mod status;
pub mod warm;

/// Prints a line unless `--quiet`.
macro_rules! say {
    ($global:expr, $($arg:tt)*) => {
        if !$global.quiet {
            println!($($arg)*);
        }
    };
}
pub(crate) use say;
