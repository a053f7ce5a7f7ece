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
        let (dir, port) = new_home();
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
        server.start_again();
        server
    }

    /// A hot standby of this server: a base backup (`pg_basebackup -R`, streaming replication) into a directory of
    /// its own, started on another free port.
    pub fn standby(&self) -> Self {
        let (dir, port) = new_home();
        let standby = Self {
            dir,
            bin: self.bin.clone(),
            port,
        };
        let primary_port = self.port.to_string();
        standby.as_postgres(
            "pg_basebackup",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &primary_port,
                "-U",
                "postgres",
                "-D",
                path(&standby.data()),
                "-R",
                "-X",
                "stream",
                "--no-sync",
            ],
        );
        standby.start_again();
        standby
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
        self.pg_ctl(&["-m", "fast", "restart"]);
    }

    /// Stops the server (fast shutdown); [`start_again`](Self::start_again) brings it back.
    pub fn stop(&self) {
        self.pg_ctl(&["-m", "fast", "stop"]);
    }

    /// Starts the stopped server again with its earlier options, waiting until it accepts connections.
    pub fn start_again(&self) {
        self.pg_ctl(&["-o", &self.options(), "start"]);
    }

    /// A store in schema `es` of this server (4 connections, migrated).
    pub async fn store(&self) -> es_postgres::PgEventStore {
        let store = es_postgres::PgEventStore::builder()
            .schema("es")
            .max_connections(4)
            .connect(&self.url())
            .await
            .expect("a store on the private server");
        store.migrate().await.expect("migrate the private server");
        store
    }

    /// Terminates every client backend but `spare` (and the one asking), as an operator or a failover would;
    /// returns how many.
    pub async fn terminate_all(&self, spare: Option<i32>) -> i64 {
        use sqlx::Connection;
        let mut admin = sqlx::PgConnection::connect(&self.url())
            .await
            .expect("an admin connection");
        let killed: i64 = sqlx::query_scalar(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE pid <> pg_backend_pid() AND pid IS DISTINCT FROM $1 AND backend_type = 'client backend'",
        )
        .bind(spare)
        .fetch_one(&mut admin)
        .await
        .expect("terminate the backends");
        admin.close().await.expect("close the admin connection");
        killed
    }

    /// `pg_ctl` on this server's data directory, waiting for it, with the server's output to the log file (a server
    /// started without `-l` would keep this process's output pipes open).
    fn pg_ctl(&self, args: &[&str]) {
        let (data, log) = (self.data(), self.dir.join("log"));
        let mut all = vec!["-D", path(&data), "-l", path(&log), "-w"];
        all.extend_from_slice(args);
        self.as_postgres("pg_ctl", &all);
    }

    /// The server's options: its port on 127.0.0.1, its socket directory, no fsync.
    fn options(&self) -> String {
        format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off -c max_connections=120",
            self.port,
            path(&self.dir)
        )
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// Runs one of the server's tools as user `postgres`; panics, with its output, when it fails.
    fn as_postgres(&self, tool: &str, args: &[&str]) {
        let output = self
            .command(tool, args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {tool}: {e}"));
        assert!(
            output.status.success(),
            "{tool} {args:?} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    fn command(&self, tool: &str, args: &[&str]) -> Command {
        let mut command = Command::new("runuser");
        command
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join(tool))
            .args(args);
        command
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let data = self.data();
        let _ = self
            .command(
                "pg_ctl",
                &["-D", path(&data), "-m", "immediate", "-w", "stop"],
            )
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn path(path: &std::path::Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}

/// A free port on 127.0.0.1 and a new directory for a server on it, owned by user `postgres`.
fn new_home() -> (PathBuf, u16) {
    let port = crate::free_port();
    let dir = std::env::temp_dir().join(format!("es-private-pg-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("data directory");
    let chown = Command::new("chown")
        .args(["postgres:postgres", path(&dir)])
        .status()
        .expect("chown");
    assert!(
        chown.success(),
        "cannot give {} to user postgres",
        dir.display()
    );
    (dir, port)
}
