//! The HTTP statistics API. Handlers read the in-memory totals, which the
//! writer updates after every durable commit; they never touch the raw
//! sales, so a request costs the same at ten thousand or ten million sales.

use actix_web::{web, App, HttpResponse, HttpServer};
use sales_storage::{SharedStatistics, WriterHealth};

/// Builds the HTTP server on an already bound listener. It does not catch
/// signals: the process's one shutdown path stops it.
pub(crate) fn server(
    listener: std::net::TcpListener,
    statistics: SharedStatistics,
    health: WriterHealth,
    workers: usize,
    grace_secs: u64,
) -> std::io::Result<actix_web::dev::Server> {
    let statistics = web::Data::new(statistics);
    let health = web::Data::new(health);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(statistics.clone())
            .app_data(health.clone())
            .configure(routes)
    })
    .workers(workers.max(1))
    .disable_signals()
    .shutdown_timeout(grace_secs)
    .listen(listener)?
    .run();
    Ok(server)
}

/// The API's resources; they expect the statistics and the writer's
/// health as app data.
fn routes(config: &mut web::ServiceConfig) {
    config
        .service(read_only("/sales_statistics", sales_statistics))
        .service(read_only("/healthz", healthz));
}

/// A resource answering GET and HEAD; other methods get 405 with `Allow`.
fn read_only<H, Args>(path: &str, handler: H) -> actix_web::Resource
where
    H: actix_web::Handler<Args> + Clone,
    Args: actix_web::FromRequest + 'static,
    H::Output: actix_web::Responder + 'static,
{
    web::resource(path)
        .route(web::get().to(handler.clone()))
        .route(web::head().to(handler))
        .default_service(web::to(|| async {
            HttpResponse::MethodNotAllowed()
                .insert_header(("Allow", "GET, HEAD"))
                .body("this API is read-only: use GET\n")
        }))
}

/// `GET /sales_statistics`: every item's totals and its months, in the
/// seed's JSON shape.
async fn sales_statistics(statistics: web::Data<SharedStatistics>) -> HttpResponse {
    let body = statistics
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .to_json();
    HttpResponse::Ok()
        .content_type("application/json")
        .body(body)
}

/// `GET /healthz`: 200 while the service takes sales; 503 once a write
/// has failed (a full disk, say), after which every write is refused until
/// a restart, so that an orchestrator restarts it.
async fn healthz(health: web::Data<WriterHealth>) -> HttpResponse {
    if health.is_writing() {
        return HttpResponse::Ok().content_type("text/plain").body("ok\n");
    }
    HttpResponse::ServiceUnavailable()
        .content_type("text/plain")
        .body("failing: a write to the database failed and writes are refused; restart the server (see its log)\n")
}

#[cfg(test)]
mod tests {
    use actix_web::{http::StatusCode, test};
    use sales_storage::{Store, StoreOptions, Writer};

    use super::*;

    #[actix_web::test]
    async fn healthz_answers_503_once_the_writer_takes_no_more_writes() {
        let dir = tempfile::tempdir().unwrap();
        let store =
            Store::open(&dir.path().join("db"), &StoreOptions::default()).unwrap();
        let writer = Writer::start(store).unwrap();
        let app = test::init_service(
            App::new()
                .app_data(web::Data::new(writer.statistics()))
                .app_data(web::Data::new(writer.health()))
                .configure(routes),
        )
        .await;
        let healthz = || test::TestRequest::get().uri("/healthz").to_request();

        let healthy = test::call_service(&app, healthz()).await;
        assert_eq!(healthy.status(), StatusCode::OK);
        assert_eq!(test::read_body(healthy).await, "ok\n");

        // A failed write and a stopped writer thread report the same way.
        tokio::task::spawn_blocking(move || writer.close())
            .await
            .unwrap()
            .unwrap();
        let failing = test::call_service(&app, healthz()).await;
        assert_eq!(failing.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body = test::read_body(failing).await;
        assert!(String::from_utf8_lossy(&body).contains("restart the server"));
    }
}
