//! The webhook's self-managed certificates: a CA and a serving certificate for
//! `<service>.<namespace>.svc`, kept in the Secret [`WEBHOOK_CERT_SECRET`], renewed well before
//! they expire, and the CA published as the `caBundle` of the MutatingWebhookConfiguration.
//!
//! Every replica runs the same loop. Writes use the Secret's `resourceVersion`, so when two
//! replicas renew at once one wins and the other adopts its result. The CA lives ten years and is
//! replaced a year before it ends; during that rollover the bundle holds the old and the new CA,
//! so serving certificates of either are trusted. (With cert-manager, none of this runs: the
//! operator reads the files it mounts and cert-manager's CA injector fills in `caBundle`.)

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use gatehouse_crds::consts::{LABEL_COMPONENT, LABEL_MANAGED_BY, MANAGED_BY, WEBHOOK_CERT_SECRET};
use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, PatchOperation, TestOperation};
use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::RootCertStore;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use time::OffsetDateTime;
use tracing::{info, warn};

use super::registration::Registration;
use super::tls::{self, CertPem, ReloadableCert};

/// Secret keys: the current CA, its key, the serving pair, and the CA being retired.
pub const CA_CERT_KEY: &str = "ca.crt";
pub const CA_KEY_KEY: &str = "ca.key";
pub const TLS_CERT_KEY: &str = "tls.crt";
pub const TLS_KEY_KEY: &str = "tls.key";
pub const PREVIOUS_CA_CERT_KEY: &str = "previous-ca.crt";

/// Errors of certificate management. Secrets never appear in them.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("generating a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("the certificate Secret kept changing under us; retrying later")]
    Contended,
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
}

/// How long certificates live and how early they are replaced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lifetimes {
    pub ca: time::Duration,
    pub ca_renew_before: time::Duration,
    pub serving: time::Duration,
    pub serving_renew_before: time::Duration,
}

impl Default for Lifetimes {
    fn default() -> Self {
        Lifetimes {
            ca: time::Duration::days(3650),
            ca_renew_before: time::Duration::days(365),
            serving: time::Duration::days(365),
            serving_renew_before: time::Duration::days(90),
        }
    }
}

/// The content of the certificate Secret.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookCerts {
    pub ca_cert: String,
    pub ca_key: String,
    pub cert: String,
    pub key: String,
    /// The CA this one replaced, still trusted until it expires.
    pub previous_ca_cert: Option<String>,
}

impl std::fmt::Debug for WebhookCerts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookCerts")
            .field("ca_cert", &self.ca_cert)
            .field("cert", &self.cert)
            .field("previous_ca_cert", &self.previous_ca_cert)
            .finish_non_exhaustive()
    }
}

impl WebhookCerts {
    /// Read from the Secret; `None` when a key is missing or not UTF-8.
    pub fn from_secret(secret: &Secret) -> Option<WebhookCerts> {
        let data = secret.data.as_ref()?;
        let text = |key: &str| {
            data.get(key)
                .and_then(|b| String::from_utf8(b.0.clone()).ok())
        };
        Some(WebhookCerts {
            ca_cert: text(CA_CERT_KEY)?,
            ca_key: text(CA_KEY_KEY)?,
            cert: text(TLS_CERT_KEY)?,
            key: text(TLS_KEY_KEY)?,
            previous_ca_cert: text(PREVIOUS_CA_CERT_KEY),
        })
    }

    /// The Secret's `data`.
    pub fn secret_data(&self) -> BTreeMap<String, ByteString> {
        let mut data = BTreeMap::from([
            (CA_CERT_KEY.to_string(), bytes(&self.ca_cert)),
            (CA_KEY_KEY.to_string(), bytes(&self.ca_key)),
            (TLS_CERT_KEY.to_string(), bytes(&self.cert)),
            (TLS_KEY_KEY.to_string(), bytes(&self.key)),
        ]);
        if let Some(previous) = &self.previous_ca_cert {
            data.insert(PREVIOUS_CA_CERT_KEY.to_string(), bytes(previous));
        }
        data
    }

    /// The serving certificate and key.
    pub fn serving(&self) -> CertPem {
        CertPem {
            chain: self.cert.clone(),
            key: self.key.clone(),
        }
    }

