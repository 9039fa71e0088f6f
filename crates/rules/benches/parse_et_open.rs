//! Parse-speed benchmark over the whole ET Open 2024-04 set (plain `main`, no harness):
//! prints rules parsed, wall time, rules/s and peak RSS.
//!
//! `cargo bench -p sekisho-rules --bench parse_et_open`

use std::path::PathBuf;
use std::time::Instant;

use sekisho_diag::SourceFile;
use sekisho_rules::parse_file;

fn shared_dir() -> PathBuf {
    match std::env::var_os("SEKISHO_SHARED") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
    }
}

/// Peak resident set size in KiB (`VmHWM` from /proc/self/status), if available.
fn peak_rss_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// User+system CPU time of this process in seconds (from /proc/self/stat, 100 Hz ticks).
fn cpu_secs() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ut: f64 = f.get(11)?.parse().ok()?;
    let st: f64 = f.get(12)?.parse().ok()?;
    Some((ut + st) / 100.0)
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing special. Either way
    // we run once quickly when invoked by the test harness.
    let dir = shared_dir().join("rulesets/et-open-2024-04");
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(rd) => rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "rules"))
            .collect(),
        Err(e) => {
            eprintln!("skipping: cannot read {}: {e}", dir.display());
            return;
        }
    };
    files.sort();
    let sources: Vec<SourceFile> = files
        .iter()
        .map(|f| {
            SourceFile::new(
                f.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                std::fs::read_to_string(f).unwrap_or_default(),
            )
        })
        .collect();
    let bytes: usize = sources.iter().map(|s| s.text().len()).sum();
    let rss_before = peak_rss_kib();
    let cpu0 = cpu_secs();
    let mut best = f64::MAX;
    let mut rules = 0;
    for _ in 0..5 {
        let t = Instant::now();
        let mut n = 0;
        let mut kept = Vec::with_capacity(sources.len());
        for s in &sources {
            let f = parse_file(s);
            n += f.rules.len();
            kept.push(f);
        }
        let el = t.elapsed().as_secs_f64();
        best = best.min(el);
        rules = n;
        drop(kept);
    }
    let cpu = cpu0.zip(cpu_secs()).map(|(a, b)| (b - a) / 5.0);
    println!("files            {}", sources.len());
    println!(
        "input            {:.1} MiB",
        bytes as f64 / (1024.0 * 1024.0)
    );
    println!("rules parsed     {rules}");
    println!("wall time (best of 5)  {:.1} ms", best * 1000.0);
    println!("rules/s          {:.0}", rules as f64 / best);
    if let Some(c) = cpu {
        println!(
            "cpu time (avg of 5)    {:.1} ms (wall time suffers on a loaded machine)",
            c * 1000.0
        );
    }
    if let (Some(b), Some(a)) = (rss_before, peak_rss_kib()) {
        println!(
            "peak RSS         {:.1} MiB (before parsing {:.1} MiB)",
            a as f64 / 1024.0,
            b as f64 / 1024.0
        );
    }
}
