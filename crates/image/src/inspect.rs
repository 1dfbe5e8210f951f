//! `image inspect` data, with Docker's field names (Engine API `ImageInspect`).

use std::collections::BTreeMap;

use oci_spec::image::ImageConfiguration;
use serde::Serialize;

/// What `berth image inspect` prints (one element of the JSON array), shaped like Docker's
/// `ImageInspect` so scripts written for `docker inspect` keep working.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct ImageInspect {
    /// Image id, `sha256:<hex>` of the config.
    pub id: String,
    /// Tags in familiar form (`busybox:latest`).
    pub repo_tags: Vec<String>,
    /// Registry digests; always empty for loaded images.
    pub repo_digests: Vec<String>,
    /// Creation time from the config (RFC 3339), or load time if absent.
    pub created: String,
    /// Unpacked size in bytes (sum of regular-file sizes of all layers).
    pub size: u64,
    /// GOARCH of the image, e.g. `amd64`.
    pub architecture: String,
    /// GOOS of the image, e.g. `linux`.
    pub os: String,
    /// Execution defaults.
    pub config: InspectConfig,
    /// The layers.
    #[serde(rename = "RootFS")]
    pub root_fs: InspectRootFs,
}

/// The execution defaults of an image (the config's `config` object).
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct InspectConfig {
    /// `KEY=value` entries.
    pub env: Option<Vec<String>>,
    /// Default command.
    pub cmd: Option<Vec<String>>,
    /// Entrypoint.
    pub entrypoint: Option<Vec<String>>,
    /// Working directory ("" when unset, as Docker prints it).
    pub working_dir: String,
    /// User ("" when unset).
    pub user: String,
    /// `"80/tcp": {}` entries.
    pub exposed_ports: Option<BTreeMap<String, BTreeMap<String, String>>>,
    /// Labels.
    pub labels: Option<BTreeMap<String, String>>,
}

/// `RootFS` of inspect output.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct InspectRootFs {
    /// Always `layers`.
    #[serde(rename = "Type")]
    pub kind: String,
    /// diff_ids, base layer first.
    pub layers: Vec<String>,
}

impl ImageInspect {
    /// Builds the inspect view from stored facts and the parsed config.
    pub fn new(
        id: String,
        repo_tags: Vec<String>,
        created: String,
        size: u64,
        config: &ImageConfiguration,
    ) -> Self {
        let c = config.config().clone().unwrap_or_default();
        Self {
            id,
            repo_tags,
            repo_digests: Vec::new(),
            created,
            size,
            architecture: config.architecture().to_string(),
            os: config.os().to_string(),
            config: InspectConfig {
                env: c.env().clone(),
                cmd: c.cmd().clone(),
                entrypoint: c.entrypoint().clone(),
                working_dir: c.working_dir().clone().unwrap_or_default(),
                user: c.user().clone().unwrap_or_default(),
                exposed_ports: c
                    .exposed_ports()
                    .as_ref()
                    .map(|ports| ports.iter().map(|p| (p.clone(), BTreeMap::new())).collect()),
                labels: c.labels().as_ref().map(|l| l.clone().into_iter().collect()),
            },
            root_fs: InspectRootFs {
                kind: "layers".into(),
                layers: config.rootfs().diff_ids().clone(),
            },
        }
    }
}
