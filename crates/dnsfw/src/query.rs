//! Pure per-query processing: bytes in, either our own answer or what to forward. No sockets,
//! no clocks; the server drives it and the fuzz targets call it directly.

use hickory_proto::op::{Message, OpCode};
use hickory_proto::rr::rdata::opt::EdnsCode;
use hickory_proto::rr::{Name, RData, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};

use crate::policy::{Action, Decision, Policy, Verdict};
use crate::wire::{self, rcode, EdnsInfo};

/// What to do with one received query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Classified {
    /// Not worth an answer (shorter than a header, or a response): drop silently.
    Drop,
    /// FORMERR / NOTIMP built from the query.
    Error(Vec<u8>),
    /// A block answer; the decision says which rule.
    Blocked(Vec<u8>, Decision),
    /// Forward upstream.
    Forward(Forward),
}

/// A query to forward, with what is needed to finish it when the answer comes back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward {
    /// The bytes to send upstream (the query, minus ECS unless it is passed through).
    pub upstream_query: Vec<u8>,
    /// End of the question in the original query.
    pub qend: usize,
    /// Query name as asked (case kept, trailing dot).
    pub qname: String,
    /// Query type.
    pub qtype: u16,
    /// The query's EDNS facts, if it had EDNS.
    pub edns: Option<EdnsInfo>,
    /// The decision on the query name alone (ALLOW, ALERT or no match).
    pub decision: Decision,
}

/// Classifies `query` under `policy`. `our_payload` is the UDP payload size we advertise;
/// `pass_ecs` keeps EDNS Client Subnet options in the forwarded query.
pub fn classify(policy: &Policy, query: &[u8], our_payload: u16, pass_ecs: bool) -> Classified {
    if query.len() < wire::HEADER_LEN || query[2] & 0x80 != 0 {
        return Classified::Drop;
    }
    let error = |code: u8, qend: Option<usize>, edns: Option<EdnsInfo>| match wire::respond(
        query,
        qend,
        code,
        &[],
        0,
        edns,
        our_payload,
    ) {
        Some(r) => Classified::Error(r),
        None => Classified::Drop,
    };
    let Ok(mut msg) = Message::from_vec(query) else {
        return error(rcode::FORMERR, None, None);
    };
    let edns = msg.edns.as_ref().map(|e| EdnsInfo {
        payload: e.max_payload(),
        dnssec_ok: e.flags().dnssec_ok,
    });
    if msg.metadata.op_code != OpCode::Query {
        return error(rcode::NOTIMP, wire::question_end(query), edns);
    }
    let (Some(qend), 1) = (wire::question_end(query), msg.queries.len()) else {
        return error(rcode::FORMERR, None, edns);
    };
    let q = &msg.queries[0];
    let qname = q.name().to_ascii();
    let qtype = u16::from(q.query_type());
    let decision = policy.evaluate(&qname, qtype);
    if decision.verdict == Verdict::Block {
        let rule = decision.hit.map(|h| policy.parts(h).1);
        return match rule.map(|r| &r.action) {
            Some(Action::Block(br)) => match wire::block_answer(query, qend, br, edns, our_payload)
            {
                Some(resp) => Classified::Blocked(resp, decision),
                None => Classified::Drop,
            },
            _ => Classified::Drop,
        };
    }
    let mut upstream_query = None;
    if !pass_ecs {
        if let Some(e) = msg.edns.as_mut() {
            if e.option(EdnsCode::Subnet).is_some() {
                e.options_mut().remove(EdnsCode::Subnet);
                upstream_query = msg.to_vec().ok();
            }
        }
    }
    Classified::Forward(Forward {
        upstream_query: upstream_query.unwrap_or_else(|| query.to_vec()),
        qend,
        qname,
        qtype,
        edns,
        decision,
    })
}

