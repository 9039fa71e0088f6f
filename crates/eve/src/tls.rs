//! The TLS records: the `tls` transaction record and the `tls` object of alerts (Suricata's
//! `output-json-tls.c` extended field order).

use sekisho_engine::app::tls::TlsEve;
use serde::Serialize;

use crate::RecordHead;

/// A JA3 / JA3S object.
#[derive(Serialize)]
pub(crate) struct JaObj<'a> {
    hash: &'a str,
    string: &'a str,
}

fn ja(j: &Option<(String, String)>) -> Option<JaObj<'_>> {
    j.as_ref().map(|(s, h)| JaObj { hash: h, string: s })
}

/// The `tls` object (EVE extended fields; absent ones omitted). Under the NFW envelope only
/// `sni` and `version`, as AWS's alert sample shows.
#[derive(Serialize)]
pub(crate) struct TlsObj<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    subject: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    issuerdn: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    serial: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fingerprint: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sni: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    notbefore: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    notafter: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ja3: Option<JaObj<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ja3s: Option<JaObj<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ja4: Option<&'a str>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    client_alpns: &'a [String],
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    server_alpns: &'a [String],
    /// sekisho's addition: the ClientHello carried Encrypted Client Hello, so `sni` is only
    /// the outer (public) name.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    ech: bool,
}

impl<'a> TlsObj<'a> {
    /// The object of `t`; `nfw`: the NFW alert subset.
    pub(crate) fn new(t: &'a TlsEve, nfw: bool) -> Self {
        let full = !nfw;
        TlsObj {
            subject: t.subject.as_deref().filter(|_| full),
            issuerdn: t.issuerdn.as_deref().filter(|_| full),
            serial: t.serial.as_deref().filter(|_| full),
            fingerprint: t.fingerprint.as_deref().filter(|_| full),
            sni: t.sni.as_deref(),
            version: t.version.as_deref(),
            notbefore: t.notbefore.as_deref().filter(|_| full),
            notafter: t.notafter.as_deref().filter(|_| full),
            ja3: ja(&t.ja3).filter(|_| full),
            ja3s: ja(&t.ja3s).filter(|_| full),
            ja4: t.ja4.as_deref().filter(|_| full),
            client_alpns: if full { &t.client_alpns } else { &[] },
            server_alpns: if full { &t.server_alpns } else { &[] },
            ech: full && t.ech,
        }
    }
}

/// An EVE `tls` record (no root `tx_id`, as in Suricata).
#[derive(Serialize)]
pub(crate) struct TlsRecord<'a> {
    #[serde(flatten)]
    pub(crate) head: RecordHead<'a>,
    pub(crate) tls: TlsObj<'a>,
}
