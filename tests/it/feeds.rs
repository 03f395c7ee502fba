//! Subscriber features over the real daemon: query filters, RFC 5005 archive paging, RFC 6721
//! tombstones, compression, conditional requests, JSON Feed, per-topic settings.
