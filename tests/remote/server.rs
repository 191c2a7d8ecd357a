//! A real S3 server on 127.0.0.1 for this test binary: `SeaweedFS`, installed by
//! `.ci/s3-server` (or found at `STAGE_TEST_WEED`), started once on free ports and stopped
//! when the binary exits (it watches its standard input, which closes then).

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;

use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub const BUCKET: &str = "stage-tests";
const KEY_ID: &str = "stage-test";
const SECRET: &str = "stage-test-secret";

pub struct Server {
    pub addr: SocketAddr,
    _stdin: ChildStdin,
    _child: Child,
    _dir: tempfile::TempDir,
}

impl Server {
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// The server, or `None` (with the reason printed) where it cannot be installed.
pub fn server() -> Option<&'static Server> {
    static SERVER: LazyLock<Result<Server, String>> = LazyLock::new(start);
    match &*SERVER {
        Ok(server) => Some(server),
        Err(why) => {
            eprintln!("skipped: no S3 server for the remote-cache tests: {why}");
            None
        }
    }
}

fn weed() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("STAGE_TEST_WEED") {
        return Ok(PathBuf::from(path));
    }
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let script = [
        manifest.join(".ci/s3-server"),
        manifest.join("../.ci/s3-server"),
    ]
    .into_iter()
    .find(|p| p.exists())
    .ok_or("no .ci/s3-server script")?;
    let out = Command::new("bash")
        .arg(&script)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    if !out.status.success() {
        return Err(format!("{} failed", script.display()));
    }
    let path = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    Ok(PathBuf::from(path))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

/// Runs the server, and when standard input closes stops it: politely, then for good
/// after five seconds (it may hang in a graceful shutdown).
const STOP_WITH_STDIN: &str = r#""$0" "$@" & server=$!
cat >/dev/null
kill $server
for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 $server 2>/dev/null || exit 0; sleep 0.5; done
kill -9 $server"#;

fn start() -> Result<Server, String> {
    let weed = weed()?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let s3 = free_port();
    let mut args = vec![
        "mini".to_owned(),
        format!("-dir={}", dir.path().display()),
        "-ip=127.0.0.1".into(),
        "-ip.bind=127.0.0.1".into(),
        format!("-s3.port={s3}"),
        format!("-bucket={BUCKET}"),
        "-s3.port.iceberg=0".into(),
        "-s3.port.lance=0".into(),
        "-admin.ui=false".into(),
        "-webdav=false".into(),
        "-master.telemetry=false".into(),
        "-master.volumeSizeLimitMB=64".into(),
    ];
    for flag in [
        "s3.port.grpc",
        "master.port",
        "master.port.grpc",
        "volume.port",
        "volume.port.grpc",
        "filer.port",
        "filer.port.grpc",
        "admin.port",
        "admin.port.grpc",
    ] {
        args.push(format!("-{flag}={}", free_port()));
    }
    let log = std::fs::File::create(dir.path().join("server.log")).map_err(|e| e.to_string())?;
    // The shell stops the server when its standard input closes: when this process exits.
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(STOP_WITH_STDIN)
        .arg(&weed)
        .args(&args)
        .env("AWS_ACCESS_KEY_ID", KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .stdin(Stdio::piped())
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", weed.display()))?;
    let stdin = child.stdin.take().ok_or("no stdin")?;
    let addr: SocketAddr = format!("127.0.0.1:{s3}").parse().unwrap();
    let server = Server {
        addr,
        _stdin: stdin,
        _child: child,
        _dir: dir,
    };
    wait_ready(&server)?;
    Ok(server)
}

/// Waits until the bucket takes a write.
fn wait_ready(server: &Server) -> Result<(), String> {
    let start = Instant::now();
    let mut n = 0;
    loop {
        if !port_open(server.addr) {
            std::thread::sleep(Duration::from_millis(100));
            if start.elapsed() > Duration::from_secs(60) {
                return Err("the S3 server did not listen within 60 s".into());
            }
            continue;
        }
        n += 1;
        let remote = remote_at(&server.endpoint(), &format!("ready-{n}"));
        let store = stage::inspect::open_remote(&remote).map_err(|e| e.to_string())?;
        if store.put_record("ready", b"1").is_ok() {
            return Ok(());
        }
        if start.elapsed() > Duration::from_secs(60) {
            return Err("the S3 server did not start within 60 s".into());
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// A remote cache at `endpoint` (the server, or a proxy in front of it) under `prefix`.
pub fn remote_at(endpoint: &str, prefix: &str) -> stage::Remote {
    stage::Remote::new(format!("s3://{BUCKET}/{prefix}"))
        .option("aws_endpoint", endpoint)
        .option("aws_allow_http", "true")
        .option("aws_region", "us-east-1")
        .option("aws_access_key_id", KEY_ID)
        .option("aws_secret_access_key", SECRET)
        .read_only(false)
        .required(false)
        .upload(stage::Upload::Wait)
}

/// A prefix no other test uses.
pub fn unique(name: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{name}-{nanos}-{}", N.fetch_add(1, Ordering::Relaxed))
}

/// The server's environment for a `stage` command run against it.
#[allow(dead_code, reason = "used by the command's tests")]
pub fn env_for(endpoint: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT", endpoint.to_owned()),
        ("AWS_ALLOW_HTTP", "true".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID", KEY_ID.into()),
        ("AWS_SECRET_ACCESS_KEY", SECRET.into()),
    ]
}

fn port_open(addr: SocketAddr) -> bool {
    std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}
