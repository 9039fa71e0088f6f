//! The inline lab: three network namespaces, `client`, `fw` and `server`, with `fw` routing
//! between two veth pairs, for tests that put sekisho in the path of real traffic.
//!
//! ```text
//!  client                    fw                          server
//!  10.0.0.2 … 10.0.0.13 ── c0 ═ f0 10.0.0.1   f1 10.0.1.1 ═ s0 ── 10.0.1.2
//!  (fd00::2)                (fd00::1)       (fd01::1)        (fd01::2)
//! ```
//!
//! Namespace names carry the test process id and a counter (`sk<pid>n<k>-client`), so tests
//! running in parallel never collide; namespaces left by a process that is gone are removed
//! when the next lab starts. Every process started through [`Lab::spawn`] is killed, and the
//! namespaces (with their veths, routes and netfilter rules) are deleted, when the [`Lab`] is
//! dropped, also when the test panics. Traffic never leaves the namespaces: none of them has
//! a route out.
//!
//! Needs root and `ip`; [`Lab::new`] returns `None` (after a loud `SKIP`) outside CI when they
//! are missing, and panics in CI ([`crate::missing`]). Tools a test needs beyond those are
//! checked with [`require_tools`].

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The client's first address (inside `10.0.0.0/24`, the example policies' `HOME_NET`).
pub const CLIENT_IP: &str = "10.0.0.2";
/// The client's second address (a second client, e.g. for the flood test).
pub const CLIENT_IP2: &str = "10.0.0.3";
/// How many client addresses there are: `10.0.0.2` up to `10.0.0.{CLIENT_ADDRS + 1}` (the
/// kernel's queue balancing hashes addresses, not ports, so spreading flows over queues
/// takes several addresses).
pub const CLIENT_ADDRS: u8 = 12;

/// The client's `i`-th address (0-based; 0 is [`CLIENT_IP`]).
pub fn client_ip(i: u8) -> String {
    format!("10.0.0.{}", 2 + i % CLIENT_ADDRS)
}

/// The client's IPv6 address.
pub const CLIENT_IP6: &str = "fd00::2";
/// The server's address.
pub const SERVER_IP: &str = "10.0.1.2";
/// The server's IPv6 address.
pub const SERVER_IP6: &str = "fd01::2";

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Whether the current user is root.
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

/// Where `tool` is on `PATH` (also `/usr/sbin` and `/sbin`, where Debian puts servers).
pub fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"])
        .map(|d| Path::new(d).join(tool))
        .find(|p| p.is_file());
    found
}

/// True when every tool is installed (and we are root); otherwise reports the first missing
/// one through [`crate::missing`] (a failure in CI, a `SKIP` elsewhere) and returns false.
pub fn require_tools(tools: &[&str]) -> bool {
    if !is_root() {
        return crate::missing::<()>(
            "root (the lab creates network namespaces)",
            Path::new("uid 0"),
        )
        .is_some();
    }
    tools.iter().all(|t| require_tool(t))
}

/// True when `tool` is installed (root or not); otherwise reports it through
/// [`crate::missing`] (a failure in CI, a `SKIP` elsewhere) and returns false. For tests that
/// only read with a tool (tshark over a capture) and need no namespaces.
pub fn require_tool(tool: &str) -> bool {
    which(tool).is_some()
        || crate::missing::<()>(
            &format!("tool `{tool}` (apt packages: scripts/test.sh)"),
            Path::new(tool),
        )
        .is_some()
}

