//! The hot path's statements, written once for both databases. Parameters
//! are `$1…$N` and first appear in that order: rusqlite binds `$N` by order
//! of first use (the `parameters_appear_in_order` test checks every one).
//!
//! Writes that a batch makes for many rows at once are [`MultiRow`]
//! statements: one `VALUES` row per item, so a batch of 200 ingests is one
//! `INSERT` of 200 rows, one round trip on PostgreSQL. `UPDATE … FROM
//! (VALUES …) AS v` reads the rows' columns as `v.column1`, `v.column2`, …,
//! the name both SQLite and PostgreSQL give them.

use super::executor::Dialect;

/// The columns of a delivery row, in the order `DeliveryRow` reads them.
macro_rules! delivery_columns {
    () => {
        "id, organization_id, event_id, event_type, target_kind, target_id, endpoint, method, \
         status, transformed, body, content_type, headers, attempts, attempt_base, next_attempt_at, last_error, \
         last_status, created, modified, completed, fifo_key, trace_context"
    };
}

/// The columns of a delivery row, in the order `DeliveryRow` reads them.
pub(crate) const DELIVERY_COLUMNS: &str = delivery_columns!();

/// A delivery row as lists show it: [`DELIVERY_COLUMNS`] with NULL for the
/// request's body and headers, which a list does not show (a page of fifty
/// would otherwise read fifty bodies).
pub(crate) const DELIVERY_LIST_COLUMNS: &str = "id, organization_id, event_id, event_type, target_kind, target_id, endpoint, method, \
     status, transformed, NULL, content_type, NULL, attempts, attempt_base, next_attempt_at, last_error, \
     last_status, created, modified, completed, fifo_key, trace_context";

/// The columns of an event row, in the order `EventRow` reads them.
pub(crate) const EVENT_COLUMNS: &str =
    "organization_id, id, event_type, payload, shop_id, created, trace_context";

/// [`EVENT_COLUMNS`] of the table aliased `e`, for joins.
macro_rules! event_columns_of_e {
    () => {
        "e.organization_id, e.id, e.event_type, e.payload, e.shop_id, e.created, e.trace_context"
    };
}

/// [`EVENT_COLUMNS`] of the table aliased `e`, for joins.
pub(crate) const EVENT_COLUMNS_OF_E: &str = event_columns_of_e!();

/// A statement over many rows: `head`, then `row` once per item (its `$1…$k`
/// renumbered per item), separated by commas, then `tail`.
#[derive(Debug)]
pub(super) struct MultiRow {
    head: &'static str,
    row: &'static str,
    tail: &'static str,
    /// Parameters per row.
    pub params: usize,
}

/// Most rows in one statement. Row counts are rounded down to powers of
/// two ([`chunks`]), so each statement has at most nine texts to prepare
/// and cache.
pub(super) const MAX_ROWS: usize = 128;

impl MultiRow {
    /// The statement for `n` rows.
    pub(super) fn sql(&self, n: usize) -> String {
        let mut sql =
            String::with_capacity(self.head.len() + self.tail.len() + n * (self.row.len() + 8));
        sql.push_str(self.head);
        for i in 0..n {
            if i > 0 {
                sql.push_str(", ");
            }
            renumber(&mut sql, self.row, i * self.params);
        }
        sql.push_str(self.tail);
        sql
    }
}

/// Appends `row` with every `$k` as `$(k + base)`.
fn renumber(out: &mut String, row: &str, base: usize) {
    let mut rest = row;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let digits = rest[at + 1..]
            .bytes()
            .take_while(u8::is_ascii_digit)
            .count();
        let k: usize = rest[at + 1..at + 1 + digits].parse().unwrap_or(0);
        out.push('$');
        out.push_str(&(k + base).to_string());
        rest = &rest[at + 1 + digits..];
    }
    out.push_str(rest);
}

/// Splits `n` items into runs of power-of-two length, at most [`MAX_ROWS`]:
/// `(start, len)`.
pub(super) fn chunks(n: usize) -> impl Iterator<Item = (usize, usize)> {
    let mut start = 0;
    std::iter::from_fn(move || {
        let left = n - start;
        if left == 0 {
            return None;
        }
        let len = MAX_ROWS.min(1 << left.ilog2());
        let chunk = (start, len);
        start += len;
        Some(chunk)
    })
}

