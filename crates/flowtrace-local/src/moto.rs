//! A moto server (AWS service mocks) on `127.0.0.1` and a free port, and a minimal client for
//! its query-protocol APIs (SNS, SQS): enough for a test to create resources and read what
//! a function sent, without an AWS SDK in the harness.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::net::free_port;
use crate::process::ChildProcess;
use crate::{Error, Result};

/// How long moto gets to answer after it is started.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one request to moto may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// `python3 -m moto.server -H 127.0.0.1 -p PORT`, which also exits when its parent does: a
/// runner killed outright (SIGKILL, a crashed test) must not leave moto behind.
const MOTO_WITH_WATCHDOG: &str = "\
import os, sys, threading, time
parent = os.getppid()
def watch():
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)
threading.Thread(target=watch, daemon=True).start()
from moto.server import main
main(['-H', '127.0.0.1', '-p', sys.argv[1]])
";

/// The variables of this process a Python program (moto) needs to find its interpreter and
/// packages: `PATH`, `HOME`, `PYENV_ROOT`, `VIRTUAL_ENV`, `PYTHONPATH`, those that are set.
/// Children are otherwise started with a cleared environment.
pub fn python_env() -> Vec<(&'static str, String)> {
    ["PATH", "HOME", "PYENV_ROOT", "VIRTUAL_ENV", "PYTHONPATH"]
        .into_iter()
        .filter_map(|key| std::env::var(key).ok().map(|value| (key, value)))
        .collect()
}

/// The account id moto uses.
pub const MOTO_ACCOUNT: &str = "123456789012";
/// The region the harness uses with moto.
pub const MOTO_REGION: &str = "us-east-1";

/// A moto server, killed (with its process) on drop.
#[derive(Debug)]
pub struct Moto {
    process: ChildProcess,
    port: u16,
}

impl Moto {
    /// Starts `python3 -m moto.server` on a free loopback port and waits until it answers.
    /// When moto is not installed, it is installed first with `python3 -m pip install
    /// 'moto[server]'` (as the flowtrace-aws tests do); that failing is an error.
    pub async fn start() -> Result<Self> {
        tokio::task::spawn_blocking(ensure_moto)
            .await
            .map_err(|e| Error::Process(format!("installing moto: {e}")))??;
        let port = free_port()?;
        let port_arg = port.to_string();
        let env = python_env();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let python = which("python3").ok_or_else(|| Error::Process("python3 is not on PATH (moto needs it)".into()))?;
        let process = ChildProcess::spawn("moto", &python, &["-c", MOTO_WITH_WATCHDOG, &port_arg], &env)?;
        let moto = Self { process, port };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if moto.request("GET", "/moto-api/", None, "").await.is_ok() {
                return Ok(moto);
            }
            if let Some(status) = moto.process.try_exit() {
                return Err(Error::Process(format!(
                    "moto exited ({status}); is it installed? (python3 -m pip install 'moto[server]')\n{}",
                    moto.process.output()
                )));
            }
            if Instant::now() > deadline {
                return Err(Error::timeout("moto to answer", START_TIMEOUT, moto.process.output()));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The environment an AWS SDK client needs to talk to this moto: endpoint, region and
    /// dummy credentials.
    pub fn sdk_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_REGION", MOTO_REGION.to_owned()),
            ("AWS_DEFAULT_REGION", MOTO_REGION.to_owned()),
            ("AWS_ACCESS_KEY_ID", "test".to_owned()),
            ("AWS_SECRET_ACCESS_KEY", "test".to_owned()),
            ("AWS_SESSION_TOKEN", "test".to_owned()),
        ]
    }

    /// The moto process (its output, for diagnostics).
    pub fn process(&self) -> &ChildProcess {
        &self.process
    }

