//! A TCP proxy on 127.0.0.1 that forwards bytes between a client and an engine, and can be
//! switched to hold everything without closing anything: the link stays open and carries
//! nothing, as when a network path or a middlebox stalls. Connections opened while
//! [`StallProxy::exempt_new`] is on are never held (another instance's links, for an engine
//! whose nodes announce the proxy's address to every client).

#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// One listening port forwarding to one upstream port; see the module docs.
pub struct StallProxy {
    /// The port clients connect to.
    pub port: u16,
    upstream: Arc<AtomicU16>,
    accept: tokio::task::JoinHandle<()>,
}

/// Stall state shared by every proxy of one [`Switch`].
struct Shared {
    stalled: watch::Sender<bool>,
    exempt_new: AtomicBool,
}

/// Stalls or releases a group of proxies at once.
#[derive(Clone)]
pub struct Switch(Arc<Shared>);

impl Default for Switch {
    fn default() -> Self {
        Self(Arc::new(Shared {
            stalled: watch::Sender::new(false),
            exempt_new: AtomicBool::new(false),
        }))
    }
}

impl Switch {
    /// Holds every byte of every connection not exempt, in both directions, from now on.
    pub fn stall(&self) {
        self.0.stalled.send_replace(true);
    }

    /// Lets the held bytes and all later ones through.
    pub fn heal(&self) {
        self.0.stalled.send_replace(false);
    }

    /// While on, connections accepted are never held.
    pub fn exempt_new(&self, on: bool) {
        self.0.exempt_new.store(on, Ordering::SeqCst);
    }
}

impl StallProxy {
    /// A proxy to `127.0.0.1:upstream`, with a switch of its own.
    pub async fn start(upstream: u16) -> (Self, Switch) {
        let switch = Switch::default();
        (Self::start_on(&switch, upstream).await, switch)
    }

    /// A proxy to `127.0.0.1:upstream` controlled by `switch`. An upstream of `0` is set later
    /// with [`set_upstream`](Self::set_upstream), before the first connection.
    pub async fn start_on(switch: &Switch, upstream: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let port = listener.local_addr().unwrap().port();
        let upstream = Arc::new(AtomicU16::new(upstream));
        let accept = tokio::spawn({
            let upstream = upstream.clone();
            let shared = switch.0.clone();
            async move {
                while let Ok((client, _)) = listener.accept().await {
                    let exempt = shared.exempt_new.load(Ordering::SeqCst);
                    let to = upstream.load(Ordering::SeqCst);
                    let shared = shared.clone();
                    tokio::spawn(async move {
                        let Ok(server) = TcpStream::connect(("127.0.0.1", to)).await else {
                            return;
                        };
                        let _ = client.set_nodelay(true);
                        let _ = server.set_nodelay(true);
                        let (client_read, client_write) = client.into_split();
                        let (server_read, server_write) = server.into_split();
                        let gate = (!exempt).then(|| shared.stalled.subscribe());
                        tokio::join!(
                            pump(client_read, server_write, gate.clone()),
                            pump(server_read, client_write, gate),
                        );
                    });
                }
            }
        });
        Self {
            port,
            upstream,
            accept,
        }
    }

    /// Points the proxy at `127.0.0.1:upstream` for the connections accepted from now on.
    pub fn set_upstream(&self, upstream: u16) {
        self.upstream.store(upstream, Ordering::SeqCst);
    }

    pub fn url(&self, scheme: &str) -> String {
        format!("{scheme}://127.0.0.1:{}", self.port)
    }
}

impl Drop for StallProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Copies `from` to `to`; while the gate says "stalled", holds what it has read (and so, once
/// the socket buffers fill, everything behind it) without closing either side.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut gate: Option<watch::Receiver<bool>>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some(gate) = &mut gate
            && gate.wait_for(|stalled| !*stalled).await.is_err()
        {
            break;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}
