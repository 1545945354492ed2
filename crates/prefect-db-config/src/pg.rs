//! PostgreSQL connections: the URL plus Prefect's connection settings (connect timeout,
//! `application_name`, `search_path`, statement timeout, READ COMMITTED), optional TLS through
//! rustls, prepared-statement cache size, and SQL echo.

use crate::config::{DatabaseConfig, TlsConfig};
use crate::conn::AsyncPgConnection;
use crate::url::DatabaseUrl;
use diesel::ConnectionError;
use diesel_async::AsyncConnection;
use std::sync::Arc;

/// URL query parameters Prefect (asyncpg) accepts that libpq-style parsing does not, or that
/// Prefect moves out of the URL (`default_transaction_isolation` is always READ COMMITTED).
const PREFECT_ONLY_PARAMS: &[&str] =
    &["default_transaction_isolation", "prepared_statement_cache_size", "statement_cache_size", "command_timeout", "ssl"];

fn escape_option(value: &str) -> String {
    value.replace('\\', "\\\\").replace(' ', "\\ ")
}

/// The `tokio_postgres` configuration for `config`.
pub fn pg_config(config: &DatabaseConfig) -> Result<tokio_postgres::Config, ConnectionError> {
    let DatabaseUrl::Postgres(url) = &config.url else {
        return Err(ConnectionError::BadConnection("not a PostgreSQL URL".to_owned()));
    };
    let clean = url.without_query_params(PREFECT_ONLY_PARAMS);
    let mut pg: tokio_postgres::Config = clean
        .expose()
        .parse()
        .map_err(|e| ConnectionError::BadConnection(format!("{}: {e}", clean.masked())))?;
    pg.connect_timeout(config.connection_timeout);
    if let Some(app) = &config.application_name {
        pg.application_name(app);
    }
    if config.transaction_pooling() {
        // A transaction-mode pooler refuses the `options` startup parameter (PgBouncer:
        // "unsupported startup parameter"); each transaction applies these instead
        // ([`transaction_begin_sql`]).
        return Ok(with_tls(pg, config));
    }
    let mut options: Vec<String> = pg.get_options().map(|o| vec![o.to_owned()]).unwrap_or_default();
    options.push("-c default_transaction_isolation=read\\ committed".to_owned());
    if let Some(t) = config.statement_timeout {
        options.push(format!("-c statement_timeout={}", t.as_millis()));
    }
    if let Some(path) = &config.search_path {
        options.push(format!("-c search_path={}", escape_option(path)));
    }
    pg.options(options.join(" "));
    Ok(with_tls(pg, config))
}

fn with_tls(mut pg: tokio_postgres::Config, config: &DatabaseConfig) -> tokio_postgres::Config {
    if config.tls.enabled {
        // Prefect's TLS setting requires TLS; never fall back to a plain connection.
        pg.ssl_mode(tokio_postgres::config::SslMode::Require);
    }
    pg
}

/// What each transaction applies behind a transaction-mode pooler (`None` otherwise: the
/// session holds the settings), run right after `BEGIN` in the same batch: READ COMMITTED, and
/// the statement timeout and the search path for this transaction only. Only `SET`s, which
/// take no snapshot, so the transaction's body may still choose another isolation level.
/// `application_name` needs nothing: it is a startup parameter the pooler accepts and keeps per
/// client. No prepared statement needs clearing: each one the layer prepares is closed inside
/// its transaction (the statement cache is off, and a statement is closed when dropped).
pub fn transaction_settings_sql(config: &DatabaseConfig) -> Option<String> {
    if !config.transaction_pooling() {
        return None;
    }
    let mut sql = String::from("SET TRANSACTION ISOLATION LEVEL READ COMMITTED");
    if let Some(t) = config.statement_timeout {
        sql.push_str(&format!("; SET LOCAL statement_timeout = {}", t.as_millis().max(1)));
    }
    if let Some(path) = &config.search_path {
        sql.push_str(&format!("; SET LOCAL search_path = {}", search_path_list(path)));
    }
    Some(sql)
}

