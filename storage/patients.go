package storage

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"

	"github.com/chartscan/chartscan"
)

// ImportStats counts what an EMPI import did.
type ImportStats struct {
	Read      int // records read
	Inserted  int // new patients
	Updated   int // patients whose record changed
	Unchanged int // patients already stored exactly so
	Repeated  int // records overridden by a later record with the same MRN in the same file
	// Skipped counts the records of the file that could not be imported, and
	// SkippedRecords lists them (the first of them, in a large file). The caller that
	// reads the file fills both in: ImportPatients sees only the patients.
	Skipped        int
	SkippedRecords []SkippedRecord
}

// SkippedRecord is a record of an import file that could not be imported: where it is in
// the file ("line 12", "entry[71]") and why ("no MRN"). Neither is PHI.
type SkippedRecord struct {
	Where  string `json:"where"`
	Reason string `json:"reason"`
}

// String returns "where: reason".
func (s SkippedRecord) String() string { return s.Where + ": " + s.Reason }

// importChunk is how many patients go to Postgres in one COPY: large enough that COPY's
// speed dominates, small enough to keep memory flat on a million-row file.
const importChunk = 20000

// importWorkers merge chunks at once, each on its own connection: a merge keeps one
// PostgreSQL backend busy, so two use both cores of a small server.
const importWorkers = 2

var patientColumns = []string{"mrn", "family", "given", "birth_date", "birth_partial", "sex", "street", "city", "postcode", "state", "phone"}

// importer is one merge worker: the chunk it is filling, and the MRNs in it.
type importer struct {
	rows  [][]any
	seen  map[string]int
	ch    chan [][]any
	stats ImportStats
}

// ImportPatients upserts by MRN the patients that records yields. A patient's BirthDate
// is YYYY-MM-DD, a partial YYYY or YYYY-MM (kept in birth_partial) or empty; an empty
// name or birth date is stored as such, never filled in. Each chunk is copied
// into a temporary table with COPY and merged in one statement that touches only rows
// that differ, so importing the same file twice changes nothing. Chunks are merged by
// importWorkers connections at once; an MRN always goes to the same worker, in file
// order, so the last record of an MRN wins as it would one by one.
func (db *DB) ImportPatients(ctx context.Context, records func(yield func(chartscan.Patient) error) error) (ImportStats, error) {
	var st ImportStats
	g, gctx := errgroup.WithContext(ctx)
	workers := make([]*importer, importWorkers)
	for i := range workers {
		w := &importer{seen: make(map[string]int, importChunk), ch: make(chan [][]any, 1)}
		workers[i] = w
		g.Go(func() error {
			conn, err := db.pool.Acquire(gctx)
			if err != nil {
				for range w.ch { // keep the producer from blocking
				}
				return err
			}
			defer conn.Release()
			if _, err := conn.Exec(gctx, `
				CREATE TEMP TABLE IF NOT EXISTS patients_in (LIKE patients INCLUDING DEFAULTS) ON COMMIT DELETE ROWS`); err != nil {
				for range w.ch {
				}
				return fmt.Errorf("import: %w", err)
			}
			var ferr error
			for rows := range w.ch {
				if ferr != nil {
					continue
				}
				ins, upd, err := mergePatients(gctx, conn.Conn(), patientColumns, rows)
				if err != nil {
					ferr = err
					continue
				}
				w.stats.Inserted += ins
				w.stats.Updated += upd
				w.stats.Unchanged += len(rows) - ins - upd
			}
			return ferr
		})
	}
	send := func(w *importer) error {
		if len(w.rows) == 0 {
			return nil
		}
		select {
		case w.ch <- w.rows:
		case <-gctx.Done():
			return gctx.Err()
		}
		w.rows = make([][]any, 0, importChunk)
		clear(w.seen)
		return nil
	}
	err := records(func(p chartscan.Patient) error {
		st.Read++
		dob, partial, ok := birthColumns(p.BirthDate)
		if !ok {
			return fmt.Errorf("record %d: birth date is not YYYY-MM-DD, YYYY-MM or YYYY", st.Read)
		}
		row := []any{p.MRN, p.Family, p.Given, dob, partial, p.Sex, p.Street, p.City, p.Postcode, p.State, p.Phone}
		w := workers[fnv32(p.MRN)%importWorkers]
		// The last record of an MRN wins, within a chunk as across chunks.
		if i, dup := w.seen[p.MRN]; dup {
			w.rows[i] = row
			st.Repeated++
			return nil
		}
		w.seen[p.MRN] = len(w.rows)
		w.rows = append(w.rows, row)
		if len(w.rows) == importChunk {
			return send(w)
		}
		return nil
	})
	for _, w := range workers {
		if err == nil {
			err = send(w)
		}
		close(w.ch)
	}
	if gerr := g.Wait(); err == nil {
		err = gerr
	}
	for _, w := range workers {
		st.Inserted += w.stats.Inserted
		st.Updated += w.stats.Updated
		st.Unchanged += w.stats.Unchanged
	}
	if err != nil {
		return st, err
	}
	if st.Inserted+st.Updated > 0 {
		return st, db.refreshSurnameCounts(ctx)
	}
	return st, nil
}

