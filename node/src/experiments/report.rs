//! `report.html`: one self-contained page per `deltanode sim` run — the summary tables it printed
//! and every chart in the output directory, embedded (no files beside it needed: it can be
//! mailed or attached as it is).

use base64::Engine;
use std::fmt::Write as _;
use std::path::Path;

/// Writes `dir/report.html` from the run's `tables` (as printed) and the PNGs in `dir`.
pub fn write(dir: &Path, command: &str, tables: &[String]) -> anyhow::Result<()> {
    let mut charts: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .collect();
    charts.sort();
    let mut html = String::from(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>deltanode sim report</title><style>\
         body{font-family:system-ui,sans-serif;margin:2rem;max-width:1100px}\
         pre{background:#f6f6f6;padding:1rem;overflow-x:auto}\
         figure{margin:1.5rem 0}img{max-width:100%;border:1px solid #ddd}\
         </style></head><body>\n<h1>deltanode sim</h1>\n",
    );
    let _ = writeln!(html, "<p><code>{}</code></p>", escape(command));
    html.push_str("<h2>Summary</h2>\n");
    for t in tables {
        let _ = writeln!(html, "<pre>{}</pre>", escape(t.trim()));
    }
    html.push_str("<h2>Charts</h2>\n");
    for path in &charts {
        let bytes = std::fs::read(path)?;
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let _ = writeln!(
            html,
            "<figure><img alt=\"{name}\" src=\"data:image/png;base64,{}\"><figcaption>{name}</figcaption></figure>",
            base64::engine::general_purpose::STANDARD.encode(&bytes)
        );
    }
    html.push_str("</body></html>\n");
    std::fs::write(dir.join("report.html"), html)?;
    Ok(())
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