/// Runs a command to completion, capturing its output.
fn output(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// The three namespaces and what runs in them. See the module docs.
pub struct Lab {
    /// The client namespace's name.
    pub client: String,
    /// The firewall namespace's name (routes between the two veth pairs).
    pub fw: String,
    /// The server namespace's name.
    pub server: String,
    /// A scratch directory for this lab's files (logs, policies), removed on drop.
    pub dir: PathBuf,
    children: Vec<(String, Child)>,
}

impl Lab {
    /// Builds the namespaces, veths, addresses and routes; forwarding on in `fw`. `None`
    /// (after [`crate::missing`]) when not root or `ip` is missing.
    pub fn new() -> Option<Lab> {
        if !require_tools(&["ip", "iptables"]) {
            return None;
        }
        remove_stale();
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let base = format!("sk{}n{n}", std::process::id());
        let dir = std::env::temp_dir().join(format!("sekisho-lab-{base}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("lab scratch dir");
        let lab = Lab {
            client: format!("{base}-client"),
            fw: format!("{base}-fw"),
            server: format!("{base}-server"),
            dir,
            children: Vec::new(),
        };
        for ns in [&lab.client, &lab.fw, &lab.server] {
            lab.host(&["ip", "netns", "add", ns]);
            lab.ok(ns, &["ip", "link", "set", "lo", "up"]);
        }
        let (c, f, s) = (&lab.client, &lab.fw, &lab.server);
        lab.host(&[
            "ip", "link", "add", "c0", "netns", c, "type", "veth", "peer", "name", "f0", "netns", f,
        ]);
        lab.host(&[
            "ip", "link", "add", "f1", "netns", f, "type", "veth", "peer", "name", "s0", "netns", s,
        ]);
        for (ns, dev, addrs) in [
            (c, "c0", &["fd00::2/64"][..]),
            (f, "f0", &["10.0.0.1/24", "fd00::1/64"][..]),
            (f, "f1", &["10.0.1.1/24", "fd01::1/64"][..]),
            (s, "s0", &["10.0.1.2/24", "fd01::2/64"][..]),
        ] {
            for a in addrs {
                lab.ok(ns, &["ip", "addr", "add", a, "dev", dev, "nodad"]);
            }
            lab.ok(ns, &["ip", "link", "set", dev, "up"]);
        }
        for i in 0..CLIENT_ADDRS {
            let a = format!("{}/24", client_ip(i));
            lab.ok(c, &["ip", "addr", "add", &a, "dev", "c0"]);
        }
        lab.ok(
            c,
            &[
                "ip",
                "route",
                "add",
                "10.0.1.0/24",
                "via",
                "10.0.0.1",
                "src",
                CLIENT_IP,
            ],
        );
        lab.ok(
            c,
            &["ip", "-6", "route", "add", "fd01::/64", "via", "fd00::1"],
        );
        lab.ok(s, &["ip", "route", "add", "10.0.0.0/24", "via", "10.0.1.1"]);
        lab.ok(
            s,
            &["ip", "-6", "route", "add", "fd00::/64", "via", "fd01::1"],
        );
        lab.ok(f, &["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
        lab.ok(f, &["sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"]);
        Some(lab)
    }

    /// A command run inside namespace `ns` (`ip netns exec NS PROGRAM`).
    pub fn cmd(&self, ns: &str, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns, program]);
        c
    }

    /// Runs `args` in `ns` to completion.
    pub fn run(&self, ns: &str, args: &[&str]) -> Output {
        let mut c = self.cmd(ns, args[0]);
        c.args(&args[1..]);
        output(&mut c)
    }

    /// Runs `args` in `ns` and panics (with its stderr) unless it succeeds.
    pub fn ok(&self, ns: &str, args: &[&str]) -> Output {
        let o = self.run(ns, args);
        assert!(
            o.status.success(),
            "in {ns}: {args:?} failed: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        o
    }

    fn host(&self, args: &[&str]) {
        let o = output(Command::new(args[0]).args(&args[1..]));
        assert!(
            o.status.success(),
            "{args:?} failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }

    /// Starts `cmd` (from [`Lab::cmd`]) in the background, named `name` in messages; it is
    /// killed when the lab is dropped. Returns its pid.
    pub fn spawn(&mut self, name: &str, cmd: &mut Command) -> u32 {
        let child = cmd
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let pid = child.id();
        self.children.push((name.to_string(), child));
        pid
    }

    /// Sends SIGTERM to the process `pid` started with [`Lab::spawn`] and waits up to
    /// `timeout` for it to exit; returns its exit code (`None`: killed by a signal or still
    /// running, in which case it is killed).
    pub fn terminate(&mut self, pid: u32, timeout: Duration) -> Option<i32> {
        let i = self.children.iter().position(|(_, c)| c.id() == pid)?;
        let (_, mut child) = self.children.remove(i);
        let _ = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(st)) = child.try_wait() {
                return st.code();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends `signal` (e.g. `HUP`) to `pid`.
    pub fn signal(&self, pid: u32, signal: &str) {
        let st = Command::new("kill")
            .args([&format!("-{signal}"), &pid.to_string()])
            .status()
            .expect("kill");
        assert!(st.success(), "kill -{signal} {pid}");
    }

    /// True while the spawned process `pid` runs.
    pub fn running(&mut self, pid: u32) -> bool {
        self.children
            .iter_mut()
            .find(|(_, c)| c.id() == pid)
            .is_some_and(|(_, c)| matches!(c.try_wait(), Ok(None)))
    }

    /// Waits until a TCP port accepts connections in `ns` (checked from inside `ns` with
    /// bash's `/dev/tcp`), panicking after `timeout`.
    pub fn wait_tcp(&self, ns: &str, ip: &str, port: u16, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let probe = format!("exec 3<>/dev/tcp/{ip}/{port}");
        while !self.run(ns, &["bash", "-c", &probe]).status.success() {
            assert!(
                Instant::now() < deadline,
                "nothing listens on {ip}:{port} in {ns}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until `path` exists, panicking after `timeout` with `what`.
    pub fn wait_file(&self, path: &Path, timeout: Duration, what: &str) {
        let deadline = Instant::now() + timeout;
        while !path.exists() {
            assert!(
                Instant::now() < deadline,
                "{what}: {} never appeared",
                path.display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends every forwarded packet in `fw` to NFQUEUE with iptables: `queues` is `N` (one
    /// queue) or `N:M` (`--queue-balance`, the kernel's symmetric flow hash); `bypass` adds
    /// `--queue-bypass` (accept while no program is bound).
    pub fn queue_iptables(&self, queues: &str, bypass: bool) {
        let mut args = vec!["iptables", "-A", "FORWARD", "-j", "NFQUEUE"];
        if queues.contains(':') {
            args.extend(["--queue-balance", queues]);
        } else {
            args.extend(["--queue-num", queues]);
        }
        if bypass {
            args.push("--queue-bypass");
        }
        self.ok(&self.fw, &args);
        if which("ip6tables").is_some() {
            args[0] = "ip6tables";
            self.ok(&self.fw, &args);
        }
    }

    /// The same with nftables (`queue num N[-M] [fanout] [bypass]` in an `inet` forward
    /// chain); `queues` as for [`Lab::queue_iptables`]. `Err` carries nft's message (a kernel
    /// built without the nftables `queue` expression says "No such file or directory").
    pub fn queue_nft(&self, queues: &str, bypass: bool) -> Result<(), String> {
        let nums = queues.replace(':', "-");
        let flags = match (queues.contains(':'), bypass) {
            (true, true) => " fanout,bypass",
            (true, false) => " fanout",
            (false, true) => " bypass",
            (false, false) => "",
        };
        let script = format!(
            "table inet sekisho {{\n  chain forward {{\n    type filter hook forward priority 0; policy accept;\n    queue num {nums}{flags}\n  }}\n}}\n"
        );
        let file = self.dir.join("queue.nft");
        std::fs::write(&file, script).expect("write nft script");
        let o = self.run(&self.fw, &["nft", "-f", &file.display().to_string()]);
        if o.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&o.stderr).into_owned())
        }
    }

    /// Removes the iptables FORWARD rules of `fw` (traffic is routed without a firewall).
    pub fn flush_forward(&self) {
        self.ok(&self.fw, &["iptables", "-F", "FORWARD"]);
        let _ = self.run(&self.fw, &["ip6tables", "-F", "FORWARD"]);
        let _ = self.run(&self.fw, &["nft", "delete", "table", "inet", "sekisho"]);
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for (_, c) in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in [&self.client, &self.fw, &self.server] {
            kill_in(ns);
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stderr(Stdio::null())
                .status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Kills what still runs in namespace `ns` (daemons a test started there).
fn kill_in(ns: &str) {
    let Ok(o) = Command::new("ip").args(["netns", "pids", ns]).output() else {
        return;
    };
    for pid in String::from_utf8_lossy(&o.stdout).split_whitespace() {
        let _ = Command::new("kill").args(["-KILL", pid]).status();
    }
}

/// Deletes lab namespaces whose test process is gone (a test run that was killed).
fn remove_stale() {
    let Ok(o) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&o.stdout).lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        // Only names this module makes: sk<pid>n<k>-client|fw|server.
        if !["-client", "-fw", "-server"]
            .iter()
            .any(|s| name.ends_with(s))
        {
            continue;
        }
        let Some(pid) = name
            .strip_prefix("sk")
            .and_then(|r| r.split_once('n'))
            .and_then(|(p, _)| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            kill_in(name);
            let _ = Command::new("ip").args(["netns", "del", name]).status();
        }
    }
}