// birthColumns splits a patient's birth date into the birth_date and birth_partial
// columns: a whole date goes to the first, a year or year and month to the second.
func birthColumns(s string) (dob *time.Time, partial *string, ok bool) {
	switch len(s) {
	case 0:
		return nil, nil, true
	case len(time.DateOnly):
		t, err := time.Parse(time.DateOnly, s)
		return &t, nil, err == nil
	case len("2006"), len("2006-01"):
		if _, err := time.Parse("2006-01"[:len(s)], s); err != nil {
			return nil, nil, false
		}
		return nil, &s, true
	}
	return nil, nil, false
}

// birthDateSQL is a patient's birth date as Patient.BirthDate holds it, for the
// patients table p.
const birthDateSQL = `coalesce(to_char(p.birth_date, 'YYYY-MM-DD'), p.birth_partial, '')`

func fnv32(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h = (h ^ uint32(s[i])) * 16777619
	}
	return h
}

func mergePatients(ctx context.Context, conn *pgx.Conn, cols []string, rows [][]any) (inserted, updated int, err error) {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return 0, 0, err
	}
	defer tx.Rollback(ctx)
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"patients_in"}, cols, pgx.CopyFromRows(rows)); err != nil {
		return 0, 0, fmt.Errorf("import copy: %w", err)
	}
	// xmax = 0 tells an inserted row from an updated one.
	r, err := tx.Query(ctx, `
		INSERT INTO patients AS p (mrn, family, given, birth_date, birth_partial, sex, street, city, postcode, state, phone)
		SELECT mrn, family, given, birth_date, birth_partial, sex, street, city, postcode, state, phone FROM patients_in
		ON CONFLICT (mrn) DO UPDATE SET
			family = EXCLUDED.family, given = EXCLUDED.given, birth_date = EXCLUDED.birth_date,
			birth_partial = EXCLUDED.birth_partial, sex = EXCLUDED.sex, street = EXCLUDED.street, city = EXCLUDED.city,
			postcode = EXCLUDED.postcode, state = EXCLUDED.state, phone = EXCLUDED.phone, updated_at = now()
		WHERE (p.family, p.given, p.birth_date, p.birth_partial, p.sex, p.street, p.city, p.postcode, p.state, p.phone)
		      IS DISTINCT FROM
		      (EXCLUDED.family, EXCLUDED.given, EXCLUDED.birth_date, EXCLUDED.birth_partial, EXCLUDED.sex, EXCLUDED.street,
		       EXCLUDED.city, EXCLUDED.postcode, EXCLUDED.state, EXCLUDED.phone)
		RETURNING (xmax = 0)`)
	if err != nil {
		return 0, 0, fmt.Errorf("import merge: %w", err)
	}
	for r.Next() {
		var ins bool
		if err := r.Scan(&ins); err != nil {
			r.Close()
			return 0, 0, err
		}
		if ins {
			inserted++
		} else {
			updated++
		}
	}
	r.Close()
	if err := r.Err(); err != nil {
		return 0, 0, fmt.Errorf("import merge: %w", err)
	}
	return inserted, updated, tx.Commit(ctx)
}

// Candidates returns the EMPI patients in the union of the blocks — exact MRN (or an
// alias a merge left), phonetic surname with birth year, exact birth date, trigram-similar
// full name within the birth year — each patient once, at most limit per block. Every
// block has an index.
func (db *DB) Candidates(ctx context.Context, q chartscan.CandidateQuery, limit int) ([]chartscan.Patient, error) {
	var dob *time.Time
	if t, err := time.Parse(time.DateOnly, q.BirthDate); err == nil {
		dob = &t
		if q.BirthYear == 0 {
			q.BirthYear = t.Year()
		}
	}
	full := strings.ToLower(strings.TrimSpace(q.Family + " " + q.Given))
	if q.Family == "" {
		full = ""
	}
	rows, err := db.pool.Query(ctx, `
		WITH hits AS (
			(SELECT mrn FROM patients WHERE mrn = ANY($1::text[]) LIMIT $6)
			UNION
			(SELECT mrn FROM patient_aliases WHERE alias_mrn = ANY($1::text[]) LIMIT $6)
			UNION
			(SELECT mrn FROM patients WHERE $2 <> '' AND $4 > 0 AND family_key = dmetaphone($2) AND birth_year = $4 LIMIT $6)
			UNION
			(SELECT mrn FROM patients WHERE birth_date = $3 ORDER BY similarity(full_name, $5) DESC LIMIT $6)
			UNION
			(SELECT mrn FROM patients WHERE $5 <> '' AND birth_year = $4 AND full_name % $5
			 ORDER BY full_name <-> $5 LIMIT $6)
		)
		SELECT p.mrn, p.family, p.given, `+birthDateSQL+`, p.sex,
		       p.street, p.city, p.postcode, p.state, p.phone
		FROM hits JOIN patients p USING (mrn)`,
		q.MRNs, q.Family, dob, q.BirthYear, full, limit)
	if err != nil {
		return nil, fmt.Errorf("candidates: %w", err)
	}
	ps, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (chartscan.Patient, error) {
		var p chartscan.Patient
		err := r.Scan(&p.MRN, &p.Family, &p.Given, &p.BirthDate, &p.Sex, &p.Street, &p.City, &p.Postcode, &p.State, &p.Phone)
		return p, err
	})
	if err != nil {
		return nil, fmt.Errorf("candidates: %w", err)
	}
	return ps, nil
}

