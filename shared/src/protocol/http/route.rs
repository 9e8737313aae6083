//! From a request target (`/db/42?delay_ms=5`) to the work it asks for.
//!
//! Each route is a command of the line protocol in another spelling: the
//! path and query are turned into the same command word and arguments, and
//! [`parse_command`] checks them. So both dialects accept the same values
//! and refuse the rest with the same words, byte for byte; nothing about a
//! command's arguments is decided twice.
//!
//! Paths are taken as they come: no percent-decoding and no dot-segment
//! removal, because no valid argument needs either, so `/db/%34%32` is an
//! id that is not a number, as it would be on the line protocol.

use super::response::Status;
use crate::protocol::request::parse_command;
use crate::protocol::{response, Work};

/// The body of `GET /`: what there is to ask for, on one line like every
/// other answer.
/// `/live` is not served here but on the monitoring port (`shared::live`),
/// so the index says where.
pub(crate) const INDEX: &str = "OK routes: / /ping /help /stats /db/{id}[?delay_ms=N] \
                                /image/{blur|edge}/{w}/{h}[?seed=S]; \
                                live view: /live on --stats-addr\n";

/// The work for a GET or HEAD of `target`, and the status if it is fixed
/// already (`None`: read it off the answer, as for any served request).
pub(crate) fn route(target: &[u8]) -> (Work, Option<Status>) {
    let (path, query) = match target.iter().position(|&b| b == b'?') {
        Some(mark) => (&target[..mark], &target[mark + 1..]),
        None => (target, &[][..]),
    };
    let Some(path) = origin_path(path) else {
        return answered("ERR malformed request target\n", Status::BadRequest);
    };
    let segments: Vec<&[u8]> = path[1..].split(|&b| b == b'/').collect();
    // The command word, the arguments from the path, and the one optional
    // argument the query may carry.
    let (command, mut args, optional): (&[u8], Vec<&[u8]>, Option<&str>) = match segments.as_slice()
    {
        [b""] => {
            return match query_args(query, None) {
                Ok(_) => (Work::Answered(INDEX.to_string()), None),
                Err(answer) => answer,
            };
        }
        [b"ping"] => (b"PING", vec![], None),
        [b"help"] => (b"HELP", vec![], None),
        [b"stats"] => (b"STATS", vec![], None),
        // Served by the monitoring thread, never by this port's workers.
        [b"live"] | [b"stats.json"] => {
            let answer = "ERR not here: /live and /stats.json are on --stats-addr\n";
            return answered(answer, Status::NotFound);
        }
        [b"db", id] => (b"DB", vec![*id], Some("delay_ms")),
        [b"image", op, width, height] => (b"IMAGE", vec![*op, *width, *height], Some("seed")),
        _ => return answered("ERR not found\n", Status::NotFound),
    };
    match query_args(query, optional) {
        Ok(value) => args.extend(value),
        Err(answer) => return answer,
    }
    match parse_command(command, &args) {
        Ok(request) => (Work::Serve(request), None),
        Err(e) => (Work::Answered(response::error(&e)), None),
    }
}

/// The path of an origin-form target (`/...`), or of an absolute-form one
/// (`http://host/...`), which RFC 9112 says a server must accept too.
fn origin_path(path: &[u8]) -> Option<&[u8]> {
    if path.first() == Some(&b'/') {
        return Some(path);
    }
    let scheme = b"http://";
    if path.len() >= scheme.len() && path[..scheme.len()].eq_ignore_ascii_case(scheme) {
        let rest = &path[scheme.len()..];
        return Some(match rest.iter().position(|&b| b == b'/') {
            Some(slash) => &rest[slash..],
            None => b"/",
        });
    }
    None
}

