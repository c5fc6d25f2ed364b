#![no_main]
//! The Postfix socketmap netstring decoder, request parser and key classifier must never panic,
//! and must keep what `mtasts_postfix::socketmap` documents:
//!
//! - the decoder is incremental: the same bytes fed in any chunking give the same frames and the
//!   same final error as fed in one piece (the crate's tests check this for one-byte chunks);
//! - no frame is longer than the limit; after an error the decoder keeps returning that error;
//! - `buffered()` counts the bytes not consumed by a complete netstring;
//! - `encode` writes a netstring the decoder reads back;
//! - `Request::parse` splits at the first space;
//! - a `LookupKey::Domain` is lower-case with no trailing dot, and classifies as itself;
//! - `Reply::temp` has no control characters and at most `MAX_REASON` bytes.
//!
//! Input layout: byte 0 is the payload limit (0..=255); byte 1 (low 4 bits) is the number `k`
//! of chunk-size bytes that follow; the rest is the stream, fed in chunks of those sizes
//! (`1 + b % 64`, cycled; one piece when `k` is 0).
use libfuzzer_sys::fuzz_target;
use mtasts_postfix::socketmap::{
    DEFAULT_MAX_REQUEST, Decoder, LookupKey, MAX_REASON, NetstringError, Reply, Request,
    classify_key, encode,
};

/// Every frame, then the final state: `Ok(())` if the decoder wants more, or the error.
fn decode_whole(stream: &[u8], max: usize) -> (Vec<Vec<u8>>, Result<(), NetstringError>) {
    let mut d = Decoder::new(max);
    d.feed(stream);
    let mut frames = Vec::new();
    loop {
        match d.next_frame() {
            Ok(Some(f)) => frames.push(f),
            Ok(None) => return (frames, Ok(())),
            Err(e) => return (frames, Err(e)),
        }
    }
}

fn check_request(payload: &[u8]) {
    let req = Request::parse(payload);
    if let Ok(text) = std::str::from_utf8(payload) {
        match text.split_once(' ') {
            Some((map, key)) => {
                assert_eq!((req.map.as_str(), req.key.as_str()), (map, key));
            }
            None => assert_eq!((req.map.as_str(), req.key.as_str()), (text, "")),
        }
    }
    check_key(&req.key);
    let reply = Reply::temp(&req.key);
    let Reply::Temp(reason) = &reply else {
        panic!("Reply::temp made {reply:?}");
    };
    assert!(reason.len() <= MAX_REASON, "reason of {} bytes", reason.len());
    assert!(!reason.chars().any(char::is_control), "control character in {reason:?}");
    let _ = reply.encode();
}

fn check_key(key: &str) {
    match classify_key(key) {
        LookupKey::Domain(d) => {
            assert!(!d.is_empty() && !d.ends_with('.'), "domain {d:?} from key {key:?}");
            assert!(!d.chars().any(|c| c.is_uppercase()), "domain {d:?} from key {key:?}");
            assert_eq!(
                classify_key(&d),
                LookupKey::Domain(d.clone()),
                "domain {d:?} (from key {key:?}) does not classify as itself"
            );
        }
        LookupKey::Skip(s) => {
            let _ = s.kind();
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let [max, k, rest @ ..] = data else {
        return;
    };
    let max = usize::from(*max);
    let k = usize::from(*k & 0x0f).min(rest.len());
    let (sizes, stream) = rest.split_at(k);

    let (whole_frames, whole_end) = decode_whole(stream, max);

    let mut d = Decoder::new(max);
    assert_eq!(d.max(), max);
    let mut frames: Vec<Vec<u8>> = Vec::new();
    let mut error: Option<NetstringError> = None;
    let mut fed = 0usize;
    let mut turn = 0usize;
    while fed < stream.len() || turn == 0 {
        let n = if sizes.is_empty() {
            stream.len()
        } else {
            1 + usize::from(sizes[turn % sizes.len()] % 64)
        };
        let end = (fed + n).min(stream.len());
        d.feed(&stream[fed..end]);
        fed = end;
        // Alternate between the two ways of taking frames out.
        let by_request = turn % 2 == 1;
        turn += 1;
        loop {
            let got = if by_request {
                d.next_request().map(|r| r.map(|r| (None, r)))
            } else {
                d.next_frame()
                    .map(|f| f.map(|f| (Some(f.clone()), Request::parse(&f))))
            };
            match got {
                Ok(Some((frame, req))) => {
                    let i = frames.len();
                    let Some(expected) = whole_frames.get(i) else {
                        panic!("chunked decoding gave more frames than whole decoding");
                    };
                    if let Some(f) = frame {
                        assert_eq!(&f, expected, "frame {i}");
                    }
                    assert_eq!(req, Request::parse(expected), "request {i}");
                    frames.push(expected.clone());
                }
                Ok(None) => break,
                Err(e) => {
                    if let Some(prev) = &error {
                        assert_eq!(prev, &e, "the error changed");
                    }
                    // The error sticks, whichever way the frames are asked for.
                    assert_eq!(d.next_frame(), Err(e.clone()));
                    assert_eq!(d.next_request(), Err(e.clone()));
                    error = Some(e);
                    break;
                }
            }
        }
        if error.is_some() && fed < stream.len() {
            // Bytes after the error change nothing.
            d.feed(&stream[fed..]);
            fed = stream.len();
            assert_eq!(d.next_frame(), Err(error.clone().expect("error")));
        }
    }
    assert_eq!(frames, whole_frames, "chunked and whole decoding differ");
    assert_eq!(error.map_or(Ok(()), Err), whole_end, "chunked and whole decoding end differently");

    let consumed: usize = frames.iter().map(|f| encode(f).len()).sum();
    assert_eq!(d.buffered(), stream.len() - consumed, "buffered()");
    assert_eq!(d.is_partial(), d.buffered() > 0);

    for f in &frames {
        assert!(f.len() <= max, "frame of {} bytes over the limit {max}", f.len());
        let mut again = Decoder::new(max);
        again.feed(&encode(f));
        assert_eq!(again.next_frame(), Ok(Some(f.clone())), "encode then decode");
        assert_eq!(again.next_frame(), Ok(None));
        check_request(f);
    }
    // The classifier on its own, with the stream as a key, cut to the longest request the
    // daemon reads (DEFAULT_MAX_REQUEST): longer keys never reach it, and IDNA on a
    // multi-kilobyte label costs milliseconds (see docs/fuzzing.md), which would only slow
    // the fuzzer down.
    check_key(&String::from_utf8_lossy(&stream[..stream.len().min(DEFAULT_MAX_REQUEST)]));
});