pub(super) const INSERT_EVENTS: MultiRow = MultiRow {
    head: "INSERT INTO events (organization_id, id, event_type, payload, shop_id, created, trace_context) VALUES ",
    row: "($1, $2, $3, $4, $5, $6, $7)",
    tail: " ON CONFLICT DO NOTHING RETURNING organization_id, id",
    params: 7,
};

pub(super) const EVENT_DELIVERIES: &str =
    "SELECT id FROM deliveries WHERE organization_id = $1 AND event_id = $2 ORDER BY id";

pub(super) const EVENT_DELIVERY_COUNT: &str =
    "SELECT COUNT(*) FROM deliveries WHERE organization_id = $1 AND event_id = $2";

pub(super) const ROUTE_HOOKS: &str = "SELECT h.integration_id, h.endpoint, h.method, i.filter, i.ordering \
     FROM integration_hooks h \
     JOIN integrations i ON i.id = h.integration_id \
     WHERE h.organization_id = $1 AND h.hook_type = $2 AND i.enabled AND i.disabled_reason IS NULL \
     ORDER BY h.integration_id, h.position";

pub(super) const ROUTE_WEBHOOKS: &str = "SELECT id, urls, method, filter, ordering \
     FROM webhooks \
     WHERE organization_id = $1 AND topic = $2 AND NOT deleted AND disabled_reason IS NULL AND (shop_id IS NULL OR $3 IS NULL OR shop_id = $3) \
     ORDER BY created, id";

/// New deliveries: routed at ingest (not transformed, no body) or fanned
/// out by a transform (transformed, with a body).
pub(super) const INSERT_DELIVERIES: MultiRow = MultiRow {
    head: "INSERT INTO deliveries (id, organization_id, event_id, event_type, target_kind, target_id, endpoint, method, status, \
           transformed, body, content_type, headers, next_attempt_at, created, modified, fifo_key, trace_context) VALUES ",
    row: "($1, $2, $3, $4, $5, $6, $7, $8, 'pending', $9, $10, $11, $12, $13, $13, $13, $14, $15)",
    tail: "",
    params: 15,
};

/// A transform's first request onto its delivery, fenced by the lease.
pub(super) const STORE_TRANSFORMS: MultiRow = MultiRow {
    head: "UPDATE deliveries SET transformed = TRUE, body = v.column2, content_type = v.column3, headers = v.column4, \
           modified = v.column5 FROM (VALUES ",
    row: "($1, $2, $3, $4, $5, $6)",
    tail: ") AS v WHERE deliveries.id = v.column1 AND deliveries.lease_owner = v.column6 RETURNING id",
    params: 6,
};

/// An attempt's outcome (or a final status without one) onto its delivery,
/// fenced by the lease, which it releases. `column3` is 1 when an attempt
/// was made (it counts and sets the last status and duration), 0 otherwise.
pub(super) const RECORDS: MultiRow = MultiRow {
    head: "UPDATE deliveries SET status = v.column2, attempts = attempts + v.column3, next_attempt_at = v.column4, \
           last_error = v.column5, last_status = CASE WHEN v.column3 = 1 THEN v.column6 ELSE last_status END, \
           last_duration_ms = CASE WHEN v.column3 = 1 THEN v.column10 ELSE last_duration_ms END, \
           lease_owner = NULL, lease_expires = NULL, modified = v.column7, completed = v.column8 FROM (VALUES ",
    row: "($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    tail: ") AS v WHERE deliveries.id = v.column1 AND deliveries.lease_owner = v.column9 RETURNING id, attempts",
    params: 10,
};

pub(super) const INSERT_ATTEMPTS: MultiRow = MultiRow {
    head: "INSERT INTO attempts (delivery_id, attempt, started, duration_ms, status_code, error, response_excerpt, request_headers) VALUES ",
    row: "($1, $2, $3, $4, $5, $6, $7, $8)",
    tail: "",
    params: 8,
};

/// Routes that just succeeded: their failure streaks end (and say since
/// when they ran).
pub(super) const END_STREAKS: MultiRow = MultiRow {
    head: "DELETE FROM target_health WHERE target_id IN (",
    row: "$1",
    tail: ") RETURNING target_id, failing_since",
    params: 1,
};

