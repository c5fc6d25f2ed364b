//! The authoritative DNS server (hickory-server, UDP and TCP) answering from the world's zone,
//! with its fault knobs: NXDOMAIN, NODATA, SERVFAIL, a bogus signed name, REFUSED, no answer,
//! per-name delay, CNAME chains and the AD flag.
//!
//! The AD flag is what a validating resolver in front of the zone would set: on answers
//! (records, NXDOMAIN, NODATA) whose every name is signed (the domain's `dnssec_signed`, or
//! the name's own), and only to a query that asks for it with AD or DO (RFC 6840 §5.7).
//!
//! It answers only for `.test` names; anything else is REFUSED, so a client pointed at the lab
//! never learns a real address.

use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Edns, Header, HeaderCounts, MessageType, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, CNAME, MX, SOA, TLSA, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_server::net::runtime::Time;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;

use crate::limits;
use crate::logs::{DnsQueryLog, now_ms};
use crate::scenario::DnsFault;
use crate::state::{Shared, Zone, lock, read};

/// What to answer.
#[derive(Debug)]
enum Plan {
    /// Send nothing (the client times out).
    NoAnswer,
    /// Send this.
    Respond {
        rcode: ResponseCode,
        answers: Vec<Record>,
        soa: Vec<Record>,
        authentic: bool,
        /// Add the Extended DNS Error "DNSSEC Bogus" (RFC 8914 §4.7).
        bogus: bool,
    },
}

fn fqdn(name: &str) -> Option<Name> {
    Name::from_ascii(format!("{name}.")).ok()
}

fn is_lab_name(name: &str) -> bool {
    name == "test" || name.ends_with(".test")
}

fn soa_record(zone: &Zone, name: &str) -> Vec<Record> {
    let apex = zone.apex_of(name);
    let (Some(owner), Some(mname), Some(rname)) = (
        fqdn(&apex),
        fqdn("ns.lab.test"),
        fqdn("hostmaster.lab.test"),
    ) else {
        return vec![];
    };
    let soa = SOA::new(mname, rname, 1, 3600, 600, 86400, 60);
    vec![Record::from_rdata(owner, 60, RData::SOA(soa))]
}

fn records_of(zone: &Zone, name: &str, qtype: RecordType) -> Vec<Record> {
    let Some(entry) = zone.names.get(name) else {
        return vec![];
    };
    let Some(owner) = fqdn(name) else {
        return vec![];
    };
    let ttl = entry.ttl.unwrap_or(zone.default_ttl);
    let mut out = Vec::new();
    let mut push = |rdata: RData| out.push(Record::from_rdata(owner.clone(), ttl, rdata));
    let want = |t: RecordType| qtype == t || qtype == RecordType::ANY;
    if want(RecordType::A) {
        for ip in &entry.a {
            push(RData::A(A(*ip)));
        }
    }
    if want(RecordType::AAAA) {
        for ip in &entry.aaaa {
            push(RData::AAAA(AAAA(*ip)));
        }
    }
    if want(RecordType::TXT) {
        for t in &entry.txt {
            let parts = t.character_strings();
            let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
            push(RData::TXT(TXT::from_bytes(refs)));
        }
    }
    if want(RecordType::MX) {
        for mx in &entry.mx {
            let exchange = if mx.is_null() {
                Some(Name::root())
            } else {
                fqdn(&mx.exchange)
            };
            if let Some(exchange) = exchange {
                push(RData::MX(MX::new(mx.preference, exchange)));
            }
        }
    }
    if want(RecordType::TLSA) {
        for (u, s, m, data) in &entry.tlsa {
            push(RData::TLSA(TLSA::new(
                (*u).into(),
                (*s).into(),
                (*m).into(),
                data.clone(),
            )));
        }
    }
    if want(RecordType::CNAME)
        && let Some(target) = entry.cname.as_deref().and_then(fqdn)
    {
        push(RData::CNAME(CNAME(target)));
    }
    out
}

