//! Why the SQLite writer uses rusqlite: the cost of one INSERT inside a
//! transaction through sqlx (which hands every statement to a worker
//! thread) and through rusqlite (a direct call), in the same run, on the
//! same kind of file. Prints wall and CPU time per statement for each.
//!
//! `cargo bench -p hookgate-tests --bench sqlite_statement`

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use std::str::FromStr;
use std::time::Instant;

const STATEMENTS: usize = 20_000;
const VALUE: &str = "a value of a modest size, like a receiver's URL";

/// CPU seconds this process has used, from /proc (all threads).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let Some(end) = stat.rfind(')') else {
        return 0.0;
    };
    let fields: Vec<&str> = stat[end + 2..].split(' ').collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

fn report(label: &str, wall: f64, cpu: f64) {
    println!(
        "{label}: {:.1} µs wall, {:.1} µs CPU per INSERT ({STATEMENTS} in one transaction)",
        wall / STATEMENTS as f64 * 1e6,
        cpu / STATEMENTS as f64 * 1e6
    );
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().expect("tempdir");

    let options = SqliteConnectOptions::from_str(&format!(
        "sqlite://{}",
        dir.path().join("sqlx.db").display()
    ))
    .expect("url")
    .create_if_missing(true)
    .journal_mode(SqliteJournalMode::Wal);
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .expect("open");
    sqlx::query("CREATE TABLE t (id TEXT PRIMARY KEY, v TEXT)")
        .execute(&pool)
        .await
        .expect("create");
    let mut tx = pool.begin().await.expect("begin");
    let (started, cpu) = (Instant::now(), cpu_seconds());
    for i in 0..STATEMENTS {
        sqlx::query("INSERT INTO t (id, v) VALUES ($1, $2)")
            .bind(format!("id{i}"))
            .bind(VALUE)
            .execute(&mut *tx)
            .await
            .expect("insert");
    }
    let (wall, cpu) = (started.elapsed().as_secs_f64(), cpu_seconds() - cpu);
    tx.commit().await.expect("commit");
    report("sqlx (baseline)", wall, cpu);

    let mut conn = rusqlite::Connection::open(dir.path().join("rusqlite.db")).expect("open");
    conn.execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (id TEXT PRIMARY KEY, v TEXT)")
        .expect("create");
    let tx = conn.transaction().expect("begin");
    let (started, cpu) = (Instant::now(), cpu_seconds());
    for i in 0..STATEMENTS {
        tx.prepare_cached("INSERT INTO t (id, v) VALUES (?1, ?2)")
            .expect("prepare")
            .execute(rusqlite::params![format!("id{i}"), VALUE])
            .expect("insert");
    }
    let (wall, cpu) = (started.elapsed().as_secs_f64(), cpu_seconds() - cpu);
    tx.commit().expect("commit");
    report("rusqlite (the writer)", wall, cpu);
}
