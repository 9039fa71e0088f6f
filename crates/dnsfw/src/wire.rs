//! Byte-level answers built from the query itself (header + question copied, flags and counts
//! set), so the hot BLOCK path needs no re-encoding. Full decoding is left to `hickory-proto`.
//! Every function here is total: malformed input gives `None`, never a panic.

use crate::policy::BlockResponse;

/// DNS header length, bytes.
pub const HEADER_LEN: usize = 12;

/// RCODE values used here.
pub mod rcode {
    /// No error.
    pub const NOERROR: u8 = 0;
    /// Format error.
    pub const FORMERR: u8 = 1;
    /// Server failure.
    pub const SERVFAIL: u8 = 2;
    /// Name does not exist.
    pub const NXDOMAIN: u8 = 3;
    /// Not implemented.
    pub const NOTIMP: u8 = 4;
    /// Refused (a client outside `allow_clients`, or over its in-flight cap on TCP).
    pub const REFUSED: u8 = 5;
}

/// Offset just past the (possibly compressed) name starting at `i`.
fn skip_name(msg: &[u8], mut i: usize) -> Option<usize> {
    for _ in 0..128 {
        let len = *msg.get(i)? as usize;
        match len {
            0 => return Some(i + 1),
            l if l & 0xC0 == 0xC0 => return (i + 2 <= msg.len()).then_some(i + 2),
            l if l & 0xC0 != 0 => return None,
            l => i += 1 + l,
        }
    }
    None
}

/// The header, first question and answer section of a message (NSCOUNT and ARCOUNT zeroed):
/// what a query-log line prints. A message whose answer section does not parse keeps header
/// and question (ANCOUNT 0); one without a question keeps the header only.
pub fn answer_part(msg: &[u8]) -> Vec<u8> {
    let cut = |end: usize, an: u16| {
        let mut v = msg[..end].to_vec();
        if v.len() >= HEADER_LEN {
            v[4..6].copy_from_slice(&u16::from(end > HEADER_LEN).to_be_bytes());
            v[6..8].copy_from_slice(&an.to_be_bytes());
            v[8..12].fill(0);
        }
        v
    };
    let Some(qend) = question_end(msg) else {
        return cut(msg.len().min(HEADER_LEN), 0);
    };
    let ancount = u16::from_be_bytes([msg[6], msg[7]]);
    let mut i = qend;
    for n in 0..ancount {
        let Some(end) = skip_name(msg, i)
            .and_then(|j| {
                let rdlen = u16::from_be_bytes([*msg.get(j + 8)?, *msg.get(j + 9)?]) as usize;
                Some(j + 10 + rdlen)
            })
            .filter(|e| *e <= msg.len())
        else {
            return cut(i, n);
        };
        i = end;
    }
    cut(i, ancount)
}

/// A TC=1 answer to `query` (header and question, no records): the client retries over TCP.
/// Used for rate-limit "slip" answers. `None` when the query has no well-formed question.
pub fn truncated(query: &[u8], edns: Option<EdnsInfo>, our_payload: u16) -> Option<Vec<u8>> {
    let qend = question_end(query)?;
    let mut r = respond(query, Some(qend), rcode::NOERROR, &[], 0, edns, our_payload)?;
    r[2] |= 0x02;
    Some(r)
}

/// Offset just past the first question (name + type + class), if it is well-formed and present.
pub fn question_end(msg: &[u8]) -> Option<usize> {
    if msg.len() < HEADER_LEN || u16::from_be_bytes([msg[4], msg[5]]) == 0 {
        return None;
    }
    let mut i = HEADER_LEN;
    loop {
        let len = *msg.get(i)? as usize;
        match len {
            0 => {
                i += 1;
                break;
            }
            l if l & 0xC0 == 0xC0 => {
                i += 2;
                break;
            }
            l if l & 0xC0 != 0 => return None,
            l => i += 1 + l,
        }
        if i - HEADER_LEN > 255 {
            return None;
        }
    }
    (i + 4 <= msg.len()).then_some(i + 4)
}

/// Message ID.
pub fn id(msg: &[u8]) -> Option<u16> {
    Some(u16::from_be_bytes([*msg.first()?, *msg.get(1)?]))
}

/// Overwrites the message ID (no-op on a message shorter than 2 bytes).
pub fn set_id(msg: &mut [u8], id: u16) {
    if msg.len() >= 2 {
        msg[..2].copy_from_slice(&id.to_be_bytes());
    }
}

/// True when the TC (truncated) bit is set.
pub fn is_truncated(msg: &[u8]) -> bool {
    msg.get(2).is_some_and(|b| b & 0x02 != 0)
}

/// Response RCODE (low 4 bits).
pub fn rcode_of(msg: &[u8]) -> Option<u8> {
    msg.get(3).map(|b| b & 0x0F)
}

/// EDNS facts about a query that shape our own answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EdnsInfo {
    /// Advertised UDP payload size.
    pub payload: u16,
    /// DNSSEC OK bit.
    pub dnssec_ok: bool,
}

