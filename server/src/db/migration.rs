//! Schema migrations, applied at start.

use sea_orm_migration::prelude::*;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(M0001Workers)]
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
