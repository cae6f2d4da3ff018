//! The control channel: the worker calls the server, never the reverse.

use std::time::Duration;

use isthmus_shared::api::ErrorBody;
use isthmus_shared::desired::{
    DesiredState, DesiredStateMessage, StatusReport, StatusReportMessage,
};
use isthmus_shared::worker_proto::{Heartbeat, HeartbeatAck, PROTOCOL_VERSION};

/// How long a desired-state long poll may take: the server holds it up to 25 s.
const LONG_POLL_TIMEOUT: Duration = Duration::from_secs(40);

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
    /// GW-3 / GW-10: the addresses devices reach this worker at, sent in every heartbeat.
    public_addresses: Vec<std::net::IpAddr>,
    /// Issue 16: where this worker receives its instances' failover heartbeats, and its zone.
    heartbeat_address: Option<std::net::SocketAddr>,
    zone: Option<String>,
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
            public_addresses: Vec::new(),
            heartbeat_address: None,
            zone: None,
        })
    }

    /// The public addresses this worker announces in its heartbeats (first one preferred).
    #[must_use]
    pub fn with_public_addresses(mut self, addresses: Vec<std::net::IpAddr>) -> Self {
        self.public_addresses = addresses;
        self
    }

    /// Issue 16: the heartbeat address (`None`: the worker gets no redundant instances) and the
    /// failure-domain label this worker states in its heartbeats.
    #[must_use]
    pub fn with_instances(
        mut self,
        heartbeat_address: Option<std::net::SocketAddr>,
        zone: Option<String>,
    ) -> Self {
        self.heartbeat_address = heartbeat_address;
        self.zone = zone;
        self
    }

    /// Renews this worker's lease.
    pub async fn heartbeat(&self, name: &str) -> Result<HeartbeatAck, ControlError> {
        let url = format!("{}/api/v1/worker/heartbeat", self.base);
        let body = Heartbeat {
            protocol: PROTOCOL_VERSION,
            name: name.to_owned(),
            version: isthmus_shared::VERSION.to_owned(),
            public_addresses: self.public_addresses.clone(),
            heartbeat_address: self.heartbeat_address,
            zone: self.zone.clone(),
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

    /// Long-polls the desired state: `Some` when the server's version differs from `since`,
    /// `None` when nothing changed within the server's wait (204).
    pub async fn desired(
        &self,
        name: &str,
        since: u64,
    ) -> Result<Option<DesiredState>, ControlError> {
        let url = format!("{}/api/v1/worker/desired", self.base);
        let resp = self
            .http
            .get(&url)
            .query(&[("name", name), ("since", &since.to_string())])
            .bearer_auth(&self.token)
            .timeout(LONG_POLL_TIMEOUT)
            .send()
            .await
            .map_err(|source| ControlError::Unreachable {
                url: url.clone(),
                source,
            })?;
        let resp = refuse_errors(resp).await?;
        if resp.status() == reqwest::StatusCode::NO_CONTENT {
            return Ok(None);
        }
        match resp
            .json::<DesiredStateMessage>()
            .await
            .map_err(ControlError::BadAnswer)?
        {
            DesiredStateMessage::V1(d) => Ok(Some(d)),
        }
    }

    /// Pushes the status of this worker's gateways.
    pub async fn status(&self, name: &str, report: StatusReport) -> Result<(), ControlError> {
        let url = format!("{}/api/v1/worker/status", self.base);
        let resp = self
            .http
            .post(&url)
            .query(&[("name", name)])
            .bearer_auth(&self.token)
            .json(&StatusReportMessage::V1(report))
            .send()
            .await
            .map_err(|source| ControlError::Unreachable {
                url: url.clone(),
                source,
            })?;
        refuse_errors(resp).await.map(|_| ())
    }
}

/// Turns a non-2xx answer into [`ControlError::Refused`] with the server's message.
async fn refuse_errors(resp: reqwest::Response) -> Result<reqwest::Response, ControlError> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let message = match resp.json::<ErrorBody>().await {
        Ok(e) => e.message,
        Err(_) => "no details".to_owned(),
    };
    Err(ControlError::Refused {
        status: status.as_u16(),
        message,
    })
}
