//! Schema migrations, applied at start.

use sea_orm_migration::prelude::*;

mod m0010;
mod m0011;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(M0001Workers),
            Box::new(M0002Accounts),
            Box::new(M0003Resources),
            Box::new(M0004WorkerState),
            Box::new(M0005P2sChallenges),
            Box::new(M0006RegionPairBytes),
            Box::new(M0007TunnelState),
            Box::new(M0008Security),
            Box::new(M0009GatewayDrops),
            Box::new(m0010::M0010Instances),
            Box::new(m0011::M0011IpsecStatus),
        ]
    }
}

#[derive(DeriveIden)]
enum WorkerTokens {
    Table,
    Id,
    Name,
    TokenSha256,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Workers {
    Table,
    Id,
    TokenId,
    Name,
    Version,
    LastSeenAt,
    LeaseExpiresAt,
}

struct M0001Workers;

impl MigrationName for M0001Workers {
    fn name(&self) -> &str {
        "m0001_workers"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0001Workers {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(WorkerTokens::Table)
                    .col(
                        ColumnDef::new(WorkerTokens::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(WorkerTokens::Name)
                            .string()
                            .not_null()
                            .unique_key(),
                    )
                    .col(
                        ColumnDef::new(WorkerTokens::TokenSha256)
                            .string()
                            .not_null()
                            .unique_key(),
                    )
                    .col(
                        ColumnDef::new(WorkerTokens::CreatedAt)
                            .big_integer()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Workers::Table)
                    .col(
                        ColumnDef::new(Workers::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Workers::TokenId).big_integer().not_null())
                    .col(ColumnDef::new(Workers::Name).string().not_null())
                    .col(ColumnDef::new(Workers::Version).string().not_null())
                    .col(ColumnDef::new(Workers::LastSeenAt).big_integer().not_null())
                    .col(
                        ColumnDef::new(Workers::LeaseExpiresAt)
                            .big_integer()
                            .not_null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Workers::Table, Workers::TokenId)
                            .to(WorkerTokens::Table, WorkerTokens::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("workers_token_name")
                    .table(Workers::Table)
                    .col(Workers::TokenId)
                    .col(Workers::Name)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Workers::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(WorkerTokens::Table).to_owned())
            .await
    }
}

/// Creates the tables of users, sessions, tokens, tenants, memberships, throttling and audit.
///
/// Built from the entities themselves, so the schema cannot drift from the code.
struct M0002Accounts;

impl MigrationName for M0002Accounts {
    fn name(&self) -> &str {
        "m0002_accounts"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0002Accounts {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use crate::db::entities::{
            api_token, audit, login_failure, membership, session, tenant, user,
        };
        let backend = manager.get_database_backend();
        let schema = sea_orm::Schema::new(backend);
        manager
            .create_table(schema.create_table_from_entity(user::Entity))
            .await?;
        manager
            .create_table(schema.create_table_from_entity(session::Entity))
            .await?;
        manager
            .create_table(schema.create_table_from_entity(api_token::Entity))
            .await?;
        manager
            .create_table(schema.create_table_from_entity(tenant::Entity))
            .await?;
        manager
            .create_table(schema.create_table_from_entity(membership::Entity))
            .await?;
        manager
            .create_table(schema.create_table_from_entity(login_failure::Entity))
            .await?;
        manager
            .create_table(schema.create_table_from_entity(audit::Entity))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for t in [
            "audit_log",
            "login_failures",
            "memberships",
            "tenants",
            "api_tokens",
            "sessions",
            "users",
        ] {
            manager
                .drop_table(Table::drop().table(Alias::new(t)).to_owned())
                .await?;
        }
        Ok(())
    }
}

/// The topology's resources and the shared counters.
struct M0003Resources;

impl MigrationName for M0003Resources {
    fn name(&self) -> &str {
        "m0003_resources"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0003Resources {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use crate::db::entities::{meta, resource};
        let schema = sea_orm::Schema::new(manager.get_database_backend());
        manager
            .create_table(schema.create_table_from_entity(resource::Entity))
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("resources_kind_tenant_name")
                    .table(resource::Entity)
                    .col(resource::Column::Kind)
                    .col(resource::Column::Tenant)
                    .col(resource::Column::Name)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(schema.create_table_from_entity(meta::Entity))
            .await?;
        let db = manager.get_connection();
        for key in ["topology_version", "next_port"] {
            sea_orm::EntityTrait::insert(meta::ActiveModel {
                key: sea_orm::Set(key.to_owned()),
                value: sea_orm::Set(0),
            })
            .exec(db)
            .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Alias::new("meta")).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Alias::new("resources")).to_owned())
            .await
    }
}

/// Gateway placement on workers and the status workers report.
struct M0004WorkerState;

impl MigrationName for M0004WorkerState {
    fn name(&self) -> &str {
        "m0004_worker_state"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0004WorkerState {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use crate::db::entities::{connection_status, placement};
        let schema = sea_orm::Schema::new(manager.get_database_backend());
        manager
            .create_table(schema.create_table_from_entity(placement::Entity))
            .await?;
        manager
            .create_table(schema.create_table_from_entity(connection_status::Entity))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(
                Table::drop()
                    .table(Alias::new("connection_status"))
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(Alias::new("placements")).to_owned())
            .await
    }
}

/// Point-to-site enrolment challenges (P2S-3).
struct M0005P2sChallenges;

impl MigrationName for M0005P2sChallenges {
    fn name(&self) -> &str {
        "m0005_p2s_challenges"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0005P2sChallenges {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use crate::db::entities::p2s_challenge;
        let schema = sea_orm::Schema::new(manager.get_database_backend());
        manager
            .create_table(schema.create_table_from_entity(p2s_challenge::Entity))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Alias::new("p2s_challenges")).to_owned())
            .await
    }
}

/// LIM-6: bytes per worker and region pair.
struct M0006RegionPairBytes;

impl MigrationName for M0006RegionPairBytes {
    fn name(&self) -> &str {
        "m0006_region_pair_bytes"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0006RegionPairBytes {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use crate::db::entities::region_pair_bytes;
        let schema = sea_orm::Schema::new(manager.get_database_backend());
        manager
            .create_table(schema.create_table_from_entity(region_pair_bytes::Entity))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(
                Table::drop()
                    .table(Alias::new("region_pair_bytes"))
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum ConnectionStatus {
    Table,
    State,
    SinceUnix,
    Reason,
}

/// Issue 12: the workers' public addresses (GW-3 endpoints come from them), the tunnel state
/// the worker decides (state, since when, why), and the route conflicts per gateway.
///
/// M0004 builds `connection_status` from its entity, so on a fresh database its new columns
/// exist already: each column is added only when missing, one per `ALTER TABLE` (SQLite takes
/// one change per statement).
struct M0007TunnelState;

impl MigrationName for M0007TunnelState {
    fn name(&self) -> &str {
        "m0007_tunnel_state"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0007TunnelState {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use crate::db::entities::gateway_status;
        let add = [
            (
                "workers",
                "public_addresses",
                Table::alter()
                    .table(Workers::Table)
                    .add_column(ColumnDef::new(Alias::new("public_addresses")).text().null())
                    .to_owned(),
            ),
            (
                "connection_status",
                "state",
                Table::alter()
                    .table(ConnectionStatus::Table)
                    .add_column(ColumnDef::new(ConnectionStatus::State).string().null())
                    .to_owned(),
            ),
            (
                "connection_status",
                "since_unix",
                Table::alter()
                    .table(ConnectionStatus::Table)
                    .add_column(
                        ColumnDef::new(ConnectionStatus::SinceUnix)
                            .big_integer()
                            .null(),
                    )
                    .to_owned(),
            ),
            (
                "connection_status",
                "reason",
                Table::alter()
                    .table(ConnectionStatus::Table)
                    .add_column(ColumnDef::new(ConnectionStatus::Reason).string().null())
                    .to_owned(),
            ),
        ];
        for (table, column, alter) in add {
            if !manager.has_column(table, column).await? {
                manager.alter_table(alter).await?;
            }
        }
        let schema = sea_orm::Schema::new(manager.get_database_backend());
        manager
            .create_table(schema.create_table_from_entity(gateway_status::Entity))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Alias::new("gateway_status")).to_owned())
            .await?;
        for col in [
            ConnectionStatus::State,
            ConnectionStatus::SinceUnix,
            ConnectionStatus::Reason,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(ConnectionStatus::Table)
                        .drop_column(col)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(Workers::Table)
                    .drop_column(Alias::new("public_addresses"))
                    .to_owned(),
            )
            .await
    }
}

/// Token scopes, the per-client enrolment-challenge limit and the login throttle keyed by user
/// name and client address.
struct M0008Security;

impl MigrationName for M0008Security {
    fn name(&self) -> &str {
        "m0008_security"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0008Security {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use crate::db::entities::login_throttle;
        for (table, column) in [("api_tokens", "scopes"), ("p2s_challenges", "client")] {
            if !manager.has_column(table, column).await? {
                manager
                    .alter_table(
                        Table::alter()
                            .table(Alias::new(table))
                            .add_column(ColumnDef::new(Alias::new(column)).string().null())
                            .to_owned(),
                    )
                    .await?;
            }
        }
        manager
            .create_index(
                Index::create()
                    .name("p2s_challenges_client")
                    .table(Alias::new("p2s_challenges"))
                    .col(Alias::new("client"))
                    .to_owned(),
            )
            .await?;
        let schema = sea_orm::Schema::new(manager.get_database_backend());
        manager
            .create_table(schema.create_table_from_entity(login_throttle::Entity))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Alias::new("login_throttle")).to_owned())
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("p2s_challenges_client")
                    .table(Alias::new("p2s_challenges"))
                    .to_owned(),
            )
            .await?;
        for (table, column) in [("api_tokens", "scopes"), ("p2s_challenges", "client")] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Alias::new(table))
                        .drop_column(Alias::new(column))
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

/// The gateways' drop counters (cookie replies, shed handshakes, LIM-4, bad datagrams) as their
/// workers report them, for `/metrics` (issue #16). A database created at M0007 from the
/// current entity already has the column.
struct M0009GatewayDrops;

impl MigrationName for M0009GatewayDrops {
    fn name(&self) -> &str {
        "m0009_gateway_drops"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0009GatewayDrops {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.has_column("gateway_status", "drops").await? {
            return Ok(());
        }
        manager
            .alter_table(
                Table::alter()
                    .table(Alias::new("gateway_status"))
                    .add_column(ColumnDef::new(Alias::new("drops")).text().null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Alias::new("gateway_status"))
                    .drop_column(Alias::new("drops"))
                    .to_owned(),
            )
            .await
    }
}
