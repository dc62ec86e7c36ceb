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
            .service(read_only("/sales_statistics", sales_statistics))
            .service(read_only("/healthz", healthz))
    })
    .workers(workers.max(1))
    .disable_signals()
    .shutdown_timeout(grace_secs)
    .listen(listener)?
    .run();
    Ok(server)
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