pub(super) const NOTE_FAILURE: &str =
    "INSERT INTO target_health (target_id, failing_since) VALUES ($1, $2) ON CONFLICT DO NOTHING";
pub(super) const FAILING_SINCE: &str =
    "SELECT failing_since FROM target_health WHERE target_id = $1";

/// Disables a route that is not disabled yet.
pub(super) const DISABLE_INTEGRATION: &str = "UPDATE integrations SET disabled_reason = $1, enabled = FALSE, modified = $2 \
     WHERE id = $3 AND organization_id = $4 AND disabled_reason IS NULL";
pub(super) const DISABLE_WEBHOOK: &str = "UPDATE webhooks SET disabled_reason = $1, modified = $2 \
     WHERE id = $3 AND organization_id = $4 AND disabled_reason IS NULL";

/// Leases up to `$5` due deliveries to the claim `$1`, skipping the
/// organizations in `$4` (a JSON array: those at their limit of deliveries
/// in flight on this replica, so their backlog cannot take the slots other
/// tenants need). The dialects differ, each for its engine:
/// - SQLite moves a leased row's `next_attempt_at` to its lease's end, so
///   in-flight rows sit behind the due ones in the index and the next claim
///   does not walk past them (an index update is cheap in SQLite's b-tree).
/// - PostgreSQL changes only the lease columns, which no index covers, so
///   the claim is a HOT update (a new row version on the same page, no new
///   index entries: with MVCC, moving an indexed column would leave a dead
///   index entry per claim for every later claim to step over until
///   vacuum), and skips rows another replica is claiming at the same
///   moment.
pub(super) fn claim(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Sqlite => CLAIM_SQLITE,
        Dialect::Postgres => CLAIM_POSTGRES,
    }
}

/// A FIFO delivery is claimable only at the head of its queue: no earlier
/// delivery of the same queue is pending (retrying, or in flight).
macro_rules! fifo_head {
    () => {
        " AND (fifo_key IS NULL OR NOT EXISTS (SELECT 1 FROM deliveries p \
         WHERE p.fifo_key = deliveries.fifo_key AND p.status = 'pending' \
         AND (p.created < deliveries.created OR (p.created = deliveries.created AND p.id < deliveries.id))))"
    };
}

/// The organizations in a JSON array parameter, per dialect.
macro_rules! held_sqlite {
    ($p:literal) => {
        concat!("(SELECT value FROM json_each(", $p, "))")
    };
}
macro_rules! held_postgres {
    ($p:literal) => {
        concat!("(SELECT jsonb_array_elements_text(", $p, "::jsonb))")
    };
}

macro_rules! claim_sql {
    ($next:literal, $held:expr, $lock:literal) => {
        concat!(
            "UPDATE deliveries SET lease_owner = $1, lease_expires = $2",
            $next,
            " WHERE id IN (",
            "SELECT id FROM deliveries WHERE status = 'pending' AND next_attempt_at <= $3 ",
            "AND (lease_expires IS NULL OR lease_expires < $3) AND organization_id NOT IN ",
            $held,
            fifo_head!(),
            " ORDER BY next_attempt_at LIMIT $5",
            $lock,
            ") RETURNING ",
            delivery_columns!()
        )
    };
}
const CLAIM_SQLITE: &str = claim_sql!(", next_attempt_at = $2", held_sqlite!("$4"), "");
const CLAIM_POSTGRES: &str = claim_sql!("", held_postgres!("$4"), " FOR UPDATE SKIP LOCKED");

/// When the next claimable delivery is due (`$1`: the organizations the
/// claim skips), or a lease ends.
pub(super) fn next_due(dialect: Dialect) -> &'static str {
    match dialect {
        // A leased row's next_attempt_at is its lease's end already.
        Dialect::Sqlite => NEXT_DUE_SQLITE,
        // In-flight rows are not due: counting them would make an idle
        // worker spin while its own jobs are in flight.
        Dialect::Postgres => NEXT_DUE_POSTGRES,
    }
}