/// A response to `query` made of its header and first question (`qend` from
/// [`question_end`], or `None` to drop the question), with `rcode`, plus an OPT record when the
/// query had EDNS (RFC 6891 §6.1.1) and `answer` appended verbatim (its RR count in `ancount`).
pub fn respond(
    query: &[u8],
    qend: Option<usize>,
    rcode: u8,
    answer: &[u8],
    ancount: u16,
    edns: Option<EdnsInfo>,
    our_payload: u16,
) -> Option<Vec<u8>> {
    if query.len() < HEADER_LEN {
        return None;
    }
    let end = qend.unwrap_or(HEADER_LEN);
    let mut out = Vec::with_capacity(end + answer.len() + 11);
    out.extend_from_slice(&query[..end]);
    // QR=1, keep opcode and RD; AA=0, TC=0.
    out[2] = 0x80 | (query[2] & 0x79);
    // RA=1, keep CD; Z=0, AD=0.
    out[3] = 0x80 | (query[3] & 0x10) | (rcode & 0x0F);
    let qd: u16 = u16::from(qend.is_some());
    out[4..6].copy_from_slice(&qd.to_be_bytes());
    out[6..8].copy_from_slice(&ancount.to_be_bytes());
    out[8..10].copy_from_slice(&0u16.to_be_bytes());
    out[10..12].copy_from_slice(&u16::from(edns.is_some()).to_be_bytes());
    out.extend_from_slice(answer);
    if let Some(e) = edns {
        out.push(0); // root name
        out.extend_from_slice(&41u16.to_be_bytes());
        out.extend_from_slice(&our_payload.max(512).to_be_bytes());
        out.extend_from_slice(&[0, 0, if e.dnssec_ok { 0x80 } else { 0 }, 0]);
        out.extend_from_slice(&0u16.to_be_bytes());
    }
    Some(out)
}

/// Encodes a normalised name (`a.b.c`, no trailing dot) in uncompressed wire form.
pub fn encode_name(name: &str, out: &mut Vec<u8>) {
    for label in name.split('.').filter(|l| !l.is_empty()) {
        let l = &label.as_bytes()[..label.len().min(63)];
        out.push(l.len() as u8);
        out.extend_from_slice(l);
    }
    out.push(0);
}

/// The block answer for `query` under `resp` (reference §4): NODATA = NOERROR with no answer,
/// NXDOMAIN, OVERRIDE = NOERROR with one CNAME from the query name (compression pointer to the
/// question) to the override domain with its TTL.
pub fn block_answer(
    query: &[u8],
    qend: usize,
    resp: &BlockResponse,
    edns: Option<EdnsInfo>,
    our_payload: u16,
) -> Option<Vec<u8>> {
    match resp {
        BlockResponse::NoData => {
            respond(query, Some(qend), rcode::NOERROR, &[], 0, edns, our_payload)
        }
        BlockResponse::NxDomain => respond(
            query,
            Some(qend),
            rcode::NXDOMAIN,
            &[],
            0,
            edns,
            our_payload,
        ),
        BlockResponse::Override { domain, ttl } => {
            let mut rr = Vec::with_capacity(domain.len() + 16);
            rr.extend_from_slice(&[0xC0, 0x0C]);
            rr.extend_from_slice(&5u16.to_be_bytes()); // CNAME
            rr.extend_from_slice(&1u16.to_be_bytes()); // IN
            rr.extend_from_slice(&ttl.to_be_bytes());
            let mut target = Vec::with_capacity(domain.len() + 2);
            encode_name(domain, &mut target);
            rr.extend_from_slice(&(target.len() as u16).to_be_bytes());
            rr.extend_from_slice(&target);
            respond(query, Some(qend), rcode::NOERROR, &rr, 1, edns, our_payload)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{Message, ResponseCode};
    use hickory_proto::rr::{RData, RecordType};

    fn query(name: &str) -> Vec<u8> {
        let mut q = vec![0xAB, 0xCD, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        encode_name(name, &mut q);
        q.extend_from_slice(&[0, 15, 0, 1]);
        q
    }

    #[test]
    fn question_end_walks_labels() {
        let q = query("Mail.Example.com");
        assert_eq!(question_end(&q), Some(q.len()));
        assert_eq!(question_end(&q[..q.len() - 1]), None);
        assert_eq!(question_end(&q[..5]), None);
        let mut bad = q.clone();
        bad[12] = 0x80;
        assert_eq!(question_end(&bad), None);
    }

    #[test]
    fn block_answers_decode_as_intended() {
        let q = query("Mail.Example.com");
        let end = question_end(&q).unwrap();
        let edns = Some(EdnsInfo {
            payload: 4096,
            dnssec_ok: false,
        });
        let nx = Message::from_vec(
            &block_answer(&q, end, &BlockResponse::NxDomain, edns, 1232).unwrap(),
        )
        .unwrap();
        assert_eq!(nx.metadata.response_code, ResponseCode::NXDomain);
        assert_eq!(nx.metadata.id, 0xABCD);
        assert!(nx.metadata.recursion_desired && nx.metadata.recursion_available);
        assert_eq!(nx.queries[0].name().to_ascii(), "Mail.Example.com.");
        assert_eq!(nx.edns.as_ref().unwrap().max_payload(), 1232);
        let nd =
            Message::from_vec(&block_answer(&q, end, &BlockResponse::NoData, None, 1232).unwrap())
                .unwrap();
        assert_eq!(nd.metadata.response_code, ResponseCode::NoError);
        assert!(nd.answers.is_empty() && nd.edns.is_none());
        let ov = BlockResponse::Override {
            domain: "sinkhole.example".into(),
            ttl: 60,
        };
        let m = Message::from_vec(&block_answer(&q, end, &ov, None, 1232).unwrap()).unwrap();
        assert_eq!(m.answers.len(), 1);
        let a = &m.answers[0];
        assert_eq!((a.record_type(), a.ttl), (RecordType::CNAME, 60));
        assert_eq!(a.name.to_ascii(), "Mail.Example.com.");
        match &a.data {
            RData::CNAME(c) => assert_eq!(c.0.to_ascii(), "sinkhole.example."),
            other => panic!("{other:?}"),
        }
    }
}
