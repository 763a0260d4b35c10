//! The web chat (`bubble-js/web/`, docs/web-chat.md) under `/chat/`: plain
//! HTML, CSS and ES modules, the SDK among them as one bundled module. They
//! are compiled into the binary, so a release build serves them with
//! nothing beside it; `http.web_chat` says whether they are served.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

use bubble_core::ErrorKind;

use super::{ApiError, HttpState, Path};

const HTML: &str = "text/html; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";

/// One file of the chat: its name under `/chat/`, its type, its bytes.
pub struct ChatFile {
    /// The name, e.g. `main.js`.
    pub name: &'static str,
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// Its contents.
    pub body: &'static [u8],
}

/// Embeds the files of `bubble-js/web/` by name.
macro_rules! chat_files {
    ($($name:literal => $content_type:expr),* $(,)?) => {
        &[$(ChatFile {
            name: $name,
            content_type: $content_type,
            body: include_bytes!(concat!("../../../bubble-js/web/", $name)),
        }),*]
    };
}

/// Every file the chat is made of (a test checks the list against the folder).
pub const FILES: &[ChatFile] = chat_files! {
    "index.html" => HTML,
    "chat.css" => CSS,
    "main.js" => JS,
    "session.js" => JS,
    "conversations.js" => JS,
    "thread.js" => JS,
    "list-view.js" => JS,
    "thread-view.js" => JS,
    "dom.js" => JS,
    "bubble.js" => JS,
};

/// What the page may load and talk to: its own files, and WebSockets to the
/// gate (on another port than this listener, so `'self'` does not cover it).
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; connect-src 'self' ws: wss:; \
     img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// `GET /chat`: the page lives at `/chat/`, so that its relative imports resolve.
pub async fn redirect() -> Redirect {
    Redirect::permanent("/chat/")
}

/// `GET /chat/`: the page.
pub async fn index(State(s): State<Arc<HttpState>>) -> Result<Response, ApiError> {
    serve(&s, "index.html")
}

/// `GET /chat/{file}`: one of its files.
pub async fn file(
    State(s): State<Arc<HttpState>>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    serve(&s, &name)
}

fn serve(state: &HttpState, name: &str) -> Result<Response, ApiError> {
    if !state.web.chat {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorKind::NotFound,
            "the web chat is off on this server: set http.web_chat = \"on\" (or run the \
             development app, dev_app) to serve it (docs/web-chat.md)",
        ));
    }
    let file = FILES.iter().find(|f| f.name == name).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorKind::NotFound,
            format!("the web chat has no file {name:?}; the page is /chat/"),
        )
    })?;
    let mut response = (
        [
            (header::CONTENT_TYPE, file.content_type),
            // Revalidated each time: a new binary's files are seen at once.
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        file.body,
    )
        .into_response();
    if file.content_type == HTML {
        response.headers_mut().insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        );
    }
    Ok(response)
}

/// What the HTTP listener offers browsers besides the API.
#[derive(Debug, Clone, Default)]
pub struct WebOptions {
    /// Whether `/chat/` serves the web chat.
    pub chat: bool,
    /// The app `/v1/demo/token` issues tokens for: the development app
    /// (`dev_app`); none when it is not set.
    pub demo_app: Option<bubble_core::AppId>,
}

impl WebOptions {
    /// The options `config` sets.
    pub fn from_config(config: &crate::config::Config) -> WebOptions {
        WebOptions {
            chat: config.serves_web_chat(),
            demo_app: (!config.dev_app.is_empty())
                .then(|| bubble_core::AppId::new(&config.dev_app)),
        }
    }
}
