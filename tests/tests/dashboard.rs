//! The dashboard in a real browser: two nodes, each page open in headless Chromium (driven over
//! WebDriver by chromedriver), a note added in one tab appears in the other; the page asks for the
//! token of a node that has one; it stays usable with a thousand objects and a 200,000-element set
//! (shown a page at a time); its notes demo keeps to its own key; its sync chart draws the history
//! the node kept since it started; the neighbours card reads at 15 neighbours; and at 1280×800
//! and at 390×844 (a phone) nothing overflows the page sideways. Screenshots are taken
//! (`DELTANODE_SCREENSHOT=path` copies the main one there: that is how docs/dashboard.png is
//! made; `DELTANODE_SCREENSHOT_DIR=dir` keeps every one, named after its size).
//! Needs Debian's `chromium` and `chromium-driver` (`scripts/setup.sh --tests` installs them).

use deltanode_e2e::{NodeProc, TempDir};
use serde_json::{json, Value};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const TOKEN: &str = "dashboard-token";
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A chromedriver process and one browser session; both end on drop.
struct Browser {
    driver: Child,
    base: String,
    session: String,
}

impl Browser {
    fn start(profile: &std::path::Path) -> Browser {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (Debian package chromium-driver; scripts/setup.sh --tests installs it)");
        let base = format!("http://127.0.0.1:{port}");
        // Generous: a loaded 2-core CI machine runs this debug build beside others.
        let deadline = Instant::now() + Duration::from_secs(60);
        while ureq::get(format!("{base}/status")).call().is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1400,1100",
            &format!("--user-data-dir={}", profile.display()),
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": args},
        }}});
        let mut b = Browser {
            driver,
            base,
            session: String::new(),
        };
        let created = b.call("POST", "/session", caps);
        b.session = created["sessionId"]
            .as_str()
            .expect("a session")
            .to_string();
        b
    }

    fn call(&self, method: &str, path: &str, body: Value) -> Value {
        let url = format!("{}{path}", self.base);
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let mut resp = match method {
            "GET" => agent.get(&url).call(),
            "DELETE" => agent.delete(&url).call(),
            _ => agent.post(&url).send_json(&body),
        }
        .expect("webdriver request");
        let status = resp.status().as_u16();
        let v: Value = resp.body_mut().read_json().unwrap_or(Value::Null);
        assert!(status < 300, "{method} {path}: {status} {v}");
        v["value"].clone()
    }

    fn s(&self, path: &str) -> String {
        format!("/session/{}{path}", self.session)
    }

    fn open(&self, url: &str) {
        self.call("POST", &self.s("/url"), json!({"url": url}));
    }

    fn new_tab(&self) -> String {
        let tab = self.call("POST", &self.s("/window/new"), json!({"type": "tab"}));
        tab["handle"].as_str().unwrap().to_string()
    }

    fn tab(&self) -> String {
        self.call("GET", &self.s("/window"), Value::Null)
            .as_str()
            .unwrap()
            .to_string()
    }

    fn switch(&self, handle: &str) {
        self.call("POST", &self.s("/window"), json!({"handle": handle}));
    }

    fn find(&self, css: &str) -> String {
        let e = self.call(
            "POST",
            &self.s("/element"),
            json!({"using": "css selector", "value": css}),
        );
        e[ELEMENT].as_str().unwrap().to_string()
    }

    fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css);
        self.call(
            "POST",
            &self.s(&format!("/element/{e}/value")),
            json!({ "text": text }),
        );
    }

    fn click(&self, css: &str) {
        let e = self.find(css);
        self.call("POST", &self.s(&format!("/element/{e}/click")), json!({}));
    }

    fn script(&self, js: &str) -> Value {
        self.call(
            "POST",
            &self.s("/execute/sync"),
            json!({"script": js, "args": []}),
        )
    }

    /// Waits until the page's `js` expression is true.
    fn wait_for(&self, what: &str, js: &str) {
        // Generous: a loaded 2-core CI machine runs this debug build beside others.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if self.script(&format!("return !!({js});")) == json!(true) {
                return;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn screenshot(&self) -> Vec<u8> {
        let b64 = self.call("GET", &self.s("/screenshot"), Value::Null);
        decode_base64(b64.as_str().unwrap())
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = ureq::delete(format!("{}/session/{}", self.base, self.session)).call();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn decode_base64(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        _ => 63,
    };
    let bytes: Vec<u8> = s
        .bytes()
        .filter(|c| *c != b'=' && !c.is_ascii_whitespace())
        .collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, c)| {
            acc | (u32::from(val(*c)) << (18 - 6 * i))
        });
        out.extend_from_slice(&n.to_be_bytes()[1..chunk.len()]);
    }
    out
}