    /// PEM bundle for `caBundle`: the current CA, and the previous one while it is valid.
    pub fn ca_bundle(&self, now: OffsetDateTime) -> String {
        let mut bundle = self.ca_cert.trim_end().to_string();
        bundle.push('\n');
        if let Some(previous) = &self.previous_ca_cert
            && not_after(previous).is_some_and(|end| end > now)
        {
            bundle.push_str(previous.trim_end());
            bundle.push('\n');
        }
        bundle
    }
}

fn bytes(text: &str) -> ByteString {
    ByteString(text.as_bytes().to_vec())
}

/// The names the API server (and anyone in the cluster) may use for the webhook Service.
pub fn dns_names(service: &str, namespace: &str) -> Vec<String> {
    vec![
        format!("{service}.{namespace}.svc"),
        format!("{service}.{namespace}.svc.cluster.local"),
        format!("{service}.{namespace}"),
        service.to_string(),
    ]
}

/// What has to be issued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Renewal {
    /// Everything is valid for long enough.
    None,
    /// A new serving certificate from the current CA (nearing expiry, names changed, or not
    /// issued by the current CA).
    Serving,
    /// A new CA and serving certificate (CA missing, unreadable or nearing expiry).
    All,
}

/// Decide what to renew at `now`.
pub fn renewal_needed(
    certs: &WebhookCerts,
    dns: &[String],
    now: OffsetDateTime,
    lifetimes: &Lifetimes,
) -> Renewal {
    let ca_usable = ca_key_matches(&certs.ca_cert, &certs.ca_key)
        && not_after(&certs.ca_cert).is_some_and(|end| end - now > lifetimes.ca_renew_before);
    if !ca_usable {
        return Renewal::All;
    }
    let later = now + lifetimes.serving_renew_before;
    let pair_ok = tls::certified_key(&certs.serving()).is_ok();
    if pair_ok
        && dns
            .iter()
            .all(|name| verifies(&certs.ca_cert, &certs.cert, name, later))
    {
        Renewal::None
    } else {
        Renewal::Serving
    }
}

/// Whether the leaf in `chain` is valid for `name` at `at`, issued by `ca`.
pub fn verifies(ca: &str, chain: &str, name: &str, at: OffsetDateTime) -> bool {
    let Some(verifier) = verifier_for(ca) else {
        return false;
    };
    let Ok(certs) = CertificateDer::pem_slice_iter(chain.as_bytes()).collect::<Result<Vec<_>, _>>()
    else {
        return false;
    };
    let Some((leaf, intermediates)) = certs.split_first() else {
        return false;
    };
    let Ok(server_name) = ServerName::try_from(name.to_string()) else {
        return false;
    };
    let Ok(seconds) = u64::try_from(at.unix_timestamp()) else {
        return false;
    };
    verifier
        .verify_server_cert(
            leaf,
            intermediates,
            &server_name,
            &[],
            UnixTime::since_unix_epoch(Duration::from_secs(seconds)),
        )
        .is_ok()
}

fn verifier_for(ca_pem: &str) -> Option<Arc<WebPkiServerVerifier>> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.ok()?).ok()?;
    }
    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), tls::provider())
        .build()
        .ok()
}

/// Whether `key_pem` is the private key of the CA certificate `cert_pem`.
fn ca_key_matches(cert_pem: &str, key_pem: &str) -> bool {
    let Ok(key) = KeyPair::from_pem(key_pem) else {
        return false;
    };
    let Ok(der) = CertificateDer::from_pem_slice(cert_pem.as_bytes()) else {
        return false;
    };
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(&der) else {
        return false;
    };
    cert.is_ca() && cert.public_key().subject_public_key.data.as_ref() == key.public_key_raw()
}

/// End of validity of the first certificate in `pem`.
pub fn not_after(pem: &str) -> Option<OffsetDateTime> {
    let der = CertificateDer::from_pem_slice(pem.as_bytes()).ok()?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der).ok()?;
    OffsetDateTime::from_unix_timestamp(cert.validity().not_after.timestamp()).ok()
}

