//! `deltanode ctl`: the HTTP API from the command line, human-readable by default, `--json` for
//! scripts. A non-2xx answer prints the node's error on stderr and exits non-zero.

use crate::cli::{CtlArgs, CtlCommand};
use anyhow::{bail, Context};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::time::Duration;

/// Runs one command.
pub fn run(args: CtlArgs) -> anyhow::Result<()> {
    let base = if args.api.starts_with("http") {
        args.api.clone()
    } else {
        format!("http://{}", args.api)
    };
    let tls = match &args.cacert {
        None => None,
        Some(file) => {
            let pem =
                std::fs::read(file).with_context(|| format!("--cacert {}", file.display()))?;
            let cert = ureq::tls::Certificate::from_pem(&pem)
                .with_context(|| format!("--cacert {}: not a PEM certificate", file.display()))?;
            let roots = ureq::tls::RootCerts::Specific(std::sync::Arc::new(vec![cert]));
            Some(ureq::tls::TlsConfig::builder().root_certs(roots).build())
        }
    };
    let ctl = Ctl {
        base,
        token: args.token.clone(),
        json: args.json,
        tls,
    };
    match args.command {
        CtlCommand::Health => ctl.show(ctl.get("/health")?, health_line),
        CtlCommand::Wait { timeout } => {
            let deadline = std::time::Instant::now() + Duration::from_secs(timeout);
            let health = loop {
                match ctl.get("/health") {
                    Ok(h) => break h,
                    // Refused or reset: not listening yet. Any answer, even an error, is final.
                    Err(e) if format!("{e:#}").contains("cannot reach the node")
                        && std::time::Instant::now() < deadline =>
                    {
                        std::thread::sleep(Duration::from_millis(100));
                    }
                    Err(e) => return Err(e),
                }
            };
            ctl.show(health, health_line)
        }
        CtlCommand::State => ctl.show(ctl.get("/v1/state")?, |v| {
            let mut out = format!("digest {}", v["digest"].as_str().unwrap_or("?"));
            for (k, o) in v["objects"].as_object().into_iter().flatten() {
                out += &format!(
                    "\n{k} ({}): {}",
                    o["type"].as_str().unwrap_or("?"),
                    o["value"]
                );
            }
            out
        }),
        CtlCommand::Get { key } => ctl.show(ctl.get(&format!("/v1/objects/{key}"))?, object_line),
        CtlCommand::Op { key, operation } => {
            ctl.op(&key, serde_json::from_str(&operation).context("the operation is not JSON")?)
        }
        CtlCommand::Inc { key, by } => {
            ctl.op(&key, json!({"type": "counter", "op": if by < 0 { "dec" } else { "inc" }, "by": by.unsigned_abs()}))
        }
        CtlCommand::Add { key, value } => ctl.op(&key, json!({"type": "set", "op": "add", "value": loose(&value)})),
        CtlCommand::Remove { key, value } => ctl.op(&key, json!({"type": "set", "op": "remove", "value": loose(&value)})),
        CtlCommand::Put { key, field, value } => {
            ctl.op(&key, json!({"type": "map", "op": "put", "field": field, "value": loose(&value)}))
        }
        CtlCommand::Conflicts => ctl.show(ctl.get("/v1/conflicts")?, |v| {
            lines(v, "no conflicts", |c| {
                let field = c["field"].as_str().map(|f| format!(" field {f}")).unwrap_or_default();
                let values: Vec<String> = c["values"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|x| format!("{} {}", x["type"].as_str().unwrap_or("?"), x["value"]))
                    .collect();
                format!(
                    "{}{field}: {} — {}",
                    c["key"].as_str().unwrap_or("?"),
                    c["reason"].as_str().unwrap_or("?"),
                    values.join(" | ")
                )
            })
        }),
        CtlCommand::Resolve { key, keep } => ctl.op(&key, json!({"type": keep, "op": "resolve"})),
        CtlCommand::Peers => ctl.show(ctl.get("/v1/peers")?, |v| {
            lines(v, "no peers", |p| {
                format!(
                    "{} {} sent {} B received {} B pending {}",
                    p["peer_id"].as_str().unwrap_or("?"),
                    if p["connected"] == json!(true) {
                        "connected"
                    } else {
                        "down"
                    },
                    p["bytes_sent"],
                    p["bytes_received"],
                    p["pending_groups"]
                )
            })
        }),
        CtlCommand::Sync => ctl.show(ctl.post("/v1/sync", &json!({}))?, |_| "sync started".into()),
        CtlCommand::Backup { file } => ctl.backup(&file),
        CtlCommand::Checkpoint { label } => ctl.show(
            ctl.post("/v1/checkpoints", &json!({ "label": label }))?,
            |v| {
                format!(
                    "checkpoint {} digest {}",
                    v["label"].as_str().unwrap_or("?"),
                    v["digest"].as_str().unwrap_or("?")
                )
            },
        ),
        CtlCommand::Checkpoints => ctl.show(ctl.get("/v1/checkpoints")?, |v| {
            let lines: Vec<String> = v
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| {
                    format!(
                        "{} at {} digest {}",
                        c["label"].as_str().unwrap_or("?"),
                        c["created_unix_ms"],
                        c["digest"].as_str().unwrap_or("?")
                    )
                })
                .collect();
            if lines.is_empty() {
                "no checkpoints".into()
            } else {
                lines.join("\n")
            }
        }),
        CtlCommand::Rollback { label, partial } => ctl.show(
            ctl.post(
                "/v1/rollback",
                &json!({ "label": label, "partial": partial }),
            )?,
            |v| {
                format!(
                    "reverted {} irreversible {}",
                    v["reverted"], v["irreversible"]
                )
            },
        ),
        CtlCommand::Watch { since } => ctl.watch(since.as_deref()),
    }
}

