//! A TCP proxy between a store and PostgreSQL that counts round trips on the wire: every `Sync` (the end of an
//! extended-protocol exchange) and every simple `Query` the client sends is one, recorded with the statement it ran
//! (a bare `Sync`, sqlx's ping, as [`PING`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use sqlx::postgres::PgConnectOptions;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The proxy, listening on 127.0.0.1, and what it has seen.
#[derive(Debug, Clone)]
pub struct CountingProxy {
    port: u16,
    trips: Arc<Mutex<Vec<String>>>,
}

impl CountingProxy {
    /// Starts a proxy to the tests' PostgreSQL server.
    pub async fn start() -> Self {
        let upstream: PgConnectOptions =
            crate::database_url().parse().expect("DATABASE_URL parses");
        let target = format!("{}:{}", upstream.get_host(), upstream.get_port());
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("address").port();
        let trips = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&trips);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(&target).await else {
                    continue;
                };
                tokio::spawn(relay(client, server, Arc::clone(&seen)));
            }
        });
        Self { port, trips }
    }

    /// Connect options that go through the proxy (the tests' database, user and settings otherwise).
    pub fn connect_options(&self) -> PgConnectOptions {
        let options: PgConnectOptions = crate::database_url().parse().expect("DATABASE_URL parses");
        options.host("127.0.0.1").port(self.port)
    }

    /// How many round trips have been seen so far.
    pub fn count(&self) -> usize {
        self.trips.lock().expect("lock").len()
    }

    /// The statements of the round trips seen since `since` (a value of [`count`](Self::count)).
    pub fn since(&self, since: usize) -> Vec<String> {
        self.trips.lock().expect("lock")[since..].to_vec()
    }
}

async fn relay(mut client: TcpStream, mut server: TcpStream, trips: Arc<Mutex<Vec<String>>>) {
    let (mut client_read, mut client_write) = client.split();
    let (mut server_read, mut server_write) = server.split();
    let upstream = async {
        let mut parser = Frontend::default();
        let mut buffer = [0u8; 16 * 1024];
        loop {
            let n = match client_read.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            for trip in parser.feed(&buffer[..n]) {
                trips.lock().expect("lock").push(trip);
            }
            if server_write.write_all(&buffer[..n]).await.is_err() {
                break;
            }
        }
        let _ = server_write.shutdown().await;
    };
    let downstream = async {
        let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
        let _ = client_write.shutdown().await;
    };
    tokio::join!(upstream, downstream);
}

/// Splits the client's byte stream into protocol messages (after the untyped startup message).
#[derive(Default)]
struct Frontend {
    buffer: Vec<u8>,
    started: bool,
    /// Prepared statement name → its SQL.
    statements: HashMap<String, String>,
    /// The SQL of the statement bound last (what the next `Sync` completes).
    current: String,
    /// Whether anything but `Sync` was sent since the last `Sync`; a bare `Sync` is a ping.
    busy: bool,
}

/// How a bare `Sync` (sqlx's ping, e.g. when a pooled connection is handed back) is recorded.
pub const PING: &str = "(ping)";

impl Frontend {
    fn feed(&mut self, bytes: &[u8]) -> Vec<String> {
        self.buffer.extend_from_slice(bytes);
        let mut trips = Vec::new();
        loop {
            let header = if self.started { 5 } else { 4 };
            if self.buffer.len() < header {
                break;
            }
            let at = header - 4;
            let len = u32::from_be_bytes([
                self.buffer[at],
                self.buffer[at + 1],
                self.buffer[at + 2],
                self.buffer[at + 3],
            ]) as usize;
            let total = at + len;
            if self.buffer.len() < total {
                break;
            }
            let message: Vec<u8> = self.buffer.drain(..total).collect();
            if !self.started {
                self.started = true;
                continue;
            }
            let body = &message[5..];
            let strings: Vec<String> = body
                .split(|b| *b == 0)
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect();
            let kind = message[0];
            match kind {
                b'P' => {
                    let (name, sql) = (strings[0].clone(), strings[1].clone());
                    self.statements.insert(name, sql.clone());
                    self.current = sql;
                }
                b'B' => {
                    if let Some(sql) = self.statements.get(&strings[1]) {
                        self.current = sql.clone();
                    }
                }
                b'S' if self.busy => trips.push(self.current.clone()),
                b'S' => trips.push(PING.to_owned()),
                b'Q' => trips.push(strings[0].clone()),
                _ => {}
            }
            self.busy = !matches!(kind, b'S' | b'Q');
        }
        trips
    }
}
