//! Device-bound sessions in a real browser: Debian's Chromium, headless, driven over the Chrome
//! DevTools Protocol, against the example app (`examples/axum_app.rs`) served over HTTPS with a
//! certificate made here by the `openssl` command.
//!
//! The browser signs in through the page's form, registers a device key (seen in CDP's
//! device-bound-session events and on the page), keeps working after its JWT expired because it
//! refreshes the bound cookie with a proof of its key, while the same cookies replayed from a
//! plain HTTP client stop working once the copied JWT has expired.
//!
//! Pinned to Chromium 156's DBSC: the `Secure-Session-*` headers, the features
//! `DeviceBoundSessions` and `EnableBoundSessionCredentialsSoftwareKeysForManualTesting`
//! (software keys: no TPM here) and the CDP method `Network.enableDeviceBoundSessions`. Without
//! `chromium` or `openssl` the test prints a note and passes, unless `CI=true`, where it fails.

#[path = "../examples/axum_app.rs"]
#[allow(dead_code)]
mod axum_app;
mod tls_common;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use futures_util::{SinkExt as _, StreamExt as _};
use http_body_util::{BodyExt as _, Empty};
use serde_json::{Value, json};
use tls_common::{Pki, openssl};
use tokio_tungstenite::tungstenite::Message;
use tower_session_jwt::sessions::CookieConfig;
use tower_session_jwt::{MemoryStore, Sessions, SigningKey};

const JWT_TTL: Duration = Duration::from_secs(8);
/// The clock skew a JWT's `exp` is given (the example's default is 5 s): a copied JWT works
/// until `exp` plus this.
const LEEWAY: Duration = Duration::from_secs(1);

fn unavailable(what: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{what} (required under CI=true: .ci/run installs chromium and openssl)");
    }
    eprintln!("note: skipping the real-browser DBSC test: {what}");
}

/// What the server saw of the DBSC endpoints: path, status, time to answer.
type Seen = Arc<Mutex<Vec<(String, u16, Duration)>>>;

/// The example's router over HTTPS on a free port, the DBSC endpoints timed.
async fn serve(pki: &Pki) -> (SocketAddr, Seen, Sessions) {
    let sessions = Sessions::builder()
        .store(MemoryStore::new())
        .signing_key(SigningKey::generate_ed25519().unwrap())
        .issuer("tower-session-jwt-example")
        .audience("axum_app")
        .jwt_ttl(JWT_TTL)
        .leeway(LEEWAY)
        .session_ttl(Duration::from_secs(3600))
        .sliding(true)
        .cookies(CookieConfig::default().host_prefix(true))
        .device_binding(axum_app::dbsc_config())
        .build()
        .unwrap();
    sessions.ready().await;
    let seen: Seen = Arc::default();
    let log = seen.clone();
    let app = axum_app::app(sessions.clone()).layer(axum::middleware::from_fn(
        move |request: axum::extract::Request, next: axum::middleware::Next| {
            let log = log.clone();
            async move {
                let path = request.uri().path().to_owned();
                let started = Instant::now();
                let response = next.run(request).await;
                if path.starts_with("/dbsc/") {
                    let status = response.status().as_u16();
                    log.lock().unwrap().push((path, status, started.elapsed()));
                }
                response
            }
        },
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (cert, key) = (pki.path("server.crt"), pki.path("server.key"));
    tokio::spawn(async move { axum_app::serve_tls(listener, app, &cert, &key).await });
    (addr, seen, sessions)
}

/// base64(SHA-256(SubjectPublicKeyInfo)) of the server certificate, for Chromium's
/// `--ignore-certificate-errors-spki-list` (a self-made certificate Chromium otherwise refuses;
/// `--ignore-certificate-errors` would make it ignore DBSC).
fn spki_hash(pki: &Pki) -> String {
    openssl(
        &pki.dir.0,
        &[
            "pkey",
            "-in",
            "server.key",
            "-pubout",
            "-outform",
            "DER",
            "-out",
            "spki.der",
        ],
    )
    .unwrap();
    let der = pki.read("spki.der");
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &der);
    base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
}

/// A headless Chromium with DBSC on, killed on drop.
struct Browser {
    child: Child,
    _profile: tls_common::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts Chromium and returns it with its DevTools WebSocket URL.
fn launch(spki: &str) -> Result<(Browser, String), String> {
    let profile = tls_common::TempDir::new("chromium");
    let mut child = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--remote-debugging-port=0",
            &format!("--user-data-dir={}", profile.0.display()),
            &format!("--ignore-certificate-errors-spki-list={spki}"),
            // One entry per feature: a feature named twice keeps its first entry, params lost.
            "--enable-features=DeviceBoundSessions:RefreshQuota/false,\
             EnableBoundSessionCredentialsSoftwareKeysForManualTesting",
            "about:blank",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start chromium: {e}"))?;
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead as _;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if let Some(url) = line.strip_prefix("DevTools listening on ") {
                let _ = tx.send(url.trim().to_owned());
            }
        }
    });
    let browser = Browser {
        child,
        _profile: profile,
    };
    let url = rx
        .recv_timeout(Duration::from_secs(30))
        .map_err(|_| "chromium did not open its DevTools port".to_owned())?;
    Ok((browser, url))
}

