use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The command line of one service, shared by each service's own binary and
/// `logitflow service <name>`. The token is read from the environment only.
#[derive(Debug, Clone, clap::Args)]
pub struct ServiceArgs {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, env = "LOGITFLOW_LISTEN", default_value = crate::DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// The home directory: the service's own files (ingest's database), and the artifact
    /// store and registry unless --store names another.
    #[arg(long, env = "LOGITFLOW_HOME")]
    pub home: Option<PathBuf>,
    /// Where the artifacts and the registry are: file:///path, or s3://bucket/prefix (with
    /// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ENDPOINT_URL). Default: the
    /// home.
    #[arg(long, env = crate::STORE_ENV)]
    pub store: Option<String>,
    /// Serve HTTPS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, env = "LOGITFLOW_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, env = "LOGITFLOW_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

/// Everything a service needs to know, resolved from arguments and environment.
#[derive(Debug, Clone)]
pub struct Config {
    pub home: PathBuf,
    /// The store's URI (`--store`); `None`: the store is in the home.
    pub store: Option<String>,
    /// The certificate chain and key to serve HTTPS with (`--tls-cert`, `--tls-key`).
    pub tls: Option<(PathBuf, PathBuf)>,
    /// When set, every non-health route requires `Authorization: Bearer <token>`.
    pub token: Option<String>,
    /// Directories file sources may be read from (canonical paths).
    pub allowed_roots: Vec<PathBuf>,
    /// Where serve listens (for advisor and batch).
    pub serve_url: Option<String>,
    /// The largest request body accepted, in bytes.
    pub body_limit: usize,
    /// Routes (by path prefix) that take larger bodies than `body_limit`, with their limit:
    /// ingest's CSV uploads, which it streams to disk and never holds.
    pub large_body_routes: Vec<(&'static str, u64)>,
    /// How long a request may take in all, body included, before it is answered 408: a
    /// client trickling its body is cut off here.
    pub request_timeout: Duration,
    /// How long a request body may go without a byte arriving (idle time between chunks).
    pub body_timeout: Duration,
    /// How long a client may take to send a request's headers.
    pub header_timeout: Duration,
}

/// The default home: `$LOGITFLOW_HOME`, else `$XDG_DATA_HOME/logitflow`, else
/// `~/.local/share/logitflow`.
pub fn default_home() -> PathBuf {
    if let Some(home) = std::env::var_os("LOGITFLOW_HOME") {
        return PathBuf::from(home);
    }
    if let Some(data) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(data).join("logitflow");
    }
    std::env::var_os("HOME").map_or_else(
        || PathBuf::from(".logitflow"),
        |h| PathBuf::from(h).join(".local/share/logitflow"),
    )
}

impl Config {
    /// Resolves the configuration from the arguments and the environment.
    pub fn from_env(args: &ServiceArgs) -> Config {
        let home = args.home.clone().unwrap_or_else(default_home);
        let token = token_from_env();
        let mut allowed_roots: Vec<PathBuf> = std::env::var_os(crate::ALLOWED_ROOTS_ENV)
            .map(|roots| std::env::split_paths(&roots).collect())
            .unwrap_or_else(|| std::env::current_dir().into_iter().collect());
        allowed_roots.retain(|p| !p.as_os_str().is_empty());
        let allowed_roots =
            allowed_roots.into_iter().filter_map(|p| p.canonicalize().ok()).collect();
        let mut config = Config::with_default_limits(
            home,
            token,
            allowed_roots,
            std::env::var(crate::SERVE_URL_ENV).ok(),
        );
        config.store = args.store.clone().filter(|s| !s.trim().is_empty());
        config.tls = args.tls_cert.clone().zip(args.tls_key.clone());
        config
    }

    /// Opens the artifact store (and through it the registry) this configuration names.
    pub fn open_store(&self) -> Result<logitflow_store::Store, logitflow_store::StoreError> {
        logitflow_objects::open_store(self.store.as_deref(), &self.home)
    }

