//! The `streamtime-reset` command as a process: help, and bad input refused with a clear
//! message and a failing exit status before any broker is contacted.

use std::process::Command;

fn reset(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_streamtime-reset"))
        .args(args)
        .output()
        .expect("the command runs");
    (
        out.status.code().expect("exited"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn help_lists_every_option() {
    let (code, stdout, _) = reset(&["--help"]);
    assert_eq!(code, 0);
    for option in [
        "--bootstrap-servers",
        "--application-id",
        "--input-topics",
        "--to-earliest",
        "--to-datetime",
        "--to-timestamp-ms",
        "--state-dir",
        "--dry-run",
    ] {
        assert!(stdout.contains(option), "{option} missing from:\n{stdout}");
    }
}

#[test]
fn bad_input_fails_with_a_clear_message() {
    let base = [
        "--bootstrap-servers",
        "127.0.0.1:1",
        "--application-id",
        "app",
    ];
    let (code, _, stderr) = reset(&base);
    assert_eq!(code, 2, "usage error");
    assert!(stderr.contains("--input-topics"), "{stderr}");

    let mut args = base.to_vec();
    args.extend([
        "--input-topics",
        "in",
        "--to-earliest",
        "--to-timestamp-ms",
        "5",
    ]);
    let (code, _, stderr) = reset(&args);
    assert_eq!(code, 2, "conflicting targets");
    assert!(stderr.contains("cannot be used with"), "{stderr}");

    let mut args = base.to_vec();
    args.extend(["--input-topics", "in", "--to-datetime", "next week"]);
    let (code, stdout, stderr) = reset(&args);
    assert_eq!(code, 1);
    assert!(stdout.is_empty(), "nothing reported as done: {stdout}");
    assert!(
        stderr.contains("streamtime-reset:") && stderr.contains("not a date-time"),
        "{stderr}"
    );

    let (code, _, stderr) = reset(&[
        "--bootstrap-servers",
        "127.0.0.1:1",
        "--application-id",
        "bad id",
        "--input-topics",
        "in",
    ]);
    assert_eq!(code, 1);
    assert!(stderr.contains("application_id"), "{stderr}");
}
