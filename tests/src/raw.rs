//! Raw HTTP/1.1 over TCP, for attacks an HTTP client library would normalise away
//! (header-name case and underscores, duplicate headers, unnormalised paths), and for bodies a
//! server may refuse before it has read them (an HTTP client library reports the broken pipe
//! and drops the answer).

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

/// What [`send_body`] got: the answer, and the error that ended the write when the server
/// closed the connection before the whole body was written (the answer stands either way).
#[derive(Debug)]
pub struct BodyExchange {
    pub answer: RawAnswer,
    /// The write's error (`None` when the whole body was written).
    pub write_error: Option<std::io::Error>,
}

/// Sends `request_head` (as [`send`] does, plus `Content-Length`) and `body` to `addr` while
/// reading the answer at the same time, so an answer the server gives before reading the whole
/// body (a 413) is read even though writing the rest fails with a broken pipe or a reset.
pub async fn send_body(addr: &str, request_head: &str, body: &[u8]) -> Result<BodyExchange> {
    let stream = tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(addr))
        .await
        .context("connect timeout")??;
    let head = format!(
        "{}\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        request_head.trim_end(),
        body.len()
    );
    let (mut reader, mut writer) = stream.into_split();
    let write = async move {
        writer.write_all(head.as_bytes()).await?;
        writer.write_all(body).await?;
        writer.flush().await
    };
    let read = async move {
        let mut buf = Vec::new();
        // A reset after the answer arrived ends the read; what was read is the answer.
        let result = reader.read_to_end(&mut buf).await;
        (buf, result)
    };
    let (write_result, (buf, read_result)) =
        tokio::time::timeout(Duration::from_secs(30), async { tokio::join!(write, read) })
            .await
            .context("exchange timeout")?;
    if buf.is_empty() {
        read_result.context("reading the answer")?;
        bail!("the server closed the connection without an answer");
    }
    Ok(BodyExchange {
        answer: parse(&buf)?,
        write_error: write_result.err(),
    })
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

    /// A server that answers 413 after the head and closes without reading the 32 MB body:
    /// the write fails, the answer is still read.
    #[tokio::test]
    async fn an_answer_given_before_the_body_is_read_survives_the_failed_write() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let server = tokio::spawn(async move {
            let (mut conn, _) = listener.accept().await.expect("accept");
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                conn.read_exact(&mut byte).await.expect("head");
                head.push(byte[0]);
            }
            conn.write_all(b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 8\r\n\r\ntoo big!")
                .await
                .expect("answer");
            // Closing with unread data in the receive buffer sends a reset.
            drop(conn);
        });
        let body = vec![b'a'; 32 << 20];
        let exchange = send_body(&addr, "POST /acs HTTP/1.1", &body)
            .await
            .expect("exchange");
        server.await.expect("server");
        assert_eq!(exchange.answer.status, 413);
        assert_eq!(exchange.answer.body, "too big!");
        assert!(
            exchange.write_error.is_some(),
            "the server read none of the body, yet all 32 MB were written"
        );
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
