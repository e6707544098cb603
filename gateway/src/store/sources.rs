//! Sources, per organization. The ingest route finds a source by its id
//! alone (the caller has no API key): the organization comes from the row.

use super::{OrgTable, Store, StoreError, conflict, with_pool};
use crate::model::{OrgId, Page, Scheme, Secret, Source};
use crate::secrets::SecretSlot;

const COLUMNS: &str = "id, organization_id, name, scheme, header, secret, created";

#[derive(sqlx::FromRow)]
struct SourceRow {
    id: String,
    organization_id: String,
    name: String,
    scheme: String,
    header: Option<String>,
    secret: Vec<u8>,
    created: i64,
}

impl Store {
    /// Stores a new source ([`StoreError::Conflict`] when the name is taken).
    pub async fn insert_source(&self, source: &Source) -> Result<(), StoreError> {
        let sealed = self.cipher.encrypt(
            source.secret.expose(),
            SecretSlot {
                organization: source.organization_id.as_str(),
                row: &source.id,
                column: "secret",
            },
        );
        let sql = format!("INSERT INTO sources ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)");
        with_pool!(self, |p| sqlx::query(&sql)
            .bind(&source.id)
            .bind(source.organization_id.as_str())
            .bind(&source.name)
            .bind(source.scheme.as_str())
            .bind(&source.header)
            .bind(&sealed)
            .bind(source.created)
            .execute(p)
            .await
            .map_err(|e| conflict(e, "source name"))?
            .rows_affected());
        Ok(())
    }

    /// The source `id`, whoever owns it: for the ingest route only.
    pub async fn source_for_ingest(&self, id: &str) -> Result<Source, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM sources WHERE id = $1");
        let row: Option<SourceRow> = with_pool!(self, |p| sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(p)
            .await?);
        self.source_from_row(row.ok_or(StoreError::NotFound)?)
    }

    /// A source of `organization_id`.
    pub async fn get_source(
        &self,
        organization_id: &OrgId,
        id: &str,
    ) -> Result<Source, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM sources WHERE organization_id = $1 AND id = $2");
        let row: Option<SourceRow> = with_pool!(self, |p| sqlx::query_as(&sql)
            .bind(organization_id.as_str())
            .bind(id)
            .fetch_optional(p)
            .await?);
        self.source_from_row(row.ok_or(StoreError::NotFound)?)
    }

    /// A page of `organization_id`'s sources, oldest first.
    pub async fn list_sources(
        &self,
        organization_id: &OrgId,
        offset: i64,
        limit: i64,
    ) -> Result<Page<Source>, StoreError> {
        let table = OrgTable {
            table: "sources",
            columns: COLUMNS,
            order: "created, id",
        };
        self.organization_page::<SourceRow>(table, organization_id, offset, limit)
            .await?
            .try_map(|r| self.source_from_row(r))
    }

    /// Deletes a source: its ingest URL answers 404 after.
    pub async fn delete_source(&self, organization_id: &OrgId, id: &str) -> Result<(), StoreError> {
        let deleted = with_pool!(self, |p| sqlx::query(
            "DELETE FROM sources WHERE organization_id = $1 AND id = $2"
        )
        .bind(organization_id.as_str())
        .bind(id)
        .execute(p)
        .await?
        .rows_affected());
        if deleted == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    fn source_from_row(&self, row: SourceRow) -> Result<Source, StoreError> {
        let secret = self
            .cipher
            .decrypt(
                &row.secret,
                SecretSlot {
                    organization: &row.organization_id,
                    row: &row.id,
                    column: "secret",
                },
            )
            .map_err(|e| StoreError::Corrupt(format!("source secret: {e}")))?;
        Ok(Source {
            scheme: Scheme::parse(&row.scheme)
                .ok_or_else(|| StoreError::Corrupt(format!("source scheme: {}", row.scheme)))?,
            organization_id: OrgId::trusted(row.organization_id),
            id: row.id,
            name: row.name,
            header: row.header,
            secret: Secret::new(secret),
            created: row.created,
        })
    }
}
