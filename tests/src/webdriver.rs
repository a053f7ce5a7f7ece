//! A small WebDriver client for the browser tests: starts Debian's `chromedriver`, drives headless Chromium over
//! the W3C WebDriver protocol (plain HTTP/1.1 to 127.0.0.1), reads and clicks elements, takes screenshots.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A browser session; quits the browser and stops the driver when dropped.
#[derive(Debug)]
pub struct Browser {
    driver: Child,
    port: u16,
    session: String,
}

/// A found element.
#[derive(Clone, Debug)]
pub struct Element(String);

impl Browser {
    /// Starts `chromedriver` and a headless Chromium session. Panics, saying how to install them, when they are
    /// missing (`scripts/test` installs the packages `chromium` and `chromium-driver`).
    pub fn start() -> Self {
        for binary in ["/usr/bin/chromium", "/usr/bin/chromedriver"] {
            assert!(
                std::path::Path::new(binary).exists(),
                "{binary} is missing: run scripts/test, or apt-get install chromium chromium-driver"
            );
        }
        let port = crate::free_port();
        let driver = Command::new("/usr/bin/chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let mut browser = Self {
            driver,
            port,
            session: String::new(),
        };
        let started = Instant::now();
        while request(port, "GET", "/status", None).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "chromedriver did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let capabilities = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1400,1100"]
            }
        }}});
        let created = browser.call("POST", "/session", Some(capabilities));
        browser.session = created["sessionId"]
            .as_str()
            .expect("a session id")
            .to_owned();
        browser
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        match request(self.port, method, path, body.as_ref()) {
            Ok((200, value)) => value["value"].clone(),
            Ok((status, value)) => panic!("webdriver {method} {path}: {status} {value}"),
            Err(error) => panic!("webdriver {method} {path}: {error}"),
        }
    }

    fn session(&self, path: &str) -> String {
        format!("/session/{}{path}", self.session)
    }

    /// Opens `url`.
    pub fn open(&self, url: &str) {
        self.call("POST", &self.session("/url"), Some(json!({ "url": url })));
    }

    /// The first element matching the CSS `selector`, if any.
    pub fn find(&self, selector: &str) -> Option<Element> {
        let body = json!({ "using": "css selector", "value": selector });
        match request(self.port, "POST", &self.session("/element"), Some(&body)) {
            Ok((200, value)) => value["value"][ELEMENT]
                .as_str()
                .map(|id| Element(id.to_owned())),
            Ok((404, _)) => None,
            Ok((status, value)) => panic!("find {selector}: {status} {value}"),
            Err(error) => panic!("find {selector}: {error}"),
        }
    }

    /// Waits up to `within` for an element matching `selector` whose text satisfies `check`; returns the text.
    pub fn wait_for_text(
        &self,
        selector: &str,
        within: Duration,
        check: impl Fn(&str) -> bool,
    ) -> String {
        let started = Instant::now();
        let mut last = None;
        while started.elapsed() < within {
            if let Some(element) = self.find(selector)
                && let Some(text) = self.text(&element)
            {
                if check(&text) {
                    return text;
                }
                last = Some(text);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "{selector} never showed the expected text within {within:?}; last: {last:?}; the page says:\n{}",
            self.page_text()
        );
    }

    /// Waits up to `within` for an element matching `selector` whose `attribute` satisfies `check`.
    pub fn wait_for_attribute(
        &self,
        selector: &str,
        attribute: &str,
        within: Duration,
        check: impl Fn(&str) -> bool,
    ) -> String {
        let started = Instant::now();
        while started.elapsed() < within {
            if let Some(element) = self.find(selector) {
                let path = self.session(&format!("/element/{}/attribute/{attribute}", element.0));
                if let Ok((200, value)) = request(self.port, "GET", &path, None)
                    && let Some(text) = value["value"].as_str().filter(|t| check(t))
                {
                    return text.to_owned();
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "{selector}'s {attribute} never matched within {within:?}; the page says:\n{}",
            self.page_text()
        );
    }

    /// The page's visible text (for failure messages).
    pub fn page_text(&self) -> String {
        self.find("body")
            .and_then(|body| self.text(&body))
            .unwrap_or_default()
    }

    /// Waits up to `within` until nothing matches `selector`.
    pub fn wait_gone(&self, selector: &str, within: Duration) {
        let started = Instant::now();
        while self.find(selector).is_some() {
            assert!(
                started.elapsed() < within,
                "{selector} is still there after {within:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The element's visible text; `None` when it went stale (the page re-rendered it).
    pub fn text(&self, element: &Element) -> Option<String> {
        match request(
            self.port,
            "GET",
            &self.session(&format!("/element/{}/text", element.0)),
            None,
        ) {
            Ok((200, value)) => value["value"].as_str().map(str::to_owned),
            _ => None,
        }
    }

    /// Clicks the element; false when it went stale first.
    pub fn click(&self, element: &Element) -> bool {
        let path = self.session(&format!("/element/{}/click", element.0));
        matches!(
            request(self.port, "POST", &path, Some(&json!({}))),
            Ok((200, _))
        )
    }

    /// Types `text` into the element.
    pub fn type_into(&self, element: &Element, text: &str) {
        let path = self.session(&format!("/element/{}/value", element.0));
        self.call("POST", &path, Some(json!({ "text": text })));
    }

    /// A PNG of the window.
    pub fn screenshot(&self) -> Vec<u8> {
        let encoded = self.call("GET", &self.session("/screenshot"), None);
        decode_base64(encoded.as_str().expect("base64 text"))
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = request(self.port, "DELETE", &self.session(""), None);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// One HTTP/1.1 request to 127.0.0.1:`port`; the status and the JSON body.
fn request(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<(u16, Value), String> {
    let body = body.map(Value::to_string).unwrap_or_default();
    let host = format!("127.0.0.1:{port}");
    let (status, content) = http(port, method, path, &[("Host", &host)], &body)?;
    Ok((
        status,
        serde_json::from_str(&content).unwrap_or(Value::Null),
    ))
}

/// One HTTP/1.1 request to 127.0.0.1:`port` with `headers` (give `Host`) and a JSON `body`; the status and the
/// body's text.
///
/// # Errors
/// The connection's error, or a response that is not HTTP.
pub fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Result<(u16, String), String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .map_err(|e| e.to_string())?;
    let mut head = format!("{method} {path} HTTP/1.1\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!(
        "Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.write_all(body.as_bytes()))
        .map_err(|e| e.to_string())?;
    // Read by Content-Length (or chunks): chromedriver may keep the connection open despite `Connection: close`.
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        if let Some(end) = find(&raw, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
            let body = &raw[end + 4..];
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|n| n.trim().parse::<usize>().ok());
            let complete = match length {
                Some(length) => body.len() >= length,
                None if head.contains("transfer-encoding: chunked") => {
                    find(body, b"0\r\n\r\n").is_some()
                }
                None => false,
            };
            if complete {
                break;
            }
        }
        let n = stream.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&raw);
    let (head, content) = text.split_once("\r\n\r\n").ok_or("no HTTP response")?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or("no status")?;
    let content = match head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        true => dechunk(content),
        false => content.to_owned(),
    };
    Ok((status, content))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn dechunk(mut content: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = content.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        content = rest[size..].trim_start_matches("\r\n");
    }
    out
}

fn decode_base64(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let sextets: Vec<u8> = text.bytes().filter_map(value).collect();
    let mut out = Vec::with_capacity(sextets.len() * 3 / 4);
    for chunk in sextets.chunks(4) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, s)| acc | (u32::from(*s) << (18 - 6 * i)));
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..chunk.len().saturating_sub(1)]);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn decodes_base64() {
        assert_eq!(super::decode_base64("aGVsbG8="), b"hello");
        assert_eq!(super::decode_base64("aGk="), b"hi");
        assert_eq!(super::decode_base64("YWJj"), b"abc");
    }
}
