//! Child processes for the crash tests: spawn a test binary, watch what it prints, SIGKILL it.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A running test binary and the lines it prints.
#[derive(Debug)]
pub struct ChildProcess {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl ChildProcess {
    /// Spawns `binary` with `args`, the tests' `DATABASE_URL` and `NATS_URL` in its environment.
    pub fn spawn(binary: &str, args: &[&str]) -> Self {
        Self::spawn_on(binary, args, &crate::database_url())
    }

    /// Spawns `binary` with `args` and `database_url` as its `DATABASE_URL`.
    pub fn spawn_on(binary: &str, args: &[&str], database_url: &str) -> Self {
        let mut child = Command::new(binary)
            .args(args)
            .env("DATABASE_URL", database_url)
            .env("NATS_URL", crate::nats_url())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn {binary}: {e}"));
        let stdout = child.stdout.take().expect("stdout");
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        Self { child, lines }
    }

    /// Waits for the process to print `line`.
    pub fn expect(&self, line: &str, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(got) if got == line => return,
                Ok(_) => {}
                Err(_) => panic!("the process did not print `{line}` within {within:?}"),
            }
        }
    }

    /// Waits for the process to print a line starting with `prefix`, and returns the rest of it.
    pub fn line_starting_with(&self, prefix: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(got) => {
                    if let Some(rest) = got.strip_prefix(prefix) {
                        return rest.to_owned();
                    }
                }
                Err(_) => {
                    panic!("the process printed no line starting with `{prefix}` within {within:?}")
                }
            }
        }
    }

    /// SIGKILLs it and reaps it.
    pub fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reap");
    }

    /// SIGKILLs it, reaps it, and returns the lines it printed that were not read yet.
    pub fn kill_and_collect(mut self) -> Vec<String> {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reap");
        // The reader thread ends when the pipe closes, which the kill has done.
        let mut rest = Vec::new();
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(10)) {
            rest.push(line);
        }
        rest
    }

    /// Sends it `signal` (`STOP` pauses it, `CONT` lets it go on).
    pub fn signal(&self, signal: &str) {
        let sent = Command::new("kill")
            .args([format!("-{signal}"), self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(sent.success(), "cannot send SIG{signal}");
    }

    /// Waits for it to exit successfully.
    pub fn finish(mut self, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                assert!(status.success(), "the process failed: {status}");
                return;
            }
            if Instant::now() > deadline {
                self.kill();
                panic!("the process did not finish within {within:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for ChildProcess {
    /// A test that fails leaves no process behind.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Starts a projection process `rounds` times and SIGKILLs it at a random moment after it printed `running`
/// (100–350 ms in, later each round), checking each time that it had not finished (`applied() < total`): the kill
/// landed mid-work. `spawn()` starts one. Returns how many it killed.
pub async fn kill_mid_work<F, Fut>(
    rounds: u64,
    spawn: impl Fn() -> ChildProcess,
    applied: F,
    total: i64,
) -> u64
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = i64>,
{
    let mut kills = 0;
    for round in 0..rounds {
        let worker = spawn();
        worker.expect("running", Duration::from_secs(30));
        tokio::time::sleep(Duration::from_millis(
            100 + fastrand::u64(0..250) + round * 17,
        ))
        .await;
        worker.kill();
        kills += 1;
        let applied = applied().await;
        assert!(
            applied < total,
            "round {round}: the worker finished before it was killed ({applied})"
        );
    }
    kills
}
