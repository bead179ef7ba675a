//! Running an application as a child process, to SIGKILL it or stop it with SIGTERM.
//!
//! ```no_run
//! use streamtime_integration_tests::app_process::AppProcess;
//! let app = AppProcess::start("target/debug/streamtime-test-app", &["--help"]);
//! app.kill();
//! ```

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A child process running an application; killed when dropped.
pub struct AppProcess {
    // A mutex so that `exit_status` can look through a shared reference.
    child: std::sync::Mutex<Child>,
}

impl AppProcess {
    /// Starts `binary` with `args`; its stderr goes to the test's stderr.
    pub fn start(binary: &str, args: &[&str]) -> Self {
        Self::start_with_env(binary, args, &[])
    }

    /// Starts `binary` with `args` and the environment variables `env` added to this
    /// process's own (for example `STREAMTIME_FAULTS`); its stderr goes to the test's stderr.
    pub fn start_with_env(binary: &str, args: &[&str], env: &[(&str, &str)]) -> Self {
        Self::spawn(binary, args, env, Stdio::inherit())
    }

    /// Like [`AppProcess::start_with_env`], with the process's stderr appended to the file
    /// `log` (created if missing), so that many processes leave one readable log each.
    pub fn start_logging_to(
        binary: &str,
        args: &[&str],
        env: &[(&str, &str)],
        log: &std::path::Path,
    ) -> Self {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap_or_else(|e| panic!("cannot open the log {}: {e}", log.display()));
        Self::spawn(binary, args, env, Stdio::from(file))
    }

    fn spawn(binary: &str, args: &[&str], env: &[(&str, &str)], stderr: Stdio) -> Self {
        let child = Command::new(binary)
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {binary}: {e}"));
        AppProcess {
            child: std::sync::Mutex::new(child),
        }
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.lock().unwrap_or_else(|e| e.into_inner()).id()
    }

    fn child(&mut self) -> &mut Child {
        self.child.get_mut().unwrap_or_else(|e| e.into_inner())
    }

    /// How the process ended, or `None` while it runs.
    pub fn exit_status(&self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        child.try_wait().ok().flatten()
    }

    /// Waits up to `timeout` for the process to end by itself; `None` if it still runs.
    pub fn wait_for_exit(&self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.exit_status() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL: no commit, no checkpoint, no goodbye.
    pub fn kill(self) {
        self.kill_and_reap();
    }

    /// SIGKILL, and how the process ended: by the signal, or on its own if it had already
    /// exited.
    pub fn kill_and_reap(mut self) -> std::process::ExitStatus {
        self.child().kill().expect("kill");
        self.child().wait().expect("reap")
    }

    /// SIGTERM, then waits for a clean exit (status 0) for up to 60 s.
    pub fn terminate(mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child().id().to_string()])
            .status()
            .expect("kill -TERM");
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child().try_wait().expect("wait") {
                assert!(status.success(), "clean shutdown exits 0, got {status}");
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the app did not stop within 60 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for AppProcess {
    fn drop(&mut self) {
        let _ = self.child().kill();
        let _ = self.child().wait();
    }
}

/// Where an application process reads and writes: the command-line options every app binary
/// of the harness takes (`--bootstrap-servers`, `--application-id`, `--input`, `--output`).
#[derive(Debug, Clone, clap::Args)]
pub struct AppConnection {
    /// Kafka bootstrap servers.
    #[arg(long)]
    pub bootstrap_servers: String,
    /// Application id (consumer group, internal topic prefix).
    #[arg(long)]
    pub application_id: String,
    /// Input topic.
    #[arg(long)]
    pub input: String,
    /// Output topic.
    #[arg(long)]
    pub output: String,
}

impl AppConnection {
    /// The options as command-line arguments.
    ///
    /// ```
    /// use streamtime_integration_tests::app_process::AppConnection;
    /// let c = AppConnection {
    ///     bootstrap_servers: "b:9092".into(),
    ///     application_id: "app".into(),
    ///     input: "in".into(),
    ///     output: "out".into(),
    /// };
    /// assert_eq!(c.args()[..2], ["--bootstrap-servers", "b:9092"]);
    /// ```
    pub fn args(&self) -> Vec<&str> {
        vec![
            "--bootstrap-servers",
            &self.bootstrap_servers,
            "--application-id",
            &self.application_id,
            "--input",
            &self.input,
            "--output",
            &self.output,
        ]
    }
}

/// One task line of a test app's `--status-file`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskLine {
    /// `active`, `restoring` or `standby`.
    pub role: String,
    /// The task id, e.g. `0_1`.
    pub task: String,
    /// Records processed since the task was created here.
    pub processed: u64,
    /// Changelog records restored (so far, while restoring).
    pub restored: u64,
}

/// The task lines of a test app's status file; none while it does not exist yet.
///
/// ```
/// let lines = streamtime_integration_tests::app_process::read_status(
///     std::path::Path::new("/nonexistent"),
/// );
/// assert!(lines.is_empty());
/// ```
pub fn read_status(path: &std::path::Path) -> Vec<TaskLine> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let (role, task) = (words.next()?, words.next()?);
            let number = |name: &str| {
                line.split_whitespace()
                    .find_map(|w| w.strip_prefix(name))
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0)
            };
            Some(TaskLine {
                role: role.to_string(),
                task: task.to_string(),
                processed: number("processed="),
                restored: number("restored="),
            })
        })
        .collect()
}
