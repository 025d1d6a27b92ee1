-- The analytics marts, written once in the DuckDB dialect. Each statement is one mart: `-- mart: <name>` names it,
-- the SELECT computes it from the warehouse tables. libs/analytics/marts.py rebuilds each one as a table (DuckDB:
-- CREATE OR REPLACE TABLE; Redshift: DROP + CREATE TABLE AS, transpiled by sqlglot; the bench runs the same SELECTs
-- in Spark SQL). A mart is recomputed from the warehouse as a whole, so rebuilding it twice gives the same table.
-- Rules: no PHI column (member tokens are aggregated away), only functions all three engines share.

-- mart: mart_daily_kpis
SELECT i.intake_date,
       SUM(i.valid_claims) AS claims,
       SUM(i.quarantined_claims) AS quarantined,
       CAST(SUM(i.valid_claims) AS DOUBLE) / NULLIF(SUM(i.valid_claims) + SUM(i.quarantined_claims), 0) AS valid_ratio,
       SUM(i.replacements) AS replacements,
       SUM(i.voids) AS voids,
       COALESCE(MAX(b.billed), 0) AS billed_amount
FROM intake_daily AS i
LEFT JOIN (SELECT ingest_date, SUM(total_charge) AS billed FROM claims GROUP BY ingest_date) AS b
       ON b.ingest_date = i.intake_date
GROUP BY i.intake_date;

-- mart: mart_pmpm
WITH months AS (
    SELECT payer_id, eligibility_month AS month, COUNT(*) AS member_months
    FROM eligibility GROUP BY payer_id, eligibility_month
), claim_month AS (
    SELECT c.claim_id, c.payer_id, c.claim_type, c.type_of_bill, c.place_of_service, c.em_level,
           c.total_charge, c.allowed_amount, c.paid_amount,
           CAST(DATE_TRUNC('month', COALESCE(c.service_date_from, c.service_date_to)) AS DATE) AS month
    FROM claims AS c
    WHERE c.is_voided = FALSE AND c.payer_id IS NOT NULL
), ed AS (
    SELECT DISTINCT claim_id FROM claim_lines
    WHERE revenue_code LIKE '045%' OR procedure_code IN ('99281', '99282', '99283', '99284', '99285')
), usage AS (
    SELECT m.payer_id, m.month,
           COUNT(*) AS claims,
           SUM(m.total_charge) AS billed,
           SUM(COALESCE(m.allowed_amount, 0)) AS allowed,
           SUM(COALESCE(m.paid_amount, 0)) AS paid,
           SUM(CASE WHEN m.em_level IS NOT NULL THEN 1 ELSE 0 END) AS em_visits,
           SUM(CASE WHEN m.claim_type = 'institutional' AND m.type_of_bill LIKE '11%' THEN 1 ELSE 0 END) AS admissions,
           SUM(CASE WHEN ed.claim_id IS NOT NULL OR m.place_of_service = '23' THEN 1 ELSE 0 END) AS ed_visits
    FROM claim_month AS m LEFT JOIN ed ON ed.claim_id = m.claim_id
    GROUP BY m.payer_id, m.month
)
SELECT mm.payer_id, mm.month, mm.member_months,
       COALESCE(u.claims, 0) AS claims,
       COALESCE(u.billed, 0) AS billed,
       COALESCE(u.allowed, 0) AS allowed,
       COALESCE(u.paid, 0) AS paid,
       CAST(COALESCE(u.billed, 0) AS DOUBLE) / mm.member_months AS billed_pmpm,
       CAST(COALESCE(u.paid, 0) AS DOUBLE) / mm.member_months AS paid_pmpm,
       COALESCE(u.em_visits, 0) AS em_visits,
       COALESCE(u.admissions, 0) AS admissions,
       COALESCE(u.ed_visits, 0) AS ed_visits,
       COALESCE(u.em_visits, 0) * 1000.0 / mm.member_months AS em_visits_per_1000,
       COALESCE(u.admissions, 0) * 1000.0 / mm.member_months AS admissions_per_1000,
       COALESCE(u.ed_visits, 0) * 1000.0 / mm.member_months AS ed_visits_per_1000
