//! The SAML SP's own signing key: generated per SAML SsoConfig, kept in the Secret
//! `<config>-gatehouse-saml-sp`, and rotated with an overlap. It signs the sidecar's
//! LogoutResponses to the IdP's single logout; the SP metadata publishes its certificates.
//!
//! Rotation follows the certificates' own dates, so it needs no other state:
//!
//! 1. A certificate is valid for [`VALIDITY`]. When the signing one has less than [`RENEW_BEFORE`]
//!    left, a next key is generated and its certificate published beside the signing one
//!    (`next.key`, `next.crt`): IdPs that read the SP metadata learn it before it signs anything.
//! 2. [`OVERLAP`] after the next certificate was made (or when the signing one is about to expire),
//!    the next key becomes the signing key; the old certificate stays published (`previous.crt`)
//!    for IdPs that still hold a response signed with it.
//! 3. The previous certificate is dropped once it has expired.
//!
//! Everything here is pure; the controller reads the Secret, asks [`plan`], and writes the
//! answer with the Secret's `resourceVersion`.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;

use crate::secrets::SecretValue;

/// How long a generated certificate is valid.
pub const VALIDITY: Duration = Duration::from_secs(365 * 86_400);
/// A next key is made when the signing certificate has less than this left.
pub const RENEW_BEFORE: Duration = Duration::from_secs(30 * 86_400);
/// How long the next certificate is published before it signs.
pub const OVERLAP: Duration = Duration::from_secs(14 * 86_400);
/// The next key signs at the latest this long before the signing certificate expires.
const SWITCH_BEFORE_EXPIRY: Duration = Duration::from_secs(2 * 86_400);

/// Keys of the Secret.
pub const KEY: &str = "tls.key";
pub const CERT: &str = "tls.crt";
pub const NEXT_KEY: &str = "next.key";
pub const NEXT_CERT: &str = "next.crt";
pub const PREVIOUS_CERT: &str = "previous.crt";

/// A key (PKCS#8 PEM) and its certificate (PEM), with the certificate's validity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyPair {
    pub key: SecretValue,
    pub cert: String,
    pub not_before: Timestamp,
    pub not_after: Timestamp,
}

/// What the Secret holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpKeys {
    /// The key that signs.
    pub signing: KeyPair,
    /// The key that will sign next, published already.
    pub next: Option<KeyPair>,
    /// The certificate that signed before, still published.
    pub previous_cert: Option<(String, Timestamp)>,
}

impl SpKeys {
    /// `SAML_SP_SIGNING_CERT`: the signing certificate first, then the next and the previous.
    pub fn published_certs(&self) -> String {
        let mut out = self.signing.cert.trim_end().to_owned();
        for cert in self
            .next
            .iter()
            .map(|n| n.cert.as_str())
            .chain(self.previous_cert.iter().map(|(c, _)| c.as_str()))
        {
            out.push('\n');
            out.push_str(cert.trim_end());
        }
        out.push('\n');
        out
    }

    /// The Secret's data.
    pub fn to_data(&self) -> BTreeMap<String, String> {
        let mut data = BTreeMap::from([
            (KEY.to_owned(), self.signing.key.expose().to_owned()),
            (CERT.to_owned(), self.signing.cert.clone()),
        ]);
        if let Some(next) = &self.next {
            data.insert(NEXT_KEY.to_owned(), next.key.expose().to_owned());
            data.insert(NEXT_CERT.to_owned(), next.cert.clone());
        }
        if let Some((cert, _)) = &self.previous_cert {
            data.insert(PREVIOUS_CERT.to_owned(), cert.clone());
        }
        data
    }

