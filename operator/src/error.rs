//! Errors of the operator's controllers.

/// Why a reconcile did not finish. Messages name objects and fields, never secret values.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The spec is invalid; nothing changes until the user edits it.
    #[error("invalid spec: {0}")]
    InvalidSpec(String),
    /// A referenced Secret or key is missing or malformed; retried with backoff (and at once when
    /// the Secret changes).
    #[error("referenced Secrets unresolved: {0}")]
    SecretsUnresolved(String),
    /// A Kubernetes API call failed; retried with backoff.
    #[error("{action}: {source}")]
    Kube {
        action: String,
        #[source]
        source: kube::Error,
    },
    /// The object lacks a field the API server always sets (name, namespace, uid).
    #[error("object has no {0}")]
    MissingObjectKey(&'static str),
    /// The controller lost its leader lease; the process stops so another replica takes over.
    #[error("lost the leader lease {0}")]
    LeadershipLost(String),
    /// A key the operator generates could not be made; retried with backoff.
    #[error("generating {0}")]
    KeyGeneration(String),
}

impl Error {
    /// Stable, low-cardinality label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::InvalidSpec(_) => "invalid_spec",
            Error::SecretsUnresolved(_) => "secrets_unresolved",
            Error::Kube { .. } => "kube_api",
            Error::MissingObjectKey(_) => "missing_object_key",
            Error::LeadershipLost(_) => "leadership_lost",
            Error::KeyGeneration(_) => "key_generation",
        }
    }

    /// Whether retrying without a change to the object can help.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Error::SecretsUnresolved(_) | Error::Kube { .. } | Error::KeyGeneration(_)
        )
    }

    /// Wrap a failed API call with what was being done.
    pub fn kube(action: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
        let action = action.into();
        move |source| Error::Kube { action, source }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_specs_wait_and_api_errors_retry() {
        assert!(!Error::InvalidSpec("x".into()).is_transient());
        assert!(Error::SecretsUnresolved("x".into()).is_transient());
        let api = Error::kube("applying Secret a")(kube::Error::LinesCodecMaxLineLengthExceeded);
        assert!(api.is_transient());
        assert_eq!(api.metric_label(), "kube_api");
        assert!(api.to_string().starts_with("applying Secret a: "));
    }
}
