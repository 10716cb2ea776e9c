//! Raw HTTP/1.1 over TCP, for attacks an HTTP client library would normalise away
//! (header-name case and underscores, duplicate headers, unnormalised paths).

use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// A parsed raw answer.
#[derive(Debug, Clone)]
pub struct RawAnswer {
    pub status: u16,
    /// Header names as received (lowercased), values as text.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl RawAnswer {
    /// First value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Sends `request_head` (request line and headers, CRLF-separated, without the final blank
/// line; `Host` and `Connection: close` are added) to `addr` and reads the whole answer.
pub async fn send(addr: &str, request_head: &str) -> Result<RawAnswer> {
    let mut stream = tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(addr))
        .await
        .context("connect timeout")??;
    let head = format!(
        "{}\r\nHost: {addr}\r\nConnection: close\r\n\r\n",
        request_head.trim_end()
    );
    stream.write_all(head.as_bytes()).await?;
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut buf))
        .await
        .context("read timeout")??;
    parse(&buf)
}

fn parse(buf: &[u8]) -> Result<RawAnswer> {
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("answer without end of headers")?;
    let head = String::from_utf8_lossy(&buf[..split]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().context("empty answer")?;
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .context("status line without code")?
        .parse()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let raw_body = &buf[split + 4..];
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked"));
    let body = if chunked {
        dechunk(raw_body)?
    } else {
        raw_body.to_vec()
    };
    Ok(RawAnswer {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

fn dechunk(mut data: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .context("truncated chunk size")?;
        let size_text = String::from_utf8_lossy(&data[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if data.len() < size + 2 {
            bail!("truncated chunk");
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_chunked_answers() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: b\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        let a = parse(raw).expect("parse");
        assert_eq!(a.status, 200);
        assert_eq!(a.body, "abcde");
        assert_eq!(a.header("x-a"), Some("b"));
    }

    #[test]
    fn parses_plain_answers() {
        let raw = b"HTTP/1.1 302 Found\r\nLocation: /login\r\nContent-Length: 0\r\n\r\n";
        let a = parse(raw).expect("parse");
        assert_eq!(a.status, 302);
        assert_eq!(a.header("location"), Some("/login"));
        assert!(a.body.is_empty());
    }
}
