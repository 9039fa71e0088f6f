//! The rate-limit parsers on arbitrary text: iptables rates and byte amounts, `/proc` lines
//! and their explanation, the iptables-save import. None may panic; an accepted rate has a
//! cost, and a table built from an imported rule takes any packet.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sekisho_ratelimit::{explain, import, parse_bytes, ProcLine, Rate, Table};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(r) = Rate::parse(text) {
        assert!(r.cost() > 0);
        let _ = r.to_string();
    }
    let _ = parse_bytes(text);
    if let Ok(l) = ProcLine::parse(text) {
        let _ = (l.tokens(), l.burst());
    }
    let _ = explain(text);
    if let Ok(imp) = import(text, "limit0") {
        let mut t = Table::new(imp.config);
        let ip = "192.0.2.1".parse().unwrap();
        let k = t.key(ip, 1, ip, 2);
        let _ = t.check(u64::MAX / 2, k, u32::MAX);
        let _ = t.proc_text(u64::MAX);
    }
});
