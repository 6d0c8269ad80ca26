//! BENCHMARKS.md's comparison tables are generated, never typed: each equals a regeneration by
//! `scripts/tables.py` from the committed results, and the committed simulator results are what
//! the simulator prints today.

use deltanode_e2e::{binary, TempDir};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn tables(args: &[&str]) -> Output {
    Command::new("python3")
        .arg(repo().join("scripts/tables.py"))
        .args(args)
        .output()
        .expect("running python3")
}

#[test]
fn every_generated_table_in_benchmarks_md_matches_a_regeneration() {
    let path = repo().join("BENCHMARKS.md");
    let out = tables(&["--check", path.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&path).unwrap();
    let blocks = text.matches("\n<!-- generated: scripts/tables.py").count();
    assert!(
        blocks >= 8,
        "the paper comparisons are generated blocks ({blocks} found)"
    );
}

#[test]
fn a_typed_over_cell_fails_the_check() {
    let text = std::fs::read_to_string(repo().join("BENCHMARKS.md")).unwrap();
    // Change one row inside the first generated block (a marker at the start of a line).
    let start = text.find("\n<!-- generated: scripts/tables.py").unwrap() + 1;
    let row = start + text[start..].find("\n|").unwrap() + 1;
    let row = row + text[row..].find('\n').unwrap() + 1; // past the header
    let row = row + text[row..].find('\n').unwrap() + 1; // past the rule
    let end = row + text[row..].find('\n').unwrap();
    let tampered = format!("{}| typed by hand |{}", &text[..row], &text[end..]);
    let dir = TempDir::new("benchmarks-md");
    let copy = dir.join("BENCHMARKS.md");
    std::fs::write(&copy, tampered).unwrap();
    let out = tables(&["--check", copy.to_str().unwrap()]);
    assert!(
        !out.status.success(),
        "a hand-typed row must fail the check"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("typed by hand"));
}

/// Units are deterministic: a rerun of one committed cell gives the committed figures exactly.
#[test]
fn the_committed_simulator_results_are_what_the_simulator_prints() {
    let out = TempDir::new("benchmarks-sim");
    let status = Command::new(binary())
        .args(["sim", "--topology", "tree", "--workload", "gset", "--out"])
        .arg(&out.0)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let key = |line: &str| {
        let c: Vec<&str> = line.split(',').collect();
        // algorithm, topology, workload, nodes, payload, metadata, bytes; then rounds and lower bound.
        (c[..7].join(","), c[9].to_string(), c[11].to_string())
    };
    let fresh: Vec<_> = std::fs::read_to_string(out.join("results.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(key)
        .collect();
    let committed: Vec<_> = std::fs::read_to_string(repo().join("docs/benchmarks/data/paper.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .filter(|l| l.contains(",tree,gset,15,"))
        .map(key)
        .collect();
    assert_eq!(fresh.len(), 8, "every algorithm ran");
    assert_eq!(
        fresh, committed,
        "docs/benchmarks/data/paper.csv is stale: rerun the command BENCHMARKS.md gives for it"
    );
}
