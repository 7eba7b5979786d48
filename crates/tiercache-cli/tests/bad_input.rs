//! What every command does with Redis out of reach or input it cannot use, and what `--help` says.
#![allow(clippy::unwrap_used)]

mod common;

use common::tiercache;

#[test]
fn an_unreachable_redis_is_exit_3_naming_the_url_without_its_password() {
    for command in [
        &["cache-status"][..],
        &["cache-cleanup", "--dry-run"],
        &["inspect", "some-key"],
    ] {
        let mut args = vec!["--redis-url", "redis://ops:s3cret@127.0.0.1:1/2"];
        args.extend_from_slice(command);
        let run = tiercache(&args, &[]);
        assert_eq!(run.code, 3, "{command:?}: {run:?}");
        assert!(
            run.stderr
                .contains("unreachable at redis://ops:***@127.0.0.1:1/2"),
            "{run:?}"
        );
        assert!(!run.stderr.contains("s3cret"), "{run:?}");
    }
    // The URL comes from REDIS_URL too, as the services read it.
    let run = tiercache(&["cache-status"], &[("REDIS_URL", "redis://127.0.0.1:1")]);
    assert_eq!(run.code, 3, "{run:?}");
    assert!(
        run.stderr.contains("redis://127.0.0.1:1 (database 1)"),
        "{run:?}"
    );
}

#[test]
fn a_malformed_url_or_variable_names_the_wrong_part_and_exits_64() {
    let run = tiercache(
        &["--redis-url", "redis://127.0.0.1:99999", "cache-status"],
        &[],
    );
    assert_eq!(run.code, 64, "{run:?}");
    assert!(
        run.stderr.contains("port") && run.stderr.contains("99999"),
        "{run:?}"
    );
    let run = tiercache(
        &["--redis-url", "http://127.0.0.1:6379", "inspect", "k"],
        &[],
    );
    assert_eq!(run.code, 64, "{run:?}");
    assert!(run.stderr.contains("scheme"), "{run:?}");
    let run = tiercache(&["cache-status"], &[("WIDGET_CACHE_LOCK_RETRIES", "many")]);
    assert_eq!(run.code, 64, "{run:?}");
    assert!(run.stderr.contains("WIDGET_CACHE_LOCK_RETRIES"), "{run:?}");
    let run = tiercache(&["cache-status", "--widget", "pie"], &[]);
    assert_eq!(run.code, 64, "{run:?}");
    assert!(
        run.stderr.contains("total_donations"),
        "the valid types: {run:?}"
    );
    let run = tiercache(&["cache-cleanup", "--yes"], &[]);
    assert_eq!(run.code, 64, "--yes only goes with --force: {run:?}");
}

#[test]
fn help_shows_examples_for_every_command_and_the_exit_codes() {
    let top = tiercache(&["--help"], &[]);
    assert_eq!(top.code, 0, "{top:?}");
    for expected in [
        "Examples:",
        "Exit codes:",
        "64",
        "warm-cache",
        "cache-status",
        "cache-cleanup",
        "inspect",
    ] {
        assert!(top.stdout.contains(expected), "{expected:?} in {top:?}");
    }
    for command in ["warm-cache", "cache-status", "cache-cleanup", "inspect"] {
        let run = tiercache(&[command, "--help"], &[]);
        assert_eq!(run.code, 0, "{run:?}");
        assert!(
            run.stdout.contains("Examples:")
                && run.stdout.contains(&format!("tiercache {command}")),
            "{command}: {run:?}"
        );
    }
    let cleanup = tiercache(&["cache-cleanup", "--help"], &[]);
    assert!(
        cleanup.stdout.contains("presence key"),
        "how a gone holder is decided: {cleanup:?}"
    );
}
