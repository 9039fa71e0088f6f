//! The SMTP records: the `smtp` transaction record and the `smtp` object of alerts, with
//! the `email` object beside it (Suricata's `output-json-smtp.c` key order).

use sekisho_engine::app::smtp::{EmailEve, SmtpEve};
use serde::Serialize;

use crate::RecordHead;

/// The `smtp` object: keys with no value (and an empty `rcpt_to`) are omitted.
#[derive(Serialize)]
pub(crate) struct SmtpObj<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    helo: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mail_from: Option<&'a str>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    rcpt_to: &'a [String],
}

impl<'a> From<&'a SmtpEve> for SmtpObj<'a> {
    fn from(s: &'a SmtpEve) -> Self {
        SmtpObj {
            helo: s.helo.as_deref(),
            mail_from: s.mail_from.as_deref(),
            rcpt_to: &s.rcpt_to,
        }
    }
}

/// The `email` object: absent headers and empty lists are omitted.
#[derive(Serialize)]
pub(crate) struct EmailObj<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    from: Option<&'a str>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    to: &'a [String],
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    cc: &'a [String],
    status: &'static str,
}

impl<'a> From<&'a EmailEve> for EmailObj<'a> {
    fn from(e: &'a EmailEve) -> Self {
        EmailObj {
            from: e.from.as_deref(),
            to: &e.to,
            cc: &e.cc,
            status: e.status,
        }
    }
}

/// An EVE `smtp` record.
#[derive(Serialize)]
pub(crate) struct SmtpRecord<'a> {
    #[serde(flatten)]
    pub(crate) head: RecordHead<'a>,
    pub(crate) tx_id: u64,
    pub(crate) smtp: SmtpObj<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) email: Option<EmailObj<'a>>,
}

impl<'a> SmtpRecord<'a> {
    /// The record of transaction `tx_id` with header `head`.
    pub(crate) fn new(head: RecordHead<'a>, tx_id: u64, s: &'a SmtpEve) -> Self {
        SmtpRecord {
            head,
            tx_id,
            smtp: SmtpObj::from(s),
            email: s.email.as_ref().map(EmailObj::from),
        }
    }
}
