//! Logging: text (colour only on a terminal) or JSON on stderr, filtered by
//! `STRONGROOM_LOG`, and request spans exported over OpenTelemetry when asked.

use crate::error::Error;

/// Installs the log subscriber; with `otlp`, also the span exporter (returned, to be shut
/// down, which flushes it).
pub fn init_logging(
    json: bool,
    otlp: Option<&str>,
) -> Result<Option<opentelemetry_sdk::trace::SdkTracerProvider>, Error> {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    use tracing_subscriber::Layer as _;
    let filter = tracing_subscriber::EnvFilter::try_from_env("STRONGROOM_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,hyper=warn"));
    // Colours only on a terminal: a log file or a pipe to a collector gets plain text.
    let colour = {
        use std::io::IsTerminal as _;
        std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none()
    };
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(colour);
    let fmt = if json {
        fmt.json().boxed()
    } else {
        fmt.boxed()
    };
    let (otel, provider) = match otlp {
        None => (None, None),
        Some(url) => {
            use opentelemetry::trace::TracerProvider as _;
            use opentelemetry_otlp::WithExportConfig as _;
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_endpoint(url)
                .build()
                .map_err(Error::context(format!("--otlp-endpoint {url}")))?;
            let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
                .with_batch_exporter(exporter)
                .with_resource(
                    opentelemetry_sdk::Resource::builder()
                        .with_service_name("strongroom")
                        .build(),
                )
                .build();
            let layer = tracing_opentelemetry::layer()
                .with_tracer(provider.tracer("strongroom"))
                .with_filter(
                    tracing_subscriber::filter::Targets::new()
                        .with_target("strongroom::request", tracing::Level::INFO),
                );
            (Some(layer), Some(provider))
        }
    };
    let _ = tracing_subscriber::registry()
        .with(fmt.with_filter(filter))
        .with(otel)
        .try_init();
    Ok(provider)
}