/// Decide the answer for one question, and how long to wait before sending it.
fn plan(zone: &Zone, qname: &str, qtype: RecordType) -> (Plan, Duration) {
    let mut answers = Vec::new();
    let mut name = qname.to_owned();
    let mut delay = Duration::ZERO;
    let mut authentic = true;
    let mut seen = vec![name.clone()];
    let respond = |rcode, answers, soa, authentic| Plan::Respond {
        rcode,
        answers,
        soa,
        authentic,
        bogus: false,
    };
    for hop in 0..=limits::MAX_CNAME_CHAIN {
        if !is_lab_name(&name) {
            // Outside the lab: refuse the question; a chain leading out just ends.
            let rcode = if hop == 0 {
                ResponseCode::Refused
            } else {
                ResponseCode::NoError
            };
            return (respond(rcode, answers, vec![], false), delay);
        }
        let Some(entry) = zone.names.get(&name) else {
            let rcode = if zone.name_exists(&name) {
                ResponseCode::NoError
            } else {
                ResponseCode::NXDomain
            };
            let soa = soa_record(zone, &name);
            // A signed zone proves the denial (NSEC/NSEC3): a validating resolver sets AD.
            let authentic = authentic && zone.is_signed(&name);
            return (respond(rcode, answers, soa, authentic), delay);
        };
        delay += entry.delay;
        authentic &= zone.is_signed(&name);
        if let Some(fault) = entry.fault_for(qtype) {
            let soa = soa_record(zone, &name);
            let plan = match fault {
                DnsFault::Timeout => Plan::NoAnswer,
                DnsFault::Servfail => respond(ResponseCode::ServFail, vec![], vec![], false),
                DnsFault::Bogus => Plan::Respond {
                    rcode: ResponseCode::ServFail,
                    answers: vec![],
                    soa: vec![],
                    authentic: false,
                    bogus: true,
                },
                DnsFault::Refused => respond(ResponseCode::Refused, vec![], vec![], false),
                DnsFault::Nxdomain => respond(ResponseCode::NXDomain, answers, soa, authentic),
                DnsFault::Nodata | DnsFault::None => {
                    respond(ResponseCode::NoError, answers, soa, authentic)
                }
            };
            return (plan, delay);
        }
        if let Some(target) = &entry.cname
            && qtype != RecordType::CNAME
        {
            answers.extend(records_of(zone, &name, RecordType::CNAME));
            if seen.contains(target) {
                // A CNAME loop: what real resolvers end in.
                return (
                    respond(ResponseCode::ServFail, vec![], vec![], false),
                    delay,
                );
            }
            name = target.clone();
            seen.push(name.clone());
            continue;
        }
        let records = records_of(zone, &name, qtype);
        let soa = if records.is_empty() {
            soa_record(zone, &name)
        } else {
            vec![]
        };
        answers.extend(records);
        return (
            respond(ResponseCode::NoError, answers, soa, authentic),
            delay,
        );
    }
    (
        respond(ResponseCode::ServFail, vec![], vec![], false),
        delay,
    )
}

/// The hickory request handler of a world.
pub(crate) struct LabDns {
    pub(crate) shared: Arc<Shared>,
}

fn silent(request: &Request, rcode: ResponseCode) -> ResponseInfo {
    let mut metadata = Metadata::response_from_request(&request.metadata);
    metadata.response_code = rcode;
    ResponseInfo::from(Header {
        metadata,
        counts: HeaderCounts::default(),
    })
}

#[async_trait::async_trait]
impl RequestHandler for LabDns {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let builder = MessageResponseBuilder::from_message_request(request);
        if request.metadata.message_type != MessageType::Query
            || request.metadata.op_code != OpCode::Query
        {
            let resp = builder.error_msg(&request.metadata, ResponseCode::NotImp);
            return response_handle
                .send_response(resp)
                .await
                .unwrap_or_else(|_| silent(request, ResponseCode::NotImp));
        }
        let info = match request.request_info() {
            Ok(info) => info,
            Err(_) => {
                let resp = builder.error_msg(&request.metadata, ResponseCode::FormErr);
                return response_handle
                    .send_response(resp)
                    .await
                    .unwrap_or_else(|_| silent(request, ResponseCode::FormErr));
            }
        };
        // `to_ascii`, not Display: Display renders punycode labels as Unicode.
        let qname = Name::from(info.query.name().clone())
            .to_ascii()
            .trim_end_matches('.')
            .to_ascii_lowercase();
        let qtype = info.query.query_type();
        let protocol = info.protocol.to_string().to_ascii_lowercase();

