//! Shared by the integration tests: the live cluster switch and a fake
//! Elasticsearch that answers canned JSON and records what it was sent.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// The live cluster, if `BUBBLE_ES_URL` names one; otherwise prints that
/// the test is skipped (the test then returns and passes).
pub fn live_url(test: &str) -> Option<String> {
    match std::env::var("BUBBLE_ES_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url.trim().to_owned()),
        _ => {
            // Straight to the stderr handle: the test harness captures
            // `println!`/`eprintln!` of passing tests, and this line must be seen.
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: set BUBBLE_ES_URL=http://... to run the Elasticsearch conformance suite ({test})"
            );
            None
        }
    }
}

/// An index name nobody else uses (lowercase, as Elasticsearch wants).
pub fn fresh_index() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("bubble-test-{}-{nanos:x}", std::process::id())
}

/// One request as the fake cluster saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    /// Path and query, e.g. `/chat/_search?routing=app%7Cann`.
    pub target: String,
    pub content_type: Option<String>,
    pub authorization: Option<String>,
    pub body: String,
}

impl Recorded {
    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).expect("a JSON body")
    }

    /// The body as NDJSON lines.
    pub fn lines(&self) -> Vec<serde_json::Value> {
        self.body
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect()
    }
}

type Handler = dyn Fn(&Recorded) -> (u16, String) + Send + Sync;

/// A fake Elasticsearch on 127.0.0.1: answers each request with what the
/// handler returns and records it.
pub struct FakeEs {
    pub url: String,
    pub seen: Arc<Mutex<Vec<Recorded>>>,
}

impl FakeEs {
    pub async fn start(
        handler: impl Fn(&Recorded) -> (u16, String) + Send + Sync + 'static,
    ) -> FakeEs {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let recorder = seen.clone();
        tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    return;
                };
                let handler = handler.clone();
                let recorder = recorder.clone();
                tokio::spawn(async move {
                    let (read, mut write) = socket.into_split();
                    let mut read = BufReader::new(read);
                    // One request after another on a kept-alive connection.
                    loop {
                        let mut request_line = String::new();
                        if read.read_line(&mut request_line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        let mut parts = request_line.split_whitespace();
                        let method = parts.next().unwrap_or_default().to_owned();
                        let target = parts.next().unwrap_or_default().to_owned();
                        let mut length = 0usize;
                        let mut content_type = None;
                        let mut authorization = None;
                        loop {
                            let mut line = String::new();
                            read.read_line(&mut line).await.unwrap();
                            let line = line.trim_end();
                            if line.is_empty() {
                                break;
                            }
                            let (name, value) = line.split_once(':').unwrap();
                            let value = value.trim().to_owned();
                            match name.to_ascii_lowercase().as_str() {
                                "content-length" => length = value.parse().unwrap(),
                                "content-type" => content_type = Some(value),
                                "authorization" => authorization = Some(value),
                                _ => {}
                            }
                        }
                        let mut body = vec![0; length];
                        read.read_exact(&mut body).await.unwrap();
                        let req = Recorded {
                            method,
                            target,
                            content_type,
                            authorization,
                            body: String::from_utf8(body).unwrap(),
                        };
                        let (status, answer) = handler(&req);
                        let head_only = req.method == "HEAD";
                        recorder.lock().unwrap().push(req);
                        let payload = if head_only { "" } else { answer.as_str() };
                        let response = format!(
                            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{payload}",
                            if head_only { 0 } else { payload.len() }
                        );
                        if write.write_all(response.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        FakeEs { url, seen }
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.seen.lock().unwrap().clone()
    }

    /// The last request whose target contains `part`.
    pub fn last(&self, part: &str) -> Recorded {
        self.requests()
            .into_iter()
            .rev()
            .find(|r| r.target.contains(part))
            .unwrap_or_else(|| panic!("no request to {part}; saw {:?}", self.requests()))
    }
}

/// The answers of a healthy cluster where the index exists.
pub fn healthy(req: &Recorded) -> (u16, String) {
    let ok = (200, r#"{"acknowledged":true}"#.to_owned());
    match (req.method.as_str(), req.target.as_str()) {
        (_, t) if t.contains("/_bulk") => {
            (200, r#"{"took":1,"errors":false,"items":[]}"#.to_owned())
        }
        (_, t) if t.contains("/_search") => (
            200,
            r#"{"hits":{"total":{"value":0,"relation":"eq"},"hits":[]}}"#.to_owned(),
        ),
        ("HEAD", _) => (200, String::new()),
        _ => ok,
    }
}