/// Issue what `renewal` asks for; `existing` supplies the CA to keep (or retire).
pub fn issue(
    existing: Option<&WebhookCerts>,
    renewal: Renewal,
    dns: &[String],
    now: OffsetDateTime,
    lifetimes: &Lifetimes,
) -> Result<WebhookCerts, CertError> {
    let keep_ca = renewal == Renewal::Serving;
    let (ca_cert, ca_key, previous_ca_cert) = match existing {
        Some(existing) if keep_ca => (
            existing.ca_cert.clone(),
            existing.ca_key.clone(),
            existing.previous_ca_cert.clone(),
        ),
        _ => {
            let (cert, key) = new_ca(now, lifetimes)?;
            // Keep trusting the CA being replaced while it is still valid.
            let previous = existing
                .map(|e| e.ca_cert.clone())
                .filter(|pem| not_after(pem).is_some_and(|end| end > now));
            (cert, key, previous)
        }
    };
    let ca_end = not_after(&ca_cert).unwrap_or(now + lifetimes.serving);
    let (cert, key) = new_serving(
        &ca_cert,
        &ca_key,
        dns,
        now,
        ca_end.min(now + lifetimes.serving),
    )?;
    Ok(WebhookCerts {
        ca_cert,
        ca_key,
        cert,
        key,
        previous_ca_cert,
    })
}

fn new_ca(now: OffsetDateTime, lifetimes: &Lifetimes) -> Result<(String, String), CertError> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params
        .distinguished_name
        .push(DnType::CommonName, "Gatehouse webhook CA");
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + lifetimes.ca;
    let key = KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    Ok((cert.pem(), key.serialize_pem()))
}

fn new_serving(
    ca_cert: &str,
    ca_key: &str,
    dns: &[String],
    now: OffsetDateTime,
    end: OffsetDateTime,
) -> Result<(String, String), CertError> {
    let issuer = Issuer::from_ca_cert_pem(ca_cert, KeyPair::from_pem(ca_key)?)?;
    let mut params = CertificateParams::new(dns.to_vec())?;
    if let Some(first) = dns.first() {
        params
            .distinguished_name
            .push(DnType::CommonName, first.clone());
    }
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    // An hour of slack for clocks that run behind.
    params.not_before = now - time::Duration::hours(1);
    params.not_after = end;
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &issuer)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// The CRD whose conversion webhook the operator serves (SsoConfig `v1alpha1` ⇄ `v1alpha2`).
pub const SSO_CONFIG_CRD: &str = "ssoconfigs.gatehouse.dev";

/// Keeps the certificate Secret, the registration's `caBundle` and the SsoConfig CRD's
/// conversion webhook `caBundle` current.
#[derive(Clone)]
pub struct CertManager {
    pub secrets: Api<Secret>,
    pub webhooks: Api<MutatingWebhookConfiguration>,
    /// Name of the Secret ([`WEBHOOK_CERT_SECRET`] by default).
    pub secret_name: String,
    /// Name of the MutatingWebhookConfiguration.
    pub configuration_name: String,
    pub crds: Api<CustomResourceDefinition>,
    /// Name of the CRD whose conversion webhook is this server ([`SSO_CONFIG_CRD`]).
    pub conversion_crd: String,
    pub registration: Registration,
    pub lifetimes: Lifetimes,
}

impl std::fmt::Debug for CertManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertManager")
            .field("secret_name", &self.secret_name)
            .field("configuration_name", &self.configuration_name)
            .field("conversion_crd", &self.conversion_crd)
            .field("registration", &self.registration)
            .finish_non_exhaustive()
    }
}

/// What [`CertManager::sync_ca_bundle`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaBundleSync {
    Unchanged,
    Updated,
    /// The MutatingWebhookConfiguration does not exist (yet): the chart creates it.
    ConfigurationMissing,
}

impl CertManager {
    /// For the operator in `registration.namespace`, with the default names.
    pub fn new(client: kube::Client, registration: Registration) -> Self {
        CertManager {
            secrets: Api::namespaced(client.clone(), &registration.namespace),
            webhooks: Api::all(client.clone()),
            secret_name: WEBHOOK_CERT_SECRET.to_string(),
            configuration_name: gatehouse_crds::consts::WEBHOOK_NAME.to_string(),
            crds: Api::all(client),
            conversion_crd: SSO_CONFIG_CRD.to_string(),
            registration,
            lifetimes: Lifetimes::default(),
        }
    }

    fn dns(&self) -> Vec<String> {
        dns_names(&self.registration.service, &self.registration.namespace)
    }

