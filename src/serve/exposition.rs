//! The `/metrics` response body: the text exposition format, gzipped when the client says it
//! accepts gzip (`Accept-Encoding`, RFC 9110 §12.5.3) — Prometheus does, and at 1,000 seeds
//! the text is ~10 times larger than its gzip. Rendering and compressing run off the async
//! runtime: they take milliseconds at that scale, and the probes' I/O shares the runtime.

use std::io::Write;
use std::sync::Arc;

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::metrics::Metrics;

const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Whether an `Accept-Encoding` header accepts gzip: a `gzip` (or `x-gzip`) coding whose
/// weight is not 0 (`gzip;q=0` refuses it). `*` is not taken as gzip: a client that names
/// no coding gets the plain text.
pub fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            let name = parts.next().unwrap_or("");
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            (name.eq_ignore_ascii_case("gzip") || name.eq_ignore_ascii_case("x-gzip")) && !refused
        })
}

/// `text` gzipped (fast level: a scrape is compressed every 15 s or so, where CPU matters more
/// than the last few percent of size).
pub fn gzip(text: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(text.len() / 8),
        flate2::Compression::fast(),
    );
    encoder.write_all(text)?;
    encoder.finish()
}

/// The response to a scrape: the rendered registry, gzipped when `gzip` (plain if compressing
/// failed, which only an out-of-memory could cause).
pub async fn respond(metrics: Arc<Metrics>, gzip_ok: bool) -> Response {
    let body = tokio::task::spawn_blocking(move || {
        let text = metrics.render().into_bytes();
        if !gzip_ok {
            return (text, false);
        }
        match gzip(&text) {
            Ok(compressed) => (compressed, true),
            Err(e) => {
                tracing::warn!(error = %e, "cannot gzip the metrics; sending them plain");
                (text, false)
            }
        }
    })
    .await;
    let (body, gzipped) = match body {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(error = %e, "rendering the metrics failed");
            return axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    let mut response = ([(header::CONTENT_TYPE, CONTENT_TYPE)], body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if gzipped {
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    response
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn accept(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(
                header::ACCEPT_ENCODING,
                HeaderValue::from_str(v).unwrap_or_else(|e| panic!("{e}")),
            );
        }
        h
    }

    #[test]
    fn gzip_is_used_only_when_accepted() {
        // What Prometheus sends.
        assert!(accepts_gzip(&accept(&["gzip"])));
        assert!(accepts_gzip(&accept(&["identity;q=0.5, GZIP;q=1.0"])));
        assert!(accepts_gzip(&accept(&["br", "x-gzip"])));
        assert!(!accepts_gzip(&accept(&[])));
        assert!(!accepts_gzip(&accept(&["gzip;q=0"])));
        assert!(!accepts_gzip(&accept(&["gzip; q=0.0, identity"])));
        assert!(!accepts_gzip(&accept(&["*", "deflate", "gzipped"])));
    }

    #[tokio::test]
    async fn a_gzipped_scrape_reads_back_as_the_text() {
        let m = Arc::new(Metrics::new());
        let plain = respond(m.clone(), false).await;
        assert!(plain.headers().get(header::CONTENT_ENCODING).is_none());
        let zipped = respond(m.clone(), true).await;
        assert_eq!(zipped.headers()[header::CONTENT_ENCODING], "gzip");
        assert_eq!(zipped.headers()[header::VARY], "accept-encoding");
        let body = axum::body::to_bytes(zipped.into_body(), usize::MAX)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let mut text = String::new();
        flate2::read::GzDecoder::new(&body[..])
            .read_to_string(&mut text)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            text.contains("# TYPE mailcanary_build_info gauge"),
            "{text}"
        );
        // Every line but the process' own figures (memory, fds), which change between renders.
        let ours = |t: &str| -> Vec<String> {
            t.lines()
                .filter(|l| !l.contains("process_"))
                .map(String::from)
                .collect()
        };
        assert_eq!(ours(&text), ours(&m.render()));
    }
}