/// A `search_path` setting (`"$user", public`) as the list `SET` takes: each schema quoted as
/// an identifier unless it already is.
fn search_path_list(path: &str) -> String {
    path.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| if s.len() >= 2 && s.starts_with('"') && s.ends_with('"') { s.to_owned() } else { format!("\"{}\"", s.replace('"', "\"\"")) })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The SQL every outermost transaction begins with behind a transaction-mode pooler (one
/// round trip): `BEGIN` and [`transaction_settings_sql`].
pub fn transaction_begin_sql(config: &DatabaseConfig) -> Option<String> {
    transaction_settings_sql(config).map(|settings| format!("BEGIN; {settings}"))
}

/// Opens one configured connection.
pub(crate) async fn connect(config: &DatabaseConfig) -> Result<AsyncPgConnection, ConnectionError> {
    let pg = pg_config(config)?;
    let masked = config.url.masked();
    // tokio-postgres displays a server's refusal as "db error"; the server's own message
    // ("database \"x\" does not exist", "password authentication failed …") is what helps.
    let bad = |e: tokio_postgres::Error| match e.as_db_error() {
        Some(db) => ConnectionError::BadConnection(format!("{masked}: {} ({})", db.message(), db.code().code())),
        None => ConnectionError::BadConnection(format!("{masked}: {e}")),
    };
    let pooled = config.transaction_pooling();
    let mut conn = if config.tls.enabled {
        let connector = tokio_postgres_rustls::MakeRustlsConnect::new(tls_client_config(&config.tls)?);
        let (client, connection) = pg.connect(connector).await.map_err(bad)?;
        set_up(client, connection, pooled).await?
    } else {
        let (client, connection) = pg.connect(tokio_postgres::NoTls).await.map_err(bad)?;
        set_up(client, connection, pooled).await?
    };
    if pooled {
        conn.set_prepared_statement_cache_size(diesel::connection::CacheSize::Disabled);
    }
    if let Some(instrumentation) = crate::observe::StatementInstrumentation::for_config(config) {
        conn.set_instrumentation(instrumentation);
    }
    Ok(conn)
}

/// diesel-async's set-up of a new connection (time zone and encoding, sent as prepared
/// statements). Behind a transaction-mode pooler it runs inside one transaction, so each
/// statement is prepared and executed on the one server connection the pooler lends for it;
/// the pooler keeps the two settings for this client (it tracks `TimeZone` and
/// `client_encoding`).
async fn set_up<S>(
    client: tokio_postgres::Client,
    connection: tokio_postgres::Connection<tokio_postgres::Socket, S>,
    pooled: bool,
) -> Result<AsyncPgConnection, ConnectionError>
where
    S: tokio_postgres::tls::TlsStream + Unpin + Send + 'static,
{
    if !pooled {
        return AsyncPgConnection::try_from_client_and_connection(client, connection).await;
    }
    let driver = tokio::spawn(connection);
    let begun = async {
        client.batch_execute("BEGIN").await.map_err(|e| ConnectionError::BadConnection(format!("set-up: {e}")))?;
        let mut conn = AsyncPgConnection::try_from(client).await?;
        diesel_async::SimpleAsyncConnection::batch_execute(&mut conn, "COMMIT").await.map_err(ConnectionError::CouldntSetupConfiguration)?;
        Ok(conn)
    }
    .await;
    if begun.is_err() {
        driver.abort();
    }
    begun
}

fn tls_error(what: &str, e: impl std::fmt::Display) -> ConnectionError {
    ConnectionError::BadConnection(format!("TLS setup: {what}: {e}"))
}

/// The rustls client configuration Prefect's TLS settings describe: TLS 1.2 or later,
/// certificates always verified (against the CA file, else the web roots), client certificate
/// when both certificate and key are given, hostname check unless disabled.
pub fn tls_client_config(tls: &TlsConfig) -> Result<rustls::ClientConfig, ConnectionError> {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    if let Some(ca) = &tls.ca_file {
        let pem = std::fs::read(ca).map_err(|e| tls_error(&format!("CA file {}", ca.display()), e))?;
        let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut pem.as_slice())
            .collect::<Result<_, _>>()
            .map_err(|e| tls_error(&format!("CA file {}", ca.display()), e))?;
        if certs.is_empty() {
            return Err(tls_error(&format!("CA file {}", ca.display()), "no certificate found"));
        }
        for cert in certs {
            roots.add(cert).map_err(|e| tls_error(&format!("CA file {}", ca.display()), e))?;
        }
    } else {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    let roots = Arc::new(roots);
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| tls_error("protocol versions", e))?;
    let builder = if tls.check_hostname {
        builder.with_root_certificates(roots)
    } else {
        let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(roots, provider)
            .build()
            .map_err(|e| tls_error("verifier", e))?;
        builder.dangerous().with_custom_certificate_verifier(Arc::new(NoHostnameCheck { inner }))
    };
    match (&tls.cert_file, &tls.key_file) {
        (Some(cert), Some(key)) => {
            let cert_pem = std::fs::read(cert).map_err(|e| tls_error(&format!("certificate file {}", cert.display()), e))?;
            let chain: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut cert_pem.as_slice())
                .collect::<Result<_, _>>()
                .map_err(|e| tls_error(&format!("certificate file {}", cert.display()), e))?;
            let key_pem = std::fs::read(key).map_err(|e| tls_error(&format!("key file {}", key.display()), e))?;
            let key_der: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut key_pem.as_slice())
                .map_err(|e| tls_error(&format!("key file {}", key.display()), e))?
                .ok_or_else(|| tls_error(&format!("key file {}", key.display()), "no private key found"))?;
            builder.with_client_auth_cert(chain, key_der).map_err(|e| tls_error("client certificate", e))
        }
        _ => Ok(builder.with_no_client_auth()),
    }
}

/// Verifies the certificate chain but not the host name (`check_hostname = false`).
#[derive(Debug)]
struct NoHostnameCheck {
    inner: Arc<rustls::client::WebPkiServerVerifier>,
}

impl rustls::client::danger::ServerCertVerifier for NoHostnameCheck {
    fn verify_server_cert(
        &self,
        end_entity: &rustls::pki_types::CertificateDer<'_>,
        intermediates: &[rustls::pki_types::CertificateDer<'_>],
        server_name: &rustls::pki_types::ServerName<'_>,
        ocsp_response: &[u8],
        now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        match self.inner.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName))
            | Err(rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForNameContext { .. })) => {
                Ok(rustls::client::danger::ServerCertVerified::assertion())
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