    /// Reads the Secret's data; an error says what is wrong with it.
    pub fn from_data(data: &BTreeMap<String, String>) -> Result<Self, String> {
        let get = |k: &str| data.get(k).map(String::as_str);
        let pair = |key: &str, cert: &str| -> Result<Option<KeyPair>, String> {
            match (get(key), get(cert)) {
                (None, None) => Ok(None),
                (Some(k), Some(c)) => {
                    check_key(k).map_err(|e| format!("key \"{key}\": {e}"))?;
                    let (not_before, not_after) =
                        validity(c).map_err(|e| format!("key \"{cert}\": {e}"))?;
                    Ok(Some(KeyPair {
                        key: SecretValue::new(k),
                        cert: c.to_owned(),
                        not_before,
                        not_after,
                    }))
                }
                (Some(_), None) => Err(format!("key \"{key}\" without \"{cert}\"")),
                (None, Some(_)) => Err(format!("key \"{cert}\" without \"{key}\"")),
            }
        };
        let signing =
            pair(KEY, CERT)?.ok_or_else(|| format!("keys \"{KEY}\" and \"{CERT}\" are missing"))?;
        let next = pair(NEXT_KEY, NEXT_CERT)?;
        let previous_cert = get(PREVIOUS_CERT)
            .map(|c| {
                validity(c)
                    .map(|(_, until)| (c.to_owned(), until))
                    .map_err(|e| format!("key \"{PREVIOUS_CERT}\": {e}"))
            })
            .transpose()?;
        Ok(Self {
            signing,
            next,
            previous_cert,
        })
    }
}

fn check_key(pem: &str) -> Result<(), String> {
    let (_, block) =
        x509_parser::pem::parse_x509_pem(pem.as_bytes()).map_err(|_| "not PEM".to_owned())?;
    if block.label != "PRIVATE KEY" {
        return Err(format!("a `{}`, not a PKCS#8 `PRIVATE KEY`", block.label));
    }
    Ok(())
}

fn validity(pem: &str) -> Result<(Timestamp, Timestamp), String> {
    let (_, block) =
        x509_parser::pem::parse_x509_pem(pem.as_bytes()).map_err(|_| "not PEM".to_owned())?;
    let cert = block
        .parse_x509()
        .map_err(|_| "not an X.509 certificate".to_owned())?;
    let at = |t: x509_parser::time::ASN1Time| {
        Timestamp::from_second(t.timestamp()).map_err(|_| "a validity date out of range".to_owned())
    };
    Ok((
        at(cert.validity().not_before)?,
        at(cert.validity().not_after)?,
    ))
}

/// A new RSA-2048 key and a self-signed certificate for `subject`, valid from `now` (an hour of
/// slack for clocks behind) for [`VALIDITY`].
pub fn generate(subject: &str, now: Timestamp) -> Result<KeyPair, rcgen::Error> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256)?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, subject);
    let not_before = now - jiff::SignedDuration::from_hours(1);
    let not_after = now + jiff::SignedDuration::try_from(VALIDITY).unwrap_or_default();
    let to_time = |t: Timestamp| {
        time::OffsetDateTime::from_unix_timestamp(t.as_second())
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
    };
    params.not_before = to_time(not_before);
    params.not_after = to_time(not_after);
    let cert = params.self_signed(&key)?;
    Ok(KeyPair {
        key: SecretValue::new(key.serialize_pem()),
        cert: cert.pem(),
        not_before: Timestamp::from_second(not_before.as_second()).unwrap_or(now),
        not_after: Timestamp::from_second(not_after.as_second()).unwrap_or(now),
    })
}

