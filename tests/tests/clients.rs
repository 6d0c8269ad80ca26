//! The Python and TypeScript clients (`clients/`), each run against real nodes by its own tests,
//! and their types equal to what `clients/generate.py` makes of a live node's OpenAPI document.
//! Needs python3 and Node.js 20+ with npm (`scripts/setup.sh --tests` installs the TypeScript
//! compiler with `npm ci` in `clients/ts`; this test does too when it is missing).

use deltanode_e2e::{binary, NodeProc, TempDir};
use std::path::{Path, PathBuf};
use std::process::Command;

fn clients() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../clients")
}

fn run(cmd: &mut Command, what: &str) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: {e} (scripts/setup.sh --tests installs it)"));
    assert!(
        out.status.success(),
        "{what} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_generated_types_are_those_of_the_live_document() {
    let dir = TempDir::new("clients-types");
    let n = NodeProc::start(&dir.join("n"), &[]);
    let (status, doc) = n.get("/v1/openapi.json");
    assert_eq!(status, 200);
    let file = dir.join("openapi.json");
    std::fs::write(&file, doc.to_string()).unwrap();
    run(
        Command::new("python3")
            .arg(clients().join("generate.py"))
            .arg(&file)
            .arg("--check"),
        "clients/generate.py --check (regenerate the clients' types)",
    );
}

#[test]
fn the_python_client_passes_its_tests_against_a_node() {
    run(
        Command::new("python3")
            .args(["-m", "unittest", "discover", "-s"])
            .arg(clients().join("python/tests"))
            .env("DELTANODE_BIN", binary()),
        "the Python client's tests",
    );
}

#[test]
fn the_typescript_client_passes_its_tests_against_a_node() {
    let ts = clients().join("ts");
    if !ts.join("node_modules/typescript").exists() {
        run(
            Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(&ts),
            "npm ci in clients/ts",
        );
    }
    run(
        Command::new("npm")
            .arg("test")
            .current_dir(&ts)
            .env("DELTANODE_BIN", binary()),
        "the TypeScript client's tests",
    );
}
