//! sea-orm entities.

pub mod worker_token {
    use sea_orm::entity::prelude::*;

    /// A bearer token a worker enrols with; only its SHA-256 is stored.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "worker_tokens")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        #[sea_orm(unique)]
        pub name: String,
        #[sea_orm(unique)]
        pub token_sha256: String,
        pub created_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod worker {
    use sea_orm::entity::prelude::*;

    /// A worker and its lease: connected while `lease_expires_at` is in the future.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "workers")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub token_id: i64,
        pub name: String,
        pub version: String,
        /// Unix milliseconds.
        pub last_seen_at: i64,
        /// Unix milliseconds.
        pub lease_expires_at: i64,
        /// GW-3: the addresses devices reach this worker at, a JSON array of IP addresses
        /// (first preferred), as its last heartbeat stated them; `NULL` from older workers.
        #[sea_orm(column_type = "Text", nullable)]
        pub public_addresses: Option<String>,
        /// Issue 16: where the worker receives failover heartbeats (`host:port`), as its last
        /// heartbeat stated it; `NULL`: it takes no instance of a redundant gateway.
        pub heartbeat_address: Option<String>,
        /// Issue 16: the worker's failure-domain label (`isthmus-worker --zone`).
        pub zone: Option<String>,
        /// Issue 16: an administrator drained the worker: no new instances, handovers.
        pub draining: bool,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod user {
    use sea_orm::entity::prelude::*;

    /// A person; `password_hash` is an argon2 PHC string.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "users")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        #[sea_orm(unique)]
        pub username: String,
        pub password_hash: String,
        pub is_admin: bool,
        pub created_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod session {
    use sea_orm::entity::prelude::*;

    /// A portal session; the cookie holds the token, the row its SHA-256.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "sessions")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub token_sha256: String,
        pub user_id: i64,
        pub created_at: i64,
        pub expires_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod api_token {
    use sea_orm::entity::prelude::*;

    /// A token for scripts, acting as its user; only its SHA-256 is stored.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "api_tokens")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub user_id: i64,
        pub name: String,
        #[sea_orm(unique)]
        pub token_sha256: String,
        pub created_at: i64,
        /// What the token may do, comma-separated (`api`, `metrics`); `NULL` (tokens from
        /// before scopes) means `api`.
        pub scopes: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod tenant {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "tenants")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        #[sea_orm(unique)]
        pub name: String,
        pub created_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod membership {
    use sea_orm::entity::prelude::*;

    /// A user's role in a tenant: `owner` or `reader`.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "memberships")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: i64,
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: i64,
        pub role: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod login_failure {
    use sea_orm::entity::prelude::*;

    /// Failed logins per user name, to slow down guessing (shared by all replicas).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "login_failures")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub username: String,
        pub failures: i32,
        pub last_failure_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod audit {
    use sea_orm::entity::prelude::*;

    /// One change or secret read: who, when, what.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "audit_log")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub at: i64,
        pub actor: String,
        pub action: String,
        pub tenant: Option<String>,
        pub target: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod resource {
    use sea_orm::entity::prelude::*;

    /// One resource of the topology as a JSON document of `isthmus-shared`'s model.
    /// Secrets (shared keys, gateway private keys) are never in `body`: only in `sealed`.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "resources")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub kind: String,
        pub tenant: String,
        pub name: String,
        #[sea_orm(column_type = "Text")]
        pub body: String,
        #[sea_orm(column_type = "Text", nullable)]
        pub sealed: Option<String>,
        pub created_at: i64,
        pub updated_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod meta {
    use sea_orm::entity::prelude::*;

    /// Counters shared by all replicas: `topology_version` (bumped by every write, which also
    /// serialises writers) and `next_port` (public endpoint allocation, GW-3).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "meta")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub key: String,
        pub value: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod placement {
    use sea_orm::entity::prelude::*;

    /// Which worker runs a gateway.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "placements")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub gateway: String,
        pub worker: String,
        /// Set by an administrator: never moved automatically.
        pub pinned: bool,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod connection_status {
    use sea_orm::entity::prelude::*;

    /// The last status a worker reported for one connection or client.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "connection_status")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub gateway: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub connection: String,
        pub worker: String,
        pub last_handshake_unix: Option<i64>,
        pub rx_bytes: i64,
        pub tx_bytes: i64,
        pub endpoint: Option<String>,
        pub updated_at: i64,
        /// The tunnel state the worker decided (`up`, `connecting`, `down`, `idle`); `NULL` in
        /// rows from older workers.
        pub state: Option<String>,
        /// Unix seconds since when the tunnel is in `state`.
        pub since_unix: Option<i64>,
        /// Why it is `down` or `connecting` (`no_answer`, `key_mismatch`, ...).
        pub reason: Option<String>,
        /// Issue 17: the IPsec status (`IpsecStatus` as JSON) of an IPsec connection.
        pub ipsec: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod region_pair_bytes {
    use sea_orm::entity::prelude::*;

    /// LIM-6: the outer bytes one worker carried per region pair. `rx_bytes`/`tx_bytes` are the
    /// worker's cumulative counts of its current run, replaced by each report; when a report
    /// is lower than the stored value the worker restarted, and the stored run moves into
    /// `earlier_*` first. The worker's total is `earlier_* + *`.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "region_pair_bytes")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub worker: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub region_a: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub region_b: String,
        pub rx_bytes: i64,
        pub tx_bytes: i64,
        pub earlier_rx_bytes: i64,
        pub earlier_tx_bytes: i64,
        pub updated_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod p2s_challenge {
    use sea_orm::entity::prelude::*;

    /// A point-to-site enrolment challenge: single use, short-lived. Only the nonce's SHA-256
    /// is stored.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "p2s_challenges")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        #[sea_orm(unique)]
        pub nonce_sha256: String,
        pub tenant: String,
        pub gateway: String,
        pub expires_at: i64,
        /// The client address that asked for it (IPv6: its /64), for the per-client limit.
        pub client: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod gateway_status {
    use sea_orm::entity::prelude::*;

    /// What a worker last reported for a gateway as a whole: the routes its host refused.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "gateway_status")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub gateway: String,
        pub worker: String,
        /// A JSON array of `isthmus_shared::desired::RouteConflict`.
        #[sea_orm(column_type = "Text")]
        pub route_conflicts: String,
        /// Unix milliseconds.
        pub updated_at: i64,
        /// A JSON `isthmus_shared::desired::GatewayDrops`: the gateway's drop counters on
        /// `worker` (absent from older workers).
        #[sea_orm(column_type = "Text", nullable)]
        pub drops: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod login_throttle {
    use sea_orm::entity::prelude::*;

    /// Login attempts per (user name, client address), reserved before the password is
    /// checked, so parallel guesses cannot overtake the count (shared by all replicas).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "login_throttle")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub username: String,
        /// The client address (IPv6: its /64), or `unknown`.
        #[sea_orm(primary_key, auto_increment = false)]
        pub client: String,
        /// Attempts since the last successful login.
        pub attempts: i32,
        /// Unix milliseconds before which no attempt is checked.
        pub blocked_until: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod gateway_instance {
    use sea_orm::entity::prelude::*;

    /// Issue 16: the redundancy of a placed gateway. Instance 0 runs on the placement's
    /// `worker` (`placements`), instance 1 on `second_worker`; no row, or no second worker,
    /// is a gateway that runs on one instance (always active, term 0).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "gateway_instances")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub gateway: String,
        /// The worker of instance 1, when the gateway is redundant.
        pub second_worker: Option<String>,
        /// The index (0 or 1) of the instance the server designates active.
        pub active: i32,
        /// The server's term (see `store::instances`).
        pub term: i64,
        /// The gateway's 32-byte heartbeat key, sealed (purpose `heartbeat-key:{tenant}/{gateway}`).
        #[sea_orm(column_type = "Text", nullable)]
        pub heartbeat_key: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod instance_status {
    use sea_orm::entity::prelude::*;

    /// Issue 16: what a worker last reported of one instance of a gateway.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "instance_status")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub gateway: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub instance: i32,
        #[sea_orm(primary_key, auto_increment = false)]
        pub worker: String,
        /// `active` or `standby`.
        pub role: String,
        pub term: i64,
        pub partner_alive: bool,
        #[sea_orm(column_type = "Text", nullable)]
        pub bind_error: Option<String>,
        /// Unix milliseconds.
        pub updated_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
