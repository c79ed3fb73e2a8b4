//! An HTTP proxy in front of a search server that answers bulk requests with `429` and
//! `503` while told to, and forwards everything else, to test retries.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

pub struct FaultProxy {
    pub url: String,
    /// Bulk requests still to refuse.
    pub failures_left: Arc<AtomicU32>,
    /// Bulk requests refused so far.
    pub refused: Arc<AtomicU32>,
    stop: Arc<AtomicBool>,
}

impl FaultProxy {
    /// Listens on an ephemeral 127.0.0.1 port and forwards to `upstream`
    /// (`http://127.0.0.1:PORT`).
    pub fn start(upstream: &str, failures: u32) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        listener.set_nonblocking(true).expect("non-blocking accept");
        let url = format!("http://{}", listener.local_addr().expect("proxy address"));
        let proxy = FaultProxy {
            url,
            failures_left: Arc::new(AtomicU32::new(failures)),
            refused: Arc::new(AtomicU32::new(0)),
            stop: Arc::new(AtomicBool::new(false)),
        };
        let upstream = upstream.trim_start_matches("http://").to_string();
        let (left, refused, stop) = (
            proxy.failures_left.clone(),
            proxy.refused.clone(),
            proxy.stop.clone(),
        );
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let (upstream, left, refused) =
                            (upstream.clone(), left.clone(), refused.clone());
                        std::thread::spawn(move || serve(client, &upstream, &left, &refused));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        proxy
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Handles requests on one client connection until it closes.
fn serve(client: TcpStream, upstream: &str, left: &AtomicU32, refused: &AtomicU32) {
    let _ = client.set_read_timeout(Some(Duration::from_secs(60)));
    let mut reader = BufReader::new(client.try_clone().expect("clone client stream"));
    let mut client = client;
    while let Some((head, body)) = read_request(&mut reader) {
        let is_bulk = head
            .lines()
            .next()
            .is_some_and(|line| line.contains("/_bulk"));
        let take_failure = is_bulk
            && left
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
        let response = if take_failure {
            let count = refused.fetch_add(1, Ordering::SeqCst);
            let (status, reason) = if count.is_multiple_of(2) {
                (429, "Too Many Requests")
            } else {
                (503, "Service Unavailable")
            };
            let body = format!("{{\"error\":\"injected {status}\",\"status\":{status}}}");
            format!(
                "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            )
            .into_bytes()
        } else {
            match forward(upstream, &head, &body) {
                Some(response) => response,
                None => return,
            }
        };
        if client.write_all(&response).is_err() {
            return;
        }
    }
}

fn read_request(reader: &mut BufReader<TcpStream>) -> Option<(String, Vec<u8>)> {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let end = line == "\r\n";
        head.push_str(&line);
        if end {
            break;
        }
    }
    let length = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some((head, body))
}

/// Sends one request upstream on a fresh connection and returns the whole response.
fn forward(upstream: &str, head: &str, body: &[u8]) -> Option<Vec<u8>> {
    let mut server = TcpStream::connect(upstream).ok()?;
    let head = head.replacen("\r\n\r\n", "\r\nconnection: close\r\n\r\n", 1);
    let head: String = head
        .lines()
        .filter(|line| {
            !line
                .to_ascii_lowercase()
                .starts_with("connection: keep-alive")
        })
        .map(|line| format!("{line}\r\n"))
        .collect();
    server.write_all(head.as_bytes()).ok()?;
    server.write_all(body).ok()?;
    let mut response = Vec::new();
    server.read_to_end(&mut response).ok()?;
    Some(response)
}
