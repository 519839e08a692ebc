//! Webhook receivers for the notification tests and benchmark: an HTTPS
//! one on localhost with a self-signed certificate that records what it
//! receives, and a black hole that accepts connections and never answers.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// One request a receiver got.
#[derive(Clone, Debug)]
pub struct Received {
    /// When its body was complete.
    pub at: Instant,
    /// Its request line and headers, lower-cased.
    pub head: String,
    /// Its body.
    pub body: Vec<u8>,
}

impl Received {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<String> {
        let prefix = format!("{}:", name.to_lowercase());
        self.head
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .map(|v| v.trim().to_owned())
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

/// A local HTTPS receiver answering 200 to every POST.
pub struct Receiver {
    /// Its URL.
    pub url: String,
    /// The PEM certificate to trust (self-signed, for 127.0.0.1).
    pub ca_pem: String,
    /// What it received, in order.
    pub got: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    /// Starts one on a free port.
    pub async fn start() -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .expect("a self-signed certificate");
        let ca_pem = certified.cert.pem();
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
        let config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(vec![certified.cert.der().clone()], key)
            .expect("a server configuration");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("https://127.0.0.1:{}/hook", listener.local_addr().unwrap().port());
        let got = Arc::new(Mutex::new(vec![]));
        let seen = got.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                let seen = seen.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    // One request per connection.
                    if let Some(r) = read_request(&mut tls).await {
                        seen.lock().unwrap().push(r);
                        let _ = tls
                            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                            .await;
                        let _ = tls.shutdown().await;
                    }
                });
            }
        });
        Self { url, ca_pem, got }
    }

    /// What it received so far.
    pub fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }
}

/// Reads one HTTP/1.1 request (head and a `content-length` body).
async fn read_request<S: tokio::io::AsyncRead + Unpin>(conn: &mut S) -> Option<Received> {
    let mut buf = vec![];
    let mut chunk = [0u8; 8192];
    loop {
        let n = conn.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..i]).to_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            while buf.len() < i + 4 + len {
                let n = conn.read(&mut chunk).await.ok()?;
                if n == 0 {
                    return None;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            return Some(Received {
                at: Instant::now(),
                head,
                body: buf[i + 4..i + 4 + len].to_vec(),
            });
        }
    }
}

/// A listener that accepts connections and never answers; returns its URL
/// and how many connections it took.
pub async fn black_hole() -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://127.0.0.1:{}/hook", listener.local_addr().unwrap().port());
    let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        let mut held = vec![];
        while let Ok((conn, _)) = listener.accept().await {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            held.push(conn);
        }
    });
    (url, accepted)
}
