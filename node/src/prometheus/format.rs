//! The two exposition formats `/metrics` speaks, and which one a scraper asked for.
//!
//! The registry renders OpenMetrics 1.0. The Prometheus text format 0.0.4 — the default, and what
//! `promtool check metrics` reads — differs in what the families are called and how the body
//! ends: a counter family is named after its samples (`x_total`, where OpenMetrics says `x`),
//! an info family is a gauge named `x_info`, there are no `# UNIT` lines, and no `# EOF`.

/// An exposition format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text format 0.0.4.
    Text,
    /// OpenMetrics 1.0.
    OpenMetrics,
}

impl Format {
    /// What the body is, for `Content-Type`.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }

    /// The format an `Accept` header asks for: OpenMetrics when it accepts
    /// `application/openmetrics-text` at least as much as plain text (Prometheus itself sends
    /// `application/openmetrics-text;version=1.0.0,…,text/plain;version=0.0.4;q=0.5,…`);
    /// the text format otherwise, and when there is no header.
    pub fn negotiate(accept: Option<&str>) -> Format {
        let Some(accept) = accept else {
            return Format::Text;
        };
        let (mut open, mut text) = (0.0f32, 0.0f32);
        for range in accept.split(',') {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or("").to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.strip_prefix("q="))
                .find_map(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            match media.as_str() {
                "application/openmetrics-text" => open = open.max(q),
                "text/plain" | "text/*" | "*/*" => text = text.max(q),
                _ => {}
            }
        }
        if open > 0.0 && open >= text {
            Format::OpenMetrics
        } else {
            Format::Text
        }
    }
}

/// The Prometheus text format 0.0.4 of an OpenMetrics body.
pub fn openmetrics_to_text(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    // The families whose name changes, from `# TYPE` lines (which follow their `# HELP`).
    let renamed = |name: &str, kind: &str| match kind {
        "counter" => format!("{name}_total"),
        "info" => format!("{name}_info"),
        _ => name.to_string(),
    };
    let types: std::collections::HashMap<&str, &str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_once(' '))
        .collect();
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            let kind = types.get(name).copied().unwrap_or("untyped");
            out.push_str(&format!("# HELP {} {help}\n", renamed(name, kind)));
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "unknown"));
            let text_kind = match kind {
                "counter" | "gauge" | "histogram" | "summary" => kind,
                "info" => "gauge",
                _ => "untyped",
            };
            out.push_str(&format!("# TYPE {} {text_kind}\n", renamed(name, kind)));
        } else {
            // A sample; an exemplar (` # {…}`) has no place in the text format.
            let sample = line.split_once(" # ").map_or(line, |(s, _)| s);
            out.push_str(sample);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_headers_pick_the_format() {
        assert_eq!(Format::negotiate(None), Format::Text);
        assert_eq!(Format::negotiate(Some("*/*")), Format::Text);
        assert_eq!(Format::negotiate(Some("text/plain")), Format::Text);
        assert_eq!(
            Format::negotiate(Some("application/openmetrics-text")),
            Format::OpenMetrics
        );
        // What Prometheus 2.x sends.
        let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;\
                          version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(Format::negotiate(Some(prometheus)), Format::OpenMetrics);
        assert_eq!(
            Format::negotiate(Some("text/plain;q=1, application/openmetrics-text;q=0.5")),
            Format::Text
        );
        assert_eq!(
            Format::negotiate(Some("application/openmetrics-text;q=0")),
            Format::Text
        );
    }

    #[test]
    fn the_text_format_names_families_after_their_samples_and_has_no_eof() {
        let om = "# HELP a_sent Things sent.\n# TYPE a_sent counter\na_sent_total{k=\"x\"} 1\n\
                  # HELP b Now.\n# TYPE b gauge\n# UNIT b seconds\nb 2\n\
                  # HELP c Build.\n# TYPE c info\nc_info{v=\"1\"} 1\n\
                  # HELP h Lag.\n# TYPE h histogram\nh_bucket{le=\"+Inf\"} 0 # {id=\"1\"} 0.5\nh_sum 0\nh_count 0\n# EOF\n";
        let text = openmetrics_to_text(om);
        assert_eq!(
            text,
            "# HELP a_sent_total Things sent.\n# TYPE a_sent_total counter\na_sent_total{k=\"x\"} 1\n\
             # HELP b Now.\n# TYPE b gauge\nb 2\n\
             # HELP c_info Build.\n# TYPE c_info gauge\nc_info{v=\"1\"} 1\n\
             # HELP h Lag.\n# TYPE h histogram\nh_bucket{le=\"+Inf\"} 0\nh_sum 0\nh_count 0\n"
        );
    }
}