const NEXT_DUE_SQLITE: &str = concat!(
    "SELECT next_attempt_at FROM deliveries WHERE status = 'pending' AND organization_id NOT IN ",
    held_sqlite!("$1"),
    fifo_head!(),
    " ORDER BY next_attempt_at LIMIT 1"
);
const NEXT_DUE_POSTGRES: &str = concat!(
    "SELECT next_attempt_at FROM deliveries WHERE status = 'pending' AND organization_id NOT IN ",
    held_postgres!("$1"),
    " AND (lease_expires IS NULL OR lease_expires < $2)",
    fifo_head!(),
    " ORDER BY next_attempt_at LIMIT 1"
);

/// Leases extended while their attempts run, each fenced by its claim.
pub(super) fn renew_leases(dialect: Dialect) -> &'static MultiRow {
    match dialect {
        Dialect::Sqlite => &RENEW_LEASES_SQLITE,
        Dialect::Postgres => &RENEW_LEASES_POSTGRES,
    }
}

const RENEW_LEASES_SQLITE: MultiRow = MultiRow {
    head: "UPDATE deliveries SET lease_expires = v.column3, next_attempt_at = v.column3 FROM (VALUES ",
    row: "($1, $2, $3)",
    tail: ") AS v WHERE deliveries.id = v.column1 AND deliveries.lease_owner = v.column2 AND deliveries.status = 'pending'",
    params: 3,
};
const RENEW_LEASES_POSTGRES: MultiRow = MultiRow {
    head: "UPDATE deliveries SET lease_expires = v.column3 FROM (VALUES ",
    row: "($1, $2, $3)",
    tail: ") AS v WHERE deliveries.id = v.column1 AND deliveries.lease_owner = v.column2 AND deliveries.status = 'pending'",
    params: 3,
};

/// The events of claimed deliveries, by (organization, id).
pub(super) const CLAIMED_EVENTS: MultiRow = MultiRow {
    head: concat!(
        "SELECT ",
        event_columns_of_e!(),
        " FROM events e JOIN (VALUES "
    ),
    row: "($1, $2)",
    tail: ") AS v ON e.organization_id = v.column1 AND e.id = v.column2",
    params: 2,
};

/// Leases given back at shutdown: every claim of one replica (its claims
/// are named `$2` followed by a number), due again at once.
pub(super) const RELEASE_LEASES: &str = "UPDATE deliveries SET lease_owner = NULL, lease_expires = NULL, next_attempt_at = $1 \
     WHERE substr(lease_owner, 1, length($2)) = $2 AND status = 'pending'";

/// The next ids a replay selects, after a cursor, in id order.
pub(super) const REPLAY_SELECT: &str = "SELECT id FROM deliveries \
     WHERE organization_id = $1 AND id > $2 AND status <> 'pending' AND status <> 'dropped' \
     AND ($3 IS NULL OR id = $3) AND ($4 IS NULL OR status = $4) AND ($5 IS NULL OR created >= $5) \
     AND ($6 IS NULL OR created < $6) AND ($7 IS NULL OR event_type = $7) AND ($8 IS NULL OR target_id = $8) \
     ORDER BY id LIMIT $9";

/// Queues the selected deliveries again for a fresh set of attempts.
pub(super) const REPLAY: MultiRow = MultiRow {
    head: "UPDATE deliveries SET status = 'pending', attempt_base = attempts, next_attempt_at = v.column2, completed = NULL, \
           lease_owner = NULL, lease_expires = NULL, modified = v.column2 FROM (VALUES ",
    row: "($1, $2)",
    tail: ") AS v WHERE deliveries.id = v.column1 AND deliveries.status <> 'pending' RETURNING id",
    params: 2,
};

/// Events past retention (`$1`) none of whose deliveries is pending, oldest
/// first, at most `$2`.
pub(super) const PURGEABLE_EVENTS: &str = "SELECT organization_id, id FROM events e \
     WHERE created < $1 AND NOT EXISTS (SELECT 1 FROM deliveries d \
     WHERE d.organization_id = e.organization_id AND d.event_id = e.id AND d.status = 'pending') \
     ORDER BY created LIMIT $2";

