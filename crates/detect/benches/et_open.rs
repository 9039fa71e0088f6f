//! Load benchmark: ET Open (2024-04) through the policy loader and the detection compiler,
//! then payload matching on a real capture with and without the prefilter.
//!
//! Run: `cargo bench -p sekisho-detect --bench et_open`. Prints one `name: value` line per
//! figure so two runs can be diffed. Needs `/work/shared/rulesets/et-open-2024-04/` (or
//! the directory in `SEKISHO_ET_OPEN`); skips with a message when it is missing.
//!
//! The matching figures cover payload groups only (no header, flow or flowbits checks:
//! those need an engine): "naive" runs every rule whose groups all inspect the packet
//! payload, "prefilter" only the candidates of `Prefilter::scan` plus the always-list.
//! Both must find the same matching rules; the bench fails loudly if the prefilter
//! loses one.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use etherparse::{SlicedPacket, TransportSlice};
use sekisho_detect::payload::MatchScratch;
use sekisho_detect::prefilter::{Prefilter, PrefilterScratch};
use sekisho_detect::sig::{BufKind, Sig};
use sekisho_detect::RuleSet;
use sekisho_policy::Policy;

const DEFAULT_DIR: &str = "/work/shared/rulesets/et-open-2024-04";

fn main() {
    let dir = std::env::var_os("SEKISHO_ET_OPEN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DIR));
    let mut paths: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "rules"))
            .collect(),
        Err(e) => {
            println!("skipped: ruleset {} not readable: {e}", dir.display());
            return;
        }
    };
    if paths.is_empty() {
        println!("skipped: no *.rules in {}", dir.display());
        return;
    }
    paths.sort();
    println!("ruleset: {}", dir.display());
    println!("rule files: {}", paths.len());

    let t = Instant::now();
    let checked = Policy::check_rules_files(&paths, &Default::default());
    let load = t.elapsed();
    let errors = checked.diagnostics.iter().filter(|d| d.is_error()).count();
    let policy = checked.policy;
    let parsed: usize = policy
        .rule_groups
        .iter()
        .map(|g| g.rules.len())
        .sum::<usize>()
        + policy.firewall_rules.as_ref().map_or(0, |f| f.rules.len());
    println!("policy load secs: {:.3}", load.as_secs_f64());
    println!("policy diagnostics: {}", checked.diagnostics.len());
    println!("policy errors: {errors}");
    println!("rules parsed: {parsed}");
    println!("vmhwm after load kib: {}", vm_hwm_kib().unwrap_or(0));

    let mut best = Duration::MAX;
    let mut rs = RuleSet::empty();
    for _ in 0..3 {
        let t = Instant::now();
        rs = RuleSet::from_policy(&policy, Default::default());
        best = best.min(t.elapsed());
    }
    let st = rs.load_stats();
    println!("compile secs best of 3: {:.3}", best.as_secs_f64());
    println!(
        "compile secs (load_stats, last run): {:.3}",
        st.compile_secs
    );
    println!("rules in policy: {}", st.rules);
    println!("rules loaded: {}", st.loaded);
    println!("rules not loaded: {}", rs.not_loaded().len());
    let mut by_kw: HashMap<&str, usize> = HashMap::new();
    for n in rs.not_loaded() {
        *by_kw.entry(n.keyword.as_str()).or_default() += 1;
    }
    let mut by_kw: Vec<(&str, usize)> = by_kw.into_iter().collect();
    by_kw.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    for (kw, n) in by_kw.iter().take(15) {
        println!("not loaded by {kw}: {n}");
    }
    println!("prefilter patterns: {}", st.prefilter.patterns);
    println!("prefilter always: {}", st.prefilter.always);
    let payload_sigs = rs.sigs().iter().filter(|s| payload_only(s)).count();
    println!("sigs with payload groups only: {payload_sigs}");
    println!("vmhwm after compile kib: {}", vm_hwm_kib().unwrap_or(0));

    let cap =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/captures/real-eth.pcap");
    match payloads(&cap) {
        Ok(p) if !p.is_empty() => measure(&rs, &p),
        Ok(_) => println!("skipped matching: no payloads in {}", cap.display()),
        Err(e) => println!("skipped matching: {}: {e}", cap.display()),
    }
    println!("vmhwm final kib: {}", vm_hwm_kib().unwrap_or(0));
}

/// Peak resident set size of this process (`VmHWM`), KiB.
fn vm_hwm_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Non-empty TCP and UDP payloads of a legacy pcap file, in capture order.
fn payloads(path: &Path) -> Result<Vec<Vec<u8>>, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let (_, cap) = pcap_parser::parse_pcap(&bytes).map_err(|e| format!("{e:?}"))?;
    let link = cap.header.network;
    let mut out = Vec::new();
    for block in &cap.blocks {
        let pkt = match link {
            pcap_parser::Linktype::ETHERNET => SlicedPacket::from_ethernet(block.data),
            pcap_parser::Linktype::RAW
            | pcap_parser::Linktype::IPV4
            | pcap_parser::Linktype::IPV6 => SlicedPacket::from_ip(block.data),
            other => return Err(format!("unsupported link type {other:?}")),
        };
        let Ok(pkt) = pkt else { continue };
        let payload = match &pkt.transport {
            Some(TransportSlice::Tcp(t)) => t.payload(),
            Some(TransportSlice::Udp(u)) => u.payload(),
            _ => continue,
        };
        if !payload.is_empty() {
            out.push(payload.to_vec());
        }
    }
    Ok(out)
}

