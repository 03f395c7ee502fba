//! Safe outbound HTTP requests: the hub's only way out.
//!
//! One request per connection, through hyper's client connection API over a socket this module
//! opened itself: the host is resolved once; for a subscriber's URL every address it resolved to
//! must pass the [`Policy`] or no connection is made at all; the socket connects to exactly a
//! checked address (there is no second lookup for anyone to race); redirects are not followed
//! (a 3xx is just a status); `Host` is the URL's host and port. `https` goes through rustls
//! with the Web PKI roots (webpki-roots) plus the operator's `ca_file`, if any. Every request is
//! bounded in time (lookup to last byte) and in the response bytes read.
//!
//! Operator-configured URLs (external hubs) pass no policy: the operator chose them.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::{self, pki_types};
use url::Url;

use super::policy::Policy;

/// Addresses tried per request, at most.
const MAX_ADDRS: usize = 8;
/// hyper's read buffer per connection, which bounds a response head (hyper's least is 8 KiB;
/// its default, some 400 KiB, times every request in flight is more than a reply needs).
const MAX_READ_BUFFER: usize = 16 * 1024;

/// Why a request produced no response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Refused before any connection: the address policy, or an unusable URL.
    Refused(String),
    /// Lookup, connection, TLS, HTTP or time limit.
    Failed(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Refused(why) => write!(f, "refused: {why}"),
            Failure::Failed(why) => write!(f, "failed: {why}"),
        }
    }
}

/// A response: its status and at most the first `max_body` bytes of its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub body: Bytes,
    /// The body had more than `max_body` bytes.
    pub truncated: bool,
}

/// One request to make.
pub struct Outbound<'a> {
    pub method: Method,
    pub url: &'a Url,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Bytes,
    /// Response body bytes to read; 0 reads none (the status is all that matters).
    pub max_body: usize,
}

/// The outbound client: TLS settings and the time limit. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    tls: TlsConnector,
    timeout: Duration,
    user_agent: HeaderValue,
}

impl Client {
    /// A client trusting the Web PKI roots and the PEM certificates in `ca_file`.
    pub fn new(ca_file: Option<&Path>, timeout: Duration) -> Result<Client> {
        let mut roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
        if let Some(path) = ca_file {
            use pki_types::pem::PemObject;
            let pem = std::fs::read(path).with_context(|| format!("cannot read websub.ca_file {}", path.display()))?;
            let mut added = 0;
            for cert in pki_types::CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.with_context(|| format!("websub.ca_file {}: bad PEM", path.display()))?;
                roots.add(cert).with_context(|| format!("websub.ca_file {}: unusable certificate", path.display()))?;
                added += 1;
            }
            anyhow::ensure!(added > 0, "websub.ca_file {}: no certificate in it", path.display());
        }
        // rustls 0.23.48 deprecates its ring provider for lacking post-quantum key exchange
        // (X25519MLKEM768, aws-lc-rs only). We keep ring: aws-lc-rs is a large C build on every
        // machine that builds clipfeed, and what travels here is the feeds' own documents.
        // Moving over is this line and `sign.rs`'s import.
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("TLS set-up")?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let user_agent = HeaderValue::from_static(concat!("clipfeed/", env!("CARGO_PKG_VERSION"), " (WebSub hub)"));
        Ok(Client { tls: TlsConnector::from(Arc::new(config)), timeout, user_agent })
    }

    /// Makes one request. With a `policy`, every address of the URL's host must pass it, or
    /// nothing is sent.
    pub async fn send(&self, req: Outbound<'_>, policy: Option<&Policy>) -> Result<Reply, Failure> {
        match tokio::time::timeout(self.timeout, self.send_unbounded(req, policy)).await {
            Ok(r) => r,
            Err(_) => Err(Failure::Failed(format!("no complete response within {:?}", self.timeout))),
        }
    }

    async fn send_unbounded(&self, req: Outbound<'_>, policy: Option<&Policy>) -> Result<Reply, Failure> {
        let url = req.url;
        let addrs = resolve(url).await?;
        if let Some(policy) = policy {
            for addr in &addrs {
                policy.check(addr.ip()).map_err(Failure::Refused)?;
            }
        }
        let tcp = connect(&addrs).await?;
        let request = build(&req, &self.user_agent)?;
        if url.scheme() == "https" {
            let name = match url.host() {
                Some(url::Host::Domain(d)) => pki_types::ServerName::try_from(d.to_string()),
                Some(url::Host::Ipv4(ip)) => Ok(pki_types::ServerName::from(IpAddr::V4(ip))),
                Some(url::Host::Ipv6(ip)) => Ok(pki_types::ServerName::from(IpAddr::V6(ip))),
                None => return Err(Failure::Refused("no host".into())),
            }
            .map_err(|e| Failure::Refused(format!("TLS server name: {e}")))?;
            let tls = self.tls.connect(name, tcp).await.map_err(|e| Failure::Failed(format!("TLS: {e}")))?;
            exchange(tls, request, req.max_body).await
        } else {
            exchange(tcp, request, req.max_body).await
        }
    }
}

/// The addresses of the URL's host: the literal address, or one name lookup.
pub async fn resolve(url: &Url) -> Result<Vec<SocketAddr>, Failure> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Failure::Refused(format!("scheme {:?} is not http or https", url.scheme())));
    }
    let port = url.port_or_known_default().ok_or_else(|| Failure::Refused("no port".into()))?;
    let mut addrs: Vec<SocketAddr> = match url.host() {
        Some(url::Host::Ipv4(ip)) => vec![SocketAddr::new(IpAddr::V4(ip), port)],
        Some(url::Host::Ipv6(ip)) => vec![SocketAddr::new(IpAddr::V6(ip), port)],
        Some(url::Host::Domain(name)) => tokio::net::lookup_host((name, port))
            .await
            .map_err(|e| Failure::Failed(format!("cannot resolve {name}: {e}")))?
            .collect(),
        None => return Err(Failure::Refused("no host".into())),
    };
    addrs.dedup();
    addrs.truncate(MAX_ADDRS);
    if addrs.is_empty() {
        return Err(Failure::Failed("the host has no address".into()));
    }
    Ok(addrs)
}

