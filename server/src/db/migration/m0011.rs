//! Issue 17: the IPsec status of a connection (its IKE and CHILD SAs, as JSON) beside the
//! tunnel state its worker reports. A database created from the current entity already has the
//! column.

use sea_orm_migration::prelude::*;

pub struct M0011IpsecStatus;

impl MigrationName for M0011IpsecStatus {
    fn name(&self) -> &str {
        "m0011_ipsec_status"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0011IpsecStatus {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.has_column("connection_status", "ipsec").await? {
            return Ok(());
        }
        manager
            .alter_table(
                Table::alter()
                    .table(Alias::new("connection_status"))
                    .add_column(ColumnDef::new(Alias::new("ipsec")).text().null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Alias::new("connection_status"))
                    .drop_column(Alias::new("ipsec"))
                    .to_owned(),
            )
            .await
    }
}