/// A rule the payload-only comparison can evaluate completely: it has payload groups and
/// no group on another buffer.
fn payload_only(s: &Sig) -> bool {
    !s.groups.is_empty() && s.groups.iter().all(|g| g.kind == BufKind::Payload)
}

fn sig_matches(s: &Sig, buf: &[u8], scratch: &mut MatchScratch) -> bool {
    s.groups.iter().all(|g| g.matcher.matches(buf, scratch))
}

/// Result of one pass over all payloads.
struct Pass {
    time: Duration,
    evaluated: usize,
    candidates: usize,
    hits: Vec<(usize, u32)>,
}

fn naive(sigs: &[&Sig], payloads: &[Vec<u8>]) -> Pass {
    let mut scratch = MatchScratch::default();
    let mut hits = Vec::new();
    let t = Instant::now();
    for (i, p) in payloads.iter().enumerate() {
        for s in sigs {
            if sig_matches(s, p, &mut scratch) {
                hits.push((i, s.order));
            }
        }
    }
    Pass {
        time: t.elapsed(),
        evaluated: sigs.len() * payloads.len(),
        candidates: sigs.len() * payloads.len(),
        hits,
    }
}

fn prefiltered(rs: &RuleSet, pf: &Prefilter, payloads: &[Vec<u8>]) -> Pass {
    let mut scratch = MatchScratch::default();
    let mut pfs = PrefilterScratch::default();
    let mut out = Vec::new();
    let mut hits = Vec::new();
    let (mut evaluated, mut candidates) = (0, 0);
    let t = Instant::now();
    for (i, p) in payloads.iter().enumerate() {
        out.clear();
        out.extend_from_slice(pf.always(BufKind::Payload));
        pf.scan(
            &mut pfs,
            BufKind::Payload,
            std::iter::once(p.as_slice()),
            &mut out,
        );
        candidates += out.len();
        for &o in &out {
            let Some(s) = rs.sig(o) else { continue };
            if !payload_only(s) {
                continue;
            }
            evaluated += 1;
            if sig_matches(s, p, &mut scratch) {
                hits.push((i, o));
            }
        }
    }
    hits.sort_unstable();
    Pass {
        time: t.elapsed(),
        evaluated,
        candidates,
        hits,
    }
}

fn measure(rs: &RuleSet, payloads: &[Vec<u8>]) {
    let n = payloads.len();
    let bytes: usize = payloads.iter().map(Vec::len).sum();
    println!("capture payloads: {n}");
    println!("capture payload bytes: {bytes}");
    let sigs: Vec<&Sig> = rs.sigs().iter().filter(|s| payload_only(s)).collect();

    let t = Instant::now();
    let pf = Prefilter::build(rs.sigs());
    println!("prefilter build secs: {:.3}", t.elapsed().as_secs_f64());

    let per = |d: Duration| d.as_nanos() as f64 / n as f64;
    let nv = naive(&sigs, payloads);
    println!(
        "naive candidates/packet: {:.1}",
        nv.candidates as f64 / n as f64
    );
    println!("naive ns/packet: {:.0}", per(nv.time));
    println!("naive matching (packet, rule) pairs: {}", nv.hits.len());

    let mut best: Option<Pass> = None;
    for _ in 0..5 {
        let p = prefiltered(rs, &pf, payloads);
        if best.as_ref().is_none_or(|b| p.time < b.time) {
            best = Some(p);
        }
    }
    let Some(pp) = best else { return };
    println!(
        "prefilter candidates/packet: {:.1}",
        pp.candidates as f64 / n as f64
    );
    println!(
        "prefilter evaluated/packet: {:.1}",
        pp.evaluated as f64 / n as f64
    );
    println!("prefilter ns/packet best of 5: {:.0}", per(pp.time));
    println!("prefilter matching (packet, rule) pairs: {}", pp.hits.len());
    println!(
        "prefilter speedup: {:.1}x",
        nv.time.as_secs_f64() / pp.time.as_secs_f64().max(1e-9)
    );
    let missed: Vec<&(usize, u32)> = nv
        .hits
        .iter()
        .filter(|h| pp.hits.binary_search(h).is_err())
        .collect();
    println!("prefilter missed matches: {}", missed.len());
    for (i, o) in missed.iter().take(10) {
        if let Some(s) = rs.sig(*o) {
            println!("  missed: packet {i} sid {} ({})", s.sid, s.msg);
        }
    }
    assert!(missed.is_empty(), "the prefilter lost matches");
}
