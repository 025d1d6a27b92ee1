-- The warehouse schema, written once in the DuckDB dialect.
--
-- DuckDB executes this file as is (local warehouse); libs/warehouse/dialect.py transpiles it with sqlglot to the
-- Redshift dialect for `claims deploy`. Rules for editing it:
--   * every statement is CREATE ... IF NOT EXISTS, so applying the file twice changes nothing;
--   * only types both engines share (VARCHAR, DECIMAL, BIGINT, INTEGER, DOUBLE, DATE, TIMESTAMP, BOOLEAN);
--     no arrays or structs (Redshift would need SUPER), lists are stored as comma-separated codes;
--   * no CHECK constraints (Redshift ignores them silently); primary keys are informational in Redshift;
--   * PHI never appears in clear: a person's identifiers are stored only as deterministic HMAC tokens (joinable,
--     not reversible) and as one AES-GCM envelope ciphertext per person (reversible with the key, audited);
--   * Redshift distribution and sort keys are declared in dialect.py, not here (DuckDB has no such clause).
--   * changing an existing table needs an explicit migration: CREATE IF NOT EXISTS never alters a table.

-- One row per silver claim (the latest accepted version of a claim ID; replacements overwrite, voids flag).
CREATE TABLE IF NOT EXISTS claims (
    claim_id                  VARCHAR(64)    NOT NULL,
    claim_type                VARCHAR(16)    NOT NULL,  -- professional (837P) or institutional (837I)
    frequency_code            VARCHAR(1)     NOT NULL,  -- 1 original, 7 replacement, 8 void
    original_claim_id         VARCHAR(64),              -- claim replaced or voided (REF*F8)
    is_voided                 BOOLEAN        NOT NULL DEFAULT FALSE,
    billing_npi               VARCHAR(10),
    rendering_npi             VARCHAR(10),
    attending_npi             VARCHAR(10),
    referring_npi             VARCHAR(10),
    facility_npi              VARCHAR(10),
    payer_id                  VARCHAR(80),
    place_of_service          VARCHAR(2),               -- professional claims
    type_of_bill              VARCHAR(4),               -- institutional claims
    service_date_from         DATE,
    service_date_to           DATE,
    admission_date            DATE,
    discharge_date            DATE,
    principal_diagnosis_code  VARCHAR(8),
    diagnosis_system          VARCHAR(10),              -- ICD-10-CM or ICD-9-CM
    diagnosis_codes           VARCHAR(512),             -- all diagnosis codes in claim order, comma-separated
    drg_code                  VARCHAR(4),
    line_count                INTEGER        NOT NULL,
    total_charge              DECIMAL(14, 2),
    allowed_amount            DECIMAL(14, 2),
    paid_amount               DECIMAL(14, 2),
    -- De-identified patient attributes Safe Harbor allows: gender and state.
    patient_gender            VARCHAR(1),
    patient_state             VARCHAR(2),
    -- PHI, protected: HMAC tokens join a member's claims without revealing the member ID ...
    member_token              VARCHAR(64),
    subscriber_member_token   VARCHAR(64),
    -- ... and the sealed block holds every encrypted PHI value for audited re-identification (claims reveal).
    phi_ciphertext            VARCHAR(4096),
    phi_key_id                VARCHAR(256),             -- which data key wrapped the sealed block
    -- Screening and lineage.
    warning_codes             VARCHAR(512),             -- validation warnings (the claim still flowed on)
    fraud_codes               VARCHAR(256),             -- fraud scenario codes alerted on this claim
    source_format             VARCHAR(24)    NOT NULL,
    source_file               VARCHAR(512),
    source_locator            VARCHAR(128),
    received_date             DATE,
    kafka_topic               VARCHAR(249),
    kafka_partition           INTEGER,
    kafka_offset              BIGINT,
    batch_run_id              VARCHAR(64),
    loaded_at                 TIMESTAMP      NOT NULL DEFAULT CURRENT_TIMESTAMP,
    -- Added by migration 1 (libs/warehouse/migrations.py): the analytics attributes silver computes at ingest.
    ingest_date               DATE,                     -- UTC day the claim version arrived (the daily batch's day)
    age_band                  VARCHAR(8),               -- from phi_derived.patient_age_years, never the birth date
    billing_specialty         VARCHAR(64),
    em_level                  INTEGER,                  -- highest E/M level billed on the claim (1-5), NULL if none
    PRIMARY KEY (claim_id)
);

-- One row per service line of a silver claim.
CREATE TABLE IF NOT EXISTS claim_lines (
    claim_id           VARCHAR(64)    NOT NULL,
    line_number        INTEGER        NOT NULL,
    procedure_code     VARCHAR(8),
    procedure_system   VARCHAR(16),                    -- HCPCS, ICD-10-PCS, ICD-9-CM-PROC
    modifiers          VARCHAR(16),                    -- up to four 2-character modifiers, comma-separated
    revenue_code       VARCHAR(4),
    units              DECIMAL(12, 3),
    unit_type          VARCHAR(2),                     -- UN units, MJ minutes, DA days
    charge             DECIMAL(14, 2),
    allowed_amount     DECIMAL(14, 2),
    paid_amount        DECIMAL(14, 2),
    service_date_from  DATE,
    service_date_to    DATE,
    place_of_service   VARCHAR(2),
    diagnosis_pointers VARCHAR(32),                    -- 1-based pointers into the claim's diagnoses
    rendering_npi      VARCHAR(10),
    ndc                VARCHAR(11),
    loaded_at          TIMESTAMP      NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (claim_id, line_number)
);

-- Providers seen on claims (public NPPES-style directory data, not PHI).
CREATE TABLE IF NOT EXISTS providers (
    npi                   VARCHAR(10)   NOT NULL,
    name                  VARCHAR(256),
    entity_type           VARCHAR(1),                  -- 1 person, 2 organisation
    taxonomy              VARCHAR(10),
    specialty             VARCHAR(128),
    address_line1         VARCHAR(256),
    address_city          VARCHAR(128),
    address_state         VARCHAR(2),
    address_postal_code   VARCHAR(10),
    first_service_date    DATE,
    last_service_date     DATE,
    claim_count           BIGINT        NOT NULL DEFAULT 0,
    updated_at            TIMESTAMP     NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (npi)
);

-- Data-quality measurements, one row per pipeline batch, metric and dimension (e.g. a reason code).
CREATE TABLE IF NOT EXISTS quality_metrics (
    pipeline      VARCHAR(16)   NOT NULL,              -- streaming or batch
    batch_run_id  VARCHAR(64)   NOT NULL,
    metric_name   VARCHAR(64)   NOT NULL,              -- e.g. valid_ratio, quarantined_rows, rows_per_second
    dimension     VARCHAR(64)   NOT NULL DEFAULT '',   -- '' for the batch total, else e.g. the reason code
    metric_value  DOUBLE        NOT NULL,
    window_start  TIMESTAMP,
    window_end    TIMESTAMP,
    recorded_at   TIMESTAMP     NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (pipeline, batch_run_id, metric_name, dimension)
);

-- Quarantined claims counted per day, reason code and source (the claims themselves stay in the lake).
CREATE TABLE IF NOT EXISTS quarantine_summary (
    summary_date   DATE          NOT NULL,
    reason_code    VARCHAR(64)   NOT NULL,             -- libs.validation.catalog.ReasonCode or adapter code
    severity       VARCHAR(8)    NOT NULL,             -- error or warning
    source_format  VARCHAR(24)   NOT NULL,
    claim_count    BIGINT        NOT NULL,
    first_seen_at  TIMESTAMP,
    last_seen_at   TIMESTAMP,
    updated_at     TIMESTAMP     NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (summary_date, reason_code, source_format)
);

-- One row per streaming micro-batch or batch job run: the reconciliation ledger (rows in = rows out).
CREATE TABLE IF NOT EXISTS batch_runs (
    batch_run_id       VARCHAR(64)   NOT NULL,
    pipeline           VARCHAR(16)   NOT NULL,         -- streaming or batch
    micro_batch_id     BIGINT,                         -- Spark foreachBatch id (streaming only)
    run_date           DATE,                           -- the day of claims a batch run covered (NULL: all)
    status             VARCHAR(16)   NOT NULL,         -- running, succeeded, failed
    started_at         TIMESTAMP     NOT NULL,
    finished_at        TIMESTAMP,
    duration_seconds   DOUBLE,
    input_rows         BIGINT        NOT NULL DEFAULT 0,
    valid_rows         BIGINT        NOT NULL DEFAULT 0,
    quarantined_rows   BIGINT        NOT NULL DEFAULT 0,
    dead_letter_rows   BIGINT        NOT NULL DEFAULT 0,
    start_offsets      VARCHAR(4096),                  -- Kafka offsets as JSON {"topic": {"partition": offset}}
    end_offsets        VARCHAR(4096),
    app_version        VARCHAR(96),                    -- the deployed wheel's content digest
    error_message      VARCHAR(1024),                  -- never PHI: reason codes and locations only
    PRIMARY KEY (batch_run_id)
);

-- Per intake day and source format: how many claims arrived valid and quarantined, replacements and voids (the
-- daily KPI mart's denominators). Recomputed for the day by every batch run.
CREATE TABLE IF NOT EXISTS intake_daily (
    intake_date         DATE          NOT NULL,
    source_format       VARCHAR(24)   NOT NULL,
    valid_claims        BIGINT        NOT NULL,
    quarantined_claims  BIGINT        NOT NULL,
    replacements        BIGINT        NOT NULL,
    voids               BIGINT        NOT NULL,
    updated_at          TIMESTAMP     NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (intake_date, source_format)
);

-- Per intake day, source format and canonical field the rules look at: claims whose field was valid, invalid or
-- missing (the Tuva data-quality buckets). Recomputed for the day by every batch run.
CREATE TABLE IF NOT EXISTS field_quality (
    intake_date     DATE          NOT NULL,
    source_format   VARCHAR(24)   NOT NULL,
    field_name      VARCHAR(64)   NOT NULL,
    valid_count     BIGINT        NOT NULL,
    invalid_count   BIGINT        NOT NULL,
    missing_count   BIGINT        NOT NULL,
    updated_at      TIMESTAMP     NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (intake_date, source_format, field_name)
);

-- Member months: one row per member (token), payer and calendar month of eligibility, from the plan's enrolment
-- (the generator's population) or the DE-SynPUF beneficiary summaries. The PMPM and per-1,000 denominators.
CREATE TABLE IF NOT EXISTS eligibility (
    member_token        VARCHAR(64)   NOT NULL,
    payer_id            VARCHAR(80)   NOT NULL,
    eligibility_month   DATE          NOT NULL,   -- first day of the month
    age_band            VARCHAR(8),
    gender              VARCHAR(1),
    state               VARCHAR(2),
    source              VARCHAR(24)   NOT NULL,   -- generator, synpuf-beneficiary, ...
    PRIMARY KEY (member_token, payer_id, eligibility_month)
);

-- Reference data from the code sets, refreshed by every batch run: procedures (category, E/M level) and the
-- specialties' expected E/M level mix.
CREATE TABLE IF NOT EXISTS ref_procedures (
    procedure_code  VARCHAR(8)    NOT NULL,
    description     VARCHAR(256),
    category        VARCHAR(32),
    em_level        INTEGER,
    PRIMARY KEY (procedure_code)
);

CREATE TABLE IF NOT EXISTS ref_specialties (
    taxonomy             VARCHAR(10)   NOT NULL,
    specialty            VARCHAR(64)   NOT NULL,
    expected_level5_share DOUBLE       NOT NULL,
    PRIMARY KEY (taxonomy)
);

-- Applied migrations (libs/warehouse/migrations.py): an existing warehouse upgrades in place, once per version.
CREATE TABLE IF NOT EXISTS schema_migrations (
    version      INTEGER       NOT NULL,
    description  VARCHAR(256)  NOT NULL,
    applied_at   TIMESTAMP     NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (version)
);