    /// A query-protocol call (`Action=...&...`, form-encoded) to `service` (`sns`, `sqs`),
    /// returning the XML answer. A non-2xx answer is an error carrying the body.
    pub async fn query(&self, service: &str, params: &[(&str, &str)]) -> Result<String> {
        let body =
            params.iter().map(|(k, v)| format!("{}={}", form_encode(k), form_encode(v))).collect::<Vec<_>>().join("&");
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential=test/20260101/{MOTO_REGION}/{service}/aws4_request, SignedHeaders=host, Signature=0"
        );
        let (status, answer) = self.request("POST", "/", Some(&auth), &body).await?;
        if (200..300).contains(&status) {
            Ok(answer)
        } else {
            Err(Error::Process(format!("moto {service} {params:?}: HTTP {status}: {answer}")))
        }
    }

    /// A JSON-protocol call (`X-Amz-Target: TARGET`) to `service` (`kinesis`, `dynamodb`;
    /// DynamoDB Streams is `dynamodb` with a `DynamoDBStreams_20120810.*` target), returning
    /// the JSON answer. A non-2xx answer is an error carrying the body.
    pub async fn json_call(&self, service: &str, target: &str, body: &serde_json::Value) -> Result<serde_json::Value> {
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential=test/20260101/{MOTO_REGION}/{service}/aws4_request, SignedHeaders=host, Signature=0"
        );
        let content_type =
            if service == "kinesis" { "application/x-amz-json-1.1" } else { "application/x-amz-json-1.0" };
        let headers = [("Authorization", auth.as_str()), ("X-Amz-Target", target), ("Content-Type", content_type)];
        let (status, answer) = self.request_with("POST", "/", &headers, &body.to_string()).await?;
        if !(200..300).contains(&status) {
            return Err(Error::Process(format!("moto {target}: HTTP {status}: {answer}")));
        }
        if answer.trim().is_empty() {
            return Ok(serde_json::Value::Null);
        }
        serde_json::from_str(&answer).map_err(|e| Error::Process(format!("moto {target}: not JSON ({e}): {answer}")))
    }

    /// Creates an SNS topic and returns its ARN.
    pub async fn create_topic(&self, name: &str) -> Result<String> {
        let xml = self.query("sns", &[("Action", "CreateTopic"), ("Name", name)]).await?;
        one_xml_value(&xml, "TopicArn")
    }

    /// Creates an SQS queue and returns its URL and ARN.
    pub async fn create_queue(&self, name: &str) -> Result<(String, String)> {
        let xml = self.query("sqs", &[("Action", "CreateQueue"), ("QueueName", name)]).await?;
        let url = one_xml_value(&xml, "QueueUrl")?;
        Ok((url, format!("arn:aws:sqs:{MOTO_REGION}:{MOTO_ACCOUNT}:{name}")))
    }

    /// Subscribes an SQS queue to an SNS topic (SNS envelope, not raw delivery).
    pub async fn subscribe_queue(&self, topic_arn: &str, queue_arn: &str) -> Result<String> {
        let xml = self
            .query(
                "sns",
                &[("Action", "Subscribe"), ("TopicArn", topic_arn), ("Protocol", "sqs"), ("Endpoint", queue_arn)],
            )
            .await?;
        one_xml_value(&xml, "SubscriptionArn")
    }

    /// Receives up to 10 messages from an SQS queue, waiting until one is there or `timeout`
    /// has passed, and returns their bodies.
    pub async fn receive_messages(&self, queue_url: &str, timeout: Duration) -> Result<Vec<String>> {
        let deadline = Instant::now() + timeout;
        loop {
            let xml = self
                .query("sqs", &[("Action", "ReceiveMessage"), ("QueueUrl", queue_url), ("MaxNumberOfMessages", "10")])
                .await?;
            let bodies = xml_values(&xml, "Body");
            if !bodies.is_empty() {
                return Ok(bodies);
            }
            if Instant::now() > deadline {
                return Err(Error::timeout(format!("a message on {queue_url}"), timeout, xml));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// One HTTP/1.0 request (so the answer is never chunked); returns status and body.
    async fn request(&self, method: &str, path: &str, auth: Option<&str>, body: &str) -> Result<(u16, String)> {
        let mut headers = Vec::new();
        if let Some(auth) = auth {
            headers.push(("Authorization", auth));
        }
        if !body.is_empty() {
            headers.push(("Content-Type", "application/x-www-form-urlencoded; charset=utf-8"));
        }
        self.request_with(method, path, &headers, body).await
    }

    /// One HTTP/1.0 request with `headers`; returns status and body.
    async fn request_with(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Result<(u16, String)> {
        let exchange = async {
            let mut stream = TcpStream::connect(("127.0.0.1", self.port)).await?;
            let mut head = format!("{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{}\r\n", self.port);
            for (name, value) in headers {
                head.push_str(&format!("{name}: {value}\r\n"));
            }
            head.push_str(&format!("Content-Length: {}\r\nConnection: close\r\n\r\n", body.len()));
            stream.write_all(head.as_bytes()).await?;
            stream.write_all(body.as_bytes()).await?;
            let mut answer = Vec::new();
            stream.read_to_end(&mut answer).await?;
            Ok::<_, std::io::Error>(answer)
        };
        let answer = tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .map_err(|_| Error::timeout(format!("moto to answer {method} {path}"), REQUEST_TIMEOUT, ""))?
            .map_err(|e| Error::io(format!("moto {method} {path}"), e))?;
        let text = String::from_utf8_lossy(&answer);
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| Error::Process(format!("moto answered no HTTP status: {head}")))?;
        Ok((status, body.to_owned()))
    }
}

/// The text of every `<tag>...</tag>` element in `xml`, with XML entities decoded.
pub fn xml_values(xml: &str, tag: &str) -> Vec<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let mut values = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find(&open) {
        let after = &rest[start + open.len()..];
        let Some(end) = after.find(&close) else { break };
        values.push(xml_unescape(&after[..end]));
        rest = &after[end + close.len()..];
    }
    values
}

fn one_xml_value(xml: &str, tag: &str) -> Result<String> {
    xml_values(xml, tag).into_iter().next().ok_or_else(|| Error::NotFound(format!("no <{tag}> in {xml}")))
}

fn xml_unescape(text: &str) -> String {
    text.replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&#39;", "'")
        .replace("&#34;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#xD;", "\r")
        .replace("&#13;", "\r")
        .replace("&amp;", "&")
}

fn form_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(char::from(byte)),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// Installs moto once per test process when `import moto.server, flask` fails.
fn ensure_moto() -> Result<()> {
    static CHECKED: std::sync::OnceLock<std::result::Result<(), String>> = std::sync::OnceLock::new();
    let has_moto = || {
        std::process::Command::new("python3")
            .args(["-c", "import moto.server, flask"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    CHECKED
        .get_or_init(|| {
            if has_moto() {
                return Ok(());
            }
            eprintln!("moto not found: installing it with `python3 -m pip install 'moto[server]'`");
            let installed = std::process::Command::new("python3")
                .args(["-m", "pip", "install", "--quiet", "moto[server]"])
                .status()
                .is_ok_and(|s| s.success());
            if installed && has_moto() {
                Ok(())
            } else {
                Err("moto is not installed and `python3 -m pip install 'moto[server]'` failed".to_owned())
            }
        })
        .clone()
        .map_err(Error::Process)
}

fn which(program: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(program)).find(|candidate| candidate.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_values_are_found_and_unescaped() {
        let xml = "<R><Body>{&quot;a&quot;:1}</Body><Body>x &amp;lt; y</Body></R>";
        assert_eq!(xml_values(xml, "Body"), ["{\"a\":1}", "x &lt; y"]);
        assert!(xml_values(xml, "Nope").is_empty());
    }

    #[test]
    fn form_encoding_escapes_reserved_characters() {
        assert_eq!(form_encode("arn:aws:sns/x y"), "arn%3Aaws%3Asns%2Fx%20y");
    }
}