    /// Certificates valid for long enough, issuing and storing new ones when needed.
    pub async fn ensure(&self, now: OffsetDateTime) -> Result<WebhookCerts, CertError> {
        let dns = self.dns();
        for _ in 0..3 {
            let Some(secret) = self.secrets.get_opt(&self.secret_name).await? else {
                let certs = issue(None, Renewal::All, &dns, now, &self.lifetimes)?;
                let secret = self.secret(&certs, None);
                match self.secrets.create(&PostParams::default(), &secret).await {
                    Ok(_) => {
                        info!(secret = %self.secret_name, "webhook CA and serving certificate created");
                        return Ok(certs);
                    }
                    // Another replica created it first: adopt theirs.
                    Err(kube::Error::Api(status)) if status.code == 409 => continue,
                    Err(error) => return Err(error.into()),
                }
            };
            let existing = WebhookCerts::from_secret(&secret);
            let renewal = existing.as_ref().map_or(Renewal::All, |c| {
                renewal_needed(c, &dns, now, &self.lifetimes)
            });
            if let (Renewal::None, Some(existing)) = (renewal, &existing) {
                return Ok(existing.clone());
            }
            let certs = issue(existing.as_ref(), renewal, &dns, now, &self.lifetimes)?;
            let replacement = self.secret(&certs, secret.metadata.resource_version.clone());
            match self
                .secrets
                .replace(&self.secret_name, &PostParams::default(), &replacement)
                .await
            {
                Ok(_) => {
                    info!(secret = %self.secret_name, ?renewal, "webhook certificate renewed");
                    return Ok(certs);
                }
                Err(kube::Error::Api(status)) if status.code == 409 => continue,
                Err(error) => return Err(error.into()),
            }
        }
        Err(CertError::Contended)
    }

    fn secret(&self, certs: &WebhookCerts, resource_version: Option<String>) -> Secret {
        Secret {
            metadata: ObjectMeta {
                name: Some(self.secret_name.clone()),
                namespace: Some(self.registration.namespace.clone()),
                resource_version,
                labels: Some(BTreeMap::from([
                    (LABEL_MANAGED_BY.to_string(), MANAGED_BY.to_string()),
                    (LABEL_COMPONENT.to_string(), "webhook".to_string()),
                ])),
                ..ObjectMeta::default()
            },
            type_: Some("kubernetes.io/tls".to_string()),
            data: Some(certs.secret_data()),
            ..Secret::default()
        }
    }

    /// Make every webhook of the configuration trust `bundle` (PEM). A JSON patch with a `test`
    /// of each webhook's name, so a concurrent edit of the list fails instead of patching the
    /// wrong entry.
    pub async fn sync_ca_bundle(&self, bundle: &str) -> Result<CaBundleSync, CertError> {
        let Some(configuration) = self.webhooks.get_opt(&self.configuration_name).await? else {
            return Ok(CaBundleSync::ConfigurationMissing);
        };
        let wanted = bundle.as_bytes();
        let mut operations = Vec::new();
        for (index, webhook) in configuration.webhooks.iter().flatten().enumerate() {
            if webhook
                .client_config
                .ca_bundle
                .as_ref()
                .map(|b| b.0.as_slice())
                == Some(wanted)
            {
                continue;
            }
            let index = index.to_string();
            operations.push(PatchOperation::Test(TestOperation {
                path: PointerBuf::from_tokens(["webhooks", index.as_str(), "name"]),
                value: serde_json::Value::String(webhook.name.clone()),
            }));
            operations.push(PatchOperation::Add(AddOperation {
                path: PointerBuf::from_tokens([
                    "webhooks",
                    index.as_str(),
                    "clientConfig",
                    "caBundle",
                ]),
                value: serde_json::to_value(bytes(bundle)).unwrap_or_default(),
            }));
        }
        if operations.is_empty() {
            return Ok(CaBundleSync::Unchanged);
        }
        self.webhooks
            .patch(
                &self.configuration_name,
                &PatchParams::default(),
                &Patch::<()>::Json(json_patch::Patch(operations)),
            )
            .await?;
        info!(configuration = %self.configuration_name, "webhook caBundle updated");
        Ok(CaBundleSync::Updated)
    }

