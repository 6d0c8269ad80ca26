//! The API over TLS (rustls): `--api-tls-cert` and `--api-tls-key` serve HTTPS, change feed
//! included, and plain HTTP on that port gets no answer; a non-loopback `--api` is refused
//! without TLS unless `--insecure-http` says so; unreadable certificate files stop the node with
//! an error naming them; `deltanode ctl --cacert` talks to such a node. Certificates come from the
//! `openssl` command.

use deltanode_e2e::{binary, local_args, NodeProc, TempDir};
use std::path::Path;
use std::process::Command;

/// A self-signed certificate for 127.0.0.1 and its key, in `dir`.
fn certificate(dir: &Path) -> (String, String) {
    let (cert, key) = (dir.join("api.crt"), dir.join("api.key"));
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "1", "-subj", "/CN=deltanode-test"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1"])
        // Not a CA: a certificate trusted as itself (ctl's TLS refuses a CA used as a server's).
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl (scripts/setup.sh --tests installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (cert.display().to_string(), key.display().to_string())
}

fn curl(args: &[&str]) -> (bool, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10"])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn the_api_serves_https_with_the_certificate_it_is_given() {
    let dir = TempDir::new("tls");
    let (cert, key) = certificate(&dir.0);
    let n = NodeProc::start_local(
        &dir.join("n"),
        &[
            "--api-tls-cert".into(),
            cert.clone(),
            "--api-tls-key".into(),
            key,
        ],
        Some("tok"),
    );
    let https = n.api.replace("http://", "https://");
    let (ok, body) = curl(&[
        "--cacert",
        &cert,
        "-H",
        "Authorization: Bearer tok",
        &format!("{https}/health"),
    ]);
    assert!(ok && body.contains("\"status\":\"ok\""), "{body}");
    // The token is still required, and the feed streams over TLS.
    let (_, body) = curl(&["--cacert", &cert, &format!("{https}/v1/state")]);
    assert!(body.contains("bearer token"), "{body}");
    let (_, body) = curl(&[
        "--cacert",
        &cert,
        "-N",
        "--max-time",
        "2",
        "-H",
        "Authorization: Bearer tok",
        &format!("{https}/v1/events"),
    ]);
    assert!(body.contains("retry: 1000"), "{body}");
    // A client that does not trust the certificate is refused by its own TLS check; plain HTTP
    // on the TLS port gets no HTTP answer.
    let (ok, _) = curl(&[&format!("{https}/health")]);
    assert!(!ok, "an untrusted certificate is refused");
    let (ok, body) = curl(&[
        "-H",
        "Authorization: Bearer tok",
        &format!("{}/health", n.api),
    ]);
    assert!(
        !ok && !body.contains("\"status\""),
        "plain HTTP answered: {body}"
    );
    // deltanode ctl speaks TLS too, trusting the certificate it is given, and only that.
    let ctl = |extra: &[&str]| {
        Command::new(binary())
            .args(["ctl", "--api", &https, "--token", "tok"])
            .args(extra)
            .arg("health")
            .output()
            .unwrap()
    };
    let out = ctl(&["--cacert", &cert]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && said.starts_with("ok peer "),
        "{said}"
    );
    let out = ctl(&[]);
    assert!(
        !out.status.success(),
        "a certificate nobody vouched for was trusted"
    );
}

fn run_fails(args: &[String]) -> String {
    let out = Command::new(binary())
        .arg("run")
        .args(args)
        .env("DELTANODE_API_TOKEN", "tok")
        .output()
        .unwrap();
    assert!(!out.status.success(), "the node started");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn plain_http_off_loopback_and_unreadable_certificates_are_refused() {
    let dir = TempDir::new("tls-refused");
    // A non-loopback API without TLS (the check comes before anything is bound).
    let mut args = local_args(&dir.join("a"), &[]);
    let api = args.iter().position(|a| a == "--api").unwrap();
    args[api + 1] = "0.0.0.0:0".into();
    let err = run_fails(&args);
    assert!(
        err.contains("--api-tls-cert") && err.contains("--insecure-http"),
        "{err}"
    );
    // A certificate file that is missing, or holds no certificate.
    let missing = dir.join("missing.crt").display().to_string();
    let err = run_fails(&local_args(
        &dir.join("b"),
        &[
            "--api-tls-cert".into(),
            missing.clone(),
            "--api-tls-key".into(),
            missing.clone(),
        ],
    ));
    assert!(err.contains(&missing), "{err}");
    let empty = dir.join("empty.crt");
    std::fs::write(&empty, "not a certificate\n").unwrap();
    let (_, key) = certificate(&dir.0);
    let err = run_fails(&local_args(
        &dir.join("c"),
        &[
            "--api-tls-cert".into(),
            empty.display().to_string(),
            "--api-tls-key".into(),
            key,
        ],
    ));
    assert!(err.contains("no certificate"), "{err}");
    // The key alone is not enough.
    let err = run_fails(&local_args(
        &dir.join("d"),
        &["--api-tls-key".into(), missing],
    ));
    assert!(err.contains("--api-tls-cert"), "{err}");
}