/// A Chrome DevTools Protocol connection: commands and the events seen so far.
struct Cdp {
    ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    next_id: u64,
    events: Vec<Value>,
    session: Option<String>,
}

impl Cdp {
    async fn connect(url: &str) -> Self {
        let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        Self {
            ws,
            next_id: 0,
            events: Vec::new(),
            session: None,
        }
    }

    async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({"id": id, "method": method, "params": params});
        if let Some(session) = &self.session {
            message["sessionId"] = json!(session);
        }
        self.ws
            .send(Message::text(message.to_string()))
            .await
            .unwrap();
        loop {
            let message = self.read(Duration::from_secs(30)).await;
            let Some(message) = message else {
                panic!("no answer to {method}");
            };
            if message["id"] == id {
                if let Some(error) = message.get("error") {
                    panic!("{method}: {error}");
                }
                return message["result"].clone();
            }
        }
    }

    /// Reads one message (keeping events); `None` on timeout.
    async fn read(&mut self, timeout: Duration) -> Option<Value> {
        loop {
            let frame = tokio::time::timeout(timeout, self.ws.next()).await.ok()??;
            if let Message::Text(text) = frame.unwrap() {
                let value: Value = serde_json::from_str(&text).unwrap();
                if value.get("method").is_some() {
                    self.events.push(value.clone());
                }
                return Some(value);
            }
        }
    }

    /// Waits until an event (seen before or arriving) matches; returns it.
    async fn event(&mut self, what: &str, matches: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut checked = 0;
        loop {
            if let Some(found) = self.events[checked..].iter().find(|e| matches(e)) {
                return found.clone();
            }
            checked = self.events.len();
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "no {what} within 20 s; events: {:#?}",
                self.events_summary()
            );
            self.read(left).await;
        }
    }

    fn events_summary(&self) -> Vec<String> {
        self.events
            .iter()
            .filter(|e| {
                e["method"]
                    .as_str()
                    .is_some_and(|m| m.contains("eviceBound"))
            })
            .map(|e| e.to_string())
            .collect()
    }

    async fn navigate(&mut self, url: &str) {
        let loads = self.count("Page.loadEventFired");
        self.call("Page.navigate", json!({"url": url})).await;
        self.loaded(loads).await;
    }

    fn count(&self, method: &str) -> usize {
        self.events.iter().filter(|e| e["method"] == method).count()
    }

    /// Waits for the page load after the `before`-th.
    async fn loaded(&mut self, before: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.count("Page.loadEventFired") <= before {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "the page did not load; device-bound session events: {:#?}",
                self.events_summary()
            );
            self.read(left).await;
        }
    }

    async fn evaluate(&mut self, expression: &str) -> Value {
        let result = self
            .call(
                "Runtime.evaluate",
                json!({"expression": expression, "returnByValue": true}),
            )
            .await;
        result["result"]["value"].clone()
    }

    async fn text(&mut self) -> String {
        self.evaluate("document.body ? document.body.innerText : ''")
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

/// A plain HTTPS client (not a browser) that trusts the test CA: `GET path` with `cookie`.
async fn replay(pki: &Pki, addr: SocketAddr, path: &str, cookie: &str) -> u16 {
    let mut roots = rustls::RootCertStore::empty();
    use rustls::pki_types::pem::PemObject as _;
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(&pki.read("ca.crt")) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tls = connector.connect(name, tcp).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(connection);
    let request = http::Request::get(path)
        .header("host", format!("localhost:{}", addr.port()))
        .header("cookie", cookie)
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status().as_u16();
    let _ = response.into_body().collect().await;
    status
}

fn cookie_header(cookies: &[(String, String)]) -> String {
    cookies
        .iter()
        .map(|(n, v)| format!("{n}={v}"))
        .collect::<Vec<_>>()
        .join("; ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bound_browser_keeps_working_and_its_copied_cookies_do_not() {
    if Command::new("chromium").arg("--version").output().is_err() {
        return unavailable("chromium is not installed (apt-get install chromium)");
    }
    let pki = match Pki::generate("dbsc") {
        Ok(pki) => pki,
        Err(e) => return unavailable(&e),
    };
    let spki = spki_hash(&pki);
    let (addr, seen, sessions) = serve(&pki).await;
    let origin = format!("https://localhost:{}", addr.port());
    let (_browser, url) = launch(&spki).unwrap();
    let mut cdp = Cdp::connect(&url).await;

    let target = cdp
        .call("Target.createTarget", json!({"url": "about:blank"}))
        .await;
    let attached = cdp
        .call(
            "Target.attachToTarget",
            json!({"targetId": target["targetId"], "flatten": true}),
        )
        .await;
    cdp.session = attached["sessionId"].as_str().map(str::to_owned);
    cdp.call("Page.enable", json!({})).await;
    cdp.call("Runtime.enable", json!({})).await;
    cdp.call("Network.enable", json!({})).await;
    cdp.call("Network.enableDeviceBoundSessions", json!({"enable": true}))
        .await;

    // Sign in through the page's form.
    cdp.navigate(&format!("{origin}/")).await;
    assert!(cdp.text().await.contains("Sign in"), "{}", cdp.text().await);
    let loads = cdp.count("Page.loadEventFired");
    cdp.evaluate(
        "document.querySelector('input[name=user_id]').value = 'alice'; \
         document.querySelector('form[action=\"/login\"]').submit(); true",
    )
    .await;
    cdp.loaded(loads).await;
    assert!(cdp.text().await.contains("Signed in as alice"));

    // The browser registers a key: CDP reports the bound session, the server bound it.
    let added = cdp
        .event("a device-bound session", |e| {
            e["method"] == "Network.deviceBoundSessionsAdded"
        })
        .await;
    eprintln!("deviceBoundSessionsAdded: {}", added["params"]);
    let registered = cdp
        .event("a successful registration event", |e| {
            e["method"] == "Network.deviceBoundSessionEventOccurred"
                && e["params"]["succeeded"] == true
                && e["params"].get("creationEventDetails").is_some()
        })
        .await;
    eprintln!("registration event: {}", registered["params"]);
    assert!(
        seen.lock()
            .unwrap()
            .iter()
            .any(|(path, status, _)| path == "/dbsc/register" && *status == 200),
        "{:?}",
        seen.lock().unwrap()
    );
    cdp.navigate(&format!("{origin}/")).await;
    let page = cdp.text().await;
    assert!(page.contains("bound to this device"), "{page}");
    // `DBSC_SCREENSHOT=page.png` keeps a picture of the bound page.
    if let Ok(path) = std::env::var("DBSC_SCREENSHOT") {
        let shot = cdp
            .call("Page.captureScreenshot", json!({"format": "png"}))
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap())
            .unwrap();
        std::fs::write(path, png).unwrap();
    }

    // What a thief copies: every cookie the browser holds for the site.
    let cookies = cdp
        .call("Network.getCookies", json!({"urls": [origin]}))
        .await;
    let copied: Vec<(String, String)> = cookies["cookies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_owned(),
                c["value"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let token_only: Vec<_> = copied
        .iter()
        .filter(|(n, _)| n.ends_with("session_token"))
        .cloned()
        .collect();
    assert_eq!(token_only.len(), 1, "{copied:?}");
    // While the copied JWT lives, the copy works (that is the one JWT lifetime binding allows);
    // the token alone already does not.
    assert_eq!(
        replay(&pki, addr, "/api/me", &cookie_header(&copied)).await,
        200
    );
    assert_eq!(
        replay(&pki, addr, "/api/me", &cookie_header(&token_only)).await,
        401
    );

    // The JWT expires; the browser keeps working, through a DBSC refresh.
    tokio::time::sleep(JWT_TTL + LEEWAY + Duration::from_secs(1)).await;
    let started = Instant::now();
    cdp.navigate(&format!("{origin}/")).await;
    let navigation = started.elapsed();
    let page = cdp.text().await;
    assert!(page.contains("Signed in as alice"), "{page}");
    cdp.event("a successful refresh event", |e| {
        e["method"] == "Network.deviceBoundSessionEventOccurred"
            && e["params"]["succeeded"] == true
            && e["params"].get("refreshEventDetails").is_some()
    })
    .await;

    // The copied cookies, replayed once the copied JWT has expired: refused.
    assert_eq!(
        replay(&pki, addr, "/api/me", &cookie_header(&copied)).await,
        401
    );
    assert_eq!(
        replay(&pki, addr, "/api/me", &cookie_header(&token_only)).await,
        401
    );
    // The browser's own cookies still work, for as long as it keeps refreshing.
    let fresh = cdp
        .call("Network.getCookies", json!({"urls": [origin]}))
        .await;
    let fresh_jwt = fresh["cookies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"].as_str().unwrap().ends_with("session_jwt"))
        .map(|c| c["value"].as_str().unwrap().to_owned())
        .expect("a refreshed JWT cookie");
    let copied_jwt = copied
        .iter()
        .find(|(n, _)| n.ends_with("session_jwt"))
        .map(|(_, v)| v.clone())
        .unwrap();
    assert_ne!(fresh_jwt, copied_jwt);

    // The application changes the session's claims (an administrator, say): the browser's
    // bound JWT is refused and its token cannot re-mint; the layer strips the JWT cookie, the
    // page reloads, the browser refreshes through DBSC and carries on with the new claims.
    let signed_in = sessions.list("alice").await.unwrap();
    assert_eq!(signed_in.len(), 1);
    let session_id = signed_in[0].session_id.clone();
    let patch = json!({"role": "admin"});
    sessions.update_claims(&session_id, patch).await.unwrap();
    cdp.navigate(&format!("{origin}/")).await;
    let page = cdp.text().await;
    assert!(page.contains("Signed in as alice"), "{page}");
    cdp.navigate(&format!("{origin}/api/me")).await;
    let me = cdp.text().await;
    assert!(me.contains(r#""role":"admin""#), "{me}");

    // Someone else signs in on the same browser, over alice's bound session: the login revokes
    // it (its cookies are replaced), the page is bob's and stays bob's; alice's binding, whose
    // refreshes now come with bob's token cookie for a revoked session, is refused and ended by
    // the browser, never put back over bob's login.
    let loads = cdp.count("Page.loadEventFired");
    cdp.evaluate(
        "const f = document.createElement('form'); f.method = 'post'; f.action = '/login'; \
         const i = document.createElement('input'); i.name = 'user_id'; i.value = 'bob'; \
         f.appendChild(i); document.body.appendChild(f); f.submit(); true",
    )
    .await;
    cdp.loaded(loads).await;
    assert!(cdp.text().await.contains("Signed in as bob"));
    assert!(
        sessions.list("alice").await.unwrap().is_empty(),
        "bob's login left alice's replaced session alive"
    );
    let bob = sessions.list("bob").await.unwrap()[0]
        .session_id
        .to_string();
    cdp.event("bob's binding", |e| {
        e["method"] == "Network.deviceBoundSessionEventOccurred"
            && e["params"]["sessionId"] == bob.as_str()
            && e["params"].get("creationEventDetails").is_some()
            && e["params"]["succeeded"] == true
    })
    .await;
    tokio::time::sleep(JWT_TTL + LEEWAY).await;
    cdp.navigate(&format!("{origin}/")).await;
    let page = cdp.text().await;
    assert!(page.contains("Signed in as bob"), "{page}");
    // A request that needs the bound cookie makes both bindings refresh by now.
    let alice = session_id.to_string();
    cdp.event("the end of alice's binding", |e| {
        e["method"] == "Network.deviceBoundSessionEventOccurred"
            && e["params"]["sessionId"] == alice.as_str()
            && e["params"].get("terminationEventDetails").is_some()
    })
    .await;

    // Logging out revokes the session: the page signs out, and the browser's next refresh is
    // refused, which ends its binding.
    let loads = cdp.count("Page.loadEventFired");
    cdp.evaluate("document.querySelector('form[action=\"/logout\"]').submit(); true")
        .await;
    cdp.loaded(loads).await;
    assert!(cdp.text().await.contains("Sign in"));
    cdp.navigate(&format!("{origin}/")).await;
    assert!(cdp.text().await.contains("Sign in"));
    let ended = cdp
        .event("the end of bob's binding", |e| {
            e["method"] == "Network.deviceBoundSessionEventOccurred"
                && e["params"]["sessionId"] == bob.as_str()
                && e["params"].get("terminationEventDetails").is_some()
        })
        .await;
    eprintln!("after logout: {}", ended["params"]);

    let seen = seen.lock().unwrap().clone();
    let refreshes: Vec<Duration> = seen
        .iter()
        .filter(|(path, status, _)| path == "/dbsc/refresh" && *status == 200)
        .map(|(_, _, took)| *took)
        .collect();
    assert!(!refreshes.is_empty(), "{seen:?}");
    eprintln!(
        "DBSC endpoints: {:?}\nnavigation after the JWT expired: {navigation:?}",
        seen
    );
}
