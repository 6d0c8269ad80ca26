//! Every ```sh block of the README, run in order in one bash session (`set -euo pipefail`), in a
//! network namespace of its own on a private bridge (so its fixed ports and its mDNS stay there)
//! and a scratch directory holding links to the repository's `scripts/`, `clients/` and
//! `interop/`. A README command that fails fails this test, so none can rot.
//!
//! What cannot run inside a test is stood in for by one shell function, which says so in the
//! output: `cargo install --path node` links the binary under test onto PATH, and every other
//! `cargo` command (`cargo test`, which is running this; `fmt`, `clippy`) is skipped. The demo uses
//! the binary under test (`DELTANODE_BIN`) instead of building a release one. Needs root and the
//! test tools (`scripts/setup.sh --tests`); `DELTANODE_SKIP_NETNS=1` skips it.

use deltanode_e2e::netns::{self, Lan};
use deltanode_e2e::{binary, TempDir};
use std::path::Path;
use std::process::Command;

/// The ```sh blocks of `markdown`, with the line each starts on.
fn shell_blocks(markdown: &str) -> Vec<(usize, String)> {
    let mut blocks = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (i, line) in markdown.lines().enumerate() {
        match (&mut current, line.trim_end()) {
            (None, "```sh") => current = Some((i + 1, String::new())),
            (Some(_), "```") => blocks.push(current.take().unwrap()),
            (Some((_, text)), l) => {
                text.push_str(l);
                text.push('\n');
            }
            (None, _) => {}
        }
    }
    assert!(current.is_none(), "an unclosed ```sh block");
    blocks
}

const PRELUDE: &str = r#"set -euo pipefail
mkdir -p bin
export PATH="$PWD/bin:$PATH"
cargo() {
  if [ "$*" = "install --path node" ]; then
    ln -sf "$DELTANODE_BIN" bin/deltanode
    echo "(readme test: cargo install stood in for by the binary under test)"
  else
    echo "(readme test: cargo $* skipped)"
  fi
}
stop_nodes() { kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; }
trap stop_nodes EXIT
"#;

#[test]
fn every_shell_block_of_the_readme_runs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let blocks = shell_blocks(&readme);
    assert!(
        blocks.len() >= 8,
        "the README's shell blocks: {}",
        blocks.len()
    );
    if netns::skipped() {
        return;
    }
    let dir = TempDir::new("readme");
    for link in ["scripts", "clients", "interop"] {
        std::os::unix::fs::symlink(root.join(link).canonicalize().unwrap(), dir.join(link))
            .unwrap();
    }
    let mut script = PRELUDE.to_string();
    for (line, block) in &blocks {
        script.push_str(&format!("echo '=== README line {line}'\n{block}"));
    }
    std::fs::write(dir.join("readme.sh"), &script).unwrap();

    let lan = Lan::create("rm", 1);
    let out = Command::new("timeout")
        .args([
            "600",
            "ip",
            "netns",
            "exec",
            &lan.ns(0),
            "bash",
            "readme.sh",
        ])
        .current_dir(&dir.0)
        .env("DELTANODE_BIN", binary())
        .env_remove("DELTANODE_API")
        .env_remove("DELTANODE_API_TOKEN")
        .output()
        .unwrap();
    // Whatever the script left running in the namespace goes with it.
    if let Ok(pids) = Command::new("ip")
        .args(["netns", "pids", &lan.ns(0)])
        .output()
    {
        for pid in String::from_utf8_lossy(&pids.stdout).split_whitespace() {
            let _ = Command::new("kill").args(["-9", pid]).status();
        }
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "a README command failed ({}):\n--- stdout\n{stdout}\n--- stderr (last 4,000 bytes)\n{}",
        out.status,
        &stderr[stderr.len().saturating_sub(4000)..]
    );
    // Every block ran, and what the README shows came out.
    assert_eq!(stdout.matches("=== README line").count(), blocks.len());
    for shown in [
        "converged; the state on c",
        "deltanode 0.1.0",
        "\"status\":\"ok\"",
        "holds a counter, not a set",
        "\"path\":[\"note\",\"body\"],\"type\":\"doc\",\"value\":\"hello, world\"",
        "hits (counter): 5",
        "colours (set): [\"red\"]",
        "wrote results/tree-gset/results.csv",
    ] {
        assert!(stdout.contains(shown), "no {shown:?} in:\n{stdout}");
    }
}

/// The quick start's first line works for a user who is not root: with the build tools there,
/// `scripts/setup.sh` installs nothing and asks for no root, and the demo converges (run as
/// `nobody`, with the binary under test). Needs root to become `nobody`; skipped otherwise.
#[test]
fn the_setup_and_the_demo_work_for_a_normal_user() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let uid = Command::new("id").arg("-u").output().unwrap();
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" || netns::skipped() {
        eprintln!("skipped: needs root to run as nobody");
        return;
    }
    // nobody must be able to read the scripts and run the binary: a copy in a scratch directory.
    let dir = TempDir::new("nobody");
    std::fs::create_dir_all(dir.join("scripts")).unwrap();
    for script in ["setup.sh", "demo.sh"] {
        std::fs::copy(
            root.join("scripts").join(script),
            dir.join("scripts").join(script),
        )
        .unwrap();
    }
    std::fs::copy(binary(), dir.join("deltanode")).unwrap();
    // A user has a toolchain of their own; root's (under /root) is not theirs to run. setup.sh
    // only looks for one, and the demo runs the binary under test: a stand-in will do.
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    std::fs::write(
        dir.join("bin/cargo"),
        "#!/bin/sh\necho \"(a user's cargo)\"\n",
    )
    .unwrap();
    let chmod = Command::new("chmod")
        .args(["-R", "a+rwX"])
        .arg(&dir.0)
        .status()
        .unwrap();
    assert!(chmod.success());
    let as_nobody = |script: &str| {
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "bash"])
            .arg(dir.join("scripts").join(script))
            .env("DELTANODE_BIN", dir.join("deltanode"))
            .env("HOME", &dir.0)
            .env(
                "PATH",
                format!("{}:/usr/local/bin:/usr/bin:/bin", dir.join("bin").display()),
            )
            .output()
            .unwrap()
    };
    let setup = as_nobody("setup.sh");
    let said = String::from_utf8_lossy(&setup.stdout).into_owned()
        + &String::from_utf8_lossy(&setup.stderr);
    assert!(
        setup.status.success() && said.contains("setup: ok"),
        "{said}"
    );
    let demo = as_nobody("demo.sh");
    let said =
        String::from_utf8_lossy(&demo.stdout).into_owned() + &String::from_utf8_lossy(&demo.stderr);
    assert!(
        demo.status.success() && said.contains("converged; the state on c"),
        "{said}"
    );
}
