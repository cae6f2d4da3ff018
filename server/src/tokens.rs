//! Worker tokens: generated with the OS RNG, stored only as SHA-256.

use rand::TryRngCore;
use rand::rngs::OsRng;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, Set,
};
use sha2::{Digest, Sha256};

use crate::db::entities::worker_token;

/// Prefix of worker tokens, so a leaked one is recognisable.
pub const WORKER_TOKEN_PREFIX: &str = "isw_";

/// A fresh worker token (256 random bits).
pub fn generate_worker_token() -> Result<String, rand::rand_core::OsError> {
    let mut bytes = [0u8; 32];
    OsRng.try_fill_bytes(&mut bytes)?;
    Ok(format!("{WORKER_TOKEN_PREFIX}{}", hex::encode(bytes)))
}

/// The stored form of a token.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Registers `token` under `name` unless a token with that hash exists already.
pub async fn ensure_worker_token(
    db: &DatabaseConnection,
    name: &str,
    token: &str,
    now_ms: i64,
) -> Result<worker_token::Model, DbErr> {
    let hash = token_hash(token);
    if let Some(existing) = worker_token::Entity::find()
        .filter(worker_token::Column::TokenSha256.eq(hash.clone()))
        .one(db)
        .await?
    {
        return Ok(existing);
    }
    worker_token::ActiveModel {
        name: Set(name.to_owned()),
        token_sha256: Set(hash),
        created_at: Set(now_ms),
        ..Default::default()
    }
    .insert(db)
    .await
}

/// The token row a bearer token belongs to, if any.
pub async fn find_worker_token(
    db: &DatabaseConnection,
    token: &str,
) -> Result<Option<worker_token::Model>, DbErr> {
    worker_token::Entity::find()
        .filter(worker_token::Column::TokenSha256.eq(token_hash(token)))
        .one(db)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_unique_and_prefixed() {
        let a = generate_worker_token().unwrap();
        let b = generate_worker_token().unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with(WORKER_TOKEN_PREFIX));
        assert_eq!(a.len(), WORKER_TOKEN_PREFIX.len() + 64);
        assert_ne!(token_hash(&a), token_hash(&b));
    }
}
