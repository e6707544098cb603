//! Delivery search: one page of an organization's deliveries, newest
//! first, by status, event type, destination and time window.
//!
//! The page's statement names only the filters given, so the planner can
//! start from the index of one of them (migration 0011: each is
//! `(organization_id, <filter>, created, id)`) and stop once the page is
//! full. The total is counted by walking one of those indexes — the lead
//! filter's, newest first, within the window — and stops after a bounded
//! number of rows ([`COUNT_PAST_PAGE`], [`CHECK_PAST_PAGE`] when the other
//! filters must be checked on each row): an exact count over a million
//! rows costs far more than the page, and a list only needs to know
//! whether there are more pages. A count that stopped says so
//! ([`Page::total_capped`]): more may match.

use super::DeliveryFilter;
use super::executor::FromRow;
use super::sql::DELIVERY_LIST_COLUMNS;
use crate::model::{Delivery, DeliveryStatus, OrgId, Page};
use crate::store::rows::DeliveryRow;
use crate::store::{Store, StoreError, with_pool};

/// Rows past the page's end the count walks when the lead filter is the
/// only one (the walk reads the index alone).
pub const COUNT_PAST_PAGE: i64 = 10_000;
/// Rows past the page's end the count walks when other filters are
/// checked on each row (each read from the table).
pub const CHECK_PAST_PAGE: i64 = 1_000;

/// A value a search binds.
#[derive(Debug, Clone, Copy)]
enum Value<'a> {
    Text(&'a str),
    Time(i64),
}

/// Tests on a search's rows: SQL (` AND column = `) and the value.
type Tests<'a> = Vec<(&'static str, Value<'a>)>;

/// SQL text with its placeholders numbered in the order they appear (so
/// SQLite, which numbers `$N` by first appearance, binds as PostgreSQL
/// does), and their values in that order.
#[derive(Debug, Default)]
struct Statement<'a> {
    text: String,
    values: Vec<Value<'a>>,
}

impl<'a> Statement<'a> {
    fn sql(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// `text` followed by a placeholder for `value`.
    fn bind(&mut self, text: &str, value: Value<'a>) -> &mut Self {
        self.values.push(value);
        self.text.push_str(&format!("{text}${}", self.values.len()));
        self
    }

    /// Each test, with its value.
    fn tests(&mut self, tests: &[(&str, Value<'a>)]) -> &mut Self {
        for (test, value) in tests {
            self.bind(test, *value);
        }
        self
    }
}

impl DeliveryFilter {
    /// The filters given, as tests: the lead (the one a count walks the
    /// index of: destination, else event type, else status), the time
    /// window, and the rest.
    #[allow(clippy::type_complexity)]
    fn tests(
        &self,
    ) -> (
        Vec<(&'static str, Value<'_>)>,
        Vec<(&'static str, Value<'_>)>,
        Vec<(&'static str, Value<'_>)>,
    ) {
        let mut equal: Vec<(&'static str, Value<'_>)> = Vec::new();
        if let Some(destination) = &self.destination_id {
            equal.push((" AND target_id = ", Value::Text(destination)));
        }
        if let Some(event_type) = &self.event_type {
            equal.push((" AND event_type = ", Value::Text(event_type)));
        }
        if let Some(status) = self.status {
            equal.push((
                " AND status = ",
                Value::Text(DeliveryStatus::as_str(status)),
            ));
        }
        let rest = equal.split_off(equal.len().min(1));
        let mut window = Tests::new();
        if let Some(since) = self.since {
            window.push((" AND created >= ", Value::Time(since)));
        }
        if let Some(until) = self.until {
            window.push((" AND created < ", Value::Time(until)));
        }
        (equal, window, rest)
    }
}

/// Binds a statement's values to a query of either database.
macro_rules! bind_all {
    ($query:expr, $statement:expr) => {{
        let mut query = $query;
        for value in &$statement.values {
            query = match *value {
                Value::Text(text) => query.bind(text),
                Value::Time(time) => query.bind(time),
            };
        }
        query
    }};
}

impl Store {
    /// One page of an organization's deliveries, newest first.
    pub async fn list_deliveries(
        &self,
        organization_id: &OrgId,
        filter: &DeliveryFilter,
        start: i64,
        limit: i64,
    ) -> Result<Page<Delivery>, StoreError> {
        let (lead, window, rest) = filter.tests();
        let org = Value::Text(organization_id.as_str());
        let mut page = Statement::default();
        page.sql(&format!(
            "SELECT {DELIVERY_LIST_COLUMNS} FROM deliveries WHERE "
        ))
        .bind("organization_id = ", org)
        .tests(&lead)
        .tests(&window)
        .tests(&rest)
        .bind(" ORDER BY created DESC, id DESC LIMIT ", Value::Time(limit))
        .bind(" OFFSET ", Value::Time(start));
        let past = if rest.is_empty() {
            COUNT_PAST_PAGE
        } else {
            CHECK_PAST_PAGE
        };
        let walk = start.saturating_add(limit).saturating_add(past);
        let mut count = Statement::default();
        count.sql("SELECT COUNT(*), COALESCE(SUM(matched), 0) FROM (SELECT CASE WHEN TRUE");
        count
            .tests(&rest)
            .bind(
                " THEN 1 ELSE 0 END AS matched FROM deliveries WHERE organization_id = ",
                org,
            )
            .tests(&lead)
            .tests(&window)
            .bind(" ORDER BY created DESC, id DESC LIMIT ", Value::Time(walk))
            .sql(") AS walked");
        // The page and the count read at once, on two connections.
        let (rows, (walked, matched)): (Vec<DeliveryRow>, (i64, i64)) = with_pool!(self, |p| {
            let (rows, counted) = tokio::try_join!(
                bind_all!(sqlx::query(&page.text), page).fetch_all(p),
                bind_all!(sqlx::query_as(&count.text), count).fetch_one(p),
            )?;
            let rows = rows
                .iter()
                .map(DeliveryRow::from_row)
                .collect::<Result<_, _>>()?;
            (rows, counted)
        });
        let items: Vec<Delivery> = rows
            .into_iter()
            .map(DeliveryRow::into_domain)
            .collect::<Result<_, _>>()?;
        let total_capped = walked >= walk;
        let total = if total_capped {
            matched.max(start + items.len() as i64)
        } else {
            matched
        };
        Ok(Page {
            items,
            total,
            total_capped,
        })
    }
}
