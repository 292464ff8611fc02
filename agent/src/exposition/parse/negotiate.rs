//! Which parser a response gets, from its `Content-Type`, and what we ask for.

use super::{ContentTypeError, Format};

/// The `Accept` header Prometheus 3 sends with its default `scrape_protocols` (no native
/// histograms, UTF-8 names allowed): OpenMetrics first, then the text format. We parse every
/// format in it; the protobuf format is never asked for.
pub const ACCEPT_HEADER: &str = "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";

/// The outcome of negotiation: the format to parse with and, when the fallback was used, why
/// (Prometheus logs that as a warning and goes on).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Negotiated {
    pub format: Format,
    pub fallback_reason: Option<ContentTypeError>,
}

/// Picks the parser for a response `Content-Type` the way Prometheus 3 does: by media type
/// alone (parameters such as `version` are ignored). A missing, unparsable or unsupported type
/// uses `fallback` (the target's `fallback_scrape_protocol`) when there is one and fails the
/// scrape otherwise. Pass `Some(Format::PrometheusText)` for Prometheus 2's behaviour.
pub fn negotiate(
    content_type: Option<&str>,
    fallback: Option<Format>,
) -> Result<Negotiated, ContentTypeError> {
    let problem = match content_type.map(str::trim) {
        None | Some("") => ContentTypeError::Missing,
        Some(ct) => match media_type(ct) {
            None => ContentTypeError::Unparsable(ct.to_owned()),
            Some(mt) if mt.eq_ignore_ascii_case("text/plain") => {
                return Ok(Negotiated {
                    format: Format::PrometheusText,
                    fallback_reason: None,
                });
            }
            Some(mt) if mt.eq_ignore_ascii_case("application/openmetrics-text") => {
                return Ok(Negotiated {
                    format: Format::OpenMetrics,
                    fallback_reason: None,
                });
            }
            // Protobuf included: we never ask for it, so a target sending it gets the fallback.
            Some(_) => ContentTypeError::Unsupported(ct.to_owned()),
        },
    };
    match fallback {
        Some(format) => Ok(Negotiated {
            format,
            fallback_reason: Some(problem),
        }),
        None => Err(problem),
    }
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|c| c.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?=".contains(&c))
}

/// The `type/subtype` of a media type if the whole value is well formed (RFC 2045 tokens,
/// `;`-separated `key=value` parameters with token or quoted values).
fn media_type(ct: &str) -> Option<&str> {
    let mut parts = ct.split(';');
    let mt = parts.next()?.trim();
    let (ty, sub) = mt.split_once('/')?;
    if !is_token(ty) || !is_token(sub) {
        return None;
    }
    let params: Vec<&str> = parts.collect();
    for (k, p) in params.iter().enumerate() {
        let p = p.trim();
        if p.is_empty() && k + 1 == params.len() {
            continue; // a trailing ';' is tolerated
        }
        let (key, value) = p.split_once('=')?;
        let value = value.trim();
        let quoted = value.len() >= 2 && value.starts_with('"') && value.ends_with('"');
        if !is_token(key.trim()) || !(quoted || is_token(value)) {
            return None;
        }
    }
    Some(mt)
}
