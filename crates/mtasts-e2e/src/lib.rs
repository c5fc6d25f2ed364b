//! End-to-end suite: a real Postfix delivering through the lab (issue 6). See `tests/`.
