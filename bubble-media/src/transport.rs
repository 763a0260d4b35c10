//! OpenDAL's HTTP transport on the workspace's reqwest client, so the S3
//! store's requests (stat, reads) need no second HTTP stack.

use futures_util::TryStreamExt;
use http::{Request, Response};
use opendal::raw::{parse_content_encoding, parse_content_length};
use opendal::{Buffer, Error, ErrorKind, HttpBody, HttpTransport, Result};

/// Sends OpenDAL's requests with a [`reqwest::Client`].
#[derive(Clone, Debug, Default)]
pub(crate) struct ReqwestTransport {
    client: reqwest::Client,
}

impl HttpTransport for ReqwestTransport {
    async fn fetch(&self, req: Request<Buffer>) -> Result<Response<HttpBody>> {
        let uri = req.uri().clone();
        let is_head = req.method() == http::Method::HEAD;
        let (parts, body) = req.into_parts();
        let url = reqwest::Url::parse(&uri.to_string()).map_err(|e| {
            Error::new(ErrorKind::Unexpected, "request url is invalid")
                .with_context("url", uri.to_string())
                .set_source(e)
        })?;
        let mut request = self
            .client
            .request(parts.method, url)
            .headers(parts.headers)
            .version(parts.version);
        if !body.is_empty() {
            request = request.body(body.to_bytes());
        }
        let mut resp = request.send().await.map_err(|e| {
            Error::new(ErrorKind::Unexpected, "send http request")
                .with_context("url", uri.to_string())
                .with_temporary(true)
                .set_source(e.without_url())
        })?;
        // A HEAD answer's length, or an encoded body's, is not the body's.
        let length = if is_head || parse_content_encoding(resp.headers())?.is_some() {
            None
        } else {
            parse_content_length(resp.headers())?
        };
        let mut answer = Response::builder()
            .status(resp.status())
            .version(resp.version())
            .extension(uri.clone());
        std::mem::swap(
            answer.headers_mut().expect("a fresh builder has headers"),
            resp.headers_mut(),
        );
        let stream = resp.bytes_stream().map_ok(Buffer::from).map_err(move |e| {
            Error::new(ErrorKind::Unexpected, "read data from http response")
                .with_context("url", uri.to_string())
                .with_temporary(true)
                .set_source(e.without_url())
        });
        answer
            .body(HttpBody::new(stream, length))
            .map_err(|e| Error::new(ErrorKind::Unexpected, "build http response").set_source(e))
    }
}
