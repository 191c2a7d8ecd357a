//! A proxy between the client and the S3 server that can inject faults: pass through,
//! drop connections, stall (accept and never answer), delay, truncate bodies, or answer
//! with an error status. One request per connection, so every request is seen and counted.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the proxy does to the next requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Pass,
    /// Closes every connection at once.
    Drop,
    /// Reads the request and never answers.
    Stall,
    /// Answers after this long.
    Delay(Duration),
    /// Sends the response's head and half of its body, then closes.
    Truncate,
    /// Answers with this status and no body, without asking the server.
    Status(u16),
}

struct State {
    upstream: SocketAddr,
    fault: Mutex<Fault>,
    requests: Mutex<Vec<String>>,
}

pub struct Proxy {
    pub endpoint: String,
    state: Arc<State>,
}

/// The longest a stalled connection is held.
const STALL_AT_MOST: Duration = Duration::from_secs(30);

impl Proxy {
    pub fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(State {
            upstream,
            fault: Mutex::new(Fault::Pass),
            requests: Mutex::new(Vec::new()),
        });
        let shared = Arc::clone(&state);
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let state = Arc::clone(&shared);
                std::thread::spawn(move || {
                    let _ = serve(&state, client);
                });
            }
        });
        Proxy { endpoint, state }
    }

    pub fn set(&self, fault: Fault) {
        *self.state.fault.lock().unwrap() = fault;
    }

    /// The request lines seen so far (`GET /bucket/key HTTP/1.1`).
    #[allow(dead_code, reason = "used by the command's tests")]
    pub fn requests(&self) -> Vec<String> {
        self.state.requests.lock().unwrap().clone()
    }
}

fn fault(state: &State) -> Fault {
    *state.fault.lock().unwrap()
}

fn serve(state: &State, mut client: TcpStream) -> std::io::Result<()> {
    if fault(state) == Fault::Drop {
        return Ok(());
    }
    client.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(client.try_clone()?);
    let (line, head, body) = read_request(&mut reader)?;
    state.requests.lock().unwrap().push(line);
    match fault(state) {
        Fault::Drop => return Ok(()),
        Fault::Stall => {
            let start = Instant::now();
            while fault(state) == Fault::Stall && start.elapsed() < STALL_AT_MOST {
                std::thread::sleep(Duration::from_millis(20));
            }
            return Ok(());
        }
        Fault::Status(code) => {
            let answer = format!(
                "HTTP/1.1 {code} Injected\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            return client.write_all(answer.as_bytes());
        }
        Fault::Pass | Fault::Delay(_) | Fault::Truncate => {}
    }
    let mut upstream = TcpStream::connect(state.upstream)?;
    upstream.write_all(&head)?;
    upstream.write_all(&body)?;
    let mut response = Vec::new();
    upstream.read_to_end(&mut response)?;
    let response = close_after(&response);
    match fault(state) {
        Fault::Delay(d) => {
            std::thread::sleep(d);
            client.write_all(&response)
        }
        Fault::Truncate => {
            let split = find(&response, b"\r\n\r\n").map_or(response.len(), |i| i + 4);
            let body = response.len() - split;
            client.write_all(&response[..split + body / 2])
        }
        _ => client.write_all(&response),
    }
}

/// The request line, the head with `Connection: close`, and the body.
fn read_request(reader: &mut impl BufRead) -> std::io::Result<(String, Vec<u8>, Vec<u8>)> {
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut head = line.clone().into_bytes();
    let mut length = 0usize;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 {
            break;
        }
        if header == "\r\n" {
            break;
        }
        let lower = header.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
        if !lower.starts_with("connection:") {
            head.extend_from_slice(header.as_bytes());
        }
    }
    head.extend_from_slice(b"Connection: close\r\n\r\n");
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    Ok((line.trim_end().to_owned(), head, body))
}

/// The response with `Connection: close`, so that the client opens a new connection for
/// its next request.
fn close_after(response: &[u8]) -> Vec<u8> {
    let Some(end) = find(response, b"\r\n\r\n") else {
        return response.to_vec();
    };
    let head = String::from_utf8_lossy(&response[..end]);
    let mut out: Vec<u8> = head
        .split("\r\n")
        .filter(|h| !h.to_ascii_lowercase().starts_with("connection:"))
        .flat_map(|h| format!("{h}\r\n").into_bytes())
        .collect();
    out.extend_from_slice(b"Connection: close\r\n\r\n");
    out.extend_from_slice(&response[end + 4..]);
    out
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
