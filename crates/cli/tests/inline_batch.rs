//! Batched verdicts (`--verdict-batch`, docs/inline.md): in the lab, a 4 MiB download through
//! `sekisho run` (empty policy) arrives whole while consecutive accepted packets were answered
//! by batch verdicts (`sekisho_verdict_batches_total`), and with `--verdict-batch 1` every
//! packet is answered on its own (no batch).

#[path = "support/inline.rs"]
mod inline;

use sekisho_testutil::lab::{self, Lab, SERVER_IP};

const METRICS_PORT: u16 = 19313;

/// Downloads 4 MiB through sekisho started with `extra`; returns (batches, packets).
fn download(extra: &[&str]) -> Option<(u64, u64)> {
    let mut lab = Lab::new()?;
    std::fs::write(lab.dir.join("big.bin"), vec![3u8; 4 << 20]).expect("big file");
    inline::http_server(&mut lab, 9000);
    lab.queue_iptables("0", false);
    let policy = inline::policy(
        &lab,
        "empty.yaml",
        "engine_profile: suricata-8\nrule_groups: []\n",
    );
    let mut args = vec![
        "--policy".to_string(),
        policy.display().to_string(),
        "--metrics".to_string(),
        format!("127.0.0.1:{METRICS_PORT}"),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let fw = inline::start(&mut lab, "batch", &args);
    let o = lab.run(
        &lab.client,
        &[
            "curl",
            "-sS",
            "--max-time",
            "30",
            "-o",
            "/dev/null",
            "-w",
            "%{size_download}",
            &format!("http://{SERVER_IP}:9000/big.bin"),
        ],
    );
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        (4u64 << 20).to_string(),
        "download incomplete: {}\n{}",
        String::from_utf8_lossy(&o.stderr),
        fw.log()
    );
    let m = inline::metrics(&lab, METRICS_PORT);
    inline::stop(&mut lab, &fw);
    let get = |k: &str| inline::metric(&m, k).unwrap_or_else(|| panic!("no {k}:\n{m}"));
    assert_eq!(
        get("sekisho_verdicts_total{verdict=\"accept\"}"),
        get("sekisho_packets_total")
    );
    Some((
        get("sekisho_verdict_batches_total"),
        get("sekisho_packets_total"),
    ))
}

#[test]
fn accepted_packets_share_batch_verdicts() {
    if !lab::require_tools(&["python3", "curl"]) {
        return;
    }
    let Some((batches, packets)) = download(&[]) else {
        return;
    };
    eprintln!("default: {batches} batch verdicts for {packets} packets");
    assert!(batches > 0, "no batch verdict for {packets} packets");
    let Some((batches, packets)) = download(&["--verdict-batch", "1"]) else {
        return;
    };
    eprintln!("--verdict-batch 1: {batches} batch verdicts for {packets} packets");
    assert_eq!(batches, 0);
}
