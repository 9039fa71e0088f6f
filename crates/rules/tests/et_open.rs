//! Parses every ET Open 2024-04 rule file: all 24,827 active rules must parse without errors,
//! and every rule must survive print -> parse unchanged. Prints the coverage table.

use std::path::PathBuf;

use sekisho_diag::SourceFile;
use sekisho_rules::{parse_file, parse_rule, Coverage};

fn shared_dir() -> PathBuf {
    match std::env::var_os("SEKISHO_SHARED") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
    }
}

#[test]
fn et_open_parses_completely() {
    let dir = shared_dir().join("rulesets/et-open-2024-04");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e} (set SEKISHO_SHARED)", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "rules"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .rules files in {}", dir.display());
    let mut rules = Vec::new();
    let mut errors = Vec::new();
    let mut active_lines = 0;
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        active_lines += text
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with(char::is_whitespace))
            .count();
        let src = SourceFile::new(f.file_name().unwrap().to_string_lossy(), text);
        let parsed = parse_file(&src);
        errors.extend(parsed.diagnostics.iter().filter(|d| d.is_error()).cloned());
        rules.extend(parsed.rules);
    }
    for e in errors.iter().take(30) {
        eprintln!("{}", e.render());
    }
    assert!(errors.is_empty(), "{} errors", errors.len());
    assert_eq!(active_lines, 24_827);
    assert_eq!(rules.len(), 24_827);
    let mut mismatches = 0;
    for r in &rules {
        let printed = r.to_string();
        match parse_rule(&printed) {
            Ok(again) if again == *r && again.to_string() == printed => {}
            Ok(_) => {
                mismatches += 1;
                if mismatches < 5 {
                    eprintln!("round-trip mismatch for sid {}:\n  {printed}", r.sid());
                }
            }
            Err(d) => {
                mismatches += 1;
                if mismatches < 5 {
                    eprintln!("printed rule does not parse:\n{}", d.render());
                }
            }
        }
    }
    assert_eq!(mismatches, 0);
    let cov = Coverage::of(&rules);
    println!("ET Open 2024-04 ({} files)\n{cov}", files.len());
    assert_eq!(cov.total, 24_827);
}
