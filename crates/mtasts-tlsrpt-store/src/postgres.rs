//! The PostgreSQL backend, for several receivers sharing one database: one writer and one
//! reader connection (tokio-postgres, no TLS: the server is local or on a trusted network),
//! each reconnected on the next operation after it broke.
//!
//! Writes run in `READ COMMITTED` transactions: a report inserted by another receiver at the
//! same time makes `INSERT … ON CONFLICT DO NOTHING` wait for it, then see it. Reads run in
//! `REPEATABLE READ READ ONLY` transactions, so that the several queries of a summary see one
//! snapshot.

use std::collections::HashMap;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, Config, IsolationLevel, NoTls, Statement, Transaction};

use crate::error::{DbError, StoreError};
use crate::ops::{Conn, Migrate, Op, OpError};
use crate::sql::Dialect;
use crate::store::{op_error, open_error};
use crate::value::{Param, Row, Val};

pub(crate) const BACKEND: &str = "postgres";

/// How long connecting may take when the URL does not say (`connect_timeout`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) struct Postgres {
    config: Config,
    target: String,
    writer: Mutex<Option<Client>>,
    reader: Mutex<Option<Client>>,
}

impl Postgres {
    pub(crate) fn target(&self) -> &str {
        &self.target
    }

    /// Connects, and migrates the schema.
    pub(crate) async fn open(url: &str, target: String) -> Result<Postgres, StoreError> {
        let mut config: Config = url.parse().map_err(|source| StoreError::InvalidUrl {
            url: target.clone(),
            source,
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("mtasts-tlsrpt-store");
        }
        let mut client = connect(&config).await.map_err(|e| StoreError::Open {
            backend: BACKEND,
            target: target.clone(),
            step: "connect",
            source: DbError::Postgres(e),
        })?;
        run_in_transaction(&mut client, Migrate)
            .await
            .map_err(|e| open_error(BACKEND, &target, e))?;
        Ok(Postgres {
            config,
            target,
            writer: Mutex::new(Some(client)),
            reader: Mutex::new(None),
        })
    }

    /// Runs `op` in one transaction on the writer or the reader connection, connecting first
    /// when it is not connected or its connection broke.
    pub(crate) async fn run<O: Op>(&self, op: O) -> Result<O::Output, StoreError> {
        let name = O::NAME;
        let mut slot = if O::WRITE {
            self.writer.lock().await
        } else {
            self.reader.lock().await
        };
        if slot.as_ref().is_none_or(Client::is_closed) {
            *slot = None;
            let client = connect(&self.config).await.map_err(|e| StoreError::Query {
                backend: BACKEND,
                op: name,
                target: self.target.clone(),
                source: DbError::Postgres(e),
            })?;
            *slot = Some(client);
        }
        let Some(client) = slot.as_mut() else {
            return Err(op_error(
                BACKEND,
                name,
                &self.target,
                OpError::Internal("no connection after connecting"),
            ));
        };
        let result = run_in_transaction(client, op).await;
        if slot.as_ref().is_some_and(Client::is_closed) {
            *slot = None;
        }
        result.map_err(|e| op_error(BACKEND, name, &self.target, e))
    }
}

async fn run_in_transaction<O: Op>(client: &mut Client, op: O) -> Result<O::Output, OpError> {
    let tx = if O::WRITE {
        client.transaction().await
    } else {
        client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
    }
    .map_err(DbError::from)?;
    let out = {
        let mut c = PgConn {
            tx: &tx,
            statements: HashMap::new(),
        };
        op.run(&mut c).await
    };
    match out {
        Ok(v) => {
            tx.commit().await.map_err(DbError::from)?;
            Ok(v)
        }
        Err(e) => {
            // Dropping the transaction would roll it back too, without waiting.
            let _ = tx.rollback().await;
            Err(e)
        }
    }
}

async fn connect(config: &Config) -> Result<Client, tokio_postgres::Error> {
    let (client, connection) = config.connect(NoTls).await?;
    // The connection's task ends when the client is dropped or the server goes; the client
    // then reports every call as failed, and the next operation reconnects.
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// A connection in a transaction, with the statements it prepared.
struct PgConn<'t, 'c> {
    tx: &'t Transaction<'c>,
    statements: HashMap<String, Statement>,
}

impl PgConn<'_, '_> {
    async fn statement(&mut self, sql: &str) -> Result<Statement, tokio_postgres::Error> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = self.tx.prepare(sql).await?;
        self.statements.insert(sql.to_owned(), s.clone());
        Ok(s)
    }
}

fn pg_param(p: &Param) -> &(dyn ToSql + Sync) {
    match p {
        Param::Int(v) => v,
        Param::Text(v) => v,
        Param::Bytes(v) => v,
    }
}

fn pg_val(row: &tokio_postgres::Row, i: usize) -> Val {
    fn or_null<T>(r: Result<Option<T>, tokio_postgres::Error>, f: impl FnOnce(T) -> Val) -> Val {
        match r {
            Ok(Some(v)) => f(v),
            Ok(None) => Val::Null,
            Err(_) => Val::Unsupported,
        }
    }
    let ty = row.columns().get(i).map(|c| c.type_().clone());
    match ty {
        Some(Type::INT8) => or_null(row.try_get::<_, Option<i64>>(i), Val::Int),
        Some(Type::INT4) => or_null(row.try_get::<_, Option<i32>>(i), |v| Val::Int(v.into())),
        Some(Type::INT2) => or_null(row.try_get::<_, Option<i16>>(i), |v| Val::Int(v.into())),
        Some(Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME) => {
            or_null(row.try_get::<_, Option<String>>(i), Val::Text)
        }
        Some(Type::BYTEA) => or_null(row.try_get::<_, Option<Vec<u8>>>(i), Val::Bytes),
        Some(Type::FLOAT4 | Type::FLOAT8 | Type::NUMERIC) => Val::Real,
        _ => Val::Unsupported,
    }
}

impl Conn for PgConn<'_, '_> {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    async fn query(&mut self, sql: &str, params: &[Param]) -> Result<Vec<Row>, DbError> {
        let stmt = self.statement(sql).await?;
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(pg_param).collect();
        let rows = self.tx.query(&stmt, &refs).await?;
        Ok(rows
            .iter()
            .map(|row| (0..row.len()).map(|i| pg_val(row, i)).collect())
            .collect())
    }

    async fn execute(&mut self, sql: &str, params: &[Param]) -> Result<u64, DbError> {
        let stmt = self.statement(sql).await?;
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(pg_param).collect();
        Ok(self.tx.execute(&stmt, &refs).await?)
    }

    async fn batch(&mut self, sql: &str) -> Result<(), DbError> {
        Ok(self.tx.batch_execute(sql).await?)
    }
}
