//! Real HTTP peers on loopback: a receiver that records what it gets and
//! answers as scripted, and an OAuth2 token server.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Serves `app` on a new loopback port: its `http://127.0.0.1:PORT`, and
/// the task serving it (aborted when dropped by the caller, or left to run).
pub async fn serve(app: axum::Router) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, server)
}

/// One request a receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    /// Method.
    pub method: String,
    /// Path.
    pub path: String,
    /// Headers.
    pub headers: HeaderMap,
    /// Body.
    pub body: Bytes,
    /// When it arrived.
    pub at: Instant,
}

impl Received {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("the body is JSON")
    }
}

/// How a receiver answers its n-th request (0-based).
#[derive(Debug, Clone)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Wait this long first.
    pub delay: Duration,
    /// Extra response headers.
    pub headers: Vec<(&'static str, String)>,
    /// The body.
    pub body: String,
}

impl Reply {
    /// Answer `status` at once.
    pub fn status(status: u16) -> Self {
        Self {
            status,
            delay: Duration::ZERO,
            headers: Vec::new(),
            body: "receiver says hi".into(),
        }
    }
}

type Script = dyn Fn(usize, &HeaderMap) -> Reply + Send + Sync;

struct ReceiverState {
    received: Mutex<Vec<Received>>,
    count: AtomicUsize,
    script: Box<Script>,
}

/// A webhook receiver on 127.0.0.1.
pub struct Receiver {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    state: Arc<ReceiverState>,
    _server: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver").field("url", &self.url).finish()
    }
}

impl Receiver {
    /// A receiver that answers 200 to everything.
    pub async fn ok() -> Self {
        Self::scripted(|_, _| Reply::status(200)).await
    }

    /// A receiver that answers as `script` says.
    pub async fn scripted(
        script: impl Fn(usize, &HeaderMap) -> Reply + Send + Sync + 'static,
    ) -> Self {
        let state = Arc::new(ReceiverState {
            received: Mutex::default(),
            count: AtomicUsize::new(0),
            script: Box::new(script),
        });
        let app = axum::Router::new()
            .fallback(receive)
            .with_state(state.clone());
        let (url, server) = serve(app).await;
        Self {
            url,
            state,
            _server: server,
        }
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().expect("lock").clone()
    }

    /// Waits until at least `n` requests arrived (10 s at most).
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        self.wait_for_within(n, Duration::from_secs(10)).await
    }

    /// Waits until at least `n` requests arrived, at most `limit`.
    pub async fn wait_for_within(&self, n: usize, limit: Duration) -> Vec<Received> {
        let deadline = Instant::now() + limit;
        loop {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "waited for {n} requests, got {}",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn receive(
    State(state): State<Arc<ReceiverState>>,
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let n = state.count.fetch_add(1, Ordering::SeqCst);
    let reply = (state.script)(n, &headers);
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    state.received.lock().expect("lock").push(Received {
        method: method.to_string(),
        path: uri.path().to_owned(),
        headers,
        body,
        at: Instant::now(),
    });
    let mut response = (
        StatusCode::from_u16(reply.status).expect("status"),
        reply.body,
    )
        .into_response();
    for (name, value) in reply.headers {
        response
            .headers_mut()
            .insert(name, value.parse().expect("header"));
    }
    response
}

/// What one token request carried.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    /// The HTTP Basic credentials, if sent that way.
    pub basic: Option<(String, String)>,
    /// The form fields.
    pub form: std::collections::BTreeMap<String, String>,
}

/// How the token endpoint answers a good request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenAnswer {
    /// `{"access_token": "tok-N", "token_type": "bearer", "expires_in": …}`
    Standard,
    /// The token under this field only, and no `token_type`.
    Field(String),
    /// An HTML page with status 200.
    Html,
    /// An RFC 6749 §5.2 error with status 400.
    Error(String),
}

struct TokenState {
    fetches: AtomicUsize,
    down: AtomicBool,
    requests: std::sync::Mutex<Vec<TokenRequest>>,
    answer: std::sync::Mutex<TokenAnswer>,
    client_id: String,
    client_secret: String,
    expires_in: u64,
}

