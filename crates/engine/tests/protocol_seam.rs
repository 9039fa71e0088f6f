//! The protocol registry is the only seam (issue 9): outside its own module a protocol is not
//! named in the engine's or detection's sources. This is `grep -ril smtp crates/engine/src
//! crates/detect/src` as a test: it lists only the SMTP module and the registry's list.
//! A new protocol wired in by hand across the tree shows up here the same way.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("source dir") {
        let p = e.expect("dir entry").path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn smtp_is_named_only_in_its_module_and_the_registry() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut files = Vec::new();
    for d in ["crates/engine/src", "crates/detect/src"] {
        rust_files(&root.join(d), &mut files);
    }
    assert!(files.len() > 20, "found the sources ({})", files.len());
    let mut naming: Vec<String> = files
        .iter()
        .filter(|p| {
            std::fs::read_to_string(p)
                .expect("source file")
                .to_ascii_lowercase()
                .contains("smtp")
        })
        .map(|p| {
            p.strip_prefix(&root)
                .unwrap_or(p)
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    naming.sort();
    assert_eq!(
        naming,
        [
            "crates/engine/src/app/registry.rs",
            "crates/engine/src/app/smtp.rs"
        ]
    );
}
