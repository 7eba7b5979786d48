//! One cache node for the run, configured as the service nodes are.

use tiercache::Cache;
use tiercache_widgets::WidgetConfig;

use crate::cli::Global;
use crate::error::CliError;
use crate::exit::Exit;

/// A connected node of the namespace, and its Redis URL with the password masked (for messages).
pub struct Connected {
    /// The node.
    pub cache: Cache,
    /// The configuration it was built from, with the widget layer's tiers and targets.
    pub config: WidgetConfig,
    /// Where it is connected, fit to print.
    pub url: String,
    /// The URL's password, to mask wherever an error repeats it.
    password: Option<String>,
}

impl Connected {
    /// A cache error of this connection, told apart (Redis out of reach names the URL).
    pub fn error(&self, e: tiercache::Error) -> CliError {
        CliError::from_cache(e, &self.url, self.password.as_deref())
    }

    /// Ends a command that wrote through the node: sends what the node still queues (a cleanup's
    /// "drop L1" message, a warm-up's writes held back while Redis blinked) before the process
    /// exits. Work it could not send turns a successful command into an error naming it.
    pub async fn finish(self, outcome: Result<Exit, CliError>) -> Result<Exit, CliError> {
        match self.cache.shutdown().await {
            Ok(_) => outcome,
            Err(e) => {
                let e = self.error(e);
                match outcome {
                    Ok(_) => Err(e),
                    Err(first) => {
                        eprintln!("tiercache: {e}");
                        Err(first)
                    }
                }
            }
        }
    }
}

/// The password of a `scheme://[user]:password@host` URL.
fn password(url: &str) -> Option<String> {
    let (_, rest) = url.split_once("://")?;
    let (credentials, _) = rest.rsplit_once('@')?;
    credentials.split_once(':').map(|(_, p)| p.to_owned())
}

/// The configuration: the environment as the service nodes read it (`WidgetConfig::from_env`), then
/// the flags over it.
pub fn config(global: &Global) -> Result<WidgetConfig, CliError> {
    let mut config = WidgetConfig::from_env()?;
    if let Some(url) = &global.redis_url {
        url.clone_into(&mut config.cache.redis_url);
    }
    global.namespace.clone_into(&mut config.cache.namespace);
    config.validate()?;
    Ok(config)
}

/// Builds the node; an unreachable Redis is [`CliError::Unreachable`] naming the URL.
pub async fn connect(global: &Global) -> Result<Connected, CliError> {
    let config = config(global)?;
    let url = config.cache.display_url();
    let password = password(&config.cache.redis_url);
    let cache = Cache::builder()
        .config(config.cache.clone())
        .build()
        .await
        .map_err(|e| CliError::from_cache(e, &url, password.as_deref()))?;
    // Building may succeed before Redis answers a command (a node can start on L1 alone): ask it.
    let connected = Connected {
        cache,
        config,
        url,
        password,
    };
    connected
        .cache
        .admin()
        .server_info()
        .await
        .map_err(|e| connected.error(e))?;
    Ok(connected)
}