#[test]
fn notes_added_in_one_tab_appear_in_the_other_nodes_tab() {
    let dir = TempDir::new("dashboard");
    // a has a token (the page must ask for it); b has none.
    let a = NodeProc::start_local(&dir.join("a"), &[], Some(TOKEN));
    // An app's own object named `notes`: the notes demo must leave it alone.
    a.op(
        "notes",
        json!({"type": "gset", "op": "add", "value": "app data"}),
    );
    // b starts alone: a thousand objects (the page must stay usable with them) and a register
    // written on both nodes before they ever met, so the two values are concurrent.
    let alone = NodeProc::start(&dir.join("b"), &[]);
    let ops: Vec<Value> = (0..1000)
        .map(|i| json!({"key": format!("item-{i:04}"), "type": "lww", "op": "set", "value": i}))
        .collect();
    assert_eq!(
        alone
            .post_raw("/v1/batch", &json!({ "ops": ops }).to_string())
            .0,
        200
    );
    // And a 200,000-element set: the page shows its first elements and reads more on demand.
    for chunk in 0..40 {
        let ops: Vec<Value> = (chunk * 5_000..(chunk + 1) * 5_000)
            .map(
                |i| json!({"key": "big", "type": "set", "op": "add", "value": format!("e-{i:06}")}),
            )
            .collect();
        let body = json!({ "ops": ops }).to_string();
        assert_eq!(alone.post_raw("/v1/batch", &body).0, 200);
    }
    alone.op(
        "colour",
        json!({"type":"register","op":"set","value":"blue"}),
    );
    a.op(
        "colour",
        json!({"type":"register","op":"set","value":"red"}),
    );
    assert!(alone.terminate());
    let b = NodeProc::start(&dir.join("b"), &["--peer".to_string(), a.addr()]);

    let browser = Browser::start(&dir.join("chromium-profile"));
    browser.open(&a.api);
    browser.wait_for(
        "the token prompt",
        "document.getElementById('token-dialog').style.display === 'flex'",
    );
    browser.type_into("#token-input", TOKEN);
    browser.click("#token-submit");
    browser.wait_for(
        "a's dashboard",
        "document.getElementById('node-algorithm').textContent === 'bp-rr'",
    );
    assert_eq!(
        browser.script("return sessionStorage.getItem('deltanode-token')"),
        json!(TOKEN),
        "the token is kept for the tab"
    );
    let tab_a = browser.tab();
    let tab_b = browser.new_tab();
    browser.switch(&tab_b);
    browser.open(&b.api);
    browser.wait_for(
        "b's thousand objects (and a's register) on b's page",
        "document.querySelectorAll('#objects tbody tr').length >= 1001",
    );
    browser.wait_for(
        "the 200,000-element set's first page",
        "[...document.querySelectorAll('#objects tbody tr')].some(r => r.textContent.includes('e-000049') && r.textContent.includes('more of 200000'))",
    );
    browser.script("[...document.querySelectorAll('#objects button')].find(b => b.textContent.includes('more of 200000')).click()");
    browser.wait_for(
        "its next page, read on demand",
        "[...document.querySelectorAll('#objects tbody tr')].some(r => r.textContent.includes('e-000549') && r.textContent.includes('more of 200000'))",
    );
    browser.wait_for(
        "the conflicting register, highlighted with both values",
        "[...document.querySelectorAll('#objects tr.conflict')].some(r => r.textContent.includes('red') && r.textContent.includes('blue'))",
    );
    browser.wait_for(
        "b's neighbour",
        "[...document.querySelectorAll('#peers tbody td')].some(td => td.textContent === 'connected')",
    );

    // The shared note: typed on a's page, keystroke by keystroke, it appears on b's.
    browser.switch(&tab_a);
    browser.type_into("#note-body", "buy oat milk");
    browser.switch(&tab_b);
    browser.wait_for(
        "a's typing on b's page",
        "document.getElementById('note-body').value === 'buy oat milk'",
    );
    // b types at the start, then a at the end: both keep their keystrokes, on both pages.
    // (WebDriver types at the end of a field: the Home key, U+E011, moves the caret to the start.)
    browser.type_into("#note-body", "\u{E011}call Ana, ");
    browser.switch(&tab_a);
    browser.wait_for(
        "b's typing on a's page",
        "document.getElementById('note-body').value === 'call Ana, buy oat milk'",
    );
    browser.type_into("#note-body", " and eggs");
    let both = "call Ana, buy oat milk and eggs";
    browser.wait_for(
        "both edits on a's page",
        &format!("document.getElementById('note-body').value === '{both}'"),
    );
    browser.switch(&tab_b);
    browser.wait_for(
        "both edits on b's page",
        &format!("document.getElementById('note-body').value === '{both}'"),
    );
    assert_eq!(
        b.get("/v1/objects/dashboard.doc").1["value"],
        json!({ "body": both })
    );
    browser.switch(&tab_a);

    // An operation of another type through the form.
    browser.type_into("#op-key", "visits");
    browser.script("const t = document.getElementById('op-type'); t.value = 'counter'; t.dispatchEvent(new Event('change'));");
    browser.type_into("#op-value", "3");
    browser.click("#op-submit");
    browser.wait_for(
        "the counter",
        "document.getElementById('op-result').textContent.includes('visits = 3')",
    );

    // Checkpoints: create one and see it listed.
    browser.type_into("#cp-label", "before-demo");
    browser.click("#cp-create");
    browser.wait_for(
        "the checkpoint",
        "document.getElementById('checkpoints').textContent.includes('before-demo')",
    );
    // Typed after it, then a rollback from the page: the words go away.
    browser.type_into("#note-body", ", a regrettable line");
    browser.wait_for(
        "the regrettable line at the node",
        "noteSending === 0 && document.getElementById('note-body').value.includes('regrettable')",
    );
    browser.click("#checkpoints tbody button");
    browser.call("POST", &browser.s("/alert/accept"), json!({}));
    browser.wait_for(
        "the rollback",
        "document.getElementById('cp-result').textContent.includes('rolled back')",
    );
    browser.wait_for(
        "the line gone",
        &format!("document.getElementById('note-body').value === '{both}'"),
    );
    assert_eq!(
        a.get("/v1/objects/dashboard.doc").1["value"],
        json!({ "body": both })
    );
    assert_eq!(
        a.get("/v1/objects/notes").1["value"],
        json!(["app data"]),
        "the app's object is untouched"
    );
    // The sync chart draws what the node kept since it started.
    browser.wait_for(
        "the sync history, in order",
        "window.syncSamples >= 3 && window.syncInOrder",
    );

    browser.switch(&tab_b);
    browser.script("window.scrollTo(0, 0)");
    let png = browser.screenshot();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "a PNG screenshot");
    std::fs::write(dir.join("dashboard.png"), &png).unwrap();
    if let Some(path) = std::env::var_os("DELTANODE_SCREENSHOT") {
        std::fs::write(path, &png).unwrap();
    }
    at_both_sizes(&browser, &dir, "objects");
}

