//! Shared by the webhook test files: the golden cases, the SsoConfig cache they run against, and
//! the operator defaults they are rendered with.
#![allow(dead_code)]

use std::path::PathBuf;

use gatehouse_crds::SsoConfig;
use gatehouse_operator::inject::SidecarDefaults;
use kube::core::DeserializeGuard;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher;

/// Set to regenerate the expected files: `GATEHOUSE_UPDATE_GOLDEN=1 cargo test -p
/// gatehouse-operator --test webhook_golden`.
pub const UPDATE_ENV: &str = "GATEHOUSE_UPDATE_GOLDEN";

pub fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/inject_golden")
}

/// Case names: every `<case>.request.json`, sorted.
pub fn cases() -> Vec<String> {
    let mut cases: Vec<String> = std::fs::read_dir(golden_dir())
        .expect("tests/inject_golden exists")
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().into_string().ok()?;
            name.strip_suffix(".request.json").map(str::to_string)
        })
        .collect();
    cases.sort();
    assert!(!cases.is_empty(), "no golden requests found");
    cases
}

pub fn request(case: &str) -> Vec<u8> {
    std::fs::read(golden_dir().join(format!("{case}.request.json"))).expect("request file")
}

/// Injected pods written by the golden test, as `(case, pod JSON)`.
pub fn injected_pods() -> Vec<(String, serde_json::Value)> {
    cases()
        .into_iter()
        .filter_map(|case| {
            let path = golden_dir().join(format!("{case}.pod.json"));
            let text = std::fs::read_to_string(path).ok()?;
            Some((case, serde_json::from_str(&text).expect("pod file is JSON")))
        })
        .collect()
}

pub fn configs() -> Vec<SsoConfig> {
    let text = std::fs::read_to_string(golden_dir().join("configs.yaml")).expect("configs.yaml");
    serde_saphyr::from_multiple(&text).expect("configs.yaml holds SsoConfigs")
}

/// A reflector store that has completed its first list, holding `configs`.
pub fn store(configs: Vec<SsoConfig>) -> (Store<SsoConfig>, reflector::store::Writer<SsoConfig>) {
    let (store, mut writer) = reflector::store::<SsoConfig>();
    writer.apply_watcher_event(&watcher::Event::Init);
    for config in configs {
        writer.apply_watcher_event(&watcher::Event::InitApply(config));
    }
    writer.apply_watcher_event(&watcher::Event::InitDone);
    (store, writer)
}

/// [`store`] as the webhook keeps it: every object behind a [`DeserializeGuard`].
pub fn guarded_store(
    configs: Vec<SsoConfig>,
) -> (
    Store<DeserializeGuard<SsoConfig>>,
    reflector::store::Writer<DeserializeGuard<SsoConfig>>,
) {
    let (store, mut writer) = reflector::store::<DeserializeGuard<SsoConfig>>();
    writer.apply_watcher_event(&watcher::Event::Init);
    for config in configs {
        writer.apply_watcher_event(&watcher::Event::InitApply(DeserializeGuard(Ok(config))));
    }
    writer.apply_watcher_event(&watcher::Event::InitDone);
    (store, writer)
}

/// Operator defaults of the golden files; a fixed version so releases do not churn them.
/// Cases named `legacy-*` run as on a cluster without native sidecars.
pub fn defaults(case: &str) -> SidecarDefaults {
    SidecarDefaults {
        version: "0.0.0-golden".to_string(),
        native_sidecars: !case.starts_with("legacy-"),
        ..SidecarDefaults::default()
    }
}