FROM months AS mm
LEFT JOIN usage AS u ON u.payer_id = mm.payer_id AND u.month = mm.month;

-- mart: mart_top_diagnoses
-- A diagnosis is its code in its system (ICD-10-CM or ICD-9-CM), so both are grouping keys: no aggregate over a
-- string column (in Spark a MAX over a string forces a sort-based aggregation of every claim).
SELECT month, principal_diagnosis_code AS diagnosis_code, diagnosis_system, claims, billed,
       ROW_NUMBER() OVER (PARTITION BY month ORDER BY claims DESC, principal_diagnosis_code, diagnosis_system) AS rank
FROM (
    SELECT CAST(DATE_TRUNC('month', service_date_from) AS DATE) AS month, principal_diagnosis_code, diagnosis_system,
           COUNT(*) AS claims, SUM(total_charge) AS billed
    FROM claims
    WHERE is_voided = FALSE AND principal_diagnosis_code IS NOT NULL AND service_date_from IS NOT NULL
    GROUP BY CAST(DATE_TRUNC('month', service_date_from) AS DATE), principal_diagnosis_code, diagnosis_system
) AS d;

-- mart: mart_top_procedures
SELECT month, procedure_code, lines, units, billed,
       ROW_NUMBER() OVER (PARTITION BY month ORDER BY lines DESC, procedure_code) AS rank
FROM (
    SELECT CAST(DATE_TRUNC('month', COALESCE(l.service_date_from, c.service_date_from)) AS DATE) AS month,
           l.procedure_code, COUNT(*) AS lines, SUM(COALESCE(l.units, 0)) AS units, SUM(l.charge) AS billed
    FROM claim_lines AS l JOIN claims AS c ON c.claim_id = l.claim_id
    WHERE c.is_voided = FALSE AND l.procedure_code IS NOT NULL
      AND COALESCE(l.service_date_from, c.service_date_from) IS NOT NULL
    GROUP BY CAST(DATE_TRUNC('month', COALESCE(l.service_date_from, c.service_date_from)) AS DATE), l.procedure_code
) AS p;

-- mart: mart_provider_profiles
-- Aggregated per NPI first, then joined to the (unique) provider and specialty rows: the big aggregation carries no
-- string column (in Spark a MAX over a string forces a sort-based aggregation of every claim).
WITH volume AS (
    SELECT rendering_npi AS npi,
           COUNT(*) AS claims,
           COUNT(DISTINCT member_token) AS members,
           SUM(total_charge) AS billed,
           SUM(CASE WHEN em_level IS NOT NULL THEN 1 ELSE 0 END) AS em_visits,
           SUM(CASE WHEN em_level >= 5 THEN 1 ELSE 0 END) AS level5_visits,
           SUM(CASE WHEN fraud_codes IS NOT NULL THEN 1 ELSE 0 END) AS alerted_claims
    FROM claims
    WHERE is_voided = FALSE AND rendering_npi IS NOT NULL
    GROUP BY rendering_npi
)
SELECT v.npi,
       p.specialty,
       v.claims,
       v.members,
       v.billed,
       v.billed / NULLIF(v.members, 0) AS billed_per_member,
       v.em_visits,
       CAST(v.level5_visits AS DOUBLE) / NULLIF(v.em_visits, 0) AS level5_share,
       s.expected_level5_share,
       v.alerted_claims
FROM volume AS v
LEFT JOIN providers AS p ON p.npi = v.npi
LEFT JOIN ref_specialties AS s ON s.taxonomy = p.taxonomy;

-- mart: mart_quarantine_trend
SELECT summary_date, reason_code, severity, source_format, claim_count
FROM quarantine_summary;

-- mart: mart_data_quality
SELECT source_format, field_name,
       SUM(valid_count) AS valid_count,
       SUM(invalid_count) AS invalid_count,
       SUM(missing_count) AS missing_count,
       CAST(SUM(valid_count) AS DOUBLE) / NULLIF(SUM(valid_count) + SUM(invalid_count) + SUM(missing_count), 0)
           AS valid_share
FROM field_quality
GROUP BY source_format, field_name;
