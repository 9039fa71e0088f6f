//! The HTTP records: the `http` transaction record and the `http` object of alerts
//! (Suricata's `output-json-http.c` default fields and order).

use sekisho_engine::app::http::HttpEve;
use serde::Serialize;

use crate::RecordHead;

/// The `http` object (absent fields omitted). Under the NFW envelope: `hostname`, `url`,
/// `http_user_agent`, `http_method`, as AWS's alert logs show (`event.http.hostname`).
#[derive(Serialize)]
pub(crate) struct HttpObj<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    hostname: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    http_user_agent: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    http_content_type: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    http_refer: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    http_method: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    protocol: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    redirect: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    length: Option<u64>,
}

impl<'a> HttpObj<'a> {
    /// The object of `h`; `nfw`: the NFW alert subset.
    pub(crate) fn new(h: &'a HttpEve, nfw: bool) -> Self {
        let full = !nfw;
        HttpObj {
            hostname: h.hostname.as_deref(),
            url: h.url.as_deref(),
            http_user_agent: h.user_agent.as_deref(),
            http_content_type: h.content_type.as_deref().filter(|_| full),
            http_refer: h.referer.as_deref().filter(|_| full),
            http_method: h.method.as_deref(),
            protocol: h.protocol.as_deref().filter(|_| full),
            status: h.status.filter(|_| full),
            redirect: h.redirect.as_deref().filter(|_| full),
            length: full.then_some(h.length),
        }
    }
}

/// An EVE `http` record.
#[derive(Serialize)]
pub(crate) struct HttpRecord<'a> {
    #[serde(flatten)]
    pub(crate) head: RecordHead<'a>,
    pub(crate) tx_id: u64,
    pub(crate) http: HttpObj<'a>,
}
