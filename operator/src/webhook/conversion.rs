//! The CRD conversion webhook of SsoConfig: one `apiextensions.k8s.io/v1` ConversionReview in,
//! every object converted by [`gatehouse_crds::conversion::convert`] out. Pure; the server in
//! [`super`] reads the body and writes the answer.
//!
//! The API server calls it to read or write an SsoConfig in a version other than the stored one
//! (`v1alpha1` clients, and objects stored as `v1alpha1` before the upgrade), so it must answer
//! without the SsoConfig cache: it never waits for it.

use gatehouse_crds::conversion;
use kube::core::Status;
use kube::core::conversion::{ConversionRequest, ConversionResponse, ConversionReview};

/// The answer to the ConversionReview `body`. A body that is not a ConversionReview request is
/// answered with a failed result saying so (the API server then reports it to its client).
pub fn review(body: &[u8]) -> ConversionReview {
    let request = serde_json::from_slice::<ConversionReview>(body)
        .map_err(|e| format!("not a ConversionReview: {e}"))
        .and_then(|review| {
            ConversionRequest::from_review(review)
                .map_err(|_| "the ConversionReview has no request".to_owned())
        });
    match request {
        Ok(request) => answer(request).into_review(),
        Err(message) => {
            ConversionResponse::invalid(Status::failure(&message, "BadRequest")).into_review()
        }
    }
}

/// Every object of `request` in its desired version, in order; the first that cannot be converted
/// fails the whole request, naming the object.
pub fn answer(request: ConversionRequest) -> ConversionResponse {
    let desired = request.desired_api_version.clone();
    if desired != conversion::V1ALPHA1 && desired != conversion::V1ALPHA2 {
        let message = format!(
            "cannot convert SsoConfigs to {desired:?}: this operator serves {} and {}",
            conversion::V1ALPHA1,
            conversion::V1ALPHA2
        );
        return ConversionResponse::for_request(request)
            .failure(Status::failure(&message, "UnsupportedVersion"));
    }
    let mut converted = Vec::with_capacity(request.objects.len());
    for object in &request.objects {
        match conversion::convert(object.clone(), &desired) {
            Ok(object) => converted.push(object),
            Err(error) => {
                let name = object
                    .pointer("/metadata/name")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or("<unnamed>");
                let namespace = object
                    .pointer("/metadata/namespace")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or_default();
                let message = format!("SsoConfig {namespace}/{name}: {error}");
                return ConversionResponse::for_request(request)
                    .failure(Status::failure(&message, "ConversionFailed"));
            }
        }
    }
    ConversionResponse::for_request(request).success(converted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn request(desired: &str, objects: Vec<Value>) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview",
            "request": {"uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
                        "desiredAPIVersion": desired, "objects": objects}
        }))
        .expect("json")
    }

    fn old(name: &str) -> Value {
        json!({"apiVersion": "gatehouse.dev/v1alpha1", "kind": "SsoConfig",
               "metadata": {"name": name, "namespace": "team-a"},
               "spec": {"protocol": "oidc", "publicUrl": "https://a.example",
                        "providers": {"oidc": {"id": "auth0", "displayName": "Auth0",
                            "issuer": "https://a.auth0.com/", "orgId": "a", "roleClaim": "groups",
                            "defaultRole": "member", "clientSecretRef": {"name": "s"}}}}})
    }

    #[test]
    fn every_object_is_converted_in_order_under_the_requests_uid() {
        let answer = serde_json::to_value(review(&request(
            "gatehouse.dev/v1alpha2",
            vec![old("a"), old("b")],
        )))
        .expect("json");
        assert_eq!(answer["apiVersion"], "apiextensions.k8s.io/v1");
        assert_eq!(answer["kind"], "ConversionReview");
        let response = &answer["response"];
        assert_eq!(response["uid"], "705ab4f5-6393-11e8-b7cc-42010a800002");
        assert_eq!(response["result"]["status"], "Success");
        let objects = response["convertedObjects"].as_array().expect("objects");
        assert_eq!(objects.len(), 2);
        assert_eq!(objects[0]["metadata"]["name"], "a");
        assert_eq!(objects[1]["metadata"]["name"], "b");
        assert_eq!(objects[0]["apiVersion"], "gatehouse.dev/v1alpha2");
        assert_eq!(objects[0]["spec"]["providers"]["oidc"][0]["id"], "auth0");
    }

    #[test]
    fn unsupported_versions_and_garbage_fail_with_a_reason() {
        let answer = serde_json::to_value(review(&request("gatehouse.dev/v2", vec![old("a")])))
            .expect("json");
        let result = &answer["response"]["result"];
        assert_eq!(result["status"], "Failure");
        assert!(
            result["message"]
                .as_str()
                .is_some_and(|m| m.contains("\"gatehouse.dev/v2\"")),
            "{result}"
        );
        assert_eq!(
            answer["response"]["uid"],
            "705ab4f5-6393-11e8-b7cc-42010a800002"
        );

        let mut foreign = old("x");
        foreign["apiVersion"] = json!("example.com/v1");
        let answer = serde_json::to_value(review(&request(
            "gatehouse.dev/v1alpha2",
            vec![old("a"), foreign],
        )))
        .expect("json");
        let message = answer["response"]["result"]["message"]
            .as_str()
            .unwrap_or_default();
        assert!(
            message.starts_with(
                "SsoConfig team-a/x: cannot convert from apiVersion \"example.com/v1\""
            ),
            "{message}"
        );

        let answer = serde_json::to_value(review(b"{not json")).expect("json");
        assert_eq!(answer["response"]["result"]["status"], "Failure");
        assert!(
            answer["response"]["result"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("not a ConversionReview")),
            "{answer}"
        );
    }
}