/// At 1280×800 and 390×844: nothing wider than the page (no sideways scrolling), the
/// neighbours table inside its card; a screenshot of each, kept in `dir` (and in
/// `DELTANODE_SCREENSHOT_DIR` when set) as `dashboard-NAME-WxH.png`.
fn at_both_sizes(browser: &Browser, dir: &TempDir, name: &str) {
    for (w, h) in [(1280, 800), (390, 844)] {
        browser.call(
            "POST",
            &browser.s("/window/rect"),
            json!({"width": w, "height": h}),
        );
        browser.wait_for(
            &format!("the page at {w}px"),
            &format!("window.innerWidth <= {w} && window.innerWidth > {w} - 40"),
        );
        browser.script("window.scrollTo(0, 0)");
        let overflow = browser.script(
            "return [document.documentElement.scrollWidth, window.innerWidth,              [...document.querySelectorAll('section')].filter(s => s.getBoundingClientRect().right > window.innerWidth + 1).length]",
        );
        let (scroll, inner, sticking_out) = (
            overflow[0].as_f64().unwrap(),
            overflow[1].as_f64().unwrap(),
            overflow[2].as_u64().unwrap(),
        );
        assert!(
            scroll <= inner + 1.0 && sticking_out == 0,
            "{w}×{h}: the page is {scroll}px wide in a {inner}px window, {sticking_out} cards stick out"
        );
        let png = browser.screenshot();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let file = format!("dashboard-{name}-{w}x{h}.png");
        std::fs::write(dir.join(&file), &png).unwrap();
        if let Some(out) = std::env::var_os("DELTANODE_SCREENSHOT_DIR") {
            std::fs::write(std::path::Path::new(&out).join(&file), &png).unwrap();
        }
    }
}

#[test]
fn the_neighbours_card_reads_at_fifteen_neighbours() {
    let dir = TempDir::new("dashboard-15");
    let hub = NodeProc::start(&dir.join("hub"), &["--max-neighbours".into(), "16".into()]);
    let spokes: Vec<NodeProc> = (0..15)
        .map(|i| NodeProc::start(&dir.join(&format!("s{i}")), &["--peer".into(), hub.addr()]))
        .collect();
    let browser = Browser::start(&dir.join("chromium-profile"));
    browser.open(&hub.api);
    browser.wait_for(
        "fifteen neighbours, each pinged",
        "[...document.querySelectorAll('#peers tbody tr')].filter(r => r.textContent.includes('connected') && r.textContent.includes(' ms')).length === 15",
    );
    // One line a neighbour, and the count in the heading.
    let rows = browser.script(
        "return [...document.querySelectorAll('#peers tbody tr')].map(r => r.getBoundingClientRect().height)",
    );
    let heights: Vec<f64> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h.as_f64().unwrap())
        .collect();
    assert!(
        heights.iter().all(|h| *h < 40.0),
        "a neighbour's row wraps: {heights:?}"
    );
    assert!(browser
        .script("return document.getElementById('peers-count').textContent")
        .as_str()
        .unwrap()
        .contains("15 connected"));
    at_both_sizes(&browser, &dir, "neighbours");
    drop(spokes);
}