/// The attempts of the deliveries of the given events.
pub(super) const PURGE_ATTEMPTS: MultiRow = MultiRow {
    head: "DELETE FROM attempts WHERE delivery_id IN (SELECT d.id FROM deliveries d JOIN (VALUES ",
    row: "($1, $2)",
    tail: ") AS v ON d.organization_id = v.column1 AND d.event_id = v.column2)",
    params: 2,
};

/// The deliveries of the given events (none of them pending).
pub(super) const PURGE_DELIVERIES: MultiRow = MultiRow {
    head: "DELETE FROM deliveries WHERE status <> 'pending' AND EXISTS (SELECT 1 FROM (VALUES ",
    row: "($1, $2)",
    tail: ") AS v WHERE v.column1 = deliveries.organization_id AND v.column2 = deliveries.event_id)",
    params: 2,
};

/// The given events, unless a delivery of theirs is left.
pub(super) const PURGE_EVENTS: MultiRow = MultiRow {
    head: "DELETE FROM events WHERE EXISTS (SELECT 1 FROM (VALUES ",
    row: "($1, $2)",
    tail: ") AS v WHERE v.column1 = events.organization_id AND v.column2 = events.id) \
           AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.organization_id = events.organization_id \
           AND d.event_id = events.id)",
    params: 2,
};

#[cfg(test)]
mod tests {
    use super::*;

    fn singles() -> Vec<&'static str> {
        vec![
            EVENT_DELIVERIES,
            EVENT_DELIVERY_COUNT,
            ROUTE_HOOKS,
            ROUTE_WEBHOOKS,
            NOTE_FAILURE,
            FAILING_SINCE,
            DISABLE_INTEGRATION,
            DISABLE_WEBHOOK,
            CLAIM_SQLITE,
            CLAIM_POSTGRES,
            NEXT_DUE_SQLITE,
            NEXT_DUE_POSTGRES,
            RELEASE_LEASES,
            REPLAY_SELECT,
            PURGEABLE_EVENTS,
        ]
    }

    fn multis() -> Vec<MultiRow> {
        vec![
            INSERT_EVENTS,
            INSERT_DELIVERIES,
            STORE_TRANSFORMS,
            RECORDS,
            INSERT_ATTEMPTS,
            END_STREAKS,
            CLAIMED_EVENTS,
            REPLAY,
            RENEW_LEASES_SQLITE,
            RENEW_LEASES_POSTGRES,
            PURGE_ATTEMPTS,
            PURGE_DELIVERIES,
            PURGE_EVENTS,
        ]
    }

    /// The highest parameter a statement uses, checking that `$1`, `$2`, …
    /// first appear in that order (how rusqlite numbers them).
    fn check_order(statement: &str) -> usize {
        let mut next = 1;
        let mut rest = statement;
        while let Some(at) = rest.find('$') {
            let digits: String = rest[at + 1..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            let n: usize = digits.parse().expect("a numbered parameter");
            assert!(n <= next, "${n} before ${next} in {statement}");
            if n == next {
                next += 1;
            }
            rest = &rest[at + 1 + digits.len()..];
        }
        next - 1
    }

    #[test]
    fn parameters_appear_in_order() {
        for statement in singles() {
            check_order(statement);
        }
        for m in multis() {
            for n in [1, 2, 3, 128] {
                assert_eq!(check_order(&m.sql(n)), n * m.params, "{}", m.sql(n));
            }
        }
    }

    #[test]
    fn rows_are_renumbered() {
        assert_eq!(
            END_STREAKS.sql(3),
            "DELETE FROM target_health WHERE target_id IN ($1, $2, $3) RETURNING target_id, failing_since"
        );
        assert_eq!(
            CLAIMED_EVENTS.sql(2).split("VALUES ").nth(1),
            Some("($1, $2), ($3, $4)) AS v ON e.organization_id = v.column1 AND e.id = v.column2")
        );
    }

    #[test]
    fn chunks_are_powers_of_two() {
        let sizes: Vec<usize> = chunks(300).map(|(_, n)| n).collect();
        assert_eq!(sizes, vec![128, 128, 32, 8, 4]);
        assert_eq!(chunks(0).count(), 0);
        let covered: usize = chunks(77).map(|(_, n)| n).sum();
        assert_eq!(covered, 77);
    }
}
