//! Event types, per organization: declared names with an optional JSON
//! Schema for their payloads.

use super::rows::EventTypeRow;
use super::{OrgTable, Store, StoreError, conflict, with_pool};
use crate::model::{EpochMs, EventType, OrgId, Page};

const COLUMNS: &str = "organization_id, name, description, schema, created, modified";

impl Store {
    /// Declares an event type ([`StoreError::Conflict`] when the name is taken).
    pub async fn insert_event_type(&self, t: &EventType) -> Result<(), StoreError> {
        let sql = format!("INSERT INTO event_types ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)");
        with_pool!(self, |p| sqlx::query(&sql)
            .bind(t.organization_id.as_str())
            .bind(&t.name)
            .bind(&t.description)
            .bind(t.schema.as_ref().map(ToString::to_string))
            .bind(t.created)
            .bind(t.modified)
            .execute(p)
            .await
            .map_err(|e| conflict(e, "event type"))?
            .rows_affected());
        Ok(())
    }

    /// Replaces an event type's description and schema.
    pub async fn update_event_type(&self, t: &EventType) -> Result<(), StoreError> {
        let updated = with_pool!(self, |p| sqlx::query(
            "UPDATE event_types SET description = $1, schema = $2, modified = $3 \
             WHERE organization_id = $4 AND name = $5"
        )
        .bind(&t.description)
        .bind(t.schema.as_ref().map(ToString::to_string))
        .bind(t.modified)
        .bind(t.organization_id.as_str())
        .bind(&t.name)
        .execute(p)
        .await?
        .rows_affected());
        if updated == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// An event type of `organization_id`.
    pub async fn get_event_type(
        &self,
        organization_id: &OrgId,
        name: &str,
    ) -> Result<EventType, StoreError> {
        let sql =
            format!("SELECT {COLUMNS} FROM event_types WHERE organization_id = $1 AND name = $2");
        let row: Option<EventTypeRow> = with_pool!(self, |p| sqlx::query_as(&sql)
            .bind(organization_id.as_str())
            .bind(name)
            .fetch_optional(p)
            .await?);
        row.ok_or(StoreError::NotFound)?.into_domain()
    }

    /// A page of `organization_id`'s event types, by name.
    pub async fn list_event_types(
        &self,
        organization_id: &OrgId,
        offset: i64,
        limit: i64,
    ) -> Result<Page<EventType>, StoreError> {
        let table = OrgTable {
            table: "event_types",
            columns: COLUMNS,
            order: "name",
        };
        self.organization_page::<EventTypeRow>(table, organization_id, offset, limit)
            .await?
            .try_map(EventTypeRow::into_domain)
    }

    /// Deletes an event type; events of that name are accepted unchecked after.
    pub async fn delete_event_type(
        &self,
        organization_id: &OrgId,
        name: &str,
    ) -> Result<(), StoreError> {
        let deleted = with_pool!(self, |p| sqlx::query(
            "DELETE FROM event_types WHERE organization_id = $1 AND name = $2"
        )
        .bind(organization_id.as_str())
        .bind(name)
        .execute(p)
        .await?
        .rows_affected());
        if deleted == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// The schema of `organization_id`'s type `name`, as written, with its
    /// last change: `None` when the type is undeclared or has no schema.
    pub async fn event_schema(
        &self,
        organization_id: &OrgId,
        name: &str,
    ) -> Result<Option<(String, EpochMs)>, StoreError> {
        let row: Option<(Option<String>, i64)> = with_pool!(self, |p| sqlx::query_as(
            "SELECT schema, modified FROM event_types WHERE organization_id = $1 AND name = $2"
        )
        .bind(organization_id.as_str())
        .bind(name)
        .fetch_optional(p)
        .await?);
        Ok(row.and_then(|(schema, modified)| schema.map(|s| (s, modified))))
    }
}
