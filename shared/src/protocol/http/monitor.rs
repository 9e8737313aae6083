//! The monitoring port's answers: `GET /live`, a page, as `text/html`, and
//! `GET /stats.json`, the server's figures, as `application/json`; and the
//! lessons the page links to, `GET /docs/LESSON.md` and
//! `GET /docs/uk/LESSON.md`, as plain text, so a link clicked on the page
//! opens the lesson (the heading it names is in the link's text) instead
//! of a 404.
//!
//! These two paths are not routes of the main port (route.rs): they are
//! answered by a thread of their own on `--stats-addr` (`shared::live`
//! says why). That thread reads one request head, gets one response from
//! here and closes, so this is a parser of one line: the request line.
//! Headers are read and ignored (nothing in them changes the answer), and
//! every response says `Connection: close`, so no browser can keep the
//! monitoring thread waiting on an idle keep-alive connection.

use super::response::{ContentType, HttpFraming, Persistence, Status};
use super::split_request_line;

/// The body of `GET /` on the monitoring port.
pub const MONITOR_INDEX: &str = "OK live view: /live, its figures: /stats.json\n";

/// The lessons the page links to, compiled in beside it.
const LESSON: &str = include_str!("../../../../docs/LESSON.md");
const LESSON_UK: &str = include_str!("../../../../docs/uk/LESSON.md");

/// The whole response to the request whose head is `head` (the bytes up to
/// the empty line, or as much as arrived). `page` is the `/live` page;
/// `stats_json` is called only when `/stats.json` is asked for.
pub fn monitor_answer(head: &[u8], page: &str, stats_json: impl FnOnce() -> String) -> Vec<u8> {
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut framing = HttpFraming {
        status: None,
        head_only: false,
        persistence: Persistence::Close,
    };
    let mut out = Vec::new();
    let Some((method, target, _version)) = split_request_line(line) else {
        let text = b"ERR malformed request line\n";
        framing.encode_body(Status::BadRequest, ContentType::Text, text, &mut out);
        return out;
    };
    framing.head_only = method == b"HEAD";
    if method != b"GET" && !framing.head_only {
        let text = b"ERR method not allowed\n";
        framing.encode_body(Status::MethodNotAllowed, ContentType::Text, text, &mut out);
        return out;
    }
    // A query is ignored: the page adds none, and a cache-busting one
    // from a browser or a script should not make a 404.
    let path = target.split(|&b| b == b'?').next().unwrap_or_default();
    match path {
        b"/live" => framing.encode_body(Status::Ok, ContentType::Html, page.as_bytes(), &mut out),
        b"/stats.json" => {
            let json = stats_json();
            framing.encode_body(Status::Ok, ContentType::Json, json.as_bytes(), &mut out);
        }
        b"/" => {
            let text = MONITOR_INDEX.as_bytes();
            framing.encode_body(Status::Ok, ContentType::Text, text, &mut out);
        }
        b"/docs/LESSON.md" => {
            framing.encode_body(Status::Ok, ContentType::Text, LESSON.as_bytes(), &mut out);
        }
        b"/docs/uk/LESSON.md" => {
            framing.encode_body(
                Status::Ok,
                ContentType::Text,
                LESSON_UK.as_bytes(),
                &mut out,
            );
        }
        _ => {
            let text = b"ERR not found\n";
            framing.encode_body(Status::NotFound, ContentType::Text, text, &mut out);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(head: &str) -> String {
        let out = monitor_answer(head.as_bytes(), "<p>page</p>", || "{}".to_string());
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn each_path_has_its_type_and_every_answer_closes() {
        let page = answer("GET /live HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(page.starts_with("HTTP/1.1 200 OK\r\n"), "{page}");
        assert!(page.contains("Content-Type: text/html; charset=utf-8\r\n"));
        assert!(page.contains("Connection: close\r\n") && page.ends_with("<p>page</p>"));
        let json = answer("GET /stats.json?t=1 HTTP/1.1\r\n\r\n");
        assert!(json.contains("Content-Type: application/json\r\n") && json.ends_with("{}"));
        assert!(answer("GET / HTTP/1.1\r\n\r\n").ends_with(MONITOR_INDEX));
        assert!(answer("GET /ping HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404 "));
        assert!(answer("POST /live HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 405 "));
        assert!(answer("hello\r\n\r\n").starts_with("HTTP/1.1 400 "));
        let head = answer("HEAD /stats.json HTTP/1.1\r\n\r\n");
        assert!(
            head.ends_with("Content-Length: 2\r\nConnection: close\r\n\r\n"),
            "{head}"
        );
    }

    #[test]
    fn every_lesson_the_page_links_is_served() {
        let page = crate::live::PAGE;
        let links: Vec<&str> = page
            .split("href=\"")
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .filter(|href| href.starts_with("docs/"))
            .collect();
        assert!(!links.is_empty(), "the page links the lesson");
        for href in links {
            let path = href.split('#').next().unwrap_or_default();
            let got = answer(&format!("GET /{path} HTTP/1.1\r\n\r\n"));
            assert!(got.starts_with("HTTP/1.1 200 OK\r\n"), "{href}");
            assert!(
                got.contains("text/plain") && got.contains("## Stage 1"),
                "{href}"
            );
        }
        let uk = answer("GET /docs/uk/LESSON.md HTTP/1.1\r\n\r\n");
        assert!(uk.starts_with("HTTP/1.1 200 OK\r\n") && uk.contains("## Етап 1"));
    }
}
