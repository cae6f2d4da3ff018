//! The real binaries: `isthmus serve` and `isthmus-worker` as processes on loopback.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn worker_binary() -> PathBuf {
    // Cargo puts every workspace binary beside the server's.
    let server = PathBuf::from(env!("CARGO_BIN_EXE_isthmus"));
    let worker = server.with_file_name("isthmus-worker");
    assert!(
        worker.exists(),
        "{} is missing: build it first with `cargo build -p isthmus-worker` (the test command does)",
        worker.display()
    );
    worker
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind loopback")
        .local_addr()
        .expect("addr")
        .port()
}

async fn health(base: &str) -> Option<serde_json::Value> {
    let url = format!("{base}/api/v1/health");
    tokio::task::spawn_blocking(move || {
        // A tiny HTTP/1.1 GET over std, so the test needs no HTTP client crate.
        use std::io::{Read, Write};
        let addr = url
            .trim_start_matches("http://")
            .split('/')
            .next()?
            .to_owned();
        let mut s = std::net::TcpStream::connect(&addr).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        write!(
            s,
            "GET /api/v1/health HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )
        .ok()?;
        let mut buf = String::new();
        s.read_to_string(&mut buf).ok()?;
        let body = buf.split("\r\n\r\n").nth(1)?.to_owned();
        serde_json::from_str::<serde_json::Value>(&body).ok()
    })
    .await
    .ok()
    .flatten()
}

#[tokio::test]
async fn server_and_worker_processes_connect() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let token = "isw_process_test_token";
    let _server = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_isthmus"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .arg("--portal-dir")
            .arg(dir.path().join("no-portal"))
            .env("ISTHMUS_WORKER_TOKEN", token)
            .env_remove("DATABASE_URL")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("server starts"),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while health(&base).await.is_none() {
        assert!(Instant::now() < deadline, "server did not answer on {base}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _worker = KillOnDrop(
        Command::new(worker_binary())
            .args([
                "--server",
                &base,
                "--token",
                token,
                "--name",
                "proc-worker",
                "--no-tun",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("worker starts"),
    );
    loop {
        let h = health(&base).await.expect("health answers");
        assert_eq!(h["database"], "sqlite");
        let names: Vec<String> = h["workers"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|w| w["name"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        if names.iter().any(|n| n == "proc-worker") {
            break;
        }
        assert!(Instant::now() < deadline, "worker never listed: {h}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `GET path` with the worker token over a raw connection; the body, or `None` on error.
fn worker_get(addr: &str, path: &str, token: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(60))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf);
    Some(buf.split("\r\n\r\n").nth(1).unwrap_or("").to_owned())
}

/// A server asked to stop (SIGTERM, as systemd does) exits after a bounded drain even while a
/// worker's desired-state long poll (25 s) is in flight: a rolling restart of the replicas is
/// not held up by its workers.
#[test]
fn a_stopping_server_does_not_wait_for_a_workers_long_poll() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let token = "isw_process_test_token";
    let mut server = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_isthmus"))
            .args(["serve", "--listen", &addr])
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .arg("--portal-dir")
            .arg(dir.path().join("no-portal"))
            .env("ISTHMUS_WORKER_TOKEN", token)
            .env_remove("DATABASE_URL")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("server starts"),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    // The current version: a 204 (empty body) at `since=0` means it is 0.
    let version = loop {
        match worker_get(
            &addr,
            "/api/v1/worker/desired?name=w1&since=0&wait=0",
            token,
        ) {
            Some(b) if b.is_empty() => break 0,
            Some(b) => {
                if let Some(v) = serde_json::from_str::<serde_json::Value>(&b)
                    .ok()
                    .and_then(|v| v["version"].as_u64())
                {
                    break v;
                }
            }
            None => {}
        }
        assert!(Instant::now() < deadline, "the server never answered");
        std::thread::sleep(Duration::from_millis(100));
    };
    // A long poll at the current version: it waits up to 25 s for a change.
    let poll = {
        let (addr, token) = (addr.clone(), token.to_owned());
        std::thread::spawn(move || {
            worker_get(
                &addr,
                &format!("/api/v1/worker/desired?name=w1&since={version}&wait=25"),
                &token,
            )
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    assert!(!poll.is_finished(), "the long poll is in flight");
    let pid = server.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .is_ok_and(|s| s.success())
    );
    let asked = Instant::now();
    let exited = loop {
        if let Ok(Some(status)) = server.0.try_wait() {
            break Some(status);
        }
        if asked.elapsed() > Duration::from_secs(20) {
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let took = asked.elapsed();
    assert!(
        exited.is_some() && took < Duration::from_secs(15),
        "the server took {took:?} to stop with a long poll in flight (the drain is 10 s; the poll 25 s)"
    );
    let _ = poll.join();
}
