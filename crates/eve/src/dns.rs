//! The DNS records: Suricata 8's `dns` version 3 records, one per message (requests and
//! responses separately), oriented like the packet (a response comes from the server), with
//! `dns.tx_id` and no root `tx_id` (suricata-eve.md §8).

use sekisho_engine::app::dns::{DnsRecord, DnsSoa, DnsSrv, DnsTx};
use serde::Serialize;

use crate::RecordHead;

#[derive(Serialize)]
pub(crate) struct RrObj<'a> {
    rrname: &'a str,
    rrtype: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    ttl: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rdata: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    soa: Option<SoaObj<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    srv: Option<SrvObj<'a>>,
}

#[derive(Serialize)]
pub(crate) struct SoaObj<'a> {
    mname: &'a str,
    rname: &'a str,
    serial: u32,
    refresh: u32,
    retry: u32,
    expire: u32,
    minimum: u32,
}

impl<'a> SoaObj<'a> {
    fn new(s: &'a DnsSoa) -> Self {
        SoaObj {
            mname: &s.mname,
            rname: &s.rname,
            serial: s.serial,
            refresh: s.refresh,
            retry: s.retry,
            expire: s.expire,
            minimum: s.minimum,
        }
    }
}

#[derive(Serialize)]
pub(crate) struct SrvObj<'a> {
    priority: u16,
    weight: u16,
    port: u16,
    name: &'a str,
}

impl<'a> SrvObj<'a> {
    fn new(s: &'a DnsSrv) -> Self {
        SrvObj {
            priority: s.priority,
            weight: s.weight,
            port: s.port,
            name: &s.name,
        }
    }
}

/// Records of a section; `data`: answers and authorities carry ttl and rdata (or the
/// `soa` / `srv` object in its place), questions do not.
fn rrs(list: &[DnsRecord], data: bool) -> Vec<RrObj<'_>> {
    list.iter()
        .map(|r| {
            let special = r.soa.is_some() || r.srv.is_some();
            RrObj {
                rrname: &r.rrname,
                rrtype: &r.rrtype,
                ttl: data.then_some(r.ttl),
                rdata: (data && !special).then_some(r.rdata.as_str()),
                soa: r.soa.as_ref().filter(|_| data).map(SoaObj::new),
                srv: r.srv.as_ref().filter(|_| data).map(SrvObj::new),
            }
        })
        .collect()
}

/// Suricata's `grouped` object: answer data by type, in answer order.
fn grouped(list: &[DnsRecord]) -> std::collections::BTreeMap<&str, Vec<&str>> {
    let mut g: std::collections::BTreeMap<&str, Vec<&str>> = std::collections::BTreeMap::new();
    for r in list.iter().filter(|r| r.soa.is_none() && r.srv.is_none()) {
        g.entry(r.rrtype.as_str()).or_default().push(&r.rdata);
    }
    g
}

fn yes(b: &bool) -> bool {
    !*b
}

/// The `dns` object (v3 "detailed").
#[derive(Serialize)]
pub(crate) struct DnsObj<'a> {
    version: u8,
    r#type: &'static str,
    tx_id: u64,
    id: u16,
    flags: String,
    #[serde(skip_serializing_if = "yes")]
    qr: bool,
    #[serde(skip_serializing_if = "yes")]
    aa: bool,
    #[serde(skip_serializing_if = "yes")]
    tc: bool,
    #[serde(skip_serializing_if = "yes")]
    rd: bool,
    #[serde(skip_serializing_if = "yes")]
    ra: bool,
    #[serde(skip_serializing_if = "yes")]
    z: bool,
    opcode: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    rcode: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    queries: Vec<RrObj<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    answers: Vec<RrObj<'a>>,
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    grouped: std::collections::BTreeMap<&'a str, Vec<&'a str>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    authorities: Vec<RrObj<'a>>,
}

impl<'a> DnsObj<'a> {
    pub(crate) fn new(t: &'a DnsTx) -> Self {
        let f = t.flags;
        DnsObj {
            version: 3,
            r#type: if t.response { "response" } else { "request" },
            tx_id: t.tx_id,
            id: t.id,
            flags: format!("{f:x}"),
            qr: f & 0x8000 != 0,
            aa: f & 0x0400 != 0,
            tc: f & 0x0200 != 0,
            rd: f & 0x0100 != 0,
            ra: f & 0x0080 != 0,
            z: f & 0x0040 != 0,
            opcode: t.opcode,
            rcode: t.response.then_some(t.rcode.as_str()),
            queries: rrs(&t.queries, false),
            answers: rrs(&t.answers, true),
            grouped: grouped(&t.answers),
            authorities: rrs(&t.authorities, true),
        }
    }
}

/// An EVE `dns` record.
#[derive(Serialize)]
pub(crate) struct DnsEvent<'a> {
    #[serde(flatten)]
    pub(crate) head: RecordHead<'a>,
    pub(crate) dns: DnsObj<'a>,
}
