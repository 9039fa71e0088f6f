//! A reload re-applies the policy's exception policies live (docs/inline.md, "Operations"):
//! two TCP connections are open before `sekisho run` starts, so sekisho picks them up
//! mid-stream. With `stream_midstream: drop-flow` the first one's data is dropped; after the
//! policy is changed to `pass-flow` and reloaded (SIGHUP), the second one's data passes.
//! Flows keep what was already done to them (the first stays dropped).

#[path = "support/inline.rs"]
mod inline;

use std::process::Stdio;
use std::time::Duration;

use sekisho_testutil::lab::{self, Lab, SERVER_IP};

fn policy(midstream: &str) -> String {
    format!(
        "engine_profile: suricata-8\nexception_policy:\n  master: auto\n  stream_midstream: {midstream}\nrule_groups: []\n"
    )
}

#[test]
fn reload_applies_new_exception_policies() {
    if !lab::require_tools(&["python3"]) {
        return;
    }
    let Some(mut lab) = Lab::new() else { return };
    let server = lab.server.clone();
    let echo = format!(
        "import socketserver\nclass H(socketserver.StreamRequestHandler):\n  def handle(self):\n    for l in self.rfile:\n      self.wfile.write(l); self.wfile.flush()\nsocketserver.ThreadingTCPServer.allow_reuse_address=True\nsocketserver.ThreadingTCPServer(('{SERVER_IP}',7007),H).serve_forever()\n"
    );
    let mut cmd = lab.cmd(&server, "python3");
    cmd.args(["-c", &echo])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    lab.spawn("echo server", &mut cmd);
    lab.wait_tcp(&server, SERVER_IP, 7007, Duration::from_secs(10));
    // The client opens both connections now (no firewall yet), then for k in 1, 2 waits for
    // the file goK, sends a line on connection k and writes what came back to rK.
    let dir = lab.dir.display().to_string();
    let client = format!(
        "import socket,os,time\ncs=[socket.create_connection(('{SERVER_IP}',7007)) for _ in range(2)]\nfor c in cs: c.sendall(b'hello\\n'); c.recv(100)\nopen('{dir}/open','w').write('1')\nfor k,c in enumerate(cs,1):\n  while not os.path.exists('{dir}/go%d'%k): time.sleep(0.02)\n  c.settimeout(2); c.sendall(b'ping\\n')\n  try: r='ok' if c.recv(100)==b'ping\\n' else 'bad'\n  except OSError: r='timeout'\n  open('{dir}/r%d'%k,'w').write(r)\n"
    );
    let c = lab.client.clone();
    let mut cmd = lab.cmd(&c, "python3");
    cmd.args(["-c", &client])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    lab.spawn("client", &mut cmd);
    lab.wait_file(
        &lab.dir.join("open"),
        Duration::from_secs(10),
        "connections",
    );
    let pol = inline::policy(&lab, "midstream.yaml", &policy("drop-flow"));
    let fw = inline::start(
        &mut lab,
        "reload",
        &["--policy", &pol.display().to_string(), "--queue", "0"],
    );
    lab.queue_iptables("0", false);
    let result = |lab: &Lab, k: u32| {
        std::fs::write(lab.dir.join(format!("go{k}")), "1").expect("go");
        let r = lab.dir.join(format!("r{k}"));
        lab.wait_file(&r, Duration::from_secs(10), "client result");
        std::thread::sleep(Duration::from_millis(50));
        std::fs::read_to_string(&r).unwrap_or_default()
    };
    assert_eq!(
        result(&lab, 1),
        "timeout",
        "mid-stream data passed under drop-flow"
    );
    std::fs::write(&pol, policy("pass-flow")).expect("new policy");
    lab.signal(fw.pid, "HUP");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !fw.log().contains("reloaded") {
        assert!(std::time::Instant::now() < deadline, "{}", fw.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    // Workers take the reload at their next packet or housekeeping tick.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        result(&lab, 2),
        "ok",
        "the reloaded pass-flow did not apply:\n{}",
        fw.log()
    );
    inline::stop(&mut lab, &fw);
}
