//! A real local Redis Cluster for the tests: `redis-server --cluster-enabled yes` nodes on free
//! ports in a temporary directory, joined by `redis-cli --cluster create`, stopped when dropped
//! and, whatever happens to the test process, by a watchdog shell that outlives it only until it
//! notices the process is gone. Needs `mod redis_common;` beside it (for `unavailable`).

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub use super::redis_common::unavailable;

/// A port that is free, and whose cluster bus port (+10000) is free too.
fn free_port_pair() -> u16 {
    loop {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
        let port = listener.local_addr().unwrap().port();
        if port < 55_000 && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
}

/// A master's port and the slot ranges it serves.
type SlotOwner = (u16, Vec<(u16, u16)>);

/// One node as `CLUSTER NODES` describes it.
#[derive(Debug, Clone)]
pub struct Node {
    pub id: String,
    pub port: u16,
    pub master: bool,
    pub failed: bool,
    /// The master's id, for a replica.
    pub master_id: Option<String>,
    /// The slot ranges a master serves.
    pub slots: Vec<(u16, u16)>,
}

/// A running cluster of `masters` masters with one replica each.
pub struct Cluster {
    pub ports: Vec<u16>,
    dir: PathBuf,
    children: Mutex<HashMap<u16, Child>>,
    watchdog: Option<Child>,
}

impl Cluster {
    /// Starts the nodes, creates the cluster and waits until every node reports it ok.
    /// `Err` when `redis-server` or `redis-cli` is missing or the cluster does not form.
    pub fn start(label: &str, masters: usize, node_timeout_ms: u64) -> Result<Self, String> {
        Self::start_announcing(label, masters, node_timeout_ms, &mut |_| None)
    }

    /// Like [`start`](Self::start), but each node tells clients to reach it at the port
    /// `announce` gives for its own (when `Some`), as behind a proxy; the cluster bus stays
    /// direct. What is behind the announced ports must forward to the nodes from the start.
    pub fn start_announcing(
        label: &str,
        masters: usize,
        node_timeout_ms: u64,
        announce: &mut dyn FnMut(u16) -> Option<u16>,
    ) -> Result<Self, String> {
        for tool in ["redis-server", "redis-cli"] {
            let found = Command::new(tool)
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !found {
                return Err(format!("`{tool}` is not installed"));
            }
        }
        let dir = std::env::temp_dir().join(format!(
            "tsj-cluster-{label}-{}-{}",
            std::process::id(),
            free_port_pair()
        ));
        std::fs::create_dir_all(&dir).map_err(|e| format!("temp dir: {e}"))?;
        let mut cluster = Cluster {
            ports: Vec::new(),
            dir,
            children: Mutex::new(HashMap::new()),
            watchdog: None,
        };
        for _ in 0..masters * 2 {
            let port = free_port_pair();
            cluster.spawn_node(port, node_timeout_ms, announce(port))?;
            cluster.ports.push(port);
        }
        cluster.watchdog = Some(cluster.spawn_watchdog()?);
        for &port in &cluster.ports {
            wait_for(Duration::from_secs(10), || ping(port))
                .map_err(|_| format!("redis-server on {port} never came up"))?;
        }
        let mut create = Command::new("redis-cli");
        create.arg("--cluster").arg("create");
        for port in &cluster.ports {
            create.arg(format!("127.0.0.1:{port}"));
        }
        let out = create
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("redis-cli --cluster create: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "redis-cli --cluster create failed: {}",
                String::from_utf8_lossy(&out.stdout)
            ));
        }
        cluster.wait_healthy(Duration::from_secs(30))?;
        cluster.wait_replicated(Duration::from_secs(30))?;
        Ok(cluster)
    }

    fn spawn_node(
        &self,
        port: u16,
        node_timeout_ms: u64,
        announce: Option<u16>,
    ) -> Result<(), String> {
        let mut command = Command::new("redis-server");
        if let Some(announced) = announce {
            command
                .args(["--cluster-announce-port", &announced.to_string()])
                .args(["--cluster-announce-bus-port", &(port + 10_000).to_string()]);
        }
        let child = command
            .args(["--port", &port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--cluster-enabled", "yes"])
            .args(["--cluster-config-file", &format!("nodes-{port}.conf")])
            .args(["--cluster-node-timeout", &node_timeout_ms.to_string()])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .args(["--daemonize", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start redis-server: {e}"))?;
        self.children.lock().unwrap().insert(port, child);
        Ok(())
    }

    /// A shell that kills the nodes and removes the directory once this process is gone, so no
    /// node outlives a test run that aborts or whose statics are never dropped.
    fn spawn_watchdog(&self) -> Result<Child, String> {
        let pids: Vec<String> = self
            .children
            .lock()
            .unwrap()
            .values()
            .map(|c| c.id().to_string())
            .collect();
        let script = format!(
            "while kill -0 {me} 2>/dev/null; do sleep 0.3; done; kill -9 {pids} 2>/dev/null; rm -rf '{dir}'",
            me = std::process::id(),
            pids = pids.join(" "),
            dir = self.dir.display(),
        );
        Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start the watchdog: {e}"))
    }

    /// Seed URLs for the store.
    pub fn urls(&self) -> Vec<String> {
        self.ports
            .iter()
            .map(|p| format!("redis://127.0.0.1:{p}"))
            .collect()
    }

    /// Waits until every live node says `cluster_state:ok` and agrees on who serves every slot.
    pub fn wait_healthy(&self, limit: Duration) -> Result<(), String> {
        let live: Vec<u16> = self.live_ports();
        wait_for(limit, || {
            live.iter().all(|&port| {
                query_text(port, &["CLUSTER", "INFO"])
                    .is_some_and(|info| info.contains("cluster_state:ok"))
            }) && {
                let views: Vec<Vec<SlotOwner>> = live
                    .iter()
                    .filter_map(|&port| nodes_of(port))
                    .map(|nodes| {
                        let mut masters: Vec<_> = nodes
                            .into_iter()
                            .filter(|n| n.master && !n.failed && !n.slots.is_empty())
                            .map(|n| (n.port, n.slots))
                            .collect();
                        masters.sort();
                        masters
                    })
                    .collect();
                views.len() == live.len() && views.windows(2).all(|w| w[0] == w[1])
            }
        })
        .map_err(|_| "the cluster did not become healthy".to_owned())
    }

    fn live_ports(&self) -> Vec<u16> {
        let children = self.children.lock().unwrap();
        self.ports
            .iter()
            .copied()
            .filter(|p| children.contains_key(p))
            .collect()
    }

    /// The nodes as a live node sees them.
    pub fn nodes(&self) -> Vec<Node> {
        self.live_ports()
            .into_iter()
            .find_map(nodes_of)
            .expect("no live node answers CLUSTER NODES")
    }

    /// The port of the master serving `slot`.
    pub fn master_of_slot(&self, slot: u16) -> u16 {
        self.nodes()
            .into_iter()
            .find(|n| n.master && !n.failed && n.slots.iter().any(|&(a, b)| a <= slot && slot <= b))
            .map(|n| n.port)
            .expect("no master serves the slot")
    }

    /// The slot of a key (`CLUSTER KEYSLOT`).
    pub fn keyslot(&self, key: &str) -> u16 {
        let port = self.live_ports()[0];
        let text = query_text(port, &["CLUSTER", "KEYSLOT", key]).expect("CLUSTER KEYSLOT");
        text.trim().parse().expect("a slot number")
    }

    /// Kills a node outright (SIGKILL), as a crashed machine would vanish.
    pub fn kill(&self, port: u16) {
        if let Some(mut child) = self.children.lock().unwrap().remove(&port) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits until every master has a replica and every replica is in sync with its master
    /// (`master_link_status:up` and the same replication offset), so that killing a master loses
    /// nothing written before.
    pub fn wait_replicated(&self, limit: Duration) -> Result<(), String> {
        wait_for(limit, || {
            let nodes = self.nodes();
            let serving = nodes
                .iter()
                .filter(|n| n.master && !n.slots.is_empty())
                .count();
            let replicas: Vec<&Node> = nodes.iter().filter(|n| !n.master && !n.failed).collect();
            // Until `redis-cli --cluster create` has attached every replica, a node without
            // slots still calls itself a master: it must not pass for a replica in sync.
            replicas.len() >= serving
                && replicas.iter().all(|replica| {
                    let Some(master) = nodes
                        .iter()
                        .find(|m| Some(&m.id) == replica.master_id.as_ref())
                    else {
                        return false;
                    };
                    let offset = |port: u16, field: &str| {
                        query_text(port, &["INFO", "replication"]).and_then(|info| {
                            info.lines()
                                .find_map(|l| l.strip_prefix(field))
                                .map(|v| v.trim().to_owned())
                        })
                    };
                    offset(replica.port, "master_link_status:").as_deref() == Some("up")
                        && offset(master.port, "master_repl_offset:")
                            == offset(replica.port, "master_repl_offset:")
                })
        })
        .map_err(|_| "the replicas did not catch up".to_owned())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for (_, mut child) in self.children.lock().unwrap().drain() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(mut watchdog) = self.watchdog.take() {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn wait_for(limit: Duration, mut check: impl FnMut() -> bool) -> Result<(), ()> {
    let start = Instant::now();
    loop {
        if check() {
            return Ok(());
        }
        if start.elapsed() > limit {
            return Err(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn connection(port: u16) -> Option<redis::Connection> {
    redis::Client::open(format!("redis://127.0.0.1:{port}"))
        .ok()?
        .get_connection_with_timeout(Duration::from_millis(500))
        .ok()
}

fn ping(port: u16) -> bool {
    query_text(port, &["PING"]).is_some()
}

/// A command's reply as text, on a plain (non-cluster) connection to one node.
pub fn query_text(port: u16, args: &[&str]) -> Option<String> {
    let mut conn = connection(port)?;
    let mut cmd = redis::cmd(args[0]);
    for arg in &args[1..] {
        cmd.arg(*arg);
    }
    match cmd.query::<redis::Value>(&mut conn).ok()? {
        redis::Value::Int(n) => Some(n.to_string()),
        value => redis::from_redis_value::<String>(value).ok(),
    }
}

/// Whether `key` exists on the node at `port` itself (a plain connection: no redirection).
pub fn exists_on(port: u16, key: &str) -> bool {
    query_text(port, &["EXISTS", key]).as_deref() == Some("1")
}

fn nodes_of(port: u16) -> Option<Vec<Node>> {
    let text = query_text(port, &["CLUSTER", "NODES"])?;
    Some(
        text.lines()
            .filter_map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                if fields.len() < 8 {
                    return None;
                }
                let port = fields[1]
                    .split('@')
                    .next()?
                    .rsplit(':')
                    .next()?
                    .parse()
                    .ok()?;
                let flags = fields[2];
                let slots = fields[8..]
                    .iter()
                    .filter(|s| !s.starts_with('['))
                    .filter_map(|s| match s.split_once('-') {
                        Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
                        None => s.parse().ok().map(|n| (n, n)),
                    })
                    .collect();
                Some(Node {
                    id: fields[0].to_owned(),
                    port,
                    master: flags.contains("master"),
                    failed: flags.contains("fail") && !flags.contains("fail?"),
                    master_id: (fields[3] != "-").then(|| fields[3].to_owned()),
                    slots,
                })
            })
            .collect(),
    )
}
