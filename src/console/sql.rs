//! A small builder for the console's dynamic SQL: text is appended, every value is a bound
//! parameter (`$n` counted here), so user input never becomes SQL text.

use diesel::pg::Pg;
use diesel::query_builder::{BoxedSqlQuery, SqlQuery};
use diesel::serialize::ToSql;
use diesel::sql_types::HasSqlType;

pub struct Sql {
    query: BoxedSqlQuery<'static, Pg, SqlQuery>,
    params: usize,
}

impl Sql {
    pub fn new(text: &str) -> Self {
        Self {
            query: diesel::sql_query(text).into_boxed(),
            params: 0,
        }
    }

    /// Appends SQL text (never a value from outside: use [`Sql::bind`]).
    pub fn push(mut self, text: &str) -> Self {
        self.query = self.query.sql(text);
        self
    }

    /// Appends a placeholder and binds `value` to it.
    pub fn bind<ST, V>(mut self, value: V) -> Self
    where
        Pg: HasSqlType<ST>,
        V: ToSql<ST, Pg> + Send + 'static,
        ST: Send + 'static,
    {
        self.params += 1;
        self.query = self
            .query
            .sql(format!("${}", self.params))
            .bind::<ST, V>(value);
        self
    }

    pub fn into_query(self) -> BoxedSqlQuery<'static, Pg, SqlQuery> {
        self.query
    }
}
