//! `--connect FILE`: services that someone else started, named by URL in a TOML file —
//! [`Connection`] — instead of children the console starts.
//!
//! ```toml
//! [services]
//! ingest = "http://10.0.0.2:8080"
//! preprocess = "http://10.0.0.3:8080"
//! # … and features, train, evaluate, serve (advisor and batch when the dashboard uses them)
//! ```
//!
//! The token is `LOGITFLOW_TOKEN`, as for the services themselves. The pipeline driver talks
//! to services by URL either way: [`Connection::clients`] makes the same
//! [`crate::pipeline::Clients`] that the supervisor's children give, with the data sent to
//! ingest in the request (it may run on another machine) rather than named by path.

use crate::pipeline::Clients;
use crate::supervisor::ServiceName;
use anyhow::{Context, bail};
use logitflow_kit::client::ServiceClient;
use std::collections::BTreeMap;
use std::path::Path;

/// The services named in a connection file.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Connection {
    /// Service name → its base URL.
    services: BTreeMap<String, String>,
}

/// A connection file is a few lines; anything larger is not one.
const MAX_CONNECTION_BYTES: u64 = 64 << 10;

impl Connection {
    /// Reads and checks a connection file: every name one of the eight services, every URL
    /// an http(s) URL.
    pub fn load(path: &Path) -> anyhow::Result<Connection> {
        let size = std::fs::metadata(path).with_context(|| format!("the connection file {} cannot be read", path.display()))?.len();
        if size > MAX_CONNECTION_BYTES {
            bail!("{} is {size} bytes: not a connection file", path.display());
        }
        let text = std::fs::read_to_string(path).with_context(|| format!("the connection file {} cannot be read", path.display()))?;
        Connection::parse(&text).with_context(|| format!("in {}", path.display()))
    }

    pub fn parse(text: &str) -> anyhow::Result<Connection> {
        let connection: Connection = toml::from_str(text).map_err(|e| anyhow::anyhow!("{}", e.to_string().trim_end()))?;
        for (name, url) in &connection.services {
            if !ServiceName::ALL.iter().any(|s| s.as_str() == name) {
                let known: Vec<&str> = ServiceName::ALL.iter().map(|s| s.as_str()).collect();
                bail!("[services] {name}: not a service (they are {})", known.join(", "));
            }
            let rest = url.strip_prefix("http://").or_else(|| url.strip_prefix("https://"));
            if rest.is_none_or(|rest| rest.is_empty() || rest.contains(char::is_whitespace)) {
                bail!("[services] {name} = {url:?}: not an http:// or https:// URL");
            }
        }
        Ok(connection)
    }

    /// The URL of a service, without a trailing `/`.
    pub fn url(&self, name: ServiceName) -> Option<&str> {
        self.services.get(name.as_str()).map(|u| u.trim_end_matches('/'))
    }

    /// Clients for a pipeline run, which needs ingest, preprocess, features, train, evaluate
    /// and serve; the data is uploaded to ingest.
    pub fn clients(&self, token: Option<String>) -> anyhow::Result<Clients> {
        let client = |name: ServiceName| -> anyhow::Result<ServiceClient> {
            let url = self.url(name).with_context(|| format!("the connection file names no {name} ([services] {name} = \"http://…\")"))?;
            Ok(ServiceClient::new(name.as_str(), url, token.clone()))
        };
        Ok(Clients {
            ingest: client(ServiceName::Ingest)?,
            preprocess: client(ServiceName::Preprocess)?,
            features: client(ServiceName::Features)?,
            train: client(ServiceName::Train)?,
            evaluate: client(ServiceName::Evaluate)?,
            serve: client(ServiceName::Serve)?,
            upload_data: true,
        })
    }
}

/// Asks every service of `clients` for its `/v1/info`, which needs the token: a service that
/// cannot be reached or refuses the token is named before any data is sent.
pub async fn check_reachable(clients: &Clients) -> anyhow::Result<()> {
    let all = [&clients.ingest, &clients.preprocess, &clients.features, &clients.train, &clients.evaluate, &clients.serve];
    let answers = futures::future::join_all(all.iter().map(|client| client.get::<serde_json::Value>("/v1/info"))).await;
    for (client, answer) in all.iter().zip(answers) {
        answer.with_context(|| format!("the service at {} cannot be used", client.base()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_file_names_services_by_url_and_mistakes_are_named() {
        let connection =
            Connection::parse("[services]\ningest = \"http://10.0.0.2:8080/\"\nserve = \"https://serve.example\"\n").expect("valid");
        assert_eq!(connection.url(ServiceName::Ingest), Some("http://10.0.0.2:8080"));
        assert_eq!(connection.url(ServiceName::Train), None);
        let missing = connection.clients(None).expect_err("no preprocess").to_string();
        assert!(missing.contains("names no preprocess"), "{missing}");
        for (text, says) in [
            ("[services]\ningets = \"http://x\"\n", "ingets: not a service"),
            ("[services]\ningest = \"10.0.0.2:8080\"\n", "not an http:// or https:// URL"),
            ("[service]\ningest = \"http://x\"\n", "unknown field"),
            ("[services]\ningest = 8080\n", "invalid type"),
            ("[services\n", "unclosed table"),
        ] {
            let error = format!("{:#}", Connection::parse(text).expect_err(text));
            assert!(error.contains(says), "{text:?}: {error}");
        }
    }
}