/// The value of the route's one optional query parameter, if given. Any
/// other parameter, or the same one twice, is refused rather than ignored:
/// a misspelt `delay=5` silently ignored would be a confusing default.
fn query_args<'q>(
    query: &'q [u8],
    allowed: Option<&str>,
) -> Result<Option<&'q [u8]>, (Work, Option<Status>)> {
    let mut value = None;
    for pair in query.split(|&b| b == b'&').filter(|pair| !pair.is_empty()) {
        let (key, found) = match pair.iter().position(|&b| b == b'=') {
            Some(eq) => (&pair[..eq], &pair[eq + 1..]),
            None => (pair, &[][..]),
        };
        if allowed.map(str::as_bytes) != Some(key) || value.is_some() {
            return Err(answered(
                "ERR unknown query parameter\n",
                Status::BadRequest,
            ));
        }
        value = Some(found);
    }
    Ok(value)
}

fn answered(answer: &str, status: Status) -> (Work, Option<Status>) {
    (Work::Answered(answer.to_string()), Some(status))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::{ImageJob, ImageOp};
    use crate::protocol::{parse_request, Request};

    fn served(target: &str) -> Request {
        match route(target.as_bytes()) {
            (Work::Serve(request), None) => request,
            other => panic!("{target}: {other:?}"),
        }
    }

    fn answer(target: &str) -> (String, Option<Status>) {
        match route(target.as_bytes()) {
            (Work::Answered(text), status) => (text, status),
            other => panic!("{target}: {other:?}"),
        }
    }

    #[test]
    fn each_route_is_its_command() {
        assert_eq!(served("/ping"), Request::Ping);
        assert_eq!(served("/help"), Request::Help);
        assert_eq!(served("/stats"), Request::Stats);
        assert_eq!(
            served("/db/42"),
            Request::Db {
                id: 42,
                delay_ms: None
            }
        );
        assert_eq!(
            served("/db/7?delay_ms=0"),
            Request::Db {
                id: 7,
                delay_ms: Some(0)
            }
        );
        let job = ImageJob {
            op: ImageOp::Blur,
            width: 16,
            height: 9,
            seed: 7,
        };
        assert_eq!(served("/image/blur/16/9?seed=7"), Request::Image(job));
        assert_eq!(
            served("/image/edge/1/2"),
            Request::Image(ImageJob {
                op: ImageOp::Edge,
                width: 1,
                height: 2,
                seed: 0
            })
        );
        assert_eq!(served("http://localhost:7879/ping"), Request::Ping);
        assert_eq!(answer("/"), (INDEX.to_string(), None));
        assert_eq!(answer("http://localhost"), (INDEX.to_string(), None));
    }

    #[test]
    fn bad_arguments_get_the_line_protocols_words() {
        let same = |target: &str, line: &str| {
            let expected = match parse_request(line.as_bytes()) {
                Some(Err(e)) => response::error(&e),
                other => panic!("{line}: {other:?}"),
            };
            assert_eq!(answer(target), (expected, None), "{target}");
        };
        same("/db/x", "DB x");
        same("/db/", "DB x");
        same("/db/1?delay_ms=10001", "DB 1 10001");
        same("/db/1?delay_ms=", "DB 1 x");
        same("/image/sharpen/1/1", "IMAGE sharpen 1 1");
        same("/image/blur/0/1", "IMAGE blur 0 1");
        same("/image/blur/1/4097", "IMAGE blur 1 4097");
        same("/image/blur/1/1?seed=-1", "IMAGE blur 1 1 -1");
    }

    #[test]
    fn unknown_paths_and_parameters_are_refused() {
        for target in [
            "/nope",
            "/db",
            "/db/1/2",
            "/image/blur/1",
            "/PING",
            "/ping/",
        ] {
            assert_eq!(answer(target).1, Some(Status::NotFound), "{target}");
        }
        for target in [
            "/ping?x=1",
            "/db/1?delay=5",
            "/db/1?delay_ms=1&delay_ms=2",
            "/?a",
        ] {
            assert_eq!(
                answer(target),
                (
                    "ERR unknown query parameter\n".into(),
                    Some(Status::BadRequest)
                ),
                "{target}"
            );
        }
        assert_eq!(answer("ping").1, Some(Status::BadRequest));
        // An empty query, or empty pairs in one, asks nothing.
        assert_eq!(served("/ping?"), Request::Ping);
        assert_eq!(
            served("/db/3?&delay_ms=1&"),
            Request::Db {
                id: 3,
                delay_ms: Some(1)
            }
        );
    }
}
