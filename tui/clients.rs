//! [`Clients`]: the services a run talks to, wherever they run.

use logitflow_kit::client::ServiceClient;

/// Clients for the services a run needs.
#[derive(Debug, Clone)]
pub struct Clients {
    pub ingest: ServiceClient,
    pub preprocess: ServiceClient,
    pub features: ServiceClient,
    pub train: ServiceClient,
    pub evaluate: ServiceClient,
    pub serve: ServiceClient,
    /// Send the data files to ingest in the request (`PUT /v1/uploads`) instead of naming
    /// their paths: ingest runs elsewhere (`--connect`) and cannot read this machine's files.
    pub upload_data: bool,
}
