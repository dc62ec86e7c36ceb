//! A real server on free loopback ports, for end-to-end tests here and in
//! the client and bench crates.
//!
//! [`TestServer`] runs the application in-process exactly as `main` builds
//! it, and `stop` drives the same shutdown path as SIGTERM.
//! [`ServerProcess`] runs the `sales-server` binary as a child process, for
//! tests that kill it and for the benchmark.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

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
        self.request("GET", path).await
    }

    /// Any method on the HTTP API: status code and body.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
    ) -> anyhow::Result<(u16, String)> {
        let addr = self.http_addr;
        let (method, path) = (method.to_string(), path.to_string());
        tokio::task::spawn_blocking(move || http_request(addr, &method, &path)).await?
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

/// A minimal HTTP/1.1 request without a body, enough for tests.
pub fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
) -> anyhow::Result<(u16, String)> {
    let mut stream = TcpStream::connect(addr)?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\n\
         Connection: close\r\n\r\n"
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

/// A running `sales-server`.
pub struct ServerProcess {
    child: Child,
    pub grpc_url: String,
    pub http_addr: SocketAddr,
}

/// The directory holding this program, where cargo also puts the other
/// binaries of the workspace.
pub fn sibling_binary(name: &str) -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe()?;
    let path = me.with_file_name(name);
    if !path.exists() {
        bail!(
            "{} not found; build it first with `cargo build --release`",
            path.display()
        );
    }
    Ok(path)
}

/// A port that was free a moment ago.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl ServerProcess {
    /// Starts the `sales-server` binary at `binary` on `db` (no seed
    /// import, free loopback ports, logs to `log`) and waits until it
    /// answers.
    pub fn start(binary: &Path, db: &Path, log: &Path) -> anyhow::Result<ServerProcess> {
        ServerProcess::start_on(binary, db, log, free_port()?, free_port()?)
    }

    /// Like [`ServerProcess::start`], on given ports: to restart a server
    /// where its clients expect it.
    pub fn start_on(
        binary: &Path,
        db: &Path,
        log: &Path,
        grpc_port: u16,
        http_port: u16,
    ) -> anyhow::Result<ServerProcess> {
        let child = Command::new(binary)
            .arg("--db")
            .arg(db)
            .args(["--no-seed", "--grpc-addr"])
            .arg(format!("127.0.0.1:{grpc_port}"))
            .arg("--http-addr")
            .arg(format!("127.0.0.1:{http_port}"))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(File::options().create(true).append(true).open(log)?)
            .spawn()
            .context("starting sales-server")?;
        let mut server = ServerProcess {
            child,
            grpc_url: format!("http://127.0.0.1:{grpc_port}"),
            http_addr: SocketAddr::from(([127, 0, 0, 1], http_port)),
        };
        server.wait_until_ready(log)?;
        Ok(server)
    }

    fn wait_until_ready(&mut self, log: &Path) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                let log = std::fs::read_to_string(log).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(5).collect();
                bail!("the server exited with {status} while starting: {tail:?}");
            }
            if KeepAlive::connect(self.http_addr)
                .and_then(|mut http| http.get("/healthz"))
                .is_ok()
            {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let log = std::fs::read_to_string(log).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(5).collect();
        bail!("the server did not answer within 60 s: {tail:?}")
    }

    /// Peak resident memory so far, in bytes (Linux `VmHWM`).
    pub fn peak_memory(&self) -> Option<u64> {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    }

    /// The gRPC port.
    pub fn grpc_port(&self) -> u16 {
        self.grpc_url
            .rsplit(':')
            .next()
            .and_then(|port| port.parse().ok())
            .unwrap_or(0)
    }

    /// Kills the process with SIGKILL, as a crash or power cut would, and
    /// waits for it to be gone.
    pub fn kill(mut self) -> anyhow::Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }

    /// Sends SIGTERM and waits for a clean exit; returns how long it took.
    pub fn stop(mut self) -> anyhow::Result<Duration> {
        let started = Instant::now();
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()?;
        if !status.success() {
            self.child.kill()?;
        }
        let exit = self.child.wait()?;
        if !exit.success() {
            bail!("the server exited with {exit} on SIGTERM");
        }
        Ok(started.elapsed())
    }
}

/// A keep-alive HTTP/1.1 connection, for measuring the API without client
/// overhead.
pub struct KeepAlive {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    host: SocketAddr,
}

impl KeepAlive {
    pub fn connect(addr: SocketAddr) -> anyhow::Result<KeepAlive> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        Ok(KeepAlive {
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
            host: addr,
        })
    }

    /// GET `path`; returns the body.
    pub fn get(&mut self, path: &str) -> anyhow::Result<Vec<u8>> {
        write!(
            self.writer,
            "GET {path} HTTP/1.1\r\nHost: {}\r\n\r\n",
            self.host
        )?;
        let mut length = None;
        let mut status_line = String::new();
        self.reader.read_line(&mut status_line)?;
        if !status_line.contains(" 200 ") {
            bail!("unexpected answer: {status_line:?}");
        }
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line)?;
            if line == "\r\n" || line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse::<usize>().ok();
                }
            }
        }
        let mut body = vec![0; length.context("no content-length")?];
        self.reader.read_exact(&mut body)?;
        Ok(body)
    }
}