    /// The body limit and the timeouts every service starts with (a service may change them).
    fn with_default_limits(
        home: PathBuf,
        token: Option<String>,
        allowed_roots: Vec<PathBuf>,
        serve_url: Option<String>,
    ) -> Config {
        Config {
            home,
            store: None,
            tls: None,
            token,
            allowed_roots,
            serve_url,
            body_limit: 1 << 20,
            large_body_routes: Vec::new(),
            request_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(10),
            header_timeout: Duration::from_secs(10),
        }
    }

    /// A client for serve, when its address is configured (the apps call serve).
    pub fn serve_client(&self) -> Option<crate::client::ServiceClient> {
        self.serve_url
            .as_ref()
            .map(|url| crate::client::ServiceClient::new("serve", url.clone(), self.token.clone()))
    }

    /// A configuration for tests: no token, everything under `home` allowed.
    pub fn for_home(home: impl Into<PathBuf>) -> Config {
        let home = home.into();
        let allowed_roots = home.canonicalize().into_iter().collect();
        Config::with_default_limits(home, None, allowed_roots, None)
    }
}

/// The bearer token from `LOGITFLOW_TOKEN` (never from argv); an empty one is none.
pub fn token_from_env() -> Option<String> {
    std::env::var(crate::TOKEN_ENV).ok().filter(|t| !t.is_empty())
}

/// The shortest token a service accepts off loopback. A short secret is found by guessing: a
/// one-character one in about sixty tries. The console's own tokens are 64 hex digits.
pub(crate) const MIN_TOKEN_CHARS: usize = 32;

/// Refuses an address off loopback when there is no token, or one shorter than
/// [`MIN_TOKEN_CHARS`]: a service reachable from other machines must not answer anyone who asks
/// or guesses.
pub fn check_exposure(addr: SocketAddr, token: Option<&str>) -> std::io::Result<()> {
    let refuse = |why: String| Err(std::io::Error::new(std::io::ErrorKind::PermissionDenied, why));
    if addr.ip().is_loopback() {
        return Ok(());
    }
    match token.filter(|t| !t.is_empty()) {
        None => refuse(format!(
            "refusing to listen on {addr} without a token: off loopback every request must carry one; set {}",
            crate::TOKEN_ENV
        )),
        Some(t) if t.chars().count() < MIN_TOKEN_CHARS => refuse(format!(
            "refusing to listen on {addr} with a {}-character token: off loopback {} must hold at least {MIN_TOKEN_CHARS} (e.g. `openssl rand -hex 32`)",
            t.chars().count(),
            crate::TOKEN_ENV
        )),
        Some(_) => Ok(()),
    }
}

/// The command line of a service's own binary.
#[derive(Debug, clap::Parser)]
#[command(about = "One logitflow service, in the foreground")]
pub struct ServiceCli {
    #[command(flatten)]
    pub args: ServiceArgs,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_loopback_a_service_needs_a_token() {
        let open: SocketAddr = "0.0.0.0:8080".parse().expect("addr");
        let refused = check_exposure(open, None).expect_err("no token").to_string();
        assert!(
            refused.contains("0.0.0.0:8080") && refused.contains("LOGITFLOW_TOKEN"),
            "{refused}"
        );
        assert!(check_exposure(open, Some("")).is_err(), "an empty token is none");
        let long = "k".repeat(MIN_TOKEN_CHARS);
        assert!(check_exposure(open, Some(&long)).is_ok());
        assert!(check_exposure("10.1.2.3:80".parse().expect("addr"), None).is_err());
        assert!(check_exposure("127.0.0.1:0".parse().expect("addr"), None).is_ok());
        assert!(
            check_exposure("127.0.0.1:0".parse().expect("addr"), Some("a")).is_ok(),
            "loopback takes any token"
        );
    }

    /// Off loopback a token a few dozen guesses find is refused, naming the rule.
    #[test]
    fn off_loopback_a_short_token_is_refused() {
        let open: SocketAddr = "0.0.0.0:8080".parse().expect("addr");
        for short in ["a", "s3cret", &"k".repeat(MIN_TOKEN_CHARS - 1)] {
            let refused = check_exposure(open, Some(short)).expect_err("a short token").to_string();
            assert!(
                refused.contains("at least 32") && refused.contains("LOGITFLOW_TOKEN"),
                "{short}: {refused}"
            );
        }
        assert!(check_exposure("[::1]:0".parse().expect("addr"), None).is_ok());
    }
}
