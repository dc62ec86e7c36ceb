//! A real server on free loopback ports, for end-to-end tests here and in
//! the client and bench crates: `TestServer::start` builds the application
//! exactly as `main` does, and `stop` drives the same shutdown path as
//! SIGTERM.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::{Application, Settings};

/// A running server and the means to stop it.
pub struct TestServer {
    /// `http://127.0.0.1:PORT`, for gRPC clients.
    pub grpc_url: String,
    /// The HTTP statistics API's address.
    pub http_addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl TestServer {
    /// Starts a server on `db` with free ports and no seed import.
    pub async fn start(db: PathBuf) -> anyhow::Result<TestServer> {
        TestServer::start_with(Settings::for_tests(db)).await
    }

    /// Starts a server with the given settings.
    pub async fn start_with(settings: Settings) -> anyhow::Result<TestServer> {
        let application = Application::build(settings).await?;
        let grpc_url = format!("http://{}", application.grpc_addr()?);
        let http_addr = application.http_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(application.run_until(async {
            let _ = stopped.await;
        }));
        Ok(TestServer {
            grpc_url,
            http_addr,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// `GET path` on the HTTP API: status code and body.
    pub async fn get(&self, path: &str) -> anyhow::Result<(u16, String)> {
        let addr = self.http_addr;
        let path = path.to_string();
        tokio::task::spawn_blocking(move || http_get(addr, &path)).await?
    }

    /// The statistics report, parsed.
    pub async fn statistics(&self) -> anyhow::Result<serde_json::Value> {
        let (status, body) = self.get("/sales_statistics").await?;
        anyhow::ensure!(status == 200, "statistics answered {status}: {body}");
        Ok(serde_json::from_str(&body)?)
    }

    /// Stops the server the way SIGTERM does and waits until the database
    /// is closed.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => task.await?,
            None => Ok(()),
        }
    }
}

/// A minimal HTTP/1.1 GET, enough for tests and the benchmark's checks.
pub fn http_get(addr: SocketAddr, path: &str) -> anyhow::Result<(u16, String)> {
    let mut stream = TcpStream::connect(addr)?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;

    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow::anyhow!("malformed HTTP response"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no status in {head:?}"))?;
    Ok((status, body.to_string()))
}