/// An OAuth2 token endpoint (client_credentials, HTTP Basic or form) on 127.0.0.1.
pub struct TokenServer {
    /// `http://127.0.0.1:PORT/token`
    pub url: String,
    state: Arc<TokenState>,
    _server: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for TokenServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenServer")
            .field("url", &self.url)
            .finish()
    }
}

impl TokenServer {
    /// Issues `tok-1`, `tok-2`, … to `client_id`/`client_secret`.
    pub async fn start(client_id: &str, client_secret: &str, expires_in: u64) -> Self {
        let state = Arc::new(TokenState {
            fetches: AtomicUsize::new(0),
            down: AtomicBool::new(false),
            requests: std::sync::Mutex::default(),
            answer: std::sync::Mutex::new(TokenAnswer::Standard),
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            expires_in,
        });
        let app = axum::Router::new()
            .route("/token", axum::routing::post(issue))
            .with_state(state.clone());
        let (url, server) = serve(app).await;
        let url = format!("{url}/token");
        Self {
            url,
            state,
            _server: server,
        }
    }

    /// Tokens issued so far.
    pub fn fetches(&self) -> usize {
        self.state.fetches.load(Ordering::SeqCst)
    }

    /// Every token request received, in order.
    pub fn requests(&self) -> Vec<TokenRequest> {
        self.state.requests.lock().expect("lock").clone()
    }

    /// How good requests are answered from now on.
    pub fn set_answer(&self, answer: TokenAnswer) {
        *self.state.answer.lock().expect("lock") = answer;
    }

    /// Makes the endpoint answer 503 (true) or work (false).
    pub fn set_down(&self, down: bool) {
        self.state.down.store(down, Ordering::SeqCst);
    }
}

async fn issue(State(state): State<Arc<TokenState>>, headers: HeaderMap, body: String) -> Response {
    use base64::Engine as _;
    if state.down.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "down").into_response();
    }
    let form: Vec<(String, String)> = url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    let field = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let basic = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok());
    let decode = |s: &str| {
        url::form_urlencoded::parse(s.as_bytes())
            .map(|(k, _)| k.into_owned())
            .next()
            .unwrap_or_default()
    };
    let basic = basic
        .as_deref()
        .and_then(|b| b.split_once(':'))
        .map(|(id, secret)| (decode(id), decode(secret)));
    state.requests.lock().expect("lock").push(TokenRequest {
        basic: basic.clone(),
        form: form.iter().cloned().collect(),
    });
    let (id, secret) = match basic {
        Some(credentials) => credentials,
        None => (
            field("client_id").unwrap_or_default(),
            field("client_secret").unwrap_or_default(),
        ),
    };
    if field("grant_type").as_deref() != Some("client_credentials")
        || id != state.client_id
        || secret != state.client_secret
    {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(serde_json::json!({"error": "invalid_client"})),
        )
            .into_response();
    }
    let answer = state.answer.lock().expect("lock").clone();
    let n = state.fetches.fetch_add(1, Ordering::SeqCst) + 1;
    match answer {
        TokenAnswer::Standard => axum::Json(serde_json::json!({"access_token": format!("tok-{n}"), "token_type": "bearer", "expires_in": state.expires_in})).into_response(),
        TokenAnswer::Field(name) => {
            axum::Json(serde_json::json!({name: format!("tok-{n}"), "expires_in": state.expires_in.to_string()})).into_response()
        }
        TokenAnswer::Html => (
            [("content-type", "text/html")],
            "<html><body>Sign in</body></html>",
        )
            .into_response(),
        TokenAnswer::Error(code) => (
            StatusCode::BAD_REQUEST,
            axum::Json(serde_json::json!({"error": code, "error_description": "refused by the test"})),
        )
            .into_response(),
    }
}

/// Certificates made for one test: a CA, a server certificate for
/// 127.0.0.1 and `localhost`, and a client certificate, all PEM.
#[derive(Debug, Clone)]
pub struct TestPki {
    /// The CA certificate (trust it to reach the server).
    pub ca: String,
    /// The server's certificate and key.
    pub server: (String, String),
    /// A client certificate the server accepts, and its key.
    pub client: (String, String),
}