    /// Make the conversion webhook of the CRD [`CertManager::conversion_crd`] trust `bundle`
    /// (PEM). A JSON patch that first tests the strategy is still `Webhook`, so a CRD edited in
    /// between is left alone. `ConfigurationMissing`: no such CRD, or it converts without a
    /// webhook service (the chart and `crds/manifests/` both declare one).
    pub async fn sync_conversion_ca_bundle(&self, bundle: &str) -> Result<CaBundleSync, CertError> {
        let Some(crd) = self.crds.get_opt(&self.conversion_crd).await? else {
            return Ok(CaBundleSync::ConfigurationMissing);
        };
        let Some(conversion) = crd
            .spec
            .conversion
            .as_ref()
            .filter(|c| c.strategy == "Webhook")
        else {
            return Ok(CaBundleSync::ConfigurationMissing);
        };
        let Some(client_config) = conversion
            .webhook
            .as_ref()
            .and_then(|w| w.client_config.as_ref())
        else {
            return Ok(CaBundleSync::ConfigurationMissing);
        };
        if client_config.ca_bundle.as_ref().map(|b| b.0.as_slice()) == Some(bundle.as_bytes()) {
            return Ok(CaBundleSync::Unchanged);
        }
        let operations = vec![
            PatchOperation::Test(TestOperation {
                path: PointerBuf::from_tokens(["spec", "conversion", "strategy"]),
                value: serde_json::Value::String("Webhook".to_string()),
            }),
            PatchOperation::Add(AddOperation {
                path: PointerBuf::from_tokens([
                    "spec",
                    "conversion",
                    "webhook",
                    "clientConfig",
                    "caBundle",
                ]),
                value: serde_json::to_value(bytes(bundle)).unwrap_or_default(),
            }),
        ];
        self.crds
            .patch(
                &self.conversion_crd,
                &PatchParams::default(),
                &Patch::<()>::Json(json_patch::Patch(operations)),
            )
            .await?;
        info!(crd = %self.conversion_crd, "conversion webhook caBundle updated");
        Ok(CaBundleSync::Updated)
    }

