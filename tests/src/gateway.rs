//! API Gateway's HTTP API in front of a function, on a loopback port: each real HTTP request
//! becomes a payload 2.0 event for the function (a `lambda_http` binary under the emulated
//! runtime), and its result the HTTP response, so tests use an ordinary HTTP client. Function
//! failures are answered as API Gateway answers them (500 `Internal Server Error`, 503 on a
//! timeout).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::events::{HttpApi, HttpRequest};
use crate::runtime::{Function, FunctionError};

/// The HTTP API's payload limit.
const MAX_BODY: usize = 10 * 1024 * 1024;

struct Shared {
    api: HttpApi,
    function: Arc<Function>,
}

/// The HTTP API, serving until dropped.
#[derive(Debug)]
pub struct Gateway {
    addr: SocketAddr,
    function: Arc<Function>,
    server: tokio::task::JoinHandle<()>,
}

fn message(status: StatusCode, text: &str) -> Response {
    (status, axum::Json(serde_json::json!({ "message": text }))).into_response()
}

async fn forward(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    let (parts, body) = req.into_parts();
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY).await else {
        return message(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large");
    };
    let request = HttpRequest {
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().unwrap_or("").to_string(),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: body.to_vec(),
        source_ip: peer.ip().to_string(),
    };
    let event = shared.api.event(&request);
    let result = match shared.function.invoke(&event).await {
        Ok(v) => v,
        Err(FunctionError::Timeout(_)) => {
            return message(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable");
        }
        Err(_) => return message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error"),
    };
    let Ok(out) = HttpApi::response(&result) else {
        return message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
    };
    let mut resp = Response::new(Body::from(out.body));
    *resp.status_mut() = StatusCode::from_u16(out.status).unwrap_or(StatusCode::BAD_GATEWAY);
    for (k, v) in out.headers {
        if let (Ok(k), Ok(v)) = (
            HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(&v),
        ) {
            resp.headers_mut().append(k, v);
        }
    }
    resp
}

impl Gateway {
    /// Serves `function` (whose template event is an `HttpApi` one with payload format
    /// `payload_format_version`) on `127.0.0.1:0`.
    ///
    /// # Panics
    /// On a payload format other than 2.0 (not emulated), or when no port can be bound.
    pub async fn start(function: Arc<Function>, payload_format_version: &str) -> Gateway {
        assert_eq!(
            payload_format_version, "2.0",
            "only the HTTP API's payload format 2.0 is emulated"
        );
        let shared = Arc::new(Shared {
            api: HttpApi {
                api_id: uuid::Uuid::new_v4().simple().to_string()[..10].to_string(),
            },
            function: function.clone(),
        });
        let listener = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
            Ok(l) => l,
            Err(e) => panic!("cannot bind the gateway: {e}"),
        };
        let addr = match listener.local_addr() {
            Ok(a) => a,
            Err(e) => panic!("gateway address: {e}"),
        };
        let app = Router::new().fallback(forward).with_state(shared);
        let server = tokio::spawn(async move {
            let _ = axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await;
        });
        Gateway {
            addr,
            function,
            server,
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The function behind it.
    pub fn function(&self) -> &Arc<Function> {
        &self.function
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.server.abort();
    }
}