impl TestPki {
    /// A new CA with a server and a client certificate (rcgen).
    pub fn new() -> Self {
        use rcgen::{
            BasicConstraints, CertificateParams, CertifiedIssuer, ExtendedKeyUsagePurpose, IsCa,
            KeyPair, KeyUsagePurpose,
        };
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "hookgate test CA");
        let ca =
            CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("key")).expect("CA");
        let leaf = |names: Vec<String>, usage: ExtendedKeyUsagePurpose| {
            let key = KeyPair::generate().expect("key");
            let mut params = CertificateParams::new(names).expect("params");
            params.extended_key_usages = vec![usage];
            let cert = params.signed_by(&key, &ca).expect("sign");
            (cert.pem(), key.serialize_pem())
        };
        Self {
            server: leaf(
                vec!["127.0.0.1".into(), "localhost".into()],
                ExtendedKeyUsagePurpose::ServerAuth,
            ),
            client: leaf(
                vec!["hookgate-client".into()],
                ExtendedKeyUsagePurpose::ClientAuth,
            ),
            ca: ca.pem(),
        }
    }
}

impl Default for TestPki {
    fn default() -> Self {
        Self::new()
    }
}

/// An HTTPS server on 127.0.0.1 that requires a client certificate signed
/// by `pki`'s CA: `/token` issues `mtls-tok-N` to any client that got
/// through the handshake, any other path records the request and answers
/// 200. Connections without a good client certificate fail the handshake.
#[derive(Debug)]
pub struct MtlsServer {
    /// `https://127.0.0.1:PORT`
    pub url: String,
    received: Arc<Mutex<Vec<Received>>>,
    handshakes_refused: Arc<AtomicUsize>,
    _server: tokio::task::JoinHandle<()>,
}

impl MtlsServer {
    /// Starts the server with `pki`'s server certificate.
    pub async fn start(pki: &TestPki) -> Self {
        use rustls::pki_types::pem::PemObject as _;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(pki.ca.as_bytes()).expect("ca"))
            .expect("root");
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .build()
        .expect("verifier");
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_client_cert_verifier(verifier)
            .with_single_cert(
                vec![CertificateDer::from_pem_slice(pki.server.0.as_bytes()).expect("cert")],
                PrivateKeyDer::from_pem_slice(pki.server.1.as_bytes()).expect("key"),
            )
            .expect("server config");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let tokens = Arc::new(AtomicUsize::new(0));
        let record = received.clone();
        let app = axum::Router::new()
            .route(
                "/token",
                axum::routing::post(move || {
                    let n = tokens.fetch_add(1, Ordering::SeqCst) + 1;
                    async move {
                        axum::Json(serde_json::json!({"access_token": format!("mtls-tok-{n}"), "token_type": "bearer", "expires_in": 3600}))
                    }
                }),
            )
            .fallback(move |headers: HeaderMap, body: Bytes| {
                let record = record.clone();
                async move {
                    record.lock().expect("lock").push(Received {
                        method: "POST".into(),
                        path: String::new(),
                        headers,
                        body,
                        at: Instant::now(),
                    });
                    StatusCode::OK
                }
            });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!(
            "https://127.0.0.1:{}",
            listener.local_addr().expect("addr").port()
        );
        let refused = Arc::new(AtomicUsize::new(0));
        let counted = refused.clone();
        let server = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let (acceptor, app, counted) = (acceptor.clone(), app.clone(), counted.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        counted.fetch_add(1, Ordering::SeqCst);
                        return;
                    };
                    let service = hyper_util::service::TowerToHyperService::new(app);
                    let _ = hyper_util::server::conn::auto::Builder::new(
                        hyper_util::rt::TokioExecutor::new(),
                    )
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
                });
            }
        });
        Self {
            url,
            received,
            handshakes_refused: refused,
            _server: server,
        }
    }

    /// Requests received (past the handshake), in order.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().expect("lock").clone()
    }

    /// Handshakes refused (no or a bad client certificate).
    pub fn handshakes_refused(&self) -> usize {
        self.handshakes_refused.load(Ordering::SeqCst)
    }
}
