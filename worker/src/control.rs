//! The control channel: the worker calls the server, never the reverse.

use isthmus_shared::api::ErrorBody;
use isthmus_shared::worker_proto::{Heartbeat, HeartbeatAck, PROTOCOL_VERSION};

/// Why a call to the server failed.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("cannot reach the server at {url}: {source}")]
    Unreachable {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("the server refused the worker ({status}): {message}")]
    Refused { status: u16, message: String },
    #[error("the server answered with an unexpected body: {0}")]
    BadAnswer(#[source] reqwest::Error),
}

/// A client for the worker endpoints of one server.
#[derive(Debug, Clone)]
pub struct ControlClient {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl ControlClient {
    /// `server` is the server's base URL, e.g. `http://127.0.0.1:8080`.
    pub fn new(server: &str, token: String) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .build()?;
        Ok(Self {
            http,
            base: server.trim_end_matches('/').to_owned(),
            token,
        })
    }

    /// Renews this worker's lease.
    pub async fn heartbeat(&self, name: &str) -> Result<HeartbeatAck, ControlError> {
        let url = format!("{}/api/v1/worker/heartbeat", self.base);
        let body = Heartbeat {
            protocol: PROTOCOL_VERSION,
            name: name.to_owned(),
            version: isthmus_shared::VERSION.to_owned(),
        };
        let resp = self
            .http
            .post(&url)
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .map_err(|source| ControlError::Unreachable {
                url: url.clone(),
                source,
            })?;
        let status = resp.status();
        if !status.is_success() {
            let message = match resp.json::<ErrorBody>().await {
                Ok(e) => e.message,
                Err(_) => "no details".to_owned(),
            };
            return Err(ControlError::Refused {
                status: status.as_u16(),
                message,
            });
        }
        resp.json::<HeartbeatAck>()
            .await
            .map_err(ControlError::BadAnswer)
    }
}
