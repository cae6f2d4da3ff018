//! Integration tests of the worker: the core on a virtual clock, and the binary.

mod core;
mod harness;
mod netns;
mod p2s_netns;
mod server_driven;
mod tcp_relay;

use std::process::Command;

fn worker_bin() -> &'static str {
    env!("CARGO_BIN_EXE_isthmus-worker")
}

#[test]
fn missing_token_is_explained() {
    let out = Command::new(worker_bin())
        .env_remove("ISTHMUS_WORKER_TOKEN")
        .output()
        .expect("worker runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--token"),
        "stderr should name the missing flag: {err}"
    );
}

#[test]
fn refused_token_stops_the_worker_with_a_message() {
    // A one-shot HTTP server on loopback that refuses every worker like the real server does.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let addr = listener.local_addr().expect("addr");
    let server = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut s, _) = listener.accept().expect("accept");
        let mut buf = [0u8; 4096];
        let _ = s.read(&mut buf);
        let body = r#"{"error":"unauthorized","message":"unknown worker token"}"#;
        let resp = format!(
            "HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{}",
            body.len(),
            body
        );
        let _ = s.write_all(resp.as_bytes());
    });
    let out = Command::new(worker_bin())
        .args([
            "--server",
            &format!("http://{addr}"),
            "--token",
            "isw_wrong",
            "--name",
            "t1",
        ])
        .output()
        .expect("worker runs");
    server.join().expect("server thread");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown worker token"), "{err}");
}