    /// Certificates for the first handshake: retried until they exist (the webhook cannot
    /// serve without them).
    pub async fn initial(&self) -> WebhookCerts {
        let mut delay = Duration::from_secs(1);
        loop {
            match self.ensure(OffsetDateTime::now_utc()).await {
                Ok(certs) => return certs,
                Err(error) => {
                    warn!(%error, retry_in = ?delay, "webhook certificate not ready");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(30));
                }
            }
        }
    }

    /// Every `interval`: renew when due, serve the newest certificate, publish the CA bundle.
    /// Failures are retried after a short delay; the current certificate keeps being served.
    pub async fn run(self, cert: Arc<ReloadableCert>, interval: Duration) {
        loop {
            let now = OffsetDateTime::now_utc();
            let pause = match self.refresh(&cert, now).await {
                Ok(()) => interval,
                Err(error) => {
                    warn!(%error, "webhook certificate maintenance failed; retrying");
                    Duration::from_secs(30).min(interval)
                }
            };
            tokio::time::sleep(pause).await;
        }
    }

    /// One round of [`CertManager::run`].
    pub async fn refresh(
        &self,
        cert: &ReloadableCert,
        now: OffsetDateTime,
    ) -> Result<(), CertError> {
        let certs = self.ensure(now).await?;
        if cert.replace(certs.serving())? {
            info!("webhook now serves the renewed certificate");
        }
        if self.sync_ca_bundle(&certs.ca_bundle(now)).await? == CaBundleSync::ConfigurationMissing {
            warn!(
                configuration = %self.configuration_name,
                "MutatingWebhookConfiguration not found: install it (Helm chart) so pods get injected"
            );
        }
        if self
            .sync_conversion_ca_bundle(&certs.ca_bundle(now))
            .await?
            == CaBundleSync::ConfigurationMissing
        {
            warn!(
                crd = %self.conversion_crd,
                "the SsoConfig CRD has no conversion webhook: install the CRDs of this version (Helm chart) so gatehouse.dev/v1alpha1 SsoConfigs can be read"
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("time")
    }

    fn dns() -> Vec<String> {
        dns_names("gatehouse-webhook", "gatehouse-system")
    }

    #[test]
    fn fresh_certificates_verify_for_every_service_name() {
        let lifetimes = Lifetimes::default();
        let certs = issue(None, Renewal::All, &dns(), now(), &lifetimes).expect("issued");
        for name in dns() {
            assert!(
                verifies(&certs.ca_cert, &certs.cert, &name, now()),
                "{name}"
            );
        }
        assert!(!verifies(
            &certs.ca_cert,
            &certs.cert,
            "other.gatehouse-system.svc",
            now()
        ));
        assert_eq!(
            renewal_needed(&certs, &dns(), now(), &lifetimes),
            Renewal::None
        );
        assert!(
            tls::certified_key(&certs.serving()).is_ok(),
            "serving pair matches"
        );
        assert_eq!(
            certs.ca_bundle(now()),
            format!("{}\n", certs.ca_cert.trim_end())
        );
    }

    #[test]
    fn serving_certificates_are_renewed_ninety_days_ahead_under_the_same_ca() {
        let lifetimes = Lifetimes::default();
        let certs = issue(None, Renewal::All, &dns(), now(), &lifetimes).expect("issued");
        let later = now() + time::Duration::days(365 - 89);
        assert_eq!(
            renewal_needed(&certs, &dns(), later, &lifetimes),
            Renewal::Serving
        );
        let renewed =
            issue(Some(&certs), Renewal::Serving, &dns(), later, &lifetimes).expect("renewed");
        assert_eq!(renewed.ca_cert, certs.ca_cert, "CA kept");
        assert_ne!(renewed.cert, certs.cert);
        assert_eq!(
            renewal_needed(&renewed, &dns(), later, &lifetimes),
            Renewal::None
        );
        // A Service renamed or moved needs new names.
        let moved = dns_names("gatehouse-webhook", "other");
        assert_eq!(
            renewal_needed(&renewed, &moved, later, &lifetimes),
            Renewal::Serving
        );
    }

    #[test]
    fn the_ca_is_replaced_a_year_ahead_and_the_old_one_stays_trusted() {
        let lifetimes = Lifetimes::default();
        let certs = issue(None, Renewal::All, &dns(), now(), &lifetimes).expect("issued");
        let late = now() + time::Duration::days(3650 - 300);
        assert_eq!(
            renewal_needed(&certs, &dns(), late, &lifetimes),
            Renewal::All
        );
        let rolled = issue(Some(&certs), Renewal::All, &dns(), late, &lifetimes).expect("rolled");
        assert_ne!(rolled.ca_cert, certs.ca_cert);
        assert_eq!(
            rolled.previous_ca_cert.as_deref(),
            Some(certs.ca_cert.as_str())
        );
        let bundle = rolled.ca_bundle(late);
        assert!(
            bundle.contains(rolled.ca_cert.trim_end()) && bundle.contains(certs.ca_cert.trim_end())
        );
        // Serving certificates never outlive their CA.
        assert!(not_after(&rolled.cert) <= not_after(&rolled.ca_cert));
        // Once the old CA has expired it leaves the bundle.
        let after = now() + time::Duration::days(3651);
        assert!(!rolled.ca_bundle(after).contains(certs.ca_cert.trim_end()));
    }

    #[test]
    fn unreadable_material_is_reissued() {
        let lifetimes = Lifetimes::default();
        let mut certs = issue(None, Renewal::All, &dns(), now(), &lifetimes).expect("issued");
        certs.key = "not a key".into();
        assert_eq!(
            renewal_needed(&certs, &dns(), now(), &lifetimes),
            Renewal::Serving
        );
        certs.ca_key = "not a key".into();
        assert_eq!(
            renewal_needed(&certs, &dns(), now(), &lifetimes),
            Renewal::All
        );
        // A CA key that is not the CA certificate's: a new CA.
        let good = issue(None, Renewal::All, &dns(), now(), &lifetimes).expect("issued");
        let other = issue(None, Renewal::All, &dns(), now(), &lifetimes).expect("issued");
        let mut mismatched = good.clone();
        mismatched.ca_key = other.ca_key.clone();
        assert_eq!(
            renewal_needed(&mismatched, &dns(), now(), &lifetimes),
            Renewal::All
        );
        // A serving certificate from another CA: a new serving certificate.
        let mut foreign = good.clone();
        foreign.cert = other.cert.clone();
        foreign.key = other.key.clone();
        assert_eq!(
            renewal_needed(&foreign, &dns(), now(), &lifetimes),
            Renewal::Serving,
            "leaf not from this CA"
        );
    }

    #[test]
    fn the_secret_round_trips_and_its_debug_output_hides_keys() {
        let certs =
            issue(None, Renewal::All, &dns(), now(), &Lifetimes::default()).expect("issued");
        let secret = Secret {
            data: Some(certs.secret_data()),
            ..Secret::default()
        };
        assert_eq!(WebhookCerts::from_secret(&secret), Some(certs.clone()));
        let debug = format!("{certs:?}");
        assert!(!debug.contains("PRIVATE KEY"), "{debug}");
    }
}