/// Connects to the first of `addrs` that answers.
async fn connect(addrs: &[SocketAddr]) -> Result<TcpStream, Failure> {
    let mut last = String::new();
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Err(e) => last = format!("cannot connect to {addr}: {e}"),
        }
    }
    Err(Failure::Failed(last))
}

fn build(req: &Outbound<'_>, user_agent: &HeaderValue) -> Result<Request<Full<Bytes>>, Failure> {
    let url = req.url;
    let target = &url[url::Position::BeforePath..url::Position::AfterQuery];
    let host = &url[url::Position::BeforeHost..url::Position::AfterPort];
    let mut builder = Request::builder()
        .method(req.method.clone())
        .uri(if target.is_empty() { "/" } else { target })
        .header(hyper::header::HOST, host)
        .header(hyper::header::USER_AGENT, user_agent.clone())
        .header(hyper::header::CONNECTION, "close");
    for (name, value) in &req.headers {
        builder = builder.header(name, value);
    }
    builder.body(Full::new(req.body.clone())).map_err(|e| Failure::Refused(format!("request: {e}")))
}

/// Sends `request` on a fresh connection and reads the reply, driving the connection alongside.
async fn exchange<S>(io: S, request: Request<Full<Bytes>>, max_body: usize) -> Result<Reply, Failure>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let failed = |e: hyper::Error| Failure::Failed(format!("HTTP: {e}"));
    let (mut sender, conn) = hyper::client::conn::http1::Builder::new()
        .max_buf_size(MAX_READ_BUFFER)
        .handshake(TokioIo::new(io))
        .await
        .map_err(failed)?;
    let work = async move {
        let res = sender.send_request(request).await.map_err(failed)?;
        let status = res.status().as_u16();
        let mut body = res.into_body();
        let mut got = Vec::new();
        let mut truncated = false;
        // Read past `max_body` by one frame, to tell a longer body from one of exactly that size.
        while max_body > 0 && !truncated {
            let Some(frame) = body.frame().await else { break };
            if let Ok(data) = frame.map_err(failed)?.into_data() {
                let room = max_body - got.len();
                truncated = data.len() > room;
                got.extend_from_slice(&data[..data.len().min(room)]);
            }
        }
        Ok(Reply { status, body: Bytes::from(got), truncated })
    };
    tokio::pin!(work);
    tokio::pin!(conn);
    // The connection future ends when the peer is done; the reply may still be buffered then.
    tokio::select! {
        r = &mut work => r,
        _ = &mut conn => work.await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(url: &str) -> (String, String) {
        let url = Url::parse(url).unwrap();
        let ua = HeaderValue::from_static("t");
        let out = Outbound { method: Method::GET, url: &url, headers: Vec::new(), body: Bytes::new(), max_body: 0 };
        let req = build(&out, &ua).unwrap();
        (req.uri().to_string(), req.headers()[hyper::header::HOST].to_str().unwrap().to_string())
    }

    #[tokio::test]
    async fn address_forms_resolve_to_the_address_that_is_checked() {
        for (url, addr) in [
            ("http://0x7f.1/", "127.0.0.1:80"),
            ("http://2130706433:81/", "127.0.0.1:81"),
            ("https://0177.0.0.01/", "127.0.0.1:443"),
            ("http://[::ffff:a9fe:a9fe]/", "[::ffff:169.254.169.254]:80"),
            ("http://[0:0:0:0:0:0:0:1]:8/", "[::1]:8"),
        ] {
            let got = resolve(&Url::parse(url).unwrap()).await.unwrap();
            assert_eq!(got, [addr.parse::<SocketAddr>().unwrap()], "{url}");
            assert!(Policy::default().check(got[0].ip()).is_err(), "{url}");
        }
        let refused = resolve(&Url::parse("ftp://example.org/").unwrap()).await.unwrap_err();
        assert!(matches!(refused, Failure::Refused(_)));
    }

    #[tokio::test]
    async fn a_silent_server_costs_at_most_the_time_limit() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
        // Accepts, then never answers.
        let held = tokio::spawn(async move {
            let (socket, _) = listener.accept().await.unwrap();
            std::future::pending::<()>().await;
            drop(socket);
        });
        let client = Client::new(None, Duration::from_millis(300)).unwrap();
        let out = Outbound { method: Method::GET, url: &url, headers: Vec::new(), body: Bytes::new(), max_body: 10 };
        let err = client.send(out, None).await.unwrap_err();
        assert!(matches!(&err, Failure::Failed(why) if why.contains("within")), "{err:?}");
        held.abort();
    }

    #[test]
    fn request_target_and_host() {
        assert_eq!(head("http://Example.org/a%20b?q=1&r=x%7Cy"), ("/a%20b?q=1&r=x%7Cy".into(), "example.org".into()));
        assert_eq!(head("https://h.example:8443"), ("/".into(), "h.example:8443".into()));
        assert_eq!(head("http://[::1]:80/x"), ("/x".into(), "[::1]".into()));
        assert_eq!(head("http://h/c?x={a}|b^`"), ("/c?x={a}|b^`".into(), "h".into()));
    }
}
