//! `hyper_http`: the fake database over HTTP/1.1 with hyper 1.x on tokio, to
//! measure our event loop's HTTP dialect against.
//!
//! Routes (GET only, keep-alive, `Content-Type: text/plain; charset=utf-8`):
//! - `/ping`: `PONG\n`
//! - `/db/{id}?delay_ms=N`: `OK DB {id} value=<16 hex>\n` after sleeping
//!   N ms (`--db-delay-ms` when absent)
//! - `/stats`: `OK STATS requests=N` (responses sent before this one)

use std::convert::Infallible;
use std::time::Duration;

use baselines::{answered, count_answer, db_answer, Flavor, MAX_DB_DELAY_MS};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};

fn main() {
    let args = baselines::parse_args("hyper_http", Flavor::Current);
    let default_delay = args.db_delay;
    baselines::runtime(&args).block_on(async move {
        let listener = baselines::bind(args.addr).await;
        let mut http = http1::Builder::new();
        http.keep_alive(true)
            .timer(TokioTimer::new())
            // Answers to pipelined requests leave together.
            .pipeline_flush(true);
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                }
            };
            let conn = http.serve_connection(
                TokioIo::new(stream),
                service_fn(move |req| handle(req, default_delay)),
            );
            tokio::spawn(async move {
                let _ = conn.await;
            });
        }
    });
}

async fn handle(
    req: Request<Incoming>,
    default_delay: Duration,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let response = if req.method() != Method::GET {
        text(StatusCode::METHOD_NOT_ALLOWED, "ERR method not allowed\n".into())
    } else {
        match route(req.uri().path(), req.uri().query(), default_delay) {
            Route::Ping => text(StatusCode::OK, "PONG\n".into()),
            Route::Stats => text(
                StatusCode::OK,
                format!("OK STATS requests={}\n", answered()).into(),
            ),
            Route::Db { id, delay } => {
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                text(StatusCode::OK, db_answer(id).into())
            }
            Route::BadRequest(why) => text(StatusCode::BAD_REQUEST, why.into()),
            Route::NotFound => text(StatusCode::NOT_FOUND, "ERR not found\n".into()),
        }
    };
    count_answer();
    Ok(response)
}

enum Route {
    Ping,
    Stats,
    Db { id: u64, delay: Duration },
    BadRequest(&'static str),
    NotFound,
}

fn route(path: &str, query: Option<&str>, default_delay: Duration) -> Route {
    match path {
        "/ping" => return Route::Ping,
        "/stats" => return Route::Stats,
        _ => {}
    }
    let Some(id) = path.strip_prefix("/db/") else {
        return Route::NotFound;
    };
    let Some(id) = number(id) else {
        return Route::BadRequest("ERR usage: /db/{id}?delay_ms=N\n");
    };
    let mut delay = default_delay;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        if let Some(ms) = pair.strip_prefix("delay_ms=") {
            match number(ms) {
                Some(ms) if ms <= MAX_DB_DELAY_MS => delay = Duration::from_millis(ms),
                _ => return Route::BadRequest("ERR delay_ms must be a number from 0 to 10000\n"),
            }
        }
    }
    Route::Db { id, delay }
}

fn text(status: StatusCode, body: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// ASCII digits only, like the workspace's parser.
fn number(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}