/// What the Secret should hold at `now`, given what it holds (`None`: no Secret yet); `None`
/// when it is right as it is. `fresh` makes a new key pair when one is needed.
pub fn plan<E>(
    current: Option<&SpKeys>,
    now: Timestamp,
    fresh: impl FnOnce() -> Result<KeyPair, E>,
) -> Result<Option<SpKeys>, E> {
    let span = |d: Duration| jiff::SignedDuration::try_from(d).unwrap_or_default();
    let Some(current) = current else {
        return Ok(Some(SpKeys {
            signing: fresh()?,
            next: None,
            previous_cert: None,
        }));
    };
    let mut keys = current.clone();
    // 3. The previous certificate, once expired, is no longer published.
    if keys
        .previous_cert
        .as_ref()
        .is_some_and(|(_, until)| *until <= now)
    {
        keys.previous_cert = None;
    }
    // 2. The next key signs after the overlap, or before the signing one expires.
    if let Some(next) = &keys.next
        && (next.not_before + span(OVERLAP) <= now
            || keys.signing.not_after - span(SWITCH_BEFORE_EXPIRY) <= now)
    {
        let old = std::mem::replace(&mut keys.signing, next.clone());
        keys.next = None;
        keys.previous_cert = (old.not_after > now).then_some((old.cert, old.not_after));
    }
    // 1. A next key when the signing one nears its end.
    if keys.next.is_none() && keys.signing.not_after - span(RENEW_BEFORE) <= now {
        keys.next = Some(fresh()?);
    }
    Ok((keys != *current).then_some(keys))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(day: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + day * 86_400).expect("time")
    }

    fn pair(name: &str, from_day: i64) -> KeyPair {
        KeyPair {
            key: SecretValue::new(format!("key {name}")),
            cert: format!("cert {name}"),
            not_before: at(from_day),
            not_after: at(from_day + 365),
        }
    }

    /// Walks the schedule a day at a time from a first key made on day 0.
    #[test]
    fn a_key_is_made_published_ahead_switched_after_the_overlap_and_its_predecessor_dropped() {
        let mut made = 0;
        let mut fresh = |day: i64| {
            made += 1;
            Ok::<_, ()>(pair(&format!("k{made}"), day))
        };
        let first = plan(None, at(0), || fresh(0))
            .expect("plan")
            .expect("created");
        assert_eq!(first.signing.cert, "cert k1");
        let mut keys = first;
        let mut changes = Vec::new();
        for day in 1..=800 {
            if let Some(next) = plan(Some(&keys), at(day), || fresh(day)).expect("plan") {
                changes.push((day, next.published_certs()));
                keys = next;
            }
        }
        // Day 335 (30 days before expiry): k2 published beside k1, k1 still signing.
        // Day 349 (14 days later): k2 signs, k1 still published until it expires on day 365.
        // Day 365: k1 dropped. Then the same a year on for k3.
        let days: Vec<i64> = changes.iter().map(|(d, _)| *d).collect();
        assert_eq!(days, [335, 349, 365, 670, 684, 700]);
        assert_eq!(changes[0].1, "cert k1\ncert k2\n");
        assert_eq!(changes[1].1, "cert k2\ncert k1\n");
        assert_eq!(changes[2].1, "cert k2\n");
        assert_eq!(changes[4].1, "cert k3\ncert k2\n");
        assert_eq!(made, 3);
    }

    #[test]
    fn a_signing_key_about_to_expire_is_replaced_even_inside_the_overlap() {
        let keys = SpKeys {
            signing: pair("old", 0),
            next: Some(pair("new", 362)),
            previous_cert: None,
        };
        let next = plan(Some(&keys), at(363), || Err::<KeyPair, ()>(()))
            .expect("no key made")
            .expect("switched");
        assert_eq!(next.signing.cert, "cert new");
        assert_eq!(
            next.previous_cert.map(|(c, _)| c).as_deref(),
            Some("cert old")
        );
        // Nothing to do for a young key.
        let young = SpKeys {
            signing: pair("young", 0),
            next: None,
            previous_cert: None,
        };
        assert_eq!(
            plan(Some(&young), at(10), || Err::<KeyPair, ()>(())),
            Ok(None)
        );
    }

    #[test]
    fn a_generated_key_reads_back_and_an_edited_secret_is_refused_naming_the_key() {
        let now = Timestamp::now();
        let made = generate("gatehouse SAML SP team-a/hr", now).expect("generated");
        assert!(made.not_after > now + jiff::SignedDuration::from_hours(24 * 364));
        let keys = SpKeys {
            signing: made.clone(),
            next: None,
            previous_cert: None,
        };
        let read = SpKeys::from_data(&keys.to_data()).expect("reads back");
        assert_eq!(read.signing.cert, made.cert);
        // Certificate dates have whole seconds: they read back as generated.
        assert_eq!(read.signing.not_after, made.not_after);

        let mut data = keys.to_data();
        data.insert(CERT.into(), "garbage".into());
        let e = SpKeys::from_data(&data).expect_err("garbage");
        assert!(e.contains("\"tls.crt\": not PEM"), "{e}");
        let mut data = keys.to_data();
        data.remove(KEY);
        let e = SpKeys::from_data(&data).expect_err("no key");
        assert!(e.contains("\"tls.crt\" without \"tls.key\""), "{e}");
        let mut data = keys.to_data();
        data.insert(NEXT_KEY.into(), made.key.expose().to_owned());
        let e = SpKeys::from_data(&data).expect_err("half a next pair");
        assert!(e.contains("\"next.key\" without \"next.crt\""), "{e}");
    }
}
