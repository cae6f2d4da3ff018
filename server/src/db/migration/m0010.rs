//! Issue 16: redundant gateways. Workers state a heartbeat address and a zone and can be
//! drained; each placed gateway may have a second instance (`gateway_instances`: its worker,
//! the designated active index, the term and the sealed heartbeat key); workers report each
//! instance's role (`instance_status`).

use sea_orm_migration::prelude::*;

pub struct M0010Instances;

impl MigrationName for M0010Instances {
    fn name(&self) -> &str {
        "m0010_instances"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0010Instances {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use crate::db::entities::{gateway_instance, instance_status};
        for column in ["heartbeat_address", "zone"] {
            if !manager.has_column("workers", column).await? {
                manager
                    .alter_table(
                        Table::alter()
                            .table(Alias::new("workers"))
                            .add_column(ColumnDef::new(Alias::new(column)).string().null())
                            .to_owned(),
                    )
                    .await?;
            }
        }
        if !manager.has_column("workers", "draining").await? {
            manager
                .alter_table(
                    Table::alter()
                        .table(Alias::new("workers"))
                        .add_column(
                            ColumnDef::new(Alias::new("draining"))
                                .boolean()
                                .not_null()
                                .default(false),
                        )
                        .to_owned(),
                )
                .await?;
        }
        let schema = sea_orm::Schema::new(manager.get_database_backend());
        manager
            .create_table(schema.create_table_from_entity(gateway_instance::Entity))
            .await?;
        manager
            .create_table(schema.create_table_from_entity(instance_status::Entity))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["instance_status", "gateway_instances"] {
            manager
                .drop_table(Table::drop().table(Alias::new(table)).to_owned())
                .await?;
        }
        for column in ["draining", "zone", "heartbeat_address"] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Alias::new("workers"))
                        .drop_column(Alias::new(column))
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
