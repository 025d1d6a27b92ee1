"""The API's library side: authentication and roles, rate limits, the request audit, readiness, batch runs,
analytics access and the dashboard's test and screenshot tooling.

Kept apart from apps/api (the FastAPI app and its thin routers) so that tests call each piece without a server:

    auth        OAuth2 bearer JWTs: JWKS issuer in AWS, the local keyring key locally; roles
    context     the per-process collaborators and the `require(role...)` dependency (401 -> 429 -> 403)
    ratelimit   token buckets per client (HTTP 429)
    audit       the after-response, hash-chained audit record of every request; correlation ids; metrics
    metrics     claims_api_* Prometheus collectors
    problems    RFC 9457 problem documents for every error status
    readiness   Kafka, lake and warehouse checks for /readyz
    batches     daily batch runs in child processes, one per date at a time
    warehouse   one short read-only DuckDB connection per analytics request (503 when missing or being written)
    stream_lag  the stream's consumer lag from the lag exporter's or the stream's Prometheus endpoint
    sample_warehouse   generated claims loaded by the warehouse loader (browser test, screenshot, load bench)
    web_assets  the dashboard's vendored chart libraries (which files; which are missing)
    dashboard_capture  the dashboard in headless Chromium (Playwright): what each chart drew, and a screenshot
    showcase    the API in a background thread; the dashboard screenshot of a sample warehouse
"""