// SurnameShares returns, for each surname asked for (any case), the share of EMPI
// patients who carry it: the term frequency that makes a common name weigh less.
func (db *DB) SurnameShares(ctx context.Context, families []string) (map[string]float64, error) {
	lower := make([]string, len(families))
	for i, f := range families {
		lower[i] = strings.ToLower(f)
	}
	rows, err := db.pool.Query(ctx, `
		SELECT c.family, c.n::float8 / greatest((SELECT value FROM empi_stats WHERE key = 'surnames_total'), 1)
		FROM surname_counts c WHERE c.family = ANY($1)`, lower)
	if err != nil {
		return nil, fmt.Errorf("surname shares: %w", err)
	}
	defer rows.Close()
	out := make(map[string]float64, len(families))
	for rows.Next() {
		var f string
		var share float64
		if err := rows.Scan(&f, &share); err != nil {
			return nil, err
		}
		out[f] = share
	}
	return out, rows.Err()
}

// refreshSurnameCounts recounts surnames after an import changed the EMPI.
func (db *DB) refreshSurnameCounts(ctx context.Context) error {
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `
		CREATE TEMP TABLE surname_now ON COMMIT DROP AS
			SELECT lower(family) AS family, count(*)::int AS n FROM patients WHERE family <> '' GROUP BY 1;
		DELETE FROM surname_counts c WHERE NOT EXISTS (SELECT 1 FROM surname_now s WHERE s.family = c.family);
		INSERT INTO surname_counts (family, n) SELECT family, n FROM surname_now
			ON CONFLICT (family) DO UPDATE SET n = EXCLUDED.n WHERE surname_counts.n <> EXCLUDED.n;
		INSERT INTO empi_stats (key, value) SELECT 'surnames_total', coalesce(sum(n), 0) FROM surname_now
			ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value;`); err != nil {
		return fmt.Errorf("surname counts: %w", err)
	}
	return tx.Commit(ctx)
}

// MergePatients applies an EMPI merge (HL7 A40): the merged-away MRN becomes an alias of
// the survivor, pages filed to it move to the survivor, and the move is written to the
// audit log with the number of pages moved. It returns that number.
func (db *DB) MergePatients(ctx context.Context, survivor, merged, actor string) (int, error) {
	if survivor == merged {
		return 0, chartscan.Errorf(chartscan.EInvalid, "a patient cannot be merged into itself")
	}
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback(ctx)
	var ok bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM patients WHERE mrn = $1)`, survivor).Scan(&ok); err != nil {
		return 0, fmt.Errorf("merge: %w", err)
	}
	if !ok {
		return 0, chartscan.Errorf(chartscan.ENotFound, "the surviving patient of a merge is not in the EMPI")
	}
	tag, err := tx.Exec(ctx, `UPDATE pages SET mrn = $1, updated_at = now() WHERE mrn = $2`, survivor, merged)
	if err != nil {
		return 0, fmt.Errorf("merge: move pages: %w", err)
	}
	moved := int(tag.RowsAffected())
	batch := &pgx.Batch{}
	batch.Queue(`UPDATE page_candidates SET mrn = $1 WHERE mrn = $2`, survivor, merged)
	batch.Queue(`UPDATE patient_aliases SET mrn = $1 WHERE mrn = $2`, survivor, merged)
	batch.Queue(`INSERT INTO patient_aliases (alias_mrn, mrn) VALUES ($2, $1)
		ON CONFLICT (alias_mrn) DO UPDATE SET mrn = EXCLUDED.mrn, merged_at = now()`, survivor, merged)
	batch.Queue(`DELETE FROM patients WHERE mrn = $1`, merged)
	if err := tx.SendBatch(ctx, batch).Close(); err != nil {
		return 0, fmt.Errorf("merge: %w", err)
	}
	if err := appendAudit(ctx, tx, AuditEntry{Actor: actor, Action: "empi.merge", Object: "patient:" + survivor,
		Outcome: "ok", Detail: map[string]any{"merged_mrn": merged, "pages_moved": moved}}); err != nil {
		return 0, err
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, err
	}
	return moved, db.refreshSurnameCounts(ctx)
}

// PatientCount returns how many patients the EMPI holds.
func (db *DB) PatientCount(ctx context.Context) (int, error) {
	var n int
	err := db.pool.QueryRow(ctx, `SELECT count(*) FROM patients`).Scan(&n)
	return n, err
}
