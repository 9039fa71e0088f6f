//! Fuzz target: parse arbitrary bytes as a rule file; every rule that parses must print to
//! text that parses back to an equal rule (canonical printer round trip). The same bytes as a
//! threshold.config file must parse or give located diagnostics, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sekisho_diag::SourceFile;
use sekisho_rules::{parse_file, parse_rule, parse_threshold_config};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let src = SourceFile::new("fuzz.rules", text.into_owned());
    let (_, tdiags) = parse_threshold_config(&SourceFile::new("threshold.config", src.text()));
    for d in &tdiags {
        let _ = d.render();
    }
    let file = parse_file(&src);
    for d in &file.diagnostics {
        // Rendering must not panic either (spans must be in range).
        let _ = d.render();
    }
    for rule in &file.rules {
        let printed = rule.to_string();
        let again = match parse_rule(&printed) {
            Ok(r) => r,
            Err(d) => panic!("printed rule does not parse:\n{printed}\n{}", d.render()),
        };
        assert_eq!(&again, rule, "round trip changed the rule:\n{printed}");
        assert_eq!(again.to_string(), printed, "printing is not canonical");
    }
});