        let (plan, delay) = plan(&read(&self.shared.zone), &qname, qtype);
        let delay = delay + self.shared.rtt;
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let outcome = match &plan {
            Plan::NoAnswer => "no-answer".to_owned(),
            Plan::Respond { rcode, .. } => format!("{rcode:?}"),
        };
        // RFC 6840 §5.7: a validating resolver sets AD only for a query that asks for it.
        let asked_ad = request.metadata.authentic_data;
        let asked_do = request.edns.as_ref().is_some_and(|e| e.flags().dnssec_ok);
        let ad = match &plan {
            Plan::Respond {
                rcode, authentic, ..
            } => {
                *authentic
                    && (asked_ad || asked_do)
                    && matches!(*rcode, ResponseCode::NoError | ResponseCode::NXDomain)
            }
            Plan::NoAnswer => false,
        };
        lock(&self.shared.logs).push_dns(DnsQueryLog {
            at_ms: now_ms(),
            name: qname,
            qtype: qtype.to_string(),
            protocol,
            outcome,
            ad: asked_ad,
            dnssec_ok: asked_do,
            authentic: ad,
        });

        match plan {
            Plan::NoAnswer => silent(request, ResponseCode::NoError),
            Plan::Respond {
                rcode,
                answers,
                soa,
                bogus,
                ..
            } => {
                let mut metadata = Metadata::response_from_request(&request.metadata);
                metadata.authoritative = rcode != ResponseCode::Refused;
                metadata.recursion_available = false;
                metadata.response_code = rcode;
                metadata.authentic_data = ad;
                let mut edns = Edns::new();
                let mut builder = builder;
                if let Some(req_edns) = &request.edns {
                    edns.set_max_payload(req_edns.max_payload().max(512));
                    edns.set_dnssec_ok(req_edns.flags().dnssec_ok);
                    if bogus {
                        // Extended DNS Error (option 15), INFO-CODE 6: DNSSEC Bogus.
                        edns.options_mut().insert(
                            hickory_proto::rr::rdata::opt::EdnsOption::Unknown(15, vec![0, 6]),
                        );
                    }
                    builder.edns(&edns);
                }
                let none: Vec<Record> = Vec::new();
                let resp = builder.build(
                    metadata,
                    answers.iter(),
                    none.iter(),
                    soa.iter(),
                    none.iter(),
                );
                response_handle
                    .send_response(resp)
                    .await
                    .unwrap_or_else(|_| silent(request, ResponseCode::ServFail))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::NameEntry;

    fn zone() -> Zone {
        let mut z = Zone {
            default_ttl: 300,
            apexes: vec!["a.test".into()],
            ..Zone::default()
        };
        z.names.insert(
            "_mta-sts.a.test".into(),
            NameEntry {
                cname: Some("_mta-sts.b.test".into()),
                ..NameEntry::default()
            },
        );
        z.names.insert(
            "_mta-sts.b.test".into(),
            NameEntry {
                txt: vec![crate::scenario::TxtValue::Single("v=STSv1; id=1;".into())],
                ..NameEntry::default()
            },
        );
        z.names.insert(
            "loop1.a.test".into(),
            NameEntry {
                cname: Some("loop2.a.test".into()),
                ..NameEntry::default()
            },
        );
        z.names.insert(
            "loop2.a.test".into(),
            NameEntry {
                cname: Some("loop1.a.test".into()),
                ..NameEntry::default()
            },
        );
        z
    }

    fn rcode(p: &Plan) -> Option<ResponseCode> {
        match p {
            Plan::Respond { rcode, .. } => Some(*rcode),
            Plan::NoAnswer => None,
        }
    }

    #[test]
    fn cname_chain_is_followed() {
        let (p, _) = plan(&zone(), "_mta-sts.a.test", RecordType::TXT);
        let Plan::Respond { answers, rcode, .. } = p else {
            panic!("expected an answer");
        };
        assert_eq!(rcode, ResponseCode::NoError);
        assert_eq!(answers.len(), 2, "CNAME + TXT");
    }

    #[test]
    fn names_outside_test_are_refused_and_missing_names_are_nxdomain() {
        let z = zone();
        assert_eq!(
            rcode(&plan(&z, "example.com", RecordType::A).0),
            Some(ResponseCode::Refused)
        );
        assert_eq!(
            rcode(&plan(&z, "nope.a.test", RecordType::A).0),
            Some(ResponseCode::NXDomain)
        );
        // Empty non-terminal: NODATA.
        assert_eq!(
            rcode(&plan(&z, "a.test", RecordType::A).0),
            Some(ResponseCode::NoError)
        );
    }

    #[test]
    fn cname_loops_end_in_servfail() {
        assert_eq!(
            rcode(&plan(&zone(), "loop1.a.test", RecordType::A).0),
            Some(ResponseCode::ServFail)
        );
    }
}