/// A value given on the command line: JSON when it parses, else the string itself.
fn loose(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.to_string()))
}

fn object_line(v: &Value) -> String {
    format!(
        "{} ({}): {}",
        v["key"].as_str().unwrap_or("?"),
        v["type"].as_str().unwrap_or("?"),
        v["value"]
    )
}

struct Ctl {
    base: String,
    token: Option<String>,
    json: bool,
    /// What to trust for https:// (`None`: the public roots).
    tls: Option<ureq::tls::TlsConfig>,
}

impl Ctl {
    /// Saves the node's backup to `file` (written beside it, then renamed into place).
    fn backup(&self, file: &std::path::Path) -> anyhow::Result<()> {
        let mut req = self
            .agent(Some(Duration::from_secs(600)))
            .get(format!("{}/v1/backup", self.base));
        if let Some(t) = &self.token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        let mut resp = req
            .call()
            .with_context(|| format!("cannot reach the node at {}", self.base))?;
        if !resp.status().is_success() {
            let body: Value = resp.body_mut().read_json().unwrap_or(Value::Null);
            bail!(
                "{}: {}",
                resp.status(),
                body["error"].as_str().unwrap_or("(no message)")
            );
        }
        let bytes = resp
            .body_mut()
            .with_config()
            .limit(u64::MAX)
            .read_to_vec()?;
        let tmp = file.with_extension("partial");
        std::fs::write(&tmp, &bytes).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::File::open(&tmp)?.sync_all()?;
        std::fs::rename(&tmp, file)?;
        println!(
            "backup of {} bytes written to {}",
            bytes.len(),
            file.display()
        );
        Ok(())
    }

    fn agent(&self, timeout: Option<Duration>) -> ureq::Agent {
        let mut config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(timeout);
        if let Some(tls) = &self.tls {
            config = config.tls_config(tls.clone());
        }
        config.build().into()
    }

    fn finish(
        &self,
        resp: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> anyhow::Result<Value> {
        let mut resp = resp.with_context(|| format!("cannot reach the node at {}", self.base))?;
        let status = resp.status();
        let body: Value = resp.body_mut().read_json().unwrap_or(Value::Null);
        if !status.is_success() {
            bail!(
                "{status}: {}",
                body["error"].as_str().unwrap_or("(no message)")
            );
        }
        Ok(body)
    }

    fn get(&self, path: &str) -> anyhow::Result<Value> {
        let mut req = self
            .agent(Some(Duration::from_secs(30)))
            .get(format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        self.finish(req.call())
    }

    fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        let mut req = self
            .agent(Some(Duration::from_secs(30)))
            .post(format!("{}{path}", self.base))
            .header("Content-Type", "application/json");
        if let Some(t) = &self.token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        self.finish(req.send(body.to_string()))
    }

    /// Applies `op` to `key` and prints the object as it now is.
    fn op(&self, key: &str, op: Value) -> anyhow::Result<()> {
        self.show(self.post(&format!("/v1/objects/{key}"), &op)?, object_line)
    }

    fn show(&self, v: Value, human: impl Fn(&Value) -> String) -> anyhow::Result<()> {
        let text = if self.json { v.to_string() } else { human(&v) };
        println!("{text}");
        Ok(())
    }

    fn watch(&self, since: Option<&str>) -> anyhow::Result<()> {
        let mut req = self.agent(None).get(format!("{}/v1/events", self.base));
        if let Some(t) = &self.token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        if let Some(id) = since {
            req = req.header("Last-Event-ID", id);
        }
        let resp = req
            .call()
            .with_context(|| format!("cannot reach the node at {}", self.base))?;
        if !resp.status().is_success() {
            bail!("{}", resp.status());
        }
        let mut event = String::new();
        let mut out = std::io::stdout().lock();
        for line in BufReader::new(resp.into_body().into_reader()).lines() {
            let line = line?;
            if let Some(e) = line.strip_prefix("event:") {
                event = e.trim().to_string();
            } else if let Some(data) = line.strip_prefix("data:") {
                let v: Value = serde_json::from_str(data.trim()).unwrap_or(Value::Null);
                let text = match (self.json, event.as_str()) {
                    (true, "") => v.to_string(),
                    (true, e) => json!({"event": e, "data": v}).to_string(),
                    (false, "reset") => format!(
                        "reset: {} objects",
                        v["objects"].as_object().map_or(0, |o| o.len())
                    ),
                    (false, "lagged") => format!("cut off: {}", v["error"].as_str().unwrap_or("")),
                    (false, _) => format!(
                        "#{} {} {} ({}): {}",
                        v["id"],
                        v["origin"].as_str().unwrap_or("?"),
                        v["key"].as_str().unwrap_or("?"),
                        v["type"].as_str().unwrap_or("?"),
                        v["value"]
                    ),
                };
                writeln!(out, "{text}")?;
                out.flush()?;
            } else if line.is_empty() {
                event.clear();
            }
        }
        Ok(())
    }
}

/// One line per element of the JSON array `v`, or `empty` when there is none.
fn lines(
    v: &serde_json::Value,
    empty: &str,
    line: impl Fn(&serde_json::Value) -> String,
) -> String {
    let all: Vec<String> = v.as_array().into_iter().flatten().map(line).collect();
    if all.is_empty() {
        empty.into()
    } else {
        all.join("\n")
    }
}

/// `/health` in one line.
fn health_line(v: &Value) -> String {
    format!(
        "{} peer {} neighbours {} objects {}",
        v["status"].as_str().unwrap_or("?"),
        v["peer_id"].as_str().unwrap_or("?"),
        v["neighbours"],
        v["objects"]
    )
}
