//! A private PostgreSQL server for fault tests: `initdb` as user `postgres` into a temporary directory, a free port
//! on 127.0.0.1, started and restarted with `pg_ctl`. The shared server is never touched. Stopped and removed on
//! drop.

use std::path::PathBuf;
use std::process::Command;

/// A running private server.
#[derive(Debug)]
pub struct PrivatePostgres {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
}

impl PrivatePostgres {
    /// Creates and starts a server. Panics, saying what failed, when PostgreSQL's binaries or `runuser` are missing.
    pub fn start() -> Self {
        let versions =
            std::fs::read_dir("/usr/lib/postgresql").expect("PostgreSQL under /usr/lib/postgresql");
        let mut versions: Vec<PathBuf> =
            versions.filter_map(|e| e.ok().map(|e| e.path())).collect();
        versions.sort();
        let bin = versions.pop().expect("a PostgreSQL version").join("bin");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let dir = std::env::temp_dir().join(format!("es-private-pg-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("data directory");
        run("chown", &["postgres:postgres", path(&dir)]);
        let server = Self { dir, bin, port };
        server.as_postgres(
            "initdb",
            &[
                "-D",
                path(&server.data()),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ],
        );
        let options = format!(
            "-p {port} -c listen_addresses=127.0.0.1 -k {} -c fsync=off -c max_connections=40",
            path(&server.dir)
        );
        let log = server.dir.join("log");
        server.as_postgres(
            "pg_ctl",
            &[
                "-D",
                path(&server.data()),
                "-l",
                path(&log),
                "-w",
                "-o",
                &options,
                "start",
            ],
        );
        server
    }

    /// A URL for the server's `postgres` database, without TLS.
    pub fn url(&self) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/postgres?sslmode=disable",
            self.port
        )
    }

    /// Restarts the server (fast shutdown: every connection is closed), waiting until it accepts connections.
    pub fn restart(&self) {
        // With `-l`: a server started without it would keep this process's output pipes open.
        let log = self.dir.join("log");
        self.as_postgres(
            "pg_ctl",
            &[
                "-D",
                path(&self.data()),
                "-l",
                path(&log),
                "-w",
                "-m",
                "fast",
                "restart",
            ],
        );
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn as_postgres(&self, tool: &str, args: &[&str]) {
        let tool = self.bin.join(tool);
        let mut all = vec!["-u", "postgres", "--", path(&tool)];
        all.extend_from_slice(args);
        run("runuser", &all);
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let tool = self.bin.join("pg_ctl");
        let _ = Command::new("runuser")
            .args([
                "-u",
                "postgres",
                "--",
                path(&tool),
                "-D",
                path(&self.data()),
                "-m",
                "immediate",
                "-w",
                "stop",
            ])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn path(path: &std::path::Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}

fn run(program: &str, args: &[&str]) {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