/// CNAME and DNAME targets of an answer, in answer order (the redirection chain of §5).
pub fn redirection_chain(msg: &Message) -> Vec<String> {
    msg.answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::CNAME(c) => Some(c.0.to_ascii()),
            RData::Unknown { rdata, .. } if r.record_type() == RecordType::DNAME => {
                Name::read(&mut BinDecoder::new(&rdata.anything))
                    .ok()
                    .map(|n| n.to_ascii())
            }
            _ => None,
        })
        .collect()
}

/// Runs the whole pure path on arbitrary bytes, as the fuzz targets do: classify `data` as a
/// query, then treat `data` as an upstream answer to it and inspect its redirection chain.
/// Returns the answer bytes we would send, if any. Never panics.
pub fn exercise(policy: &Policy, data: &[u8]) -> Option<Vec<u8>> {
    match classify(policy, data, 1232, false) {
        Classified::Drop => None,
        Classified::Error(r) | Classified::Blocked(r, _) => Some(r),
        Classified::Forward(f) => {
            let msg = Message::from_vec(data).ok()?;
            let chain = redirection_chain(&msg);
            let refs: Vec<&str> = chain.iter().map(String::as_str).collect();
            let d = policy.evaluate_response(&f.qname, f.qtype, &refs);
            match d.hit.map(|h| &policy.parts(h).1.action) {
                Some(Action::Block(br)) if d.verdict == Verdict::Block => {
                    wire::block_answer(data, f.qend, br, f.edns, 1232)
                }
                _ => Some(f.upstream_query),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::tests::walled_garden;

    fn q(name: &str, qtype: u16) -> Vec<u8> {
        let mut m = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        wire::encode_name(name, &mut m);
        m.extend_from_slice(&qtype.to_be_bytes());
        m.extend_from_slice(&[0, 1]);
        m
    }

    #[test]
    fn classify_blocks_forwards_and_rejects() {
        let p = walled_garden();
        assert!(
            matches!(classify(&p, &q("gmail.com", 15), 1232, false), Classified::Forward(f) if f.qname == "gmail.com.")
        );
        assert!(matches!(
            classify(&p, &q("yahoo.co.jp", 15), 1232, false),
            Classified::Blocked(..)
        ));
        assert_eq!(classify(&p, &[0; 5], 1232, false), Classified::Drop);
        assert!(
            matches!(classify(&p, &[0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0], 1232, false), Classified::Error(r) if r[3] & 0xF == 1)
        );
    }

    #[test]
    fn ecs_is_stripped_unless_passed_through() {
        use hickory_proto::op::{Edns, Message, Query};
        use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsOption};
        let mut m = Message::query();
        m.metadata.recursion_desired = true;
        m.add_query(Query::query(
            Name::from_ascii("gmail.com.").unwrap(),
            RecordType::A,
        ));
        let mut e = Edns::new();
        e.options_mut().insert(EdnsOption::Subnet(ClientSubnet::new(
            "192.0.2.0".parse().unwrap(),
            24,
            0,
        )));
        m.set_edns(e);
        let bytes = m.to_vec().unwrap();
        let p = walled_garden();
        let Classified::Forward(f) = classify(&p, &bytes, 1232, false) else {
            panic!()
        };
        let sent = Message::from_vec(&f.upstream_query).unwrap();
        assert!(sent
            .edns
            .as_ref()
            .unwrap()
            .option(EdnsCode::Subnet)
            .is_none());
        let Classified::Forward(f) = classify(&p, &bytes, 1232, true) else {
            panic!()
        };
        assert_eq!(f.upstream_query, bytes);
    }

    #[test]
    fn exercise_survives_garbage() {
        let p = walled_garden();
        let mut x: u64 = 7;
        for len in 0..600 {
            let mut m = q("www.google.com", 1);
            for _ in 0..(len % 40) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let i = (x as usize) % m.len();
                m[i] = (x >> 32) as u8;
            }
            m.truncate(m.len().saturating_sub(len % 7));
            let _ = exercise(&p, &m);
        }
    }
}
